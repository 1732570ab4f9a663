"""Sources and adapters: every task's examples from the hub (fixture repos in the hub's own layout, read by
the real `datasets.load_dataset` through the hub-mirror path) and from files in the original formats."""

import time
from pathlib import Path

import pytest

from xstilts.errors import XstiltsError
from xstilts.tasks import hub, sources
from xstilts.tasks.adapters import IGNORED_TAG
from xstilts.tasks.registry import get_task
from xstilts.tasks.sources import load_examples, subset, task_labels

FIXTURES = Path(__file__).parent / "fixtures"
MIRROR = FIXTURES / "hub"
NORMANDY = "Normandy is a region in northern France. The Normans gave their name to it in the 10th century."
LOCAL = FIXTURES / "local"


pytestmark = pytest.mark.usefixtures("isolated_datasets_cache")


def _hub(task, split, lang, **kwargs):
    return load_examples(get_task(task), split, lang, hub_mirror=MIRROR, **kwargs)


def _local(task, split, lang, **kwargs):
    return load_examples(get_task(task), split, lang, data_dir=LOCAL, **kwargs)


def _summary(examples, *keys):
    return [tuple(ex[k] for k in keys) for ex in examples]


# ------------------------------------------------------------------------------------------- hub rows


def test_hub_anli_plus_train_concatenates_snli_mnli_and_three_anli_rounds():
    examples = _hub("anli-plus", "train", "en")
    assert _summary(examples, "id", "label") == [
        ("anli-plus-train-en-0", 0),  # SNLI has no ids; its label -1 row is skipped
        ("anli-plus-train-en-1", 1),
        ("anli-plus-train-en-2", 2),
        ("10021e", 0),  # MNLI pairID
        ("10022n", 1),
        ("10023c", 2),
        ("3f0c9a1e-6b2d-4e8f-a7c4-5d1e9b3a2f60", 0),  # ANLI uid, rounds 1, 1, 2, 3
        ("8c4e2b7a-1d9f-4a3c-b6e5-0f7a2d8c1b94", 2),
        ("5a4b8c1e-2f3d-4e6a-9b7c-0d1e2f3a4b5c", 1),
        ("c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f", 0),
    ]
    assert examples[0] == {
        "id": "anli-plus-train-en-0",
        "text_a": "A man in a red jacket is riding a bicycle down a hill.",
        "text_b": "A person is on a bike.",
        "label": 0,
    }
    assert examples[2]["text_b"] == "A cat is sleeping on the sofa."


def test_hub_mnli_test_is_mismatched_dev():
    assert _hub("mnli", "test", "en") == [
        {
            "id": "30001n",
            "text_a": "The caller asked about opening hours.",
            "text_b": "The caller wanted to visit on Sunday.",
            "label": 1,
            "domain": "telephone",  # MultiNLI's genre: the domain of domain shifts
        }
    ]


def test_hub_xnli_keeps_the_requested_language_of_the_mixed_config():
    assert _hub("xnli", "test", "de") == [
        {
            "id": "xnli-test-de-0",
            "text_a": "Du musst nicht dort bleiben.",
            "text_b": "Du kannst gehen.",
            "label": 0,
        },
        {
            "id": "xnli-test-de-1",
            "text_a": "Die neuen Regeln scheinen fair genug.",
            "text_b": "Alle sind von den neuen Regeln begeistert.",
            "label": 1,
        },
        {
            "id": "xnli-test-de-2",
            "text_a": "Er ist nie zur Schule gegangen.",
            "text_b": "Er hat das Abitur mit Auszeichnung bestanden.",
            "label": 2,
        },
    ]
    assert [ex["text_a"] for ex in _hub("xnli", "test", "fr")] == ["Vous n'êtes pas obligé de rester là."]


def test_pinned_language_reads_english_training_data_for_any_target_language():
    assert [ex["id"] for ex in _hub("xnli", "train", "de")] == ["10021e", "10022n", "10023c"]


