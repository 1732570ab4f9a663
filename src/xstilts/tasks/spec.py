"""TaskSpec: everything that describes a task, as data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark task. The registry table in `registry.py` is a list of these."""

    name: str
    kind: str  # a key of xstilts.tasks.kinds.KINDS
    source: str  # a key of xstilts.tasks.sources.SOURCES
    languages: tuple[str, ...]  # languages evaluated zero-shot (the train language included)
    metric: str  # a key of xstilts.evaluate.metrics.METRICS
    splits: tuple[str, ...] = ("train", "dev", "test")
    labels: tuple[str, ...] = ()
    train_language: str = "en"
    max_length: int = 128
    roles: tuple[str, ...] = ("target",)  # "intermediate" and/or "target"
    retrieval_layer: int | None = None  # hidden_states index, counted after the embeddings
    pooling: str | None = None  # "mean" (padding masked) or "first"
    description: str = ""

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @property
    def trains(self) -> bool:
        """Retrieval tasks are evaluated straight on the encoder, with no fine-tuning (as in the paper)."""
        return self.kind != "retrieval"
