"""The results store: one SQLite file per run directory, one row per metric value.

A pipeline step writes all its rows and its completion mark in one transaction, so an interrupted
run leaves either the whole step or nothing, and a resumed run skips exactly the completed steps.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path

from xstilts import __version__
from xstilts.errors import XstiltsError

STORE_FILE = "results.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    model TEXT NOT NULL,
    intermediate TEXT NOT NULL,
    target TEXT NOT NULL,
    phase TEXT NOT NULL,
    language TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    seed INTEGER NOT NULL,
    time REAL NOT NULL,
    version TEXT NOT NULL,
    UNIQUE (config_hash, model, intermediate, target, phase, language, metric, seed)
);
CREATE TABLE IF NOT EXISTS steps (
    config_hash TEXT NOT NULL,
    step TEXT NOT NULL,
    finished REAL NOT NULL,
    PRIMARY KEY (config_hash, step)
);
"""


@dataclass(frozen=True)
class ResultRow:
    run_id: str
    config_hash: str
    model: str
    intermediate: str
    target: str
    phase: str
    language: str
    metric: str
    value: float
    seed: int
    time: float = 0.0
    version: str = __version__


COLUMNS = set(ResultRow.__dataclass_fields__)


def run_row(cfg, config_hash: str, *, value: float, **fields) -> ResultRow:
    """A row of the run `cfg` (its name and model) under `config_hash`; `fields` name the rest."""
    return ResultRow(run_id=cfg.name, config_hash=config_hash, model=cfg.model, value=float(value), **fields)


class StoreDamaged(XstiltsError):
    """The results store is not a readable SQLite database; nothing in it is dropped or rewritten."""


BUSY_TIMEOUT_S = 60.0  # how long one statement waits for another writer (Ray grid steps share a store)
RETRIES = 8  # whole transactions retried after that, with growing pauses


class ResultsStore:
    """Many processes may write one store at once: WAL lets readers go on beside a writer, each
    transaction takes the write lock up front (BEGIN IMMEDIATE) and waits, then retries, while busy."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._check()  # before anything is written to it
        self._write(lambda db: [db.execute(sql) for sql in SCHEMA.split(";") if sql.strip()])

    @classmethod
    def in_run_dir(cls, run_dir: Path) -> ResultsStore:
        return cls(Path(run_dir) / STORE_FILE)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    def _damaged(self, err: Exception) -> StoreDamaged:
        return StoreDamaged(
            f"results store {self.path} is damaged ({err}); nothing was changed in it. To recover its rows: "
            f"copy it aside, then `sqlite3 {self.path} .recover | sqlite3 recovered.sqlite` and move "
            f"recovered.sqlite to {self.path}; or move the file away and rerun (every step is then redone)"
        )

    def _check(self) -> None:
        """A damaged file is named once, when the store is opened, before anything reads or writes it."""
        try:
            with closing(self._connect()) as db:
                found = [row[0] for row in db.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as err:
            if _damage(err):
                raise self._damaged(err) from None
            if _busy(err):
                return  # another process writes it: checked when it is free
            raise
        if found != ["ok"]:
            raise self._damaged("; ".join(found[:3]))

    def _write(self, work) -> None:
        """`work(db)` in one immediate transaction, retried while other writers hold the database."""
        for attempt in range(RETRIES + 1):
            try:
                with closing(self._connect()) as db:
                    if attempt == 0:
                        db.execute("PRAGMA journal_mode=WAL")  # persistent: set once, kept in the file
                    db.execute("BEGIN IMMEDIATE")
                    try:
                        work(db)
                        db.execute("COMMIT")
                    except BaseException:
                        db.execute("ROLLBACK")
                        raise
                return
            except sqlite3.DatabaseError as err:
                if _damage(err):
                    raise self._damaged(err) from None
                if not _busy(err) or attempt == RETRIES:
                    raise
                time.sleep(min(0.05 * 2**attempt, 2.0) * (1 + random.random()))

    def _read(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        try:
            with closing(self._connect()) as db:
                return db.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as err:
            if _damage(err):
                raise self._damaged(err) from None
            raise

    def is_done(self, config_hash: str, step: str) -> bool:
        found = self._read("SELECT 1 FROM steps WHERE config_hash=? AND step=?", (config_hash, step))
        return bool(found)

    def commit_step(self, config_hash: str, step: str, rows: Iterable[ResultRow]) -> None:
        """Write a step's rows and mark it done, atomically."""
        now = time.time()
        records = [asdict(row) | {"time": row.time or now} for row in rows]

        def work(db: sqlite3.Connection) -> None:  # one transaction: all rows and the mark, or nothing
            db.executemany(
                "INSERT OR REPLACE INTO results VALUES (:run_id, :config_hash, :model, :intermediate, "
                ":target, :phase, :language, :metric, :value, :seed, :time, :version)",
                records,
            )
            db.execute("INSERT OR REPLACE INTO steps VALUES (?, ?, ?)", (config_hash, step, now))

        self._write(work)

    def rows(self, **where) -> list[dict]:
        unknown = set(where) - COLUMNS
        if unknown:
            raise ValueError(f"unknown result columns {sorted(unknown)}; valid: {sorted(COLUMNS)}")
        clause = " AND ".join(f"{key}=?" for key in where) or "1=1"
        found = self._read(f"SELECT * FROM results WHERE {clause} ORDER BY rowid", tuple(where.values()))
        return [dict(row) for row in found]


def _busy(err: sqlite3.Error) -> bool:
    """Another connection holds the lock (the busy timeout ran out)."""
    return (getattr(err, "sqlite_errorname", "") or "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def _damage(err: sqlite3.Error) -> bool:
    """The file is not a database, or its pages are malformed: never answered by starting afresh."""
    return (getattr(err, "sqlite_errorname", "") or "").startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
