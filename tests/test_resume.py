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


def _start(checkpoint_dir: Path, result: Path, seconds: float = 0.0) -> subprocess.Popen:
    command = _command(checkpoint_dir, result, seconds)
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _finish(process: subprocess.Popen, result: Path) -> dict:
    _, errors = process.communicate(timeout=300)
    assert process.returncode == 0, errors.decode()[-2000:]
    return json.loads(result.read_text())


def _checkpointed_step(checkpoint_dir: Path) -> int:
    try:
        return json.loads((checkpoint_dir / "training_state.json").read_text())["step"]
    except FileNotFoundError:
        return 0


def _trained_steps(result: Path) -> int:
    """Optimizer steps the run has completed, from the worker's heartbeat file."""
    try:
        return int(result.with_suffix(".heartbeat").read_text() or 0)
    except FileNotFoundError:
        return 0


def _kill_at(process: subprocess.Popen, checkpoint_dir: Path, result: Path, step: int) -> int:
    """SIGKILL the training once it trained `step` steps; returns the checkpointed step."""
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
    """One training is killed twice, at random steps (checkpoints every 3 steps, so a kill between two of
    them redoes the steps after the last), each time started again with the same command; it ends where a
    training never interrupted ends. (Two kills: a resumed run killed again resumes again; a third kill
    added a process start, about 8 s of a suite near its 5-minute limit, and nothing else.)"""
    reference_result = tmp_path / "reference.json"
    reference = _finish(_start(tmp_path / "reference", reference_result), reference_result)
    assert reference["resumed_from"] is None and reference["steps"] == 15
    assert set(reference["draws"]) == {"rivers", "hills"} and reference["history"]
    kill_steps = sorted(random.sample(range(4, 15), 2))
    folder, result = tmp_path / "killed", tmp_path / "killed.json"
    reached = [_kill_at(_start(folder, result, 0.03), folder, result, step) for step in kill_steps]
    again = _finish(_start(folder, result), result)
    starts = result.with_suffix(".starts").read_text().split()
    # each start resumed from the checkpoint the kill before it left (the first started afresh)
    assert starts == ["None", *map(str, reached)], (kill_steps, reached)
    assert reached[0] >= 3 and again["resumed_from"] == reached[-1], (kill_steps, reached)
    assert {key: again[key] for key in reference if key != "resumed_from"} == {
        key: reference[key] for key in reference if key != "resumed_from"
    }, f"kill steps {kill_steps}, checkpoints {reached}"
