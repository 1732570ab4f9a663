"""`xstilts attack` on the shared finished tiny run: every target checkpoint attacked, rows and JSONL that
agree with each other, resuming, alignment stability per stage, and the bad-input paths."""

import json

import pytest
from rich.console import Console
from tests.conftest import copy_tiny_run
from typer.testing import CliRunner

from xstilts.cli import app
from xstilts.errors import XstiltsError
from xstilts.pipeline.layout import ATTACK_STEP_KEYS
from xstilts.robustness import records as rec
from xstilts.robustness.attack import as_result
from xstilts.robustness.driver import attack_run
from xstilts.robustness.edits import Edit, apply_edits
from xstilts.robustness.metrics import attack_metrics

ATTACK = {
    "examples": 6,
    "languages": ["de", "zh"],
    "n_boot": 50,
    "attacks": {
        "noise": {"transformation": "noise", "query_budget": 40, "noise": ["swap", "delete"]},
        "code-mixing": {
            "transformation": "code-mixing",
            "languages": [
                "de"
            ],  # one Bible lexicon (de-en) to build: eflomal takes seconds even on 300 verses
            "embedded_languages": ["en"],
            "query_budget": 40,
            "max_words_fraction": 0.5,
            "alignment_verses": 300,  # lexicons for tests: quick, not good
        },
    },
}
TARGETS = ("bible-genre", "bible-pair")
WIDE = {"COLUMNS": "200"}


