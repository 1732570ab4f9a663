"""Attack metrics as TextAttack defines them, per language, and their spread over seeds.

Definitions follow TextAttack's `metrics/attack_metrics/attack_success_rate.py`, `words_perturbed.py` and
`attack_queries.py` (read, not a dependency: TextAttack does not install beside transformers 5):
- an attack is *skipped* when the model was already wrong on the clean input;
- clean accuracy = (N - skipped) / N; accuracy under attack = failed / N;
- attack success rate = successful / (successful + failed);
- average queries over the examples that were not skipped;
- average percentage of words perturbed over the successful attacks (changed words / words of the input).
Percentages are returned as fractions in [0, 1], like every other metric in the results store.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Outcome = Literal["successful", "failed", "skipped"]
OUTCOMES = ("successful", "failed", "skipped")


@dataclass(frozen=True)
class AttackResult:
    """One attacked example: how it ended, the model queries it took and the words it changed."""

    outcome: Outcome
    queries: int
    words: int  # words of the original input
    words_changed: int = 0

    def __post_init__(self):
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown attack outcome {self.outcome!r}: successful, failed or skipped")


def attack_metrics(results: Sequence[AttackResult]) -> dict[str, float]:
    """The metrics of one language's results; NaN where a metric has no example to average over."""
    n = len(results)
    count = {outcome: sum(r.outcome == outcome for r in results) for outcome in OUTCOMES}
    attacked = count["successful"] + count["failed"]
    queried = [r.queries for r in results if r.outcome != "skipped"]
    perturbed = [r.words_changed / r.words if r.words else 0.0 for r in results if r.outcome == "successful"]
    nan = float("nan")
    return {
        "clean_accuracy": (n - count["skipped"]) / n if n else nan,
        "accuracy_under_attack": count["failed"] / n if n else nan,
        "attack_success_rate": count["successful"] / attacked if attacked else nan,
        "average_queries": float(np.mean(queried)) if queried else nan,
        "words_perturbed": float(np.mean(perturbed)) if perturbed else nan,
        "examples": float(n),
        "skipped": float(count["skipped"]),
    }


@dataclass(frozen=True)
class SeedSpread:
    """Mean over seeds with a 95% Student-t interval (NaN bounds with a single seed)."""

    mean: float
    low: float
    high: float
    seeds: int


def over_seeds(values: Iterable[float]) -> SeedSpread:
    """A metric's mean over seeds and its 95% t-interval: with 3 seeds, as the paper's tables report."""
    found = [v for v in values if not math.isnan(v)]
    if not found:
        return SeedSpread(float("nan"), float("nan"), float("nan"), 0)
    mean = float(np.mean(found))
    if len(found) == 1:
        return SeedSpread(mean, float("nan"), float("nan"), 1)
    from scipy import stats

    t = float(stats.t.ppf(0.975, len(found) - 1))
    half = t * float(np.std(found, ddof=1)) / math.sqrt(len(found))
    return SeedSpread(mean, mean - half, mean + half, len(found))
