"""The benchmark as data: one table of TaskSpecs, looked up by name."""

from __future__ import annotations

from xstilts.errors import unknown_name
from xstilts.tasks.bible import BIBLE_LANGUAGES, GENRES
from xstilts.tasks.spec import TaskSpec

_BIBLE_LANGS = tuple(BIBLE_LANGUAGES)

TASK_TABLE: tuple[TaskSpec, ...] = (
    TaskSpec(
        name="bible-next",
        kind="multiple_choice",
        source="bible",
        languages=_BIBLE_LANGS,
        metric="accuracy",
        labels=("0", "1", "2", "3"),
        max_length=96,
        roles=("intermediate",),
        description="HellaSwag-like: pick the verse that follows among 4 from the same book",
    ),
    TaskSpec(
        name="bible-genre",
        kind="classification",
        source="bible",
        languages=_BIBLE_LANGS,
        metric="accuracy",
        labels=tuple(GENRES),
        max_length=96,
        description="the canonical genre of the verse's book (8 classes)",
    ),
    TaskSpec(
        name="bible-pair",
        kind="pair_classification",
        source="bible",
        languages=_BIBLE_LANGS,
        metric="accuracy",
        labels=("apart", "together"),
        max_length=160,
        description="PAWS-X-like: are two verses adjacent in the same passage",
    ),
    TaskSpec(
        name="bible-retrieval",
        kind="retrieval",
        source="bible",
        languages=_BIBLE_LANGS,
        metric="retrieval_accuracy",
        splits=("test",),
        max_length=128,
        retrieval_layer=12,
        pooling="mean",
        description="Tatoeba-like: xx->en top-1 over held-out verses, mean-pooled layer 12, cosine",
    ),
)

TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in TASK_TABLE}


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise unknown_name("task", name, TASKS) from None


def check_languages(spec: TaskSpec, languages: list[str]) -> None:
    """Raise with the task's valid languages when any requested one is not among them."""
    for lang in languages:
        if lang not in spec.languages:
            raise unknown_name(f"language for task {spec.name}", lang, spec.languages)
