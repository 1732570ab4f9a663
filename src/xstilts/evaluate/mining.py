"""Parallel-sentence mining with margin scores: the BUCC 2018 protocol of LASER as XTREME runs it.

What XTREME does (`third_party/utils_retrieve.py`, adapted from LASER's `mine_bitext`, called from
`third_party/run_retrieval.py` with its defaults), and what this module reproduces:

1. Sentence vectors are L2-normalised float32, so inner product is cosine; exact k-NN (k = 4) runs in
   both directions: every source sentence against the targets and every target against the sources.
   XTREME searches with faiss `IndexFlatIP` (`knn(..., backend="faiss")`), once per direction; the default
   here (`knn_both_ways`) computes each block of the similarity matrix once, with torch, and takes both
   directions from it. It finds the same neighbours (float32, exact), runs on a GPU if present, and on 2
   CPU cores searches 100k x 100k x 384 both ways in about 40 s, about 30 s of it the matrix product
   (`benchmarks/retrieval_speed.py`; int8 and bf16 products were no faster there, so the default stays
   float32 and exact).
2. The ratio margin of a pair is cos(x, y) / ((r(x) + r(y)) / 2), where r(x) is the mean cosine of x to
   its k nearest targets and r(y) that of y to its k nearest sources. (LASER's other margins are here
   too: "distance" subtracts instead of dividing, "absolute" is the cosine; "csls" is 2 cos - r(x) - r(y).)
3. Candidates are generated with LASER's "max" strategy, the one XTREME uses: each source's best-scoring
   target among its k neighbours (forward) and each target's best source (backward) are pooled, sorted by
   score, and taken greedily so that no source and no target is used twice. ("fwd", "bwd" and
   "intersect", pairs that are each other's best, are available as well.)
4. The decision threshold is the one that maximises F1 on the gold pairs of the "sample" (dev) split,
   placed halfway between the score of the last pair kept and the next one (`best_threshold`); on the test
   split every candidate scoring at least that threshold is predicted (`mine_pairs`), and the result is
   scored with `metrics.bucc_f1`.

XTREME also embeds each distinct sentence once and drops, when mapping sentences back to ids, sentences
that occur under more than one id; `deduplicate` does the same on this side.

Nothing here builds a dense n x m similarity matrix (except `margin_scores` without pairs, meant for
small analysis sets): the k-NN searches run in query batches, so 100k x 100k sentences of dimension 384
need memory for the vectors, the k neighbours both ways and one block of similarities (256 MB) only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import faiss
import numpy as np

from xstilts.evaluate.checks import ScoringError

if TYPE_CHECKING:
    import torch

MARGINS = ("ratio", "distance", "absolute", "csls")
RETRIEVALS = ("max", "fwd", "bwd", "intersect")
Candidate = tuple[Hashable, Hashable, float]  # (source id, target id, margin score)
_DENSE_LIMIT = 50_000_000
_BLOCK_CELLS = 1 << 26  # similarities per block: 256 MB of float32
_CHUNK = 64  # columns per chunk whose maximum screens a row before its top-k
_ROW_CHUNK = 16  # rows per chunk whose maximum screens a column before the running merge
_CANDIDATES = 1 << 23  # candidate cells gathered at once when merging columns (64 MB of int64 positions)


def unit_vectors(vectors: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 copy with L2-normalised rows (all-zero rows stay zero)."""
    vectors = np.array(vectors, dtype=np.float32, order="C", copy=True)
    if vectors.ndim != 2:
        raise ScoringError(f"expected a 2-d array of sentence vectors, got shape {vectors.shape}")
    faiss.normalize_L2(vectors)
    return vectors


def _knn_faiss(queries: np.ndarray, keys: np.ndarray, k: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    index = faiss.IndexFlatIP(keys.shape[1])
    index.add(keys)
    sims = np.empty((len(queries), k), dtype=np.float32)
    ids = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), rows):
        block = queries[start : start + rows]
        sims[start : start + len(block)], ids[start : start + len(block)] = index.search(block, k)
    return sims, ids