def test_hub_pawsx_string_labels():
    examples = _hub("pawsx", "test", "de")
    assert _summary(examples, "id", "label") == [
        ("pawsx-test-de-0", 1),
        ("pawsx-test-de-1", 0),
        ("pawsx-test-de-2", 1),
    ]
    assert examples[1]["text_a"] == "1962 zog er von Boston nach Chicago , wo er an der Universität lehrte ."
    assert [ex["label"] for ex in _hub("pawsx", "train", "en")] == [1, 0, 1]


def test_hub_qqp_class_labels():
    assert _hub("qqp", "dev", "en") == [
        {
            "id": "qqp-dev-en-0",
            "text_a": "Is coffee bad for your health?",
            "text_b": "What are the health effects of drinking coffee?",
            "label": 1,
        },
        {
            "id": "qqp-dev-en-1",
            "text_a": "How do airplanes stay in the air?",
            "text_b": "How long does a flight to Tokyo take?",
            "label": 0,
        },
    ]


def test_hub_squad_v1_and_v2():
    (first, second) = _hub("squad-v1", "dev", "en")
    assert first == {
        "id": "56be4db0acb8001400a502ec",
        "question": "Where does photosynthesis mainly take place?",
        "context": "Photosynthesis converts light energy into chemical energy. "
        "It takes place mainly in the leaves of plants.",
        "answers": {
            "text": ["in the leaves of plants", "the leaves", "leaves of plants"],
            "answer_start": [81, 84, 88],
        },
    }
    assert second["answers"] == {"text": ["chemical energy"], "answer_start": [42]}
    unanswerable, answerable = _hub("squad-v2", "dev", "en")
    assert unanswerable["id"] == "5ad39d53604f3c001a3fe8d1"
    assert unanswerable["answers"] == {"text": [], "answer_start": []}
    assert answerable["answers"] == {"text": ["light energy"], "answer_start": [24]}


def test_hub_hellaswag():
    assert _hub("hellaswag", "dev", "en") == [
        {
            "id": "24",
            "context": "A boy stands at the sink with a sponge. he",
            "choices": [
                "sings into the sponge.",
                "climbs onto the roof.",
                "rinses a plate under the tap.",
                "feeds the sponge to a dog.",
            ],
            "label": 2,
        }
    ]
    assert _summary(_hub("hellaswag", "train", "en"), "id", "label") == [("4", 0), ("8", 1)]


def test_hub_cosmosqa_appends_the_question_to_the_context():
    (example,) = _hub("cosmosqa", "dev", "en")
    assert example["context"] == (
        "The bakery on the corner closed last month after thirty years. How might the neighbours feel?"
    )
    assert example["choices"][2] == "Sad to lose a familiar shop."
    assert example["label"] == 2
    assert example["id"].startswith("3NJM2BJS4ZNBP3BRU43PT7HV1T8CPC##")


def test_hub_commonsenseqa():
    assert _hub("commonsenseqa", "dev", "en") == [
        {
            "id": "1afa02df02c908a558b4036e80242fac",
            "context": "Where might you find a sleeping cat?",
            "choices": ["ocean", "volcano", "on a sofa", "in a fridge", "on the moon"],
            "label": 2,
        }
    ]


def test_hub_udpos_class_label_ints():
    assert _hub("udpos", "test", "de") == [
        {"id": "udpos-test-de-0", "tokens": ["Die", "Katze", "schläft", "."], "tags": [5, 7, 15, 12]},
        {
            "id": "udpos-test-de-1",
            "tokens": ["Wir", "haben", "schnell", "gegessen", "."],
            "tags": [10, 3, 2, 15, 12],
        },
    ]
    assert [ex["tokens"][0] for ex in _hub("udpos", "train", "en")] == ["The", "She"]


def test_hub_panx():
    examples = _hub("panx", "test", "de")
    assert examples[1] == {
        "id": "panx-test-de-1",
        "tokens": ["Der", "FC", "Bayern", "München", "gewann", "."],
        "tags": [0, 3, 4, 4, 0, 0],
    }
    assert len(examples) == 3


