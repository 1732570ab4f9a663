"""LAReQA and Mewsli-X from their original files and from the hub's layout (fixture repos read by the real
`datasets.load_dataset` through the hub-mirror path): training pairs, one problem per language, the
multilingual LAReQA pool, and errors that name the file, the line and the field."""

import json
import shutil
import time
from pathlib import Path

import pytest

from xstilts.errors import XstiltsError
from xstilts.tasks.languages import LAREQA
from xstilts.tasks.registry import get_task
from xstilts.tasks.sources import load_examples, local_files_read

FIXTURES = Path(__file__).parent / "fixtures"
MIRROR = FIXTURES / "hub"
LOCAL = FIXTURES / "local"
NORMANDY = "Normandy is a region in northern France. The Normans gave their name to it in the 10th century."
Q1, Q2 = "5725c0e8ec44d21400f3d6b1", "5725c0e8ec44d21400f3d6b2"

pytestmark = pytest.mark.usefixtures("isolated_datasets_cache")


def _load(task, split, lang, **kwargs):
    return load_examples(get_task(task), split, lang, **kwargs)


# ------------------------------------------------------------------------------------------- LAReQA


def test_lareqa_trains_on_squad_questions_and_their_answer_sentences():
    pairs = _load("lareqa", "train", "en", data_dir=LOCAL)
    assert pairs == [
        {
            "id": "56ddde6b9a695914005b9628_en",
            "query": "In what country is Normandy located?",
            "candidate": "Normandy is a region in northern France." + NORMANDY,
        },
        {
            "id": "56ddde6b9a695914005b9629_en",
            "query": "When did the Normans give their name to Normandy?",
            "candidate": "The Normans gave their name to it in the 10th century." + NORMANDY,
        },
    ]
    hub = _load("lareqa", "train", "en", hub_mirror=MIRROR)
    assert hub[1]["query"] == "How tall is the Eiffel Tower?"
    assert hub[1]["candidate"].startswith("It is 330 metres tall.The Eiffel Tower")


def test_lareqa_test_pools_every_xquad_r_language_and_every_translation_is_relevant():
    (problem,) = _load("lareqa", "test", "de", data_dir=LOCAL)
    assert problem["queries"] == {
        f"{Q1}_de": "Wer erbaute die Burg?",
        f"{Q2}_de": "Was beherbergt die Burg heute?",
    }
    assert len(problem["candidates"]) == 3 * len(LAREQA)  # every sentence of every language
    relevant = problem["relevant"][f"{Q1}_de"]
    assert sorted(cid.split("_")[0] for cid in relevant) == sorted(LAREQA)
    assert all(cid.endswith("_0") for cid in relevant)  # each language's first sentence holds the answer
    zh = next(cid for cid in relevant if cid.startswith("zh_"))
    assert (
        problem["candidates"][zh]
        == "这座城堡由亨利公爵于1120年建造。"
        + "这座城堡由亨利公爵于1120年建造。它在1648年的战争中被烧毁。如今这里是一座钟表博物馆。"
    )
    # Thai has no sentence punctuation: its candidates are XQuAD-R's released sentences
    assert sum(cid.startswith("th_") for cid in problem["candidates"]) == 3
    files = local_files_read(get_task("lareqa"), "test", "de", LOCAL)
    assert sorted(path.name for path in files) == sorted(f"{lang}.json" for lang in LAREQA)


def test_limit_caps_the_questions_and_keeps_the_same_ones_in_every_language():
    (de,) = _load("lareqa", "test", "de", data_dir=LOCAL, limit=1, seed=4)
    (en,) = _load("lareqa", "test", "en", data_dir=LOCAL, limit=1, seed=4)
    assert len(de["queries"]) == 1 and len(de["candidates"]) == 3 * len(LAREQA)
    assert [q.rsplit("_", 1)[0] for q in de["queries"]] == [q.rsplit("_", 1)[0] for q in en["queries"]]


def test_the_hubs_xquad_r_rows_are_refused_for_lacking_the_released_sentence_breaks():
    with pytest.raises(
        XstiltsError, match=r"xquad_r ar \[validation\] row 0: no 'sentence_breaks'.*lareqa/xquad-r/"
    ):
        _load("lareqa", "test", "de", hub_mirror=MIRROR)


def test_a_missing_pool_language_falls_back_to_the_hub_and_fails_fast_offline(tmp_path):
    shutil.copytree(LOCAL / "lareqa", tmp_path / "lareqa")
    (tmp_path / "lareqa" / "xquad-r" / "th.json").unlink()
    start = time.monotonic()
    with pytest.raises(
        XstiltsError, match=r"google-research-datasets/xquad_r config th .*lareqa/xquad-r/th\.json"
    ):
        _load("lareqa", "test", "de", data_dir=tmp_path)
    assert time.monotonic() - start < 10


# ----------------------------------------------------------------------------------------- Mewsli-X


