"""The MLM baseline pieces on the tiny model: tied head, real masking, pretrained head weights, raw text."""

import pytest
import torch
from safetensors.torch import load_file, save_model
from transformers import AutoModel, BertConfig, BertForMaskedLM, XLMRobertaForMaskedLM

from xstilts.data.mlm import mlm_collator, mlm_features, raw_text
from xstilts.errors import XstiltsError
from xstilts.models.heads import MultiHeadModel
from xstilts.models.loading import load_encoder
from xstilts.models.mlm_head import (
    MLMHead,
    mlm_batch_loss,
    mlm_head_from_checkpoint,
    mlm_loss,
    pretrained_mlm_head_state,
)
from xstilts.tasks.bible import chapter_splits, load_verses


@pytest.fixture(scope="module")
def tiny():
    return load_encoder("tiny-random-xlmr")


def fresh_encoder(tiny):
    """A copy of the tiny encoder, so tests that train or tie do not touch the shared one."""
    encoder, _ = tiny
    copy = AutoModel.from_config(encoder.config, add_pooling_layer=False)
    copy.load_state_dict(encoder.state_dict())
    return copy


@pytest.fixture(scope="module")
def bible_lines():
    return raw_text("bible", ["en", "de"], limit=64, seed=0)


# --------------------------------------------------------------------------- head


def test_decoder_weight_is_the_embedding_matrix(tiny):
    encoder = fresh_encoder(tiny)
    head = MLMHead.for_encoder(encoder)
    embeddings = encoder.get_input_embeddings().weight
    assert head.decoder.weight is embeddings and head.is_tied_to(encoder)
    assert head.decoder.bias is head.bias and head.num_outputs == embeddings.shape[0]
    # the tied aliases are not saved twice: the head stores only its own tensors
    assert sorted(head.state_dict()) == sorted(
        ["dense.weight", "dense.bias", "layer_norm.weight", "layer_norm.bias", "bias"]
    )
    # training through the head moves the embeddings themselves, and they stay one tensor
    optimizer = torch.optim.SGD(head.parameters(), lr=1.0)
    before = embeddings.detach().clone()
    head(torch.randn(3, encoder.config.hidden_size)).logsumexp(-1).sum().backward()
    optimizer.step()
    assert not torch.equal(before, embeddings) and head.decoder.weight is embeddings


def test_mlm_loss_decreases_on_repeated_sentences(tiny):
    _, tokenizer = tiny
    encoder = fresh_encoder(tiny)
    torch.manual_seed(0)
    head = MLMHead.for_encoder(encoder)
    sentences = [
        "the quick brown fox jumps over the lazy dog",
        "a river runs through the green valley",
        "the old man walked to the market every morning",
        "stars shine brightly over the quiet mountain",
    ] * 4
    features = mlm_features(sentences, tokenizer, 32)
    evaluation = mlm_collator(tokenizer, seed=123)(features)  # fixed masks to measure on
    collate = mlm_collator(tokenizer, seed=0)
    model = torch.nn.ModuleDict({"encoder": encoder, "head": head})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True)  # as the training loop

    def evaluate() -> float:
        with torch.no_grad():
            return mlm_batch_loss(encoder, head, evaluation).item()

    start = evaluate()
    for _ in range(12):
        loss = mlm_batch_loss(encoder, head, collate(features))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    end = evaluate()
    assert start > 10  # ~ln(250k): the random model knows nothing
    assert end < 0.75 * start, (start, end)  # ~12.5 -> ~7 (fresh masks each step, measured on fixed ones)


def test_mlm_loss_ignores_unmasked_positions():
    logits = torch.randn(2, 3, 5, requires_grad=True)
    labels = torch.tensor([[-100, 2, -100], [4, -100, -100]])
    expected = torch.nn.functional.cross_entropy(logits[labels != -100], labels[labels != -100])
    assert torch.allclose(mlm_loss(logits, labels), expected)
    nothing = mlm_loss(logits, torch.full((2, 3), -100))
    assert nothing.item() == 0.0
    nothing.backward()  # still part of the graph
    assert logits.grad is not None


