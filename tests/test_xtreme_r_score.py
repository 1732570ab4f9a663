"""`xstilts score --suite xtreme-r`: a hand-made XTREME-R submission with all ten tasks, scored by hand.

Two languages per task (scored with `partial`, the rest of each list left out); every file is worked out
by hand beside its entry in `FILES`, the task scores in `TASK_SCORES`, the groups and the overall score
below them.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import squad_gold_json
from xstilts.cli import app
from xstilts.errors import XstiltsError
from xstilts.evaluate.suites import SUITES, XTREME, XTREME_R, get_suite
from xstilts.evaluate.xtreme import (
    FILE_METRICS,
    TaskScores,
    _registry_spec,
    file_format,
    read_gold,
    read_predictions,
    score_submission,
    task_metrics,
    write_predictions,
    xtreme_specs,
)
from xstilts.tasks.kinds import get_kind


def _jsonl(labels: list[int], extra: bool = False) -> str:
    """XCOPA lines: gold files are XCOPA's own (more fields), predictions {"label": i} only."""
    fields = {"premise": "p", "choice1": "a", "choice2": "b", "question": "cause"} if extra else {}
    return "".join(json.dumps({**fields, "label": label}) + "\n" for label in labels)


# task/file -> (gold text, prediction text)
FILES = {
    # accuracy 3/4 and 1/2 -> 5/8
    "xnli/test-de.tsv": (
        "entailment\nneutral\ncontradiction\nneutral\n",
        "entailment\nneutral\nneutral\nneutral\n",
    ),
    "xnli/test-en.tsv": ("entailment\ncontradiction\n", "entailment\nneutral\n"),
    # accuracy 3/4 and 2/2 -> 7/8
    "xcopa/test-et.jsonl": (_jsonl([0, 1, 1, 0], extra=True), _jsonl([0, 1, 0, 0])),
    "xcopa/test-qu.jsonl": (_jsonl([1, 0], extra=True), _jsonl([1, 0])),
    # lt: every chunk right, F1 1; pl: DET right, NOUN predicted VERB -> P 1/2, R 1/2, F1 1/2 -> 3/4
    "udpos/test-lt.tsv": ("NOUN\nVERB\n\nPRON\n", "NOUN\nVERB\n\nPRON\n"),
    "udpos/test-pl.tsv": ("DET\nNOUN\n", "DET\nVERB\n"),
    # en: gold PER, LOC; predicted PER only -> P 1, R 1/2, F1 2/3; qu: 1 -> 5/6
    "panx/test-en.tsv": ("B-PER\nI-PER\nO\nB-LOC\n", "B-PER\nI-PER\nO\nO\n"),
    "panx/test-qu.tsv": ("B-LOC\n", "B-LOC\n"),
    # ro: EM 1, F1 1; en: "sky" for "blue sky" -> EM 0, F1 2/3 -> avg F1 5/6, EM 1/2 -> (5/6 + 1/2)/2 = 2/3
    "xquad/test-ro.json": (squad_gold_json({"r1": ["Bucharest"]}), json.dumps({"r1": "Bucharest"})),
    "xquad/test-en.json": (squad_gold_json({"e1": ["blue sky"]}), json.dumps({"e1": "sky"})),
    # de: 1, 1; en: "three dogs" for "four dogs" -> EM 0, F1 1/2 -> avg F1 3/4, EM 1/2 -> 5/8
    "mlqa/test-de.json": (squad_gold_json({"d1": ["Berlin"]}), json.dumps({"d1": "Berlin"})),
    "mlqa/test-en.json": (squad_gold_json({"e1": ["four dogs"]}), json.dumps({"e1": "three dogs"})),
    # en: "cat" for "a cat" (articles dropped) -> 1, 1; sw: wrong -> 0, 0 -> avg F1 1/2, EM 1/2 -> 1/2
    "tydiqa/test-en.json": (squad_gold_json({"t1": ["a cat"]}), json.dumps({"t1": "cat"})),
    "tydiqa/test-sw.json": (squad_gold_json({"s1": ["simba"]}), json.dumps({"s1": "tembo"})),
    # accuracy 3/4 and 0 -> 3/8
    "tatoeba/test-az.tsv": ("0\n1\n2\n3\n", "0\n1\n2\n0\n"),
    "tatoeba/test-uk.tsv": ("0\n1\n", "1\n0\n"),
    # one relevant entity each, so mAP@20 is MRR@20: en (1/2 + 1)/2 = 3/4; de 1/4 -> 1/2
    "mewslix/test-en.json": (
        json.dumps({"q1": ["Q1"], "q2": ["Q2"]}),
        json.dumps({"q1": ["Q9", "Q1", "Q3"], "q2": ["Q2", "Q9"]}),
    ),
    "mewslix/test-de.json": (json.dumps({"q3": ["Q3"]}), json.dumps({"q3": ["Q5", "Q6", "Q7", "Q3"]})),
    # en: relevant {a1, a2} at ranks 1, 3 -> AP (1/1 + 2/3)/2 = 5/6; ar: rank 3, 1/3 -> (5/6 + 1/3)/2 = 7/12
    "lareqa/test-en.json": (json.dumps({"q1": ["a2", "a1"]}), json.dumps({"q1": ["a1", "x", "a2"]})),
    "lareqa/test-ar.json": (json.dumps({"q1": ["b1"]}), json.dumps({"q1": ["x", "y", "b1"]})),
}
TASK_SCORES = {
    "xnli": 5 / 8,
    "xcopa": 7 / 8,
    "udpos": 3 / 4,
    "panx": 5 / 6,
    "xquad": 2 / 3,
    "mlqa": 5 / 8,
    "tydiqa": 1 / 2,
    "tatoeba": 3 / 8,
    "mewslix": 1 / 2,
    "lareqa": 7 / 12,
}
# evaluate.py's XTREME_R_GROUP2TASK; xcopa counts in classification and in multi_choice
GROUPS = {
    "classification": (5 / 8 + 7 / 8) / 2,  # 3/4
    "tagging": (3 / 4 + 5 / 6) / 2,  # 19/24
    "qa": (2 / 3 + 5 / 8 + 1 / 2) / 3,  # 43/72
    "retrieval": (3 / 8 + 1 / 2) / 2,  # 7/16 (lareqa is in no group)
    "multi_choice": 7 / 8,
}
# in 24ths: 15 + 21 + 18 + 20 + 16 + 15 + 12 + 9 + 12 + 14 = 152 -> 152 / 24 / 10 = 19/30 = 0.6333...
XTREME_R_SCORE = 19 / 30


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _submission(root: Path, files: dict[str, tuple[str, str]] = FILES) -> tuple[Path, Path]:
    pred, gold = root / "pred", root / "gold"
    for name, (gold_text, pred_text) in files.items():
        _write(gold / name, gold_text)
        _write(pred / name, pred_text)
    return pred, gold


