"""Multilingual intermediate training under domain shift (issue 14): the report's comparison of arms.

An *arm* is an intermediate of the run; its data mode comes from config.json's mixture: `english` (no
translations), `multilingual` / `both` (each example drawn in one language), `concatenated` (English next to
every translation) or `none`. For each configured domain shift (`tasks.domains`), per arm:

- the in-domain and out-of-domain scores (the test sets' headline metric, mean over the languages both
  have) and the **drop** (in-domain minus out-of-domain), each the mean over seeds ±95% t-interval;
- a paired t-test of the drop against the English-only arm over seeds (the seed fixes the target's data
  order and head in both arms);
- the **worst language** (lowest out-of-domain score, mean over seeds) and the **English-to-mean gap** on
  the out-of-domain set (English minus the mean of the other languages).

A second table gives each arm's scores per language, and a third what each arm's intermediate training
consumed (phase "budget" rows): examples per language, examples seen, optimizer steps and tokens.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from xstilts.config import NONE_TASK
from xstilts.report.robust_training import ArmCell, format_cell, paired_p_value

PARTS = ("in-domain", "out-of-domain")
BUDGET = "budget"


def data_mode(arm: str, mixtures: dict) -> str:
    """How an arm's intermediate data uses translations (from config.json's `mixtures`)."""
    if arm == NONE_TASK:
        return "none"
    translate = (mixtures.get(arm) or {}).get("translate")
    if not translate:
        return "english"
    return translate.get("draw") or "concatenated"


@dataclass
class ShiftTable:
    shift: str
    metric: str
    arms: list[str]
    modes: dict[str, str]
    baseline: str | None  # the English-only arm the drops are tested against
    languages: list[str]
    # (arm, part) -> language -> seed -> value
    scores: dict[tuple[str, str], dict[str, dict[int, float]]] = field(default_factory=dict)
    cells: dict[tuple[str, str], ArmCell] = field(default_factory=dict)  # (arm, in/out/drop/gap) -> cell

    def language_mean(self, arm: str, part: str, lang: str) -> float:
        found = self.scores.get((arm, part), {}).get(lang, {})
        return float(np.mean(list(found.values()))) if found else float("nan")

    def worst_language(self, arm: str) -> str:
        means = {lang: self.language_mean(arm, "out-of-domain", lang) for lang in self.languages}
        means = {lang: value for lang, value in means.items() if not math.isnan(value)}
        return min(means, key=means.get) if means else "-"


def _per_seed(by_language: dict[str, dict[int, float]], languages: Iterable[str]) -> dict[int, float]:
    """seed -> mean over `languages` (seeds that lack one of them are left out)."""
    languages = [lang for lang in languages if lang in by_language]
    seeds = set.intersection(*(set(by_language[lang]) for lang in languages)) if languages else set()
    return {seed: float(np.mean([by_language[lang][seed] for lang in languages])) for seed in seeds}


def build_shift_tables(rows: Iterable[dict], shifts: list[str], metrics: dict[str, str], mixtures: dict):
    """One table per configured shift that has rows; `metrics` maps a shift to its test sets' metric."""
    values: dict[tuple, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    arms: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        shift = row["target"]
        if shift in shifts and row["phase"] in PARTS and row["metric"] == metrics.get(shift):
            values[shift, row["intermediate"], row["phase"]][row["language"]][row["seed"]] = row["value"]
            arms[shift] += [row["intermediate"]] if row["intermediate"] not in arms[shift] else []
    tables = []
    for shift in shifts:
        if not arms[shift]:
            continue
        modes = {arm: data_mode(arm, mixtures) for arm in arms[shift]}
        baseline = next((arm for arm in arms[shift] if modes[arm] == "english"), None)
        languages = list(dict.fromkeys(lang for (s, _, _), v in values.items() if s == shift for lang in v))
        table = ShiftTable(shift, metrics[shift], arms[shift], modes, baseline, languages)
        for arm in arms[shift]:
            for part in PARTS:
                table.scores[arm, part] = values.get((shift, arm, part), {})
            inside = _per_seed(table.scores[arm, "in-domain"], languages)
            outside = _per_seed(table.scores[arm, "out-of-domain"], languages)
            drop = {seed: inside[seed] - outside[seed] for seed in inside.keys() & outside.keys()}
            others = [lang for lang in languages if lang != "en"]
            english = _per_seed(table.scores[arm, "out-of-domain"], ["en"]) if "en" in languages else {}
            rest = _per_seed(table.scores[arm, "out-of-domain"], others)
            gap = {seed: english[seed] - rest[seed] for seed in english.keys() & rest.keys()}
            for name, per_seed in (("in", inside), ("out", outside), ("drop", drop), ("gap", gap)):
                table.cells[arm, name] = ArmCell(per_seed)
        if baseline is not None:
            base = table.cells[baseline, "drop"].per_seed
            for arm in arms[shift]:
                if arm != baseline:
                    table.cells[arm, "drop"].p_value = paired_p_value(table.cells[arm, "drop"].per_seed, base)
        tables.append(table)
    return tables


SUMMARY_COLUMNS = ["arm", "data", "in-domain", "out-of-domain", "drop", "worst language", "en - mean (out)"]


def summary_rows(table: ShiftTable) -> list[list[str]]:
    rows = []
    for arm in table.arms:
        worst = table.worst_language(arm)
        value = table.language_mean(arm, "out-of-domain", worst) if worst != "-" else float("nan")
        rows.append(
            [
                arm,
                table.modes[arm],
                format_cell(table.cells[arm, "in"]),
                format_cell(table.cells[arm, "out"]),
                format_cell(table.cells[arm, "drop"]),
                f"{worst} {100 * value:.1f}" if worst != "-" else "-",
                format_cell(table.cells[arm, "gap"]),
            ]
        )
    return rows


def summary_title(table: ShiftTable) -> str:
    against = f"; p: paired t-test of the drop against {table.baseline}" if table.baseline else ""
    return (
        f"domain shift {table.shift} ({table.metric}): mean over seeds ±95% interval (%), mean over "
        f"{len(table.languages)} languages{against}"
    )


def language_rows(table: ShiftTable) -> tuple[list[str], list[list[str]]]:
    """Per language, each arm's "in / out (drop)" means over seeds, in percent."""
    columns = ["language", *table.arms]
    rows = []
    for lang in table.languages:
        cells = [lang]
        for arm in table.arms:
            inside = table.language_mean(arm, "in-domain", lang)
            outside = table.language_mean(arm, "out-of-domain", lang)
            cells.append(f"{100 * inside:.1f} / {100 * outside:.1f} ({100 * (inside - outside):+.1f})")
        rows.append(cells)
    return columns, rows


def budget_rows(rows: Iterable[dict]) -> tuple[list[str], list[list[str]]]:
    """What each arm's intermediate training consumed, mean over seeds: examples per language and in all,
    examples seen (repeats counted), optimizer steps and non-padding tokens."""
    per_arm: dict[str, dict[tuple[str, str], list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["phase"] == BUDGET:
            per_arm[row["intermediate"]][row["metric"], row["language"]].append(row["value"])
    columns = ["arm", "examples", "by language", "examples seen", "steps", "tokens"]
    out = []
    for arm, found in per_arm.items():
        by_language = {lang: np.mean(v) for (metric, lang), v in found.items() if metric == "examples"}
        total = sum(by_language.values())
        shares = ", ".join(
            f"{lang} {n:.0f}" for lang, n in sorted(by_language.items(), key=lambda kv: -kv[1])
        )

        def mean(metric: str, found=found) -> str:
            values = found.get((metric, "all"))
            return f"{np.mean(values):.0f}" if values else "-"

        out.append([arm, f"{total:.0f}", shares, mean("examples_seen"), mean("steps"), mean("tokens")])
    return columns, out
