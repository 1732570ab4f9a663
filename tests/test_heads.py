"""Strict loading between phases: the encoder must match, whole heads may come and go."""

import pytest
import torch
from transformers import BertConfig, BertModel

from xstilts.models.heads import HeadSpec, MultiHeadModel, StrictLoadError, load_phase_state


def encoder(hidden=16, layers=1) -> BertModel:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    return BertModel(config, add_pooling_layer=False)


def test_moving_to_the_target_phase_keeps_encoder_drops_and_adds_heads():
    inter = MultiHeadModel(encoder(), {"bible-next": 1})
    with torch.no_grad():
        inter.encoder.embeddings.word_embeddings.weight.add_(1.0)
    target = MultiHeadModel(encoder(), {"bible-genre": 8})
    report = load_phase_state(target, inter.state_dict())
    assert report.dropped_heads == ["bible-next"] and report.new_heads == ["bible-genre"]
    assert all(key.startswith("encoder.") for key in report.loaded)
    assert torch.equal(
        target.encoder.embeddings.word_embeddings.weight, inter.encoder.embeddings.word_embeddings.weight
    )
    assert "bible-next" in report.summary() and "bible-genre" in report.summary()


def test_a_shared_head_is_loaded_not_reinitialised():
    first = MultiHeadModel(encoder(), {"nli": 3})
    second = MultiHeadModel(encoder(), {"nli": 3})
    report = load_phase_state(second, first.state_dict())
    assert report.dropped_heads == [] and report.new_heads == []
    assert torch.equal(second.heads["nli"].out_proj.weight, first.heads["nli"].out_proj.weight)


def test_encoder_mismatch_is_an_error():
    with pytest.raises(StrictLoadError, match="shape mismatch"):
        load_phase_state(MultiHeadModel(encoder(hidden=16)), MultiHeadModel(encoder(hidden=32)).state_dict())
    state = MultiHeadModel(encoder(layers=2)).state_dict()
    with pytest.raises(StrictLoadError, match="unexpected tensor encoder.encoder.layer.1"):
        load_phase_state(MultiHeadModel(encoder(layers=1)), state)
    state = MultiHeadModel(encoder(layers=1)).state_dict()
    with pytest.raises(StrictLoadError, match="missing tensor encoder.encoder.layer.1"):
        load_phase_state(MultiHeadModel(encoder(layers=2)), state)


def test_same_head_name_with_other_label_count_is_an_error():
    with pytest.raises(StrictLoadError, match="heads.t.out_proj.weight"):
        load_phase_state(
            MultiHeadModel(encoder(), {"t": 3}), MultiHeadModel(encoder(), {"t": 2}).state_dict()
        )


def test_multiple_choice_input_is_scored_per_choice():
    model = MultiHeadModel(encoder(), {"mc": 1}).eval()
    ids = torch.randint(5, 50, (2, 4, 7))
    logits = model(ids, torch.ones_like(ids), head="mc")
    assert logits.shape == (8, 1)
    single = model(ids[1, 2:3], torch.ones_like(ids[1, 2:3]), head="mc")
    assert torch.allclose(logits[6], single[0], atol=1e-5)


def test_token_heads_score_every_position_next_to_pooled_heads():
    model = MultiHeadModel(
        encoder(), {"cls": 3, "qa": HeadSpec(2, "token"), "tags": HeadSpec(5, "token")}
    ).eval()
    assert model.head_spec() == {"cls": HeadSpec(3), "qa": HeadSpec(2, "token"), "tags": HeadSpec(5, "token")}
    ids = torch.randint(5, 50, (2, 7))
    mask = torch.ones_like(ids)
    assert model(ids, mask, head="cls").shape == (2, 3)
    assert model(ids, mask, head="qa").shape == (2, 7, 2) and model(ids, mask, head="tags").shape == (2, 7, 5)
    # a token head is a projection of each hidden state
    hidden = model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(model(ids, mask, head="qa"), model.heads["qa"].out_proj(hidden), atol=1e-6)


def test_a_head_that_changes_level_is_not_loaded():
    state = MultiHeadModel(encoder(), {"t": 2}).state_dict()
    with pytest.raises(StrictLoadError, match="unexpected tensor heads.t.dense.weight"):
        load_phase_state(MultiHeadModel(encoder(), {"t": HeadSpec(2, "token")}), state)


def test_head_specs_parse_both_metadata_formats():
    assert HeadSpec.parse(3) == HeadSpec(3, "sequence")
    assert HeadSpec.parse({"level": "token", "outputs": 2}) == HeadSpec(2, "token")
    assert HeadSpec.parse(HeadSpec(2, "token").to_meta()) == HeadSpec(2, "token")
    for bad in ({"outputs": 2}, "2", True):
        with pytest.raises(ValueError, match="not a head spec"):
            HeadSpec.parse(bad)
    with pytest.raises(ValueError, match="unknown head level"):
        HeadSpec(2, "word")