@pytest.fixture(scope="module")
def attacked(finished_tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("attack")
    cfg, path = copy_tiny_run(finished_tiny_run, out, attack=ATTACK)
    console = Console(record=True, width=200)
    run = attack_run(path, console)
    return cfg, path, run, console.export_text()


def _rows(cfg, **where):
    from xstilts.pipeline.store import ResultsStore

    return ResultsStore.in_run_dir(cfg.run_dir).rows(**where)


def test_every_target_checkpoint_is_attacked_with_its_random_baseline(attacked):
    cfg, _, run, _ = attacked
    keys = json.loads((cfg.run_dir / "config.json").read_text())[ATTACK_STEP_KEYS]
    assert len(keys) == 2 * 2 * 2  # intermediates x attackable targets x attacks (bible-retrieval is not)
    layout_keys = {run.layout.target(0, i, t).key for i in cfg.intermediate for t in TARGETS}
    assert set(keys.values()) == layout_keys  # each attack names the checkpoint it attacked
    for name in ATTACK["attacks"]:
        for kind in (rec.ATTACK, rec.RANDOM):
            counts = {}
            for row in _rows(cfg, phase=rec.phase(kind, name)):
                if row["metric"] in ("examples", "unattackable"):
                    where = (row["intermediate"], row["target"], row["language"])
                    counts[where] = counts.get(where, 0) + row["value"]
            languages = ATTACK["attacks"][name].get("languages", ATTACK["languages"])
            assert set(counts) == {
                (i, t, lang) for i in cfg.intermediate for t in TARGETS for lang in languages
            }
            assert set(counts.values()) == {6}  # every example: attacked, or counted as unattackable


def test_stored_metrics_are_the_metrics_of_the_saved_examples(attacked):
    cfg, _, _, _ = attacked
    checked = 0
    for row in _rows(cfg, phase=rec.phase(rec.ATTACK, "code-mixing"), metric="clean_accuracy"):
        path = rec.examples_file(cfg.run_dir, "code-mixing", row["config_hash"], row["language"])
        records = rec.read_records(path)
        assert len(records) == 6 and {r.language for r in records} == {row["language"]}
        expected = attack_metrics([r for r in map(as_result, records) if r is not None])
        assert row["value"] == pytest.approx(expected["clean_accuracy"])
        for record in records:
            # the saved perturbed text is the original with exactly the saved edits applied
            edits = [Edit(e["field"], e["start"], e["end"], e["text"], e["language"]) for e in record.edits]
            assert apply_edits(record.original, edits) == record.perturbed
            assert record.words_changed == sum(e.words for e in edits)
            assert record.languages_mixed == sorted({e.language for e in edits} - {record.language})
            assert set(record.languages_mixed) <= {"en"}
            checked += 1
    assert checked == 2 * 2 * 1 * 6  # intermediates x targets x languages x examples


def test_alignment_stability_is_measured_for_each_stage_of_the_lineage(attacked):
    cfg, _, _, _ = attacked
    rows = _rows(cfg, phase=rec.phase(rec.STABILITY, "noise"), target="bible-genre")
    stages = {(r["intermediate"], r["metric"].split(":")[0]) for r in rows}
    # direct fine-tuning has no intermediate checkpoint: pretrained and target only
    assert stages == {
        ("none", "pretrained"),
        ("none", "target"),
        ("bible-next", "pretrained"),
        ("bible-next", "intermediate"),
        ("bible-next", "target"),
    }
    cosines = [r["value"] for r in rows if r["metric"].startswith("target:cosine@")]
    assert cosines and all(-1.0 <= value <= 1.0 + 1e-6 for value in cosines)


def test_a_rerun_resumes_without_attacking_again(attacked):
    _, path, _, _ = attacked
    console = Console(record=True, width=200)
    attack_run(path, console)
    text = console.export_text()
    assert text.count("already done, resuming") == 8 and "queries" not in text


def test_cli_prints_the_robustness_tables(attacked):
    cfg, _, _, _ = attacked
    result = CliRunner().invoke(app, ["attack", str(cfg.run_dir)], env=WIDE)
    assert result.exit_code == 0, result.output
    for attack in ATTACK["attacks"]:
        for target in TARGETS:
            assert f"{attack} on {target}: mean over seeds" in result.output
    assert "under random" in result.output
    assert "adversarial examples:" in result.output


def test_a_run_without_target_checkpoints_says_which_to_train(finished_tiny_run, tmp_path):
    import shutil

    cfg, path = copy_tiny_run(finished_tiny_run, tmp_path, attack=ATTACK)
    for folder in (cfg.run_dir / "checkpoints" / "seed0").glob("bible-next__bible-pair-*"):
        shutil.rmtree(folder)
    with pytest.raises(
        XstiltsError, match=r"no target checkpoint for: bible-pair after bible-next \(seed 0\)"
    ):
        attack_run(cfg.run_dir, Console(quiet=True))


def test_unattackable_targets_and_fields_are_clear_errors(finished_tiny_run, tmp_path):
    cfg, path = copy_tiny_run(finished_tiny_run, tmp_path, attack={**ATTACK, "targets": ["bible-retrieval"]})
    with pytest.raises(XstiltsError, match="cannot be attacked.*attackable kinds: classification"):
        attack_run(path, Console(quiet=True))
    result = CliRunner().invoke(app, ["attack", str(tmp_path / "missing-run")])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_mlm_attack_on_a_checkpoint_without_a_masked_lm_head_is_a_clear_error(finished_tiny_run, tmp_path):
    attacks = {"mlm": {"transformation": "mlm"}}
    cfg, path = copy_tiny_run(finished_tiny_run, tmp_path, attack={**ATTACK, "attacks": attacks})
    result = CliRunner().invoke(app, ["attack", str(path)], env=WIDE)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "masked-LM head" in result.output


def test_a_rerun_of_the_pipeline_keeps_the_attacks_in_the_report(attacked):
    from xstilts.config import load_config
    from xstilts.pipeline.runner import Pipeline
    from xstilts.report import stored_rows

    cfg, path, _, _ = attacked
    Pipeline(load_config(path), Console(quiet=True)).run()  # rewrites config.json
    rows, earlier, _ = stored_rows(cfg.run_dir)
    assert any(row["phase"] == rec.phase(rec.ATTACK, "noise") for row in rows)
    assert not any(row["phase"].startswith("robustness") for row in earlier)


def test_parallel_versions_match_ids_without_their_language():
    from xstilts.robustness.driver import parallel_key
    from xstilts.tasks.registry import get_task

    xnli, genre = get_task("xnli"), get_task("bible-genre")
    assert parallel_key("xnli-test-de-17", xnli) == parallel_key("xnli-test-zh-17", xnli) == "xnli-test-17"
    assert parallel_key("xnli-test-de-17", xnli) != parallel_key("xnli-test-de-18", xnli)
    assert parallel_key("40:3:2", genre) == "40:3:2"


def test_generalised_pairs_take_the_unperturbed_field_in_another_language(attacked, tmp_path):
    from xstilts.analysis.driver import open_run
    from xstilts.robustness.driver import Examples, with_pair_language
    from xstilts.tasks.registry import get_task

    cfg, _, _, _ = attacked
    data = Examples(open_run(cfg.run_dir), get_task("bible-pair"), 4)
    german, english = data("de"), data("en")
    mixed = with_pair_language(german, ("text_b",), "de", "en", data)
    assert [m["text_a"] for m in mixed] == [e["text_a"] for e in english]  # the premise in English
    assert [m["text_b"] for m in mixed] == [g["text_b"] for g in german]  # the attacked field stays German
    with pytest.raises(XstiltsError, match="a field left unperturbed"):
        with_pair_language(german, ("text_a", "text_b"), "de", "en", data)


def test_command_line_languages_are_the_languages_of_every_attack(finished_tiny_run):
    from xstilts.analysis.driver import open_run
    from xstilts.robustness.driver import languages_for, settings_for
    from xstilts.tasks.registry import get_task

    cfg, _, _ = finished_tiny_run
    run = open_run(cfg.run_dir)
    from xstilts.config import AttackConfig

    configured = run.cfg.model_copy(update={"attack": AttackConfig.model_validate(ATTACK)})
    run = type(run)(configured, run.run_dir, run.config_hash)
    spec = get_task("bible-genre")
    settings = settings_for(run)
    assert languages_for(run, settings, spec, settings.attacks["code-mixing"]) == ["de"]  # its own list
    settings = settings_for(run, languages=["zh"])
    assert [languages_for(run, settings, spec, a) for a in settings.attacks.values()] == [["zh"], ["zh"]]
