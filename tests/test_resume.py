"""Exact resume after kill -9, mid-phase: a real process is killed with SIGKILL at random optimizer steps,
the same command is run again, and it finishes with the weights and metrics of a run never interrupted."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

WORKER = Path(__file__).parent / "workers" / "resumable_training.py"


def _command(checkpoint_dir: Path, result: Path, seconds: float) -> list[str]:
    return [sys.executable, str(WORKER), str(checkpoint_dir), str(result), str(seconds)]


def _run(checkpoint_dir: Path, result: Path, seconds: float = 0.0) -> dict:
    subprocess.run(_command(checkpoint_dir, result, seconds), check=True, capture_output=True, timeout=300)
    return json.loads(result.read_text())


def _checkpointed_step(checkpoint_dir: Path) -> int:
    try:
        return json.loads((checkpoint_dir / "training_state.json").read_text())["step"]
    except FileNotFoundError:
        return 0


def _trained_steps(result: Path) -> int:
    """Optimizer steps the worker has trained (2 micro-batches each), from its heartbeat file."""
    try:
        return int(result.with_suffix(".heartbeat").read_text() or 0) // 2
    except FileNotFoundError:
        return 0


def _kill_at(checkpoint_dir: Path, result: Path, step: int) -> int:
    """Start the training and SIGKILL it once it trained `step` steps; returns the checkpointed step."""
    process = subprocess.Popen(
        _command(checkpoint_dir, result, 0.05), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 240
    while _trained_steps(result) < step:
        assert process.poll() is None, "the training ended before it could be killed"
        assert time.monotonic() < deadline, "no training progress"
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not result.exists()  # it really died before finishing
    return _checkpointed_step(checkpoint_dir)


def test_killed_training_resumes_to_the_uninterrupted_result(tmp_path):
    reference = _run(tmp_path / "reference", tmp_path / "reference.json")
    assert reference["resumed_from"] is None and reference["steps"] == 24
    assert set(reference["draws"]) == {"rivers", "hills"} and reference["history"]
    # checkpoints every 3 steps: a kill between two of them redoes the steps after the last one
    kill_steps = sorted(random.sample(range(4, 23), 3))
    for step in kill_steps:
        folder, result = tmp_path / f"killed-at-{step}", tmp_path / f"killed-at-{step}.json"
        reached = _kill_at(folder, result, step)
        assert reached >= 3, (kill_steps, step)
        resumed = _run(folder, result)
        assert resumed["resumed_from"] == reached, (kill_steps, step)
        assert {key: resumed[key] for key in reference if key != "resumed_from"} == {
            key: reference[key] for key in reference if key != "resumed_from"
        }, f"killed at {step} (checkpoint {reached}); kill steps {kill_steps}"
