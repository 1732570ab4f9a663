"""One of several processes committing steps to one results store at once (tests/test_store_writers.py):
waits for GO_FILE so all start together, then commits STEPS steps of its own, each of three rows, and one
step that every writer commits identically; checks `is_done` of each step as it goes.

Usage: python store_writer.py STORE WRITER STEPS GO_FILE
"""

import sys
import time
from pathlib import Path

from xstilts.pipeline.store import ResultRow, ResultsStore

store_path, writer, steps, go = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
while not go.exists():
    time.sleep(0.005)
store = ResultsStore(store_path)


def row(step: int, language: str, target: str) -> ResultRow:
    return ResultRow(
        "run", "h", "m", f"w{writer}", target, "zero-shot", language, "accuracy", step / 10, step
    )


for step in range(steps):
    name = f"writer{writer}/step{step}"
    store.commit_step("h", name, [row(step, lang, "t") for lang in ("de", "fr", "zh")])
    assert store.is_done("h", name), name
shared = [ResultRow("run", "h", "m", "all", "shared", "zero-shot", "en", "accuracy", 0.5, 0)]
store.commit_step("h", "shared-step", shared)
print("done", flush=True)
