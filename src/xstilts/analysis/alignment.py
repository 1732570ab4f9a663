"""Sentence-level alignment measurements between parallel representations, with confidence intervals.

Every function takes parallel sentence vectors: row i of `x` (language A) and row i of `y` (language B)
are translations of each other.

- `retrieval_accuracy` / `retrieval_hits`: top-1 retrieval of the translation in both directions, scored by
  cosine, CSLS (Conneau et al. 2018: 2 cos(x, y) - r_Y(x) - r_X(y), r the mean cosine of the k = 10
  nearest neighbours in the other language) or LASER's ratio margin (cos / ((r(x) + r(y)) / 2), k = 4).
  Neighbourhoods and the search come from `xstilts.evaluate.mining`; the argmax over all candidates is
  exact and blocked, so no dense n x n matrix exists at once.
- `linear_cka` (Kornblith et al. 2019) and `unbiased_linear_cka` (with the unbiased HSIC estimator of
  Song et al. 2012, as in Nguyen et al. 2021), both computed from d x d feature-space products and O(n d)
  sums, so n = 100k sentences cost no n x n Gram matrix.
- `cosine_gap`: mean cosine of translation pairs against random mismatched pairs (a derangement).
- `language_probe_accuracy`: cross-validated accuracy of a linear language-identity classifier (language
  neutrality: lower is more language-neutral; chance is 1 / number of languages with `balance=True`).
- `bootstrap_ci`, `paired_difference_ci`, `correlation_ci`: percentile bootstrap intervals over sentences
  (or over languages for correlations, with the Fisher-z interval for Pearson's r as well).
- `warn_if_small`: a `SmallSampleWarning` naming the number when too few sentences for a stable estimate.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from xstilts.evaluate.checks import ScoringError
from xstilts.evaluate.mining import Rescore, knn_both_ways, unit_vectors

SCORINGS = ("cosine", "csls", "margin")
DEFAULT_K = {"cosine": 1, "csls": 10, "margin": 4}
MIN_SENTENCES = 100  # below this many sentences the measurements warn (SmallSampleWarning)
_SHORTLIST = 8  # nearest rows by cosine among which CSLS / margin retrieval looks for a provable best
_CHUNK_ROWS = 8192  # rows per chunk when accumulating feature-space products in float64


class SmallSampleWarning(UserWarning):
    """Too few sentences (or languages) for a stable estimate."""


def warn_if_small(n: int, minimum: int = MIN_SENTENCES, what: str = "sentences") -> bool:
    """Warn (SmallSampleWarning, with the number) when `n` < `minimum`; True when it warned."""
    if n < minimum:
        warnings.warn(
            f"only {n} {what}: at least {minimum} are needed for a stable estimate",
            SmallSampleWarning,
            stacklevel=2,
        )
        return True
    return False


def _parallel(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or y.ndim != 2:
        raise ScoringError(f"expected 2-d arrays of sentence vectors, got shapes {x.shape} and {y.shape}")
    if len(x) != len(y):
        raise ScoringError(f"parallel sets differ in length: {len(x)} vs {len(y)} sentences")
    if len(x) == 0:
        raise ScoringError("alignment over an empty set of sentences is undefined")
    return x, y


# --------------------------------------------------------------------------------------------- retrieval


def _margin_rescore(query_radius: np.ndarray, key_radius: np.ndarray, device: str | None) -> Rescore:
    """Turns a block of cosines into cos / (r_query + r_key) in place: the ratio margin up to its / 2,
    which no argmax sees. Rows go 64 at a time, so the sum of radii never takes a block's memory."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    query_r = torch.from_numpy(np.asarray(query_radius, dtype=np.float32)).to(device)[:, None]
    key_r = torch.from_numpy(np.asarray(key_radius, dtype=np.float32)).to(device)[None, :]

    def rescore(block: torch.Tensor, first_row: int) -> None:
        for start in range(0, len(block), 64):
            rows = block[start : start + 64]
            rows.div_(query_r[first_row + start : first_row + start + len(rows)] + key_r)

    return rescore


