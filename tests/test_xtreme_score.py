"""`xstilts score`: a hand-made XTREME submission with every task, scored by hand."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xstilts.cli import app
from xstilts.errors import XstiltsError
from xstilts.evaluate.xtreme import (
    GROUPS,
    read_gold,
    read_predictions,
    score_submission,
    task_metrics,
    write_predictions,
)


def _squad(answers: dict[str, list[str]]) -> str:
    """A SQuAD-format gold file, as XTREME's labels are."""
    qas = [
        {"id": qid, "question": "?", "answers": [{"text": a, "answer_start": 0} for a in texts]}
        for qid, texts in answers.items()
    ]
    return json.dumps(
        {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "c", "qas": qas}]}]}
    )


# task/file -> (gold text, prediction text); per-language scores are worked out beside each entry
FILES = {
    # 3 of 4 right / 2 of 2 right -> task 0.875
    "xnli/test-de.tsv": (
        "entailment\nneutral\ncontradiction\nneutral\n",
        "entailment\nneutral\n" + "neutral\n" * 2,
    ),
    "xnli/test-en.tsv": ("entailment\ncontradiction\n", "entailment\ncontradiction\n"),
    # 3 of 5 -> 0.6
    "pawsx/test-de.tsv": ("0\n1\n1\n0\n1\n", "0\n1\n0\n0\n0\n"),
    # seqeval chunks: gold DET NOUN(2 tokens) VERB | PRON VERB = 5; predicted DET NOUN ADJ VERB | PRON VERB
    # = 6; right 4 -> P 2/3, R 4/5, F1 8/11 (the prediction file ends with a blank line, the gold not)
    "udpos/test-en.tsv": ("DET\nNOUN\nNOUN\nVERB\n\nPRON\nVERB\n", "DET\nNOUN\nADJ\nVERB\n\nPRON\nVERB\n\n"),
    # gold PER LOC | ORG; predicted PER (right) | ORG (wrong span) -> P 1/2, R 1/3, F1 0.4; en 1.0 -> 0.7
    "panx/test-de.tsv": ("B-PER\nI-PER\nO\nB-LOC\n\nO\nB-ORG\nI-ORG\n", "B-PER\nI-PER\nO\nO\n\nO\nB-ORG\nO"),
    "panx/test-en.tsv": ("B-LOC\nO\n", "B-LOC\nO\n"),
    # en: EM 1/3, F1 (1 + 0.8 + 0) / 3 = 0.6; de: 1, 1 -> EM 2/3, F1 0.8 -> task (2/3 + 0.8) / 2 = 11/15
    "xquad/test-en.json": (
        _squad({"q1": ["Eiffel Tower"], "q2": ["Paris", "Paris, France"], "q3": ["red"]}),
        json.dumps({"q1": "the Eiffel Tower", "q2": "in Paris France", "q3": "blue"}),
    ),
    "xquad/test-de.json": (_squad({"d1": ["Berlin"]}), json.dumps({"d1": "Berlin"})),
    # en: unicode punctuation goes -> 1, 1; zh: 北京 vs 北京大学 by character -> EM 0, F1 2/3
    # -> EM 1/2, F1 5/6 -> task 2/3
    "mlqa/test-en.json": (_squad({"m1": ["«Paris»"]}), json.dumps({"m1": "Paris…"})),
    "mlqa/test-zh.json": (_squad({"z1": ["北京大学"]}), json.dumps({"z1": "北京"}, ensure_ascii=False)),
    # t1 exact after dropping "a"; t2 "three dogs" vs "two dogs" F1 1/2 -> EM 1/2, F1 3/4 -> task 5/8
    "tydiqa/test-en.json": (
        _squad({"t1": ["a cat"], "t2": ["two dogs"]}),
        json.dumps({"t1": "cat", "t2": "three dogs"}),
    ),
    # de: 2 right of 3 predicted, 4 gold -> F1 4/7; fr: nothing mined -> 0 -> task 2/7
    "bucc2018/test-de.tsv": (
        "".join(f"de-{i}\ten-{i}\n" for i in range(1, 5)),
        "de-1\ten-1\nde-2\ten-2\nde-3\ten-9",
    ),
    "bucc2018/test-fr.tsv": ("fr-1\ten-5\n", ""),
    # retrieved English indices: 3 of 4 -> 0.75
    "tatoeba/test-de.tsv": ("0\n1\n2\n3\n", "0\n1\n3\n3\n"),
}
TASK_SCORES = {
    "xnli": 0.875,
    "pawsx": 0.6,
    "udpos": 8 / 11,
    "panx": 0.7,
    "xquad": 11 / 15,
    "mlqa": 2 / 3,
    "tydiqa": 5 / 8,
    "bucc2018": 2 / 7,
    "tatoeba": 0.75,
}
XTREME = sum(TASK_SCORES.values()) / 9


