"""The results store: one SQLite file per run directory, one row per metric value.

A pipeline step writes all its rows and its completion mark in one transaction, so an interrupted
run leaves either the whole step or nothing, and a resumed run skips exactly the completed steps.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from xstilts import __version__

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


class ResultsStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(SCHEMA)

    @classmethod
    def in_run_dir(cls, run_dir: Path) -> ResultsStore:
        return cls(Path(run_dir) / STORE_FILE)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def is_done(self, config_hash: str, step: str) -> bool:
        with self._connect() as db:
            row = db.execute(
                "SELECT 1 FROM steps WHERE config_hash=? AND step=?", (config_hash, step)
            ).fetchone()
        return row is not None

    def commit_step(self, config_hash: str, step: str, rows: Iterable[ResultRow]) -> None:
        """Write a step's rows and mark it done, atomically."""
        now = time.time()
        records = [asdict(row) | {"time": row.time or now} for row in rows]
        db = self._connect()
        try:
            with db:  # one transaction: all rows and the mark, or nothing
                db.executemany(
                    "INSERT OR REPLACE INTO results VALUES (:run_id, :config_hash, :model, :intermediate, "
                    ":target, :phase, :language, :metric, :value, :seed, :time, :version)",
                    records,
                )
                db.execute("INSERT OR REPLACE INTO steps VALUES (?, ?, ?)", (config_hash, step, now))
        finally:
            db.close()

    def rows(self, **where) -> list[dict]:
        unknown = set(where) - COLUMNS
        if unknown:
            raise ValueError(f"unknown result columns {sorted(unknown)}; valid: {sorted(COLUMNS)}")
        clause = " AND ".join(f"{key}=?" for key in where) or "1=1"
        with self._connect() as db:
            cursor = db.execute(f"SELECT * FROM results WHERE {clause} ORDER BY rowid", tuple(where.values()))
            return [dict(row) for row in cursor]
