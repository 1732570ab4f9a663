"""User errors found where data is read (issue 11.4) and a command line that fits a terminal (11.5)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xstilts.cli import app
from xstilts.errors import XstiltsError
from xstilts.tasks import local_files
from xstilts.tasks.registry import TASK_TABLE, get_task
from xstilts.tasks.sources import load_examples

SRC = Path(__file__).parents[1] / "src"


def test_a_reader_names_the_line_that_is_not_utf8(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": "caf\xe9"}\n')
    with pytest.raises(XstiltsError, match=r"train\.jsonl:3: not UTF-8"):
        list(local_files.read_records("jsonl", path))


def test_text_problem_finds_empty_and_undecodable_files(tmp_path):
    (tmp_path / "ok.tsv").write_text("a\tb\n")
    (tmp_path / "blank.tsv").write_text("\n \n")
    (tmp_path / "late.tsv").write_bytes(b"x\n" * 5 + b"\xff\n")
    assert local_files.text_problem(tmp_path / "ok.tsv") is None
    assert "empty data file" in local_files.text_problem(tmp_path / "blank.tsv")
    # small chunks: the line count carries across chunk boundaries
    assert "late.tsv:6: not UTF-8" in local_files.text_problem(tmp_path / "late.tsv", chunk=3)


def test_a_local_file_without_records_is_an_error(tmp_path):
    (tmp_path / "xnli").mkdir()
    (tmp_path / "xnli" / "test-de.tsv").write_text("\n\n")
    with pytest.raises(XstiltsError, match=r"test-de\.tsv: no records"):
        load_examples(get_task("xnli"), "test", "de", data_dir=tmp_path)


def test_a_squad_answer_missing_from_its_context_is_an_error(tmp_path):
    qa = {"id": "q1", "question": "Wo?", "answers": [{"text": "Paris", "answer_start": 0}]}
    data = {"data": [{"title": "t", "paragraphs": [{"context": "In Berlin.", "qas": [qa]}]}]}
    (tmp_path / "xquad").mkdir()
    (tmp_path / "xquad" / "xquad.de.json").write_text(json.dumps(data))
    with pytest.raises(XstiltsError, match=r"xquad\.de\.json \(record 1\): answer 1 'Paris' is not in"):
        load_examples(get_task("xquad"), "test", "de", data_dir=tmp_path)


def test_unknown_predicted_labels_are_counted_in_a_note(tmp_path):
    for root, text in (("gold", "entailment\nneutral\n"), ("pred", "entailment\nentailmnt\n")):
        (tmp_path / root / "xnli").mkdir(parents=True)
        (tmp_path / root / "xnli" / "test-en.tsv").write_text(text)
    result = CliRunner().invoke(
        app, ["score", str(tmp_path / "pred"), str(tmp_path / "gold"), "--partial"], env={"COLUMNS": "500"}
    )
    assert result.exit_code == 0, result.output
    assert "1 prediction(s) with a label the task does not have ('entailmnt')" in result.output
    assert "scored as wrong" in result.output


def test_tasks_fit_an_80_column_terminal():
    """No line wider than 80 columns and no task name split or cut; --wide has the descriptions."""
    result = CliRunner().invoke(app, ["tasks"], env={"COLUMNS": "80"})
    lines = result.output.splitlines()
    assert result.exit_code == 0 and max(len(line) for line in lines) <= 80
    words = set(result.output.split())
    assert all(spec.name in words and spec.kind in words for spec in TASK_TABLE)
    assert len(lines) < 40
    wide = CliRunner().invoke(app, ["tasks", "--wide"], env={"COLUMNS": "80"})
    assert all(spec.description in wide.output for spec in TASK_TABLE)


def test_loading_a_model_prints_no_transformers_progress_bar(capfd):
    from xstilts.models.loading import load_encoder

    load_encoder("tiny-random-xlmr")
    captured = capfd.readouterr()
    assert "Loading weights" not in captured.err + captured.out


def test_ctrl_c_says_how_to_resume(tmp_path):
    """A real run interrupted in training: the resume hint, exit 130, and no traceback."""
    config = tmp_path / "exp.yaml"
    config.write_text(
        f"name: ctrlc\nmodel: tiny-random-xlmr\noutput_dir: {tmp_path}\ntargets: [bible-genre]\n"
        "languages: [en]\ntarget_training: {max_steps: 100000, batch_size: 2, checkpoint_every: 100000}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "xstilts", "run", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        # a shell's background job ignores SIGINT, and a child inherits that: let Ctrl-C reach it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    output = ""
    deadline = time.monotonic() + 240
    while "phase 3" not in output and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output += line
    assert "phase 3" in output, output
    time.sleep(1.0)  # inside the training loop
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=120)
    output += rest
    assert process.returncode == 130, (process.returncode, output)
    assert "rerun the same command to resume" in output and "Traceback" not in output, output