def _row_topk(sims, k: int):
    """Exact top-k of every row of a block, best first, screening column chunks by their maximum.

    torch.topk over 100k columns costs about 1 ns a cell on a CPU, a chunk maximum a fifth of that. The
    k chunks with the largest maxima hold every value above the row's k-th largest (each such value lifts
    its own chunk's maximum above it), so a top-k over those k chunks alone gives the same values.
    """
    import torch

    n_rows, n_cols = sims.shape
    if n_cols <= 4 * k * _CHUNK:
        return torch.topk(sims, k, dim=1)
    whole = n_cols - n_cols % _CHUNK
    maxima = sims[:, :whole].view(n_rows, -1, _CHUNK).amax(dim=2)
    if whole < n_cols:
        maxima = torch.cat([maxima, sims[:, whole:].amax(dim=1, keepdim=True)], dim=1)
    chunks = torch.topk(maxima, k, dim=1).indices
    cols = (chunks[:, :, None] * _CHUNK + torch.arange(_CHUNK, device=sims.device)).view(n_rows, -1)
    outside = cols >= n_cols  # the last chunk may be short
    values = sims.gather(1, cols.clamp_(max=n_cols - 1)).masked_fill_(outside, -math.inf)
    top = torch.topk(values, k, dim=1)
    return top.values, cols.gather(1, top.indices)