def _submission(root: Path, skip: tuple[str, ...] = ()) -> tuple[Path, Path]:
    pred, gold = root / "pred", root / "gold"
    for name, (gold_text, pred_text) in FILES.items():
        (gold / name).parent.mkdir(parents=True, exist_ok=True)
        (gold / name).write_text(gold_text, encoding="utf-8")
        if name not in skip:
            (pred / name).parent.mkdir(parents=True, exist_ok=True)
            (pred / name).write_text(pred_text, encoding="utf-8")
    return pred, gold


def test_every_task_scored_by_hand(tmp_path):
    scores = score_submission(*_submission(tmp_path))
    assert list(scores.tasks) == [
        "xnli",
        "pawsx",
        "udpos",
        "panx",
        "xquad",
        "mlqa",
        "tydiqa",
        "bucc2018",
        "tatoeba",
    ]
    for task, expected in TASK_SCORES.items():
        assert scores.tasks[task].score == pytest.approx(expected), task
    xquad = scores.tasks["xquad"]
    assert xquad.metrics == ("squad_f1", "squad_em")
    assert xquad.languages["en"] == pytest.approx({"squad_f1": 0.6, "squad_em": 1 / 3})
    assert xquad.average == pytest.approx({"squad_f1": 0.8, "squad_em": 2 / 3})
    assert scores.tasks["mlqa"].languages["zh"] == pytest.approx({"mlqa_f1": 2 / 3, "mlqa_em": 0.0})
    assert scores.tasks["panx"].languages["de"] == pytest.approx({"ner_f1": 0.4})
    assert scores.tasks["bucc2018"].languages["de"]["bucc_f1"] == pytest.approx(4 / 7)
    assert scores.tasks["tatoeba"].metrics == ("accuracy",)  # indices compared, not vectors
    # groups average their tasks; the XTREME score averages the nine tasks, not the four groups
    expected_groups = {g: sum(TASK_SCORES[t] for t in tasks) / len(tasks) for g, tasks in GROUPS.items()}
    assert scores.groups == pytest.approx(expected_groups)
    assert scores.overall == pytest.approx(XTREME)
    assert XTREME != pytest.approx(sum(expected_groups.values()) / 4)
    # two languages out of fifteen for XNLI and so on: a score, but not a complete one
    assert not scores.complete
    assert "ar" in scores.tasks["xnli"].missing_languages


