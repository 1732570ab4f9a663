"""Alignment stability under attack: how far each layer's sentence vector moves, and whether that explains
which predictions flip (issue 12).

For each attacked example and each encoder state of the attacked model's lineage (`STAGES`: the
pretrained model, the checkpoint after intermediate training, the attacked target checkpoint), at every
layer (hidden_states 0..L, one forward pass per batch, `analysis.representations.extract_layers`):

- `cosine`: cosine between the clean and the adversarial vector of the attacked text (mean pooled by
  default, padding masked);
- `rank`: the rank (1 = best) of the example's English source among the clean English pool (the English
  versions of every record of that language), when the adversarial vector retrieves by cosine; the same
  rank for the clean vector gives the baseline (`clean_top1`, `clean_mean_rank`);
- whether the prediction flipped (outcome "successful").

Skipped records (the model was wrong on the clean input, so no attack was made) are left out of every
per-example measure and of the AUC: their "adversarial" text is the clean one, so including them would
pull the mean cosine towards 1 by the clean error rate rather than by anything the attack did. They stay
in the English retrieval pool, so the pool is every example of the language whatever the outcomes.

Clean and English vectors go through the representation cache (they repeat across attacks; English
texts are embedded once even when several languages share them); adversarial texts are embedded afresh.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xstilts.analysis import alignment
from xstilts.analysis.representations import (
    RepresentationCache,
    cached_layers,
    extract_layers,
    load_source_encoder,
    representation_key,
)
from xstilts.evaluate.mining import unit_vectors
from xstilts.robustness.metrics import OUTCOMES
from xstilts.robustness.records import AttackRecord

STAGES = ("pretrained", "intermediate", "target")
MEASURES = (
    "cosine",
    "top1",
    "mean_rank",
    "clean_top1",
    "clean_mean_rank",
    "flip_auc",
    "flip_auc_low",
    "flip_auc_high",
)
_BOOT_CHUNK = 64  # bootstrap replicates drawn and scored at once


@dataclass(frozen=True)
class StabilityResult:
    """One stage (pretrained | intermediate | target) over one language's (or all languages') records.

    Arrays have one value per layer (hidden_states 0..L); means are over the `examples` attacked
    (not skipped) records, NaN when there are none.
    """

    stage: str
    cosine: np.ndarray  # mean clean-vs-adversarial cosine
    top1: np.ndarray  # fraction of adversarial sentences retrieving their English source first
    mean_rank: np.ndarray  # mean rank (1 = best) of the English source for the adversarial sentence
    clean_top1: np.ndarray  # the same two for the clean sentence: the baseline the attack moves away from
    clean_mean_rank: np.ndarray
    flip_auc: np.ndarray  # ROC AUC of the drop (1 - cosine) as a predictor of a flip; NaN where undefined
    flip_auc_low: np.ndarray  # percentile bootstrap interval (1 - alpha, default 95%)
    flip_auc_high: np.ndarray
    examples: int
    flipped: int


# --- per-example measures (pure functions on vectors) ---------------------------------------------


def attacked_field(record: AttackRecord) -> str:
    """The field the attack changed (the first it changed), else the first perturbed field (an attack
    that changed nothing). The runner takes the English source of this same field."""
    if not record.perturbed:
        raise ValueError(f"record {record.id!r} ({record.language}) has no perturbed field")
    changed = (name for name, text in record.perturbed.items() if record.original.get(name) != text)
    return next(changed, next(iter(record.perturbed)))


def attacked_text(record: AttackRecord) -> tuple[str, str]:
    """(clean, adversarial) text of the attacked field (`attacked_field`)."""
    name = attacked_field(record)
    return record.original.get(name, record.perturbed[name]), record.perturbed[name]


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each row of `a` with the same row of `b`, (..., n, h) -> (..., n) float64, in [-1, 1]."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"clean and adversarial vectors differ in shape: {a.shape} vs {b.shape}")
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    dots = np.einsum("...i,...i->...", a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(np.where(norms > 0, dots / norms, 0.0), -1.0, 1.0)


def retrieval_ranks(
    queries: np.ndarray, keys: np.ndarray, targets: np.ndarray, *, batch_size: int = 1024
) -> np.ndarray:
    """Rank (1 = best) of keys[targets[i]] among all keys for queries[i], by cosine.

    Only strictly more similar keys rank above the target, so a duplicate of the target (the same English
    sentence twice in a pool) does not push it down. At most [batch_size, n_keys] similarities at once.
    """
    targets = np.asarray(targets, dtype=np.int64)
    if len(queries) != len(targets):
        raise ValueError(f"{len(queries)} queries but {len(targets)} targets")
    if len(queries) == 0:
        return np.zeros(0, dtype=np.int64)
    q, k = unit_vectors(queries), unit_vectors(keys)
    ranks = np.empty(len(q), dtype=np.int64)
    for start in range(0, len(q), batch_size):
        sims = q[start : start + batch_size] @ k.T
        own = sims[np.arange(len(sims)), targets[start : start + batch_size]]
        ranks[start : start + len(sims)] = 1 + (sims > own[:, None]).sum(axis=1)
    return ranks


# --- flip AUC with a bootstrap interval -----------------------------------------------------------


def _weighted_auc(positive: np.ndarray, negative: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC per row of example weights (bootstrap counts), scores sorted ascending.

    `positive` / `negative` are (replicates, n) weights in score order; `groups` the start of each run of
    equal scores. AUC = sum over tie groups of P_g (N_below + N_g / 2) / (P N): ties count one half, which
    is what sklearn's `roc_auc_score` gives (the trapezoidal area of the ROC curve). A row with no
    positive or no negative weight is 0 / 0 = NaN.
    """
    pos = np.add.reduceat(positive, groups, axis=1).astype(np.float64)
    neg = np.add.reduceat(negative, groups, axis=1).astype(np.float64)
    below = np.cumsum(neg, axis=1) - neg
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pos * (below + neg / 2)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))


