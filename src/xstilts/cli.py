"""The `xstilts` command line: run, grid, report, score, tasks, models."""

from __future__ import annotations

import sys
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from xstilts.errors import XstiltsError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()


def _fail(err: Exception) -> None:
    console.print(f"[bold red]error:[/bold red] {err}", highlight=False)
    raise typer.Exit(code=2)


@app.command()
def run(config: Annotated[Path, typer.Argument(help="experiment YAML, e.g. configs/demo.yaml")]) -> None:
    """Run an experiment: intermediate training, target fine-tuning, zero-shot evaluation; then report."""
    from xstilts.config import load_config
    from xstilts.pipeline.runner import run_experiment

    try:
        cfg = load_config(config)
        _announce("run", cfg)
        with _locked(cfg.run_dir, "run"):
            run_dir = run_experiment(cfg, console)
            _report(run_dir)
    except XstiltsError as err:
        _fail(err)


def _locked(run_dir: Path, command: str):
    """The run directory's lock for the command's writes (see `pipeline.run_lock`)."""
    from xstilts.pipeline.run_lock import run_lock

    return run_lock(run_dir, f"xstilts {command}", console)


def _align_run_dir(path: Path) -> Path | None:
    """The run directory `align` writes to: the YAML's, or `path` itself if it is one (else None)."""
    from xstilts.config import load_config

    if path.is_file():
        return load_config(path).run_dir
    return path if (path / "config.json").is_file() else None


def _announce(command: str, cfg) -> None:
    console.print(
        f"[bold]xstilts {command}[/bold] {cfg.name}: model {cfg.model}, intermediate {cfg.intermediate}, "
        f"targets {cfg.targets}, seeds {cfg.seeds} -> {cfg.run_dir}"
    )


def _report(run_dir: Path) -> None:
    """What `run` and `grid` print at the end: the paper-shaped table, the store and the HTML report."""
    from xstilts.report import report_run

    html = report_run(run_dir, console, per_language=False)
    console.print(f"results store: {run_dir / 'results.sqlite'}")
    console.print(f"HTML report: {html}")


@app.command()
def grid(
    config: Annotated[Path, typer.Argument(help="experiment YAML, e.g. configs/phang2020/all-nine.yaml")],
    address: Annotated[
        str | None,
        typer.Option("--address", help='join a running Ray cluster ("auto", "ray://host:10001")'),
    ] = None,
    num_cpus: Annotated[
        int | None, typer.Option("--num-cpus", min=1, help="CPUs of the local Ray instance started")
    ] = None,
) -> None:
    """Run an experiment's steps as Ray tasks (one GPU each when there are GPUs); then report like `run`.

    Targets start as soon as their intermediate model exists; an interrupted grid resumes with either command.
    """
    from xstilts.config import load_config
    from xstilts.pipeline.grid import run_grid

    try:
        cfg = load_config(config)
        _announce("grid", cfg)
        with _locked(cfg.run_dir, "grid"):  # held by the driver: its Ray steps are the only writers
            run_dir = run_grid(cfg, console, address=address, num_cpus=num_cpus)
            _report(run_dir)
    except XstiltsError as err:
        _fail(err)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a run directory made by `xstilts run`")]) -> None:
    """Print the paper-shaped table and per-language tables of a run, and write its HTML report."""
    from xstilts.report import report_run

    try:
        html = report_run(run_dir, console)
    except XstiltsError as err:
        _fail(err)
    console.print(f"HTML report: {html}")


@app.command()
def score(
    pred_dir: Annotated[
        Path, typer.Argument(help="predictions in XTREME's layout: <task>/test-<lang>.tsv|json")
    ],
    gold_dir: Annotated[Path, typer.Argument(help="gold labels in the same layout")],
    json_path: Annotated[
        Path | None, typer.Option("--json", help="also write the scores (fractions) to this JSON file")
    ] = None,
    partial: Annotated[
        bool,
        typer.Option(
            "--partial",
            help="score the listed languages that have both files instead of failing on missing ones",
        ),
    ] = False,
) -> None:
    """Score predictions in XTREME's submission layout as its evaluate.py does, with the XTREME score.

    Each task is scored over XTREME's fixed language list for it; gold files of other languages are
    ignored (and noted), and a listed language without a gold or prediction file is an error unless
    --partial. Tagging and BUCC show precision and recall beside F1, the headline.
    """
    from xstilts.evaluate.xtreme import print_scores, score_submission, write_scores_json

    try:
        scores = score_submission(pred_dir, gold_dir, partial=partial)
        print_scores(scores, console)
        if json_path is not None:
            console.print(f"scores: {write_scores_json(scores, json_path)}")
    except XstiltsError as err:
        _fail(err)