def _csls_vectors(x: np.ndarray, y: np.ndarray, r_x: np.ndarray, r_y: np.ndarray):
    """Vectors whose inner product is CSLS: [2x, -r_x, -1] . [y, 1, r_y] = 2 cos(x, y) - r_x - r_y."""
    ones_x, ones_y = np.ones((len(x), 1), np.float32), np.ones((len(y), 1), np.float32)
    x_aug = np.hstack([2 * x, -np.asarray(r_x, np.float32)[:, None], -ones_x])
    y_aug = np.hstack([y, ones_y, np.asarray(r_y, np.float32)[:, None]])
    return x_aug, y_aug


def _adjusted_search(x, y, r_x, r_y, scoring: str, search: dict):
    """Exact best row by CSLS or margin, both ways, in one pass over the similarities (Neighbourhoods)."""
    if scoring == "csls":
        return knn_both_ways(*_csls_vectors(x, y, r_x, r_y), 1, **search)
    block = {key: search[key] for key in ("batch_size", "device") if key in search}
    return knn_both_ways(x, y, 1, rescore=_margin_rescore(r_x, r_y, search.get("device")), **block)


def _shortlist_best(
    sims: np.ndarray, ids: np.ndarray, r_query: np.ndarray, r_key: np.ndarray, scoring: str, n_keys: int
) -> tuple[np.ndarray, np.ndarray]:
    """The best key by CSLS or margin among each query's nearest keys by cosine, and whether it is sure.

    Keys outside the shortlist have cosine at most the shortlist's last (the m-th largest), so their
    adjusted score is bounded using the extreme key radii; when the shortlist's best beats that bound
    (by 1e-6, well above float32 rounding of the cosines) no other key can win and it is the exact argmax.
    """
    cos = sims.astype(np.float64)
    r_q, r_k = r_query.astype(np.float64)[:, None], r_key.astype(np.float64)
    last = cos[:, -1:]
    if scoring == "csls":
        scores = 2 * cos - r_q - r_k[ids]
        bound = 2 * last - r_q - r_k.min()
    else:
        scores = cos / (r_q + r_k[ids])
        bound = last / (r_q + np.where(last >= 0, r_k.min(), r_k.max()))
        bound[r_q + r_k.min() <= 0] = np.inf  # a denominator may vanish: no bound
    column = scores.argmax(axis=1)
    best = scores[np.arange(len(scores)), column]
    sure = best > bound[:, 0] + 1e-6 if sims.shape[1] < n_keys else np.ones(len(best), dtype=bool)
    return ids[np.arange(len(ids)), column], sure


