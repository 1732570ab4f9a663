"""Reports over a run directory's results store."""

from __future__ import annotations

import html
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from xstilts.errors import XstiltsError
from xstilts.pipeline.layout import STRATEGIES_KEY
from xstilts.pipeline.store import STORE_FILE, ResultsStore
from xstilts.report.alignment import build_alignment_tables, html_sections, terminal_table
from xstilts.report.domain_shift import (
    SUMMARY_COLUMNS,
    budget_rows,
    build_shift_tables,
    language_rows,
    summary_rows,
    summary_title,
)
from xstilts.report.render import html_table, language_table, summary_table, write_html
from xstilts.report.robust_training import (
    build_robust_training_tables,
    header,
    table_rows,
    title,
)
from xstilts.report.robustness import build_robustness_tables, terminal_tables
from xstilts.report.robustness import html_sections as robustness_sections
from xstilts.report.tables import build_tables


def protocol_notes(config: dict) -> list[str]:
    """Departures from the published protocol that the run's config asked for, to print beside its numbers."""
    notes = []
    retrieval = config.get("retrieval") or {}
    if retrieval.get("allow_gold_only_bucc"):
        notes.append(
            "allow_gold_only_bucc: mining pools that hold only gold pairs were accepted; their F1 is not "
            "comparable with published BUCC numbers"
        )
    if retrieval.get("direction") == "xx->en":
        notes.append(
            "retrieval.direction xx->en: Tatoeba-style accuracy searched xx->en, not XTREME's en->xx"
        )
    return notes


def robust_training_tables(rows: list[dict], config: dict) -> list:
    """The robust-training comparison of a run whose config.json records its arms' strategies."""
    from xstilts.tasks.registry import TASKS

    metrics = {name: spec.metric for name, spec in TASKS.items()}
    return build_robust_training_tables(rows, config.get(STRATEGIES_KEY) or {}, metrics)


def robust_training_terminal(table) -> Table:
    out = Table(title=title(table))
    for column in ["arm", "intermediate strategy", "target strategy", *map(header, table.columns)]:
        out.add_column(column.replace(" ", "\n", 1))
    for row in table_rows(table):
        out.add_row(*row)
    return out


def robust_training_html(table) -> str:
    columns = ["arm", "intermediate strategy", "target strategy", *map(header, table.columns)]
    return f"<h2>{html.escape(title(table))}</h2>" + html_table(columns, table_rows(table))


def domain_shift_tables(rows: list[dict], config: dict) -> list:
    """The domain-shift comparison of a run whose config names `domain_shifts`."""
    from xstilts.tasks.domains import get_shift
    from xstilts.tasks.registry import get_task

    shifts = config.get("domain_shifts") or []
    metrics = {name: get_task(get_shift(name).in_domain.task).metric for name in shifts}
    return build_shift_tables(rows, shifts, metrics, config.get("mixtures") or {})


def _rich_table(title: str, columns: list[str], rows: list[list[str]]) -> Table:
    out = Table(title=title)
    for column in columns:
        out.add_column(column)
    for row in rows:
        out.add_row(*row)
    return out


def domain_shift_sections(tables: list, rows: list[dict], config: dict) -> list[tuple]:
    """(title, columns, rows) of the domain-shift tables and, for a run with a budget or translated
    intermediate data, of what each arm's intermediate training consumed."""
    sections = []
    for table in tables:
        sections.append((summary_title(table), SUMMARY_COLUMNS, summary_rows(table)))
        columns, by_language = language_rows(table)
        title = f"{table.shift} per language: in-domain / out-of-domain (drop), mean over seeds (%)"
        sections.append((title, columns, by_language))
    mixtures = (config.get("mixtures") or {}).values()
    compared = config.get("budget") or any(mixture.get("translate") for mixture in mixtures)
    columns, consumed = budget_rows(rows)
    if consumed and compared:
        title = "intermediate training consumed (mean over seeds): examples, examples seen, steps, tokens"
        sections.append((title, columns, consumed))
    return sections


