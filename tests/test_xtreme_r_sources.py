"""XTREME-R's data: SIQA (intermediate) and XCOPA (target) from fixture hub repos and from files in the
original releases' formats, and the template values of the languages XTREME-R adds to udpos, panx,
tatoeba and xquad."""

from pathlib import Path

import pytest

from xstilts.errors import XstiltsError
from xstilts.evaluate.suites import XTREME_R
from xstilts.tasks import languages as L
from xstilts.tasks.hub import fill
from xstilts.tasks.registry import get_task
from xstilts.tasks.sources import load_examples

FIXTURES = Path(__file__).parent / "fixtures"
MIRROR = FIXTURES / "hub"
LOCAL = FIXTURES / "local"

pytestmark = pytest.mark.usefixtures("isolated_datasets_cache")


def _hub(task, split, lang):
    return load_examples(get_task(task), split, lang, hub_mirror=MIRROR)


def _local(task, split, lang):
    return load_examples(get_task(task), split, lang, data_dir=LOCAL)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------------------------- SIQA


def test_hub_siqa_labels_count_from_one_and_the_question_follows_the_context():
    first, second = _hub("siqa", "train", "en")
    assert first == {
        "id": "siqa-train-en-0",
        "context": "Riley forgot her umbrella and walked home in the rain. How would Riley feel afterwards?",
        "choices": ["dry and warm", "cold and wet", "proud of the weather"],
        "label": 1,  # "2"
    }
    assert second["label"] == 0  # "1\n": the stray newline of older hub versions is ignored
    (dev,) = _hub("siqa", "dev", "en")
    assert dev["label"] == 2 and dev["choices"][2] == "take a nap"


def test_local_siqa_reads_the_labels_file_beside_the_jsonl():
    first, second = _local("siqa", "train", "en")
    assert first["context"] == (
        "Tracy lent her notes to a classmate who had been sick. How would the classmate feel?"
    )
    assert (first["label"], second["label"]) == (0, 2)  # train-labels.lst: 1, 3
    assert second["choices"] == ["buy a car", "go to bed", "clean the stain"]
    assert [ex["label"] for ex in _local("siqa", "dev", "en")] == [1]


def test_siqa_release_files_that_disagree_are_named(tmp_path):
    folder = tmp_path / "siqa" / "socialiqa-train-dev"
    record = '{"context": "c", "question": "q?", "answerA": "a", "answerB": "b", "answerC": "c"}\n'
    _write(folder / "train.jsonl", record * 2)
    _write(folder / "train-labels.lst", "1\n")
    with pytest.raises(
        XstiltsError, match=r"train\.jsonl:2: no label for record 2: train-labels\.lst has only 1"
    ):
        load_examples(get_task("siqa"), "train", "en", data_dir=tmp_path)
    _write(folder / "train-labels.lst", "1\n2\n3\n")
    with pytest.raises(
        XstiltsError, match=r"train-labels\.lst has 3 labels but .*train\.jsonl has 2 records"
    ):
        load_examples(get_task("siqa"), "train", "en", data_dir=tmp_path)
    _write(folder / "train-labels.lst", "1\n4\n")
    with pytest.raises(
        XstiltsError, match=r"train\.jsonl:2: bad Social IQa label '4': expected 1-3 or A/B/C"
    ):
        load_examples(get_task("siqa"), "train", "en", data_dir=tmp_path)
    (folder / "train-labels.lst").unlink()
    with pytest.raises(XstiltsError, match=r"data file not found: .*train-labels\.lst"):
        load_examples(get_task("siqa"), "train", "en", data_dir=tmp_path)


def test_siqa_in_xtreme_r_s_own_download_uses_letters(tmp_path):
    """XTREME-R's download_data.sh fetches socialIQa_v1.4, whose lines carry "correct": "A".."C"."""
    from xstilts.tasks.adapters import siqa

    record = {
        "context": "c.",
        "question": "q?",
        "answerA": "a",
        "answerB": "b",
        "answerC": "x",
        "correct": "C",
    }
    assert siqa(record, get_task("siqa"), "en")[0]["label"] == 2


# --------------------------------------------------------------------------------------------- XCOPA


