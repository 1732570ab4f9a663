"""The robustness part of `xstilts report`: attack vs random baseline tables, alignment stability curves
and a few adversarial examples, from what `xstilts attack` stored (layout: `robustness/records.py`).

- `robustness:<attack>` and `robustness-random:<attack>` rows give, per attack x target, a table of clean
  accuracy, accuracy under attack and attack success rate per language and intermediate task, each the
  mean over seeds with its 95% t-interval (`robustness.metrics.over_seeds`), the random baseline's value
  beside the attack's;
- `robustness-alignment:<attack>` rows give per-layer curves of flip AUC (with its bootstrap interval as a
  band) and of the clean-vs-adversarial cosine, one panel per stage, one line per intermediate task;
- the adversarial examples' JSONL files of the current steps give a few successful attacks, original and
  perturbed text side by side with the changed words marked.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator
from rich.table import Table

from xstilts.config import NONE_TASK
from xstilts.report.render import html_table, plt, png_base64
from xstilts.robustness.metrics import SeedSpread, over_seeds
from xstilts.robustness.records import (
    ATTACK,
    RANDOM,
    STABILITY,
    AttackRecord,
    examples_file,
    parse_phase,
    read_records,
)
from xstilts.robustness.words import word_spans

ALL_LANGUAGES = "mean"  # the table row of the mean over languages
STAGES = ("pretrained", "intermediate", "target")
EXAMPLES_PER_ATTACK = 3
# (column header, kind of rows, metric): the attack's numbers with its random baseline's beside them
COLUMNS = (
    ("clean acc.", ATTACK, "clean_accuracy"),
    ("acc. under attack", ATTACK, "accuracy_under_attack"),
    ("acc. under random", RANDOM, "accuracy_under_attack"),
    ("success rate attack", ATTACK, "attack_success_rate"),
    ("success rate random", RANDOM, "attack_success_rate"),
)


@dataclass
class RobustnessTables:
    attacks: list[str] = field(default_factory=list)
    targets: dict[str, list[str]] = field(default_factory=dict)  # attack -> targets, in stored order
    intermediates: list[str] = field(default_factory=list)  # "none" first
    languages: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (attack, target) -> langs
    # (kind, attack, target, intermediate, language, metric) -> seed -> value
    values: dict[tuple, dict[int, float]] = field(default_factory=lambda: defaultdict(dict))
    # (attack, target, intermediate, stage, measure) -> layer -> seed -> value
    stability: dict[tuple, dict[int, dict[int, float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(dict))
    )
    # (attack, step key) -> (intermediate, target, seed) of the attacked checkpoint, for the examples
    steps: dict[tuple[str, str], tuple[str, str, int]] = field(default_factory=dict)

    def spread(self, kind: str, attack: str, target: str, intermediate: str, language: str, metric: str):
        """Mean over seeds with its interval; for `ALL_LANGUAGES`, of each seed's mean over languages."""
        if language != ALL_LANGUAGES:
            found = self.values.get((kind, attack, target, intermediate, language, metric), {})
            return over_seeds(found.values())
        by_seed: dict[int, list[float]] = defaultdict(list)
        for lang in self.languages[attack, target]:
            found = self.values.get((kind, attack, target, intermediate, lang, metric), {})
            for seed, value in found.items():
                if not math.isnan(value):
                    by_seed[seed].append(value)
        return over_seeds(float(np.mean(values)) for values in by_seed.values())


def build_robustness_tables(rows: Iterable[dict]) -> RobustnessTables | None:
    """The robustness rows of `rows` arranged for the report; None when there are none."""
    tables = RobustnessTables()
    intermediates: list[str] = []
    for row in rows:
        parsed = parse_phase(row["phase"])
        if parsed is None:
            continue
        kind, attack = parsed
        target, inter, seed = row["target"], row["intermediate"], row["seed"]
        if attack not in tables.attacks:
            tables.attacks.append(attack)
        if target not in tables.targets.setdefault(attack, []):
            tables.targets[attack].append(target)
        if inter not in intermediates:
            intermediates.append(inter)
        if kind == STABILITY:
            stage, _, measured = row["metric"].partition(":")
            measure, at, layer = measured.rpartition("@")
            if at and layer.isdigit():  # `<stage>:examples` and `<stage>:flipped` are counts, not curves
                tables.stability[attack, target, inter, stage, measure][int(layer)][seed] = row["value"]
            continue
        if kind == ATTACK:
            tables.steps[attack, row["config_hash"]] = (inter, target, seed)
        languages = tables.languages.setdefault((attack, target), [])
        if row["language"] not in languages:
            languages.append(row["language"])
        tables.values[kind, attack, target, inter, row["language"], row["metric"]][seed] = row["value"]
    if not tables.attacks:
        return None
    tables.intermediates = ([NONE_TASK] if NONE_TASK in intermediates else []) + [
        i for i in intermediates if i != NONE_TASK
    ]
    for key, langs in tables.languages.items():
        tables.languages[key] = sorted(langs, key=lambda x: (x != "en", x))
    return tables


