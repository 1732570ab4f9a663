"""`xstilts align`: per-layer sentence alignment of every checkpoint of a tiny finished run."""

import json
import time

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from xstilts.analysis.alignment import retrieval_accuracy
from xstilts.analysis.driver import MEASURES, PAIR_MEASURES, check_tokenizers, list_checkpoints, open_run
from xstilts.analysis.representations import cached_layers
from xstilts.cli import app
from xstilts.config import load_config
from xstilts.errors import XstiltsError
from xstilts.pipeline.runner import Pipeline
from xstilts.pipeline.store import ResultsStore
from xstilts.tasks.bible import build_examples

CONFIG = """\
name: tiny-align
model: tiny-random-xlmr
output_dir: {out}
intermediate: [none, bible-next]
targets: [bible-genre]
languages: [en, de, zh]
test_examples: 16
intermediate_training: {{max_steps: 2, batch_size: 4, train_examples: 16, dev_examples: 8}}
target_training: {{max_steps: 2, batch_size: 8, train_examples: 16, dev_examples: 8}}
"""
CHECKPOINTS = {"pretrained", "bible-next", "none__bible-genre", "bible-next__bible-genre"}
WIDE = {"COLUMNS": "200"}  # rich sizes the table from COLUMNS when output is not a terminal
LAYERS = range(3)  # hidden_states 0..2 of the tiny model


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    out = tmp_path_factory.mktemp("align-runs")
    cache = tmp_path_factory.mktemp("align-cache")
    patch = pytest.MonkeyPatch()
    patch.setenv("XSTILTS_CACHE", str(cache))
    path = out / "tiny.yaml"
    path.write_text(CONFIG.format(out=out))
    cfg = load_config(path)
    Pipeline(cfg, Console(quiet=True)).run()
    start = time.perf_counter()
    result = CliRunner().invoke(app, ["align", str(cfg.run_dir), "--examples", "40"], env=WIDE)
    seconds = time.perf_counter() - start
    yield cfg, result, seconds
    patch.undo()


def _alignment_rows(cfg):
    return ResultsStore.in_run_dir(cfg.run_dir).rows(phase="alignment")


def test_align_stores_every_checkpoint_layer_language_and_measure(aligned):
    cfg, result, seconds = aligned
    assert result.exit_code == 0, result.output
    rows = _alignment_rows(cfg)
    keys = {(r["target"], r["language"], r["metric"]) for r in rows}
    for checkpoint in CHECKPOINTS:
        for layer in LAYERS:
            for lang in ("de", "zh"):
                assert {(checkpoint, lang, f"{m}@{layer}") for m in PAIR_MEASURES} <= keys
            assert (checkpoint, "all", f"language_probe@{layer}") in keys
    assert len(rows) == len(CHECKPOINTS) * len(LAYERS) * (2 * len(PAIR_MEASURES) + 1)
    assert {r["target"] for r in rows} == CHECKPOINTS
    assert all(r["config_hash"] == cfg.fingerprint() and r["seed"] == 0 for r in rows)
    for row in rows:
        low, high = (-2.0, 2.0) if row["metric"].startswith("cosine_gap") else (0.0, 1.0 + 1e-6)
        assert low <= row["value"] <= high, row
    assert {r["intermediate"] for r in rows if r["target"] == "bible-next__bible-genre"} == {"bible-next"}
    # the summary table names every checkpoint and measure, with an interval for the retrieval change
    for name in (*CHECKPOINTS, *MEASURES):
        assert name in result.output
    assert "change @2" in result.output and "[" in result.output
    print(f"align took {seconds:.1f}s")
    assert seconds < 30


def test_second_align_recomputes_nothing(aligned):
    cfg, _, _ = aligned
    before = _alignment_rows(cfg)
    result = CliRunner().invoke(app, ["align", str(cfg.run_dir), "--examples", "40"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert result.output.count("already done, resuming") == len(CHECKPOINTS)
    assert "alignment rows" not in result.output
    assert _alignment_rows(cfg) == before


def test_stored_retrieval_matches_a_direct_computation(aligned):
    cfg, _, _ = aligned
    source = cfg.run_dir / "checkpoints" / "seed0" / "bible-next"
    texts = {
        lang: [e["text"] for e in build_examples("bible-retrieval", "test", lang, seed=0, limit=40)]
        for lang in ("en", "de")
    }
    de, en = (cached_layers(source, texts[lang], pooling="mean") for lang in ("de", "en"))
    direct = retrieval_accuracy(np.asarray(de[1]), np.asarray(en[1]), scoring="cosine")
    stored = {
        r["metric"]: r["value"]
        for r in _alignment_rows(cfg)
        if r["target"] == "bible-next" and r["language"] == "de"
    }
    assert stored["retrieval_cosine_xx_en@1"] == pytest.approx(direct["a_to_b"])
    assert stored["retrieval_cosine_en_xx@1"] == pytest.approx(direct["b_to_a"])


def test_report_still_works_with_alignment_rows(aligned):
    cfg, _, _ = aligned
    result = CliRunner().invoke(app, ["report", str(cfg.run_dir)], terminal_width=200)
    assert result.exit_code == 0, result.output


def test_unknown_language_lists_the_bible_languages(aligned):
    cfg, _, _ = aligned
    result = CliRunner().invoke(app, ["align", str(cfg.run_dir), "--languages", "de,xx"])
    assert result.exit_code == 2
    assert "xx" in result.output and "available Bible languages" in result.output and "sw" in result.output


def test_a_checkpoint_with_another_tokenizer_is_refused(aligned, tmp_path):
    cfg, _, _ = aligned
    run = open_run(cfg.run_dir)
    checkpoints = list_checkpoints(run)
    check_tokenizers(checkpoints)  # the run's own checkpoints all share the pretrained tokenizer
    import shutil

    other = tmp_path / "other"
    shutil.copytree(checkpoints[1].source, other)
    data = json.loads((other / "tokenizer.json").read_text())
    data["added_tokens"].append({**data["added_tokens"][-1], "id": 99999, "content": "<new>"})
    (other / "tokenizer.json").write_text(json.dumps(data))
    changed = [checkpoints[0], type(checkpoints[1])("other", str(other), 0, "bible-next")]
    with pytest.raises(XstiltsError, match="different tokenizer"):
        check_tokenizers(changed)
