"""The domain-shift comparison on hand-built rows: drops, the worst language, the English-to-mean gap and
the paired test against the English-only arm, worked by hand; and the budget table."""

import pytest
from scipy import stats

from xstilts.report.domain_shift import budget_rows, build_shift_tables, data_mode, summary_rows

SHIFT = "bible-law-history-to-gospels-epistles"
MIXTURES = {"multi": {"tasks": ["bible-next"], "translate": {"languages": ["de"], "draw": "multilingual"}}}
# arm -> part -> language -> per-seed values (seeds 0, 1, 2)
SCORES = {
    "bible-next": {
        "in-domain": {"en": [0.8, 0.7, 0.9], "de": [0.6, 0.6, 0.6]},
        "out-of-domain": {"en": [0.6, 0.5, 0.7], "de": [0.3, 0.3, 0.3]},
    },
    "multi": {
        "in-domain": {"en": [0.8, 0.8, 0.8], "de": [0.7, 0.7, 0.7]},
        "out-of-domain": {"en": [0.7, 0.8, 0.6], "de": [0.6, 0.5, 0.6]},
    },
}


def _rows():
    rows = []
    for arm, parts in SCORES.items():
        for part, languages in parts.items():
            for lang, values in languages.items():
                for seed, value in enumerate(values):
                    rows.append(
                        dict(target=SHIFT, intermediate=arm, phase=part, language=lang,
                             metric="accuracy", value=value, seed=seed)
                    )  # fmt: skip
    rows.append(dict(target=SHIFT, intermediate="multi", phase="in-domain", language="en",
                     metric="other", value=0.0, seed=0))  # fmt: skip
    return rows


def test_drops_worst_language_gap_and_paired_test_by_hand():
    (table,) = build_shift_tables(_rows(), [SHIFT], {SHIFT: "accuracy"}, MIXTURES)
    assert table.baseline == "bible-next" and table.modes == {
        "bible-next": "english",
        "multi": "multilingual",
    }
    # English arm, per seed: in = (0.8+0.6)/2, (0.7+0.6)/2, (0.9+0.6)/2; out = 0.45, 0.4, 0.5 -> drop 0.25
    english_drop = table.cells["bible-next", "drop"].per_seed
    assert english_drop == pytest.approx({0: 0.25, 1: 0.25, 2: 0.25})
    # multilingual arm: in 0.75 each seed; out 0.65, 0.65, 0.6 -> drops 0.1, 0.1, 0.15
    multi_drop = table.cells["multi", "drop"].per_seed
    assert multi_drop == pytest.approx({0: 0.1, 1: 0.1, 2: 0.15})
    expected_p = stats.ttest_rel([0.1, 0.1, 0.15], [0.25, 0.25, 0.25]).pvalue
    assert table.cells["multi", "drop"].p_value == pytest.approx(expected_p)
    # out-of-domain English minus the mean of the others: 0.3, 0.2, 0.4 (English arm)
    assert table.cells["bible-next", "gap"].per_seed == pytest.approx({0: 0.3, 1: 0.2, 2: 0.4})
    assert table.worst_language("bible-next") == "de" and table.worst_language("multi") == "de"
    cells = {row[0]: row for row in summary_rows(table)}
    assert cells["multi"][4].startswith("11.7 ±") and "(p " in cells["multi"][4]
    assert cells["bible-next"][5] == "de 30.0"


def test_data_modes_from_the_config():
    mixtures = {"cat": {"tasks": ["mnli"], "translate": {"languages": ["de"]}}, **MIXTURES}
    assert [data_mode(arm, mixtures) for arm in ("none", "mnli", "cat", "multi")] == [
        "none", "english", "concatenated", "multilingual",
    ]  # fmt: skip


def test_budget_table_means_over_seeds():
    rows = [
        dict(intermediate="multi", phase="budget", metric="examples", language=lang, value=value, seed=seed)
        for seed, (de, zh) in enumerate([(10, 14), (12, 12)])
        for lang, value in (("de", de), ("zh", zh))
    ]
    rows += [
        dict(intermediate="multi", phase="budget", metric=m, language="all", value=v, seed=seed)
        for seed in (0, 1)
        for m, v in (("steps", 3), ("examples_seen", 12), ("tokens", 400 + seed))
    ]
    columns, table = budget_rows(rows)
    assert columns[:3] == ["arm", "examples", "by language"]
    assert table == [["multi", "24", "zh 13, de 11", "12", "3", "400"]]
