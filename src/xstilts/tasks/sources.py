"""Where examples come from. Each source maps (task, split, language, seed, limit) to example dicts."""

from __future__ import annotations

from collections.abc import Callable

from xstilts.errors import unknown_name
from xstilts.tasks.spec import TaskSpec

Loader = Callable[..., list[dict]]


def _bible(spec: TaskSpec, split: str, lang: str, *, seed: int, limit: int | None) -> list[dict]:
    from xstilts.tasks import bible

    return bible.build_examples(spec.name, split, lang, seed=seed, limit=limit)


SOURCES: dict[str, Loader] = {"bible": _bible}


def load_examples(spec: TaskSpec, split: str, lang: str, *, seed: int = 0, limit: int | None = None):
    if split not in spec.splits:
        raise unknown_name(f"split of task {spec.name}", split, spec.splits)
    try:
        loader = SOURCES[spec.source]
    except KeyError:
        raise unknown_name("source", spec.source, SOURCES) from None
    return loader(spec, split, lang, seed=seed, limit=limit)
