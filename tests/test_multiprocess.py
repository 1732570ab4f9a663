"""Many processes, one writer: a run in two processes (torch.distributed on the CPU, gloo) stores the rows a
one-process run stores, each written once, by the main process alone.

The processes start as `accelerate launch --multi_gpu` starts them on GPUs (torch.distributed.run), with the
flag `--cpu` sets (ACCELERATE_USE_CPU). `accelerate launch --cpu --num_processes 2` itself would start one
process: without an MPI host file its CPU launch is single-process.

What "the same rows" means: the same keys, and the same values. The processes of a launched run draw the
same training batches from the same seed (DDP averages equal gradients), and evaluation shares out whole
batches of the one-process run's composition, so the two-process model and its scores are those of one
process, up to the order of floating-point sums.
"""

import importlib.util
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from safetensors.torch import load_file

from xstilts.config import load_config
from xstilts.evaluate import xtreme
from xstilts.models.checkpoint import WEIGHTS_FILE, is_complete
from xstilts.pipeline.layout import RunLayout
from xstilts.pipeline.runner import Pipeline
from xstilts.pipeline.store import SCHEMA, STORE_FILE

WORKER = Path(__file__).parent / "workers" / "noted_run.py"
_spec = importlib.util.spec_from_file_location("noted_run", WORKER)
noted_run = importlib.util.module_from_spec(_spec)  # the worker's `inference`, run here in one process
_spec.loader.exec_module(noted_run)
PANX = Path(__file__).parent / "fixtures" / "local" / "panx"

# uneven shares everywhere: 11 test examples, 7 dev examples and 13 verses in batches of 3 or 4
CONFIG = """\
name: writers
model: tiny-random-xlmr
output_dir: {out}
data_dir: {data}
intermediate: [bible-next]
targets: [panx, bible-retrieval]
languages: [de]
test_examples: 11
write_predictions: true
retrieval: {{layer: 2, examples: 13, batch_size: 4}}
intermediate_training: {{max_steps: 2, batch_size: 4, train_examples: 12, dev_examples: 7, eval_batch_size: 3,
  eval_every: 1, checkpoint_every: 1}}
target_training: {{max_steps: 2, batch_size: 4, train_examples: 12, dev_examples: 7, eval_batch_size: 3,
  checkpoint_every: 1}}
"""

KEY = ("intermediate", "target", "phase", "language", "metric", "seed")


def _config(root: Path, data: Path) -> Path:
    root.mkdir()
    path = root / "writers.yaml"
    path.write_text(CONFIG.format(out=root, data=data))
    return path


def _counted_store(run_dir: Path) -> None:
    """The run's results store, created beforehand with a trigger that counts every row written."""
    run_dir.mkdir(parents=True)
    with sqlite3.connect(run_dir / STORE_FILE) as db:
        db.executescript(SCHEMA)
        db.executescript(
            "CREATE TABLE inserts (n INTEGER); "
            "CREATE TRIGGER counted AFTER INSERT ON results BEGIN INSERT INTO inserts VALUES (1); END;"
        )


def _rows(run_dir: Path) -> tuple[dict, int]:
    """({row key: value}, rows written) of a run's store."""
    with sqlite3.connect(run_dir / STORE_FILE) as db:
        db.row_factory = sqlite3.Row
        rows = [dict(row) for row in db.execute("SELECT * FROM results")]
        written = db.execute("SELECT COUNT(*) FROM inserts").fetchone()[0]
    values = {tuple(row[key] for key in KEY): row["value"] for row in rows}
    assert len(values) == len(rows)
    return values, written


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _launch(config: Path, notes: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["--master_port", str(_free_port()), str(WORKER), str(config), str(notes)]
    environment = os.environ | {"ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_two_processes_store_the_rows_of_one_each_written_once(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(PANX, data / "panx")
    shutil.copy(data / "panx" / "train-en.tsv", data / "panx" / "dev-en.tsv")
    one, two = _config(tmp_path / "one", data), _config(tmp_path / "two", data)
    notes = tmp_path / "notes"
    notes.mkdir()
    one_cfg, two_cfg = load_config(one), load_config(two)
    for cfg in (one_cfg, two_cfg):
        _counted_store(cfg.run_dir)

    launched = _launch(two, notes)  # the two processes run while this one runs the config alone
    Pipeline(one_cfg, Console(quiet=True)).run()
    log = launched.communicate(timeout=300)[0].decode(errors="replace")
    assert launched.returncode == 0, log[-4000:]

    alone, written_alone = _rows(one_cfg.run_dir)
    shared, written_shared = _rows(two_cfg.run_dir)
    assert written_alone == len(alone) and written_shared == len(shared)  # each row written once
    assert sorted(shared) == sorted(alone)
    assert {key[:3] for key in alone} >= {
        ("bible-next", "bible-next", "intermediate-dev"),
        ("bible-next", "panx", "zero-shot"),
        ("bible-next", "bible-retrieval", "zero-shot"),
    }
    assert shared == pytest.approx(alone, abs=1e-6)

    # the main process wrote config, checkpoints, training checkpoints and predictions; the other nothing
    main, other = (json.loads((notes / f"process-{i}.json").read_text()) for i in (0, 1))
    assert other["writes"] == []
    written = {path.split(os.sep)[0] for _, path in main["writes"]}
    assert {"config.json", "checkpoints", "training", "predictions"} <= written
    # every process returns what the main process's write returned, or raises when it failed
    assert main["returned"] == other["returned"] == 0
    assert main["failure"] == "OSError: disk full"
    failed_in = "RuntimeError: the main process failed in one_writer.<locals>.disk_full: OSError('disk full')"
    assert other["failure"] == failed_in
    # a shared evaluation: each of 11 rows through the model once, all outputs (a single process's) for both
    alone_outputs = noted_run.inference()
    for outputs in ("logits", "vectors"):
        assert main["rows"][outputs] + other["rows"][outputs] == alone_outputs["rows"][outputs] == 11
        assert main["rows"][outputs] and other["rows"][outputs]
        assert main[outputs] == other[outputs]
        assert np.allclose(main[outputs], alone_outputs[outputs], atol=1e-6)

    for cfg in (one_cfg, two_cfg):
        assert is_complete(RunLayout(cfg).checkpoint_of(0, "bible-next"))
        assert not (cfg.run_dir / "training" / "seed0").exists() or not any(
            (cfg.run_dir / "training" / "seed0").iterdir()
        )
    weights_alone, weights_shared = (
        load_file(RunLayout(cfg).checkpoint_of(0, "bible-next") / WEIGHTS_FILE) for cfg in (one_cfg, two_cfg)
    )
    assert weights_shared.keys() == weights_alone.keys()
    for name, tensor in weights_alone.items():
        assert weights_shared[name].allclose(tensor, atol=1e-6), name

    folders = [cfg.run_dir / "predictions" / "seed0" / "bible-next" / "panx" for cfg in (one_cfg, two_cfg)]
    predictions = [xtreme.prediction_path(folder, "de", "panx").read_text() for folder in folders]
    assert predictions[0] == predictions[1] and predictions[0].strip()
