"""Multilingual intermediate training at a matched budget, and a genre domain shift, on a copy of the shared
tiny run: the drawn arms keep the English arm's examples and steps (recorded per language), the budget that
an arm cannot reach stops the run naming it, and the shifted target is scored on both test sets."""

from pathlib import Path

import pytest
from rich.console import Console

from conftest import copy_tiny_run
from xstilts.config import BudgetConfig, TranslateConfig, load_config
from xstilts.errors import XstiltsError
from xstilts.pipeline.layout import RunLayout
from xstilts.pipeline.runner import Pipeline
from xstilts.pipeline.training_data import intermediate_examples
from xstilts.tasks.bible import genre_of_example
from xstilts.tasks.domains import domain_of, get_shift, in_domains
from xstilts.tasks.registry import get_task
from xstilts.tasks.sources import load_examples, translated_spec

SHIFT = "bible-law-history-to-gospels-epistles"
ARMS = {"next-both": {"tasks": ["bible-next"], "translate": {"languages": ["de", "zh"], "draw": "both"}}}


def _budget_run(finished_tiny_run, tmp_path, **changes):
    cfg, _ = finished_tiny_run[:2]
    phase = cfg.intermediate_training.model_dump(mode="json", exclude={"train_examples", "max_steps"})
    return copy_tiny_run(
        finished_tiny_run,
        tmp_path,
        mixtures=ARMS,
        intermediate=["bible-next", *ARMS],
        targets=["bible-follows"],
        intermediate_training=phase,
        budget={"examples": 24, "steps": 3},  # the shared run's own intermediate examples and steps
        **changes,
    )


def test_matched_budget_arms_and_a_genre_shift(finished_tiny_run, tmp_path):
    cfg, path = _budget_run(finished_tiny_run, tmp_path, domain_shifts=[SHIFT])
    console = Console(record=True, width=250)
    Pipeline(load_config(path), console).run()
    log = console.export_text()
    # the budget restates the shared run's examples and steps: its English arm is not trained again
    assert "resume: seed0/intermediate/bible-next already done" in log
    layout = RunLayout(cfg)
    for arm in ("bible-next", "next-both"):  # the English arm's consumption is recorded too
        rows = layout.store.rows(intermediate=arm, phase="budget")
        per_language = {r["language"]: r["value"] for r in rows if r["metric"] == "examples"}
        totals = {r["metric"]: r["value"] for r in rows if r["language"] == "all"}
        assert sum(per_language.values()) == 24, (arm, per_language)
        assert totals["steps"] == 3 and totals["examples_seen"] == 3 * 4 and totals["tokens"] > 0
    drawn = {r["language"] for r in layout.store.rows(intermediate="next-both", metric="examples")}
    assert drawn == {"en", "de", "zh"}
    # the shifted target: in-domain and out-of-domain rows in every language of the run
    for arm in ("bible-next", "next-both"):
        rows = layout.store.rows(intermediate=arm, target=SHIFT, metric="accuracy")
        assert {(r["phase"], r["language"]) for r in rows} == {
            (part, lang) for part in ("in-domain", "out-of-domain") for lang in ("en", "de", "zh")
        }
        assert all(0 <= r["value"] <= 1 for r in rows)
    assert f"{SHIFT} out-of-domain (bible-follows [gospels_acts + pauline_epistles" in log


def _load(spec, split, lang, limit):
    return load_examples(spec, split, lang, limit=limit)


@pytest.mark.parametrize("draw", ["multilingual", "both"])
def test_drawn_examples_keep_the_english_examples_in_drawn_languages(draw):
    spec = get_task("bible-genre")
    translate = TranslateConfig(languages=["de", "zh"], draw=draw)
    english = load_examples(spec, "train", "en", limit=60)
    drawn, counts = intermediate_examples(
        _load, spec, arm="a", translate=translate, limit=60, budget=None, seed=3, data_seed=0
    )
    assert sorted(ex["id"] for ex in drawn) == sorted(ex["id"] for ex in english)
    assert sum(counts.values()) == 60 and (("en" in counts) == (draw == "both"))
    german = {ex["id"]: ex["text"] for ex in load_examples(spec, "train", "de", limit=60)}
    assert sum(german[ex["id"]] == ex["text"] for ex in drawn) == counts["de"]
    again, _ = intermediate_examples(
        _load, spec, arm="a", translate=translate, limit=60, budget=None, seed=3, data_seed=0
    )
    assert again == drawn  # seeded: the same draw for the same run seed


