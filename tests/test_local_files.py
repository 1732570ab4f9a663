"""The original-format readers: records read from the fixture files, and file:line errors for bad input."""

import json
from pathlib import Path

import pytest

from xstilts.errors import XstiltsError
from xstilts.tasks import local_files as lf

NORMANDY = "Normandy is a region in northern France. The Normans gave their name to it in the 10th century."
LOCAL = Path(__file__).parent / "fixtures" / "local"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_records_with_line_numbers():
    records = list(lf.read_records("jsonl", LOCAL / "mnli" / "train.jsonl"))
    assert [n for n, _ in records] == [1, 2, 3, 4]
    assert records[2][1]["gold_label"] == "-"
    assert records[0][1]["pairID"] == "40012e"


def test_jsonl_bad_json_names_file_and_line(tmp_path):
    path = _write(tmp_path / "x.jsonl", '{"a": 1}\n\n{"a": 2,,}\n')
    with pytest.raises(XstiltsError, match=r"x\.jsonl:3: bad JSON"):
        list(lf.read_records("jsonl", path))


def test_jsonl_non_object(tmp_path):
    path = _write(tmp_path / "x.jsonl", "[1, 2]\n")
    with pytest.raises(XstiltsError, match=r"x\.jsonl:1: expected a JSON object, got list"):
        list(lf.read_records("jsonl", path))


def test_headerless_tsv_undoes_csv_quoting():
    records = list(lf.read_records("tsv:sentence1,sentence2,label", LOCAL / "xnli" / "train-en.tsv"))
    assert records[1] == (
        2,
        {
            "sentence1": 'She said "no" and left the room.',
            "sentence2": "She agreed and stayed.",
            "label": "contradiction",
        },
    )
    assert len(records) == 3


def test_tsv_wrong_column_count_hints_at_stripped_test_labels(tmp_path):
    path = _write(tmp_path / "test-de.tsv", "a\tb\t1\nc\td\n")
    with pytest.raises(
        XstiltsError, match=r"test-de\.tsv:2: expected 3 tab-separated columns .* got 2 .*strips"
    ):
        list(lf.read_records("tsv:sentence1,sentence2,label", path))


def test_tsv_header_rows_and_column_errors(tmp_path):
    records = list(lf.read_records("tsv_header", LOCAL / "QQP" / "train.tsv"))
    assert records[0][0] == 2
    assert records[0][1]["is_duplicate"] == "1" and records[0][1]["id"] == "118203"
    path = _write(tmp_path / "dev.tsv", "id\tquestion1\tquestion2\tis_duplicate\n7\tWhy?\t0\n")
    with pytest.raises(XstiltsError, match=r"dev\.tsv:2: expected 4 tab-separated columns"):
        list(lf.read_records("tsv_header", path))


def test_conll_sentences_and_docstart(tmp_path):
    path = _write(tmp_path / "x.tsv", "-DOCSTART-\tO\n\nParis\tB-LOC\nis\tO\n\n\nRome\tB-LOC\n")
    assert list(lf.read_records("conll", path)) == [
        (3, {"tokens": ["Paris", "is"], "tags": ["B-LOC", "O"]}),
        (7, {"tokens": ["Rome"], "tags": ["B-LOC"]}),
    ]


def test_conll_missing_tag(tmp_path):
    path = _write(tmp_path / "test-de.tsv", "Paris\tB-LOC\nist\n")
    with pytest.raises(XstiltsError, match=r"test-de\.tsv:2: missing tag"):
        list(lf.read_records("conll", path))
    path = _write(tmp_path / "bad.tsv", "Paris\tB-LOC\tX\n")
    with pytest.raises(XstiltsError, match=r"bad\.tsv:1: expected 2 tab-separated fields"):
        list(lf.read_records("conll", path))


CONLLU = """# sent_id = 1
# text = Im Haus.
1-2\tIm\t_\t_\t_\t_\t_\t_\t_\t_
1\tIn\tin\tADP\tAPPR\t_\t3\tcase\t_\t_
2\tdem\tder\tDET\tART\t_\t3\tdet\t_\t_
3\tHaus\tHaus\tNOUN\tNN\t_\t0\troot\t_\t_
3.1\tist\tsein\tAUX\t_\t_\t_\t_\t3:cop\t_
4\t.\t.\tPUNCT\t$.\t_\t3\tpunct\t_\t_

# sent_id = 2
1\tJa\tja\tINTJ\tITJ\t_\t0\troot\t_\t_
"""


def test_conllu_skips_comments_ranges_and_empty_nodes(tmp_path):
    path = _write(tmp_path / "de_gsd-ud-test.conllu", CONLLU)
    assert list(lf.read_records("conllu", path)) == [
        (4, {"tokens": ["In", "dem", "Haus", "."], "tags": ["ADP", "DET", "NOUN", "PUNCT"]}),
        (11, {"tokens": ["Ja"], "tags": ["INTJ"]}),
    ]
    bad = _write(tmp_path / "bad.conllu", "1\tJa\tja\tINTJ\n")
    with pytest.raises(XstiltsError, match=r"bad\.conllu:1: expected 10 tab-separated CoNLL-U fields, got 4"):
        list(lf.read_records("conllu", bad))


