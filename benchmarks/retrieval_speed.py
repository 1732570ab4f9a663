"""Sentence retrieval and mining speed: xstilts against a straightforward exact numpy version, same vectors.

Both sides get the same random vectors (n x n, dimension 384 by default; y is a noisy copy of x, so most but
not all sentences find their translation) and must give the same answers:

- retrieval: top-1 cosine retrieval in both directions (`alignment.retrieval_hits`; numpy: a blocked
  `x @ y.T` argmax one way, then `y @ x.T` the other way);
- mining: BUCC candidates with the ratio margin over k = 4 neighbourhoods and LASER's "max" strategy
  (`mining.mine`; numpy: k-NN both ways with a blocked product and `argpartition`, the margin, and the
  greedy one-to-one selection written out plainly).

Prints seconds per side and the ratio (numpy / xstilts), on 2 threads to reflect 2 cores. A full numpy run at
n = 100,000 takes many minutes; with `--numpy-rows R` numpy searches only the first R rows in each
direction, its time is extrapolated to n rows (and said so), and the agreement is checked on those rows:
the neighbours of the sampled rows must equal ours, and the numpy candidate selection run on our (so
checked) neighbourhoods must give exactly our candidates.

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


def near_tie_misses(hits: np.ndarray, numpy_hits: np.ndarray, queries: np.ndarray, keys: np.ndarray) -> str:
    """How many rows disagree, and whether each is a float32 near-tie (best two within 1e-6)."""
    rows = np.flatnonzero(hits != numpy_hits)
    scores = queries[rows] @ keys.T
    ties = all(abs(scores[i].max() - scores[i, row]) <= 1e-6 for i, row in enumerate(rows))
    return "identical" if len(rows) == 0 else f"{len(rows)} differ, all near-ties: {ties}"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--noise", type=float, default=3.0, help="std of the noise added to x to make y")
    parser.add_argument("--numpy-rows", type=int, default=None, help="numpy searches only these rows")
    args = parser.parse_args()

    import torch

    from xstilts.analysis.alignment import retrieval_hits
    from xstilts.evaluate.mining import mine, neighbourhoods, unit_vectors

    torch.set_num_threads(2)
    n, sample = args.n, min(args.numpy_rows or args.n, args.n)
    x, y = vectors(n, args.dim, args.noise)
    ids = list(range(n))
    load = os.getloadavg()[0]
    print(f"n = {n:,} x {n:,}, dimension {args.dim}, {torch.get_num_threads()} threads, load {load:.2f}")

    ours_hits, ours_retrieval = timed(retrieval_hits, x, y)
    rows = np.arange(sample)

    def numpy_retrieval():
        xu, yu = numpy_unit(x), numpy_unit(y)  # inside: normalising is part of the work
        return numpy_knn(xu[:sample], yu, 1)[1][:, 0] == rows, numpy_knn(yu[:sample], xu, 1)[1][:, 0] == rows

    (a_to_b, b_to_a), numpy_retrieval_s = timed(numpy_retrieval)
    xu, yu = numpy_unit(x), numpy_unit(y)
    forward = near_tie_misses(ours_hits["a_to_b"][:sample], a_to_b, xu[:sample], yu)
    backward = near_tie_misses(ours_hits["b_to_a"][:sample], b_to_a, yu[:sample], xu)
    accuracy = (ours_hits["a_to_b"].mean() + ours_hits["b_to_a"].mean()) / 2
    report(
        "retrieval (top-1 cosine, both directions)",
        ours_retrieval,
        numpy_retrieval_s * n / sample,
        sample < n,
        f"hits of {sample:,} rows each way vs numpy: {forward} / {backward} (accuracy {accuracy:.3f})",
    )

    ours_mined, ours_mining = timed(mine, x, ids, y, ids, k=args.k)

    def numpy_neighbourhoods():
        return numpy_knn(xu[:sample], yu, args.k), numpy_knn(yu[:sample], xu, args.k)

    ((fwd_sims, fwd_ids), (bwd_sims, bwd_ids)), numpy_search = timed(numpy_neighbourhoods)
    agreement = ""
    if sample < n:  # numpy's neighbours of the sampled rows against ours, then numpy's selection on ours
        hood = neighbourhoods(unit_vectors(x), unit_vectors(y), args.k)
        top = slice(0, sample)
        forward = neighbour_agreement(hood.forward_sims[top], hood.forward_ids[top], fwd_sims, fwd_ids)
        backward = neighbour_agreement(hood.backward_sims[top], hood.backward_ids[top], bwd_sims, bwd_ids)
        agreement = f"neighbours of {sample:,} rows each way vs numpy: {forward} / {backward}; "
        fwd_sims, fwd_ids = hood.forward_sims, hood.forward_ids
        bwd_sims, bwd_ids = hood.backward_sims, hood.backward_ids
    numpy_mined, numpy_select = timed(numpy_max_strategy, fwd_sims, fwd_ids, bwd_sims, bwd_ids)
    ours_scores = {(s, t): score for s, t, score in ours_mined}
    shared = ours_scores.keys() & numpy_mined.keys()
    gap = max((abs(ours_scores[pair] - numpy_mined[pair]) for pair in shared), default=0.0)
    agreement += (
        f"candidates: {len(ours_scores):,} ours, {len(numpy_mined):,} numpy, "
        f"{len(ours_scores.keys() ^ numpy_mined.keys())} differ, scores within {gap:.1e}"
    )
    report(
        f"mining (k={args.k} neighbourhoods both ways, ratio margin, max strategy)",
        ours_mining,
        numpy_search * n / sample + numpy_select,
        sample < n,
        agreement,
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
