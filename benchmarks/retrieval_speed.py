"""Sentence retrieval and mining speed: xstilts' k-NN search vs a straightforward exact numpy version.

Both sides get the same random unit vectors (n x n, dimension 384 by default) and do the same exact work:
top-1 retrieval by cosine in one direction, and the k=4 neighbourhoods both ways that ratio-margin mining
needs. The numpy side is what one writes first: a blocked `queries @ keys.T` and `argpartition`. Prints
seconds per side and the ratio; both must return the same neighbours.

    python benchmarks/retrieval_speed.py --n 20000          # issue 4's target is n = 100,000 in 60 s
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def numpy_knn(queries: np.ndarray, keys: np.ndarray, k: int, block: int = 4096) -> np.ndarray:
    """Exact top-k indices by inner product, best first, in blocks of query rows."""
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), block):
        sims = queries[start : start + block] @ keys.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
        out[start : start + block] = np.take_along_axis(top, order, axis=1)
    return out


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=4)
    args = parser.parse_args()

    from xstilts.evaluate.mining import knn, neighbourhoods, unit_vectors

    rng = np.random.default_rng(0)
    x = unit_vectors(rng.standard_normal((args.n, args.dim), dtype=np.float32))
    y = unit_vectors(x + 0.5 * rng.standard_normal((args.n, args.dim), dtype=np.float32) / args.dim**0.5)

    (_, ours_top1), ours_retrieval = timed(knn, x, y, 1)
    numpy_top1, numpy_retrieval = timed(numpy_knn, x, y, 1)
    assert np.array_equal(ours_top1[:, 0], numpy_top1[:, 0]), "top-1 neighbours differ"

    _, ours_mining = timed(neighbourhoods, x, y, args.k)

    def numpy_neighbourhoods():
        return numpy_knn(x, y, args.k), numpy_knn(y, x, args.k)

    _, numpy_mining = timed(numpy_neighbourhoods)

    print(f"n = {args.n:,} x {args.n:,}, dimension {args.dim}")
    print(f"retrieval (top-1, one direction): xstilts {ours_retrieval:.1f} s, numpy {numpy_retrieval:.1f} s, "
          f"ratio {numpy_retrieval / ours_retrieval:.2f}x")  # fmt: skip
    print(f"mining neighbourhoods (k={args.k}, both directions): xstilts {ours_mining:.1f} s, numpy "
          f"{numpy_mining:.1f} s, ratio {numpy_mining / ours_mining:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
