"""Sentence retrieval and mining speed: xstilts against a straightforward exact numpy version, same vectors.

Both sides get the same random vectors (n x n, dimension 384 by default; y is a noisy copy of x, so most but
not all sentences find their translation) and must give the same answers:

- retrieval: top-1 cosine retrieval in both directions (`alignment.retrieval_hits`; numpy: a blocked
  `x @ y.T` argmax one way, then `y @ x.T` the other way); with `--scorings cosine,csls,margin` also
  CSLS (k = 10) and ratio-margin (k = 4) retrieval (numpy: k-NN both ways for the radii, then a blocked
  argmax of the adjusted scores each way);
- mining: BUCC candidates with the ratio margin over k = 4 neighbourhoods and LASER's "max" strategy
  (`mining.mine`; numpy: k-NN both ways with a blocked product and `argpartition`, the margin, and the
  greedy one-to-one selection written out plainly).

Prints seconds per side and the ratio (numpy / xstilts), on 2 threads to reflect 2 cores, with the load
average before and after (other processes on the machine slow both sides). A full numpy run at n = 100,000
takes many minutes; with `--numpy-rows R` numpy searches only the first R rows in each direction, its time
is scaled to n rows (and marked "extrapolated"), and the agreement is checked on those rows: their
neighbours (and radii) must equal ours, and numpy's margin argmax and candidate selection, run with our so
checked neighbourhoods, must give exactly our answers. Disagreements are only accepted as float32
near-ties (scores within 1e-6), and are counted.

    python benchmarks/retrieval_speed.py --n 20000
    python benchmarks/retrieval_speed.py --n 100000 --numpy-rows 5000   # issue 4: 100k in under 60 s
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "2")  # before numpy and torch start their thread pools

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def numpy_knn(queries: np.ndarray, keys: np.ndarray, k: int, block: int = 4096):
    """Exact top-k (similarities, indices) by inner product, best first, in blocks of query rows."""
    sims = np.empty((len(queries), k), dtype=np.float32)
    ids = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), block):
        scores = queries[start : start + block] @ keys.T
        if k == 1:
            top = scores.argmax(axis=1)[:, None]
        else:
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
            top = np.take_along_axis(top, order, axis=1)
        ids[start : start + block] = top
        sims[start : start + block] = np.take_along_axis(scores, top, axis=1)
    return sims, ids


def numpy_unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def numpy_max_strategy(fwd_sims, fwd_ids, bwd_sims, bwd_ids) -> dict[tuple[int, int], float]:
    """Ratio margin over the neighbourhoods, each side's best candidate, greedy one-to-one by score."""
    r_src, r_tgt = fwd_sims.mean(axis=1), bwd_sims.mean(axis=1)
    fwd = fwd_sims.astype(np.float64) / ((r_src[:, None] + r_tgt[fwd_ids]).astype(np.float64) / 2)
    bwd = bwd_sims.astype(np.float64) / ((r_tgt[:, None] + r_src[bwd_ids]).astype(np.float64) / 2)
    pairs = [(i, int(fwd_ids[i, j]), float(fwd[i, j])) for i, j in enumerate(fwd.argmax(axis=1))]
    pairs += [(int(bwd_ids[t, j]), t, float(bwd[t, j])) for t, j in enumerate(bwd.argmax(axis=1))]
    used_src, used_tgt, kept = set(), set(), {}
    for s, t, score in sorted(pairs, key=lambda pair: -pair[2]):
        if s not in used_src and t not in used_tgt:
            used_src.add(s)
            used_tgt.add(t)
            kept[s, t] = score
    return kept


def adjust(scores: np.ndarray, r_query: np.ndarray, r_key: np.ndarray, scoring: str) -> np.ndarray:
    """Cosines of a block of queries to all keys, turned into the scoring's scores."""
    if scoring == "csls":
        return 2 * scores - r_query[:, None] - r_key[None, :]
    if scoring == "margin":
        return scores / ((r_query[:, None] + r_key[None, :]) / 2)
    return scores


