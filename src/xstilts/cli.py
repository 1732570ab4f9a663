"""The `xstilts` command line: run, grid, align, attack, report, score, tasks, models."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from xstilts.errors import XstiltsError, unknown_name

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()


RESUME_HINT = "interrupted: completed steps are saved; rerun the same command to resume"

_FILE_IN_THE_WAY = "a file stands where a directory is needed: check the path (output_dir is a directory)"
_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free some space, or set output_dir on another disk",
    errno.EDQUOT: "the disk quota is used up: free some space, or set output_dir elsewhere",
    errno.EACCES: "check the permissions, or choose a path you can write",
    errno.EPERM: "check the permissions, or choose a path you can write",
    errno.EROFS: "the file system is read-only: set output_dir on a writable one",
    errno.ENOTDIR: _FILE_IN_THE_WAY,
    errno.EEXIST: _FILE_IN_THE_WAY,
    errno.EISDIR: "a directory stands where a file is needed: check the path",
    errno.ENOENT: "check that the path exists",
}


def _fail(err: Exception | str) -> None:
    console.print(f"[bold red]error:[/bold red] {escape(str(err))}", highlight=False)
    raise typer.Exit(code=2)


def os_error_message(err: OSError) -> str:
    """`<path>: <reason>; <what to do>` for a file-system error (no traceback)."""
    paths = [str(p) for p in (err.filename, err.filename2) if p is not None]
    where = " -> ".join(paths) + ": " if paths else ""
    reason = err.strerror or str(err) or type(err).__name__
    hint = _OS_HINTS.get(err.errno, "check the path and the file system")
    return f"{where}{reason}; {hint}"


def _interrupted() -> None:
    """Ctrl-C: say how to resume; a second Ctrl-C while shutting down exits at once, without a traceback."""
    _say_how_to_resume()
    raise typer.Exit(code=130)


def _say_how_to_resume() -> None:
    """Print the resume hint whole (further Ctrl-Cs wait for it), then let one more exit at once."""
    with contextlib.suppress(ValueError):  # only the main thread may set signal handlers
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    from rich.file_proxy import FileProxy

    # an interrupted progress bar may leave its stdout proxy in place, buffering what goes through it
    stream = sys.stdout
    while isinstance(stream, FileProxy):
        stream = stream.rich_proxied_file
    Console(file=stream, width=console.width).print(f"[yellow]{RESUME_HINT}[/yellow]")
    stream.flush()
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGINT, lambda *_: os._exit(130))


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Every command body runs in this: user and environment errors become one `error:` line, exit 2."""
    try:
        yield
    except XstiltsError as err:
        _fail(err)
    except OSError as err:
        _fail(os_error_message(err))
    except KeyboardInterrupt:
        _interrupted()


@app.command()
def run(config: Annotated[Path, typer.Argument(help="experiment YAML, e.g. configs/demo.yaml")]) -> None:
    """Run an experiment: intermediate training, target fine-tuning, zero-shot evaluation; then report."""
    from xstilts.config import load_config
    from xstilts.pipeline.preflight import preflight
    from xstilts.pipeline.runner import run_experiment

    with user_errors():
        cfg = load_config(config)
        _announce("run", cfg)
        preflight(cfg, console)
        with _locked(cfg.run_dir, "run"):
            run_dir = run_experiment(cfg, console)
            _report(run_dir)


def _locked(run_dir: Path, command: str):
    """The run directory's lock for the command's writes (see `pipeline.run_lock`)."""
    from xstilts.pipeline.run_lock import run_lock

    return run_lock(run_dir, f"xstilts {command}", console)