# --------------------------------------------------------------------------- masking


def test_masking_rate_and_replacement_split(tiny, bible_lines):
    _, tokenizer = tiny
    features = mlm_features(bible_lines * 4, tokenizer, 128)
    originals = [f["input_ids"] for f in features]
    batch = mlm_collator(tokenizer, seed=0)(features)
    lengths = batch["attention_mask"].sum(1)
    ordinary = torch.zeros_like(batch["labels"], dtype=torch.bool)
    original = torch.full_like(batch["labels"], tokenizer.pad_token_id)
    for row, ids in enumerate(originals):
        original[row, : len(ids)] = torch.tensor(ids)
        ordinary[row, 1 : len(ids) - 1] = True  # between <s> and </s>
    assert torch.equal(lengths, torch.tensor([len(ids) for ids in originals]))
    masked = batch["labels"] != -100
    n = int(ordinary.sum())
    assert n > 9000
    rate = masked.sum().item() / n
    assert abs(rate - 0.15) < 0.015, rate  # one standard deviation is < 0.004
    assert torch.equal(batch["labels"][masked], original[masked])  # labels are the original tokens
    as_mask = (batch["input_ids"][masked] == tokenizer.mask_token_id).float().mean().item()
    unchanged = (batch["input_ids"][masked] == original[masked]).float().mean().item()
    assert abs(as_mask - 0.8) < 0.05 and abs(unchanged - 0.1) < 0.04, (as_mask, unchanged)
    # outside the masked positions, nothing changed
    assert torch.equal(batch["input_ids"][~masked], original[~masked])


def test_special_tokens_are_never_masked(tiny, bible_lines):
    _, tokenizer = tiny
    features = mlm_features(bible_lines[:16] + ["short", "a"], tokenizer, 24)  # padded, truncated rows
    special_ids = torch.tensor(tokenizer.all_special_ids)
    for seed in range(20):
        batch = mlm_collator(tokenizer, mlm_probability=0.9, seed=seed)(features)
        for row, feature in enumerate(features):
            ids = torch.tensor(feature["input_ids"])
            special = torch.tensor(feature["special_tokens_mask"], dtype=torch.bool)
            labels = batch["labels"][row]
            assert (labels[: len(ids)][special] == -100).all()
            assert (labels[len(ids) :] == -100).all()  # padding
            assert torch.equal(batch["input_ids"][row, : len(ids)][special], ids[special])
        assert not torch.isin(batch["labels"][batch["labels"] != -100], special_ids).any()


def test_collator_seed_fixes_the_masks(tiny, bible_lines):
    _, tokenizer = tiny
    features = mlm_features(bible_lines[:8], tokenizer, 64)
    first = mlm_collator(tokenizer, seed=5)(features)
    assert torch.equal(first["labels"], mlm_collator(tokenizer, seed=5)(features)["labels"])
    assert not torch.equal(first["labels"], mlm_collator(tokenizer, seed=6)(features)["labels"])


def test_features_truncate_and_skip_empty_lines(tiny):
    _, tokenizer = tiny
    features = mlm_features(["word " * 200, "   ", "", "hello"], tokenizer, 16)
    assert [len(f["input_ids"]) for f in features] == [16, 4]  # <s> ▁hell o </s>
    assert mlm_features([" "], tokenizer, 16) == []
    assert features[0]["special_tokens_mask"][0] == 1 and features[0]["special_tokens_mask"][-1] == 1


# --------------------------------------------------------------------------- pretrained head weights


