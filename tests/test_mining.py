"""BUCC mining: margin scores against numpy, a planted permutation, threshold tuning worked by hand."""

import numpy as np
import pytest

from xstilts.evaluate import mining
from xstilts.evaluate.metrics import bucc_f1
from xstilts.evaluate.mining import (
    apply_margin,
    best_threshold,
    deduplicate,
    knn,
    knn_both_ways,
    margin_scores,
    mine,
    mine_pairs,
    unit_vectors,
)


def _numpy_margins(x: np.ndarray, y: np.ndarray, k: int):
    """Cosine matrix and the two radii computed directly: mean of the k largest cosines per row/column."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = y / np.linalg.norm(y, axis=1, keepdims=True)
    cos = x.astype(np.float64) @ y.T.astype(np.float64)
    r_x = np.sort(cos, axis=1)[:, -k:].mean(axis=1)
    r_y = np.sort(cos, axis=0)[-k:, :].mean(axis=0)
    return cos, r_x, r_y


def test_margin_scores_match_a_direct_numpy_computation():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(20, 8)), rng.normal(size=(25, 8))
    cos, r_x, r_y = _numpy_margins(x, y, k=4)
    ratio = cos / ((r_x[:, None] + r_y[None, :]) / 2)
    np.testing.assert_allclose(margin_scores(x, y, k=4), ratio, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        margin_scores(x, y, k=4, margin="csls"), 2 * cos - r_x[:, None] - r_y[None, :], atol=1e-5
    )
    np.testing.assert_allclose(
        margin_scores(x, y, k=4, margin="distance"), cos - (r_x[:, None] + r_y[None, :]) / 2, atol=1e-5
    )
    np.testing.assert_allclose(margin_scores(x, y, k=4, margin="absolute"), cos, atol=1e-5)
    rows, cols = np.array([0, 3, 19]), np.array([24, 3, 0])
    np.testing.assert_allclose(margin_scores(x, y, (rows, cols), k=4), ratio[rows, cols], rtol=1e-5)
    with pytest.raises(ValueError, match="too big; pass pairs="):
        margin_scores(np.zeros((10_000, 2)), np.zeros((10_000, 2)))
    with pytest.raises(ValueError, match="unknown margin"):
        apply_margin(1.0, 1.0, 1.0, "cosine")


def test_forward_candidates_are_the_best_margin_among_the_k_nearest():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 6)), rng.normal(size=(40, 6))
    k = 4
    cos, r_x, r_y = _numpy_margins(x, y, k)
    ratio = cos / ((r_x[:, None] + r_y[None, :]) / 2)
    src_ids, tgt_ids = [f"s{i}" for i in range(30)], [f"t{j}" for j in range(40)]
    mined = mine(x, src_ids, y, tgt_ids, k=k, retrieval="fwd")
    assert len(mined) == 30
    scores = [score for _, _, score in mined]
    assert scores == sorted(scores, reverse=True)
    for source, target, score in mined:
        i, j = int(source[1:]), int(target[1:])
        neighbours = np.argsort(-cos[i])[:k]
        best = neighbours[np.argmax(ratio[i, neighbours])]
        assert j == best
        assert score == pytest.approx(ratio[i, j], rel=1e-5)


def test_planted_permutation_is_recovered_exactly_by_every_strategy():
    rng = np.random.default_rng(0)
    n = 300
    target = rng.normal(size=(n, 32)).astype(np.float32)
    perm = rng.permutation(n)
    source = target[perm] + 0.05 * rng.normal(size=(n, 32)).astype(np.float32)
    src_ids, tgt_ids = [f"de-{i:04d}" for i in range(n)], [f"en-{j:04d}" for j in range(n)]
    expected = {(src_ids[i], tgt_ids[perm[i]]) for i in range(n)}
    for retrieval in ("max", "fwd", "bwd", "intersect"):
        mined = mine(source, src_ids, target, tgt_ids, retrieval=retrieval)
        assert {(s, t) for s, t, _ in mined} == expected, retrieval
    # the max strategy never uses a sentence twice, even with more targets than sources
    distractors = rng.normal(size=(100, 32)).astype(np.float32)
    mined = mine(source, src_ids, np.vstack([target, distractors]), tgt_ids + [f"x{j}" for j in range(100)])
    assert len({s for s, _, _ in mined}) == len(mined) == len({t for _, t, _ in mined})
    assert expected <= {(s, t) for s, t, _ in mined}
    threshold = best_threshold(mined, expected)
    assert bucc_f1(mine_pairs(mined, threshold), expected) == 1.0


def test_knn_batches_and_caps_k():
    rng = np.random.default_rng(3)
    keys = unit_vectors(rng.normal(size=(3, 5)))
    queries = unit_vectors(rng.normal(size=(10, 5)))
    sims, ids = knn(queries, keys, k=10, batch_size=4)  # three batches, k capped at 3 keys
    assert sims.shape == ids.shape == (10, 3)
    np.testing.assert_allclose(sims, np.sort(queries @ keys.T, axis=1)[:, ::-1], atol=1e-6)
    assert mine(np.zeros((0, 5)), [], keys, ["a", "b", "c"]) == []
    with pytest.raises(ValueError, match="unknown k-NN backend"):
        knn(queries, keys, 1, backend="annoy")
    with pytest.raises(ValueError, match="dimension"):
        knn(queries, keys[:, :4], 1)
    with pytest.raises(ValueError, match="2 source vectors for 3 ids"):
        mine(queries[:2], ["a", "b", "c"], keys, ["x", "y", "z"])
    with pytest.raises(ValueError, match="unknown retrieval"):
        mine(queries, list("abcdefghij"), keys, list("xyz"), retrieval="both")


def test_torch_and_faiss_backends_find_the_same_neighbours():
    rng = np.random.default_rng(4)
    queries, keys = unit_vectors(rng.normal(size=(500, 24))), unit_vectors(rng.normal(size=(700, 24)))
    torch_sims, torch_ids = knn(queries, keys, 4, batch_size=64, backend="torch", device="cpu")
    faiss_sims, faiss_ids = knn(queries, keys, 4, backend="faiss")
    np.testing.assert_array_equal(torch_ids, faiss_ids)
    np.testing.assert_allclose(torch_sims, faiss_sims, atol=1e-5)
    x, y = rng.normal(size=(50, 8)), rng.normal(size=(60, 8))
    by_faiss = mine(x, list(range(50)), y, list(range(60)), backend="faiss")
    by_torch = mine(x, list(range(50)), y, list(range(60)), backend="torch")
    assert [(s, t) for s, t, _ in by_faiss] == [(s, t) for s, t, _ in by_torch]
    np.testing.assert_allclose([c[2] for c in by_faiss], [c[2] for c in by_torch], rtol=1e-5)


def _assert_exact_top_k(scores: np.ndarray, sims: np.ndarray, ids: np.ndarray, k: int) -> None:
    """sims are the k largest of each row of `scores`, best first, and ids point at them (ties: any)."""
    np.testing.assert_array_equal(sims, -np.sort(-scores, axis=1)[:, :k])
    np.testing.assert_array_equal(np.take_along_axis(scores, ids, axis=1), sims)
    assert all(len(set(row)) == k for row in ids.tolist())


def test_one_pass_both_ways_is_exact_on_integer_vectors_with_ties(monkeypatch):
    # small integers: every product is exact in float32, so values must match to the bit; ties abound,
    # and among tied similarities any index may come back
    rng = np.random.default_rng(6)
    queries = rng.integers(-3, 4, size=(1037, 12)).astype(np.float32)  # not a whole number of blocks
    keys = rng.integers(-3, 4, size=(1301, 12)).astype(np.float32)  # > 4 k chunks: chunk-screened rows
    scores = queries @ keys.T
    for k, batch_size, candidates in ((3, 100, 1 << 23), (1, 37, 1 << 23), (5, 2000, 1 << 23), (4, 300, 500)):
        monkeypatch.setattr(mining, "_CANDIDATES", candidates)  # the last: columns merged in many parts
        hood = knn_both_ways(queries, keys, k, batch_size=batch_size)
        _assert_exact_top_k(scores, hood.forward_sims, hood.forward_ids, k)
        _assert_exact_top_k(scores.T, hood.backward_sims, hood.backward_ids, k)


def test_one_pass_both_ways_equals_two_searches():
    rng = np.random.default_rng(7)
    queries, keys = unit_vectors(rng.normal(size=(900, 32))), unit_vectors(rng.normal(size=(1400, 32)))
    hood = knn_both_ways(queries, keys, 4, batch_size=120)  # 8 blocks: the running column merge works
    fwd_sims, fwd_ids = knn(queries, keys, 4, batch_size=120)
    bwd_sims, bwd_ids = knn(keys, queries, 4, batch_size=120)
    np.testing.assert_array_equal(hood.forward_ids, fwd_ids)
    np.testing.assert_array_equal(hood.forward_sims, fwd_sims)
    np.testing.assert_array_equal(hood.backward_ids, bwd_ids)  # no near-ties in this draw
    np.testing.assert_allclose(hood.backward_sims, bwd_sims, atol=1e-6)  # keys @ queries.T rounds apart
    by_faiss = knn_both_ways(queries, keys, 4, backend="faiss")
    np.testing.assert_array_equal(by_faiss.backward_ids, bwd_ids)
    # k is capped per direction: 3 queries have at most 3 neighbours among them
    few = knn_both_ways(queries[:3], keys, 5)
    assert few.forward_ids.shape == (3, 5) and few.backward_ids.shape == (1400, 3)
    with pytest.raises(ValueError, match="torch only"):
        knn_both_ways(queries, keys, 1, backend="faiss", rescore=lambda block, first_row: None)
    with pytest.raises(ValueError, match="needs queries"):
        knn_both_ways(queries[:0], keys, 1)


def test_best_threshold_by_hand():
    candidates = [("a", "1", 1.5), ("b", "2", 1.4), ("c", "9", 1.3), ("d", "4", 1.2), ("e", "8", 1.0)]
    gold = {("a", "1"), ("b", "2"), ("d", "4"), ("f", "6")}
    # cut after 1, 2, 3, 4, 5 candidates: F1 = 0.4, 2/3, 4/7, 0.75, 2/3 -> best after "d",
    # threshold halfway between 1.2 and 1.0
    assert best_threshold(candidates, gold) == pytest.approx(1.1)
    assert mine_pairs(candidates, 1.1) == {("a", "1"), ("b", "2"), ("c", "9"), ("d", "4")}
    assert bucc_f1(mine_pairs(candidates, 1.1), gold) == pytest.approx(0.75)


def test_best_threshold_edge_cases():
    # tied scores are kept together: the cut after "b" alone (F1 1.0) is not reachable
    tied = [("a", "1", 2.0), ("b", "2", 1.0), ("x", "y", 1.0), ("z", "w", 0.5)]
    gold = {("a", "1"), ("b", "2")}
    assert best_threshold(tied, gold) == pytest.approx(0.75)
    assert bucc_f1(mine_pairs(tied, 0.75), gold) == pytest.approx(0.8)
    # the best cut keeps everything: the threshold is the lowest score, which mine_pairs keeps (>=)
    assert best_threshold([("a", "1", 2.0), ("b", "2", 1.0)], gold) == 1.0
    # nothing right: every threshold gives F1 0 and XTREME's 0.0 comes back
    assert best_threshold([("a", "9", 2.0)], gold) == 0.0
    # a repeated pair keeps its highest score
    assert mine_pairs([("a", "1", 0.2), ("a", "1", 0.9)], 0.5) == {("a", "1")}
    with pytest.raises(ValueError, match="at least one gold pair"):
        best_threshold(tied, set())


def test_deduplicate_drops_texts_with_several_ids():
    rows, ids = deduplicate(["x", "y", "x ", "z"], ["1", "2", "3", "4"])
    assert rows == [0, 1, 3] and ids == [None, "2", "4"]
    # a None id never appears in mined pairs, though its vector still shapes the neighbourhoods
    vectors = np.eye(3, dtype=np.float32)
    mined = mine(vectors, ids, vectors, ["a", "b", "c"], k=1)
    assert {(s, t) for s, t, _ in mined} == {("2", "b"), ("4", "c")}