def test_hub_xquad_and_mlqa():
    xquad = _hub("xquad", "test", "de")
    assert [ex["id"] for ex in xquad] == [
        "56beb4343aeaaa14008c925b",
        "56beb4343aeaaa14008c925c",
        "56beb4343aeaaa14008c925d",
    ]
    assert xquad[1]["answers"] == {"text": ["Cam Newton"], "answer_start": [100]}
    assert xquad[1]["context"][100:110] == "Cam Newton"
    mlqa = _hub("mlqa", "test", "de")
    assert mlqa[1] == {
        "id": "b8d4f2a1c3e05d6f9a7b2c3d4e5f6071829304b5",
        "question": "Wie lang ist der Rhein?",
        "context": "Der Rhein entspringt in den Schweizer Alpen und mündet bei Rotterdam in die Nordsee. "
        "Er ist etwa 1230 Kilometer lang.",
        "answers": {"text": ["etwa 1230 Kilometer"], "answer_start": [92]},
    }


def test_hub_tydiqa_keeps_the_language_of_the_id_prefix():
    assert [ex["id"] for ex in _hub("tydiqa", "test", "fi")] == [
        "finnish-6501234987612340987-0",
        "finnish-7712349876123409876-2",
    ]
    (arabic,) = _hub("tydiqa", "test", "ar")
    assert arabic["answers"] == {"text": ["القاهرة"], "answer_start": [0]}
    assert _hub("tydiqa", "test", "ko") == []


def test_tydiqa_trains_on_english_tydiqa_goldp_not_squad():
    """XTREME's README and scripts/train_qa.sh, jiant's tydiqa_en: the English GoldP training set."""
    hub_train = _hub("tydiqa", "train", "en")
    assert [ex["id"] for ex in hub_train] == ["english-9087123409871234567-0"]
    assert [ex["id"] for ex in _hub("tydiqa", "dev", "en")] == ["english-5512340987612345678-1"]
    # XTREME's utils_preprocess.py writes the English training file with the language prefix cut off
    local_train = _local("tydiqa", "train", "en")
    assert [ex["question"] for ex in local_train] == [
        "Where is the Amazon river?",
        "In which mountain range is Mount Everest?",
    ]
    assert local_train[1]["answers"] == {"text": ["Himalayas"], "answer_start": [74]}
    assert [ex["id"] for ex in _local("tydiqa", "dev", "en")] == ["english-4412398760123498765-0"]
    squad_questions = {ex["question"] for ex in _local("squad-v1", "train", "en")}
    assert not squad_questions & {ex["question"] for ex in local_train}


def test_hub_bucc_holds_only_the_gold_pairs():
    assert _hub("bucc2018", "test", "de") == [
        {
            "id": "de-en",
            "source": {
                "de-000012": "Die Stadt hat rund 50.000 Einwohner.",
                "de-000078": "Das Schloss wurde im 12. Jahrhundert erbaut.",
                "de-000231": "Der Bahnhof liegt nördlich der Altstadt.",
            },
            "target": {
                "en-000345": "The town has about 50,000 inhabitants.",
                "en-000016": "The castle was built in the 12th century.",
                "en-000090": "The station lies north of the old town.",
            },
            "gold": [["de-000012", "en-000345"], ["de-000078", "en-000016"], ["de-000231", "en-000090"]],
        }
    ]


def test_hub_tatoeba_strips_the_newlines():
    examples = _hub("tatoeba", "test", "de")
    assert examples[:2] == [
        {"id": "tatoeba-test-de-0", "text": "Ich habe Hunger.", "translation": "I'm hungry."},
        {"id": "tatoeba-test-de-1", "text": "Wo ist der Bahnhof?", "translation": "Where is the station?"},
    ]
    assert len(examples) == 4


# ---------------------------------------------------------------------------------- original files


def test_local_anli_plus_reads_mnli_snli_and_anli_jsonl():
    examples = _local("anli-plus", "train", "en")
    assert _summary(examples, "id", "label") == [
        ("2873094571.jpg#2r1n", 1),
        ("2873094571.jpg#2r1e", 0),
        ("40012e", 0),  # MNLI's "-" (no consensus) row is skipped
        ("40013c", 2),
        ("40015n", 1),
        ("a1b2c3d4-0001-4000-8000-000000000001", 0),  # ANLI "e", "c", "n"
        ("a1b2c3d4-0002-4000-8000-000000000002", 2),
        ("a1b2c3d4-0003-4000-8000-000000000003", 1),
    ]
    assert examples[5]["text_a"] == "Lake Baikal is the deepest lake in the world."


