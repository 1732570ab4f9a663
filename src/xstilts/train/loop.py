"""The training loop, top to bottom: one or several tasks, English dev selection. Built on accelerate.

The loop knows nothing of task kinds: the kind batches features and computes the loss, and dev steps
are scored by `evaluate_task`, the same function that scores zero-shot languages. Several tasks train
together jiant-style: each optimizer step draws one task from a seeded sampler (uniform, proportional or
temperature) and takes its next batch(es); tasks naming the same head share it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch.utils.data import DataLoader
from transformers import get_linear_schedule_with_warmup
from transformers.trainer_pt_utils import LengthGroupedSampler

from xstilts.config import PhaseConfig
from xstilts.data.samplers import MultiTaskBatches, make_sampler
from xstilts.evaluate.task_eval import evaluate_task
from xstilts.models.heads import MultiHeadModel
from xstilts.tasks.kinds import get_kind, sequence_lengths
from xstilts.tasks.spec import TaskSpec

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
    seed: int,
    mixed_precision: str = "auto",
    description: str = "train",
) -> TrainResult:
    """Fine-tune head `spec.head_name` of `model` on one task (see `train_tasks`)."""
    stream = TaskStream(spec, train_features, phase.batch_size, dev_examples, dev_features)
    return train_tasks(
        model, tokenizer, [stream], phase, seed=seed, mixed_precision=mixed_precision, description=description
    )


def _loader(stream: TaskStream, tokenizer, seed: int) -> DataLoader:
    """Length-grouped batches (little padding), shuffled by a generator of the run's seed."""
    generator = torch.Generator().manual_seed(seed)
    sampler = LengthGroupedSampler(
        stream.batch_size, lengths=sequence_lengths(stream.features), generator=generator
    )
    collate = stream.collate or partial(stream.kind.collate, tokenizer=tokenizer)
    return DataLoader(stream.features, batch_size=stream.batch_size, sampler=sampler, collate_fn=collate)


