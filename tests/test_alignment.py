"""Sentence-level alignment measurements: known answers for CKA, retrieval, margins, gap, probe and CIs."""

import math
import warnings

import numpy as np
import pytest
from scipy.stats import ortho_group

from xstilts.analysis import alignment
from xstilts.analysis.alignment import (
    SmallSampleWarning,
    bootstrap_ci,
    correlation_ci,
    cosine_gap,
    derangement,
    language_probe_accuracy,
    linear_cka,
    paired_difference_ci,
    retrieval_accuracy,
    retrieval_hits,
    unbiased_linear_cka,
    warn_if_small,
)
from xstilts.evaluate.checks import ScoringError

pytestmark = pytest.mark.filterwarnings("ignore::xstilts.analysis.alignment.SmallSampleWarning")


def _unit(v):
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _dense_margins(x, y, k):
    """Cosine matrix and both radii directly: r_Y(x) over rows, r_X(y) over columns (k largest cosines)."""
    cos = _unit(x.astype(np.float64)) @ _unit(y.astype(np.float64)).T
    r_x = np.sort(cos, axis=1)[:, -k:].mean(axis=1)
    r_y = np.sort(cos, axis=0)[-k:, :].mean(axis=0)
    return cos, r_x, r_y


def _gram_cka(x, y):
    """Kornblith et al.'s definition via centred Gram matrices, HSIC = tr(K H L H) / (n - 1)^2."""
    n = len(x)
    h = np.eye(n) - 1 / n
    k, l_ = x @ x.T, y @ y.T

    def hsic(a, b):
        return np.trace(a @ h @ b @ h) / (n - 1) ** 2

    return hsic(k, l_) / math.sqrt(hsic(k, k) * hsic(l_, l_))


def _gram_unbiased_cka(x, y):
    """Song et al. (2012) unbiased HSIC on explicit Gram matrices with zeroed diagonals."""
    n = len(x)

    def hsic(k, l_):
        k, l_ = k.copy(), l_.copy()
        np.fill_diagonal(k, 0)
        np.fill_diagonal(l_, 0)
        ones = np.ones(n)
        return (
            np.trace(k @ l_)
            + ones @ k @ ones * (ones @ l_ @ ones) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * ones @ k @ l_ @ ones
        ) / (n * (n - 3))

    k, l_ = x @ x.T, y @ y.T
    return hsic(k, l_) / math.sqrt(hsic(k, k) * hsic(l_, l_))


# ------------------------------------------------------------------------------------------------- CKA


def test_cka_is_one_for_identical_inputs_and_invariant_to_rotation_and_scaling():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16))
    q = ortho_group.rvs(16, random_state=1)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-10)
    assert unbiased_linear_cka(x, x) == pytest.approx(1.0, abs=1e-10)
    assert linear_cka(x, 3.5 * x @ q) == pytest.approx(1.0, abs=1e-10)
    assert unbiased_linear_cka(x, 3.5 * x @ q) == pytest.approx(1.0, abs=1e-10)
    y = x @ rng.normal(size=(16, 8)) + rng.normal(size=(200, 8))
    assert linear_cka(x, y) == pytest.approx(linear_cka(2.0 * x @ q + 5.0, y), abs=1e-10)
    assert unbiased_linear_cka(x, y) == pytest.approx(unbiased_linear_cka(x @ q * 0.1, y - 3.0), abs=1e-10)


def test_cka_matches_the_gram_matrix_definitions():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 10))
    y = x[:, :6] @ rng.normal(size=(6, 12)) + 0.5 * rng.normal(size=(60, 12)) + 2.0
    assert linear_cka(x, y) == pytest.approx(_gram_cka(x, y), rel=1e-9)
    assert unbiased_linear_cka(x, y) == pytest.approx(_gram_unbiased_cka(x, y), rel=1e-9)