def test_head_from_xlmr_masked_lm_state_matches_the_real_head(tiny):
    encoder = fresh_encoder(tiny)
    torch.manual_seed(1)
    masked_lm = XLMRobertaForMaskedLM(encoder.config)  # the real class, random init, offline
    masked_lm.roberta.load_state_dict(encoder.state_dict(), strict=False)  # same embeddings as the encoder
    state = masked_lm.state_dict()
    assert "lm_head.dense.weight" in state and "lm_head.layer_norm.bias" in state

    head, report = mlm_head_from_checkpoint(encoder, state)
    assert report.case == "pretrained" and report.style == "xlm-roberta"
    assert report.ignored == ["lm_head.decoder.weight"] and "xlm-roberta" in report.summary()
    assert head.is_tied_to(encoder)
    for ours, theirs in [
        ("dense.weight", "dense.weight"),
        ("layer_norm.weight", "layer_norm.weight"),
        ("bias", "bias"),
    ]:
        assert torch.equal(head.state_dict()[ours], state[f"lm_head.{theirs}"])
    hidden = torch.randn(2, 7, encoder.config.hidden_size)
    with torch.no_grad():
        assert torch.allclose(head(hidden), masked_lm.lm_head(hidden), atol=1e-5)


def test_head_from_bert_masked_lm_state(tiny):
    encoder = fresh_encoder(tiny)
    config = BertConfig(
        vocab_size=encoder.config.vocab_size,
        hidden_size=encoder.config.hidden_size,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    torch.manual_seed(2)
    state = BertForMaskedLM(config).state_dict()
    head, report = mlm_head_from_checkpoint(encoder, state)
    assert report.pretrained and report.style == "bert"
    assert torch.equal(head.dense.weight, state["cls.predictions.transform.dense.weight"])
    assert torch.equal(head.layer_norm.bias, state["cls.predictions.transform.LayerNorm.bias"])
    assert torch.equal(head.bias, state["cls.predictions.bias"]) and head.is_tied_to(encoder)


def test_scratch_head_and_reading_heads_from_checkpoint_files(tiny, tmp_path):
    encoder = fresh_encoder(tiny)
    assert pretrained_mlm_head_state("tiny-random-xlmr") is None  # a bare encoder has no MLM head
    head, report = mlm_head_from_checkpoint(encoder, None)
    assert report.case == "scratch" and "scratch" in report.summary() and head.is_tied_to(encoder)

    torch.manual_seed(3)
    masked_lm = XLMRobertaForMaskedLM(encoder.config)
    masked_lm.save_pretrained(tmp_path)
    state = pretrained_mlm_head_state(str(tmp_path))
    assert set(state) >= {"lm_head.dense.weight", "lm_head.layer_norm.weight", "lm_head.bias"}
    assert not any(key.startswith("roberta.") for key in state)  # only the head is read
    head, report = mlm_head_from_checkpoint(encoder, state)
    assert report.pretrained and torch.equal(head.dense.bias, masked_lm.lm_head.dense.bias)


def test_head_weights_that_do_not_fit_are_errors(tiny):
    encoder = fresh_encoder(tiny)
    hidden = encoder.config.hidden_size
    good = {
        "lm_head.dense.weight": torch.zeros(hidden, hidden),
        "lm_head.dense.bias": torch.zeros(hidden),
        "lm_head.layer_norm.weight": torch.ones(hidden),
        "lm_head.layer_norm.bias": torch.zeros(hidden),
        "lm_head.bias": torch.zeros(encoder.config.vocab_size),
    }
    assert mlm_head_from_checkpoint(encoder, good)[1].pretrained
    with pytest.raises(XstiltsError, match="lacks dense.bias"):
        mlm_head_from_checkpoint(encoder, {k: v for k, v in good.items() if k != "lm_head.dense.bias"})
    with pytest.raises(XstiltsError, match="do not fit"):
        mlm_head_from_checkpoint(encoder, good | {"lm_head.bias": torch.zeros(10)})
    with pytest.raises(XstiltsError, match="no MLM head weights"):
        mlm_head_from_checkpoint(encoder, {"classifier.weight": torch.zeros(2, hidden)})


def test_head_next_to_task_heads_saves_once_and_loads_strictly(tiny, tmp_path):
    encoder = fresh_encoder(tiny)
    torch.manual_seed(4)
    model = MultiHeadModel(encoder, {"toy": 2})
    model.heads["mlm"] = MLMHead.for_encoder(encoder)
    state = model.state_dict()
    assert not any(key.startswith("heads.mlm.decoder") for key in state)
    # the tied embeddings are one parameter, named (and optimised) once, under the encoder
    names = [name for name, _ in model.named_parameters()]
    assert "encoder.embeddings.word_embeddings.weight" in names
    assert not any(name.startswith("heads.mlm.decoder") for name in names)
    save_model(model, str(tmp_path / "model.safetensors"))

    other_encoder = AutoModel.from_config(encoder.config, add_pooling_layer=False)
    other = MultiHeadModel(other_encoder, {"toy": 2})
    other.heads["mlm"] = MLMHead.for_encoder(other_encoder)
    other.load_state_dict(load_file(str(tmp_path / "model.safetensors")), strict=True)
    assert other.heads["mlm"].is_tied_to(other_encoder)
    for key, value in other.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert torch.equal(other.heads["mlm"].decoder.weight, encoder.get_input_embeddings().weight)


# --------------------------------------------------------------------------- raw text


def test_raw_text_from_the_bible_mixes_languages_and_is_seeded():
    lines = raw_text("bible", ["en", "de"], limit=40, seed=0)
    english, german = set(load_verses("en").values()), set(load_verses("de").values())
    assert len(lines) == 40 and len(set(lines)) == 40
    assert sum(line in english for line in lines) == 20 and sum(line in german for line in lines) == 20
    assert lines == raw_text("bible", ["en", "de"], limit=40, seed=0)
    assert lines != raw_text("bible", ["en", "de"], limit=40, seed=1)
    # mixed, not one language after the other
    assert any(line in german for line in lines[:10]) and any(line in english for line in lines[:10])


def test_raw_text_can_leave_out_the_benchmark_evaluation_chapters():
    splits = chapter_splits(0)
    verses = load_verses("fr")
    kept = {text for key, text in verses.items() if splits[key[:2]] == "train"}
    held_out = {text for key, text in verses.items() if splits[key[:2]] != "train"} - kept  # formulas repeat
    lines = raw_text("bible", ["fr"], seed=0, benchmark_seed=0)
    assert len(held_out) > 1000 and set(lines) == kept
    assert len(raw_text("bible", ["fr"], seed=0)) == len(load_verses("fr"))


def test_raw_text_from_files(tmp_path):
    (tmp_path / "en.txt").write_text("one\n\n  two  words \nthree\n", encoding="utf-8")
    (tmp_path / "de.txt").write_text("eins\nzwei\n", encoding="utf-8")
    assert sorted(raw_text(tmp_path)) == ["eins", "one", "three", "two words", "zwei"]
    assert sorted(raw_text(tmp_path, ["de"])) == ["eins", "zwei"]
    assert sorted(raw_text([tmp_path / "de.txt"])) == ["eins", "zwei"]
    sample = raw_text(tmp_path, limit=4, seed=3)
    assert len(sample) == 4 and sum(line in {"eins", "zwei"} for line in sample) == 2  # balanced


def test_raw_text_file_errors_name_the_file(tmp_path):
    with pytest.raises(XstiltsError, match="missing.txt does not exist"):
        raw_text([tmp_path / "missing.txt"])
    with pytest.raises(XstiltsError, match=r"sw\.txt does not exist"):
        raw_text(tmp_path, ["sw"])
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
    with pytest.raises(XstiltsError, match="empty.txt is empty"):
        raw_text(tmp_path / "empty.txt")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(XstiltsError, match="latin1.txt is not valid UTF-8"):
        raw_text(tmp_path / "latin1.txt")
    (tmp_path / "sub").mkdir()
    with pytest.raises(XstiltsError, match=r"sub has no \*\.txt files"):
        raw_text(tmp_path / "sub")
