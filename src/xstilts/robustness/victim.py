"""The attacked model as a search sees it: examples in, class probabilities out, every query counted.

All candidates a search has in flight go through `evaluate.inference.predict_logits` at once: length
sorted, dynamically padded batches, so a 20-token verse is never padded to 512 tokens (TextAttack pads
every query to the model's maximum length). `fixed_length` pads to a fixed length instead: only the
throughput benchmark uses it, to measure what that costs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xstilts.errors import XstiltsError
from xstilts.evaluate.inference import predict_logits
from xstilts.tasks.kinds import KINDS, get_kind
from xstilts.tasks.spec import TaskSpec


def attackable_kinds() -> list[str]:
    return [name for name, kind in KINDS.items() if kind.attack_fields]


def check_attackable(spec: TaskSpec) -> tuple[str, ...]:
    """The fields an attack may perturb in `spec`'s examples; an error for kinds it cannot attack."""
    fields = get_kind(spec.kind).attack_fields
    if not fields:
        raise XstiltsError(
            f"task {spec.name} ({spec.kind}) cannot be attacked: attacks change a classifier's label; "
            f"attackable kinds: {', '.join(attackable_kinds())}"
        )
    return fields


def _padded(values: list, width: int, value: int) -> list:
    if values and isinstance(values[0], list):  # multiple choice: one row per choice
        return [_padded(row, width, value) for row in values]
    return list(values) + [value] * (width - len(values))


def pad_features(features: list[dict], width: int, pad_id: int) -> list[dict]:
    """Features padded to `width` tokens (attention mask 0 on the padding), as a fixed-length pipeline has."""
    return [
        {
            **feature,
            "input_ids": _padded(feature["input_ids"], width, pad_id),
            "attention_mask": _padded(feature["attention_mask"], width, 0),
        }
        for feature in features
    ]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


class Victim:
    """A fine-tuned model and its task: `probabilities(examples)` is one counted query per example."""

    def __init__(
        self,
        model,
        tokenizer,
        spec: TaskSpec,
        *,
        batch_size: int = 64,
        max_length: int | None = None,
        fixed_length: int | None = None,
    ):
        self.fields = check_attackable(spec)
        self.model, self.tokenizer, self.spec = model, tokenizer, spec
        self.kind = get_kind(spec.kind)
        self.batch_size = batch_size
        self.max_length = min(max_length or spec.max_length, tokenizer.model_max_length)
        self.fixed_length = fixed_length
        self.queries = 0

    @property
    def unk_token(self) -> str:
        """The tokenizer's own unknown token: what `importance: unk` puts in a word's place."""
        return self.tokenizer.unk_token or self.tokenizer.mask_token or ""

    def probabilities(self, examples: Sequence[dict]) -> np.ndarray:
        """(examples, classes) probabilities; choices are the classes of a multiple-choice task."""
        if not examples:
            return np.zeros((0, 0))
        features = self.kind.encode(list(examples), self.tokenizer, self.max_length)
        if self.fixed_length is not None:
            features = pad_features(features, self.fixed_length, self.tokenizer.pad_token_id)
        logits = predict_logits(
            self.model, self.kind, self.tokenizer, features, self.spec.head_name, self.batch_size
        )
        self.queries += len(examples)
        return softmax(np.asarray(logits, dtype=np.float64))


def untargeted(probabilities: np.ndarray, labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The goal of every attack here, TextAttack's UntargetedClassification: (score, succeeded) per row.

    score = 1 - p(gold label), what a search maximises; succeeded = the prediction is not the gold label."""
    labels = np.asarray(labels)
    rows = np.arange(len(labels))
    return 1.0 - probabilities[rows, labels], probabilities.argmax(-1) != labels
