"""Checks run before the first training step: a mistake found after hours of training costs those hours.

What can be known from the config, the model's files and the data files is checked here, all at once, so
one run of the command lists every problem: where results go (a directory that can be written), the
model (its config, weights and tokenizer readable; the retrieval layer within its layers) and every local
data file the run will read (present, UTF-8, not empty). Hub data is not fetched here.
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from xstilts.config import NONE_TASK, ExperimentConfig
from xstilts.errors import XstiltsError
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.registry import get_task
from xstilts.tasks.spec import TaskSpec


def preflight(cfg: ExperimentConfig, console: Console) -> None:
    """Raise one XstiltsError listing every problem found; print a one-line summary when there is none."""
    problems = _output_problems(cfg.run_dir)
    files, data_problems = _data_files(cfg)
    problems += data_problems
    try:
        model_config = _model_config(cfg.model)
    except XstiltsError as err:
        problems.append(str(err))
    else:
        problems += _layer_problems(cfg, model_config)
    if problems:
        listed = "\n  ".join(problems)
        raise XstiltsError(f"checked before training, {len(problems)} problem(s):\n  {listed}")
    console.print(f"[dim]preflight: config, model and {len(files)} local data file(s) checked[/dim]")


def _model_config(name: str):
    from xstilts.models.loading import check_model

    return check_model(name)


def _output_problems(run_dir: Path) -> list[str]:
    """The run directory, or its nearest existing parent, must be a directory this user can write."""
    path = Path(run_dir).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    if not path.is_dir():
        return [f"output_dir: {path} is a file, not a directory; set output_dir to a directory"]
    if not os.access(path, os.W_OK | os.X_OK):
        return [f"output_dir: {path} is not writable; set output_dir to a directory you can write"]
    return []


def _reads(cfg: ExperimentConfig) -> list[tuple[TaskSpec, str, str]]:
    """(spec, split, language) of every split the pipeline loads, as `pipeline.runner` loads them."""
    from xstilts.tasks.domains import get_shift, shift_languages
    from xstilts.tasks.sources import translated_spec

    reads = []
    for name in cfg.intermediate:
        if name == NONE_TASK:
            continue
        mixture = cfg.mixture(name)
        for task in mixture.tasks:
            spec = get_task(task)
            translate = mixture.translate
            if translate is None or translate.keep_english or translate.draw:
                reads.append((spec, "train", spec.train_language))
            for lang in translate.languages if translate else ():
                if lang != spec.train_language:
                    translated = translated_spec(spec, lang, translate, cfg.data_dir)
                    reads.append((translated, "train", lang))
            reads.append((spec, "dev", spec.train_language))
    for target in cfg.targets:
        spec = get_task(target)
        languages = cfg.target_languages(target)
        if get_kind(spec.kind).trains:
            reads += [(spec, "train", spec.train_language), (spec, "dev", spec.train_language)]
            reads += [(spec, "test", lang) for lang in languages]
        else:
            reads += [(spec, split, lang) for lang in languages for split in spec.splits]
    for shift in map(get_shift, cfg.domain_shifts):  # test sets of other tasks (MLQA after XQuAD)
        for test_set in shift.test_sets().values():
            reads += [
                (get_task(test_set.task), "test", lang) for lang in shift_languages(shift, cfg.languages)
            ]
    return reads


def _data_files(cfg: ExperimentConfig) -> tuple[list[Path], list[str]]:
    """(local data files the run reads, problems with them): missing, not UTF-8 or empty."""
    from xstilts.tasks.local_files import text_problem
    from xstilts.tasks.sources import local_files_read

    files: dict[Path, None] = {}
    problems: list[str] = []
    for spec, split, lang in _reads_or_problem(cfg, problems):
        try:
            files.update(dict.fromkeys(local_files_read(spec, split, lang, cfg.data_dir)))
        except XstiltsError as err:
            if str(err) not in problems:
                problems.append(str(err))
    for path in files:
        if not path.is_file():
            problems.append(f"data file not found: {path}")
        elif (problem := text_problem(path)) is not None:
            problems.append(problem)
    return list(files), problems


def _reads_or_problem(cfg: ExperimentConfig, problems: list[str]) -> list[tuple[TaskSpec, str, str]]:
    try:
        return _reads(cfg)
    except XstiltsError as err:  # e.g. a translated intermediate without its files
        problems.append(str(err))
        return []


def _layer_problems(cfg: ExperimentConfig, model_config) -> list[str]:
    """Layers the config names must exist: hidden_states 0 (the embeddings) .. num_hidden_layers."""
    layers = getattr(model_config, "num_hidden_layers", None)
    if layers is None:
        return []
    named: dict[str, int] = {}  # where a layer is named -> the layer
    if cfg.retrieval.layer is not None:
        named["retrieval.layer"] = cfg.retrieval.layer
    else:
        for target in cfg.targets:
            spec = get_task(target)
            if not get_kind(spec.kind).trains and spec.retrieval_layer is not None:
                named[f"the default layer of {target} (retrieval.layer unset)"] = spec.retrieval_layer
    if cfg.align.layer is not None:
        named["align.layer"] = cfg.align.layer
    return [
        f"{where}: layer {layer} does not exist; the model {cfg.model!r} has hidden_states 0..{layers}: "
        f"set {'align' if where.startswith('align') else 'retrieval'}.layer to one of them"
        for where, layer in named.items()
        if layer > layers
    ]