def format_spread(spread: SeedSpread) -> str:
    """A fraction as a percentage with the half-width of its 95% interval: "41.2 ±3.1" ("41.2": 1 seed)."""
    if math.isnan(spread.mean):
        return "-"
    text = f"{100 * spread.mean:.1f}"
    if math.isnan(spread.low) or math.isnan(spread.high):
        return text
    return f"{text} ±{100 * (spread.high - spread.low) / 2:.1f}"


def metric_rows(tables: RobustnessTables, attack: str, target: str) -> list[list[str]]:
    """language, intermediate, then the `COLUMNS`: per language (and their mean) and intermediate."""
    languages = tables.languages.get((attack, target), [])
    out = []
    for lang in [*languages, ALL_LANGUAGES] if len(languages) > 1 else languages:
        for inter in tables.intermediates:
            cells = [
                format_spread(tables.spread(kind, attack, target, inter, lang, metric))
                for _, kind, metric in COLUMNS
            ]
            if any(cell != "-" for cell in cells):
                out.append([lang, inter, *cells])
    return out


def table_title(attack: str, target: str) -> str:
    return f"{attack} on {target}: mean over seeds ±95% interval (%), attack vs random baseline"


def terminal_tables(tables: RobustnessTables) -> list[Table]:
    """One rich table per attack x target, languages as rows (fits 100 columns)."""
    out = []
    for attack in tables.attacks:
        for target in tables.targets[attack]:
            rows = metric_rows(tables, attack, target)
            if not rows:
                continue
            table = Table(title=table_title(attack, target))
            table.add_column("lang")
            table.add_column("intermediate")
            for header, _, _ in COLUMNS:
                table.add_column(header.replace(" ", "\n", 1), justify="right")
            previous = None
            for row in rows:
                table.add_row(row[0] if row[0] != previous else "", *row[1:])
                previous = row[0]
            out.append(table)
    return out


def _curve(by_layer: dict[int, dict[int, float]]) -> list[float]:
    """Mean over seeds at each layer 0..max (NaN where a layer has no value)."""
    if not by_layer:
        return []
    means = []
    for layer in range(max(by_layer) + 1):
        found = [v for v in by_layer.get(layer, {}).values() if not math.isnan(v)]
        means.append(float(np.mean(found)) if found else math.nan)
    return means


STABILITY_PANELS = (("flip_auc", "flip AUC"), ("cosine", "clean vs adversarial cosine"))


Curves = dict[tuple[str, str, str], tuple[list[float], list[float] | None, list[float] | None]]


def stability_curves(tables: RobustnessTables, attack: str, target: str) -> Curves:
    """(measure, stage, intermediate) -> (curve, band low, band high) by layer, each the mean over seeds;
    the band is flip AUC's bootstrap interval (the mean over seeds of its bounds), None for the cosine."""
    curves: Curves = {}
    for measure, _ in STABILITY_PANELS:
        for stage in STAGES:
            for inter in tables.intermediates:
                curve = _curve(tables.stability.get((attack, target, inter, stage, measure), {}))
                if not curve:
                    continue
                low = _curve(tables.stability.get((attack, target, inter, stage, f"{measure}_low"), {}))
                high = _curve(tables.stability.get((attack, target, inter, stage, f"{measure}_high"), {}))
                band = len(low) == len(high) == len(curve)
                curves[measure, stage, inter] = (curve, low if band else None, high if band else None)
    return curves


def stability_png(tables: RobustnessTables, attack: str, target: str) -> str | None:
    """Rows: flip AUC (with its band) and cosine by layer; columns: the stages; one line per intermediate
    task, so that direct fine-tuning and each intermediate task are compared at every layer."""
    curves = stability_curves(tables, attack, target)
    stages = [stage for stage in STAGES if any(key[1] == stage for key in curves)]
    if not stages:
        return None
    fig, axes = plt.subplots(
        len(STABILITY_PANELS),
        len(stages),
        figsize=(3.4 * len(stages), 2.6 * len(STABILITY_PANELS)),
        squeeze=False,
        layout="constrained",
    )
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, (measure, label) in enumerate(STABILITY_PANELS):
        for column, stage in enumerate(stages):
            ax = axes[row][column]
            for k, inter in enumerate(tables.intermediates):
                if (measure, stage, inter) not in curves:
                    continue
                curve, low, high = curves[measure, stage, inter]
                colour, layers = colours[k % len(colours)], np.arange(len(curve))
                ax.plot(layers, curve, marker=".", color=colour, label=inter)
                if low is not None and high is not None:
                    ax.fill_between(layers, low, high, color=colour, alpha=0.2, linewidth=0)
            if row == 0:
                ax.set_title(f"{stage} checkpoint", fontsize=9)
            if column == 0:
                ax.set_ylabel(label, fontsize=8)
            if row == len(STABILITY_PANELS) - 1:
                ax.set_xlabel("layer", fontsize=8)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
    fig.suptitle(f"{attack} on {target}: alignment stability by layer (mean over seeds)", fontsize=10)
    return png_base64(fig)