def test_a_concatenated_arm_is_cut_to_the_budget_and_a_short_one_stops():
    spec = get_task("bible-genre")
    translate = TranslateConfig(languages=["de"])  # English next to German: twice the data
    examples, counts = intermediate_examples(
        _load, spec, arm="cat", translate=translate, limit=40, budget=BudgetConfig(examples=40, steps=5),
        seed=0, data_seed=0,
    )  # fmt: skip
    assert len(examples) == 40 and set(counts) == {"en", "de"}
    with pytest.raises(XstiltsError, match=r"intermediate cat: the budget asks for 100 training examples of "
                       r"bible-genre, but this arm's data holds 80 \(en 40, de 40\)"):  # fmt: skip
        intermediate_examples(
            _load, spec, arm="cat", translate=translate, limit=40,
            budget=BudgetConfig(examples=100, steps=5), seed=0, data_seed=0,
        )  # fmt: skip


def test_genre_of_an_example_is_its_first_verse_book():
    assert genre_of_example({"id": "1.2.3+1.2.4"}) == "law"
    assert genre_of_example({"id": "40.1.1"}) == "gospels_acts"
    assert genre_of_example({"id": "66.22.21"}) == "general_epistles"


FIXTURES = Path(__file__).parent / "fixtures" / "local"
XNLI_TRANSLATIONS = {
    "files": {"mnli": "xnli/translate-train/en-{lang}-translated.tsv"},
    "formats": {"mnli": "tsv:original_a,original_b,sentence1,sentence2,label"},
}


def test_xnli_translate_train_rows_are_matched_by_the_english_pair_they_translate():
    """XTREME's XNLI translate-train rows have no ids and need not follow MNLI's order: the English pair in
    their first two columns matches them (the fixture lists them in reverse order)."""
    spec = get_task("mnli")
    translate = TranslateConfig(languages=["de"], draw="multilingual", **XNLI_TRANSLATIONS)

    def load(source, split, lang, limit):
        return load_examples(source, split, lang, limit=limit, data_dir=FIXTURES)

    drawn, counts = intermediate_examples(
        load, spec, arm="m", translate=translate, limit=None, budget=None, seed=0, data_seed=0,
        data_dir=FIXTURES,
    )  # fmt: skip
    assert counts == {"de": 2}  # the third English pair has no translation: not drawn in multilingual mode
    by_id = {ex["id"]: (ex["text_a"], ex["label"]) for ex in drawn}
    assert by_id == {
        "40012e": ("Die Lampe auf dem Schreibtisch flackerte und ging aus.", 0),
        "40015n": ("Die Behörde veröffentlichte neue Richtlinien.", 1),
    }


def test_a_missing_translation_file_names_the_languages_that_have_one():
    translate = TranslateConfig(languages=["fr"], draw="multilingual", **XNLI_TRANSLATIONS)
    with pytest.raises(XstiltsError, match=r"no translation of mnli for fr: .*en-fr-translated.tsv does not "
                       r"exist; languages with a translation file there: de"):  # fmt: skip
        translated_spec(get_task("mnli"), "fr", translate, FIXTURES)


def test_the_nli_genre_shift_reads_the_genres_of_xnli_1_0():
    """XNLI-1.0's test file names each pair's genre: MNLI's five training genres are in-domain."""
    shift = get_shift("mnli-genres-xnli")
    examples = load_examples(get_task("xnli-genres"), "test", "de", data_dir=FIXTURES)
    assert [ex["domain"] for ex in examples] == ["fiction", "facetoface", "government", "letters"]
    domain = domain_of("xnli-genres")
    inside = in_domains(examples, shift.in_domain.domains, domain)
    outside = in_domains(examples, shift.out_of_domain.domains, domain)
    assert [ex["text_a"] for ex in inside] == ["Der Bericht kam spät .", "Das Büro ist offen ."]
    assert [ex["label"] for ex in outside] == [1, 0]  # neutral, entailment
    with pytest.raises(XstiltsError, match="the examples of task xnli carry no domain"):
        domain_of("xnli")  # XTREME's XNLI files have no genre column


def test_a_shift_naming_a_domain_its_test_set_lacks_lists_the_domains():
    from xstilts.tasks.domains import DomainShift, TestSet, check_shift

    wrong = DomainShift(
        "x", "xnli", TestSet("xnli-genres", ("fiction",)), TestSet("xnli-genres", ("sports",))
    )
    with pytest.raises(XstiltsError, match=r"xnli-genres has no domain \['sports'\]; its domains: fiction"):
        check_shift(wrong)


def test_tasks_lists_the_domain_shifts():
    from typer.testing import CliRunner

    from xstilts.cli import app
    from xstilts.tasks.domains import SHIFTS

    result = CliRunner().invoke(app, ["tasks", "--domain-shifts"], terminal_width=250)
    assert result.exit_code == 0
    for shift in SHIFTS:
        assert shift.name in result.output and shift.target in result.output
    assert "law + history" in result.output and "xnli-genres [facetoface + letters" in result.output
