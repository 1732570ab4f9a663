"""The training loop as a recipe, top to bottom: one or several tasks, English dev selection, exact resume.

Shaped like torchtune's `recipes/full_finetune_single_device.py`: `TrainingRecipe.setup` builds the
optimizer, schedule and batches; each optimizer step `train_step` draws one task and runs its
`grad_accumulation` micro-batches through the training `strategy` (what turns a batch into a loss and
gradients: plain training by default, adversarial training plugs in here); `maybe_evaluate` scores English
dev and keeps the best weights on the CPU; `save`/`load` write and read an exact training checkpoint;
`finish` reloads the best weights and returns the result.

The loop knows nothing of task kinds: the kind batches features and computes the loss, and dev steps are
scored by `evaluate_task`, the same function that scores zero-shot languages. Several tasks train together
jiant-style: each optimizer step draws one task from a seeded sampler (uniform, proportional or
temperature) and takes its next batches; tasks naming the same head share it. The accumulation window is
the recipe's own (one draw = one optimizer step), never the data loader's: accelerate's `accumulate()` ends
a window whenever a loader runs out, which mixes tasks and shortens steps when several loaders interleave.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, set_seed
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from transformers import get_linear_schedule_with_warmup

from xstilts.config import PhaseConfig
from xstilts.data.loaders import ResumableBatches
from xstilts.data.samplers import MultiTaskBatches, make_sampler
from xstilts.distributed import main_process_writes
from xstilts.errors import XstiltsError
from xstilts.evaluate.task_eval import evaluate_task
from xstilts.io import atomic_file
from xstilts.models.heads import MultiHeadModel
from xstilts.tasks.kinds import get_kind, sequence_lengths
from xstilts.tasks.spec import TaskSpec
from xstilts.train.adversarial import build_strategy
from xstilts.train.tracking import StepTracker, Tracking, accelerator_kwargs

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


@dataclass
class TaskStream:
    """One task of a (multi-task) training: its training features and how to batch and score them.

    `spec.head_name` is the head it trains (set `TaskSpec.head` to share one). Dev examples and their
    evaluation features are optional (MLM has none). `collate` defaults to the kind's.
    """

    spec: TaskSpec
    features: list[dict]
    batch_size: int
    dev_examples: list[dict] | None = None
    dev_features: list[dict] | None = None
    kind: object = None  # default: the spec's kind
    collate: Callable | None = None

    def __post_init__(self):
        self.kind = self.kind or get_kind(self.spec.kind)
        missing = [k for k in self.kind.training_keys if self.features and k not in self.features[0]]
        if missing:
            raise ValueError(f"training features lack {missing}: encode them with for_training=True")
        if bool(self.dev_examples) != bool(self.dev_features):
            raise ValueError("dev_examples and dev_features come together")
        if not self.features:
            raise ValueError(f"task {self.spec.name} has no training features")


@dataclass
class TrainResult:
    best_dev: float  # the headline dev metric (mean over tasks) at the selected step (-1.0 without dev)
    best_step: int
    steps: int
    seconds: float
    examples_per_second: float  # features (windows, for span QA) per second
    dev_history: list[tuple[int, float]]  # (step, headline metric)
    best_scores: dict[str, float] = field(default_factory=dict)  # every metric at the selected step
    task_draws: dict[str, int] = field(default_factory=dict)  # optimizer steps spent on each task
    task_scores: dict[str, dict[str, float]] = field(default_factory=dict)  # task -> metric -> best step
    resumed_from: int | None = None  # the step a training checkpoint put the run at, if any
    examples_seen: int = 0  # training features consumed, repeats counted (matched budgets report it)
    tokens: int = 0  # non-padding tokens of those features


def mixed_precision_mode(requested: str) -> str:
    """'auto' means bf16 on a GPU that supports it, fp16 on other GPUs, full precision on CPU."""
    if requested != "auto":
        return requested
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def freeze_word_embeddings(model: MultiHeadModel) -> int:
    """Freeze the (large, multilingual) word-embedding matrix; returns how many parameters were frozen."""
    weight = model.encoder.get_input_embeddings().weight
    weight.requires_grad_(False)
    return weight.numel()


def optimizer_groups(
    model: torch.nn.Module, weight_decay: float, learning_rate: float, head_learning_rate: float | None = None
) -> list[dict]:
    """AdamW groups: no weight decay on biases and normalisation weights (the BERT convention).

    Task heads may get their own learning rate: Adam moves a weight by about one learning rate per step, so
    a freshly initialised head needs more than a short run at an encoder-sized rate to reach useful logits.
    """
    groups: dict[tuple[bool, bool], list] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            key = (name.startswith("heads."), not name.endswith(NO_DECAY))
            groups.setdefault(key, []).append(param)
    return [
        {
            "params": params,
            "weight_decay": weight_decay if decays else 0.0,
            "lr": (head_learning_rate or learning_rate) if is_head else learning_rate,
        }
        for (is_head, decays), params in sorted(groups.items())
    ]


def train_task(
    model: MultiHeadModel,
    tokenizer,
    spec: TaskSpec,
    train_features: list[dict],
    phase: PhaseConfig,
    *,
    dev_examples: list[dict] | None = None,
    dev_features: list[dict] | None = None,
    **options,
) -> TrainResult:
    """Fine-tune head `spec.head_name` of `model` on one task (see `train_tasks` for `options`)."""
    stream = TaskStream(spec, train_features, phase.batch_size, dev_examples, dev_features)
    return train_tasks(model, tokenizer, [stream], phase, **options)


CHECKPOINT_FILE = "training_state.pt"
PROGRESS_FILE = "training_state.json"  # {"step", "fingerprint"}: written after the checkpoint


class NonFiniteLoss(Exception):
    """An adversarial training step whose loss is NaN or infinite (its update was not applied)."""

    def __init__(self, step: int, strategy: str, value: float):
        super().__init__(f"step {step}: loss {value} under {strategy}")
        self.step, self.strategy, self.value = step, strategy, value


@dataclass
class TrainProgress:
    """What a training checkpoint holds besides the weights and optimizer: counts and the best so far."""

    step: int = 0
    seen: int = 0  # training features (windows, for span QA) consumed
    tokens: int = 0  # non-padding tokens of the training batches consumed (every choice, every window)
    seconds: float = 0.0  # training time before this process (resumed runs add theirs)
    best_dev: float = -1.0
    best_step: int = 0
    best_scores: dict = field(default_factory=dict)  # task -> metric -> value at the best step
    history: list = field(default_factory=list)  # (step, headline dev metric)
    evals_without_improvement: int = 0


def _rng_states() -> dict:
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _collator_generator(collate):
    """The torch generator a seeded collator masks with (transformers' MLM collator), created if need be."""
    target = getattr(collate, "func", collate)  # a functools.partial of a kind's collate has none
    if getattr(target, "seed", None) is None or not hasattr(target, "create_rng"):
        return None
    if not isinstance(getattr(target, "generator", None), torch.Generator):
        target.create_rng("pt")
    return target.generator


class TrainingRecipe:
    """One training phase over `streams` (see the module docstring); `run()` does it all."""

    def __init__(
        self,
        model: MultiHeadModel,
        tokenizer,
        streams: list[TaskStream],
        phase: PhaseConfig,
        *,
        sampler: str = "proportional",
        temperature: float | None = None,
        seed: int,
        mixed_precision: str = "auto",
        description: str = "train",
        checkpoint_dir: Path | None = None,
        strategy=None,
        tracking: Tracking | None = None,
    ):
        names = [stream.spec.name for stream in streams]
        if len(set(names)) != len(names):
            raise ValueError(f"a task appears twice among the streams: {names}")
        self.model, self.tokenizer, self.phase, self.seed = model, tokenizer, phase, seed
        self.streams = dict(zip(names, streams, strict=True))
        self.sampler_name, self.temperature = sampler, temperature
        self.mixed_precision, self.description = mixed_precision, description
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        # the phase's strategy (plain by default); an explicit `strategy` replaces it (tests, benchmarks)
        special_ids = tokenizer.all_special_ids if tokenizer is not None else ()
        self.strategy = strategy or build_strategy(phase.adversarial, special_ids, seed)
        self.tracking = tracking  # TensorBoard / MLflow logging (see tracking.py); None: off
        self.progress = TrainProgress()
        self.best_weights: dict[str, torch.Tensor] | None = None  # on the CPU
        self.resumed_from: int | None = None  # the step a checkpoint put the run at

    # ------------------------------------------------------------------------------------------ setup
    def setup(self) -> None:
        phase, streams = self.phase, self.streams
        deterministic = not torch.cuda.is_available()
        set_seed(self.seed, deterministic=deterministic)
        if deterministic:  # same kernels; but no NaN fill of every new tensor (a pass over memory: 3-10%)
            torch.utils.deterministic.fill_uninitialized_memory = False
        # no accumulation in accelerate: the window is ours (one draw), so its gradient state never syncs
        self.accelerator = Accelerator(
            mixed_precision=mixed_precision_mode(self.mixed_precision), **accelerator_kwargs(self.tracking)
        )
        pin = self.accelerator.device.type == "cuda"
        loaders = {
            name: ResumableBatches(
                stream.features,
                stream.batch_size,
                sequence_lengths(stream.features),
                seed=self.seed + i,
                collate=stream.collate or partial(stream.kind.collate, tokenizer=self.tokenizer),
                pin_memory=pin,
            )
            for i, (name, stream) in enumerate(streams.items())
        }
        updates_per_epoch = math.ceil(
            sum(len(loader) for loader in loaders.values()) / phase.grad_accumulation
        )
        self.total_steps = phase.max_steps or max(1, math.ceil(updates_per_epoch * phase.epochs))
        self.eval_every = phase.eval_every or updates_per_epoch
        several = len(streams) > 1
        # every process draws the same task sequence: the sampler is seeded by the run's seed alone
        task_sampler = make_sampler(
            self.sampler_name if several else "uniform",
            {name: len(stream.features) for name, stream in streams.items()},
            seed=self.seed,
            temperature=self.temperature if self.sampler_name == "temperature" and several else None,
        )
        self.batches = MultiTaskBatches(
            loaders, task_sampler, steps=self.total_steps, batches_per_step=phase.grad_accumulation
        )
        if phase.compile:
            # in place (nn.Module.compile): parameter names, checkpoints and best weights stay as they are;
            # compiled lazily by the first forward, undone when the training ends (see `run`)
            self.model.encoder.compile()
        groups = optimizer_groups(
            self.model, phase.weight_decay, phase.learning_rate, phase.head_learning_rate
        )
        # fused: one kernel over all parameters instead of per-tensor ops (CPU and CUDA both support it)
        optimizer = torch.optim.AdamW(groups, lr=phase.learning_rate, fused=True)
        scheduler = get_linear_schedule_with_warmup(
            optimizer, int(phase.warmup_ratio * self.total_steps), self.total_steps
        )
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(
            self.model, optimizer, scheduler
        )
        # accelerate's optimizer wrapper only forwards step and zero_grad without a loss scaler (fp16) on
        # plain or DDP devices, yet looks for the lomo package on disk twice and inspects zero_grad's
        # signature on every call (the loop's largest own cost in cProfile): there, call the optimizer
        plain = self.accelerator.distributed_type in (DistributedType.NO, DistributedType.MULTI_GPU)
        direct = plain and self.accelerator.scaler is None
        self.stepper = self.optimizer.optimizer if direct else self.optimizer
        self.scored = [stream for stream in streams.values() if stream.dev_features]
        self.trainable = [name for name, p in self.unwrapped.named_parameters() if p.requires_grad]
        self.loss_log: list[tuple[int, float]] = []  # (step, mean loss of the window ending there)
        self._loss_sum, self._loss_steps = None, 0  # the open window, on the device
        config = phase.model_dump() | {"seed": self.seed, "tasks": ",".join(streams)}
        self.tracker = StepTracker(
            self.accelerator, self.tracking, optimizer=self.optimizer, model=self.unwrapped, config=config
        )

    @property
    def unwrapped(self) -> MultiHeadModel:
        return self.accelerator.unwrap_model(self.model)

    # ------------------------------------------------------------------------------------------- step
    def train_step(self) -> torch.Tensor:
        """One optimizer step: a drawn task's micro-batches, each through the strategy, then the update."""
        task, micro_batches = self.batches.next_draw()
        stream, scale = self.streams[task], 1.0 / len(micro_batches)
        losses = []
        for i, batch in enumerate(micro_batches):
            tokens = int(batch["attention_mask"].sum())  # on the CPU, before the copy: no device wait
            batch = {
                key: value.to(self.accelerator.device, non_blocking=True) for key, value in batch.items()
            }
            last = i == len(micro_batches) - 1
            # gradients are all-reduced once per optimizer step, on the window's last micro-batch
            with contextlib.nullcontext() if last else self.accelerator.no_sync(self.model):
                losses.append(
                    self.strategy.loss_and_backward(self.accelerator, self.model, stream, batch, scale)
                )
            self.progress.seen += batch["input_ids"].shape[0]
            self.progress.tokens += tokens
        loss = torch.stack(losses).mean()
        # adversarial steps can diverge (a too large ascent step): look before the update (a device wait)
        finite = self.strategy_name == "plain" or bool(torch.isfinite(loss))
        if finite:
            if self.phase.max_grad_norm:
                self.accelerator.clip_grad_norm_(self.model.parameters(), self.phase.max_grad_norm)
            self.stepper.step()
        with warnings.catch_warnings():  # a skipped first update makes torch warn of the order: intended
            warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler\.step\(\)`", UserWarning)
            self.scheduler.step()
        self.stepper.zero_grad(set_to_none=True)
        self.progress.step += 1
        if not finite:  # the step is counted but not applied, so the saved state resumes after it
            raise NonFiniteLoss(self.progress.step, self.strategy_name, loss.item())
        after_step = getattr(self.strategy, "after_optimizer_step", None)
        if after_step is not None:
            after_step(self.model)
        return loss

    # --------------------------------------------------------------------------------------- evaluate
    def evaluate_dev(self) -> tuple[float, dict[str, dict[str, float]]]:
        """The mean headline metric over the scored tasks, and every metric of every task.

        Under `accelerate launch` the processes share the dev batches and gather the logits
        (`distributed.shared_map`): each example is scored once and every process gets the same scores, so
        they all keep the same best weights and stop at the same step."""
        headline, scores = [], {}
        for stream in self.scored:
            task_scores = evaluate_task(
                self.unwrapped,
                self.tokenizer,
                stream.spec,
                stream.dev_examples,
                stream.dev_features,
                self.phase.eval_batch_size,
                language=stream.spec.train_language,
            )
            headline.append(task_scores[stream.spec.metric])
            scores[stream.spec.name] = task_scores
        return sum(headline) / len(headline), scores

    def maybe_evaluate(self) -> float | None:
        """Every `eval_every` steps and at the last: score dev, keep the best weights (CPU) and count
        evaluations without improvement (jiant's patience). Returns the dev score when it evaluated."""
        step = self.progress.step
        if not self.scored or (step % self.eval_every and step != self.total_steps):
            return None
        self.tracker.before_evaluation(self.progress.seen)
        dev, scores = self.evaluate_dev()
        self.tracker.after_evaluation(step, dev, scores, self.progress.seen)
        progress = self.progress
        progress.history.append((step, dev))
        if dev > progress.best_dev:
            progress.best_dev, progress.best_step, progress.best_scores = dev, step, scores
            progress.evals_without_improvement = 0
            params = dict(self.unwrapped.named_parameters())
            self.best_weights = {name: params[name].detach().to("cpu", copy=True) for name in self.trainable}
        else:
            progress.evals_without_improvement += 1
        return dev

    # ---------------------------------------------------------------------------------------- logging
    def log_loss(self, loss: torch.Tensor) -> float | None:
        """Add a step's loss to the current window; every `log_every` steps, and at the end, read the
        window's mean from the device (the only wait for it), note it in `loss_log` and open a new window.

        Between reads the window's sum stays on the device, so the host never waits for the step it has
        just queued. Reading losses changes nothing in training; windows restart with a resumed run."""
        self._loss_sum = loss if self._loss_sum is None else self._loss_sum + loss
        self._loss_steps += 1
        if self.progress.step % self.phase.log_every and not self.done():
            return None
        mean = self._loss_sum.item() / self._loss_steps
        self.loss_log.append((self.progress.step, mean))
        self._loss_sum, self._loss_steps = None, 0
        return mean

    def done(self) -> bool:
        patience = self.phase.patience
        return self.progress.step >= self.total_steps or bool(
            patience and self.progress.evals_without_improvement >= patience
        )

    # ------------------------------------------------------------------------------------ checkpoints
    def fingerprint(self) -> str:
        """What a checkpoint must match to be resumed: the phase, seed, streams' sizes and model shape."""
        streams = {name: [len(s.features), s.batch_size] for name, s in self.streams.items()}
        shapes = [[name, list(p.shape)] for name, p in self.unwrapped.named_parameters()]
        payload = {"phase": self.phase.identity(), "seed": self.seed, "streams": streams}
        payload |= {"parameters": shapes}
        payload |= {"sampler": self.sampler_name, "temperature": self.temperature}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    @main_process_writes  # the processes draw the same batches from the same seed: their states agree
    def save(self) -> None:
        """The exact training state, written atomically (temporary file, then rename), replacing the last."""
        folder = self.checkpoint_dir
        folder.mkdir(parents=True, exist_ok=True)
        collators = {name: _collator_generator(s.collate) for name, s in self.streams.items()}
        state = {
            "fingerprint": self.fingerprint(),
            # frozen parameters never change: they come back from the model the run starts from
            "model": {n: p.detach().cpu() for n, p in self.unwrapped.named_parameters() if p.requires_grad},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.accelerator.scaler.state_dict() if self.accelerator.scaler else None,
            "batches": self.batches.state_dict(),
            "collators": {name: g.get_state() for name, g in collators.items() if g is not None},
            "rng": _rng_states(),
            "progress": asdict(self.progress) | {"seconds": self.progress.seconds + self._elapsed()},
            "best_weights": self.best_weights,
            "strategy": self.strategy.state_dict() if hasattr(self.strategy, "state_dict") else None,
        }
        temporary = folder / f".{CHECKPOINT_FILE}.{os.getpid()}.tmp"
        torch.save(state, temporary)
        os.replace(temporary, folder / CHECKPOINT_FILE)
        note = {"step": self.progress.step, "fingerprint": state["fingerprint"]}
        with atomic_file(folder / PROGRESS_FILE) as handle:
            json.dump(note, handle)

    def load(self) -> bool:
        """Resume from the checkpoint in `checkpoint_dir` when there is one for this very training."""
        path = self.checkpoint_dir / CHECKPOINT_FILE if self.checkpoint_dir else None
        if path is None or not path.exists():
            return False
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state["fingerprint"] != self.fingerprint():
            return False  # another training's checkpoint: start afresh (it is replaced at the first save)
        params = dict(self.unwrapped.named_parameters())
        with torch.no_grad():
            for name, value in state["model"].items():
                params[name].copy_(value)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"] is not None and self.accelerator.scaler is not None:
            self.accelerator.scaler.load_state_dict(state["scaler"])
        self.batches.load_state_dict(state["batches"])
        for name, generator_state in state["collators"].items():
            _collator_generator(self.streams[name].collate).set_state(generator_state)
        _set_rng_states(state["rng"])
        self.progress = TrainProgress(**state["progress"])
        self.progress.history = [tuple(item) for item in self.progress.history]
        self.best_weights = state["best_weights"]
        if state.get("strategy") is not None and hasattr(self.strategy, "load_state_dict"):
            self.strategy.load_state_dict(state["strategy"])
        return True

    @property
    def strategy_name(self) -> str:
        return getattr(self.strategy, "name", type(self.strategy).__name__)

    def _stop_diverged(self, diverged: NonFiniteLoss) -> XstiltsError:
        """Save the training state (the diverged step counted, not applied) and say what happened."""
        where = "no training checkpoint was asked for"
        if self.checkpoint_dir is not None:
            self.save()
            where = f"the training state after step {diverged.step - 1} is saved in {self.checkpoint_dir}"
        return XstiltsError(
            f"{self.description}: training stopped at step {diverged.step} of {self.total_steps}: the loss "
            f"under {diverged.strategy} training is not finite ({diverged.value}); {where} (a rerun with the "
            "same settings resumes there; changed settings start afresh). Lower the strategy's step_size "
            "or radius, or the learning rate."
        )

    def _elapsed(self) -> float:
        return time.perf_counter() - self._start

    # ----------------------------------------------------------------------------------------- finish
    def finish(self) -> TrainResult:
        """Reload the best dev weights (the last ones without dev) and report."""
        if self.best_weights is not None:
            self.unwrapped.load_state_dict(self.best_weights, strict=False)
        self.tracker.close(self.progress.seen)
        self.accelerator.free_memory()
        progress = self.progress
        seconds = progress.seconds + self._elapsed()
        scores = progress.best_scores
        # one task: its metrics; several: "task/metric"
        best_scores = {
            (f"{task}/{metric}" if len(scores) > 1 else metric): value
            for task, metrics in scores.items()
            for metric, value in metrics.items()
        }
        return TrainResult(
            progress.best_dev,
            progress.best_step,
            progress.step,
            seconds,
            progress.seen / max(seconds, 1e-9),
            progress.history,
            best_scores,
            dict(self.batches.draws),
            scores,
            self.resumed_from,
            progress.seen,
            progress.tokens,
        )

    # -------------------------------------------------------------------------------------------- run
    def run(self) -> TrainResult:
        self.setup()
        self._start = time.perf_counter()
        resumed = self.load()
        self.resumed_from = self.progress.step if resumed else None
        every = self.phase.checkpoint_every if self.checkpoint_dir else None
        self.model.train()
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} steps"),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("{task.fields[speed]:.1f} ex/s"),
            TextColumn("dev {task.fields[dev]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            disable=not self.accelerator.is_main_process,
            transient=False,
            refresh_per_second=2,  # each redraw takes ~0.6 ms of the main thread's interpreter (10/s: 3-5%)
        ) as bar_view:
            label = f"{self.description} (resumed at {self.progress.step})" if resumed else self.description
            bar = bar_view.add_task(
                label,
                total=self.total_steps,
                completed=self.progress.step,
                loss=float("nan"),
                speed=0.0,
                dev="-",
            )
            while not self.done():
                try:
                    loss = self.train_step()
                except NonFiniteLoss as diverged:
                    raise self._stop_diverged(diverged) from None
                # the loss stays on the device: the tracker reads a window of them at once
                progress = self.progress
                self.tracker.after_step(progress.step, loss, self.scheduler.get_last_lr(), progress.seen)
                dev = self.maybe_evaluate()
                mean = self.log_loss(loss)  # None between logs: the loss stays on the device
                if mean is None and dev is None:
                    bar_view.advance(bar)
                else:
                    speed = self.progress.seen / max(self.progress.seconds + self._elapsed(), 1e-9)
                    shown = {"loss": mean, "speed": speed} if mean is not None else {}
                    shown |= {"dev": f"{dev:.4f}"} if dev is not None else {}
                    bar_view.update(bar, advance=1, **shown)
                if every and self.progress.step % every == 0 and not self.done():
                    self.save()
        if self.phase.compile:  # the compiled encoder was for this training: later evaluations run eagerly
            self.unwrapped.encoder._compiled_call_impl = None
        return self.finish()


def train_tasks(
    model: MultiHeadModel, tokenizer, streams: list[TaskStream], phase: PhaseConfig, **options
) -> TrainResult:
    """Train `model` on one or several tasks; leaves it holding the weights of its best dev evaluation.

    Each optimizer step draws a task with the sampler (sizes: training features per task) and takes
    `grad_accumulation` batches of it. An epoch is one pass over every task's batches, so proportional
    sampling sees each example about once per epoch. Dev selection is on the mean of the tasks' headline
    metrics, every `eval_every` optimizer steps and at the end; after `patience` evaluations without
    improvement training stops, and the best weights (kept on the CPU) are reloaded: jiant's XTREME runs
    (`e_run_models.sh`: `--eval_every_steps 1000 --no_improvements_for_n_evals 30`, 500 dev examples).
    With no dev set (MLM only, benchmarks) the final weights are kept. With `checkpoint_dir` and the
    phase's `checkpoint_every`, an exact training checkpoint is kept there and a rerun resumes from it.
    With `tracking`, loss, learning rates, throughput and dev metrics go to TensorBoard or MLflow.
    `options` are `TrainingRecipe`'s keyword arguments (seed, sampler, strategy, checkpoint_dir, ...).
    """
    return TrainingRecipe(model, tokenizer, streams, phase, **options).run()


@main_process_writes
def remove_training_checkpoint(checkpoint_dir: Path) -> None:
    """Drop a finished training's checkpoint (its step's results are stored)."""
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