def _flat(output: str) -> str:
    return " ".join(output.split())


def test_the_suite_tables_are_evaluate_py_s():
    """XTREME_R_TASK2LANGS and XTREME_R_GROUP2TASK of google-research/xtreme `evaluate.py`, as sets; its
    lareqa list is empty (scored by another script), ours is XQuAD-R's 11 languages (see suites.py)."""
    task2langs = {
        "xnli": "ar,bg,de,el,en,es,fr,hi,ru,sw,th,tr,ur,vi,zh",
        "panx": "ar,he,vi,id,jv,ms,tl,eu,ml,ta,te,af,nl,en,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,ko,"
        "th,sw,yo,my,zh,kk,tr,et,fi,hu,qu,pl,uk,az,lt,pa,gu,ro",
        "udpos": "af,ar,bg,de,el,en,es,et,eu,fa,fi,fr,he,hi,hu,id,it,ja,kk,ko,mr,nl,pt,ru,ta,te,th,tl,tr,ur,"
        "vi,yo,zh,lt,pl,uk,wo,ro",
        "tatoeba": "ar,he,vi,id,jv,tl,eu,ml,ta,te,af,nl,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,ko,th,"
        "sw,zh,kk,tr,et,fi,hu,az,lt,pl,uk,ro",
        "xcopa": "et,ht,id,it,qu,sw,ta,th,tr,vi,zh",
        "mewslix": "ar,de,en,es,fa,ja,pl,ro,ta,tr,uk",
        "xquad": "en,es,de,el,ru,tr,ar,vi,th,zh,hi,ro",
        "mlqa": "en,es,de,ar,hi,vi,zh",
        "tydiqa": "en,ar,bn,fi,id,ko,ru,sw,te",
    }
    assert set(XTREME_R.task_names) == {*task2langs, "lareqa"}
    for task, langs in task2langs.items():
        assert sorted(XTREME_R.languages(task)) == sorted(langs.split(",")), task
    assert XTREME_R.languages("lareqa") == XTREME.languages("xquad")  # XQuAD-R: XQuAD's 11
    assert XTREME_R.groups == {
        "classification": ("xnli", "xcopa"),
        "tagging": ("udpos", "panx"),
        "qa": ("xquad", "mlqa", "tydiqa"),
        "retrieval": ("tatoeba", "mewslix"),
        "multi_choice": ("xcopa",),
    }
    # XTREME keeps its own lists although the registry now lists the union for these four tasks
    for task in ("udpos", "panx", "tatoeba", "xquad"):
        assert len(XTREME.languages(task)) < len(_registry_spec(task).languages), task
    assert {task: len(spec.languages) for task, spec in xtreme_specs().items()}["udpos"] == 33


