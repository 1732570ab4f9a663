"""Checkpoints are written atomically: an interruption leaves the previous state, never a partial one."""

import json

import pytest
import torch

from xstilts.models.checkpoint import META_FILE, build_model, is_complete, read_meta, save_checkpoint
from xstilts.models.heads import HeadSpec, StrictLoadError


def test_interrupted_save_leaves_nothing(tmp_path, monkeypatch):
    model, tokenizer, _ = build_model("tiny-random-xlmr", {"t": 2})
    target = tmp_path / "ckpt"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tokenizer, "save_pretrained", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(model, tokenizer, target, {"phase": "target"})
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_round_trip_through_a_phase_checkpoint(tmp_path):
    model, tokenizer, _ = build_model("tiny-random-xlmr", {"t": 2}, seed=1)
    save_checkpoint(model, tokenizer, tmp_path / "ckpt", {"phase": "intermediate"})
    assert is_complete(tmp_path / "ckpt")
    assert read_meta(tmp_path / "ckpt")["heads"] == {"t": {"level": "sequence", "outputs": 2}}
    again, _, report = build_model(tmp_path / "ckpt", {"t": 2, "u": 3})
    assert report.new_heads == ["u"] and report.dropped_heads == []
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=False):
        assert torch.equal(a, b), name


def test_a_head_trained_with_other_pooling_is_not_silently_reused(tmp_path):
    from xstilts.models.heads import StrictLoadError

    model, tokenizer, _ = build_model("tiny-random-xlmr", {"t": 2}, pooling="mean")
    save_checkpoint(model, tokenizer, tmp_path / "ckpt", {"phase": "intermediate"})
    assert read_meta(tmp_path / "ckpt")["head_pooling"] == "mean"
    with pytest.raises(StrictLoadError, match="trained with mean pooling, not first"):
        build_model(tmp_path / "ckpt", {"t": 2}, pooling="first")
    # dropping that head and adding a new one is fine whatever the pooling
    _, _, report = build_model(tmp_path / "ckpt", {"u": 2}, pooling="first")
    assert report.dropped_heads == ["t"] and report.new_heads == ["u"]


def test_mean_pooling_heads_ignore_padding():
    model, tokenizer, _ = build_model("tiny-random-xlmr", {"t": 2}, pooling="mean")
    model.eval()
    short = tokenizer(["a short verse"], return_tensors="pt")
    padded = tokenizer(
        ["a short verse", "a much longer verse with many more words in it"], padding=True, return_tensors="pt"
    )
    alone = model(short["input_ids"], short["attention_mask"], head="t")
    batched = model(padded["input_ids"], padded["attention_mask"], head="t")
    assert torch.allclose(alone[0], batched[0], atol=1e-5)


def test_token_heads_round_trip_with_their_level(tmp_path):
    heads = {"qa": HeadSpec(2, "token"), "t": 3}
    model, tokenizer, _ = build_model("tiny-random-xlmr", heads, seed=2)
    save_checkpoint(model, tokenizer, tmp_path / "ckpt", {"phase": "intermediate"})
    assert read_meta(tmp_path / "ckpt")["heads"] == {
        "qa": {"level": "token", "outputs": 2},
        "t": {"level": "sequence", "outputs": 3},
    }
    again, _, report = build_model(tmp_path / "ckpt", {"qa": HeadSpec(2, "token")})
    assert report.dropped_heads == ["t"] and report.new_heads == []
    assert torch.equal(again.heads["qa"].out_proj.weight, model.heads["qa"].out_proj.weight)
    ids = torch.tensor([[0, 100, 200, 2]])
    assert again.eval()(ids, torch.ones_like(ids), head="qa").shape == (1, 4, 2)


def test_a_head_that_changes_level_or_outputs_is_refused(tmp_path):
    model, tokenizer, _ = build_model("tiny-random-xlmr", {"qa": HeadSpec(2, "token")})
    save_checkpoint(model, tokenizer, tmp_path / "ckpt", {"phase": "intermediate"})
    with pytest.raises(StrictLoadError, match="'qa' is token-level with 2 outputs in the checkpoint"):
        build_model(tmp_path / "ckpt", {"qa": 2})
    with pytest.raises(StrictLoadError, match="but token-level with 3 outputs"):
        build_model(tmp_path / "ckpt", {"qa": HeadSpec(3, "token")})
    # a token-level head does not depend on the pooling of sequence heads
    _, _, report = build_model(tmp_path / "ckpt", {"qa": HeadSpec(2, "token")}, pooling="mean")
    assert report.new_heads == [] and report.dropped_heads == []


def test_metadata_with_bare_output_counts_still_loads(tmp_path):
    """Checkpoints written before token-level heads recorded each head as its output count."""
    model, tokenizer, _ = build_model("tiny-random-xlmr", {"t": 2}, seed=1)
    save_checkpoint(model, tokenizer, tmp_path / "ckpt", {"phase": "intermediate"})
    meta = read_meta(tmp_path / "ckpt") | {"heads": {"t": 2}}
    (tmp_path / "ckpt" / META_FILE).write_text(json.dumps(meta))
    again, _, report = build_model(tmp_path / "ckpt", {"t": 2})
    assert report.new_heads == [] and torch.equal(
        again.heads["t"].out_proj.weight, model.heads["t"].out_proj.weight
    )
    with pytest.raises(StrictLoadError, match="sequence-level with 2 outputs in the checkpoint"):
        build_model(tmp_path / "ckpt", {"t": HeadSpec(2, "token")})
