"""Robust training's report (issue 13): each arm's clean zero-shot score next to its robustness.

An *arm* is an intermediate of the run (a registry task, or a mixture that sets `adversarial` and/or
`target_adversarial`): the 2x2 design is four arms. Per target, one row per arm: its strategies, the
clean zero-shot score (the target's headline metric, mean over the evaluated languages) and, per attack,
accuracy under attack and attack success rate (mean over attacked languages); each as the mean over seeds
with its 95% t-interval, and a paired t-test against the plain arm over seeds (each seed's mean over
languages; the seed fixes data order and head initialisation in both arms, hence the pairing).
The plain arm is the first intermediate whose two phases both train plainly (not `none`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from xstilts.config import NONE_TASK
from xstilts.robustness.metrics import over_seeds
from xstilts.robustness.records import ATTACK, parse_phase

ZERO_SHOT = "zero-shot"
ATTACK_METRICS = (("acc. under", "accuracy_under_attack"), ("success", "attack_success_rate"))


@dataclass
class ArmCell:
    """One measured quantity of one arm: per-seed values, their spread and the paired test's p-value."""

    per_seed: dict[int, float]
    p_value: float = float("nan")

    @property
    def spread(self):
        return over_seeds(self.per_seed.values())


@dataclass
class RobustTrainingTable:
    target: str
    baseline: str
    arms: list[str]
    strategies: dict[str, tuple[str, str]]  # arm -> (intermediate strategy, target strategy)
    columns: list[str]  # "clean", "<attack>/<metric>"
    cells: dict[tuple[str, str], ArmCell] = field(default_factory=dict)  # (arm, column) -> cell


def paired_p_value(first: dict[int, float], second: dict[int, float]) -> float:
    """Two-sided paired t-test over the seeds both have (NaN below two seeds or with no variance)."""
    seeds = sorted(set(first) & set(second))
    if len(seeds) < 2:
        return float("nan")
    differences = np.array([first[s] - second[s] for s in seeds])
    if np.allclose(differences, differences[0]):
        return 1.0 if differences[0] == 0 else 0.0
    from scipy import stats

    return float(stats.ttest_rel([first[s] for s in seeds], [second[s] for s in seeds]).pvalue)


def _seed_means(values: dict[tuple, dict[int, float]]) -> dict[int, float]:
    """language -> seed -> value  =>  seed -> mean over the languages (NaN values left out)."""
    by_seed: dict[int, list[float]] = defaultdict(list)
    for per_seed in values.values():
        for seed, value in per_seed.items():
            if not math.isnan(value):
                by_seed[seed].append(value)
    return {seed: float(np.mean(found)) for seed, found in by_seed.items()}


def build_robust_training_tables(
    rows: Iterable[dict], strategies: dict, metrics: dict[str, str]
) -> list[RobustTrainingTable]:
    """Tables of the runs whose arms use a strategy other than plain training; `strategies` is config.json's
    `strategies`, `metrics` each target's headline metric."""

    def strategy(arm: str, target: str) -> tuple[str, str]:
        found = strategies.get(arm) or {}
        return found.get("intermediate", "plain"), (found.get("targets") or {}).get(target, "plain")

    values: dict[tuple, dict[tuple, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    attacks: list[str] = []
    arms: list[str] = []
    for row in rows:
        target, arm = row["target"], row["intermediate"]
        if row["phase"] == ZERO_SHOT and row["metric"] == metrics.get(target):
            column = "clean"
        elif (parsed := parse_phase(row["phase"])) and parsed[0] == ATTACK and row["language"] != "mean":
            metric = next((m for _, m in ATTACK_METRICS if m == row["metric"]), None)
            if metric is None:
                continue
            column = f"{parsed[1]}/{metric}"
            attacks += [parsed[1]] if parsed[1] not in attacks else []
        else:
            continue
        arms += [arm] if arm not in arms else []
        values[target, arm, column][row["language"]][row["seed"]] = row["value"]
    tables = []
    for target in dict.fromkeys(t for t, _, _ in values):
        present = [arm for arm in arms if (target, arm, "clean") in values]
        used = {arm: strategy(arm, target) for arm in present}
        plain = [arm for arm in present if arm != NONE_TASK and used[arm] == ("plain", "plain")]
        robust = any(name not in ("plain", NONE_TASK) for pair in used.values() for name in pair)
        if not plain or not robust:
            continue  # no robust training in this run, or no plain arm to compare against
        columns = ["clean"] + [f"{a}/{m}" for a in attacks for _, m in ATTACK_METRICS]
        table = RobustTrainingTable(target, plain[0], present, used, columns)
        for column in columns:
            base = _seed_means(values.get((target, plain[0], column), {}))
            for arm in present:
                found = values.get((target, arm, column))
                if found is None:
                    continue
                cell = ArmCell(_seed_means(found))
                if arm != plain[0]:
                    cell.p_value = paired_p_value(cell.per_seed, base)
                table.cells[arm, column] = cell
        tables.append(table)
    return tables


def header(column: str) -> str:
    if column == "clean":
        return "clean zero-shot"
    attack, metric = column.split("/")
    label = next(label for label, m in ATTACK_METRICS if m == metric)
    return f"{attack} {label}"


def format_cell(cell: ArmCell | None) -> str:
    """ "41.2 ±3.1 (p 0.04)": percent, interval half-width, paired p against the plain arm."""
    if cell is None or not cell.per_seed:
        return "-"
    spread = cell.spread
    text = f"{100 * spread.mean:.1f}"
    if not math.isnan(spread.low):
        text += f" ±{100 * (spread.high - spread.low) / 2:.1f}"
    if not math.isnan(cell.p_value):
        text += " (p <0.01)" if cell.p_value < 0.005 else f" (p {cell.p_value:.2f})"
    return text


def table_rows(table: RobustTrainingTable) -> list[list[str]]:
    """arm, its intermediate and target strategies, then one formatted cell per column."""
    return [
        [arm, *table.strategies[arm], *(format_cell(table.cells.get((arm, c))) for c in table.columns)]
        for arm in table.arms
    ]


def title(table: RobustTrainingTable) -> str:
    return (
        f"robust training on {table.target}: mean over seeds ±95% interval (%), mean over languages; "
        f"p: paired t-test over seeds against {table.baseline}"
    )
