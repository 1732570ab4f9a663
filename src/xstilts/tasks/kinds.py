"""Task kinds: each owns its chain examples -> features -> padded batch -> predictions.

Adding a kind (span QA, tagging, ...) means adding one class here and registering it in KINDS;
the training loop and evaluation only ever call these methods.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers import DataCollatorForMultipleChoice, DataCollatorWithPadding

from xstilts.errors import unknown_name
from xstilts.tasks.spec import TaskSpec


def _tokenize(examples: list[dict], fields: tuple[str, ...], tokenizer, max_length: int) -> list[dict]:
    """Unpadded features (padding happens per batch, in `collate`)."""
    columns = [[ex[field] for ex in examples] for field in fields]
    enc = tokenizer(*columns, truncation=True, max_length=max_length)
    return [
        {"input_ids": ids, "attention_mask": mask}
        for ids, mask in zip(enc["input_ids"], enc["attention_mask"], strict=True)
    ]


@dataclass(frozen=True)
class SequenceClassification:
    """One text -> one of N labels; logits from a head on the pooled sequence."""

    name: str = "classification"
    text_fields: tuple[str, ...] = ("text",)

    def head_outputs(self, spec: TaskSpec) -> int:
        return spec.num_labels

    def encode(self, examples: list[dict], tokenizer, max_length: int) -> list[dict]:
        features = _tokenize(examples, self.text_fields, tokenizer, max_length)
        for feature, example in zip(features, examples, strict=True):
            feature["labels"] = example["label"]
        return features

    def collate(self, features: list[dict], tokenizer) -> dict[str, torch.Tensor]:
        return DataCollatorWithPadding(tokenizer, return_tensors="pt")(features)

    def logits_shape(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        return logits

    def predict(self, logits: np.ndarray) -> np.ndarray:
        return logits.argmax(-1)


@dataclass(frozen=True)
class PairClassification(SequenceClassification):
    """Two texts encoded as one sequence pair (<s> A </s></s> B </s>)."""

    name: str = "pair_classification"
    text_fields: tuple[str, ...] = ("text_a", "text_b")


@dataclass(frozen=True)
class MultipleChoice:
    """Context paired with each choice; one score per choice, softmax over choices."""

    name: str = "multiple_choice"

    def head_outputs(self, spec: TaskSpec) -> int:
        return 1

    def encode(self, examples: list[dict], tokenizer, max_length: int) -> list[dict]:
        n_choices = {len(ex["choices"]) for ex in examples}
        if len(n_choices) > 1:
            raise ValueError(f"multiple-choice examples must share a number of choices, got {n_choices}")
        firsts = [ex["context"] for ex in examples for _ in ex["choices"]]
        seconds = [choice for ex in examples for choice in ex["choices"]]
        enc = tokenizer(firsts, seconds, truncation=True, max_length=max_length)
        k = n_choices.pop() if examples else 0
        features = []
        for i, ex in enumerate(examples):
            rows = slice(i * k, (i + 1) * k)
            features.append(
                {
                    "input_ids": enc["input_ids"][rows],
                    "attention_mask": enc["attention_mask"][rows],
                    "labels": ex["label"],
                }
            )
        return features

    def collate(self, features: list[dict], tokenizer) -> dict[str, torch.Tensor]:
        return DataCollatorForMultipleChoice(tokenizer, return_tensors="pt")(features)

    def logits_shape(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        return logits.view(batch["input_ids"].shape[0], batch["input_ids"].shape[1])

    def predict(self, logits: np.ndarray) -> np.ndarray:
        return logits.argmax(-1)


@dataclass(frozen=True)
class Retrieval:
    """Parallel sentences; no head: scored on pooled hidden states of one layer."""

    name: str = "retrieval"

    def head_outputs(self, spec: TaskSpec) -> int:
        return 0

    def encode(self, examples: list[dict], tokenizer, max_length: int) -> list[dict]:
        return _tokenize(examples, ("text",), tokenizer, max_length)

    def collate(self, features: list[dict], tokenizer) -> dict[str, torch.Tensor]:
        return DataCollatorWithPadding(tokenizer, return_tensors="pt")(features)


KINDS = {
    kind.name: kind
    for kind in (SequenceClassification(), PairClassification(), MultipleChoice(), Retrieval())
}


def get_kind(name: str):
    try:
        return KINDS[name]
    except KeyError:
        raise unknown_name("task kind", name, KINDS) from None


def sequence_lengths(features: list[dict]) -> list[int]:
    """Token count of each feature (longest choice for multiple choice); used for length bucketing."""
    lengths = []
    for feature in features:
        ids = feature["input_ids"]
        lengths.append(max(len(row) for row in ids) if ids and isinstance(ids[0], list) else len(ids))
    return lengths
