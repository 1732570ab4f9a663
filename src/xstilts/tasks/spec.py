"""TaskSpec: everything that describes a task, as data.

Examples are plain dicts whose keys depend on the task kind (the contract every source honours):

- classification:      {"id", "text", "label": int}
- pair_classification: {"id", "text_a", "text_b", "label": int}
- multiple_choice:     {"id", "context", "choices": [str, ...], "label": int}
- span_qa:             {"id", "question", "context", "answers": {"text": [...], "answer_start": [...]}}
                       (SQuAD schema; empty lists mean "no answer" in SQuAD v2.0)
- tagging:             {"id", "tokens": [word, ...], "tags": [int, ...]} (one tag per word)
- retrieval:           {"id", "text", "translation"} (text in the language, its English translation)
- mining:              one example per language: {"id": "<lang>-en", "source": {id: text}, "target":
                       {id: text} (English), "gold": [[source_id, target_id], ...]}
- ranking:             train: {"id", "query", "candidate"} (a positive pair); dev/test: one problem per
                       language, {"id": lang, "language", "queries": {qid: text}, "candidates": {cid:
                       text}, "relevant": {qid: [cid, ...]}}. Its adapters yield parts, {"language",
                       "queries", "candidates", "relevant": {qid: [key, ...]}, "answers": {key: [cid,
                       ...]}}, which `tasks/ranking.py` turns into those pairs or that problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DataRef:
    """Where one split of a task comes from: a hub dataset config and/or a file in the original format.

    The field names follow lm-evaluation-harness' task YAML (`dataset_path`, `dataset_name`, `split`), so a
    registry row reads like one. Templates use the placeholders of `languages.template_values` ({lang},
    {udpos_name}, {iso3}, ...). `language` pins the language (e.g. a target's English training data).
    """

    adapter: str  # key of xstilts.tasks.adapters.ADAPTERS: one raw record -> example dicts
    dataset_path: str | None = None  # dataset id on the Hugging Face hub, e.g. "google/xtreme"
    dataset_name: str | None = None  # hub config template, e.g. "PAWS-X.{lang}"
    split: str | None = None  # the hub's split name, e.g. "validation"
    local_file: str | None = None  # path template under the data directory, e.g. "pawsx/test-{lang}.tsv"
    local_format: str | None = None  # key of xstilts.tasks.local_files.FORMATS
    language: str | None = None


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark task. The registry table in `registry.py` is a list of these."""

    name: str
    kind: str  # a key of xstilts.tasks.kinds.KINDS
    source: str  # a key of xstilts.tasks.sources.SOURCES
    languages: tuple[str, ...]  # languages evaluated zero-shot (the train language included)
    metric: str  # a key of xstilts.evaluate.metrics.METRICS: the task's headline number
    splits: tuple[str, ...] = ("train", "dev", "test")
    labels: tuple[str, ...] = ()
    train_language: str = "en"
    max_length: int = 128
    roles: tuple[str, ...] = ("target",)  # "intermediate" and/or "target"; "test": a domain shift's test set
    retrieval_layer: int | None = None  # hidden_states index, counted after the embeddings
    pooling: str | None = None  # "mean" (padding masked) or "first"
    retrieval_direction: str | None = None  # "en->xx" (XTREME: English queries, xx index) or "xx->en"
    description: str = ""
    extra_metrics: tuple[str, ...] = ()  # also computed and stored (e.g. exact match next to F1)
    data: dict[str, tuple[DataRef, ...]] = field(default_factory=dict)  # split -> refs, concatenated
    head: str | None = None  # head name; tasks naming the same head share it (default: the task name)
    xtreme_name: str | None = None  # directory name in the XTREME submission layout
    paper_name: str = ""
    domains: tuple[str, ...] = ()  # the domains its examples carry (Bible genres, NLI genres): domain shifts

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @property
    def head_name(self) -> str:
        return self.head or self.name