def test_suite_rows_agree_with_the_registry():
    """A suite sets a task's format and metrics only where the registry has no row for it (mewslix and
    lareqa until their rows are merged); where both exist they must agree."""
    for suite in SUITES.values():
        for row in suite.tasks:
            spec = _registry_spec(row.name)
            if spec is None:
                assert row.file_format and row.metrics, (suite.name, row.name)
                continue
            if row.file_format is not None:
                assert get_kind(spec.kind).prediction_format == row.file_format, row.name
            if row.metrics:
                names = (spec.metric, *spec.extra_metrics)
                assert tuple(FILE_METRICS.get(n, n) for n in names) == row.metrics, row.name
    assert file_format("xcopa") == "choices" and task_metrics("xcopa") == ("accuracy",)
    assert file_format("mewslix") == file_format("lareqa") == "rankings"
    assert task_metrics("lareqa") == ("map_at_20",)


def test_every_xtreme_r_task_scored_by_hand(tmp_path):
    pred, gold = _submission(tmp_path)
    with pytest.raises(XstiltsError, match=r"every language XTREME-R lists .* xnli: no gold file for 13"):
        score_submission(pred, gold, suite="xtreme-r")
    scores = score_submission(pred, gold, partial=True, suite="xtreme-r")
    assert list(scores.tasks) == list(XTREME_R.task_names)  # all ten, in the suite's order
    for task, expected in TASK_SCORES.items():
        assert scores.tasks[task].score == pytest.approx(expected), task
    assert scores.tasks["xquad"].average == pytest.approx({"squad_f1": 5 / 6, "squad_em": 1 / 2})
    assert scores.tasks["mewslix"].languages == {"de": {"map_at_20": 0.25}, "en": {"map_at_20": 0.75}}
    assert scores.tasks["xcopa"].languages == {"et": {"accuracy": 0.75}, "qu": {"accuracy": 1.0}}
    assert scores.groups == pytest.approx(GROUPS)
    assert scores.overall == pytest.approx(XTREME_R_SCORE)
    assert XTREME_R_SCORE != pytest.approx(sum(GROUPS.values()) / len(GROUPS))  # tasks, not groups
    assert scores.partial and not scores.complete
    assert scores.tasks["udpos"].missing_languages[:3] == ("af", "ar", "bg")
    saved = scores.to_json()
    assert saved["suite"] == "xtreme-r" and saved["xtreme-r"] == pytest.approx(XTREME_R_SCORE)
    # nine of the ten: no overall score, the groups that are whole still are
    del_lareqa = {name: files for name, files in FILES.items() if not name.startswith("lareqa/")}
    scores = score_submission(*_submission(tmp_path / "b", del_lareqa), partial=True, suite="xtreme-r")
    assert scores.overall is None and scores.groups == pytest.approx(GROUPS)


def test_avg_metric_precedence_is_evaluate_py_s():
    """QA: (avg F1 + avg EM)/2; else avg F1, then avg accuracy, then avg map@20, whatever comes first."""

    def scored(metrics: dict[str, float], qa: bool = False) -> TaskScores:
        return TaskScores("t", tuple(metrics), ("xx",), {"xx": metrics}, qa=qa)

    assert scored({"accuracy": 0.2, "map_at_20": 0.9}).score == 0.2
    assert scored({"map_at_20": 0.9, "accuracy": 0.2}).score == 0.2
    assert scored({"pos_precision": 0.1, "pos_f1": 0.3, "accuracy": 0.9}).score == 0.3
    assert scored({"map_at_20": 0.4}).scored_by == ("map_at_20",)
    assert scored({"mlqa_em": 0.5, "mlqa_f1": 0.7}, qa=True).score == pytest.approx(0.6)
    with pytest.raises(XstiltsError, match="no metric to score it by"):
        _ = scored({"accuracy_tokens": 0.5}).score


