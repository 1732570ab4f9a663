"""Rendering: rich tables for the terminal, and a single-file HTML report with matplotlib figures."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from rich.table import Table  # noqa: E402

from xstilts.io import atomic_file  # noqa: E402
from xstilts.report.tables import Tables, format_cell  # noqa: E402


def summary_table(tables: Tables) -> Table:
    table = Table(title="Zero-shot transfer: mean over languages (difference to no intermediate task)")
    table.add_column("intermediate")
    for target in tables.targets:
        table.add_column(f"{target}\n({len(tables.languages[target])} langs)", justify="right")
    for inter in tables.intermediates:
        table.add_row(
            inter, *(format_cell(tables.mean(inter, t), tables.delta(inter, t)) for t in tables.targets)
        )
    return table


def language_table(tables: Tables, target: str) -> Table:
    table = Table(title=f"{target}: zero-shot score per language")
    table.add_column("intermediate")
    for lang in tables.languages[target]:
        table.add_column(lang, justify="right")
    for inter in tables.intermediates:
        values = [tables.per_language.get((inter, target, lang)) for lang in tables.languages[target]]
        table.add_row(inter, *("-" if v is None else f"{100 * v:.1f}" for v in values))
    return table


def png_base64(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def heatmap_png(tables: Tables) -> str:
    grid = np.array([[tables.mean(i, t) for t in tables.targets] for i in tables.intermediates]) * 100
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(tables.targets), 1.2 + 0.6 * len(tables.intermediates)))
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(tables.targets)), tables.targets, rotation=20, ha="right")
    ax.set_yticks(range(len(tables.intermediates)), tables.intermediates)
    for (row, col), value in np.ndenumerate(grid):
        delta = tables.delta(tables.intermediates[row], tables.targets[col])
        label = f"{value:.1f}" + ("" if delta is None else f"\n{100 * delta:+.1f}")
        ax.text(col, row, label, ha="center", va="center", color="white", fontsize=9)
    fig.colorbar(image, ax=ax, label="mean zero-shot score (%)")
    ax.set_title("intermediate task x target task")
    return png_base64(fig)


def language_bars_png(tables: Tables, target: str) -> str:
    langs = tables.languages[target]
    width = 0.8 / max(1, len(tables.intermediates))
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(langs) * len(tables.intermediates)), 3.2))
    for k, inter in enumerate(tables.intermediates):
        values = [100 * tables.per_language.get((inter, target, lang), np.nan) for lang in langs]
        ax.bar(np.arange(len(langs)) + k * width, values, width, label=inter)
    ax.set_xticks(np.arange(len(langs)) + width * (len(tables.intermediates) - 1) / 2, langs)
    ax.set_ylabel("score (%)")
    ax.set_title(f"{target}: per-language zero-shot score")
    ax.legend(fontsize=8)
    return png_base64(fig)


def html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_html(tables: Tables, path: Path, title: str, extra_sections: list[str] = ()) -> Path:
    """The report page: zero-shot tables and figures, then `extra_sections` (the alignment analysis)."""
    summary = html_table(
        ["intermediate", *tables.targets],
        [
            [i, *(format_cell(tables.mean(i, t), tables.delta(i, t)) for t in tables.targets)]
            for i in tables.intermediates
        ],
    )
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Mean zero-shot score over languages (difference to no intermediate task)</h2>",
        summary,
        f'<img alt="heatmap" src="data:image/png;base64,{heatmap_png(tables)}">',
    ]
    for target in tables.targets:
        langs = tables.languages[target]
        rows = [
            [
                i,
                *(
                    f"{100 * tables.per_language[(i, target, lang)]:.1f}"
                    if (i, target, lang) in tables.per_language
                    else "-"
                    for lang in langs
                ),
            ]
            for i in tables.intermediates
        ]
        sections += [
            f"<h2>{html.escape(target)}</h2>",
            html_table(["intermediate", *langs], rows),
            f'<img alt="{html.escape(target)} per language" src="data:image/png;base64,'
            f'{language_bars_png(tables, target)}">',
        ]
    sections += list(extra_sections)
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}"
        "table.example td{text-align:left;max-width:40em}mark{background:#fd6}"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(sections)}</body></html>"
    )
    with atomic_file(path) as handle:
        handle.write(page)
    return path