def test_cka_is_near_zero_for_independent_inputs():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(20_000, 8)), rng.normal(size=(20_000, 8))
    assert linear_cka(x, y) < 0.01
    assert abs(unbiased_linear_cka(x, y)) < 0.01
    # with few sentences and many dimensions the biased estimate is far from 0, the unbiased one is not
    small_x, small_y = rng.normal(size=(50, 200)), rng.normal(size=(50, 200))
    assert linear_cka(small_x, small_y) > 0.5
    assert abs(unbiased_linear_cka(small_x, small_y)) < 0.1


# ------------------------------------------------------------------------------------------- retrieval


@pytest.mark.parametrize("scoring", ["cosine", "csls", "margin"])
def test_retrieval_with_a_planted_permutation_is_exact_both_ways(scoring):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 32)).astype(np.float32)
    perm = rng.permutation(300)
    y_shuffled = (x + 0.1 * rng.normal(size=x.shape))[perm]  # y_shuffled[j] translates x[perm[j]]
    y = np.empty_like(y_shuffled)
    y[perm] = y_shuffled  # undo the shuffle: row i of y translates row i of x
    assert retrieval_accuracy(x, y, scoring=scoring) == {"a_to_b": 1.0, "b_to_a": 1.0}
    # a misaligned pairing is found wrong everywhere
    wrong = retrieval_accuracy(x, y_shuffled, scoring=scoring)
    assert wrong["a_to_b"] == pytest.approx(np.mean(perm == np.arange(300)))


@pytest.mark.parametrize("scoring, k", [("csls", 3), ("margin", 4), ("cosine", None)])
def test_retrieval_matches_a_dense_numpy_argmax(scoring, k):
    rng = np.random.default_rng(5)
    shared = rng.normal(size=(40, 6))
    x = shared + 0.9 * rng.normal(size=(40, 6))
    y = shared + 0.9 * rng.normal(size=(40, 6)) + 0.6  # a hub-prone offset
    cos, r_x, r_y = _dense_margins(x, y, k or 1)
    if scoring == "csls":
        scores = 2 * cos - r_x[:, None] - r_y[None, :]
    elif scoring == "margin":
        scores = cos / ((r_x[:, None] + r_y[None, :]) / 2)
    else:
        scores = cos
    hits = retrieval_hits(x, y, scoring=scoring, k=k)
    np.testing.assert_array_equal(hits["a_to_b"], scores.argmax(axis=1) == np.arange(40))
    np.testing.assert_array_equal(hits["b_to_a"], scores.argmax(axis=0) == np.arange(40))
    assert 0 < hits["a_to_b"].mean() < 1  # the test is not trivial


def _adjusted_scores(x, y, scoring, k):
    """The dense score matrix numpy would argmax: cosine, CSLS or the ratio margin."""
    cos, r_x, r_y = _dense_margins(x, y, k or 1)
    if scoring == "csls":
        return 2 * cos - r_x[:, None] - r_y[None, :]
    if scoring == "margin":
        return cos / ((r_x[:, None] + r_y[None, :]) / 2)
    return cos


def _hub_prone(dim, offset, noise, n=600):
    """Parallel sets pushed apart by +-offset, so neighbourhood radii vary and shortlists are unsure."""
    rng = np.random.default_rng(8)
    shared = rng.normal(size=(n, dim))
    return shared + noise * rng.normal(size=shared.shape) - offset, shared + noise * rng.normal(
        size=shared.shape
    ) + offset