def marked_field(text: str, edits: Sequence[dict]) -> tuple[str, str, str]:
    """(original HTML, perturbed HTML, perturbed plain text) of one field: the words each edit replaced
    marked in `text`, its replacement marked in the text with the edits applied (as `apply_edits` does:
    everything between words stays). Every piece of text is HTML-escaped."""
    spans = word_spans(text)
    original, perturbed, plain, last = [], [], [], 0
    for edit in sorted(edits, key=lambda e: e["start"]):
        start, end = edit["start"], edit["end"]
        if not 0 <= start < end <= len(spans) or spans[start][0] < last:
            raise ValueError(f"edit {edit} does not fit the {len(spans)} words of the text or overlaps")
        begin, finish = spans[start][0], spans[end - 1][1]
        between = html.escape(text[last:begin])
        language = html.escape(str(edit.get("language", "")), quote=True)
        original += [between, f"<mark>{html.escape(text[begin:finish])}</mark>"]
        perturbed += [between, f'<mark title="{language}">{html.escape(edit["text"])}</mark>']
        plain += [text[last:begin], edit["text"]]
        last = finish
    rest = text[last:]
    return (
        "".join(original) + html.escape(rest),
        "".join(perturbed) + html.escape(rest),
        "".join(plain) + rest,
    )


def example_html(record: AttackRecord, checkpoint: str) -> str:
    """One attacked example: what it was, and each field's original and perturbed text side by side."""
    mixed = ", ".join(record.languages_mixed) or "-"
    header = (
        f"{record.language} #{record.id} ({checkpoint}): label {record.label}, prediction "
        f"{record.prediction_before} → {record.prediction_after}; {record.words_changed} of "
        f"{record.words} words changed; languages mixed in: {mixed}; {record.queries} queries"
    )
    by_field: dict[str, list[dict]] = defaultdict(list)
    for edit in record.edits:
        by_field[edit["field"]].append(edit)
    rows = []
    for name, text in record.original.items():
        original, perturbed, plain = marked_field(text, by_field.get(name, []))
        stored = record.perturbed.get(name, text)
        if plain != stored:  # the edits do not explain the saved text: show it as saved, unmarked
            perturbed = html.escape(stored) + " <em>(edits do not reproduce this text)</em>"
        rows.append(f"<tr><th>{html.escape(name)}</th><td>{original}</td><td>{perturbed}</td></tr>")
    return (
        f'<div class="example"><p>{html.escape(header)}</p><table class="example">'
        "<tr><th>field</th><th>original</th><th>perturbed</th></tr>" + "".join(rows) + "</table></div>"
    )


def pick_examples(
    tables: RobustnessTables, run_dir: Path, attack: str, count: int = EXAMPLES_PER_ATTACK
) -> list[tuple[AttackRecord, str]]:
    """Up to `count` successful attacks from the current steps' JSONL files, taken in turn from each
    file (checkpoints and languages in order) so that they differ; with the checkpoint each attacked."""
    steps = [(key, checkpoint) for (name, key), checkpoint in tables.steps.items() if name == attack]
    steps.sort(key=lambda step: (step[1][1], tables.intermediates.index(step[1][0]), step[1][2]))
    queues = []
    for key, (inter, target, seed) in steps:
        for lang in tables.languages.get((attack, target), []):
            path = examples_file(run_dir, attack, key, lang)
            if path.exists():
                found = [r for r in read_records(path) if r.outcome == "successful"]
                queues.append((found, f"{inter} → {target}, seed {seed}"))
    picked: list[tuple[AttackRecord, str]] = []
    for position in range(max((len(found) for found, _ in queues), default=0)):
        for found, checkpoint in queues:
            if position < len(found) and len(picked) < count:
                picked.append((found[position], checkpoint))
    return picked


def html_sections(tables: RobustnessTables | None, run_dir: Path) -> list[str]:
    """HTML for the report page: per attack, its tables, stability figures and examples."""
    if tables is None:
        return []
    sections = []
    for attack in tables.attacks:
        sections.append(f"<h2>Robustness: {html.escape(attack)}</h2>")
        for target in tables.targets[attack]:
            rows = metric_rows(tables, attack, target)
            if rows:
                sections.append(f"<h3>{html.escape(table_title(attack, target))}</h3>")
                sections.append(html_table(["language", "intermediate", *(c[0] for c in COLUMNS)], rows))
            picture = stability_png(tables, attack, target)
            if picture:
                sections.append(
                    f'<img alt="{html.escape(attack)} on {html.escape(target)}: alignment stability" '
                    f'src="data:image/png;base64,{picture}">'
                )
        examples = pick_examples(tables, run_dir, attack)
        if examples:
            sections.append(f"<h3>Successful {html.escape(attack)} attacks (changed words marked)</h3>")
            sections += [example_html(record, checkpoint) for record, checkpoint in examples]
    return sections