def _run_dir_of(path: Path) -> Path | None:
    """The run directory `align` or `attack` writes to: the YAML's, or `path` if it is one (else None)."""
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
    from xstilts.pipeline.preflight import preflight

    with user_errors():
        cfg = load_config(config)
        _announce("grid", cfg)
        preflight(cfg, console)
        with _locked(cfg.run_dir, "grid"):  # held by the driver: its Ray steps are the only writers
            run_dir = run_grid(cfg, console, address=address, num_cpus=num_cpus)
            _report(run_dir)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a run directory made by `xstilts run`")]) -> None:
    """Print the paper-shaped table and per-language tables of a run, and write its HTML report."""
    from xstilts.report import report_run

    with user_errors():
        html = report_run(run_dir, console)
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
    suite: Annotated[
        str,
        typer.Option("--suite", help="the benchmark version: xtreme (9 tasks) or xtreme-r (10 tasks)"),
    ] = "xtreme",
) -> None:
    """Score predictions in XTREME's submission layout as its evaluate.py does, with the suite's score.

    Each task is scored over the suite's fixed language list for it (--suite xtreme or xtreme-r, as
    evaluate.py's --xtreme_version); gold files of other languages are ignored (and noted), and a listed
    language without a gold or prediction file is an error unless --partial. Tagging and BUCC show
    precision and recall beside F1, the headline.
    """
    from xstilts.evaluate.xtreme import print_scores, score_submission, write_scores_json

    with user_errors():
        scores = score_submission(pred_dir, gold_dir, partial=partial, suite=suite)
        print_scores(scores, console)
        if json_path is not None:
            console.print(f"scores: {write_scores_json(scores, json_path)}")


@app.command()
def tasks(
    name: Annotated[str | None, typer.Argument(help="one task: print all its languages and data")] = None,
    wide: Annotated[
        bool, typer.Option("--wide", help="one table with paper names and descriptions (wide terminals)")
    ] = False,
    domain_shifts: Annotated[
        bool, typer.Option("--domain-shifts", help="the named in-domain / out-of-domain test-set pairs")
    ] = False,
) -> None:
    """List the registered tasks (the paper's 18, XTREME-R's and the embedded Bible benchmark), or one."""
    from xstilts.tasks.registry import TASK_TABLE, get_task

    if domain_shifts:
        _print_shifts()
    elif name is not None:
        with user_errors():
            spec = get_task(name)
        _describe_task(spec)
    elif wide:
        Console(width=max(console.width, 1000)).print(_task_table(TASK_TABLE))  # as wide as it needs
    else:
        for role in ("intermediate", "target", "test"):
            console.print(_task_list([spec for spec in TASK_TABLE if role in spec.roles], role))
        console.print("xstilts tasks NAME: one task's languages and data; --wide: with descriptions")
        console.print("xstilts tasks --domain-shifts: the in-domain / out-of-domain test-set pairs")


def _print_shifts() -> None:
    """The registry's domain shifts, one block each (long names stay whole on an 80-column terminal)."""
    from xstilts.tasks.domains import SHIFTS, shift_languages

    console.print("domain shifts (config: domain_shifts: [NAME])", highlight=False)
    for shift in SHIFTS:
        languages = shift_languages(shift)
        trained = " + ".join(shift.train_domains) or "all of its training data"
        console.print(f"[bold]{shift.name}[/bold]: {shift.description}", highlight=False)
        console.print(f"  target {shift.target}, trained on {escape(trained)}", highlight=False)
        console.print(f"  in-domain: {escape(shift.in_domain.describe())}", highlight=False)
        console.print(f"  out-of-domain: {escape(shift.out_of_domain.describe())}", highlight=False)
        console.print(f"  languages ({len(languages)}): {' '.join(languages)}", highlight=False)


def _describe_task(spec) -> None:
    label = spec.paper_name or ("embedded" if spec.source == "bible" else "not in Phang et al.")
    console.print(f"[bold]{spec.name}[/bold] ({label}): {spec.description}")
    metrics = ", ".join((spec.metric, *spec.extra_metrics))
    console.print(f"kind {spec.kind}, metrics {metrics}, roles {','.join(spec.roles)}")
    console.print(f"languages ({len(spec.languages)}): {' '.join(spec.languages)}")
    for split, refs in spec.data.items():
        for ref in refs:
            hub = f"hub {ref.dataset_path} {ref.dataset_name or '(default config)'} split {ref.split}"
            where = f"{hub if ref.dataset_path else 'local files only'}; file <data_dir>/{ref.local_file}"
            console.print(f"  {split}: {where} ({ref.local_format})", markup=False, highlight=False)