def test_local_qqp_glue_tsv():
    assert _local("qqp", "train", "en")[1] == {
        "id": "118204",
        "text_a": "Why do cats purr?",
        "text_b": "Why do dogs bark at night?",
        "label": 0,
    }


def test_local_xnli_and_pawsx_xtreme_tsv():
    assert _summary(_local("xnli", "train", "en"), "id", "label") == [
        ("xnli-train-en-0", 0),
        ("xnli-train-en-1", 2),
        ("xnli-train-en-2", 1),
    ]
    assert _local("xnli", "train", "en")[1]["text_a"] == 'She said "no" and left the room.'
    assert _local("pawsx", "test", "de")[1] == {
        "id": "pawsx-test-de-1",
        "text_a": "Der Fluss fließt nach Norden durch das Tal , bevor er bei Passau in die Donau mündet .",
        "text_b": "Bevor er bei Passau in die Donau mündet , fließt der Fluss durch das Tal nach Norden .",
        "label": 1,
    }


def test_local_squad_files():
    (example,) = _local("squad-v1", "dev", "en")
    assert example == {
        "id": "56dddf4066d3e219004dad5f",
        "question": "Who gave their name to Normandy?",
        "context": NORMANDY,
        "answers": {"text": ["The Normans"], "answer_start": [41]},
    }
    train = _local("squad-v1", "train", "en")
    assert train[1]["answers"] == {"text": ["10th century", "in the 10th century"], "answer_start": [82, 75]}
    (impossible,) = _local("squad-v2", "dev", "en")
    assert impossible["answers"] == {"text": [], "answer_start": []}
    xquad = _local("xquad", "test", "de")[1]
    assert xquad["answers"] == {"text": ["im 10. Jahrhundert"], "answer_start": [77]}
    assert xquad["context"][77 : 77 + len("im 10. Jahrhundert")] == "im 10. Jahrhundert"
    assert _local("mlqa", "test", "de")[0]["answers"] == {"text": ["2962 Metern"], "answer_start": [22]}
    assert [ex["id"] for ex in _local("tydiqa", "test", "fi")] == [
        "finnish-3221287496214570498-0",
        "finnish-3221287496214570498-1",
    ]


def test_local_multiple_choice_files():
    assert _local("hellaswag", "train", "en")[1] == {
        "id": "15",
        "context": "A woman fills a kettle with water at the sink. she",
        "choices": [
            "places the kettle on the stove and turns on the heat.",
            "pours the water onto the floor.",
            "puts the kettle in the freezer.",
            "hands the kettle to a passing bird.",
        ],
        "label": 0,
    }
    (cosmos,) = _local("cosmosqa", "dev", "en")
    assert cosmos["label"] == 3 and cosmos["choices"][3] == "Frustrated that the finished puzzle was ruined ."
    assert _local("commonsenseqa", "train", "en")[1] == {
        "id": "7b2d4e3f8a9c0b1d2e3f4a5b6c7d8e9f",
        "context": "What might you feel after running a long race?",
        "choices": ["boredom", "hunger for paper", "exhaustion", "coldness of stone", "invisibility"],
        "label": 2,
    }


def test_local_tagging_files_strip_panx_language_prefixes():
    assert _local("panx", "train", "en") == [
        {"id": "panx-train-en-0", "tokens": ["Barack", "Obama", "visited", "Berlin"], "tags": [1, 2, 0, 5]},
        {
            "id": "panx-train-en-1",
            "tokens": ["Mount", "Everest", "lies", "in", "Nepal"],
            "tags": [5, 6, 0, 0, 5],
        },
    ]
    assert _local("udpos", "test", "de")[1] == {
        "id": "udpos-test-de-1",
        "tokens": ["Wir", "haben", "schnell", "gegessen", "."],
        "tags": [10, 3, 2, 15, 12],
    }


