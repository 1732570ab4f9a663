"""The pipeline on XTREME-R's ranking targets (LAReQA, Mewsli-X): the tiny model fine-tuned as a dual encoder
on the fixture files in the original formats, then scored zero-shot with mAP@20 per language."""

from pathlib import Path

import pytest
from rich.console import Console

from xstilts.config import load_config
from xstilts.evaluate.metrics import get_metric
from xstilts.models.checkpoint import read_meta
from xstilts.pipeline.layout import RunLayout
from xstilts.pipeline.runner import Pipeline
from xstilts.pipeline.store import ResultsStore
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.registry import get_task
from xstilts.tasks.sources import load_examples

LOCAL = Path(__file__).parent / "fixtures" / "local"

CONFIG = """\
name: ranking
model: tiny-random-xlmr
output_dir: {out}
data_dir: {data}
intermediate: [none]
targets: [lareqa, mewslix]
languages: [en, de]
target_training: {{max_steps: 2, batch_size: 4}}
"""


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """(config, console log, {(task, language): the predictions handed to the XTREME writer})."""
    out = tmp_path_factory.mktemp("runs")
    (out / "run.yaml").write_text(CONFIG.format(out=out, data=LOCAL))
    cfg = load_config(out / "run.yaml")
    written = {}

    def keep(self, seed, intermediate, spec, lang, predictions):
        written[spec.name, lang] = predictions

    console = Console(record=True, width=200)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Pipeline, "_write_predictions", keep)
        Pipeline(cfg, console).run()
    return cfg, console.export_text(), written


def test_map_at_20_is_stored_for_english_dev_and_every_zero_shot_language(finished_run):
    cfg, log, _ = finished_run
    rows = ResultsStore.in_run_dir(cfg.run_dir).rows()
    found = {(r["target"], r["phase"], r["language"], r["metric"]) for r in rows}
    assert found == {
        (task, phase, lang, "map_at_20")
        for task in ("lareqa", "mewslix")
        for phase, lang in (("target-dev", "en"), ("zero-shot", "en"), ("zero-shot", "de"))
    }
    assert all(0.0 <= r["value"] <= 1.0 for r in rows)
    assert "lareqa test de: 2 queries ranked against 33 candidates" in log
    assert "mewslix test de: 2 queries ranked against 9 candidates" in log


def test_predictions_are_rankings_of_the_pool_and_score_as_stored(finished_run):
    cfg, _, written = finished_run
    rows = {
        (r["target"], r["language"]): r["value"]
        for r in ResultsStore.in_run_dir(cfg.run_dir).rows()
        if r["phase"] == "zero-shot"
    }
    for task, lang in rows:
        (problem,) = load_examples(get_task(task), "test", lang, data_dir=LOCAL)
        rankings = written[task, lang]
        assert set(rankings) == set(problem["queries"])  # {query id: [candidate ids, best first]}
        for ranked in rankings.values():
            assert len(ranked) == min(20, len(problem["candidates"])) == len(set(ranked))
            assert set(ranked) <= set(problem["candidates"])
        gold = get_kind("ranking").gold([problem], None)
        assert rows[task, lang] == pytest.approx(get_metric("map_at_20")(rankings, gold))


def test_the_head_is_a_sequence_level_embedding(finished_run):
    cfg, log, _ = finished_run
    checkpoint = RunLayout(cfg).checkpoint_of(0, "none", "mewslix")
    assert read_meta(checkpoint)["heads"] == {"mewslix": {"level": "sequence", "outputs": 256}}
    assert "newly initialised heads: ['lareqa']" in " ".join(log.split())
