"""Task kinds: features stay unpadded, batches pad to their own longest row only."""

import numpy as np
import pytest
from transformers import AutoTokenizer

from xstilts.errors import XstiltsError
from xstilts.models.tiny import tiny_checkpoint_dir
from xstilts.tasks.kinds import get_kind, sequence_lengths


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
        get_kind("span_qa")