def test_local_ccg_tag_set_comes_from_the_training_file():
    ccg = get_task("ccg")
    labels = task_labels(ccg, LOCAL)
    assert labels == (
        "(S[b]\\NP)/NP", "(S[dcl]\\NP)/(S[b]\\NP)", ".", "N", "N/N", "NP", "NP[nb]/N", "S[dcl]\\NP",
    )  # fmt: skip
    (dev,) = load_examples(ccg, "dev", "en", data_dir=LOCAL)
    # "(S\NP)\(S\NP)" never occurs in training: ignored rather than an error
    assert dev == {
        "id": "ccg-dev-en-0",
        "tokens": ["Rain", "falls", "softly", "."],
        "tags": [3, 7, IGNORED_TAG, 2],
    }
    assert task_labels(get_task("pawsx")) == ("0", "1")


def test_local_bucc_keeps_the_candidate_pools():
    (example,) = _local("bucc2018", "dev", "de")
    assert example["id"] == "de-en"
    assert sorted(example["source"]) == ["de-000001", "de-000002", "de-000003"]
    assert sorted(example["target"]) == ["en-000001", "en-000002", "en-000003", "en-000004"]
    assert example["gold"] == [["de-000001", "en-000002"], ["de-000003", "en-000001"]]


def test_local_tatoeba():
    assert _local("tatoeba", "test", "de")[2] == {
        "id": "tatoeba-test-de-2",
        "text": "Tom liest gern Bücher.",
        "translation": "Tom likes reading books.",
    }


def test_missing_local_file_falls_back_to_the_hub(tmp_path):
    examples = load_examples(get_task("pawsx"), "test", "de", data_dir=tmp_path, hub_mirror=MIRROR)
    assert len(examples) == 3


def test_bible_retrieval_has_english_translations():
    examples = load_examples(get_task("bible-retrieval"), "test", "de", limit=3)
    english = load_examples(get_task("bible-retrieval"), "test", "en", limit=3)
    assert [ex["id"] for ex in examples] == [ex["id"] for ex in english]
    assert [ex["translation"] for ex in examples] == [ex["text"] for ex in english]


# ------------------------------------------------------------------------------------ ids and limit


def test_limit_is_a_seeded_subset_in_the_original_order():
    everything = _hub("anli-plus", "train", "en")
    picked = _hub("anli-plus", "train", "en", limit=4, seed=3)
    assert len(picked) == 4
    positions = [everything.index(ex) for ex in picked]
    assert positions == sorted(positions)
    assert picked == _hub("anli-plus", "train", "en", limit=4, seed=3)
    assert any(subset(everything, 4, seed) != picked for seed in range(5))
    assert _hub("anli-plus", "train", "en", limit=50) == everything


def test_repeated_dataset_ids_are_made_unique():
    examples = [{"id": "a"}, {"id": "a"}, {}, {"id": "a"}]
    ids = [ex["id"] for ex in sources._assign_ids(examples, ["t-s-en"] * 4)]
    assert ids == ["a", "a-1", "t-s-en-2", "a-2"]


# ------------------------------------------------------------------------------------------ errors


def test_unknown_split_and_language_list_the_valid_ones():
    with pytest.raises(XstiltsError, match=r"unknown split of task qqp 'test'; valid .*: dev, train"):
        load_examples(get_task("qqp"), "test", "en")
    with pytest.raises(
        XstiltsError, match=r"unknown language for task pawsx 'it'; valid .*: de, en, es, fr, ja, ko, zh"
    ):
        load_examples(get_task("pawsx"), "test", "it")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_malformed_lines_name_file_and_line(tmp_path):
    mnli = get_task("mnli")
    good = '{"sentence1": "a", "sentence2": "b", "gold_label": "neutral", "pairID": "1n"}\n'
    _write(tmp_path / "mnli" / "train.jsonl", good + '{"sentence1": "a", "sentence2": \n')
    with pytest.raises(XstiltsError, match=r"mnli/train\.jsonl:2: bad JSON"):
        load_examples(mnli, "train", "en", data_dir=tmp_path)
    _write(
        tmp_path / "mnli" / "train.jsonl",
        good + good.replace('"gold_label": "neutral"', '"gold_label": "maybe"'),
    )
    with pytest.raises(
        XstiltsError, match=r"mnli/train\.jsonl:2: unknown label 'maybe'; valid labels: entailment"
    ):
        load_examples(mnli, "train", "en", data_dir=tmp_path)
    _write(tmp_path / "mnli" / "train.jsonl", good + good.replace('"sentence2": "b", ', ""))
    with pytest.raises(XstiltsError, match=r"mnli/train\.jsonl:2: missing field 'hypothesis' or 'sentence2'"):
        load_examples(mnli, "train", "en", data_dir=tmp_path)
    _write(tmp_path / "udpos" / "train-en.tsv", "The\tDET\ncat\tNOUN\n\nIt\tPRONOUN\n")
    with pytest.raises(XstiltsError, match=r"udpos/train-en\.tsv:4: unknown tag 'PRONOUN'"):
        load_examples(get_task("udpos"), "train", "en", data_dir=tmp_path)
    _write(tmp_path / "pawsx" / "test-de.tsv", "a\tb\t1\nc\td\n")
    with pytest.raises(XstiltsError, match=r"pawsx/test-de\.tsv:2: expected 3 tab-separated columns"):
        load_examples(get_task("pawsx"), "test", "de", data_dir=tmp_path)