def test_cli_prints_tables_and_writes_json(tmp_path):
    pred, gold = _submission(tmp_path)
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(app, ["score", str(pred), str(gold), "--json", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert f"{100 * XTREME:.2f}" in result.output
    assert "XTREME score*" in result.output and "not over every language" in result.output
    assert f"{100 * 8 / 11:.2f}" in result.output  # the udpos average row
    saved = json.loads(out.read_text())
    assert saved["xtreme"] == pytest.approx(XTREME)
    assert saved["tasks"]["mlqa"]["languages"]["en"] == {"mlqa_f1": 1.0, "mlqa_em": 1.0}
    assert saved["tasks"]["tydiqa"]["score"] == pytest.approx(5 / 8)
    assert saved["complete"] is False and saved["partial"] is False


def test_missing_predictions_are_named_unless_partial(tmp_path):
    pred, gold = _submission(tmp_path, skip=("xnli/test-de.tsv", "tatoeba/test-de.tsv"))
    expected = "2 gold files have no prediction file .*: tatoeba/test-de.tsv, xnli/test-de.tsv"
    with pytest.raises(XstiltsError, match=expected):
        score_submission(pred, gold)
    result = CliRunner().invoke(app, ["score", str(pred), str(gold)], terminal_width=200)
    assert result.exit_code == 2 and "xnli/test-de.tsv" in result.output
    scores = score_submission(pred, gold, partial=True)
    assert scores.partial and "tatoeba" not in scores.tasks and scores.overall is None
    assert scores.tasks["xnli"].score == 1.0  # en only
    assert "retrieval" not in scores.groups and scores.groups["classification"] == pytest.approx(
        (1.0 + 0.6) / 2
    )
    result = CliRunner().invoke(app, ["score", str(pred), str(gold), "--partial"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "no XTREME score: tasks without scores: tatoeba" in result.output


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("panx/test-en.tsv", "B-LOC\nB-LOC O\n", r"test-en.tsv:2: expected one tag"),
        ("xnli/test-en.tsv", "entailment\n\ncontradiction\n", r"test-en.tsv:2: expected one label"),
        ("bucc2018/test-fr.tsv", "fr-1\ten-5\nfr-2 en-6\n", r"test-fr.tsv:2: expected '<source id><TAB>"),
        ("xquad/test-de.json", '{"d1":\n "Berlin",\n}', r"test-de.json:3: not valid JSON"),
        ("xquad/test-de.json", '{"d1": ["Berlin"]}', r"test-de.json: the answer to question 'd1' is not a"),
        ("xquad/test-de.json", '{"d2": "Berlin"}', r"test-de.json against .*: 1 questions have no predict"),
        ("pawsx/test-de.tsv", "0\n1\n", r"pawsx/test-de.tsv against .*: 2 predictions for 5 labels"),
        ("udpos/test-en.tsv", "DET\nNOUN\nADJ\nVERB\n\nPRON\n", r"sentence 1 has 1 predicted tags for 2"),
    ],
)
def test_malformed_files_are_named_with_their_line(tmp_path, name, text, message):
    pred, gold = _submission(tmp_path)
    (pred / name).write_text(text, encoding="utf-8")
    with pytest.raises(XstiltsError, match=message):
        score_submission(pred, gold)


def test_not_utf8_is_named_by_line(tmp_path):
    pred, gold = _submission(tmp_path)
    (pred / "xnli/test-en.tsv").write_bytes(b"entailment\ncontra\xffdiction\n")
    with pytest.raises(XstiltsError, match=r"test-en.tsv:2: not UTF-8"):
        score_submission(pred, gold)


def test_write_then_read_every_format(tmp_path):
    # labels: ids go through the spec's labels (XNLI) or are written as numbers (Tatoeba indices)
    path = write_predictions(tmp_path / "xnli", "de", [0, 2, "neutral"])
    assert path == tmp_path / "xnli" / "test-de.tsv"
    assert path.read_text() == "entailment\ncontradiction\nneutral\n"
    assert read_predictions(tmp_path / "xnli", "de") == ["entailment", "contradiction", "neutral"]
    write_predictions(tmp_path / "tatoeba", "de", [3, 0])
    assert read_predictions(tmp_path / "tatoeba", "de") == ["3", "0"]
    # tags: every sentence closed by a blank line, an empty sentence included
    path = write_predictions(tmp_path / "udpos", "en", [["DET", 7], [], ["PRON"]])
    assert path.read_text() == "DET\nNOUN\n\n\nPRON\n\n"
    assert read_predictions(tmp_path / "udpos", "en") == [["DET", "NOUN"], [], ["PRON"]]
    # answers: a JSON object, non-ASCII kept readable
    path = write_predictions(tmp_path / "mlqa", "zh", {"z1": "北京", "z2": ""})
    assert "北京" in path.read_text(encoding="utf-8")
    assert read_predictions(tmp_path / "mlqa", "zh") == {"z1": "北京", "z2": ""}
    # pairs: a set, written sorted
    path = write_predictions(tmp_path / "bucc2018", "de", {("de-2", "en-1"), ("de-1", "en-7")})
    assert path.read_text() == "de-1\ten-7\nde-2\ten-1\n"
    assert read_predictions(tmp_path / "bucc2018", "de") == {("de-1", "en-7"), ("de-2", "en-1")}
    # the task can be named when the folder is not
    write_predictions(tmp_path / "elsewhere", "fr", [1, 0], task="pawsx")
    assert read_predictions(tmp_path / "elsewhere", "fr", task="pawsx") == ["1", "0"]
    for bad in ("two\twords", "two words", ""):
        with pytest.raises(XstiltsError, match="cannot write label"):
            write_predictions(tmp_path / "xnli", "en", [bad])
    with pytest.raises(XstiltsError, match="label id 3 is outside the task's 3 labels"):
        write_predictions(tmp_path / "xnli", "en", [3])
    with pytest.raises(XstiltsError, match="unknown XTREME task folder 'mnli'"):
        write_predictions(tmp_path / "mnli", "en", [0])


def test_gold_readers_and_metric_names(tmp_path):
    (tmp_path / "tydiqa").mkdir()
    (tmp_path / "tydiqa" / "test-en.json").write_text(_squad({"a": ["x", "y"], "b": ["z"]}))
    assert read_gold(tmp_path / "tydiqa", "en") == {"a": ["x", "y"], "b": ["z"]}
    (tmp_path / "tydiqa" / "test-fi.json").write_text(json.dumps({"a": ["x"]}))
    assert read_gold(tmp_path / "tydiqa", "fi") == {"a": ["x"]}
    assert task_metrics("mlqa") == ("mlqa_f1", "mlqa_em")
    assert task_metrics("udpos") == ("pos_f1",)
    assert task_metrics("bucc2018") == ("bucc_f1",)
