"""Runs an experiment config, noting what this process writes, for tests/test_multiprocess.py (which starts
it in two processes with torch.distributed.run).

Usage: python noted_run.py CONFIG NOTES_DIR

Every file this process opens for writing, renames into place, removes or deletes as a tree under the run
directory is noted through Python's audit events (`open`, `os.rename`, which `os.replace` raises too,
`os.remove`, `shutil.rmtree`); after the run, so are the items of a `shared_map` this process computed.
Both go to NOTES_DIR/process-<index>.json.
"""

import json
import os
import sys
from pathlib import Path

from rich.console import Console

from xstilts.config import load_config
from xstilts.distributed import _processes, shared_map
from xstilts.pipeline.runner import Pipeline

WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _writes_under(run_dir: Path, writes: list) -> None:
    inside = str(run_dir.resolve()) + os.sep

    def note(event: str, path) -> None:
        if isinstance(path, str | os.PathLike) and os.path.abspath(path).startswith(inside):
            writes.append([event, os.path.relpath(os.path.abspath(path), run_dir)])

    def audit(event: str, args) -> None:
        if event == "open":
            path, mode, flags = args
            if (mode is None and flags & WRITING) or (isinstance(mode, str) and set(mode) & set("wax+")):
                note(event, path)
        elif event == "os.rename":
            note(event, args[1])
        elif event in ("os.remove", "shutil.rmtree"):
            note(event, args[0])

    sys.addaudithook(audit)


def main() -> None:
    config, notes = Path(sys.argv[1]), Path(sys.argv[2])
    cfg = load_config(config)
    writes: list = []
    _writes_under(cfg.run_dir, writes)
    Pipeline(cfg, Console(width=200)).run()
    index, _ = _processes()
    computed: list[int] = []
    gathered = shared_map(lambda item: computed.append(item) or item * item, list(range(7)))
    record = {"writes": writes, "computed": computed, "gathered": gathered}
    (notes / f"process-{index}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main()