def numpy_best(queries, keys, r_query, r_key, scoring: str, block: int = 4096) -> np.ndarray:
    """Index of the best key for each query by CSLS or margin: a blocked dense argmax."""
    best = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), block):
        scores = adjust(
            queries[start : start + block] @ keys.T, r_query[start : start + block], r_key, scoring
        )
        best[start : start + block] = scores.argmax(axis=1)
    return best


def hit_agreement(hits, numpy_hits, queries, keys, r_query=None, r_key=None, scoring="cosine") -> str:
    """How many rows disagree, and whether each is a float32 near-tie (best two within 1e-6)."""
    rows = np.flatnonzero(hits != numpy_hits)
    if len(rows) == 0:
        return "identical"
    pick = (r_query[rows], r_key) if scoring != "cosine" else (None, None)
    scores = adjust(queries[rows] @ keys.T, *pick, scoring)
    ties = all(abs(scores[i].max() - scores[i, row]) <= 1e-6 for i, row in enumerate(rows))
    return f"{len(rows)} differ, all near-ties: {ties}"


def neighbour_agreement(ours_sims, ours_ids, numpy_sims, numpy_ids) -> str:
    """Rows with identical neighbours; any other must hold the same similarities within 1e-6 (near-ties)."""
    differ = ~(ours_ids == numpy_ids).all(axis=1)
    ties = np.abs(ours_sims[differ] - numpy_sims[differ]).max(initial=0) <= 1e-6
    return "identical" if not differ.any() else f"{differ.sum()} rows differ, all near-ties: {ties}"


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def vectors(n: int, dim: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    return x, x + noise * rng.standard_normal((n, dim), dtype=np.float32)


def report(what: str, ours: float, theirs: float, extrapolated: bool, agreement: str) -> None:
    numpy = f"numpy {theirs:.1f} s" + (" (extrapolated)" if extrapolated else "")
    print(f"{what}: xstilts {ours:.1f} s, {numpy}, ratio {theirs / ours:.2f}x; {agreement}")


def numpy_neighbourhoods(xu: np.ndarray, yu: np.ndarray, k: int, sample: int):
    """k-NN of the first `sample` rows of x among y and of y among x."""
    return numpy_knn(xu[:sample], yu, k), numpy_knn(yu[:sample], xu, k)


def numpy_hits(xu, yu, sample: int, scoring: str = "cosine", r_x=None, r_y=None):
    """Top-1 hits of the first `sample` rows each way: cosine by 1-NN, CSLS or margin by a dense argmax."""
    rows = np.arange(sample)
    if scoring == "cosine":
        return numpy_knn(xu[:sample], yu, 1)[1][:, 0] == rows, numpy_knn(yu[:sample], xu, 1)[1][:, 0] == rows
    forward = numpy_best(xu[:sample], yu, r_x[:sample], r_y, scoring)
    return forward == rows, numpy_best(yu[:sample], xu, r_y[:sample], r_x, scoring) == rows


def retrieval(x, y, xu, yu, scoring: str, sample: int, check) -> tuple[float, float, str]:
    """Seconds for xstilts and numpy (on `sample` rows each way) and how their hits agree."""
    from xstilts.analysis.alignment import DEFAULT_K, retrieval_hits

    hits, ours = timed(retrieval_hits, x, y, scoring)
    r_x = r_y = None
    agreement, radii = "", 0.0
    if scoring != "cosine":
        k = DEFAULT_K[scoring]
        (fwd, bwd), radii = timed(numpy_neighbourhoods, xu, yu, k, sample)
        r_x, r_y = fwd[0].mean(axis=1), bwd[0].mean(axis=1)
        if check is not None:  # the sampled radii against ours; numpy's argmax needs every radius: ours
            ours_x, ours_y = check.forward_sims[:, :k].mean(axis=1), check.backward_sims[:, :k].mean(axis=1)
            gap = max(np.abs(ours_x[:sample] - r_x).max(), np.abs(ours_y[:sample] - r_y).max())
            agreement, r_x, r_y = f"radii of {sample:,} rows within {gap:.1e}; ", ours_x, ours_y
    (a_to_b, b_to_a), theirs = timed(numpy_hits, xu, yu, sample, scoring, r_x, r_y)
    forward = hit_agreement(hits["a_to_b"][:sample], a_to_b, xu[:sample], yu, r_x, r_y, scoring)
    backward = hit_agreement(hits["b_to_a"][:sample], b_to_a, yu[:sample], xu, r_y, r_x, scoring)
    accuracy = (hits["a_to_b"].mean() + hits["b_to_a"].mean()) / 2
    agreement += (
        f"hits of {sample:,} rows each way vs numpy: {forward} / {backward} (accuracy {accuracy:.3f})"
    )
    return ours, radii + theirs, agreement


def mining(x, y, xu, yu, k: int, sample: int, check) -> tuple[float, float, float, str]:
    """Seconds for xstilts, numpy's search (on `sample` rows each way) and its selection; agreement."""
    from xstilts.evaluate.mining import mine

    ids = list(range(len(x)))
    ours_mined, ours = timed(mine, x, ids, y, ids, k=k)
    ((fwd_sims, fwd_ids), (bwd_sims, bwd_ids)), search = timed(numpy_neighbourhoods, xu, yu, k, sample)
    agreement = ""
    if (
        check is not None
    ):  # numpy's neighbours of the sampled rows against ours, then numpy's selection on ours
        fwd = check.forward_sims[:, :k], check.forward_ids[:, :k]
        bwd = check.backward_sims[:, :k], check.backward_ids[:, :k]
        forward = neighbour_agreement(fwd[0][:sample], fwd[1][:sample], fwd_sims, fwd_ids)
        backward = neighbour_agreement(bwd[0][:sample], bwd[1][:sample], bwd_sims, bwd_ids)
        agreement = f"neighbours of {sample:,} rows each way vs numpy: {forward} / {backward}; "
        (fwd_sims, fwd_ids), (bwd_sims, bwd_ids) = fwd, bwd
    numpy_mined, select = timed(numpy_max_strategy, fwd_sims, fwd_ids, bwd_sims, bwd_ids)
    ours_scores = {(s, t): score for s, t, score in ours_mined}
    shared = ours_scores.keys() & numpy_mined.keys()
    gap = max((abs(ours_scores[pair] - numpy_mined[pair]) for pair in shared), default=0.0)
    agreement += (
        f"candidates: {len(ours_scores):,} ours, {len(numpy_mined):,} numpy, "
        f"{len(ours_scores.keys() ^ numpy_mined.keys())} differ, scores within {gap:.1e}"
    )
    return ours, search, select, agreement


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=4, help="neighbourhood size for mining")
    parser.add_argument("--noise", type=float, default=3.0, help="std of the noise added to x to make y")
    parser.add_argument("--numpy-rows", type=int, default=None, help="numpy searches only these rows")
    parser.add_argument("--scorings", default="cosine", help="retrieval scorings: cosine,csls,margin")
    args = parser.parse_args()

    import torch

    from xstilts.analysis.alignment import DEFAULT_K
    from xstilts.evaluate.mining import neighbourhoods, unit_vectors

    torch.set_num_threads(2)
    n, sample = args.n, min(args.numpy_rows or args.n, args.n)
    scale, extrapolated = n / sample, sample < n
    x, y = vectors(n, args.dim, args.noise)
    xu, yu = numpy_unit(x), numpy_unit(y)
    print(f"n = {n:,} x {n:,}, dimension {args.dim}, {torch.get_num_threads()} threads, ", end="")
    print(f"load average {os.getloadavg()[0]:.2f}" + (f", numpy on {sample:,} rows each way" * extrapolated))
    scorings = args.scorings.split(",")
    k_check = max([DEFAULT_K[scoring] for scoring in scorings] + [args.k])
    check = neighbourhoods(unit_vectors(x), unit_vectors(y), k_check) if extrapolated else None  # untimed

    for scoring in scorings:
        ours, theirs, agreement = retrieval(x, y, xu, yu, scoring, sample, check)
        report(f"retrieval (top-1 {scoring}, both directions)", ours, theirs * scale, extrapolated, agreement)
    ours, search, select, agreement = mining(x, y, xu, yu, args.k, sample, check)
    what = f"mining (k={args.k} neighbourhoods both ways, ratio margin, max strategy)"
    report(what, ours, search * scale + select, extrapolated, agreement)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
