"""Task kinds: features stay unpadded, batches pad to their own longest row only."""

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from xstilts.errors import XstiltsError
from xstilts.models.tiny import tiny_checkpoint_dir
from xstilts.tasks.kinds import get_kind, sequence_lengths
from xstilts.tasks.spec import TaskSpec

_TWO_TAGS = TaskSpec(
    name="t", kind="tagging", source="bible", languages=("en",), metric="accuracy", labels=("A", "B")
)


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(tiny_checkpoint_dir())


def test_pair_features_are_one_sequence_pair_with_labels(tokenizer):
    kind = get_kind("pair_classification")
    (feature,) = kind.encode(
        [{"text_a": "In the beginning", "text_b": "God created", "label": 1}], tokenizer, 32
    )
    tokens = tokenizer.convert_ids_to_tokens(feature["input_ids"])
    assert tokens[0] == "<s>" and tokens.count("</s>") == 3 and feature["labels"] == 1


def test_dynamic_padding_pads_to_the_batch_not_to_max_length(tokenizer):
    kind = get_kind("classification")
    rows = [{"text": "short", "label": 0}, {"text": "a somewhat longer verse of text", "label": 1}]
    features = kind.encode(rows, tokenizer, max_length=128)
    batch = kind.collate(features, tokenizer)
    assert (
        batch["input_ids"].shape == (2, max(sequence_lengths(features))) and batch["input_ids"].shape[1] < 128
    )
    assert batch["attention_mask"][0].sum() == len(features[0]["input_ids"])
    assert batch["labels"].tolist() == [0, 1]


def test_multiple_choice_batches_are_examples_by_choices_by_tokens(tokenizer):
    kind = get_kind("multiple_choice")
    rows = [
        {"context": "ctx one", "choices": ["a", "b b", "c c c", "d"], "label": 2},
        {"context": "ctx two is longer", "choices": ["e", "f", "g", "h h h h"], "label": 0},
    ]
    features = kind.encode(rows, tokenizer, 32)
    assert [len(f["input_ids"]) for f in features] == [4, 4]
    batch = kind.collate(features, tokenizer)
    assert batch["input_ids"].shape[:2] == (2, 4) and batch["labels"].tolist() == [2, 0]
    assert kind.predict(np.array([[0.1, 0.2, 0.9, 0.0], [2.0, 0.0, 0.0, 1.0]])).tolist() == [2, 0]
    with pytest.raises(ValueError, match="number of choices"):
        kind.encode([rows[0], {"context": "x", "choices": ["a", "b"], "label": 0}], tokenizer, 32)


def test_unknown_kind_lists_valid_kinds():
    with pytest.raises(XstiltsError, match="multiple_choice"):
        get_kind("span-qa")


# --------------------------------------------------------------------------- losses, one per kind
def test_classification_and_multiple_choice_losses_are_cross_entropy():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0])
    expected = (-torch.log_softmax(logits, -1)[[0, 1], [0, 0]]).mean()
    assert torch.allclose(get_kind("classification").loss(logits, {"labels": labels}), expected)
    batch = {"input_ids": torch.zeros(1, 2, 3, dtype=torch.long), "labels": torch.tensor([1])}
    scores = torch.tensor([[0.5], [1.5]])  # one score per (example, choice) row
    expected = -torch.log_softmax(scores.view(1, 2), -1)[0, 1]
    assert torch.allclose(get_kind("multiple_choice").loss(scores, batch), expected)


def test_span_qa_loss_is_the_mean_of_start_and_end_cross_entropy_over_real_tokens():
    logits = torch.randn(2, 5, 2, generator=torch.Generator().manual_seed(0))
    logits[0, 3:] = 50.0  # padding of the first row: must not take part
    batch = {
        "attention_mask": torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]),
        "start_positions": torch.tensor([1, 4]),
        "end_positions": torch.tensor([2, 4]),
    }

    def nll(row: int, column: int, length: int, target: int) -> torch.Tensor:
        return -torch.log_softmax(logits[row, :length, column], -1)[target]

    start = (nll(0, 0, 3, 1) + nll(1, 0, 5, 4)) / 2
    end = (nll(0, 1, 3, 2) + nll(1, 1, 5, 4)) / 2
    assert torch.allclose(get_kind("span_qa").loss(logits, batch), (start + end) / 2, atol=1e-5)


