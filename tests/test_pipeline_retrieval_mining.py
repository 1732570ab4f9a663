"""Retrieval and mining targets in the pipeline: scored on the encoder after phase 2, no target training."""

from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from xstilts.config import ExperimentConfig
from xstilts.evaluate.inference import embed
from xstilts.evaluate.metrics import retrieval_accuracy
from xstilts.models.checkpoint import build_model
from xstilts.pipeline.runner import Pipeline
from xstilts.pipeline.store import ResultsStore
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.registry import get_task
from xstilts.tasks.sources import load_examples

FIXTURES = Path(__file__).parent / "fixtures" / "local"


def _config(out: Path, **fields) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {"model": "tiny-random-xlmr", "output_dir": str(out), "intermediate": ["none"], **fields}
    )


def _zero_shot(cfg: ExperimentConfig) -> dict[tuple[str, str, str], float]:
    rows = ResultsStore.in_run_dir(cfg.run_dir).rows(phase="zero-shot")
    return {(r["target"], r["language"], r["metric"]): r["value"] for r in rows}


@pytest.fixture(scope="module")
def bible_run(tmp_path_factory):
    cfg = _config(
        tmp_path_factory.mktemp("runs"),
        name="bible-rm",
        targets=["bible-retrieval", "bible-mining"],
        languages=["en", "de", "zh"],
        retrieval={"layer": 2, "examples": 40},
    )
    console = Console(record=True, width=200)
    Pipeline(cfg, console).run()
    return cfg, console.export_text()


def test_bible_retrieval_and_mining_rows_are_xx_to_en_only(bible_run):
    cfg, log = bible_run
    rows = _zero_shot(cfg)
    assert set(rows) == {
        ("bible-retrieval", "de", "retrieval_accuracy"),
        ("bible-retrieval", "zh", "retrieval_accuracy"),
        ("bible-mining", "de", "bucc_f1"),
        ("bible-mining", "zh", "bucc_f1"),
    }
    assert all(0.0 <= value <= 1.0 for value in rows.values())
    assert "phase 3" not in log  # neither task fine-tunes
    assert "phase 4 mining bible-mining after none: layer 2, mean pooling" in log


def test_bible_retrieval_scores_against_the_english_verses(bible_run):
    """The English side is the same verses embedded on their own: the numbers of the xx -> en protocol."""
    cfg, _ = bible_run
    spec = get_task("bible-retrieval")
    model, tokenizer, _ = build_model(cfg.model, {})
    kind = get_kind("retrieval")

    def vectors(lang: str) -> np.ndarray:
        features = kind.encode(load_examples(spec, "test", lang, limit=40), tokenizer, 128)
        return embed(model.encoder, kind, tokenizer, features, 2, "mean", 64)

    english = vectors("en")
    rows = _zero_shot(cfg)
    for lang in ("de", "zh"):
        expected = retrieval_accuracy(vectors(lang), english)
        assert rows[("bible-retrieval", lang, "retrieval_accuracy")] == expected


def test_bible_mining_is_deterministic(bible_run):
    cfg, _ = bible_run
    pipeline = Pipeline(cfg, Console(quiet=True))
    again = pipeline._mining(0, "none", cfg.model, get_task("bible-mining"))
    rows = _zero_shot(cfg)
    assert {row.language: row.value for row in again} == {
        lang: rows[("bible-mining", lang, "bucc_f1")] for lang in ("de", "zh")
    }


def test_bucc_and_tatoeba_from_original_files(tmp_path):
    cfg = _config(
        tmp_path,
        name="files-rm",
        targets=["bucc2018", "tatoeba"],
        languages=["de"],
        data_dir=str(FIXTURES),
        retrieval={"layer": 1},
    )
    Pipeline(cfg, Console(quiet=True)).run()
    rows = _zero_shot(cfg)
    assert set(rows) == {("bucc2018", "de", "bucc_f1"), ("tatoeba", "de", "retrieval_accuracy")}
    assert all(0.0 <= value <= 1.0 for value in rows.values())
    assert not (cfg.run_dir / "predictions").exists()  # write_predictions is off by default