def flip_auc(
    drops: np.ndarray, flipped: np.ndarray, *, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(auc, low, high) per layer: how well `drops` (layers, n) (or (n,)) predict `flipped` (n,) bool.

    The estimate is `sklearn.metrics.roc_auc_score` (higher drop = flip); the interval a percentile
    bootstrap over examples, the same resampled examples for every layer, drawn from
    `numpy.random.default_rng(seed)`. Resamples that hold a single class (no AUC: NaN) are skipped, not
    redrawn, so the interval rests on the remaining ones (about (1 - f)^n of them are lost when a fraction
    f flips); all skipped -> NaN bounds (`alignment`'s percentile rule). Replicates are scored from
    bootstrap counts in one sort per layer (`_weighted_auc`, equal to sklearn on the resample), as a
    thousand sklearn calls per layer took seconds. Undefined AUC (no example, all or none flipped) -> NaN.
    """
    from sklearn.metrics import roc_auc_score

    drops = np.atleast_2d(np.asarray(drops, dtype=np.float64))
    flipped = np.asarray(flipped, dtype=bool)
    layers, n = drops.shape
    if len(flipped) != n:
        raise ValueError(f"{n} drops per layer but {len(flipped)} outcomes")
    if n == 0 or flipped.all() or not flipped.any():
        return tuple(np.full(layers, math.nan) for _ in range(3))
    estimate = np.array([roc_auc_score(flipped, scores) for scores in drops])
    orders = [np.argsort(scores, kind="stable") for scores in drops]
    groups = [
        np.flatnonzero(np.r_[True, np.diff(scores[order]) != 0])
        for scores, order in zip(drops, orders, strict=True)
    ]
    replicates = np.full((n_boot, layers), math.nan)
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, _BOOT_CHUNK):
        size = min(_BOOT_CHUNK, n_boot - start)
        rows = rng.integers(0, n, (size, n)) + n * np.arange(size)[:, None]
        counts = np.bincount(rows.ravel(), minlength=size * n).reshape(size, n)
        positive, negative = counts * flipped, counts * ~flipped
        for layer, (order, group) in enumerate(zip(orders, groups, strict=True)):
            replicates[start : start + size, layer] = _weighted_auc(
                positive[:, order], negative[:, order], group
            )
    intervals = [alignment._percentile(estimate[k], replicates[:, k], alpha) for k in range(layers)]
    return estimate, np.array([i.low for i in intervals]), np.array([i.high for i in intervals])


def summarise(
    stage: str,
    cosines: np.ndarray,
    ranks: np.ndarray,
    clean_ranks: np.ndarray,
    flipped: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> StabilityResult:
    """A stage's result from per-example (layers, n) cosines and ranks and (n,) flips."""
    cosines, ranks, clean_ranks = (np.asarray(a, dtype=np.float64) for a in (cosines, ranks, clean_ranks))
    flipped = np.asarray(flipped, dtype=bool)
    layers, n = cosines.shape

    def mean(values: np.ndarray) -> np.ndarray:
        return values.mean(axis=1) if n else np.full(layers, math.nan)

    auc, low, high = flip_auc(1 - cosines, flipped, n_boot=n_boot, seed=seed)
    return StabilityResult(
        stage=stage,
        cosine=mean(cosines),
        top1=mean(ranks == 1),
        mean_rank=mean(ranks),
        clean_top1=mean(clean_ranks == 1),
        clean_mean_rank=mean(clean_ranks),
        flip_auc=auc,
        flip_auc_low=low,
        flip_auc_high=high,
        examples=n,
        flipped=int(flipped.sum()),
    )


# --- encoders -------------------------------------------------------------------------------------


def _stage_measures(
    source: str | Path,
    clean: list[str],
    adversarial: list[str],
    english: list[str],
    english_of: np.ndarray,
    pools: list[tuple[np.ndarray, np.ndarray]],
    *,
    pooling: str,
    max_length: int,
    batch_size: int,
    cache: RepresentationCache | None,
    device,
    encoder_loader: Callable | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cosines, ranks, clean_ranks), each (layers, attacked), of one encoder; loaded at most once.

    `english_of[j]` is the row of `english` (unique texts) of record j; `pools` holds, per language, the
    record indices of its pool and the positions in that pool of its attacked records, whose order is
    that of `clean` / `adversarial`.
    """
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    loaded: list = []

    def load(src, dev):
        if not loaded:
            loaded.append((encoder_loader or load_source_encoder)(src, dev))
        return loaded[0]

    common = dict(pooling=pooling, max_length=max_length, batch_size=batch_size, cache=cache, device=device)
    clean_vectors = cached_layers(source, clean, encoder_loader=load, **common)
    english_vectors = cached_layers(source, english, encoder_loader=load, **common)
    encoder, tokenizer = load(source, device)
    adversarial_vectors = extract_layers(
        encoder, tokenizer, adversarial, pooling=pooling, batch_size=batch_size, max_length=max_length
    )
    layers = len(adversarial_vectors)
    cosines = np.stack([row_cosines(clean_vectors[k], adversarial_vectors[k]) for k in range(layers)])
    ranks = np.zeros((layers, len(clean)), dtype=np.int64)
    clean_ranks = np.zeros_like(ranks)
    first = 0
    for pool, targets in pools:
        rows = slice(first, first + len(targets))
        first += len(targets)
        for k in range(layers):
            keys = np.asarray(english_vectors[k])[english_of[pool]]
            ranks[k, rows] = retrieval_ranks(adversarial_vectors[k, rows], keys, targets)
            clean_ranks[k, rows] = retrieval_ranks(clean_vectors[k, rows], keys, targets)
    return cosines, ranks, clean_ranks


def measure_stability(
    records: Sequence[AttackRecord],
    english: Sequence[str],
    encoders: Mapping[str, str | Path | None],
    *,
    pooling: str = "mean",
    max_length: int = 128,
    batch_size: int = 64,
    n_boot: int = 1000,
    seed: int = 0,
    cache: RepresentationCache | None = None,
    device=None,
    encoder_loader: Callable | None = None,
) -> dict[str, StabilityResult]:
    """Alignment stability of `records` under each encoder of `encoders` (stage -> model source).

    `english[i]` is the English version of records[i]'s attacked text. Stages are `STAGES`; leave out
    (or map to None) "intermediate" for direct fine-tuning. Records may mix languages: each retrieves
    among its own language's English pool, and the summaries pool all attacked records. Skipped records
    are not measured (see the module docstring) but their English sentences stay in the pool. `cache`,
    `device` and `encoder_loader(source, device)` go to `cached_layers` (tests pass their own).
    """
    records = list(records)
    english = list(english)
    if len(english) != len(records):
        raise ValueError(f"{len(records)} records but {len(english)} English sentences")
    unknown = sorted(set(encoders) - set(STAGES))
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; valid: {', '.join(STAGES)}")
    bad = sorted({r.outcome for r in records} - set(OUTCOMES))
    if bad:
        raise ValueError(f"unknown attack outcome(s) {bad}: {', '.join(OUTCOMES)}")

    unique = list(dict.fromkeys(english))
    row_of = {text: row for row, text in enumerate(unique)}
    english_of = np.array([row_of[text] for text in english], dtype=np.int64)
    clean, adversarial, flipped, pools = [], [], [], []
    for language in dict.fromkeys(r.language for r in records):
        pool = np.array([j for j, r in enumerate(records) if r.language == language], dtype=np.int64)
        targets = [p for p, j in enumerate(pool) if records[j].outcome != "skipped"]
        for p in targets:
            before, after = attacked_text(records[pool[p]])
            clean.append(before)
            adversarial.append(after)
            flipped.append(records[pool[p]].outcome == "successful")
        pools.append((pool, np.array(targets, dtype=np.int64)))

    results = {}
    for stage in STAGES:
        source = encoders.get(stage)
        if source is None:
            continue
        if clean:
            measures = _stage_measures(
                source,
                clean,
                adversarial,
                unique,
                english_of,
                pools,
                pooling=pooling,
                max_length=max_length,
                batch_size=batch_size,
                cache=cache,
                device=device,
                encoder_loader=encoder_loader,
            )
        else:  # nothing attacked: no forward pass, NaN per layer
            layers = len(representation_key(source, [], pooling=pooling, max_length=max_length).layers)
            measures = tuple(np.zeros((layers, 0)) for _ in range(3))
        results[stage] = summarise(stage, *measures, np.array(flipped, dtype=bool), n_boot=n_boot, seed=seed)
    return results


def stability_rows(results: Mapping[str, StabilityResult]) -> list[tuple[str, float]]:
    """(metric, value) rows: `<stage>:<measure>@<layer>` for every measure and layer, then
    `<stage>:examples` and `<stage>:flipped`. NaN values are kept (undefined AUC)."""
    rows: list[tuple[str, float]] = []
    for stage, result in results.items():
        for measure in MEASURES:
            rows.extend(
                (f"{stage}:{measure}@{layer}", float(v)) for layer, v in enumerate(getattr(result, measure))
            )
        rows.append((f"{stage}:examples", float(result.examples)))
        rows.append((f"{stage}:flipped", float(result.flipped)))
    return rows


__all__ = [
    "MEASURES",
    "STAGES",
    "StabilityResult",
    "attacked_text",
    "flip_auc",
    "measure_stability",
    "retrieval_ranks",
    "row_cosines",
    "stability_rows",
    "summarise",
]