def test_hub_xcopa_trains_on_english_copa_and_tests_per_language():
    assert _hub("xcopa", "train", "en") == [
        {
            "id": "0",
            "context": "The kettle whistled. What was the cause?",
            "choices": ["The water was boiling.", "The water was frozen."],
            "label": 0,
        },
        {
            "id": "1",
            "context": "The boy kicked the ball through the window. What was the effect?",
            "choices": ["The window was opened.", "The glass shattered."],
            "label": 1,
        },
    ]
    assert [ex["label"] for ex in _hub("xcopa", "dev", "en")] == [0]
    et = _hub("xcopa", "test", "et")
    assert [(ex["id"], ex["context"], ex["label"]) for ex in et] == [
        ("0", "Tänav oli märg. What was the cause?", 0),
        ("1", "Ma avasin akna. What was the effect?", 1),
    ]
    assert _hub("xcopa", "test", "qu")[0]["choices"] == ["Huk runa hamurqan.", "Inti lluqsirqan."]


def test_local_xcopa_reads_superglue_copa_and_the_xcopa_repository_layout():
    train = _local("xcopa", "train", "en")
    assert [(ex["context"], ex["label"]) for ex in train] == [
        ("The runner wore shorts. What was the cause?", 0),
        ("I pushed the gas pedal. What was the effect?", 0),
    ]
    assert _local("xcopa", "dev", "en")[0]["label"] == 1
    et = _local("xcopa", "test", "et")
    assert [ex["label"] for ex in et] == [0, 1]
    assert et[1]["choices"] == ["Seda kasteti iga päev.", "Keegi ei kastnud seda."]
    assert _local("xcopa", "test", "qu")[0]["context"] == "Mikhuy tukurqan. What was the effect?"


def test_xcopa_is_tested_in_its_eleven_languages_not_in_english():
    spec = get_task("xcopa")
    assert spec.languages == XTREME_R.languages("xcopa") and "en" not in spec.languages
    assert spec.xtreme_name == "xcopa" and spec.kind == "multiple_choice" and spec.metric == "accuracy"
    with pytest.raises(XstiltsError, match=r"unknown language for task xcopa 'en'"):
        load_examples(spec, "test", "en", data_dir=LOCAL)


def test_xcopa_question_must_be_cause_or_effect(tmp_path):
    line = '{"premise": "p.", "choice1": "a", "choice2": "b", "question": "reason", "label": 0, "idx": 0}\n'
    _write(tmp_path / "xcopa" / "data" / "et" / "test.et.jsonl", line)
    with pytest.raises(XstiltsError, match=r"test\.et\.jsonl:1: COPA question must be 'cause' or 'effect'"):
        load_examples(get_task("xcopa"), "test", "et", data_dir=tmp_path)


# ------------------------------------------------------------------------- XTREME-R's added languages


@pytest.mark.parametrize(
    ("task", "extra"),
    [
        ("udpos", ("lt", "pl", "uk", "wo", "ro")),
        ("panx", ("qu", "pl", "uk", "az", "lt", "pa", "gu", "ro")),
        ("tatoeba", ("az", "lt", "pl", "uk", "ro")),
        ("xquad", ("ro",)),
    ],
)
def test_registry_lists_the_union_of_xtreme_and_xtreme_r_languages(task, extra):
    """evaluate.py's XTREME_R_TASK2LANGS adds these; the XTREME suite keeps its own lists."""
    from xstilts.evaluate.suites import XTREME

    spec = get_task(task)
    assert set(spec.languages) == set(XTREME.languages(task)) | set(extra) == set(XTREME_R.languages(task))
    assert not set(extra) & set(XTREME.languages(task))


def test_every_language_of_the_four_tasks_fills_its_templates():
    udpos = [fill("udpos.{udpos_name}", lang) for lang in get_task("udpos").languages]
    assert udpos[-5:] == [
        "udpos.Lithuanian",
        "udpos.Polish",
        "udpos.Ukrainian",
        "udpos.Wolof",
        "udpos.Romanian",
    ]
    assert all(name != f"udpos.{lang}" for name, lang in zip(udpos, get_task("udpos").languages, strict=True))
    tatoeba = {lang: fill("tatoeba.{iso3}", lang) for lang in get_task("tatoeba").languages}
    assert [tatoeba[lang] for lang in ("az", "lt", "pl", "uk", "ro")] == [
        "tatoeba.aze", "tatoeba.lit", "tatoeba.pol", "tatoeba.ukr", "tatoeba.ron",
    ]  # fmt: skip
    assert all(lang in L.ISO3 for lang in get_task("tatoeba").languages)
    assert fill("PAN-X.{lang}", "qu") == "PAN-X.qu" and fill("XQuAD.{lang}", "ro") == "XQuAD.ro"
    assert {"qu", "ht", "gu", "pa", "az"} <= set(L.LANGUAGE_NAMES)


def test_an_added_language_loads_from_the_original_files():
    assert _local("tatoeba", "test", "pl")[1] == {
        "id": "tatoeba-test-pl-1",
        "text": "Gdzie jest dworzec?",
        "translation": "Where is the station?",
    }
