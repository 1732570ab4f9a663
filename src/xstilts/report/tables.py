"""Result tables from the store: the paper's shape (intermediate x target) and per-language detail."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from xstilts.config import NONE_TASK

ZERO_SHOT = "zero-shot"


@dataclass
class Tables:
    intermediates: list[str]
    targets: list[str]
    languages: dict[str, list[str]]  # target -> languages in order
    per_language: dict[tuple[str, str, str], float]  # (intermediate, target, lang) -> mean over seeds

    def mean(self, intermediate: str, target: str) -> float:
        values = [self.per_language.get((intermediate, target, lang)) for lang in self.languages[target]]
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else float("nan")

    def delta(self, intermediate: str, target: str) -> float | None:
        """Difference to the no-intermediate baseline, when the run has one."""
        if intermediate == NONE_TASK or NONE_TASK not in self.intermediates:
            return None
        return self.mean(intermediate, target) - self.mean(NONE_TASK, target)


def _ordered(values) -> list[str]:
    seen = list(dict.fromkeys(values))
    return ([NONE_TASK] if NONE_TASK in seen else []) + [v for v in seen if v != NONE_TASK]


def _headline(target: str) -> str | None:
    """The metric a target is reported by (it may store extra ones, e.g. exact match next to F1)."""
    from xstilts.errors import XstiltsError
    from xstilts.tasks.registry import get_task

    try:
        return get_task(target).metric
    except XstiltsError:
        return None


def build_tables(rows: list[dict]) -> Tables:
    headline = {target: _headline(target) for target in {r["target"] for r in rows}}
    zero = [r for r in rows if r["phase"] == ZERO_SHOT and headline[r["target"]] in (None, r["metric"])]
    grouped: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    languages: dict[str, list[str]] = defaultdict(list)
    for r in zero:
        grouped[(r["intermediate"], r["target"], r["language"])].append(r["value"])
        if r["language"] not in languages[r["target"]]:
            languages[r["target"]].append(r["language"])
    return Tables(
        intermediates=_ordered(r["intermediate"] for r in zero),
        targets=list(dict.fromkeys(r["target"] for r in zero)),
        languages={t: sorted(langs, key=lambda x: (x != "en", x)) for t, langs in languages.items()},
        per_language={key: float(np.mean(values)) for key, values in grouped.items()},
    )


def format_cell(value: float, delta: float | None) -> str:
    text = f"{100 * value:.1f}"
    return text if delta is None else f"{text} ({100 * delta:+.1f})"
