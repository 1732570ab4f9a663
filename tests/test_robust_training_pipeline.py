"""Robust training in the pipeline, on a copy of the shared tiny run: a mixture that differs from a
finished intermediate only in its targets' strategy shares that intermediate training (hard-linked
checkpoint, copied dev rows), its target trains with code-mixed copies, and finished steps stay finished
(runs made before strategies existed keep their keys)."""

from pathlib import Path

from rich.console import Console

from conftest import copy_tiny_run
from xstilts.config import load_config
from xstilts.pipeline.layout import RunLayout
from xstilts.pipeline.runner import Pipeline

DICTD = Path(__file__).parent / "fixtures" / "dictd" / "freedict-eng-deu-mini.index"
CODE_MIXED = {
    "strategy": "code-mixed",
    "embedded_languages": ["de"],
    "lexicon": "dictd",
    "dictionaries": {"de": str(DICTD)},
    "sentence_probability": 1.0,
    "word_probability": 1.0,
}


def test_a_target_strategy_arm_shares_the_intermediate_and_trains_with_copies(finished_tiny_run, tmp_path):
    mixtures = {"next-cm": {"tasks": ["bible-next"], "target_adversarial": CODE_MIXED}}
    cfg, path = copy_tiny_run(
        finished_tiny_run,
        tmp_path,
        mixtures=mixtures,
        intermediate=["none", "bible-next", "next-cm"],
        targets=["bible-genre"],
    )
    console = Console(record=True, width=250)
    Pipeline(load_config(path), console).run()
    log = console.export_text()
    layout = RunLayout(cfg)
    plain, arm = layout.intermediate(0, "bible-next"), layout.intermediate(0, "next-cm")
    assert layout.target(0, "bible-next", "bible-genre").key != layout.target(0, "next-cm", "bible-genre").key
    # the finished steps of the run are kept: none of them is trained again
    assert "resume: seed0/intermediate/bible-next already done" in log
    assert "resume: seed0/target/bible-next/bible-genre already done" in log
    assert "phase 2" not in log
    assert "the same intermediate training as bible-next" in log
    shared = layout.checkpoint_dir(arm) / "model.safetensors"
    assert shared.stat().st_ino == (layout.checkpoint_dir(plain) / "model.safetensors").stat().st_ino
    assert "bible-genre: code-mixed:" in log and "en -> de" in log
    rows = layout.store.rows(intermediate="next-cm")
    assert {row["phase"] for row in rows} == {"budget", "intermediate-dev", "target-dev", "zero-shot"}
    dev = {r["value"] for r in layout.store.rows(intermediate="bible-next", phase="intermediate-dev")}
    assert {r["value"] for r in rows if r["phase"] == "intermediate-dev"} == dev