def _task_list(specs, role: str) -> Table:
    """Short columns that fit an 80-column terminal, never split inside a word."""
    table = Table(title=f"{role} tasks", title_justify="left", box=None, pad_edge=False)
    for column in ("name", "paper", "kind", "metric", "langs"):
        table.add_column(column, no_wrap=True, justify="right" if column == "langs" else "left")
    for spec in specs:
        table.add_row(spec.name, spec.paper_name or "-", spec.kind, spec.metric, str(len(spec.languages)))
    return table


def _task_table(specs) -> Table:
    table = Table(title="tasks (xstilts tasks NAME for one task's languages and data)", title_justify="left")
    for column in ("name", "paper", "kind", "role", "metric", "langs"):
        table.add_column(column, no_wrap=True)
    table.add_column("description")
    for spec in specs:
        table.add_row(
            spec.name,
            spec.paper_name or "-",
            spec.kind,
            ",".join(spec.roles),
            spec.metric,
            str(len(spec.languages)),
            spec.description,
        )
    return table


@app.command()
def models() -> None:
    """List the built-in models (any hub id or local checkpoint directory works too)."""
    from xstilts.models.loading import BUILTIN_MODELS

    table = Table(title="built-in models (plus any hub id or local directory)")
    table.add_column("name", no_wrap=True)
    table.add_column("description")
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
    from xstilts.config import AlignConfig, WordsConfig

    with user_errors():
        _check_choice("corpus", corpus, AlignConfig)
        _check_choice("pooling", pooling, AlignConfig)
        _check_choice("words", words, WordsConfig, field="source")
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
    caught: list = []
    try:
        with user_errors(), warnings.catch_warnings(record=True) as caught, ExitStack() as stack:
            target = _run_dir_of(run_dir)
            if target is not None:
                stack.enter_context(_locked(target, "align"))
            warnings.simplefilter("always", SmallSampleWarning)
            align_run(run_dir, console, **overrides)
    finally:
        for warning in caught:  # said once, plainly, after the tables
            console.print(f"[yellow]warning: {warning.message}[/yellow]")


@app.command()
def attack(
    run_dir: Annotated[
        Path, typer.Argument(help="a run directory made by `xstilts run`, or an experiment YAML (run first)")
    ],
    examples: Annotated[int | None, typer.Option(min=1, help="test examples attacked per language")] = None,
    languages: Annotated[
        str | None, typer.Option(help="comma-separated languages to attack; default: the run's")
    ] = None,
) -> None:
    """Attack every target checkpoint (each seed, direct and after each intermediate task) with the
    config's `attack:` section: per-language robustness with intervals over seeds, the random baseline,
    alignment stability, and every adversarial example as JSONL."""
    from xstilts.report import print_robustness
    from xstilts.robustness.driver import attack_run

    with user_errors(), ExitStack() as stack:
        target = _run_dir_of(run_dir)
        if target is not None:
            stack.enter_context(_locked(target, "attack"))
        run = attack_run(run_dir, console, examples=examples, languages=_csv(languages))
        print_robustness(run.run_dir, console)
        console.print(
            f"adversarial examples: {run.run_dir / 'attacks'}; `xstilts report {run.run_dir}` for HTML"
        )


def _check_choice(option: str, value: str | None, model, field: str | None = None) -> None:
    """A choice option answers like the config does: the valid values, not pydantic's text."""
    from typing import get_args

    valid = get_args(model.model_fields[field or option].annotation)
    if value is not None and value not in valid:
        raise unknown_name(f"--{option} value", value, valid)


def main() -> None:  # pragma: no cover - console entry
    try:
        app()
    except KeyboardInterrupt:  # before a command started (e.g. while importing)
        _say_how_to_resume()
        sys.exit(130)


if __name__ == "__main__":  # `accelerate launch -m xstilts.cli run CONFIG`
    main()
