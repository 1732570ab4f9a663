"""`xstilts grid` on a real local Ray instance lands the same results as a sequential `Pipeline.run`."""

import json

from typer.testing import CliRunner

from conftest import write_tiny_run_config
from xstilts.cli import app
from xstilts.config import load_config
from xstilts.pipeline.grid import _environment
from xstilts.pipeline.layout import RunLayout
from xstilts.pipeline.store import ResultsStore

KEY = ("intermediate", "target", "phase", "language", "metric", "seed")


def _results(run_dir) -> dict[tuple, float]:
    rows = ResultsStore.in_run_dir(run_dir).rows()
    results = {tuple(row[k] for k in KEY): row["value"] for row in rows}
    assert len(results) == len(rows)
    return results


GRID_TARGETS = ("bible-genre", "bible-retrieval")  # a trained target and one scored on the encoder


def test_grid_on_ray_matches_a_sequential_run(finished_tiny_run, tmp_path):
    """The session's sequential tiny run, two of its targets run as a grid: the same rows."""
    sequential, _, _ = finished_tiny_run
    path = write_tiny_run_config(tmp_path / "grid")
    path.write_text(
        path.read_text().replace(
            "[bible-genre, bible-pair, bible-retrieval]", "[bible-genre, bible-retrieval]"
        )
    )
    result = CliRunner().invoke(app, ["grid", str(path), "--num-cpus", "2"], terminal_width=200)
    assert result.exit_code == 0, result.output
    grid = load_config(path)
    assert "4 target steps on Ray" in result.output and "HTML report:" in result.output

    expected, found = _results(sequential.run_dir), _results(grid.run_dir)
    expected = {key: value for key, value in expected.items() if key[1] in ("bible-next", *GRID_TARGETS)}
    assert found == expected  # same rows, identical values: CPU training is deterministic
    zero_shot = {(k[0], k[1], k[3]) for k in found if k[2] == "zero-shot"}
    assert zero_shot == {
        (inter, target, lang)
        for inter in ("none", "bible-next")
        for target, langs in (("bible-genre", ("en", "de", "zh")), ("bible-retrieval", ("de", "zh")))
        for lang in langs
    }
    config = json.loads((grid.run_dir / "config.json").read_text())
    assert config["config_hash"] == grid.fingerprint() != sequential.fingerprint()
    assert RunLayout(grid).checkpoint_of(0, "bible-next", "bible-genre").is_dir()


def test_ray_steps_get_the_drivers_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("XSTILTS_CACHE", str(tmp_path))
    monkeypatch.delenv("XSTILTS_HUB_MIRROR", raising=False)
    environment = _environment()
    assert environment["HF_HUB_OFFLINE"] == "1" and environment["XSTILTS_CACHE"] == str(tmp_path)
    assert "XSTILTS_HUB_MIRROR" not in environment