def test_tagging_loss_counts_labelled_positions_only():
    logits = torch.randn(1, 4, 3, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([[-100, 2, -100, 0]])
    expected = -(torch.log_softmax(logits[0, 1], -1)[2] + torch.log_softmax(logits[0, 3], -1)[0]) / 2
    assert torch.allclose(get_kind("tagging").loss(logits, {"labels": labels}), expected)
    nothing = get_kind("tagging").loss(logits, {"labels": torch.full((1, 4), -100)})
    assert nothing.item() == 0.0  # no labelled word: zero, not NaN


def test_token_level_batches_are_right_padded_and_logits_come_back_per_feature(tokenizer):
    from xstilts.evaluate.inference import predict_logits
    from xstilts.models.checkpoint import build_model

    kind = get_kind("tagging")
    rows = [
        {"id": "a", "tokens": ["short"], "tags": [1]},
        {"id": "b", "tokens": ["a", "rather", "longer", "sentence", "here"], "tags": [0, 0, 1, 0, 1]},
    ]
    features = kind.encode(rows, tokenizer, 32, for_training=True)
    batch = kind.collate(features, tokenizer)
    width = len(features[1]["input_ids"])
    assert batch["input_ids"].shape == batch["labels"].shape == (2, width)
    assert batch["input_ids"][0, len(features[0]["input_ids"]) :].eq(tokenizer.pad_token_id).all()
    assert batch["labels"][0, len(features[0]["input_ids"]) :].eq(-100).all()
    assert kind.head_level == "token" and get_kind("classification").head_level == "sequence"
    model, tokenizer, _ = build_model("tiny-random-xlmr", {"tags": kind.head(_TWO_TAGS)})
    logits = predict_logits(model, kind, tokenizer, features, "tags", batch_size=2)
    assert [row.shape for row in logits] == [(len(f["input_ids"]), 2) for f in features]
    alone = predict_logits(model, kind, tokenizer, features[:1], "tags", batch_size=1)
    assert np.allclose(alone[0], logits[0], atol=1e-5)  # padding in the batch changes nothing


def test_mining_and_mlm_are_kinds_of_their_own():
    from xstilts.models.heads import HeadSpec
    from xstilts.tasks.kinds import KINDS, MaskedLM

    mining = get_kind("mining")
    assert not mining.trains and mining.encoder_scorer == "margin_mining" and mining.one_example_per_language
    problem = {"source": {"s1": "a", "s2": "b"}, "target": {"t1": "x"}, "gold": [["s1", "t1"]]}
    assert mining.gold([problem], None) == {("s1", "t1")}
    assert get_kind("retrieval").gold([{}, {}, {}], None) == [0, 1, 2]
    assert all(kind.trains == (kind.encoder_scorer is None) for kind in KINDS.values())
    spec = TaskSpec(name="mlm", kind="mlm", source="raw-text", languages=(), metric="")
    with pytest.raises(XstiltsError, match="for_vocabulary"):
        get_kind("mlm").head(spec)
    assert MaskedLM.for_vocabulary(250002).head(spec) == HeadSpec(250002, "mlm")


def test_no_code_outside_kinds_compares_a_kind_name():
    """Dispatch goes through the kinds' attributes and registries, never `spec.kind == "..."`."""
    import re
    from pathlib import Path

    from xstilts.tasks.kinds import KINDS

    root = Path(__file__).parent.parent
    names = "|".join(KINDS)
    # a comparison with a task kind's name, e.g. spec.kind == "mining" or kind in ("retrieval", ...)
    pattern = re.compile(rf"kind\s*(==|!=|\bin\b|\bnot in\b)\s*[(\[]?\s*[\"']({names})[\"']")
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for folder in ("src", "benchmarks")
        for path in sorted((root / folder).rglob("*.py"))
        if path.name != "kinds.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