@pytest.mark.parametrize(
    "scoring, k, data, second_pass",
    [
        ("cosine", None, (16, 0.5, 0.7), "none"),
        ("csls", 3, (16, 0.5, 0.6), "unsure rows"),
        ("margin", 4, (16, 0.5, 0.6), "unsure rows"),
        ("csls", 3, (32, 1.5, 1.0), "everything"),
    ],
)
def test_blocked_retrieval_matches_a_dense_numpy_argmax(monkeypatch, scoring, k, data, second_pass):
    # small blocks, so rows are chunk-screened and columns merged block by block; CSLS and margin answer
    # from the cosine shortlists where provable and search the rest again (some rows, or all in one pass)
    searched, adjusted_search = [], alignment._adjusted_search

    def spy(x, *args):
        searched.append(len(x))
        return adjusted_search(x, *args)

    monkeypatch.setattr(alignment, "_adjusted_search", spy)
    x, y = _hub_prone(*data)
    scores = _adjusted_scores(x, y, scoring, k)
    hits = retrieval_hits(x, y, scoring=scoring, k=k, batch_size=100)
    for found, dense in ((hits["a_to_b"], scores), (hits["b_to_a"], scores.T)):
        differ = np.flatnonzero(found != (dense.argmax(axis=1) == np.arange(len(x))))
        # only a float32 near-tie between the translation and the best other row may differ
        gaps = dense[differ].max(axis=1) - dense[differ, differ]
        assert len(differ) <= 2 and np.all(gaps < 1e-5), (differ, gaps)
    assert 0.1 < hits["a_to_b"].mean() < 0.95  # the test is not trivial
    if second_pass == "unsure rows":
        assert searched and all(0 < rows < len(x) for rows in searched)
    else:
        assert searched == {"none": [], "everything": [len(x)]}[second_pass]


@pytest.mark.parametrize("scoring", ["csls", "margin"])
def test_adjusted_search_takes_both_argmaxes_in_one_pass(scoring):
    x, y = _hub_prone(16, 1.0, 0.7)
    cos, r_x, r_y = _dense_margins(x, y, 4)
    scores = _adjusted_scores(x, y, scoring, 4)
    unit = lambda v: (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    best = alignment._adjusted_search(unit(x), unit(y), r_x, r_y, scoring, {"batch_size": 100})
    np.testing.assert_array_equal(best.forward_ids[:, 0], scores.argmax(axis=1))  # no near-ties here
    np.testing.assert_array_equal(best.backward_ids[:, 0], scores.argmax(axis=0))


def test_csls_and_margin_beat_cosine_when_a_hub_attracts_queries():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16))
    y = x + 0.8 * rng.normal(size=x.shape)
    hub = rng.normal(size=16)
    y[0], x[0] = 3 * hub, 3 * hub + 0.8 * rng.normal(size=16)  # y[0] lies near many sentences
    x, y = x + hub, y + hub
    cosine = retrieval_accuracy(x, y, scoring="cosine")["a_to_b"]
    assert retrieval_accuracy(x, y, scoring="csls")["a_to_b"] > cosine + 0.05
    assert retrieval_accuracy(x, y, scoring="margin")["a_to_b"] > cosine + 0.05


def test_retrieval_rejects_bad_input():
    with pytest.raises(ScoringError, match="unknown scoring"):
        retrieval_accuracy(np.ones((3, 2)), np.ones((3, 2)), scoring="dot")
    with pytest.raises(ScoringError, match="differ in length"):
        retrieval_accuracy(np.ones((3, 2)), np.ones((4, 2)))


# ------------------------------------------------------------------------------------------ cosine gap


def test_cosine_gap_by_hand_on_three_vectors():
    x = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
    y = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    s = 1 / math.sqrt(2)
    cos = np.array([[s, 0, s], [s, 1, 0], [0, 0, s]])  # cos[i, j] = cos(x_i, y_j), worked by hand
    perm = derangement(3, np.random.default_rng(7))
    assert sorted(perm.tolist()) == [0, 1, 2] and not np.any(perm == np.arange(3))
    gap = cosine_gap(x, y, np.random.default_rng(7))
    assert gap["translation"] == pytest.approx((s + 1 + s) / 3)
    assert gap["random"] == pytest.approx(np.mean([cos[i, perm[i]] for i in range(3)]))
    assert gap["gap"] == pytest.approx(gap["translation"] - gap["random"])


def test_derangements_are_uniform_over_both_three_cycles():
    rng = np.random.default_rng(0)
    seen = {tuple(derangement(3, rng)) for _ in range(50)}
    assert seen == {(1, 2, 0), (2, 0, 1)}


# -------------------------------------------------------------------------------------- language probe


