"""Several processes (`accelerate launch`), one writer; evaluation shared among the processes.

Under `accelerate launch` every process runs the whole pipeline in step. Checkpoints, results rows and
prediction files are written by the main process alone while the others wait for its outcome: a broadcast
rather than a bare barrier, so that an error in the writer stops every process instead of leaving the
others waiting. Evaluation hands each process every n-th batch and gathers the outputs by batch index, so
each example is computed exactly once and every process ends with all outputs in order: there is no padded
last batch to drop or duplicate, as there is with a sharded data loader and `gather_for_metrics`.

Without a launcher (a plain `xstilts run`, a Ray worker, the tests) there is one process and all of this
is a no-op. Several processes must share one file system (one machine, or a shared run directory).
"""

from __future__ import annotations

import atexit
import functools
from collections.abc import Callable, Sequence

from accelerate import PartialState
from accelerate.utils import broadcast_object_list, gather_object, parse_flag_from_env


def _processes() -> tuple[int, int]:
    """(this process's index, number of processes); (0, 1) without a launcher.

    The first call may set up accelerate's process state, so it reads the launcher's CPU flag as
    `Accelerator` would: without it, processes on a machine without GPUs would each run alone."""
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
    if state.num_processes > 1:
        _destroy_at_exit()
    return state.process_index, state.num_processes


@functools.cache
def _destroy_at_exit() -> None:
    """No training ends with `end_training()` (see tracking.py), and a gloo group still alive when the
    interpreter exits can abort the process ("terminate called without an active exception")."""
    atexit.register(PartialState().destroy_process_group)


def is_main_process() -> bool:
    return _processes()[0] == 0


def main_process_writes(write: Callable) -> Callable:
    """`write` runs on the main process only; every process waits for it and returns what it returned
    (which must pickle), or raises if it failed."""

    @functools.wraps(write)
    def one_writer(*args, **kwargs):
        index, processes = _processes()
        if processes == 1:
            return write(*args, **kwargs)
        outcome = [None]
        if index == 0:
            try:
                outcome[0] = (True, write(*args, **kwargs))
            except BaseException as error:
                broadcast_object_list([(False, repr(error))], from_process=0)
                raise
        broadcast_object_list(outcome, from_process=0)
        written, value = outcome[0]
        if not written:
            raise RuntimeError(f"the main process failed in {write.__qualname__}: {value}")
        return value

    return one_writer


def shared_map(compute: Callable, items: Sequence) -> list:
    """`[compute(item) for item in items]` with the items dealt round-robin among the processes (each
    computed by exactly one), gathered so that every process gets the whole list in order."""
    index, processes = _processes()
    if processes == 1:
        return [compute(item) for item in items]
    mine = [(i, compute(items[i])) for i in range(index, len(items), processes)]
    results = dict(gather_object(mine))
    if sorted(results) != list(range(len(items))):
        raise RuntimeError(f"gathered {sorted(results)} of {len(items)} items: the processes disagree")
    return [results[i] for i in range(len(items))]
