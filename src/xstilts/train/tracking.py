"""Optional experiment tracking of a training (TensorBoard or MLflow) through accelerate's trackers.

Off by default (`tracking: none`). With `tracking: tensorboard` each training writes TensorBoard event files
under `<run dir>/logs/<run name>` (run name `seed0/intermediate/<task>` or `seed0/target/<intermediate>/
<target>`), so `tensorboard --logdir <run dir>/logs` shows every training of a run side by side. With
`tracking: mlflow` each training is an MLflow run named the same way in the experiment named after the
config; where it goes is MLflow's own setting (`MLFLOW_TRACKING_URI`, else MLflow's default store).

Logged, against the optimizer step: `train/loss` (every step's mean micro-batch loss), `train/learning_rate`
(and `train/head_learning_rate` when the heads have their own rate), `train/examples_per_second` (training
features per second over the steps since the last point, dev evaluation excluded), and at each dev
evaluation `dev/<task>/<metric>` for every metric of every task plus `dev/headline` (what selection uses);
the phase's hyper-parameters go in as the run's configuration (TensorBoard's HPARAMS tab, MLflow params).

The loop never waits for the device for tracking's sake on every step: the step losses stay on the device
and are read together: at every FLUSH_EVERY-th step, at each dev evaluation and at the end.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate.utils import is_mlflow_available, is_tensorboard_available

from xstilts.errors import XstiltsError, unknown_name

TRACKERS = ("none", "tensorboard", "mlflow")
# what each tracker needs installed, as accelerate checks it (tensorboard: torch.utils.tensorboard's writer)
AVAILABLE = {"tensorboard": is_tensorboard_available, "mlflow": is_mlflow_available}
INSTALL = {
    "tensorboard": 'pip install tensorboard (or pip install "xstilts[tracking]")',
    "mlflow": "pip install mlflow",
}
FLUSH_EVERY = 50  # the pending step losses are read (one device sync) at each multiple of this step


def require_tracker(backend: str) -> None:
    """Fail fast, before any training, when `backend` is unknown or its package is not installed."""
    if backend not in TRACKERS:
        raise unknown_name("tracker", backend, TRACKERS)
    if backend != "none" and not AVAILABLE[backend]():
        raise XstiltsError(
            f"tracking: {backend} needs the {backend} package, not installed here: {INSTALL[backend]}"
        )


@dataclass(frozen=True)
class Tracking:
    """Where and under which name one training is tracked."""

    backend: str  # "tensorboard" or "mlflow" ("none": nothing is tracked)
    directory: Path  # TensorBoard writes under directory / run_name (MLflow ignores it)
    run_name: str  # e.g. "seed0/intermediate/mnli"
    experiment: str = "xstilts"  # MLflow's experiment name

    @property
    def logging_dir(self) -> Path:
        """The folder of this training's TensorBoard event files."""
        return Path(self.directory) / self.run_name


def accelerator_kwargs(tracking: Tracking | None) -> dict:
    """What `Accelerator(...)` needs to log with `tracking` ({} when nothing is tracked)."""
    if tracking is None or tracking.backend == "none":
        return {}
    require_tracker(tracking.backend)
    if tracking.backend == "tensorboard":
        return {"log_with": "tensorboard", "project_dir": str(tracking.directory)}
    return {"log_with": tracking.backend}


def _scalar_config(config: dict) -> dict:
    """Hyper-parameters as trackers take them: numbers, strings and booleans (None values left out)."""
    return {key: value for key, value in config.items() if isinstance(value, bool | int | float | str)}


def _learning_rate_names(optimizer, model) -> list[str]:
    """One tag per optimizer group: heads with a rate of their own get `train/head_learning_rate`."""
    heads = {id(p) for p in model.heads.parameters()} if hasattr(model, "heads") else set()

    def is_head(group) -> bool:
        return any(id(p) in heads for p in group["params"])

    def initial(group) -> float:
        return group.get("initial_lr", group["lr"])

    encoder = {initial(group) for group in optimizer.param_groups if not is_head(group)}
    own_rate = [is_head(group) and initial(group) not in encoder for group in optimizer.param_groups]
    return ["train/head_learning_rate" if own else "train/learning_rate" for own in own_rate]