def test_mewslix_trains_on_wikipedia_mentions_and_their_entity_descriptions():
    pairs = _load("mewslix", "train", "en", data_dir=LOCAL)
    assert len(pairs) == 6
    assert pairs[0] == {
        "id": "wp-Q84-0",
        "query": "London: Their last concert was held in { London } in May.",
        "candidate": "London is the capital of England and the United Kingdom. "
        "It stands on the River Thames.",
    }
    assert _load("mewslix", "train", "en", hub_mirror=MIRROR) == pairs
    assert len(_load("mewslix", "train", "en", data_dir=LOCAL, limit=2)) == 2


def test_mewslix_dev_is_the_wikipedia_dev_pairs_as_one_english_problem():
    (problem,) = _load("mewslix", "dev", "en", data_dir=LOCAL)
    assert problem["relevant"] == {"wp-Q64-0": ["Q64"], "wp-Q567-1": ["Q567"]}
    assert sorted(problem["candidates"]) == ["Q567", "Q64"]
    assert _load("mewslix", "dev", "en", hub_mirror=MIRROR) == [problem]


def test_mewslix_test_ranks_wikinews_mentions_against_the_whole_candidate_set():
    (problem,) = _load("mewslix", "test", "de", data_dir=LOCAL)
    assert problem["queries"] == {
        "wn-de-1": "München: In { München } hat am Samstag das Oktoberfest begonnen.",
        "wn-de-2": "Paris: Viele Besucher kamen aus { Paris } .",
    }
    assert problem["relevant"] == {"wn-de-1": ["Q1726"], "wn-de-2": ["Q90"]}
    assert len(problem["candidates"]) == 9
    assert (
        problem["candidates"]["Q90"]
        == "Paris est la capitale de la France. La ville est traversée par la Seine."
    )
    assert _load("mewslix", "test", "de", hub_mirror=MIRROR) == [problem]
    (english,) = _load("mewslix", "test", "en", data_dir=LOCAL, limit=1)
    assert len(english["queries"]) == 1 and len(english["candidates"]) == 9


def _mewslix_dir(tmp_path: Path, test_line: dict) -> Path:
    (tmp_path / "mewslix" / "wikinews_mentions").mkdir(parents=True)
    shutil.copy(LOCAL / "mewslix" / "candidate_set_entities.jsonl", tmp_path / "mewslix")
    lines = (LOCAL / "mewslix" / "wikinews_mentions" / "test-en.jsonl").read_text().splitlines()
    text = "\n".join([lines[0], json.dumps(test_line, ensure_ascii=False)]) + "\n"
    (tmp_path / "mewslix" / "wikinews_mentions" / "test-de.jsonl").write_text(text, encoding="utf-8")
    return tmp_path


def _german_line() -> dict:
    return json.loads((LOCAL / "mewslix" / "wikinews_mentions" / "test-de.jsonl").read_text())


def test_the_releases_mixed_language_file_works_and_xtremes_blanked_test_labels_are_refused(tmp_path):
    line = _german_line()
    (problem,) = _load("mewslix", "test", "de", data_dir=_mewslix_dir(tmp_path / "a", line))
    assert list(problem["queries"]) == ["wn-de-1", "wn-de-2"]  # the English line (line 1) is skipped
    line["mentions"][1]["entity_id"] = ""
    data = _mewslix_dir(tmp_path / "b", line)
    with pytest.raises(
        XstiltsError,
        match=r"test-de\.jsonl:2: field 'mentions\[1\]\.entity_id' is empty: XTREME's download script blanks",
    ):
        _load("mewslix", "test", "de", data_dir=data)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r["context"].pop("sentence_spans"), r"missing field 'context\.sentence_spans'"),
        (
            lambda r: r["mentions"][0]["mention_span"].update(text="Munich"),
            r"field 'mentions\[0\]\.mention_span\.text' 'Munich' is not the context's 'München'",
        ),
        (
            lambda r: r["mentions"][1]["mention_span"].update(end=999),
            r"mention wn-de-2: field 'mentions\[1\]\.mention_span': span \[\d+, 999\) does not fit",
        ),
        (
            lambda r: r["context"].update(text=""),
            r"field 'context\.text' is empty: the released wikinews_mentions_no_text",
        ),
    ],
)
def test_malformed_mewslix_lines_name_file_line_and_field(tmp_path, change, message):
    line = _german_line()
    change(line)
    with pytest.raises(XstiltsError, match=rf"test-de\.jsonl:2: {message}"):
        _load("mewslix", "test", "de", data_dir=_mewslix_dir(tmp_path, line))


def test_a_gold_entity_missing_from_the_candidate_set_is_an_error(tmp_path):
    line = _german_line()
    line["mentions"][0]["entity_id"] = "Q999999"
    with pytest.raises(
        XstiltsError, match=r"task mewslix test de: query 'wn-de-1' has no relevant candidate.*Q999999"
    ):
        _load("mewslix", "test", "de", data_dir=_mewslix_dir(tmp_path, line))


def test_mewslix_offline_without_files_names_the_hub_copy_and_the_original_file():
    start = time.monotonic()
    with pytest.raises(
        XstiltsError,
        match=r"izhx/mewsli-x config de split test .*<data_dir>/mewslix/wikinews_mentions/test-de\.jsonl",
    ):
        _load("mewslix", "test", "de")
    assert time.monotonic() - start < 10
