"""Predictions in XTREME's submission layout score as the run stored them; gradient checkpointing."""

import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from xstilts.cli import app
from xstilts.config import ExperimentConfig
from xstilts.evaluate import xtreme
from xstilts.pipeline import runner
from xstilts.pipeline.runner import Pipeline
from xstilts.pipeline.store import ResultsStore
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.registry import get_task
from xstilts.tasks.sources import load_examples

FIXTURES = Path(__file__).parent / "fixtures" / "local"
TASKS = ("pawsx", "panx", "tatoeba", "bucc2018")
# the metric each task's zero-shot row is stored under -> the one `xstilts score` computes from files
STORED_METRIC = {
    "pawsx": "accuracy",
    "panx": "ner_f1",
    "tatoeba": "retrieval_accuracy",
    "bucc2018": "bucc_f1",
}


def _data_dir(root: Path) -> Path:
    """The fixture files of the four tasks; the English dev sets (not in the fixtures) copy the train sets."""
    for task in TASKS:
        shutil.copytree(FIXTURES / task, root / task)
    for task in ("pawsx", "panx"):
        shutil.copy(root / task / "train-en.tsv", root / task / "dev-en.tsv")
    return root


def _gold_dir(root: Path, data_dir: Path) -> Path:
    """Gold files in the submission layout, from the same test files the run read."""
    for task in TASKS:
        spec = get_task(task)
        examples = load_examples(spec, "test", "de", data_dir=data_dir)
        gold = get_kind(spec.kind).gold(examples, spec)
        if isinstance(gold, set):  # mined pairs
            gold = sorted(gold)
        xtreme.write_predictions(root / task, "de", gold, task)
    return root


@pytest.fixture(scope="module")
def predicted_run(tmp_path_factory):
    data_dir = _data_dir(tmp_path_factory.mktemp("data"))
    cfg = ExperimentConfig.model_validate(
        {
            "name": "predictions",
            "model": "tiny-random-xlmr",
            "output_dir": str(tmp_path_factory.mktemp("runs")),
            "intermediate": ["none"],
            "targets": list(TASKS),
            "languages": ["de"],
            "data_dir": str(data_dir),
            "write_predictions": True,
            "retrieval": {"layer": 1},
            "target_training": {"max_steps": 2, "batch_size": 4},
        }
    )
    Pipeline(cfg, Console(quiet=True)).run()
    return cfg, data_dir


def test_predictions_land_in_the_submission_layout(predicted_run):
    cfg, _ = predicted_run
    folder = cfg.run_dir / "predictions" / "seed0" / "none"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        f"{task}/test-de.tsv" for task in sorted(TASKS)
    ]
    assert len(xtreme.read_predictions(folder / "pawsx", "de")) == 2  # one label per test pair
    assert all(line.isdigit() for line in (folder / "tatoeba" / "test-de.tsv").read_text().split())


def test_xstilts_score_on_the_predictions_equals_the_stored_zero_shot_rows(predicted_run, tmp_path):
    cfg, data_dir = predicted_run
    gold = _gold_dir(tmp_path / "gold", data_dir)
    scores_path = tmp_path / "scores.json"
    result = CliRunner().invoke(
        app,
        [
            "score",
            str(cfg.run_dir / "predictions" / "seed0" / "none"),
            str(gold),
            "--json",
            str(scores_path),
            "--partial",  # the run covers de only, not every listed language
        ],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    from_files = json.loads(scores_path.read_text())["tasks"]
    stored = {
        (r["target"], r["metric"]): r["value"]
        for r in ResultsStore.in_run_dir(cfg.run_dir).rows(phase="zero-shot", language="de")
    }
    for task in TASKS:
        file_metric = xtreme.task_metrics(task)[0]
        assert from_files[task]["languages"]["de"][file_metric] == stored[(task, STORED_METRIC[task])], task


def test_gradient_checkpointing_trains_and_lands_rows(tmp_path, monkeypatch):
    enabled = []

    def spy(encoder):
        runner_enable(encoder)
        enabled.append(encoder)

    runner_enable = runner.enable_gradient_checkpointing
    monkeypatch.setattr(runner, "enable_gradient_checkpointing", spy)
    cfg = ExperimentConfig.model_validate(
        {
            "name": "checkpointing",
            "model": "tiny-random-xlmr",
            "output_dir": str(tmp_path),
            "intermediate": ["none"],
            "targets": ["bible-genre"],
            "languages": ["en", "de"],
            "test_examples": 8,
            "gradient_checkpointing": True,
            "write_predictions": True,  # the Bible tasks are not XTREME tasks: nothing is written
            "target_training": {"max_steps": 2, "batch_size": 4, "train_examples": 16, "dev_examples": 8},
        }
    )
    Pipeline(cfg, Console(quiet=True)).run()
    assert len(enabled) == 1
    # transformers 5 renamed the flag (is_gradient_checkpointing is deprecated there)
    assert getattr(enabled[0], "is_activation_checkpointing", None) or enabled[0].is_gradient_checkpointing
    rows = ResultsStore.in_run_dir(cfg.run_dir).rows(target="bible-genre")
    assert {(r["phase"], r["language"]) for r in rows} == {
        ("target-dev", "en"),
        ("zero-shot", "en"),
        ("zero-shot", "de"),
    }
    assert all(0.0 <= r["value"] <= 1.0 for r in rows)
    assert not (cfg.run_dir / "predictions").exists()
