"""Retrieval and mining targets in the pipeline: scored on the encoder after phase 2, no target training."""

from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from xstilts.config import ExperimentConfig, RetrievalConfig
from xstilts.evaluate.encoder_scores import score_on_encoder
from xstilts.evaluate.inference import embed
from xstilts.evaluate.metrics import nearest_neighbours, retrieval_accuracy
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


def test_bible_retrieval_and_mining_rows_are_for_the_other_languages_only(bible_run):
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
    assert "phase 4 retrieval bible-retrieval after none: layer 2, mean pooling, en->xx" in log


def test_retrieval_searches_en_to_xx_by_default_and_xx_to_en_on_request(bible_run):
    """XTREME's Tatoeba protocol: the xx sentences are the index, each English sentence a query. The
    English side is the same verses embedded on their own; the xx -> en direction is a recorded option."""
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
        en_xx, xx_en = retrieval_accuracy(english, vectors(lang)), retrieval_accuracy(vectors(lang), english)
        assert rows[("bible-retrieval", lang, "retrieval_accuracy")] == en_xx
        assert en_xx != xx_en  # the two directions are told apart on this model
    # queries and index swap with `retrieval.direction: xx->en`; predictions: one index per query, in order
    problem = {"test": load_examples(spec, "test", "de", limit=40)}
    by_text = dict(zip([ex["translation"] for ex in problem["test"]], english, strict=True))
    by_text |= dict(zip([ex["text"] for ex in problem["test"]], vectors("de"), strict=True))

    def embed_texts(texts):
        return np.stack([by_text[text] for text in texts])

    for direction, (queries, keys) in {
        "en->xx": (english, vectors("de")),
        "xx->en": (vectors("de"), english),
    }.items():
        settings = RetrievalConfig(direction=direction)
        scores, predicted = score_on_encoder(embed_texts, problem, spec, "de", settings)
        assert scores == {"retrieval_accuracy": retrieval_accuracy(queries, keys)}
        assert predicted == [int(i) for i in nearest_neighbours(queries, keys)[:, 0]]


def test_bible_mining_is_deterministic(bible_run):
    cfg, _ = bible_run
    pipeline = Pipeline(cfg, Console(quiet=True))
    step = pipeline.layout.target(0, "none", "bible-mining")
    again = pipeline._score_on_encoder(step, cfg.model, get_task("bible-mining"))
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
    assert set(rows) == {
        ("bucc2018", "de", "bucc_f1"),
        ("bucc2018", "de", "bucc_precision"),
        ("bucc2018", "de", "bucc_recall"),
        ("tatoeba", "de", "retrieval_accuracy"),
    }
    assert all(0.0 <= value <= 1.0 for value in rows.values())
    assert not (cfg.run_dir / "predictions").exists()  # write_predictions is off by default


def test_gold_only_bucc_pools_stop_the_run_unless_allowed(tmp_path, isolated_datasets_cache):
    """The hub's bucc18 configs hold only the gold pairs: mining them is degenerate (F1 far above the
    published numbers), so the run stops and says how to get the original files; an explicit
    `allow_gold_only_bucc` mines them anyway and the report says so."""
    import yaml
    from typer.testing import CliRunner

    from xstilts.cli import app

    config = {
        "name": "gold-only",
        "model": "tiny-random-xlmr",
        "output_dir": str(tmp_path / "runs"),
        "intermediate": ["none"],
        "targets": ["bucc2018"],
        "languages": ["de"],
        "hub_mirror": str(FIXTURES.parent / "hub"),
        "retrieval": {"layer": 1},
    }
    path = tmp_path / "bucc.yaml"
    path.write_text(yaml.safe_dump(config))
    runner = CliRunner()
    refused = runner.invoke(app, ["run", str(path)], env={"COLUMNS": "300"})
    assert refused.exit_code == 2
    assert "hold only gold pairs" in refused.output and "comparable.limsi.fr/bucc2018" in refused.output
    assert "Traceback" not in refused.output
    config["retrieval"]["allow_gold_only_bucc"] = True
    path.write_text(yaml.safe_dump(config))
    allowed = runner.invoke(app, ["run", str(path)], env={"COLUMNS": "300"})
    assert allowed.exit_code == 0, allowed.output
    assert "note: allow_gold_only_bucc" in allowed.output
    assert "allow_gold_only_bucc" in (tmp_path / "runs" / "gold-only" / "report.html").read_text()
