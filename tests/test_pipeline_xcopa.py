"""XTREME-R's XCOPA recipe through the pipeline: SIQA, then English COPA with SIQA's head carried over
(XTREME-R `third_party/run_xcopa.py` continues the SIQA model), tested in XCOPA languages; the written
jsonl predictions score with `--suite xtreme-r` as the run stored them."""

import json
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from xstilts.cli import app
from xstilts.config import ExperimentConfig
from xstilts.evaluate import xtreme
from xstilts.pipeline.runner import Pipeline
from xstilts.pipeline.store import ResultsStore
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.registry import get_task
from xstilts.tasks.sources import load_examples

FIXTURES = Path(__file__).parent / "fixtures" / "local"  # siqa/, COPA/, xcopa/data/<lang>/


def test_siqa_then_xcopa_writes_and_scores_xcopa_predictions(tmp_path):
    cfg = ExperimentConfig.model_validate(
        {
            "name": "xcopa",
            "model": "tiny-random-xlmr",
            "output_dir": str(tmp_path / "runs"),
            "intermediate": ["siqa"],
            "targets": ["xcopa"],
            "languages": ["et", "qu"],
            "data_dir": str(FIXTURES),
            "write_predictions": True,
            "intermediate_training": {"max_steps": 2, "batch_size": 2},
            "target_training": {"max_steps": 2, "batch_size": 2},
        }
    )
    console = Console(record=True, width=200)
    Pipeline(cfg, console).run()
    log = console.export_text()
    assert "phase 2 intermediate siqa (seed 0): loaded" in log
    assert (
        "target xcopa after siqa: loaded 41 tensors; dropped heads: none; newly initialised heads: none"
        in log
    )

    folder = cfg.run_dir / "predictions" / "seed0" / "siqa"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "xcopa/test-et.jsonl",
        "xcopa/test-qu.jsonl",
    ]
    et = xtreme.read_predictions(folder / "xcopa", "et")
    assert len(et) == 2 and set(et) <= {0, 1}

    spec, gold = get_task("xcopa"), tmp_path / "gold"
    for lang in ("et", "qu"):
        examples = load_examples(spec, "test", lang, data_dir=FIXTURES)
        xtreme.write_predictions(gold / "xcopa", lang, get_kind(spec.kind).gold(examples, spec))
    out = tmp_path / "scores.json"
    args = ["score", str(folder), str(gold), "--suite", "xtreme-r", "--partial", "--json", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    from_files = json.loads(out.read_text())["tasks"]["xcopa"]["languages"]
    stored = {
        row["language"]: row["value"]
        for row in ResultsStore.in_run_dir(cfg.run_dir).rows(phase="zero-shot", target="xcopa")
        if row["metric"] == "accuracy"
    }
    assert from_files == {lang: {"accuracy": stored[lang]} for lang in ("et", "qu")}
