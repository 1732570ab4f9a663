"""The robust-training comparison: per arm, clean zero-shot beside robustness, mean over seeds with its
95% interval and a paired t-test over seeds against the plain arm (hand-computed values)."""

import math

import pytest

from xstilts.report.robust_training import (
    ArmCell,
    build_robust_training_tables,
    format_cell,
    paired_p_value,
    table_rows,
)

STRATEGIES = {
    "bible-next": {"intermediate": "plain", "targets": {"bible-genre": "plain"}},
    "freelb-tgt": {"intermediate": "plain", "targets": {"bible-genre": "freelb"}},
    "none": {"intermediate": "none", "targets": {"bible-genre": "plain"}},
}
METRICS = {"bible-genre": "accuracy"}


def _row(arm, phase, language, metric, value, seed):
    return {
        "intermediate": arm,
        "target": "bible-genre",
        "phase": phase,
        "language": language,
        "metric": metric,
        "value": value,
        "seed": seed,
    }


def _rows():
    rows = []
    for seed in (0, 1, 2):
        for lang, shift in (("en", 0.1), ("de", -0.1)):
            # plain: per-seed means 0.40, 0.42, 0.44; freelb-tgt: 0.41, 0.44, 0.47 (differences 1, 2, 3 pts)
            rows.append(_row("bible-next", "zero-shot", lang, "accuracy", 0.40 + 0.02 * seed + shift, seed))
            rows.append(_row("freelb-tgt", "zero-shot", lang, "accuracy", 0.41 + 0.03 * seed + shift, seed))
            rows.append(_row("none", "zero-shot", lang, "accuracy", 0.30, seed))
            rows.append(_row("bible-next", "zero-shot", lang, "f1", 0.99, seed))  # not the headline
            rows.append(_row("bible-next", "robustness:cm", lang, "accuracy_under_attack", 0.2, seed))
            rows.append(_row("freelb-tgt", "robustness:cm", lang, "accuracy_under_attack", 0.2, seed))
            rows.append(_row("bible-next", "robustness-random:cm", lang, "accuracy_under_attack", 0.9, seed))
    return rows


def test_paired_t_test_known_answer():
    """Differences 1, 2, 3 over three seeds: t = 2 / (1 / sqrt 3) = 3.464 with 2 degrees of freedom,
    two-sided p = 1 - t / sqrt(t^2 + 2) = 0.0742 (Student's t CDF with 2 df in closed form)."""
    t = 2 * math.sqrt(3)
    expected = 1 - t / math.sqrt(t * t + 2)
    assert paired_p_value({0: 1.0, 1: 2.0, 2: 3.0}, {0: 0.0, 1: 0.0, 2: 0.0}) == pytest.approx(expected)
    assert expected == pytest.approx(0.0742, abs=1e-4)
    assert math.isnan(paired_p_value({0: 1.0}, {0: 0.0}))  # one seed: no test
    assert paired_p_value({0: 1.0, 1: 1.0}, {0: 1.0, 1: 1.0}) == 1.0  # identical arms


def test_each_arm_beside_the_plain_one():
    (table,) = build_robust_training_tables(_rows(), STRATEGIES, METRICS)
    assert table.baseline == "bible-next" and table.arms == ["bible-next", "freelb-tgt", "none"]
    assert table.columns == ["clean", "cm/accuracy_under_attack", "cm/attack_success_rate"]
    clean = table.cells["freelb-tgt", "clean"]
    assert clean.per_seed == pytest.approx({0: 0.41, 1: 0.44, 2: 0.47})
    assert clean.p_value == pytest.approx(1 - 2 * math.sqrt(3) / math.sqrt(14))
    assert math.isnan(table.cells["bible-next", "clean"].p_value)  # the baseline is not tested
    assert table.cells["freelb-tgt", "cm/accuracy_under_attack"].p_value == 1.0
    rows = {row[0]: row for row in table_rows(table)}
    assert rows["freelb-tgt"][:3] == ["freelb-tgt", "plain", "freelb"]
    # 44.0 +- t(0.975, 2) x sd / sqrt 3: 4.303 x 3 / sqrt 3 = 7.5 points; plain: 4.303 x 2 / sqrt 3 = 5.0
    assert rows["freelb-tgt"][3] == "44.0 ±7.5 (p 0.07)"
    assert rows["bible-next"][3] == "42.0 ±5.0"
    assert rows["none"][4] == "-"  # never attacked
    assert format_cell(None) == "-"
    assert format_cell(ArmCell({0: 0.5, 1: 0.5}, p_value=0.001)) == "50.0 ±0.0 (p <0.01)"


def test_runs_without_robust_training_have_no_table():
    plain = {arm: {"intermediate": "plain", "targets": {"bible-genre": "plain"}} for arm in STRATEGIES}
    plain["none"]["intermediate"] = "none"  # direct fine-tuning is no robust training either
    assert build_robust_training_tables(_rows(), plain, METRICS) == []
    assert build_robust_training_tables(_rows(), {}, METRICS) == []
