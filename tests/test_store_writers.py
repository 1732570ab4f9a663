"""Many writers of one results store (Ray grid steps): 8 real processes commit at once, no row is lost
and none is duplicated."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import xstilts

WORKER = Path(__file__).parent / "workers" / "store_writer.py"
SRC = str(Path(xstilts.__file__).resolve().parents[1])
WRITERS, STEPS = 8, 30


def test_eight_processes_committing_at_once_lose_and_duplicate_no_row(tmp_path):
    store, go = tmp_path / "results.sqlite", tmp_path / "go"
    env = os.environ | {"PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    writers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(store), str(n), str(STEPS), str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(WRITERS)
    ]
    go.touch()  # every writer starts now: schema, WAL switch and commits all race
    outcomes = [writer.communicate(timeout=300) for writer in writers]
    failed = [err for writer, (_, err) in zip(writers, outcomes, strict=True) if writer.returncode != 0]
    assert not failed, failed[0]

    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = db.execute("SELECT intermediate, seed, language FROM results WHERE target='t'").fetchall()
        steps = [name for (name,) in db.execute("SELECT step FROM steps")]
        shared = db.execute("SELECT COUNT(*) FROM results WHERE target='shared'").fetchone()[0]
    expected = {
        (f"w{n}", step, lang) for n in range(WRITERS) for step in range(STEPS) for lang in ("de", "fr", "zh")
    }
    assert len(rows) == len(expected) and set(rows) == expected  # every row, once
    assert sorted(steps) == sorted(
        [f"writer{n}/step{s}" for n in range(WRITERS) for s in range(STEPS)] + ["shared-step"]
    )
    assert shared == 1  # the step all eight committed is there once