def earlier_steps(rows: list[dict]) -> dict[str, list[dict]]:
    """Rows of earlier settings grouped by the key of the step that wrote them."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["config_hash"], []).append(row)
    return groups


def earlier_section(rows: list[dict]) -> list[str]:
    """The report's last section: what the store keeps from earlier settings, labelled, never dropped."""
    if not rows:
        return []
    lines = []
    for key, found in sorted(earlier_steps(rows).items()):
        first, phases = found[0], ", ".join(sorted({row["phase"] for row in found}))
        names = [first["intermediate"], first["target"], str(first["seed"])]
        lines.append([key, *names, phases, str(len(found))])
    return [
        "<h2>Earlier settings</h2>",
        "<p>Rows stored by steps run with settings this config no longer has (kept in results.sqlite).</p>",
        html_table(["step key", "intermediate", "target", "seed", "phases", "rows"], lines),
    ]


def current_keys(config: dict) -> set[str]:
    """The step keys whose rows are current: the run's steps (config.json `step_keys`), its fingerprint,
    and the attacks (`attack_step_keys`: attack key -> the key of the checkpoint it attacked) whose
    checkpoint is still one of the run's current steps."""
    steps = set(config.get("step_keys") or ()) | {config["config_hash"]}
    attacks = config.get("attack_step_keys") or {}
    return steps | {key for key, checkpoint in attacks.items() if checkpoint in steps}


def stored_rows(run_dir: Path) -> tuple[list[dict], list[dict], dict]:
    """(current rows, rows of earlier settings, config.json) of a run directory (rows are stored under
    the key of the step that wrote them; `current_keys` says which are current)."""
    run_dir = Path(run_dir)
    if not (run_dir / STORE_FILE).exists():
        raise XstiltsError(
            f"{run_dir} has no {STORE_FILE}: not a run directory (run `xstilts run CONFIG` first)"
        )
    rows = ResultsStore.in_run_dir(run_dir).rows()
    config_file = run_dir / "config.json"
    if not config_file.exists():
        return rows, [], {}
    config = json.loads(config_file.read_text())
    current = current_keys(config)
    earlier = [row for row in rows if row["config_hash"] not in current]
    return [row for row in rows if row["config_hash"] in current], earlier, config


def print_robustness(run_dir: Path, console: Console) -> None:
    """The robustness tables alone (what `xstilts attack` prints at the end)."""
    robustness = build_robustness_tables(stored_rows(run_dir)[0])
    for table in terminal_tables(robustness) if robustness else ():
        console.print(table)


def report_run(run_dir: Path, console: Console | None = None, per_language: bool = True) -> Path:
    """Print the summary (and per-language) tables and write `report.html`; returns its path."""
    console = console or Console()
    run_dir = Path(run_dir)
    rows, earlier, config = stored_rows(run_dir)
    notes = protocol_notes(config)
    if earlier:  # a run re-done with a changed config keeps old rows; report the current one
        console.print(
            f"[dim]{len(earlier)} rows of {len(earlier_steps(earlier))} steps run with earlier settings "
            "are kept in the store, not in these tables (listed at the end of report.html)[/dim]"
        )
    tables = build_tables(rows)
    if not tables.targets:
        raise XstiltsError(f"{run_dir / STORE_FILE} holds no zero-shot results yet")
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    console.print(summary_table(tables))
    if per_language:
        for target in tables.targets:
            console.print(language_table(tables, target))
    alignment = build_alignment_tables(rows)
    for corpus_tables in alignment:
        if corpus_tables.intervals:
            console.print(terminal_table(corpus_tables))
    robustness = build_robustness_tables(rows)  # None when no attack was run
    for table in terminal_tables(robustness) if robustness else ():
        console.print(table)
    robust_training = robust_training_tables(rows, config)  # [] without robust-training arms
    for table in robust_training:
        console.print(robust_training_terminal(table))
    shifted = domain_shift_sections(domain_shift_tables(rows, config), rows, config)  # [] without them
    for title_text, columns, table_rows_ in shifted:
        console.print(_rich_table(title_text, columns, table_rows_))
    return write_html(
        tables,
        run_dir / "report.html",
        f"xstilts report: {run_dir.name}",
        extra_sections=[
            *(f'<p class="note">note: {html.escape(note)}</p>' for note in notes),
            *html_sections(alignment),
            *robustness_sections(robustness, run_dir),
            *(robust_training_html(table) for table in robust_training),
            *(f"<h2>{html.escape(t)}</h2>" + html_table(c, r) for t, c, r in shifted),
            *earlier_section(earlier),
        ],
    )
