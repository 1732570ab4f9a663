"""Intervals for changes between checkpoints: paired bootstrap of means, CKA change, correlations."""

import warnings

import numpy as np
import pytest

from xstilts.analysis import alignment


def test_paired_mean_change_interval_matches_the_change_and_covers_the_truth():
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(100):
        before = rng.binomial(1, 0.6, size=(3, 200)).astype(float)  # 3 languages x 200 sentences
        after = np.clip(before + rng.binomial(1, 0.1, size=before.shape), 0, 1)  # true gain 0.4 * 0.1
        interval = alignment.paired_mean_change_ci(before, after, n_boot=300, seed=trial)
        assert interval.estimate == pytest.approx(after.mean() - before.mean())
        assert interval.low <= interval.estimate <= interval.high
        covered += interval.contains(0.04)
    assert covered >= 88  # a 95% interval: binomial(100, 0.95) is at least 88 with probability > 0.999


def test_paired_mean_change_of_identical_checkpoints_is_exactly_zero():
    scores = np.random.default_rng(1).random((2, 50))
    interval = alignment.paired_mean_change_ci(scores, scores.copy(), n_boot=100)
    assert (interval.estimate, interval.low, interval.high) == (0.0, 0.0, 0.0)
    with pytest.raises(alignment.ScoringError, match="different items"):
        alignment.paired_mean_change_ci(scores, scores[:, :40])


def test_cka_change_interval_is_centred_on_the_linear_cka_difference():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((120, 16))
    noisy_y = x @ np.linalg.qr(rng.standard_normal((16, 16)))[0] + 2.0 * rng.standard_normal((120, 16))
    clean_y = x + 0.2 * rng.standard_normal((120, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", alignment.SmallSampleWarning)
        interval = alignment.paired_cka_change_ci([(x, noisy_y)], [[(x, clean_y)]], n_boot=100)
        expected = alignment.linear_cka(x, clean_y) - alignment.linear_cka(x, noisy_y)
    assert interval.estimate == pytest.approx(expected, abs=1e-9)
    assert interval.low < expected < interval.high and expected > 0.2 and interval.low > 0
    seeds = alignment.paired_cka_change_ci([(x, noisy_y)], [[(x, clean_y)], [(x, noisy_y)]], n_boot=50)
    assert seeds.estimate == pytest.approx(expected / 2, abs=1e-9)  # the mean over the two seeds


def test_vectorised_correlation_interval_agrees_with_scipy():
    from scipy import stats

    rng = np.random.default_rng(3)
    x = rng.random(30)
    y = x + 0.3 * rng.standard_normal(30)
    y[:3] = y[3]  # ties, for Spearman's average ranks
    for method, reference in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
        result = alignment.correlation_ci(x, y, method=method, n_boot=500)
        assert result.r == pytest.approx(reference(x, y)[0])
        assert result.low < result.r < result.high
        rows = np.random.default_rng(0).integers(0, 30, size=(5, 30))
        replicates = alignment._rowwise_correlation(x[rows], y[rows], method)
        assert replicates == pytest.approx([reference(x[r], y[r])[0] for r in rows])


def test_checkpoints_with_several_seeds_are_averaged_before_the_change(tmp_path):
    from types import SimpleNamespace

    from xstilts.analysis.changes import _changes, _seed_means
    from xstilts.analysis.driver import Checkpoint, save_items
    from xstilts.pipeline.store import ResultRow, ResultsStore

    store = ResultsStore(tmp_path / "results.sqlite")
    checkpoints = [Checkpoint("pretrained", "m", 0, "none", "k-pretrained")] + [
        Checkpoint("bible-next", f"ckpt{seed}", seed, "bible-next", f"k{seed}") for seed in (0, 1)
    ]
    hits = {0: np.array([1.0, 0.0, 1.0, 0.0]), 1: np.array([1.0, 1.0, 1.0, 0.0])}
    space = SimpleNamespace(
        pairs=[SimpleNamespace(label="de")],
        store=store,
        run=SimpleNamespace(config_hash="h"),
        phase="alignment:bible",
        settings=SimpleNamespace(n_boot=200),
        items_file=lambda c: tmp_path / f"{c.name}-{c.seed}.npz",
    )
    for checkpoint, scores in zip(checkpoints, (np.zeros(4), hits[0], hits[1]), strict=True):
        row = ResultRow(
            "r",
            checkpoint.key,  # alignment rows are stored under the key of the checkpoint they measure
            "m",
            checkpoint.intermediate,
            checkpoint.name,
            "alignment:bible",
            "de",
            "retrieval_cosine_xx_en@0",
            float(scores.mean()),
            checkpoint.seed,
        )
        store.commit_step(checkpoint.key, f"{checkpoint.name}{checkpoint.seed}", [row])
        save_items(space.items_file(checkpoint), {"retrieval_cosine_xx_en@0|de": scores})
    values, items = _seed_means(space, checkpoints)
    assert values["bible-next"]["retrieval_cosine_xx_en", 0, "de"] == pytest.approx(0.625)  # (0.5 + 0.75) / 2
    assert items["bible-next"]["retrieval_cosine_xx_en@0|de"] == pytest.approx([1.0, 0.5, 1.0, 0.0])
    changes = _changes(space, checkpoints, values, items, [0], 0)
    interval = changes["bible-next"]["retrieval_cosine_xx_en", 0, "mean"]
    assert interval.estimate == pytest.approx(0.625) and interval.low <= 0.625 <= interval.high