class _ColumnTopK:
    """The running top-k of every column over the row blocks seen so far: the backward search.

    Blocks are screened by the maxima of their row chunks: only (chunk, column) pairs whose maximum beats
    the column's current k-th best are merged (that chunk's rows; when several chunks of a column beat,
    the block's top-k of the column, from its k best chunks as in `_row_topk`). After the first few blocks
    that is a small fraction of the columns, so the backward direction costs about one chunk-maximum pass
    over each block rather than a column top-k (which on a CPU costs more than the matrix product).
    """

    def __init__(self, n_cols: int, k: int, chunk: int, device) -> None:
        import torch

        self.chunk = chunk
        self.values = torch.full((n_cols, k), -math.inf, device=device)  # best first
        self.ids = torch.full((n_cols, k), -1, dtype=torch.int64, device=device)

    def update(self, sims, first_row: int) -> None:
        """Merge a [rows, n_cols] block of whole chunks (padded with -inf rows) that starts at `first_row`."""
        import torch

        n_cols, k = self.values.shape
        maxima = sims.view(-1, self.chunk, n_cols).amax(dim=1)  # [n_chunks, n_cols]
        if first_row == 0:  # nothing to screen against yet: every column takes the block's top-k
            many = torch.arange(n_cols, device=sims.device)
        else:
            hit_col, hit_chunk = (maxima.T > self.values[:, -1:]).nonzero(as_tuple=True)  # by column
            counts = torch.bincount(hit_col, minlength=n_cols)
            once = counts[hit_col] == 1  # most columns with a hit, after the first blocks: that chunk alone
            cols = hit_col[once]
            rows = hit_chunk[once, None] * self.chunk + torch.arange(self.chunk, device=sims.device)
            self._merge(cols, sims.take(rows * n_cols + cols[:, None]), first_row + rows)
            many = (counts > 1).nonzero()[:, 0]  # columns hit in several chunks: the block's top-k
        n_best = min(k, len(maxima))  # chunks per column that can hold the block's top-k
        for part in many.split(max(1, _CANDIDATES // (n_best * self.chunk))) if len(many) else ():
            self._merge_block_topk(sims, maxima, part, first_row)  # in parts: bounded temporaries

    def _merge_block_topk(self, sims, maxima, cols, first_row: int) -> None:
        """Merge the block's own top-k of each listed column, read from its k chunks with largest maxima."""
        import torch

        n_cols, k = self.values.shape
        chunks = torch.topk(maxima[:, cols], min(k, len(maxima)), dim=0).indices.T  # [n, k]
        steps = torch.arange(0, self.chunk * n_cols, n_cols, device=sims.device)  # down one chunk
        cells = (chunks * (self.chunk * n_cols) + cols[:, None])[:, :, None] + steps  # flat positions
        top = torch.topk(sims.take(cells.flatten(1)), min(k, cells[0].numel()), dim=1)
        chosen = chunks.gather(1, top.indices // self.chunk) * self.chunk + top.indices % self.chunk
        self._merge(cols, top.values, first_row + chosen)

    def _merge(self, cols, values, ids) -> None:
        """The top-k of each listed column among its running best and the new candidates (rows of values)."""
        import torch

        values = torch.cat([self.values[cols], values], dim=1)
        top = torch.topk(values, self.values.shape[1], dim=1)
        self.values[cols] = top.values
        self.ids[cols] = torch.cat([self.ids[cols], ids], dim=1).gather(1, top.indices)


Rescore = Callable[["torch.Tensor", int], None]


def _search_torch(
    queries: np.ndarray,
    keys: np.ndarray,
    k: int,
    rows: int,
    device: str | None,
    both_ways: bool = False,
    rescore: Rescore | None = None,
) -> tuple[np.ndarray, ...]:
    """Blocked exact search: top-k keys of every query and, with `both_ways`, top-k queries of every key,
    both taken from the same blocks of similarities, so the matrix product is computed once."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    n_queries, n_keys = len(queries), len(keys)
    k_fwd, k_bwd = min(k, n_keys), min(k, n_queries)
    chunk = min(_ROW_CHUNK, rows, n_queries)
    rows = -(-min(rows, n_queries) // chunk) * chunk  # whole chunks, so the backward screen can view them
    fwd_sims = np.empty((n_queries, k_fwd), dtype=np.float32)
    fwd_ids = np.empty((n_queries, k_fwd), dtype=np.int64)
    with torch.inference_mode():
        keys_t = torch.from_numpy(keys).to(device).T
        backward = _ColumnTopK(n_keys, k_bwd, chunk, device) if both_ways else None
        buffer = torch.empty((rows, n_keys), dtype=torch.float32, device=device)  # reused: no page faults
        for start in range(0, n_queries, rows):
            block = torch.from_numpy(queries[start : start + rows]).to(device)
            n = len(block)
            sims = torch.mm(block, keys_t, out=buffer[:n])
            if rescore is not None:
                rescore(sims, start)
            values, ids = _row_topk(sims, k_fwd)
            fwd_sims[start : start + n], fwd_ids[start : start + n] = values.cpu().numpy(), ids.cpu().numpy()
            if backward is not None:
                padded = -(-n // chunk) * chunk
                buffer[n:padded] = -math.inf
                backward.update(buffer[:padded], start)
    if backward is None:
        return fwd_sims, fwd_ids
    return fwd_sims, fwd_ids, backward.values.cpu().numpy(), backward.ids.cpu().numpy()


def _checked(queries: np.ndarray, keys: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """C-contiguous float32 copies of a valid query/key pair (or a ScoringError)."""
    if queries.ndim != 2 or keys.ndim != 2 or queries.shape[1] != keys.shape[1]:
        raise ScoringError(f"queries have shape {queries.shape}, keys {keys.shape}: dimension mismatch")
    if len(keys) == 0 or k < 1:
        raise ScoringError(f"k-NN needs keys and k >= 1 (got {len(keys)} keys, k={k})")
    return np.ascontiguousarray(queries, dtype=np.float32), np.ascontiguousarray(keys, dtype=np.float32)


def _block_rows(batch_size: int | None, n_keys: int) -> int:
    """Query rows per block: `batch_size`, or as many as fit 256 MB of similarities."""
    return batch_size or max(1, min(16_384, _BLOCK_CELLS // n_keys))


def knn(
    queries: np.ndarray,
    keys: np.ndarray,
    k: int,
    batch_size: int | None = None,
    backend: str = "torch",
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest keys by inner product for each query: (similarities, indices), [n, k], best first.

    Pass unit vectors (`unit_vectors`) to search by cosine. k is capped at the number of keys, as LASER
    does. Queries are processed `batch_size` rows at a time, so at most a [batch_size, n_keys] block of
    similarities exists at once (by default about 256 MB of it). Backends: "torch" (blocked matrix product,
    each row's top-k screened by chunk maxima, on `device`, by default the GPU when there is one) or
    "faiss" (`IndexFlatIP`, what LASER and XTREME use). Both are exact in float32; among exactly equal
    similarities which index comes back is unspecified. On a 2-core CPU the torch backend measured about
    3x faster than faiss's flat index for 20k x 20k x 384. For both directions use `knn_both_ways`.
    """
    queries, keys = _checked(np.asarray(queries), np.asarray(keys), k)
    if len(queries) == 0:
        return np.empty((0, min(k, len(keys))), np.float32), np.empty((0, min(k, len(keys))), np.int64)
    rows = _block_rows(batch_size, len(keys))
    if backend == "faiss":
        return _knn_faiss(queries, keys, min(k, len(keys)), rows)
    if backend == "torch":
        return _search_torch(queries, keys, k, rows, device)
    raise ScoringError(f"unknown k-NN backend {backend!r}; valid: faiss, torch")


@dataclass(frozen=True)
class Neighbourhoods:
    """k-NN of unit source vectors among targets (forward) and of targets among sources (backward)."""

    forward_sims: np.ndarray  # [n_source, k] cosines, best first
    forward_ids: np.ndarray  # [n_source, k] target rows
    backward_sims: np.ndarray  # [n_target, k]
    backward_ids: np.ndarray  # [n_target, k] source rows

    @property
    def source_radius(self) -> np.ndarray:
        """r(x): mean cosine of each source to its k nearest targets."""
        return self.forward_sims.mean(axis=1)

    @property
    def target_radius(self) -> np.ndarray:
        """r(y): mean cosine of each target to its k nearest sources."""
        return self.backward_sims.mean(axis=1)


def knn_both_ways(
    queries: np.ndarray,
    keys: np.ndarray,
    k: int,
    batch_size: int | None = None,
    backend: str = "torch",
    device: str | None = None,
    rescore: Rescore | None = None,
) -> Neighbourhoods:
    """Exact k-NN of every query among the keys and of every key among the queries, in one pass.

    With the torch backend each [batch_size, n_keys] block of similarities is computed once and serves both
    directions: its rows give the forward top-k, and a running top-k per column, merged block by block,
    gives the backward one; this halves the matrix products of two `knn` calls, which at 100k x 100k are
    most of the time. The results equal those two calls up to float32 rounding of the products (the
    backward similarities come from queries @ keys.T rather than keys @ queries.T) and the order among
    exact ties. `rescore(block, first_query_row)`, if given, rewrites each block in place before the
    search (CSLS and margin retrieval search their adjusted scores this way). The faiss backend runs two
    `IndexFlatIP` searches, as XTREME does, and takes no `rescore`.
    """
    queries, keys = _checked(np.asarray(queries), np.asarray(keys), k)
    if len(queries) == 0:
        raise ScoringError("a search both ways needs queries as well as keys")
    rows = _block_rows(batch_size, len(keys))
    if backend == "faiss" and rescore is None:
        forward = _knn_faiss(queries, keys, min(k, len(keys)), rows)
        backward = _knn_faiss(keys, queries, min(k, len(queries)), _block_rows(batch_size, len(queries)))
        return Neighbourhoods(*forward, *backward)
    if backend == "torch":
        return Neighbourhoods(*_search_torch(queries, keys, k, rows, device, both_ways=True, rescore=rescore))
    raise ScoringError(f"unknown k-NN backend {backend!r} (with rescore, torch only); valid: faiss, torch")


def neighbourhoods(source: np.ndarray, target: np.ndarray, k: int = 4, **search) -> Neighbourhoods:
    """Both k-NN directions between two sets of unit vectors (`search`: knn's batch_size, backend, device)."""
    return knn_both_ways(source, target, k, **search)


def apply_margin(cosine, source_radius, target_radius, margin: str = "ratio") -> np.ndarray:
    """The margin score of pairs from their cosine and the two neighbourhood radii (broadcasting)."""
    cosine = np.asarray(cosine, dtype=np.float64)
    mean_radius = (
        np.asarray(source_radius, dtype=np.float64) + np.asarray(target_radius, dtype=np.float64)
    ) / 2
    if margin == "ratio":
        return cosine / mean_radius
    if margin == "distance":
        return cosine - mean_radius
    if margin == "csls":
        return 2 * cosine - 2 * mean_radius
    if margin == "absolute":
        return np.broadcast_arrays(cosine, mean_radius)[0].copy()
    raise ScoringError(f"unknown margin {margin!r}; valid margins: {', '.join(MARGINS)}")


def margin_scores(
    source_vectors: np.ndarray,
    target_vectors: np.ndarray,
    pairs: tuple[Sequence[int], Sequence[int]] | None = None,
    k: int = 4,
    margin: str = "ratio",
    **search,
) -> np.ndarray:
    """Margin scores between source and target rows, for reuse in analyses (CSLS with margin="csls").

    With `pairs` = (source rows, target rows) the scores of those pairs, one per pair; without it the
    dense [n_source, n_target] matrix, refused above 50M cells. The radii always come from the full k-NN.
    """
    if pairs is None and len(source_vectors) * len(target_vectors) > _DENSE_LIMIT:
        n, m = len(source_vectors), len(target_vectors)
        raise ScoringError(f"a dense {n} x {m} margin matrix is too big; pass pairs=")
    source, target = unit_vectors(source_vectors), unit_vectors(target_vectors)
    hood = neighbourhoods(source, target, k, **search)
    if pairs is None:
        cosine = source @ target.T
        return apply_margin(cosine, hood.source_radius[:, None], hood.target_radius[None, :], margin)
    rows, cols = np.asarray(pairs[0], dtype=np.int64), np.asarray(pairs[1], dtype=np.int64)
    cosine = np.einsum("ij,ij->i", source[rows], target[cols])
    return apply_margin(cosine, hood.source_radius[rows], hood.target_radius[cols], margin)


def deduplicate(texts: Sequence[str], ids: Sequence[Hashable]) -> tuple[list[int], list[Hashable | None]]:
    """Rows to embed (the first occurrence of each distinct stripped text) and their ids for mining.

    A text that occurs under several ids gets the id None: XTREME cannot map it back to one id and drops
    every candidate pair that involves it (`mine` skips None ids the same way).
    """
    if len(texts) != len(ids):
        raise ScoringError(f"{len(texts)} sentences for {len(ids)} ids")
    first: dict[str, int] = {}
    repeated: set[str] = set()
    for row, text in enumerate(texts):
        key = text.strip()
        if key in first:
            repeated.add(key)
        else:
            first[key] = row
    rows = list(first.values())
    return rows, [None if texts[row].strip() in repeated else ids[row] for row in rows]


def _greedy_one_to_one(src: np.ndarray, tgt: np.ndarray, scores: np.ndarray) -> list[int]:
    """Positions of the pairs kept by LASER's "max" strategy: best score first, each side used once."""
    seen_src, seen_tgt, kept = set(), set(), []
    for position in np.argsort(-scores, kind="stable"):
        s, t = int(src[position]), int(tgt[position])
        if s not in seen_src and t not in seen_tgt:
            seen_src.add(s)
            seen_tgt.add(t)
            kept.append(int(position))
    return kept


def mine(
    source_vectors: np.ndarray,
    source_ids: Sequence[Hashable | None],
    target_vectors: np.ndarray,
    target_ids: Sequence[Hashable | None],
    k: int = 4,
    retrieval: str = "max",
    margin: str = "ratio",
    **search,
) -> list[Candidate]:
    """Candidate pairs (source id, target id, margin score), best first, with XTREME's settings by default.

    Row i of `source_vectors` is the sentence `source_ids[i]` (likewise for targets); pairs involving a
    None id (see `deduplicate`) are left out. `search` goes to `knn` (batch_size, backend, device).
    """
    if retrieval not in RETRIEVALS:
        raise ScoringError(f"unknown retrieval {retrieval!r}; valid: {', '.join(RETRIEVALS)}")
    if len(source_vectors) != len(source_ids) or len(target_vectors) != len(target_ids):
        raise ScoringError(
            f"{len(source_vectors)} source vectors for {len(source_ids)} ids, "
            f"{len(target_vectors)} target vectors for {len(target_ids)} ids"
        )
    if len(source_vectors) == 0 or len(target_vectors) == 0:
        return []
    source, target = unit_vectors(source_vectors), unit_vectors(target_vectors)
    hood = neighbourhoods(source, target, k, **search)
    src_r, tgt_r = hood.source_radius, hood.target_radius
    forward = apply_margin(hood.forward_sims, src_r[:, None], tgt_r[hood.forward_ids], margin)
    backward = apply_margin(hood.backward_sims, tgt_r[:, None], src_r[hood.backward_ids], margin)
    n_src, n_tgt = len(source), len(target)
    fwd_col, bwd_col = forward.argmax(axis=1), backward.argmax(axis=1)
    fwd_tgt, fwd_score = hood.forward_ids[np.arange(n_src), fwd_col], forward[np.arange(n_src), fwd_col]
    bwd_src, bwd_score = hood.backward_ids[np.arange(n_tgt), bwd_col], backward[np.arange(n_tgt), bwd_col]
    if retrieval == "fwd":
        src, tgt, scores = np.arange(n_src), fwd_tgt, fwd_score
    elif retrieval == "bwd":
        src, tgt, scores = bwd_src, np.arange(n_tgt), bwd_score
    elif retrieval == "intersect":
        mutual = bwd_src[fwd_tgt] == np.arange(n_src)
        src, tgt, scores = np.arange(n_src)[mutual], fwd_tgt[mutual], fwd_score[mutual]
    else:
        src = np.concatenate([np.arange(n_src), bwd_src])
        tgt = np.concatenate([fwd_tgt, np.arange(n_tgt)])
        scores = np.concatenate([fwd_score, bwd_score])
        kept = _greedy_one_to_one(src, tgt, scores)
        src, tgt, scores = src[kept], tgt[kept], scores[kept]
    order = np.argsort(-scores, kind="stable")
    return [
        (source_ids[src[i]], target_ids[tgt[i]], float(scores[i]))
        for i in order
        if source_ids[src[i]] is not None and target_ids[tgt[i]] is not None
    ]


def _best_scores(candidates: Iterable[Candidate]) -> dict[tuple[Hashable, Hashable], float]:
    """One score per (source, target) pair: the highest, as XTREME's candidate reader keeps."""
    best: dict[tuple[Hashable, Hashable], float] = {}
    for source_id, target_id, score in candidates:
        pair = (source_id, target_id)
        best[pair] = max(float(score), best.get(pair, float(score)))
    return best


def best_threshold(candidates: Iterable[Candidate], gold: Iterable[tuple[Hashable, Hashable]]) -> float:
    """The score threshold that maximises F1 of `mine_pairs(candidates, threshold)` against `gold`.

    Candidates are swept from the best score down; at the best cut the threshold is the midpoint between
    the last kept score and the next one (the lowest kept score when nothing is left below). Tied scores
    are kept or dropped together, since no threshold can separate them. When no candidate is correct every
    threshold scores F1 = 0 and, as in XTREME, 0.0 is returned.
    """
    gold = {(source_id, target_id) for source_id, target_id in gold}
    if not gold:
        raise ScoringError("threshold tuning needs at least one gold pair")
    items = sorted(_best_scores(candidates).items(), key=lambda item: -item[1])
    threshold, best_f1, correct = 0.0, 0.0, 0
    for i, (pair, score) in enumerate(items):
        correct += pair in gold
        if i + 1 < len(items) and items[i + 1][1] == score:
            continue  # the cut can only fall between different scores
        if correct == 0:
            continue
        precision, recall = correct / (i + 1), correct / len(gold)
        f1 = 2 * precision * recall / (precision + recall)
        if f1 > best_f1:
            best_f1 = f1
            threshold = (score + items[i + 1][1]) / 2 if i + 1 < len(items) else score
    return threshold


def mine_pairs(candidates: Iterable[Candidate], threshold: float) -> set[tuple[Hashable, Hashable]]:
    """The (source id, target id) pairs whose score is at least `threshold`."""
    return {pair for pair, score in _best_scores(candidates).items() if score >= threshold}