def retrieval_hits(
    x: np.ndarray, y: np.ndarray, scoring: str = "cosine", k: int | None = None, **search
) -> dict[str, np.ndarray]:
    """Per-sentence top-1 retrieval success in both directions: {"a_to_b": bool[n], "b_to_a": bool[n]}.

    a_to_b: is y[i] the best-scoring row of y for x[i]; b_to_a: is x[i] the best for y[i]. `k` is the
    neighbourhood size of CSLS (default 10) and of the ratio margin (default 4); cosine ignores it.
    `search` goes to `mining.knn_both_ways` (batch_size, backend, device). Every answer is exact; among
    exactly tied scores which row wins is unspecified. Cosine takes one pass over the similarities, both
    directions at once. CSLS and margin take the max(k, 8) nearest rows by cosine both ways in their first
    pass (the radii are the mean of the first k); where the best of those by the adjusted score provably
    beats every other row (`_shortlist_best`), that is the answer, and only the other sentences are
    searched again. At 100k sentences a second full pass would cost about as much as the first (on 2 CPU
    cores CSLS went from 84 s to under 60 s); when more than half of the sentences are unsure, all of them
    are searched again in one pass both ways. A longer list proves more rows but slows the first pass:
    its backward merges grow with it (16 cost about 15 s more than 4 at 100k).
    """
    if scoring not in SCORINGS:
        raise ScoringError(f"unknown scoring {scoring!r}; valid: {', '.join(SCORINGS)}")
    x, y = _parallel(x, y)
    warn_if_small(len(x))
    xu, yu = unit_vectors(x), unit_vectors(y)
    if scoring == "cosine":
        best = knn_both_ways(xu, yu, 1, **search)
        a_to_b, b_to_a = best.forward_ids[:, 0], best.backward_ids[:, 0]
    else:
        k = k or DEFAULT_K[scoring]
        hood = knn_both_ways(xu, yu, max(k, _SHORTLIST), **search)
        r_x = hood.forward_sims[:, :k].mean(axis=1)  # r_Y(x) for rows of x
        r_y = hood.backward_sims[:, :k].mean(axis=1)  # r_X(y) for rows of y
        a_to_b, sure_a = _shortlist_best(hood.forward_sims, hood.forward_ids, r_x, r_y, scoring, len(y))
        b_to_a, sure_b = _shortlist_best(hood.backward_sims, hood.backward_ids, r_y, r_x, scoring, len(x))
        unsure_a, unsure_b = np.flatnonzero(~sure_a), np.flatnonzero(~sure_b)
        if len(unsure_a) + len(unsure_b) > len(x):  # one pass both ways is cheaper than two partial ones
            best = _adjusted_search(xu, yu, r_x, r_y, scoring, search)
            a_to_b, b_to_a = best.forward_ids[:, 0], best.backward_ids[:, 0]
        else:
            if len(unsure_a) > 0:
                found = _adjusted_search(xu[unsure_a], yu, r_x[unsure_a], r_y, scoring, search)
                a_to_b[unsure_a] = found.forward_ids[:, 0]
            if len(unsure_b) > 0:
                found = _adjusted_search(yu[unsure_b], xu, r_y[unsure_b], r_x, scoring, search)
                b_to_a[unsure_b] = found.forward_ids[:, 0]
    rows = np.arange(len(x))
    return {"a_to_b": a_to_b == rows, "b_to_a": b_to_a == rows}


def retrieval_accuracy(
    x: np.ndarray, y: np.ndarray, scoring: str = "cosine", k: int | None = None, **search
) -> dict[str, float]:
    """Top-1 translation retrieval accuracy in both directions: {"a_to_b": ..., "b_to_a": ...}."""
    hits = retrieval_hits(x, y, scoring=scoring, k=k, **search)
    return {direction: float(found.mean()) for direction, found in hits.items()}


# -------------------------------------------------------------------------------------------------- CKA


