"""Runs an experiment config, noting what this process writes, for tests/test_multiprocess.py (which starts
it in two processes with torch.distributed.run).

Usage: python noted_run.py CONFIG NOTES_DIR

Every file this process opens for writing, renames into place, removes or deletes as a tree under the run
directory is noted through Python's audit events (`open`, `os.rename`, which `os.replace` raises too,
`os.remove`, `shutil.rmtree`). After the run, `inference()` notes how many rows this process put through
the model when the processes share out an evaluation, and what every process got back, and `one_writer()`
what a write on the main process returns to each. All go to NOTES_DIR/process-<index>.json.
"""

import json
import os
import sys
from pathlib import Path

from rich.console import Console

from xstilts.config import load_config
from xstilts.distributed import _processes, main_process_writes
from xstilts.evaluate.inference import embed, predict_logits
from xstilts.models.checkpoint import build_model
from xstilts.pipeline.runner import Pipeline
from xstilts.tasks.kinds import get_kind

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


def inference() -> dict:
    """Logits and sentence vectors of 11 texts in batches of 3 (the last one partial), with the rows this
    process computed of each (counted by forward hooks); tests/test_multiprocess.py runs it alone too."""
    model, tokenizer, _ = build_model("tiny-random-xlmr", {"genre": 3}, seed=0)
    kind = get_kind("classification")
    texts = [" ".join(["word"] * (1 + i % 5)) + f" number {i}" for i in range(11)]
    features = kind.encode([{"text": text, "label": 0} for text in texts], tokenizer, 32)
    rows = {"logits": 0, "vectors": 0}

    def count(what: str):
        def hook(module, args, kwargs):
            rows[what] += len(args[0] if args else kwargs["input_ids"])

        return hook

    handle = model.register_forward_pre_hook(count("logits"), with_kwargs=True)
    logits = predict_logits(model, kind, tokenizer, features, "genre", 3)
    handle.remove()
    model.encoder.register_forward_pre_hook(count("vectors"), with_kwargs=True)
    vectors = embed(model.encoder, kind, tokenizer, features, 2, "mean", 3)
    return {"rows": rows, "logits": logits.tolist(), "vectors": vectors.tolist()}


def one_writer() -> dict:
    """What every process gets back from a write on the main process: its value, then its error."""

    @main_process_writes
    def index() -> int:
        return _processes()[0]

    @main_process_writes
    def disk_full() -> None:
        raise OSError("disk full")

    try:
        disk_full()
    except Exception as error:  # noqa: BLE001 (the test reads which error each process got)
        failure = f"{type(error).__name__}: {error}"
    return {"returned": index(), "failure": failure}


def main() -> None:
    config, notes = Path(sys.argv[1]), Path(sys.argv[2])
    cfg = load_config(config)
    writes: list = []
    _writes_under(cfg.run_dir, writes)
    Pipeline(cfg, Console(width=200)).run()
    index, _ = _processes()
    record = {"writes": writes} | inference() | one_writer()
    (notes / f"process-{index}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main()