def test_cli_scores_xtreme_r_with_its_groups(tmp_path):
    pred, gold = _submission(tmp_path)
    out = tmp_path / "scores.json"
    args = ["score", str(pred), str(gold), "--suite", "xtreme-r", "--partial", "--json", str(out)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = _flat(result.output)
    assert "XTREME-R (percent)" in text and "XTREME-R score*" in text and "mean of 10 tasks" in text
    assert f"{100 * XTREME_R_SCORE:.2f}" in text  # 63.33
    assert "multi_choice" in text and f"{100 * GROUPS['qa']:.2f}" in text  # 59.72
    rows = text.replace("│", " ").split()  # the summary's cells, word by word
    for row in (
        "xcopa classification, multi_choice 2/11 accuracy 87.50",
        "lareqa - 2/11 map_at_20 58.33",  # in no group, as in evaluate.py
        "mewslix retrieval 2/11 map_at_20 50.00",
        "xquad qa 2/12 (F1+EM)/2 66.67",
        "multi_choice mean of tasks 87.50",
        "XTREME-R score* mean of 10 tasks 63.33",
    ):
        assert row in " ".join(rows), row
    assert json.loads(out.read_text())["xtreme-r"] == pytest.approx(XTREME_R_SCORE)


def test_cli_unknown_suite_lists_the_valid_ones(tmp_path):
    pred, gold = _submission(tmp_path)
    result = CliRunner().invoke(app, ["score", str(pred), str(gold), "--suite", "xtreme-s"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "unknown suite 'xtreme-s'; valid suites: xtreme, xtreme-r" in _flat(result.output)
    with pytest.raises(XstiltsError, match="valid suites: xtreme, xtreme-r"):
        get_suite("XTREME-R")


def test_a_task_of_the_other_suite_names_the_suite_to_pass(tmp_path):
    pred, gold = _submission(tmp_path)  # an XTREME-R submission scored with the default, XTREME
    result = CliRunner().invoke(app, ["score", str(pred), str(gold), "--partial"], terminal_width=400)
    assert result.exit_code == 2 and "Traceback" not in result.output
    text = _flat(result.output)
    assert "error: scoring XTREME (--suite xtreme), but" in text
    assert "hold tasks of another suite: lareqa, mewslix, xcopa of XTREME-R (--suite xtreme-r)." in text
    assert "Pass that --suite, or move those task folders out of the prediction folder" in text
    # an XTREME task under XTREME-R: pawsx was dropped from it
    _write(gold / "pawsx/test-de.tsv", "0\n")
    _write(pred / "pawsx/test-de.tsv", "0\n")
    with pytest.raises(XstiltsError, match=r"another suite: pawsx of XTREME \(--suite xtreme\)\."):
        score_submission(pred, gold, partial=True, suite="xtreme-r")
    # with gold files only (a gold folder for both suites) it is a note, and the rest is scored
    (pred / "pawsx/test-de.tsv").unlink()
    scores = score_submission(pred, gold, partial=True, suite="xtreme-r")
    assert "ignored gold folder 'pawsx': a task of XTREME (--suite xtreme), not of XTREME-R" in scores.notes
    assert scores.overall == pytest.approx(XTREME_R_SCORE)
    # XTREME's scorer ignores the languages only XTREME-R lists, with a note
    xtreme_files = {name: files for name, files in FILES.items() if name.startswith(("udpos/", "xnli/"))}
    scores = score_submission(*_submission(tmp_path / "b", xtreme_files), partial=True)
    assert "udpos" not in scores.tasks  # lt and pl are XTREME-R's only
    assert (
        "udpos: ignored the gold files of 2 languages (lt, pl): not among the task's 33 XTREME languages"
        in (scores.notes)
    )


def test_xcopa_and_rankings_files_round_trip(tmp_path):
    # choices: indices (numpy ones too) or the task's label names, one {"label": i} line each
    path = write_predictions(tmp_path / "xcopa", "et", [0, np.int64(1), "1"])
    assert path == tmp_path / "xcopa" / "test-et.jsonl"
    assert path.read_text() == '{"label": 0}\n{"label": 1}\n{"label": 1}\n'
    assert read_predictions(tmp_path / "xcopa", "et") == [0, 1, 1]
    # XCOPA's own test files are gold files as they are
    _write(tmp_path / "gold" / "xcopa" / "test-qu.jsonl", _jsonl([1, 0], extra=True) + "\n")
    assert read_gold(tmp_path / "gold" / "xcopa", "qu") == [1, 0]
    with pytest.raises(XstiltsError, match="choice 2 is outside the task's 2 answers"):
        write_predictions(tmp_path / "xcopa", "et", [2])
    with pytest.raises(XstiltsError, match="a choice must be an answer index, got 'choice2'"):
        write_predictions(tmp_path / "xcopa", "et", ["choice2"])
    # rankings: ids as strings, best first, keys sorted; non-ASCII kept readable
    path = write_predictions(tmp_path / "mewslix", "uk", {"q2": ["Q7", 5], "q1": ("Q1",), "й": []})
    assert path.name == "test-uk.json"
    assert path.read_text(encoding="utf-8") == '{"q1": ["Q1"], "q2": ["Q7", "5"], "й": []}\n'
    assert read_predictions(tmp_path / "mewslix", "uk") == {"q1": ["Q1"], "q2": ["Q7", "5"], "й": []}
    write_predictions(tmp_path / "elsewhere", "ar", {"q": ["a", "b"]}, task="lareqa")
    assert read_gold(tmp_path / "elsewhere", "ar", task="lareqa") == {"q": ["a", "b"]}
    for bad, message in (
        (["Q1"], "rankings must map query id -> candidate ids"),
        ({"q": "Q1"}, "query 'q': the candidates must be a list of ids"),
        ({"q": ["Q1", None]}, "query 'q': a candidate id must be a non-empty string, got None"),
        ({"q": [""]}, "a candidate id must be a non-empty string"),
    ):
        with pytest.raises(XstiltsError, match=message):
            write_predictions(tmp_path / "mewslix", "uk", bad)
    assert read_predictions(tmp_path / "mewslix", "uk") == {
        "q1": ["Q1"],
        "q2": ["Q7", "5"],
        "й": [],
    }  # intact


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("xcopa/test-et.jsonl", '{"label": 0}\n{"label": 1\n', r"xcopa/test-et\.jsonl:2: not valid JSON"),
        ("xcopa/test-et.jsonl", '{"label": 0}\n\n{"label": 1}\n', r"test-et\.jsonl:2: not valid JSON"),
        (
            "xcopa/test-et.jsonl",
            '{"label": 0}\n{"choice": 1}\n',
            r"test-et\.jsonl:2: expected a JSON object wi",
        ),
        (
            "xcopa/test-et.jsonl",
            '{"label": true}\n',
            r"test-et\.jsonl:1: expected a JSON object with an integer",
        ),
        (
            "xcopa/test-et.jsonl",
            "[0]\n",
            r"test-et\.jsonl:1: expected a JSON object with an integer \"label\"",
        ),
        (
            "xcopa/test-et.jsonl",
            '{"label": 0}\n',
            r"xcopa/test-et\.jsonl against .*: 1 predictions for 4 labels",
        ),
        ("mewslix/test-en.json", '["Q1"]', r"mewslix/test-en\.json: expected a JSON object \{query id"),
        (
            "mewslix/test-en.json",
            '{"q1": "Q1", "q2": []}',
            r"test-en\.json: query 'q1': expected a list of cand",
        ),
        ("mewslix/test-en.json", '{"q1": ["Q1"]}', r"test-en\.json against .*: 1 queries have no prediction"),
        ("mewslix/test-en.json", '{"q1": ["Q1"],\n "q2": }', r"mewslix/test-en\.json:2: not valid JSON"),
    ],
)
def test_malformed_xcopa_and_rankings_files_are_named(tmp_path, name, text, message):
    pred, gold = _submission(tmp_path)
    (pred / name).write_text(text, encoding="utf-8")
    with pytest.raises(XstiltsError, match=message):
        score_submission(pred, gold, partial=True, suite="xtreme-r")


def test_a_gold_ranking_needs_a_relevant_candidate(tmp_path):
    pred, gold = _submission(tmp_path)
    (gold / "lareqa/test-ar.json").write_text('{"q1": []}', encoding="utf-8")
    with pytest.raises(XstiltsError, match=r"lareqa/test-ar\.json: query 'q1' has no relevant candidate"):
        score_submission(pred, gold, partial=True, suite="xtreme-r")