def test_language_probe_separates_distinct_clouds_and_not_identical_ones():
    rng = np.random.default_rng(8)
    separated = {"en": rng.normal(size=(150, 10)), "de": rng.normal(size=(150, 10)) + 3.0}
    assert language_probe_accuracy(separated) > 0.98
    same = {"en": rng.normal(size=(300, 10)), "de": rng.normal(size=(300, 10))}
    assert abs(language_probe_accuracy(same) - 0.5) < 0.1


def test_language_probe_balances_languages():
    rng = np.random.default_rng(9)
    uneven = {"en": rng.normal(size=(900, 5)), "de": rng.normal(size=(100, 5))}
    assert abs(language_probe_accuracy(uneven) - 0.5) < 0.12  # not the 0.9 of always answering "en"


# ------------------------------------------------------------------------------------------ intervals


def test_bootstrap_interval_covers_the_true_mean_in_most_repetitions():
    rng = np.random.default_rng(10)
    covered = 0
    for repetition in range(50):
        sample = rng.normal(loc=2.0, scale=1.0, size=60)
        interval = bootstrap_ci(np.mean, sample, n_boot=300, seed=repetition)
        assert interval.low <= interval.estimate <= interval.high
        covered += interval.contains(2.0)
    assert covered >= 45


def test_bootstrap_resamples_rows_jointly():
    x = np.arange(100.0)
    interval = bootstrap_ci(lambda a, b: float(np.max(np.abs(a - b))), x, x.copy(), n_boot=50)
    assert (interval.estimate, interval.low, interval.high) == (0.0, 0.0, 0.0)


def test_paired_difference_covers_the_true_change():
    rng = np.random.default_rng(11)
    covered = 0
    for repetition in range(50):
        before = rng.normal(size=80)
        after = before + 0.3 + 0.2 * rng.normal(size=80)  # the same sentences, a true change of +0.3
        interval = paired_difference_ci(np.mean, before, after, n_boot=300, seed=repetition)
        assert interval.estimate == pytest.approx(after.mean() - before.mean())
        covered += interval.contains(0.3)
    assert covered >= 45


def test_paired_difference_of_retrieval_hits_between_checkpoints():
    rng = np.random.default_rng(12)
    x = rng.normal(size=(200, 16))
    noisy, clean = x + 1.5 * rng.normal(size=x.shape), x + 0.05 * rng.normal(size=x.shape)
    before = retrieval_hits(x, noisy)["a_to_b"].astype(float)
    after = retrieval_hits(x, clean)["a_to_b"].astype(float)
    interval = paired_difference_ci(np.mean, before, after, n_boot=200)
    assert interval.low > 0  # the cleaner checkpoint retrieves significantly better


def test_correlation_interval_contains_the_true_correlation():
    rng = np.random.default_rng(13)
    rho = 0.6
    sample = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=200)
    result = correlation_ci(sample[:, 0], sample[:, 1], n_boot=500)
    assert result.low <= rho <= result.high
    assert result.fisher_low <= rho <= result.fisher_high
    assert result.low < result.r < result.high and result.n == 200
    spearman = correlation_ci(sample[:, 0], sample[:, 1], method="spearman", n_boot=500)
    true_spearman = 6 / math.pi * math.asin(rho / 2)  # for a bivariate Gaussian
    assert spearman.low <= true_spearman <= spearman.high and spearman.fisher_low is None


def test_correlation_over_few_languages_warns_with_the_number():
    with pytest.warns(SmallSampleWarning, match="only 5 pairs"):
        result = correlation_ci([1, 2, 3, 4, 5], [2, 1, 4, 3, 5], n_boot=100)
    assert result.n == 5 and result.r == pytest.approx(0.8)  # still computed, by hand: 8/10


# ----------------------------------------------------------------------------------------- warnings


def test_warn_if_small_names_the_number():
    with pytest.warns(SmallSampleWarning, match="only 37 sentences.*at least 100"):
        assert warn_if_small(37, minimum=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_small(500, minimum=100)


def test_measurements_warn_on_few_sentences():
    x = np.random.default_rng(14).normal(size=(20, 4))
    with pytest.warns(SmallSampleWarning, match="only 20 sentences"):
        assert linear_cka(x, x) == pytest.approx(1.0)  # the warning does not stop the measurement
