"""A step is redone only when its own inputs change (`pipeline.layout.RunLayout`): each step is keyed by
what determines it, checkpoints carry the key, and the report shows the current config's rows."""

from rich.console import Console
from typer.testing import CliRunner

from conftest import copy_tiny_run
from xstilts.cli import app
from xstilts.models.checkpoint import is_complete
from xstilts.pipeline.layout import RunLayout
from xstilts.pipeline.runner import Pipeline


def _rerun(cfg) -> str:
    console = Console(record=True, width=200)
    Pipeline(cfg, console).run()
    return console.export_text()


def test_adding_a_target_to_a_finished_run_does_only_that_target(finished_tiny_run, tmp_path):
    cfg, _ = copy_tiny_run(
        finished_tiny_run,
        tmp_path,
        targets=["bible-genre", "bible-pair", "bible-retrieval", "bible-mining"],
        retrieval={"layer": 2, "examples": 40},
    )
    log = _rerun(cfg)
    assert "phase 2" not in log and "phase 3" not in log  # nothing trained again
    assert log.count("already done") == 7  # one intermediate and six targets
    assert log.count("phase 4 mining bible-mining") == 2  # the new target, after none and bible-next
    rows = RunLayout(cfg).current_rows(target="bible-mining", phase="zero-shot")
    assert {row["intermediate"] for row in rows} == {"none", "bible-next"}


def test_a_new_intermediate_learning_rate_redoes_that_model_and_its_targets_only(finished_tiny_run, tmp_path):
    original, _, _ = finished_tiny_run
    phase = original.intermediate_training.model_dump(exclude_unset=True) | {"learning_rate": 1e-4}
    cfg, _ = copy_tiny_run(finished_tiny_run, tmp_path, intermediate_training=phase)
    before, after = RunLayout(original), RunLayout(cfg)
    log = _rerun(cfg)
    assert log.count("phase 2") == 1  # bible-next again
    assert log.count("phase 3") == 2 and log.count("target bible-genre after bible-next") == 1
    for target in ("bible-genre", "bible-pair", "bible-retrieval"):  # the targets after none stay done
        assert f"resume: seed0/target/none/{target} already done" in log
        assert before.target(0, "none", target).key == after.target(0, "none", target).key
        assert before.target(0, "bible-next", target).key != after.target(0, "bible-next", target).key
    # the old checkpoint stays beside the new one: earlier rows still point at it
    old, new = before.checkpoint_of(0, "bible-next").name, after.checkpoint_of(0, "bible-next")
    assert old != new.name and is_complete(new) and is_complete(new.parent / old)
    # the report shows the current rows and labels the earlier ones
    result = CliRunner().invoke(app, ["report", str(cfg.run_dir)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "rows of 4 steps run with earlier settings" in result.output
    html = (cfg.run_dir / "report.html").read_text()
    assert "<h2>Earlier settings</h2>" in html and before.intermediate(0, "bible-next").key in html