def _feature_products(x: np.ndarray, y: np.ndarray, center: bool) -> dict[str, np.ndarray]:
    """X^T Y, X^T X, Y^T Y (d x d, float64), column sums and squared row norms, accumulated in chunks."""
    mean_x = x.mean(axis=0, dtype=np.float64) if center else 0.0
    mean_y = y.mean(axis=0, dtype=np.float64) if center else 0.0
    dx, dy = x.shape[1], y.shape[1]
    xy, xx, yy = np.zeros((dx, dy)), np.zeros((dx, dx)), np.zeros((dy, dy))
    sum_x, sum_y = np.zeros(dx), np.zeros(dy)
    norm_x, norm_y = np.empty(len(x)), np.empty(len(y))
    for start in range(0, len(x), _CHUNK_ROWS):
        cx = np.asarray(x[start : start + _CHUNK_ROWS], dtype=np.float64) - mean_x
        cy = np.asarray(y[start : start + _CHUNK_ROWS], dtype=np.float64) - mean_y
        xy += cx.T @ cy
        xx += cx.T @ cx
        yy += cy.T @ cy
        sum_x += cx.sum(axis=0)
        sum_y += cy.sum(axis=0)
        norm_x[start : start + len(cx)] = np.einsum("ij,ij->i", cx, cx)
        norm_y[start : start + len(cy)] = np.einsum("ij,ij->i", cy, cy)
    return {"xy": xy, "xx": xx, "yy": yy, "sum_x": sum_x, "sum_y": sum_y, "norm_x": norm_x, "norm_y": norm_y}


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA (Kornblith et al. 2019): ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F), centred features.

    Equal to HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with linear kernels K = X X^T, L = Y Y^T; computed
    in feature space, so the cost is O(n d^2) time and O(d^2) memory. The two sets may differ in width.
    """
    x, y = _parallel(x, y)
    warn_if_small(len(x))
    p = _feature_products(x, y, center=True)
    denominator = np.linalg.norm(p["xx"]) * np.linalg.norm(p["yy"])
    if denominator == 0:
        raise ScoringError("CKA is undefined for a constant representation (zero variance)")
    return float(np.linalg.norm(p["xy"]) ** 2 / denominator)


def _unbiased_hsic(cross_trace: float, diag_a, diag_b, rowsum_a, rowsum_b, n: int) -> float:
    """Song et al. (2012) unbiased HSIC from tr(K L), the Gram diagonals and row sums (diagonal included).

    With K~ and L~ the Gram matrices with zeroed diagonals:
    HSIC_1 = [tr(K~ L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3)).
    """
    trace = cross_trace - float(diag_a @ diag_b)
    a, b = rowsum_a - diag_a, rowsum_b - diag_b  # K~ 1 and L~ 1
    total = a.sum() * b.sum() / ((n - 1) * (n - 2))
    return float((trace + total - 2 / (n - 2) * float(a @ b)) / (n * (n - 3)))


def unbiased_linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA with the unbiased HSIC estimator (Song et al. 2012; Nguyen et al. 2021), for small n.

    Needs n >= 4. Close to `linear_cka` for large n; unlike it, near 0 for independent representations
    even when n is small relative to the dimension. Computed in feature space (no n x n Gram matrix): for
    a linear kernel, tr(K L) = ||X^T Y||_F^2, diag(K) holds the squared row norms and K 1 = X (X^T 1).
    Features are centred first (the estimator does not depend on it; it only helps the arithmetic).
    """
    x, y = _parallel(x, y)
    n = len(x)
    if n < 4:
        raise ScoringError(f"the unbiased HSIC estimator needs at least 4 sentences, got {n}")
    warn_if_small(n)
    p = _feature_products(x, y, center=True)
    mean_x = x.mean(axis=0, dtype=np.float64)
    mean_y = y.mean(axis=0, dtype=np.float64)
    # K 1 = Xc (Xc^T 1); with centred features Xc^T 1 is ~0 but is kept exactly for generality
    rows_x = _row_dot(x, mean_x, p["sum_x"])
    rows_y = _row_dot(y, mean_y, p["sum_y"])
    nx, ny = p["norm_x"], p["norm_y"]
    hsic_xy = _unbiased_hsic(float(np.sum(p["xy"] ** 2)), nx, ny, rows_x, rows_y, n)
    hsic_xx = _unbiased_hsic(float(np.sum(p["xx"] ** 2)), nx, nx, rows_x, rows_x, n)
    hsic_yy = _unbiased_hsic(float(np.sum(p["yy"] ** 2)), ny, ny, rows_y, rows_y, n)
    if hsic_xx <= 0 or hsic_yy <= 0:
        raise ScoringError("unbiased CKA is undefined: a representation has no (estimated) variance")
    return float(hsic_xy / math.sqrt(hsic_xx * hsic_yy))


def _row_dot(x: np.ndarray, mean: np.ndarray, column_sum: np.ndarray) -> np.ndarray:
    """(x_i - mean) . column_sum for every row, in float64 chunks."""
    out = np.empty(len(x))
    for start in range(0, len(x), _CHUNK_ROWS):
        chunk = np.asarray(x[start : start + _CHUNK_ROWS], dtype=np.float64) - mean
        out[start : start + len(chunk)] = chunk @ column_sum
    return out


# ------------------------------------------------------------------------------------------- cosine gap


