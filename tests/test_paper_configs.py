"""The shipped experiment configs validate against the schema and describe the paper's settings."""

from pathlib import Path

import pytest

from xstilts.config import load_config
from xstilts.tasks.registry import TASK_TABLE, get_task

CONFIGS = sorted(Path(__file__).parent.parent.joinpath("configs").rglob("*.yaml"))
PAPER = [path for path in CONFIGS if path.parent.name == "phang2020"]
# Phang et al.'s nine (the rows with a paper name; SIQA is XTREME-R's intermediate task for XCOPA)
INTERMEDIATE = [spec.name for spec in TASK_TABLE if "intermediate" in spec.roles and spec.paper_name]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_every_shipped_config_validates(path):
    cfg = load_config(path)
    assert cfg.targets


def test_one_paper_config_per_intermediate_task_plus_all_nine_and_baselines():
    names = {path.stem for path in PAPER}
    assert set(INTERMEDIATE) <= names and len(INTERMEDIATE) == 9
    assert {"baseline", "all-nine", "mlm", "translated"} <= names


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.stem)
def test_paper_settings(path):
    cfg = load_config(path)
    assert cfg.model == "FacebookAI/xlm-roberta-large"
    assert {get_task(t).xtreme_name for t in cfg.targets} == {
        "xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa", "bucc2018", "tatoeba",
    }  # fmt: skip
    phase = cfg.intermediate_training
    assert (phase.learning_rate, phase.weight_decay, phase.warmup_ratio, phase.max_grad_norm) == (
        1e-5, 0.01, 0.1, 1.0,
    )  # fmt: skip
    assert phase.epochs == 3 and phase.max_length == 256
    assert phase.batch_size * phase.grad_accumulation == 32
    # jiant's XTREME model selection (e_run_models.sh, runconfig writer), in both phases and every target
    selection = [phase, *(cfg.phase_for(target) for target in cfg.targets)]
    assert all((p.eval_every, p.dev_examples, p.patience) == (1000, 500, 30) for p in selection)
    # SQuAD trains at max length 384 wherever it is an intermediate task (batch 16 like the QA targets)
    for name in cfg.intermediate:
        mixture = cfg.mixture(name) if name != "none" else None
        for task in mixture.tasks if mixture else ():
            if get_task(task).kind == "span_qa":
                assert mixture.max_length.get(task) == 384, (name, task)
                assert mixture.batch_size.get(task, phase.batch_size) * phase.grad_accumulation == 16
    epochs = {"xnli": 2, "pawsx": 5, "udpos": 10, "panx": 10, "xquad": 2, "mlqa": 2, "tydiqa": 2}
    for target, n in epochs.items():
        settings = cfg.phase_for(target)
        assert settings.epochs == n and settings.learning_rate == 1e-5
        qa = get_task(target).kind == "span_qa"
        assert settings.batch_size * settings.grad_accumulation == (16 if qa else 32)
        assert settings.max_length == (384 if qa else 256)
    assert cfg.retrieval.layer == 14 and cfg.retrieval.pooling == "mean"
    assert get_task("tatoeba").max_length == get_task("bucc2018").max_length == 512
    for name in cfg.intermediate:
        assert name == "none" or cfg.mixture(name).sampler == "proportional"


def test_all_nine_trains_every_intermediate_task_together():
    cfg = load_config(next(p for p in PAPER if p.stem == "all-nine"))
    mixture = cfg.mixture("all-nine")
    assert sorted(mixture.tasks) == sorted(INTERMEDIATE)
    assert mixture.heads["anli-plus"] == mixture.heads["mnli"]  # one NLI head


def test_tasks_command_lists_the_paper_tasks_and_describes_one():
    from typer.testing import CliRunner

    from xstilts.cli import app

    runner = CliRunner()
    listing = runner.invoke(app, ["tasks"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0
    paper = [spec for spec in TASK_TABLE if spec.paper_name]
    assert len(paper) == 18 and all(spec.name in listing.output for spec in TASK_TABLE)
    one = runner.invoke(app, ["tasks", "udpos"], env={"COLUMNS": "200"})
    assert (
        one.exit_code == 0 and "languages (38)" in one.output
    )  # XTREME 33 + XTREME-R lt, pl, uk, wo, ro and "udpos.{udpos_name}" in one.output
    unknown = runner.invoke(app, ["tasks", "udpos2"])
    assert unknown.exit_code == 2 and "valid tasks: anli-plus" in unknown.output
