"""`xstilts score`: a hand-made XTREME submission with every task, scored by hand.

`FILES` are worked out by hand; `_submission` completes every task's XTREME language list with files
predicted perfectly (`FILLER`, score 1 on every metric), so a task's average over its n languages is
(k * average over its k hand-made languages + (n - k)) / n.
"""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import squad_gold_json
from xstilts.cli import app
from xstilts.errors import XstiltsError
from xstilts.evaluate.xtreme import (
    GROUPS,
    TASK_ORDER,
    read_gold,
    read_predictions,
    score_submission,
    task_metrics,
    write_predictions,
    xtreme_specs,
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
    # seqeval 0.0.12, as XTREME's numbers: CCONJ is not SCONJ -> P 1/2, R 1/2, F1 1/2 (seqeval 1.x: 1.0)
    "udpos/test-de.tsv": ("SCONJ\nNOUN\n", "CCONJ\nNOUN\n"),
    # gold PER LOC | ORG; predicted PER (right) | ORG (wrong span) -> P 1/2, R 1/3, F1 0.4; en 1.0 -> 0.7
    "panx/test-de.tsv": ("B-PER\nI-PER\nO\nB-LOC\n\nO\nB-ORG\nI-ORG\n", "B-PER\nI-PER\nO\nO\n\nO\nB-ORG\nO"),
    "panx/test-en.tsv": ("B-LOC\nO\n", "B-LOC\nO\n"),
    # en: EM 1/3, F1 (1 + 0.8 + 0) / 3 = 0.6; de: 1, 1 -> EM 2/3, F1 0.8 -> task (2/3 + 0.8) / 2 = 11/15
    "xquad/test-en.json": (
        squad_gold_json({"q1": ["Eiffel Tower"], "q2": ["Paris", "Paris, France"], "q3": ["red"]}),
        json.dumps({"q1": "the Eiffel Tower", "q2": "in Paris France", "q3": "blue"}),
    ),
    "xquad/test-de.json": (squad_gold_json({"d1": ["Berlin"]}), json.dumps({"d1": "Berlin"})),
    # en: unicode punctuation goes -> 1, 1; zh: 北京 vs 北京大学 by character -> EM 0, F1 2/3
    # -> EM 1/2, F1 5/6 -> task 2/3
    "mlqa/test-en.json": (squad_gold_json({"m1": ["«Paris»"]}), json.dumps({"m1": "Paris…"})),
    "mlqa/test-zh.json": (
        squad_gold_json({"z1": ["北京大学"]}),
        json.dumps({"z1": "北京"}, ensure_ascii=False),
    ),
    # t1 exact after dropping "a"; t2 "three dogs" vs "two dogs" F1 1/2 -> EM 1/2, F1 3/4 -> task 5/8
    "tydiqa/test-en.json": (
        squad_gold_json({"t1": ["a cat"], "t2": ["two dogs"]}),
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
# each task's score over the languages of FILES only (what --partial gives without the filler)
PARTIAL_SCORES = {
    "xnli": 0.875,
    "pawsx": 0.6,
    "udpos": (8 / 11 + 1 / 2) / 2,
    "panx": 0.7,
    "xquad": 11 / 15,
    "mlqa": 2 / 3,
    "tydiqa": 5 / 8,
    "bucc2018": 2 / 7,
    "tatoeba": 0.75,
}
# (gold, prediction) of one perfectly predicted language of each task
FILLER = {
    "xnli": ("entailment\n", "entailment\n"),
    "pawsx": ("1\n", "1\n"),
    "udpos": ("NOUN\n", "NOUN\n"),
    "panx": ("B-LOC\nO\n", "B-LOC\nO\n"),
    "xquad": (squad_gold_json({"f": ["x"]}), json.dumps({"f": "x"})),
    "mlqa": (squad_gold_json({"f": ["x"]}), json.dumps({"f": "x"})),
    "tydiqa": (squad_gold_json({"f": ["x"]}), json.dumps({"f": "x"})),
    "bucc2018": ("a\tb\n", "a\tb\n"),
    "tatoeba": ("0\n", "0\n"),
}
# the nine XTREME tasks the score covers (the registry also names XTREME-R tasks, e.g. lareqa, mewslix)
LANGUAGES = {task: spec.languages for task, spec in xtreme_specs().items() if task in TASK_ORDER}
HAND_MADE = {task: sum(name.startswith(f"{task}/") for name in FILES) for task in PARTIAL_SCORES}
TASK_SCORES = {
    task: (HAND_MADE[task] * value + len(LANGUAGES[task]) - HAND_MADE[task]) / len(LANGUAGES[task])
    for task, value in PARTIAL_SCORES.items()
}
XTREME = sum(TASK_SCORES.values()) / 9
PARTIAL_XTREME = sum(PARTIAL_SCORES.values()) / 9


def _flat(output: str) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(output.split())


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _submission(
    root: Path, skip: tuple[str, ...] = (), skip_gold: tuple[str, ...] = (), complete: bool = True
) -> tuple[Path, Path]:
    """FILES, and with `complete` every other language of every task's list from FILLER; `skip` leaves
    out prediction files, `skip_gold` gold files (both named `<task>/test-<lang>.<ext>`)."""
    pred, gold = root / "pred", root / "gold"
    files = dict(FILES)
    if complete:
        for task, langs in LANGUAGES.items():
            ext = "json" if task in GROUPS["qa"] else "tsv"
            for lang in langs:
                files.setdefault(f"{task}/test-{lang}.{ext}", FILLER[task])
    for name, (gold_text, pred_text) in files.items():
        if name not in skip_gold:
            _write(gold / name, gold_text)
        if name not in skip:
            _write(pred / name, pred_text)
    return pred, gold


def test_the_language_lists_are_xtremes():
    """XTREME_TASK2LANGS of google-research/xtreme `evaluate.py`, as sets (its order differs in places)."""
    xtreme = {
        "pawsx": "de,en,es,fr,ja,ko,zh",
        "xnli": "ar,bg,de,el,en,es,fr,hi,ru,sw,th,tr,ur,vi,zh",
        "panx": "ar,he,vi,id,jv,ms,tl,eu,ml,ta,te,af,nl,en,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,ko,"
        "th,sw,yo,my,zh,kk,tr,et,fi,hu",
        "udpos": "af,ar,bg,de,el,en,es,et,eu,fa,fi,fr,he,hi,hu,id,it,ja,kk,ko,mr,nl,pt,ru,ta,te,th,tl,tr,ur,"
        "vi,yo,zh",
        "bucc2018": "de,fr,ru,zh",
        "tatoeba": "ar,he,vi,id,jv,tl,eu,ml,ta,te,af,nl,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,ko,th,"
        "sw,zh,kk,tr,et,fi,hu",
        "xquad": "en,es,de,el,ru,tr,ar,vi,th,zh,hi",
        "mlqa": "en,es,de,ar,hi,vi,zh",
        "tydiqa": "en,ar,bn,fi,id,ko,ru,sw,te",
    }
    assert set(LANGUAGES) == set(xtreme)
    for task, langs in xtreme.items():
        assert sorted(LANGUAGES[task]) == sorted(langs.split(",")), task


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
        assert list(scores.tasks[task].languages) == list(LANGUAGES[task]), task  # every listed language
    xquad = scores.tasks["xquad"]
    assert xquad.metrics == ("squad_f1", "squad_em")
    assert xquad.languages["en"] == pytest.approx({"squad_f1": 0.6, "squad_em": 1 / 3})
    assert xquad.average == pytest.approx({"squad_f1": (0.6 + 1 + 9) / 11, "squad_em": (1 / 3 + 1 + 9) / 11})
    assert scores.tasks["mlqa"].languages["zh"] == pytest.approx({"mlqa_f1": 2 / 3, "mlqa_em": 0.0})
    # precision and recall beside F1 for the tagging tasks and BUCC; F1 is the headline (metrics[0])
    udpos, panx, bucc = scores.tasks["udpos"], scores.tasks["panx"], scores.tasks["bucc2018"]
    assert udpos.metrics == ("pos_f1", "pos_precision", "pos_recall")
    assert udpos.languages["en"] == pytest.approx(
        {"pos_f1": 8 / 11, "pos_precision": 2 / 3, "pos_recall": 4 / 5}
    )
    assert udpos.languages["de"] == pytest.approx({"pos_f1": 0.5, "pos_precision": 0.5, "pos_recall": 0.5})
    assert panx.languages["de"] == pytest.approx({"ner_f1": 0.4, "ner_precision": 1 / 2, "ner_recall": 1 / 3})
    assert bucc.languages["de"] == pytest.approx(
        {"bucc_f1": 4 / 7, "bucc_precision": 2 / 3, "bucc_recall": 1 / 2}
    )
    assert bucc.languages["fr"] == {"bucc_f1": 0.0, "bucc_precision": 0.0, "bucc_recall": 0.0}
    assert bucc.average["bucc_precision"] == pytest.approx((2 / 3 + 0 + 2) / 4)
    assert bucc.score == pytest.approx(bucc.average["bucc_f1"]) == pytest.approx((4 / 7 + 2) / 4)
    assert scores.tasks["tatoeba"].metrics == ("accuracy",)  # indices compared, not vectors
    # groups average their tasks; the XTREME score averages the nine tasks, not the four groups
    expected_groups = {g: sum(TASK_SCORES[t] for t in tasks) / len(tasks) for g, tasks in GROUPS.items()}
    assert scores.groups == pytest.approx(expected_groups)
    assert scores.overall == pytest.approx(XTREME)
    assert XTREME != pytest.approx(sum(expected_groups.values()) / 4)
    assert scores.complete and not scores.partial and scores.notes == []


def test_cli_prints_tables_and_writes_json(tmp_path):
    pred, gold = _submission(tmp_path)
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(app, ["score", str(pred), str(gold), "--json", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert f"{100 * XTREME:.2f}" in result.output
    assert "XTREME score " in result.output and "XTREME score*" not in result.output
    assert "not over every language" not in result.output and "partial" not in result.output
    # precision and recall columns beside F1; the udpos average row and the summary use F1
    for column in ("pos_f1", "pos_precision", "pos_recall", "ner_recall", "bucc_precision", "bucc_recall"):
        assert column in result.output, column
    assert f"{100 * TASK_SCORES['udpos']:.2f}" in result.output
    saved = json.loads(out.read_text())
    assert saved["xtreme"] == pytest.approx(XTREME)
    assert saved["tasks"]["mlqa"]["languages"]["en"] == {"mlqa_f1": 1.0, "mlqa_em": 1.0}
    assert saved["tasks"]["tydiqa"]["score"] == pytest.approx(TASK_SCORES["tydiqa"])
    udpos = saved["tasks"]["udpos"]
    assert udpos["metrics"] == ["pos_f1", "pos_precision", "pos_recall"]
    assert udpos["languages"]["en"] == pytest.approx(
        {"pos_f1": 8 / 11, "pos_precision": 2 / 3, "pos_recall": 0.8}
    )
    assert udpos["score"] == pytest.approx(udpos["average"]["pos_f1"])
    assert udpos["average"]["pos_recall"] == pytest.approx((0.8 + 0.5 + 31) / 33)
    assert saved["tasks"]["bucc2018"]["average"]["bucc_recall"] == pytest.approx((0.5 + 0 + 2) / 4)
    assert saved["complete"] is True and saved["partial"] is False and saved["notes"] == []


def test_a_missing_listed_language_is_an_error_naming_it(tmp_path):
    pred, gold = _submission(
        tmp_path, skip=("xnli/test-de.tsv", "tatoeba/test-de.tsv"), skip_gold=("udpos/test-yo.tsv",)
    )
    expected = (
        r"xnli: no prediction file for 1 language \(de\); udpos: no gold file for 1 language \(yo\) of its "
        r"33; tatoeba: no prediction file for 1 language \(de\) \(pass --partial"
    )
    with pytest.raises(XstiltsError, match=expected):
        score_submission(pred, gold)
    result = CliRunner().invoke(app, ["score", str(pred), str(gold)], terminal_width=400)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "Traceback" not in result.output
    assert "xnli: no prediction file for 1 language (de)" in _flat(result.output)
    assert "udpos: no gold file for 1 language (yo) of its 33" in _flat(result.output)
    # a task with gold but no prediction folder at all: every language is named
    pred, gold = _submission(
        tmp_path / "b", skip=tuple(f"pawsx/test-{lang}.tsv" for lang in LANGUAGES["pawsx"])
    )
    with pytest.raises(XstiltsError, match=r"pawsx: no prediction file for 7 languages \(de, en, es, fr, ja"):
        score_submission(pred, gold)


def test_partial_scores_the_listed_languages_that_are_there(tmp_path):
    pred, gold = _submission(tmp_path, complete=False)  # only the hand-made languages of FILES
    with pytest.raises(XstiltsError, match=r"xnli: no gold file for 13 languages \(ar, bg, el, es, fr"):
        score_submission(pred, gold)
    scores = score_submission(pred, gold, partial=True)
    assert scores.partial and not scores.complete
    for task, expected in PARTIAL_SCORES.items():
        assert scores.tasks[task].score == pytest.approx(expected), task
    assert scores.overall == pytest.approx(PARTIAL_XTREME)
    missing = tuple(lang for lang in LANGUAGES["xnli"] if lang not in ("de", "en"))
    assert scores.tasks["xnli"].missing_languages == missing
    assert any(note.startswith("not scored: xnli: no gold file for 13 languages") for note in scores.notes)
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(
        app, ["score", str(pred), str(gold), "--partial", "--json", str(out)], terminal_width=400
    )
    assert result.exit_code == 0, result.output
    assert f"{100 * PARTIAL_XTREME:.2f}" in result.output and "XTREME score*" in result.output
    assert "partial: some listed languages" in _flat(result.output)
    assert "not scored: udpos: no gold file for 31 languages" in _flat(result.output)
    saved = json.loads(out.read_text())
    assert saved["partial"] is True and saved["complete"] is False
    assert saved["tasks"]["xnli"]["missing_languages"][:2] == ["ar", "bg"]
    # a task whose predictions are all missing drops out, and with it the XTREME score
    pred, gold = _submission(tmp_path / "b", skip=("xnli/test-de.tsv", "tatoeba/test-de.tsv"), complete=False)
    scores = score_submission(pred, gold, partial=True)
    assert "tatoeba" not in scores.tasks and scores.overall is None
    assert scores.tasks["xnli"].score == 1.0  # en only
    assert "retrieval" not in scores.groups
    assert scores.groups["classification"] == pytest.approx((1.0 + 0.6) / 2)
    result = CliRunner().invoke(app, ["score", str(pred), str(gold), "--partial"], terminal_width=400)
    assert result.exit_code == 0, result.output
    assert "no XTREME score: tasks without scores: tatoeba" in _flat(result.output)


def test_extra_gold_languages_are_ignored_and_reported(tmp_path):
    pred, gold = _submission(tmp_path)
    # English is no Tatoeba language in XTREME; a wrong prediction for it must not lower the score
    _write(gold / "tatoeba/test-en.tsv", "5\n")
    _write(pred / "tatoeba/test-en.tsv", "0\n")
    _write(gold / "xnli/test-xx.tsv", "neutral\n")  # no prediction, and no error for it
    _write(pred / "pawsx/test-yy.tsv", "1\n")  # a prediction for an unlisted language, no gold
    scores = score_submission(pred, gold)
    assert "en" not in scores.tasks["tatoeba"].languages and "xx" not in scores.tasks["xnli"].languages
    assert scores.tasks["tatoeba"].score == pytest.approx(TASK_SCORES["tatoeba"])
    assert scores.overall == pytest.approx(XTREME) and scores.complete and not scores.partial
    assert scores.notes == [
        "tatoeba: ignored the gold files of 1 language (en): not among the task's 36 XTREME languages",
        "xnli: ignored the gold files of 1 language (xx): not among the task's 15 XTREME languages",
        "ignored pawsx/test-yy.tsv: not among the task's languages",
    ]
    result = CliRunner().invoke(app, ["score", str(pred), str(gold)], terminal_width=400)
    assert result.exit_code == 0, result.output
    assert "note: tatoeba: ignored the gold files of 1 language (en)" in _flat(result.output)
    assert f"{100 * XTREME:.2f}" in result.output


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
        ("udpos/test-en.tsv", "DET\nNOUN\nADJ\nVERB\n\nPRON\n", r"sentence 2 has 1 predicted tags for 2"),
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
    (tmp_path / "tydiqa" / "test-en.json").write_text(squad_gold_json({"a": ["x", "y"], "b": ["z"]}))
    assert read_gold(tmp_path / "tydiqa", "en") == {"a": ["x", "y"], "b": ["z"]}
    (tmp_path / "tydiqa" / "test-fi.json").write_text(json.dumps({"a": ["x"]}))
    assert read_gold(tmp_path / "tydiqa", "fi") == {"a": ["x"]}
    assert task_metrics("mlqa") == ("mlqa_f1", "mlqa_em")
    assert task_metrics("udpos") == ("pos_f1", "pos_precision", "pos_recall")
    assert task_metrics("panx") == ("ner_f1", "ner_precision", "ner_recall")
    assert task_metrics("bucc2018") == ("bucc_f1", "bucc_precision", "bucc_recall")