def _generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def derangement(n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """A uniformly random permutation of range(n) with no fixed point (rejection sampling; n >= 2)."""
    if n < 2:
        raise ScoringError(f"a derangement needs at least 2 items, got {n}")
    rng = _generator(rng)
    while True:  # a random permutation is a derangement with probability ~1/e
        perm = rng.permutation(n)
        if not np.any(perm == np.arange(n)):
            return perm


def _gap_parts(x: np.ndarray, y: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Per sentence: cos(x[i], y[i]) and cos(x[i], y[perm[i]]) for a random derangement `perm`."""
    x, y = _parallel(x, y)
    warn_if_small(len(x))
    xu = unit_vectors(x).astype(np.float64)
    yu = unit_vectors(y).astype(np.float64)
    perm = derangement(len(x), rng)
    return np.einsum("ij,ij->i", xu, yu), np.einsum("ij,ij->i", xu, yu[perm])


def cosine_gap(x: np.ndarray, y: np.ndarray, rng: np.random.Generator | int | None = 0) -> dict[str, float]:
    """Mean cosine of translation pairs, of random mismatched pairs (x[i], y[perm[i]]), and the difference.

    `perm` is a random derangement drawn from `rng` (a Generator or a seed), so no mismatched pair is a
    translation pair. Returns {"translation": ..., "random": ..., "gap": translation - random}.
    """
    per_pair, per_random = _gap_parts(x, y, rng)
    translation, random = float(per_pair.mean()), float(per_random.mean())
    return {"translation": translation, "random": random, "gap": translation - random}


def cosine_gap_items(x: np.ndarray, y: np.ndarray, rng: np.random.Generator | int | None = 0) -> np.ndarray:
    """Per sentence: cos(x[i], y[i]) - cos(x[i], y[perm[i]]); the mean is `cosine_gap`'s gap for the same
    `rng`. A bootstrap over sentences resamples these."""
    per_pair, per_random = _gap_parts(x, y, rng)
    return per_pair - per_random


# ---------------------------------------------------------------------------------------- language probe


def language_probe_accuracy(
    vectors_by_language: Mapping[str, np.ndarray],
    folds: int = 5,
    seed: int = 0,
    balance: bool = True,
    max_iter: int = 1000,
) -> float:
    """Cross-validated accuracy of a linear (logistic regression) language-identity classifier.

    Language neutrality: the lower, the less language identity is linearly recoverable. With `balance`
    (default) every language is subsampled to the smallest one's count, so chance is 1 / #languages.
    Folds are stratified and shuffled with `seed`; features are standardised inside each fold.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(vectors_by_language) < 2:
        raise ScoringError(f"a language probe needs at least 2 languages, got {len(vectors_by_language)}")
    rng = np.random.default_rng(seed)
    arrays = {lang: np.asarray(v) for lang, v in vectors_by_language.items()}
    smallest = min(len(v) for v in arrays.values())
    if smallest < folds:
        raise ScoringError(
            f"{folds}-fold probing needs at least {folds} sentences per language, got {smallest}"
        )
    warn_if_small(smallest, what="sentences per language")
    features, labels = [], []
    for label, (_, vectors) in enumerate(sorted(arrays.items())):
        if balance and len(vectors) > smallest:
            vectors = vectors[np.sort(rng.choice(len(vectors), smallest, replace=False))]
        features.append(np.asarray(vectors, dtype=np.float64))
        labels.append(np.full(len(vectors), label))
    from threadpoolctl import threadpool_limits

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with threadpool_limits(1):  # small fits: BLAS threads only contend (measured 0.4 s vs 3.6 s, 2 cores)
        scores = cross_val_score(model, np.vstack(features), np.concatenate(labels), cv=splitter)
    return float(np.mean(scores))


# ------------------------------------------------------------------------------------ confidence intervals


@dataclass(frozen=True)
class Interval:
    """A point estimate with a (1 - alpha) confidence interval."""

    estimate: float
    low: float
    high: float
    alpha: float = 0.05

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def _rows(arrays: Sequence[np.ndarray]) -> int:
    arrays = [np.asarray(a) for a in arrays]
    if not arrays:
        raise ScoringError("bootstrap needs at least one array")
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ScoringError(f"bootstrap arrays differ in length: {[len(a) for a in arrays]}")
    if n < 2:
        raise ScoringError(f"bootstrap needs at least 2 rows, got {n}")
    return n


def _percentile(estimate: float, replicates: Sequence[float], alpha: float) -> Interval:
    replicates = np.asarray(replicates, dtype=np.float64)
    replicates = replicates[np.isfinite(replicates)]
    if len(replicates) == 0:
        return Interval(float(estimate), math.nan, math.nan, alpha)
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    return Interval(float(estimate), float(low), float(high), alpha)


def bootstrap_ci(
    statistic: Callable[..., float],
    *arrays: np.ndarray,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of `statistic(*arrays)`, resampling rows (sentences) jointly.

    The same resampled row indices are applied to every array, so parallel arrays stay paired. The
    estimate is the statistic on the original data. Replicates that are not finite are dropped.
    """
    n = _rows(arrays)
    rng = np.random.default_rng(seed)
    arrays = tuple(np.asarray(a) for a in arrays)
    replicates = []
    for _ in range(n_boot):
        rows = rng.integers(0, n, n)
        replicates.append(statistic(*(a[rows] for a in arrays)))
    return _percentile(statistic(*arrays), replicates, alpha)


def paired_difference_ci(
    statistic: Callable[..., float],
    before: np.ndarray | Sequence[np.ndarray],
    after: np.ndarray | Sequence[np.ndarray],
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> Interval:
    """Interval of statistic(*after) - statistic(*before) for two checkpoints on the same sentences.

    `before` and `after` are an array or a sequence of arrays (e.g. (x, y) of one checkpoint), all with
    one row per sentence; each bootstrap replicate resamples the same sentences for both checkpoints.
    """
    before = (before,) if isinstance(before, np.ndarray) else tuple(before)
    after = (after,) if isinstance(after, np.ndarray) else tuple(after)
    n_before, n_after = _rows(before), _rows(after)
    if n_before != n_after:
        raise ScoringError(f"checkpoints measured on different sentence counts: {n_before} vs {n_after}")
    both = tuple(np.asarray(a) for a in before + after)
    split = len(before)

    def change(*arrays):
        return statistic(*arrays[split:]) - statistic(*arrays[:split])

    return bootstrap_ci(change, *both, n_boot=n_boot, alpha=alpha, seed=seed)


@dataclass(frozen=True)
class CorrelationInterval:
    """A correlation over languages with its percentile bootstrap interval (and Fisher-z for Pearson)."""

    method: str
    r: float
    p_value: float
    n: int
    low: float
    high: float
    fisher_low: float | None = None
    fisher_high: float | None = None
    alpha: float = 0.05


def _correlation(x: np.ndarray, y: np.ndarray, method: str) -> tuple[float, float]:
    from scipy import stats

    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    result = stats.pearsonr(x, y) if method == "pearson" else stats.spearmanr(x, y)
    return float(result[0]), float(result[1])


def _rowwise_correlation(x: np.ndarray, y: np.ndarray, method: str) -> np.ndarray:
    """Correlation of each row of x with the same row of y (bootstrap replicates at once); NaN where a
    row is constant. Spearman is Pearson on average ranks, as scipy computes it."""
    if method == "spearman":
        from scipy.stats import rankdata

        x, y = rankdata(x, axis=1), rankdata(y, axis=1)
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    denominator = np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (x * y).sum(axis=1) / denominator
    return np.where(denominator > 1e-12 * max(1.0, float(np.nanmax(denominator, initial=0.0))), r, np.nan)


def correlation_ci(
    x: Sequence[float],
    y: Sequence[float],
    method: str = "pearson",
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> CorrelationInterval:
    """Correlation of two measurements over languages (or tasks) with a percentile bootstrap interval.

    Pairs (x_i, y_i) are resampled together; resamples with a constant side (undefined correlation) are
    dropped. For Pearson the Fisher-z interval tanh(atanh(r) +- z / sqrt(n - 3)) is given too (n >= 4).
    Warns (SmallSampleWarning) below 10 pairs, where either interval is wide and rough.
    """
    if method not in ("pearson", "spearman"):
        raise ScoringError(f"unknown correlation {method!r}; valid: pearson, spearman")
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ScoringError(f"correlation needs two equal-length 1-d sequences, got {x.shape} and {y.shape}")
    n = len(x)
    if n < 3:
        raise ScoringError(f"a correlation interval needs at least 3 pairs, got {n}")
    warn_if_small(n, minimum=10, what="pairs (languages)")
    r, p_value = _correlation(x, y, method)
    rows = _resamples(n, n_boot, seed)
    interval = _percentile(r, _rowwise_correlation(x[rows], y[rows], method), alpha)
    fisher_low = fisher_high = None
    if method == "pearson" and n >= 4 and math.isfinite(r):
        from scipy import stats

        z, half = (
            math.atanh(min(max(r, -1 + 1e-12), 1 - 1e-12)),
            stats.norm.ppf(1 - alpha / 2) / math.sqrt(n - 3),
        )
        fisher_low, fisher_high = math.tanh(z - half), math.tanh(z + half)
    return CorrelationInterval(
        method, r, p_value, n, interval.low, interval.high, fisher_low, fisher_high, alpha
    )


def _resamples(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def paired_mean_change_ci(
    before: np.ndarray, after: np.ndarray, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> Interval:
    """Interval of mean(after) - mean(before) for per-item scores of two checkpoints, vectorised.

    `before` and `after` are [groups, n] (e.g. languages x parallel sentences) or [n]; each replicate
    resamples the same n items for every group and both checkpoints, so the interval covers the change
    in the mean over groups of per-group means (sentences are parallel across languages).
    """
    before, after = np.atleast_2d(before).astype(np.float64), np.atleast_2d(after).astype(np.float64)
    if before.shape != after.shape:
        raise ScoringError(f"checkpoints measured on different items: {before.shape} vs {after.shape}")
    n = _rows([before.T])
    difference = after - before
    rows = _resamples(n, n_boot, seed)
    replicates = difference[:, rows].mean(axis=(0, 2))
    return _percentile(float(difference.mean()), replicates, alpha)


def _gram(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors @ vectors.T


def _gram_cka(k: np.ndarray, l: np.ndarray) -> float:  # noqa: E741 - the usual names of the two Grams
    """Linear CKA from two (uncentred) Gram matrices of the same items."""
    k = k - k.mean(0) - k.mean(1)[:, None] + k.mean()
    l = l - l.mean(0) - l.mean(1)[:, None] + l.mean()  # noqa: E741
    denominator = math.sqrt(float((k * k).sum()) * float((l * l).sum()))
    return float((k * l).sum()) / denominator if denominator > 0 else math.nan


def paired_cka_change_ci(
    before: Sequence[tuple[np.ndarray, np.ndarray]],
    after: Sequence[Sequence[tuple[np.ndarray, np.ndarray]]],
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> Interval:
    """Interval of the change in mean linear CKA over language pairs, resampling sentences jointly.

    `before` holds one (x, y) pair of parallel [n, h] arrays per language pair; `after` one such list per
    seed of the later checkpoint, whose CKA is averaged over seeds. Replicates work on n x n Gram
    matrices (a resample with repeated rows is CKA of the resampled data), O(n^2) each.
    """
    if not before or any(len(side) != len(before) for side in after) or not after:
        raise ScoringError("need the same non-empty language pairs before and after")
    n = _rows([x for side in (before, *after) for x, _ in side])
    grams = [[(_gram(x), _gram(y)) for x, y in side] for side in (before, *after)]

    def mean_cka(side, rows) -> float:
        return float(np.mean([_gram_cka(k[rows][:, rows], l[rows][:, rows]) for k, l in side]))  # noqa: E741

    def change(rows) -> float:
        return float(np.mean([mean_cka(side, rows) for side in grams[1:]]) - mean_cka(grams[0], rows))

    estimate = change(slice(None))
    replicates = np.array([change(rows) for rows in _resamples(n, n_boot, seed)])
    # Resampling with replacement repeats sentences, which biases CKA (and its change) towards what fewer
    # distinct sentences give, so percentile intervals can miss the estimate; the normal interval with
    # the bootstrap standard error keeps the spread and centres on the estimate.
    from scipy import stats

    half = stats.norm.ppf(1 - alpha / 2) * float(np.std(replicates[np.isfinite(replicates)], ddof=1))
    return Interval(estimate, estimate - half, estimate + half, alpha)
