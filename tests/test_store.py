"""The results store: real SQLite, atomic steps, resumable."""

import sqlite3

import pytest

from xstilts.pipeline.store import ResultRow, ResultsStore


def row(lang: str, value: float, **kw) -> ResultRow:
    base = dict(
        run_id="r",
        config_hash="h",
        model="m",
        intermediate="none",
        target="t",
        phase="zero-shot",
        language=lang,
        metric="accuracy",
        value=value,
        seed=0,
    )
    return ResultRow(**(base | kw))


def test_commit_step_writes_rows_and_marks_done(tmp_path):
    store = ResultsStore.in_run_dir(tmp_path)
    assert not store.is_done("h", "s1")
    store.commit_step("h", "s1", [row("en", 0.5), row("de", 0.25)])
    assert store.is_done("h", "s1") and not store.is_done("other-hash", "s1")
    rows = store.rows(target="t")
    assert [(r["language"], r["value"]) for r in rows] == [("en", 0.5), ("de", 0.25)]
    assert rows[0]["version"] and rows[0]["time"] > 0
    # reopening the file sees the same rows: it is a real database on disk
    assert len(ResultsStore(tmp_path / "results.sqlite").rows()) == 2


def test_rewriting_a_step_replaces_instead_of_duplicating(tmp_path):
    store = ResultsStore.in_run_dir(tmp_path)
    store.commit_step("h", "s1", [row("en", 0.5)])
    store.commit_step("h", "s1", [row("en", 0.75)])
    assert [r["value"] for r in store.rows()] == [0.75]


def test_a_failing_step_leaves_nothing_behind(tmp_path):
    store = ResultsStore.in_run_dir(tmp_path)

    def rows_then_crash():
        yield row("en", 0.5)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.commit_step("h", "s1", rows_then_crash())
    assert store.rows() == [] and not store.is_done("h", "s1")

    bad = [row("en", 0.5), row("de", None)]  # value is NOT NULL: the second insert fails
    with pytest.raises(sqlite3.IntegrityError):
        store.commit_step("h", "s2", bad)
    assert store.rows() == [] and not store.is_done("h", "s2")