@app.command()
def tasks(
    name: Annotated[str | None, typer.Argument(help="one task: print all its languages and data")] = None,
) -> None:
    """List the registered tasks (the paper's 18 and the embedded Bible benchmark), or describe one."""
    from xstilts.tasks.registry import TASK_TABLE, get_task

    if name is not None:
        try:
            spec = get_task(name)
        except XstiltsError as err:
            _fail(err)
        console.print(f"[bold]{spec.name}[/bold] ({spec.paper_name or 'embedded'}): {spec.description}")
        metrics = ", ".join((spec.metric, *spec.extra_metrics))
        console.print(f"kind {spec.kind}, metrics {metrics}, roles {','.join(spec.roles)}")
        console.print(f"languages ({len(spec.languages)}): {' '.join(spec.languages)}")
        for split, refs in spec.data.items():
            for ref in refs:
                hub = f"hub {ref.dataset_path} {ref.dataset_name or '(default config)'} split {ref.split}"
                where = f"{hub if ref.dataset_path else 'local files only'}; file <data_dir>/{ref.local_file}"
                console.print(f"  {split}: {where} ({ref.local_format})", markup=False, highlight=False)
        return
    table = Table(title="tasks (xstilts tasks NAME for one task's languages and data)")
    table.add_column("name", no_wrap=True)
    table.add_column("paper", no_wrap=True)
    for column in ("kind", "role", "metric", "langs", "description"):
        table.add_column(column, overflow="fold")
    for spec in TASK_TABLE:
        table.add_row(
            spec.name,
            spec.paper_name or "-",
            spec.kind,
            ",".join(spec.roles),
            spec.metric,
            str(len(spec.languages)),
            spec.description,
        )
    console.print(table)


@app.command()
def models() -> None:
    """List the built-in models (any hub id or local checkpoint directory works too)."""
    from xstilts.models.loading import BUILTIN_MODELS

    table = Table(title="built-in models (plus any hub id or local directory)")
    table.add_column("name", no_wrap=True)
    table.add_column("description", overflow="fold")
    for name, (_, description) in BUILTIN_MODELS.items():
        table.add_row(name, description)
    console.print(table)


def _csv(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


@app.command()
def align(
    run_dir: Annotated[
        Path, typer.Argument(help="a run directory made by `xstilts run`, or an experiment YAML (run first)")
    ],
    corpus: Annotated[str | None, typer.Option(help="parallel data: bible, tatoeba or bucc")] = None,
    languages: Annotated[
        str | None,
        typer.Option(help="comma-separated languages paired with English; default: the run's languages"),
    ] = None,
    pairs: Annotated[str | None, typer.Option(help="extra pairs, e.g. de-fr,ru-uk (Bible: any two)")] = None,
    examples: Annotated[int | None, typer.Option(min=2, help="parallel sentences per pair")] = None,
    pooling: Annotated[str | None, typer.Option(help="sentence pooling: mean or first")] = None,
    center: Annotated[bool | None, typer.Option(help="subtract each language's mean vector")] = None,
    words: Annotated[
        str | None, typer.Option(help="word pairs from: alignment (eflomal), dictd, or none")
    ] = None,
    layer: Annotated[
        int | None, typer.Option(help="focus layer of intervals and correlations; default: retrieval layer")
    ] = None,
) -> None:
    """Per-layer alignment of every checkpoint (retrieval, mining, CKA, cosine gap, words, language probe),
    changes from pretrained with bootstrap intervals, and the correlation with zero-shot scores."""
    from xstilts.analysis.alignment import SmallSampleWarning
    from xstilts.analysis.driver import align_run

    overrides = {
        "corpus": corpus,
        "languages": _csv(languages),
        "pairs": _csv(pairs),
        "examples": examples,
        "pooling": pooling,
        "center": center,
        "layer": layer,
        "words": None if words is None else {"source": words},
    }
    caught = []
    try:
        target = _align_run_dir(run_dir)
        with warnings.catch_warnings(record=True) as caught, ExitStack() as stack:
            if target is not None:
                stack.enter_context(_locked(target, "align"))
            warnings.simplefilter("always", SmallSampleWarning)
            align_run(run_dir, console, **overrides)
    except XstiltsError as err:
        _fail(err)
    finally:
        for warning in caught:  # said once, plainly, after the tables
            console.print(f"[yellow]warning: {warning.message}[/yellow]")


def main() -> None:  # pragma: no cover - console entry
    try:
        app()
    except KeyboardInterrupt:
        console.print(
            "[yellow]interrupted: completed steps are saved; rerun the same command to resume[/yellow]"
        )
        sys.exit(130)


if __name__ == "__main__":  # `accelerate launch -m xstilts.cli run CONFIG`
    main()