def test_xtreme_blanked_test_answers_are_refused(tmp_path):
    blank = '{"data": [{"paragraphs": [{"context": "Bonn am Rhein", "qas": [{"id": "q1", "question": "Wo?", "answers": [{"answer_start": 0, "text": ""}]}]}]}], "version": "1.1"}'  # noqa: E501
    _write(tmp_path / "xquad" / "xquad.de.json", blank)
    with pytest.raises(XstiltsError, match=r"xquad\.de\.json \(record 1\): empty answer text"):
        load_examples(get_task("xquad"), "test", "de", data_dir=tmp_path)


def test_ccg_needs_local_files_and_says_how_to_make_them(tmp_path):
    ccg = get_task("ccg")
    with pytest.raises(XstiltsError, match=r"CCGbank is licensed .*ccg/ccg\.train\.tsv"):
        load_examples(ccg, "train", "en")
    with pytest.raises(
        XstiltsError, match=r"data file not found: .*ccg/ccg\.train\.tsv; CCGbank is licensed"
    ):
        load_examples(ccg, "dev", "en", data_dir=tmp_path)


def test_offline_without_mirror_fails_fast_naming_dataset_and_config():
    start = time.monotonic()
    with pytest.raises(
        XstiltsError,
        match=r"cannot load google/xtreme config PAWS-X\.de split test .*HF_HUB_OFFLINE"
        r".*<data_dir>/pawsx/test-de\.tsv",
    ):
        load_examples(get_task("pawsx"), "test", "de")
    assert time.monotonic() - start < 10


def test_unreachable_hub_fails_fast(monkeypatch):
    import datasets

    monkeypatch.setattr(hub, "hub_offline", lambda: False)
    monkeypatch.setattr(hub, "hub_reachable", lambda: False)
    monkeypatch.setattr(hub, "_probe", None)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    start = time.monotonic()
    with pytest.raises(
        XstiltsError,
        match=r"cannot load nyu-mll/multi_nli split train from the Hugging Face hub: .*cannot be reached",
    ):
        load_examples(get_task("mnli"), "train", "en")
    assert time.monotonic() - start < 10
    assert datasets.config.HF_HUB_OFFLINE is False  # the forced offline mode is undone


def test_mirror_without_the_dataset_or_config(tmp_path):
    with pytest.raises(
        XstiltsError, match=r"google/xtreme config PAWS-X\.de .*hub mirror .* has no google/xtreme"
    ):
        load_examples(get_task("pawsx"), "test", "de", hub_mirror=tmp_path)
    with pytest.raises(
        XstiltsError, match=r"google/xtreme config PAWS-X\.fr split test from the hub mirror .*PAWS-X\.fr"
    ):
        load_examples(get_task("pawsx"), "test", "fr", hub_mirror=MIRROR)
    with pytest.raises(XstiltsError, match=r"hub mirror .*nowhere is not a directory"):
        load_examples(get_task("pawsx"), "test", "de", hub_mirror=tmp_path / "nowhere")


def test_mirror_from_the_environment(monkeypatch):
    monkeypatch.setenv(hub.MIRROR_ENV, str(MIRROR))
    assert [ex["label"] for ex in load_examples(get_task("pawsx"), "test", "de")] == [1, 0, 1]