class StepTracker:
    """The loop's view of tracking: `after_step`, `before_evaluation`/`after_evaluation` and `close`.

    Does nothing when `tracking` is None or "none", and on processes other than the main one.
    """

    def __init__(self, accelerator, tracking: Tracking | None, *, optimizer=None, model=None, config=None):
        self.accelerator = accelerator
        self.active = bool(tracking and tracking.backend != "none" and accelerator.is_main_process)
        self.pending: list[tuple[int, torch.Tensor | float, list[float]]] = []
        self.window: tuple[float, int] | None = None  # (time, examples seen) where throughput is counted from
        if not self.active:
            return
        self.rate_names = _learning_rate_names(optimizer, model) if optimizer is not None else []
        config = _scalar_config(config or {})
        if tracking.backend == "tensorboard":
            # TensorBoard's tracker writes to project_dir / run_name
            accelerator.init_trackers(tracking.run_name, config=config)
        else:
            names = {tracking.backend: {"run_name": tracking.run_name}}
            accelerator.init_trackers(tracking.experiment, config=config, init_kwargs=names)

    def after_step(self, step: int, loss: torch.Tensor | float, learning_rates: list[float], seen: int):
        """Record one optimizer step, its loss left on the device; the pending steps are written at each
        multiple of FLUSH_EVERY (where the loop reads its own loss too, when its interval divides it)."""
        if not self.active:
            return
        if self.window is None:  # the first step (set-up, warm-up) stays out of the throughput
            self.window = (time.perf_counter(), seen)
        loss = loss.detach() if isinstance(loss, torch.Tensor) else float(loss)
        self.pending.append((step, loss, [float(rate) for rate in learning_rates]))
        if step % FLUSH_EVERY == 0:
            self.flush(seen)

    def flush(self, seen: int) -> None:
        """Write the pending steps: one read of their losses, then throughput since the window opened."""
        if not self.active or not self.pending:
            return
        on_device = [loss for _, loss, _ in self.pending if isinstance(loss, torch.Tensor)]
        read = iter(torch.stack(on_device).float().tolist() if on_device else [])  # the one device sync
        for step, loss, rates in self.pending:
            values = {"train/loss": next(read) if isinstance(loss, torch.Tensor) else loss}
            for name, rate in zip(self.rate_names, rates, strict=False):
                values.setdefault(name, rate)
            if step == self.pending[-1][0] and self.window is not None:
                opened, seen_then = self.window
                elapsed = time.perf_counter() - opened
                if seen > seen_then and elapsed > 0:
                    values["train/examples_per_second"] = (seen - seen_then) / elapsed
            self.accelerator.log(values, step=step)
        self.pending = []
        self.window = (time.perf_counter(), seen)

    def before_evaluation(self, seen: int) -> None:
        """Write the steps so far, so that their throughput does not count the evaluation."""
        self.flush(seen)

    def after_evaluation(self, step: int, headline: float, scores: dict[str, dict[str, float]], seen: int):
        """Every dev metric of every task and the headline (selection) metric; restarts the throughput."""
        if not self.active:
            return
        values = {"dev/headline": float(headline)}
        for task, metrics in scores.items():
            for metric, value in metrics.items():
                if isinstance(value, numbers.Real) and not isinstance(value, bool):
                    values[f"dev/{task}/{metric}"] = float(value)
        self.accelerator.log(values, step=step)
        self.window = (time.perf_counter(), seen)

    def close(self, seen: int) -> None:
        """Write what is pending and finish every tracker (closes TensorBoard's writer, ends the MLflow run).

        Not `accelerator.end_training()`: that also destroys the process group, which the next training of a
        multi-process pipeline still needs."""
        if not self.active:
            return
        self.flush(seen)
        for tracker in self.accelerator.trackers:
            tracker.finish()
        self.accelerator.trackers = []
        self.active = False
