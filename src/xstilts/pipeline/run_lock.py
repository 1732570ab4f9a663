"""One writer per run directory: `xstilts run`, `grid` and `align` hold a lock while they write to it.

The exclusion is an OS file lock (`filelock`), which the kernel drops when its process dies, so a killed
run never blocks the next one. Beside it, `run.lock.json` says who holds the lock (pid, host, since): a
second command reads it to say whom it is waiting for, and a run that finds one left by a dead process
says that it takes the lock over. While the lock is held nothing else writes to the directory, so
temporary files left by a kill during a write (`.NAME.*.tmp`) can be removed safely.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from rich.console import Console

from xstilts.errors import XstiltsError
from xstilts.io import atomic_file, restore_set_aside

LOCK_FILE = "run.lock"
HOLDER_FILE = "run.lock.json"
# what a run directory holds before any step is stored: a failed first run removes these and the folder
BOOKKEEPING = {LOCK_FILE, HOLDER_FILE, "results.sqlite", "results.sqlite-wal", "results.sqlite-shm"}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _since(holder: dict) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))


def read_holder(run_dir: Path) -> dict | None:
    """The holder record of `run_dir`'s lock (pid, host, since, command), or None if there is none."""
    try:
        holder = json.loads((Path(run_dir) / HOLDER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _describe(holder: dict | None) -> str:
    if holder is None:
        return "another process (it has not yet written who it is)"
    command, pid, host = holder.get("command", "xstilts"), holder.get("pid"), holder.get("host")
    return f"{command} (pid {pid} on host {host}, since {_since(holder)})"


@contextmanager
def run_lock(run_dir: Path, command: str = "xstilts", console: Console | None = None) -> Iterator[Path]:
    """Hold `run_dir`'s lock for the body; a live holder -> XstiltsError naming it (pid, host, since).

    On entry, temporary files of interrupted writes are removed. If the body fails on a run directory this
    call created and no step was stored in it, the directory is removed again: a failed first run (a
    typo'd model name, a missing data file) leaves nothing behind."""
    run_dir = Path(run_dir)
    console = console or Console()
    fresh = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run_dir / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise XstiltsError(
            f"run directory {run_dir} is in use by {_describe(read_holder(run_dir))}; wait for it to finish "
            "(or stop it), then run this command again"
        ) from None
    try:
        _take_over(run_dir, read_holder(run_dir), console)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "command": command}
        with atomic_file(run_dir / HOLDER_FILE) as handle:
            json.dump(me, handle)
        remove_leftovers(run_dir, console)
        try:
            yield run_dir
        except BaseException:
            if fresh and _nothing_stored(run_dir):
                shutil.rmtree(run_dir, ignore_errors=True)
                fresh = None  # removed: nothing to release a holder record in
            raise
    finally:
        if fresh is not None:
            (run_dir / HOLDER_FILE).unlink(missing_ok=True)
        lock.release()


def _take_over(run_dir: Path, holder: dict | None, console: Console) -> None:
    """A holder record while we hold the OS lock was left by a process that died without releasing it."""
    if holder is None:
        return
    here = socket.gethostname()
    pid = holder.get("pid")
    if holder.get("host") == here and isinstance(pid, int) and _pid_alive(pid) and pid != os.getpid():
        # the OS lock is free, yet the pid lives: a recycled pid, or a lock file on a filesystem
        # without working locks; either way the record cannot be trusted to mean "busy"
        console.print(
            f"[yellow]note: {run_dir / HOLDER_FILE} names live pid {pid}, which does not hold "
            "the lock (a reused pid); taking the lock[/yellow]"
        )
        return
    if holder.get("host") != here:
        raise XstiltsError(
            f"run directory {run_dir} was locked by {_describe(holder)}, another host, whose process this "
            f"host cannot check; if it is no longer running, delete {run_dir / HOLDER_FILE} and run again"
        )
    console.print(
        f"[yellow]taking over the stale lock of {run_dir}: {_describe(holder)} is no longer running[/yellow]",
        highlight=False,
    )


def remove_leftovers(run_dir: Path, console: Console | None = None) -> list[Path]:
    """Remove `.NAME.*.tmp` files and folders that a kill during an atomic write left in `run_dir` (and
    restore a checkpoint set aside by a replacement that was cut short); returns what was removed.
    Only safe under the run lock: then no write is under way."""
    removed = restore_set_aside(run_dir)
    for tmp in sorted(Path(run_dir).rglob(".*.tmp")):
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        removed.append(tmp)
    if removed and console is not None:
        names = ", ".join(str(path.relative_to(run_dir)) for path in removed)
        console.print(f"[dim]removed {len(removed)} temporary file(s) of an interrupted write: {names}[/dim]")
    return removed


def _nothing_stored(run_dir: Path) -> bool:
    """True when `run_dir` holds only a config and bookkeeping, and its store (if any) marks no step."""
    extra = {path.name for path in run_dir.iterdir()} - BOOKKEEPING - {"config.json"}
    if extra:
        return False
    store = run_dir / "results.sqlite"
    if not store.exists():
        return True
    import sqlite3

    try:
        with closing(sqlite3.connect(store)) as db:
            return db.execute("SELECT COUNT(*) FROM steps").fetchone()[0] == 0
    except sqlite3.DatabaseError:
        return False