def test_squad_json_flattens_to_hub_records():
    records = list(lf.read_records("squad_json", LOCAL / "squad" / "train-v2.0.json"))
    assert records == [
        (
            1,
            {
                "id": "56ddde6b9a695914005b962a",
                "title": "Normans",
                "context": NORMANDY,
                "question": "In what country is Normandy located?",
                "answers": {"text": ["France"], "answer_start": [33]},
            },
        ),
        (
            2,
            {
                "id": "5ad39d53604f3c001a3fe8d1",
                "title": "Normans",
                "context": NORMANDY,
                "question": "Who gave their name to France?",
                "answers": {"text": [], "answer_start": []},
            },
        ),
    ]


def test_squad_json_structure_errors(tmp_path):
    path = _write(
        tmp_path / "dev.json",
        '{"data": [{"paragraphs": [{"context": "c", "qas": [{"question": "q", "answers": []}]}]}]}',
    )
    with pytest.raises(
        XstiltsError, match=r"dev\.json: data\[0\]\.paragraphs\[0\]\.qas\[0\]: missing field 'id'"
    ):
        list(lf.read_records("squad_json", path))
    path = _write(tmp_path / "broken.json", '{"data": [\n  {"paragraphs": }\n]}')
    with pytest.raises(XstiltsError, match=r"broken\.json:2: bad JSON"):
        list(lf.read_records("squad_json", path))


def test_squad_json_passes_xquad_r_sentence_breaks_on_and_checks_them(tmp_path):
    records = list(lf.read_records("squad_json", LOCAL / "lareqa" / "xquad-r" / "en.json"))
    assert [r["id"] for _, r in records] == ["5725c0e8ec44d21400f3d6b1", "5725c0e8ec44d21400f3d6b2"]
    context, breaks = records[0][1]["context"], records[0][1]["sentence_breaks"]
    assert [context[s:e] for s, e in breaks] == [
        "The castle was built in 1120 by Duke Henry.",
        "It burned down during the war of 1648.",
        "Today it houses a museum of clocks.",
    ]
    paragraph = {"context": "Short.", "qas": [], "sentence_breaks": [[0, 6], [4, 9]]}
    path = _write(tmp_path / "xx.json", json.dumps({"data": [{"paragraphs": [paragraph]}]}))
    with pytest.raises(
        XstiltsError,
        match=r"xx\.json: data\[0\]\.paragraphs\[0\]\.sentence_breaks\[1\]: expected \[start, end\]",
    ):
        list(lf.read_records("squad_json", path))


def test_bucc_reads_pools_and_gold():
    ((position, record),) = list(lf.read_records("bucc", LOCAL / "bucc2018" / "de-en.sample"))
    assert position == 1
    assert list(record["source"]) == ["de-000001", "de-000002", "de-000003"]
    assert record["target"]["en-000004"] == "The museum is closed on Mondays."
    assert record["gold"] == [["de-000001", "en-000002"], ["de-000003", "en-000001"]]


def test_bucc_errors(tmp_path):
    prefix = tmp_path / "bucc2018" / "fr-en.test"
    _write(prefix.with_name("fr-en.test.fr"), "fr-000001\tBonjour.\n")
    _write(prefix.with_name("fr-en.test.en"), "en-000001\tHello.\n")
    with pytest.raises(
        XstiltsError, match=r"BUCC gold file not found: .*fr-en\.test\.gold .*deletes the test gold"
    ):
        list(lf.read_records("bucc", prefix))
    _write(prefix.with_name("fr-en.test.gold"), "fr-000001\ten-000001\nfr-000009\ten-000001\n")
    with pytest.raises(
        XstiltsError, match=r"fr-en\.test\.gold:2: source id 'fr-000009' is not in fr-en\.test\.fr"
    ):
        list(lf.read_records("bucc", prefix))
    _write(prefix.with_name("fr-en.test.en"), "en-000001 Hello.\n")
    with pytest.raises(XstiltsError, match=r"fr-en\.test\.en:1: expected 'id<TAB>sentence'"):
        list(lf.read_records("bucc", prefix))


def test_tatoeba_parallel_lines(tmp_path):
    records = list(lf.read_records("tatoeba", LOCAL / "tatoeba" / "tatoeba.deu-eng"))
    assert records[1] == (
        2,
        {
            "source_sentence": "Wo ist der Bahnhof?",
            "target_sentence": "Where is the station?",
            "source_lang": "deu",
            "target_lang": "eng",
        },
    )
    prefix = tmp_path / "tatoeba.fra-eng"
    _write(prefix.with_name("tatoeba.fra-eng.fra"), "Bonjour.\nMerci.\n")
    _write(prefix.with_name("tatoeba.fra-eng.eng"), "Hello.\n")
    with pytest.raises(XstiltsError, match=r"has 2 lines but .*tatoeba\.fra-eng\.eng has 1"):
        list(lf.read_records("tatoeba", prefix))


def test_primary_files_and_positions():
    assert lf.primary_file("bucc", Path("d/bucc2018/ru-en.test")) == Path("d/bucc2018/ru-en.test.ru")
    assert lf.primary_file("tatoeba", Path("d/tatoeba.rus-eng")) == Path("d/tatoeba.rus-eng.rus")
    assert lf.describe_position("jsonl", Path("a.jsonl"), 4) == "a.jsonl:4"
    assert lf.describe_position("squad_json", Path("a.json"), 4) == "a.json (record 4)"


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(
        XstiltsError, match=r"unknown local format 'xml'; valid local formats: .*conll.*tsv:<columns>"
    ):
        lf.get_reader("xml")
    with pytest.raises(XstiltsError, match=r"data file not found: .*nothing\.jsonl"):
        list(lf.read_records("jsonl", tmp_path / "nothing.jsonl"))