def train_tasks(
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
) -> TrainResult:
    """Train `model` on one or several tasks; leaves it holding the weights of its best dev evaluation.

    Each optimizer step draws a task with the sampler (sizes: training features per task) and takes
    `grad_accumulation` batches of it. An epoch is one pass over every task's batches, so proportional
    sampling sees each example about once per epoch. Dev selection is on the mean of the tasks' headline
    metrics, every `eval_every` optimizer steps and at the end; after `patience` evaluations without
    improvement training stops, and the best weights (kept on the CPU) are reloaded: jiant's XTREME runs
    (`e_run_models.sh`: `--eval_every_steps 1000 --no_improvements_for_n_evals 30`, 500 dev examples).
    With no dev set (MLM only, benchmarks) the final weights are kept.
    """
    names = [stream.spec.name for stream in streams]
    if len(set(names)) != len(names):
        raise ValueError(f"a task appears twice among the streams: {names}")
    by_name = dict(zip(names, streams, strict=True))
    set_seed(seed, deterministic=not torch.cuda.is_available())
    # The scheduler steps once per optimizer step, also with several processes, so that the step counts
    # below (taken from the per-process, sharded loaders) mean the same thing on one device or many.
    accelerator = Accelerator(
        mixed_precision=mixed_precision_mode(mixed_precision),
        gradient_accumulation_steps=phase.grad_accumulation,
        step_scheduler_with_optimizer=False,
    )
    loaders = {
        name: accelerator.prepare(_loader(stream, tokenizer, seed + i))
        for i, (name, stream) in enumerate(by_name.items())
    }
    updates_per_epoch = math.ceil(sum(len(loader) for loader in loaders.values()) / phase.grad_accumulation)
    total_updates = phase.max_steps or max(1, math.ceil(updates_per_epoch * phase.epochs))
    # every process draws the same task sequence: the sampler is seeded by the run's seed alone
    task_sampler = make_sampler(
        sampler if len(streams) > 1 else "uniform",
        {name: len(stream.features) for name, stream in by_name.items()},
        seed=seed,
        temperature=temperature if sampler == "temperature" and len(streams) > 1 else None,
    )
    batches = MultiTaskBatches(
        loaders, task_sampler, steps=total_updates, batches_per_step=phase.grad_accumulation
    )
    groups = optimizer_groups(model, phase.weight_decay, phase.learning_rate, phase.head_learning_rate)
    # fused: one kernel over all parameters instead of per-tensor ops (CPU and CUDA both support it)
    optimizer = torch.optim.AdamW(groups, lr=phase.learning_rate, fused=True)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(phase.warmup_ratio * total_updates), total_updates
    )
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    eval_every = phase.eval_every or updates_per_epoch
    scored = [stream for stream in streams if stream.dev_features]

    def evaluate_dev() -> tuple[float, dict[str, dict[str, float]]]:
        """The mean headline metric over the scored tasks, and every metric of every task."""
        headline, scores = [], {}
        for stream in scored:
            task_scores = evaluate_task(
                accelerator.unwrap_model(model),
                tokenizer,
                stream.spec,
                stream.dev_examples,
                stream.dev_features,
                phase.eval_batch_size,
                language=stream.spec.train_language,
            )
            headline.append(task_scores[stream.spec.metric])
            scores[stream.spec.name] = task_scores
        return sum(headline) / len(headline), scores

    trainable = [name for name, p in accelerator.unwrap_model(model).named_parameters() if p.requires_grad]
    best_dev, best_step, best_state, history, task_scores = -1.0, 0, None, [], {}
    evals_without_improvement = 0
    step, seen, start = 0, 0, time.perf_counter()
    model.train()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TextColumn("{task.fields[speed]:.1f} ex/s"),
        TextColumn("dev {task.fields[dev]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not accelerator.is_main_process,
        transient=False,
    ) as progress:
        bar = progress.add_task(description, total=total_updates, loss=float("nan"), speed=0.0, dev="-")
        for name, batch in batches:
            stream = by_name[name]
            with accelerator.accumulate(model):
                logits = model(
                    batch["input_ids"],
                    batch["attention_mask"],
                    head=stream.spec.head_name,
                    **stream.kind.forward_kwargs(batch),
                )
                loss = stream.kind.loss(logits, batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients and phase.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), phase.max_grad_norm)
                optimizer.step()  # a no-op on accumulation micro-steps
                if accelerator.sync_gradients:
                    scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            seen += batch["input_ids"].shape[0]
            if not accelerator.sync_gradients:
                continue
            step += 1
            speed = seen / (time.perf_counter() - start)
            progress.update(bar, advance=1, loss=loss.item(), speed=speed)
            if scored and (step % eval_every == 0 or step == total_updates):
                dev, scores = evaluate_dev()
                history.append((step, dev))
                progress.update(bar, dev=f"{dev:.4f}")
                if dev > best_dev:
                    best_dev, best_step, task_scores = dev, step, scores
                    evals_without_improvement = 0
                    params = dict(accelerator.unwrap_model(model).named_parameters())
                    best_state = {name: params[name].detach().to("cpu", copy=True) for name in trainable}
                else:
                    evals_without_improvement += 1
            if step >= total_updates or (phase.patience and evals_without_improvement >= phase.patience):
                break
    seconds = time.perf_counter() - start
    unwrapped = accelerator.unwrap_model(model)
    if best_state is not None:
        unwrapped.load_state_dict(best_state, strict=False)
    accelerator.free_memory()
    # one task: its metrics; several: "task/metric"
    best_scores = {
        (f"{task}/{metric}" if len(task_scores) > 1 else metric): value
        for task, metrics in task_scores.items()
        for metric, value in metrics.items()
    }
    speed = seen / max(seconds, 1e-9)
    return TrainResult(
        best_dev, best_step, step, seconds, speed, history, best_scores, dict(batches.draws), task_scores
    )
