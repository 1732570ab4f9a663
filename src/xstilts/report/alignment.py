"""The alignment part of `xstilts report`: per-layer curves and change heatmaps from the results store.

Reads what `xstilts align` stored (see `analysis/changes.py` for the layout): "alignment:<corpus>" rows
give the curves (mean over seeds, one line per checkpoint, one panel per language pair), and
"alignment-change:<corpus>" rows give the checkpoint x layer heatmap of the change from pretrained and the
table of changes with their intervals; "alignment-correlation:<corpus>" rows give the correlation table.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from rich.table import Table

from xstilts.report.render import html_table, plt, png_base64

PLOTTED = ("retrieval_cosine_xx_en", "retrieval_margin_xx_en", "mining_f1", "cka", "cosine_gap", "word_weak")
MEAN = "mean"


@dataclass
class AlignmentTables:
    corpus: str
    values: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)  # (name, measure, label)
    changes: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # (name, measure) -> by layer
    intervals: dict[tuple[str, str, int], tuple[float, float, float]] = field(default_factory=dict)
    correlations: list[tuple[str, str, float, float, float, int]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    focus: int | None = None


def _by_layer(found: dict[int, float]) -> list[float]:
    return [found.get(layer, math.nan) for layer in range(max(found) + 1)] if found else []


def build_alignment_tables(rows: list[dict]) -> list[AlignmentTables]:
    """One AlignmentTables per corpus that has alignment rows, in the order they were stored."""
    corpora: dict[str, AlignmentTables] = {}
    raw: dict[str, dict] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    change_raw: dict[str, dict] = defaultdict(lambda: defaultdict(dict))
    bounds: dict[str, dict] = defaultdict(lambda: defaultdict(dict))
    corr_raw: dict[str, dict] = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        family, _, corpus = row["phase"].partition(":")
        if family not in ("alignment", "alignment-change", "alignment-correlation") or not corpus:
            continue
        tables = corpora.setdefault(corpus, AlignmentTables(corpus))
        metric, suffix = row["metric"].partition("/")[::2]
        if family == "alignment-correlation":
            corr_raw[corpus][row["target"], metric][suffix] = row["value"]
            continue
        measure, _, at = metric.rpartition("@")
        layer = int(at)
        if family == "alignment":
            raw[corpus][row["target"], measure, row["language"]][layer].append(row["value"])
            if row["target"] not in tables.names:
                tables.names.append(row["target"])
            if row["language"] not in (*tables.labels, "all"):
                tables.labels.append(row["language"])
        elif row["language"] == MEAN:
            if suffix:
                bounds[corpus][row["target"], measure, layer][suffix] = row["value"]
            else:
                change_raw[corpus][row["target"], measure][layer] = row["value"]
    for corpus, tables in corpora.items():
        tables.values = {
            key: _by_layer({layer: float(np.mean(v)) for layer, v in found.items()})
            for key, found in raw[corpus].items()
        }
        tables.changes = {key: _by_layer(found) for key, found in change_raw[corpus].items()}
        for (name, measure, layer), found in bounds[corpus].items():
            if "low" in found and "high" in found:
                estimate = change_raw[corpus].get((name, measure), {}).get(layer, math.nan)
                tables.intervals[name, measure, layer] = (estimate, found["low"], found["high"])
        focus = [layer for (_, measure, layer) in tables.intervals if measure == "cka"]
        tables.focus = focus[0] if focus else None
        for (scope, metric), found in corr_raw[corpus].items():
            method, _, measured = metric.partition(":")
            tables.correlations.append(
                (
                    scope,
                    f"{measured} ({method})",
                    found.get("", math.nan),
                    found.get("low", math.nan),
                    found.get("high", math.nan),
                    int(found.get("n", 0)),
                )
            )
    return list(corpora.values())


def curves_png(tables: AlignmentTables, measure: str) -> str | None:
    """One panel per language pair: the measure by layer, one line per checkpoint."""
    labels = [
        label for label in tables.labels if any((n, measure, label) in tables.values for n in tables.names)
    ]
    if not labels:
        return None
    columns = min(4, len(labels))
    rows = math.ceil(len(labels) / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.2 * columns, 2.4 * rows), squeeze=False, sharey=True, layout="constrained"
    )
    for ax, label in zip(axes.flat, labels, strict=False):
        for name in tables.names:
            curve = tables.values.get((name, measure, label))
            if curve:
                ax.plot(range(len(curve)), curve, marker=".", label=name)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("layer", fontsize=8)
    for ax in list(axes.flat)[len(labels) :]:
        ax.axis("off")
    axes[0][0].set_ylabel(measure, fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{tables.corpus}: {measure} by layer", fontsize=10)
    return png_base64(fig)


def change_heatmap_png(tables: AlignmentTables, measure: str) -> str | None:
    """Checkpoint x layer: change of the mean over pairs from pretrained (diverging colours around 0)."""
    names = [name for name in tables.names if tables.changes.get((name, measure))]
    if not names:
        return None
    width = max(len(tables.changes[name, measure]) for name in names)
    grid = np.full((len(names), width), np.nan)
    for row, name in enumerate(names):
        curve = tables.changes[name, measure]
        grid[row, : len(curve)] = curve
    bound = float(np.nanmax(np.abs(grid))) or 1.0
    fig, ax = plt.subplots(figsize=(1.5 + 0.45 * width, 0.9 + 0.45 * len(names)))
    image = ax.imshow(grid, cmap="RdBu", vmin=-bound, vmax=bound, aspect="auto")
    ax.set_xticks(range(width), [str(layer) for layer in range(width)], fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("layer")
    fig.colorbar(image, ax=ax, label=f"change in {measure}")
    ax.set_title(f"{tables.corpus}: change from pretrained, mean over pairs", fontsize=10)
    return png_base64(fig)


def interval_rows(tables: AlignmentTables) -> list[list[str]]:
    """checkpoint, measure, change at the focus layer [interval]."""

    def order(item):
        (name, measure, _), _ = item
        return tables.names.index(name) if name in tables.names else len(tables.names), measure

    return [
        [name, measure, f"{estimate:+.3f} [{low:+.3f}, {high:+.3f}]"]
        for (name, measure, layer), (estimate, low, high) in sorted(tables.intervals.items(), key=order)
        if layer == tables.focus
    ]


def terminal_table(tables: AlignmentTables) -> Table:
    table = Table(
        title=f"{tables.corpus} alignment: change from pretrained at layer {tables.focus}, mean over pairs"
    )
    for column in ("checkpoint", "measure", "change [95% interval]"):
        table.add_column(column)
    for row in interval_rows(tables):
        table.add_row(*row)
    return table


def html_sections(all_tables: list[AlignmentTables]) -> list[str]:
    """HTML for the report page: per corpus, the interval table, correlations, heatmaps and curves."""
    sections = []
    for tables in all_tables:
        sections.append(f"<h2>Alignment ({html.escape(tables.corpus)})</h2>")
        if tables.intervals:
            sections.append(
                f"<h3>Change from pretrained at layer {tables.focus} (95% bootstrap interval)</h3>"
            )
            sections.append(html_table(["checkpoint", "measure", "change"], interval_rows(tables)))
        if tables.correlations:
            sections.append("<h3>Alignment vs zero-shot score (over languages and tasks)</h3>")
            rows = [
                [scope, measure, f"{r:+.2f}", f"[{low:+.2f}, {high:+.2f}]", str(n)]
                for scope, measure, r, low, high, n in tables.correlations
            ]
            sections.append(html_table(["scope", "measure", "r", "interval", "n"], rows))
        for measure in PLOTTED:
            for picture in (change_heatmap_png(tables, measure), curves_png(tables, measure)):
                if picture:
                    sections.append(
                        f'<img alt="{html.escape(measure)}" src="data:image/png;base64,{picture}">'
                    )
    return sections
