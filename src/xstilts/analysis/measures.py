"""Alignment measures of one language pair at one layer, dispatched through one registry.

Each measure family gets a `LayerPair` (the vectors of the parallel sentences and, for mining, of the
sentence pools) and returns {measure name: Measured}. `Measured.items` holds per-sentence scores whose
mean is the value (retrieval hits, the cosine gap per pair), so the change between two checkpoints can
be bootstrapped over sentences later without recomputing; measures that are not a mean over sentences
(CKA, mining F1) have no items. Names: "xx" is the pair's first language, "en" its second (the pivot,
English unless the pair says otherwise); "xx_en" means queries in xx retrieving from en.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from xstilts.analysis import alignment
from xstilts.errors import XstiltsError
from xstilts.evaluate.metrics import bucc_f1
from xstilts.evaluate.mining import best_threshold, mine, mine_pairs

SCORINGS = ("cosine", "csls", "margin")


@dataclass(frozen=True)
class LayerPair:
    x: np.ndarray  # [n, hidden] parallel sentences of the first language
    y: np.ndarray  # [n, hidden] their translations, row i for row i
    pool_x: np.ndarray | None = None  # mining pools (gold sentences plus distractors)
    pool_y: np.ndarray | None = None
    gold: Sequence[tuple[int, int]] = ()  # (pool_x row, pool_y row) translation pairs


@dataclass(frozen=True)
class Measured:
    value: float
    items: np.ndarray | None = None  # per-sentence scores, mean == value


def _retrieval(scoring: str) -> Callable[[LayerPair], dict[str, Measured]]:
    def measure(pair: LayerPair) -> dict[str, Measured]:
        hits = alignment.retrieval_hits(pair.x, pair.y, scoring=scoring)
        return {
            f"retrieval_{scoring}_{direction}": Measured(float(found.mean()), found.astype(np.float32))
            for direction, found in (("xx_en", hits["a_to_b"]), ("en_xx", hits["b_to_a"]))
        }

    return measure


def _cka(pair: LayerPair) -> dict[str, Measured]:
    out = {"cka": Measured(alignment.linear_cka(pair.x, pair.y))}
    if len(pair.x) >= 4:  # the unbiased estimator is undefined below 4 sentences
        out["cka_unbiased"] = Measured(alignment.unbiased_linear_cka(pair.x, pair.y))
    return out


def _cosine_gap(pair: LayerPair) -> dict[str, Measured]:
    items = alignment.cosine_gap_items(pair.x, pair.y)
    return {"cosine_gap": Measured(float(items.mean()), items.astype(np.float32))}


def mining_f1(pool_x: np.ndarray, pool_y: np.ndarray, gold: Sequence[tuple[int, int]]) -> float:
    """BUCC-protocol F1 (ratio margin, k=4, "max" candidates) at the threshold that is best on `gold`.

    Analysis pools have no separate dev split to tune on, so this is the oracle-threshold F1: an upper
    bound on the tuned one, comparable across checkpoints and layers.
    """
    candidates = mine(pool_x, list(range(len(pool_x))), pool_y, list(range(len(pool_y))))
    gold = [(int(i), int(j)) for i, j in gold]
    threshold = best_threshold(candidates, gold)
    return bucc_f1(mine_pairs(candidates, threshold), gold)


def _mining(pair: LayerPair) -> dict[str, Measured]:
    if pair.pool_x is None or pair.pool_y is None or not len(pair.gold):
        return {}
    return {"mining_f1": Measured(mining_f1(pair.pool_x, pair.pool_y, pair.gold))}


FAMILIES: dict[str, Callable[[LayerPair], dict[str, Measured]]] = {
    **{f"retrieval_{scoring}": _retrieval(scoring) for scoring in SCORINGS},
    "mining": _mining,
    "cka": _cka,
    "cosine_gap": _cosine_gap,
}
PAIR_MEASURES = (
    *(f"retrieval_{s}_{d}" for s in SCORINGS for d in ("xx_en", "en_xx")),
    "mining_f1",
    "cka",
    "cka_unbiased",
    "cosine_gap",
)
WORD_MEASURES = ("word_weak", "word_strong")
PROBE = "language_probe"  # over all languages at once; lower = more language-neutral
LOWER_IS_BETTER = {PROBE}


def measure_pair(pair: LayerPair, families: Sequence[str] | None = None) -> dict[str, Measured]:
    """Every measure of the chosen families (default all) for one language pair at one layer."""
    chosen = list(FAMILIES) if families is None else list(families)
    unknown = [name for name in chosen if name not in FAMILIES]
    if unknown:
        raise XstiltsError(f"unknown alignment measures {unknown}; valid: {', '.join(FAMILIES)}")
    out: dict[str, Measured] = {}
    for name in chosen:
        out.update(FAMILIES[name](pair))
    return out


def language_probe(vectors_by_language: dict[str, np.ndarray]) -> Measured | None:
    """Cross-validated language-identity probe accuracy over all languages (None with too few rows)."""
    folds = min(5, min(len(v) for v in vectors_by_language.values()))
    if folds < 2 or len(vectors_by_language) < 2:
        return None
    return Measured(alignment.language_probe_accuracy(vectors_by_language, folds=folds))
