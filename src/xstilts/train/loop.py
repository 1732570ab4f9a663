"""The training loop, top to bottom: one task, one head, English dev selection. Built on accelerate.

The loop knows nothing of task kinds: the kind batches features and computes the loss, and dev steps
are scored by `evaluate_task`, the same function that scores zero-shot languages.
"""

from __future__ import annotations

import math
import time
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
from xstilts.evaluate.task_eval import evaluate_task
from xstilts.models.heads import MultiHeadModel
from xstilts.tasks.kinds import get_kind, sequence_lengths
from xstilts.tasks.spec import TaskSpec

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


@dataclass
class TrainResult:
    best_dev: float  # the task's headline metric at the selected step (-1.0 without a dev set)
    best_step: int
    steps: int
    seconds: float
    examples_per_second: float  # features (windows, for span QA) per second
    dev_history: list[tuple[int, float]]  # (step, headline metric)
    best_scores: dict[str, float] = field(default_factory=dict)  # every metric at the selected step


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
    """Fine-tune head `spec.head_name` of `model` on `spec`'s training features (encoded with
    `for_training=True`); leaves the model holding the weights of its best dev evaluation, selected on
    `spec.metric` over `dev_examples` and their evaluation features.

    With no dev set (benchmarks), nothing is evaluated and the final weights are kept.
    """
    kind, head = get_kind(spec.kind), spec.head_name
    missing = [key for key in kind.training_keys if train_features and key not in train_features[0]]
    if missing:
        raise ValueError(f"training features lack {missing}: encode them with for_training=True")
    if bool(dev_examples) != bool(dev_features):
        raise ValueError("dev_examples and dev_features come together")
    set_seed(seed, deterministic=not torch.cuda.is_available())
    # The scheduler steps once per optimizer step, also with several processes, so that the step counts
    # below (taken from the per-process, sharded loader) mean the same thing on one device or many.
    accelerator = Accelerator(
        mixed_precision=mixed_precision_mode(mixed_precision),
        gradient_accumulation_steps=phase.grad_accumulation,
        step_scheduler_with_optimizer=False,
    )
    generator = torch.Generator().manual_seed(seed)
    sampler = LengthGroupedSampler(
        phase.batch_size, lengths=sequence_lengths(train_features), generator=generator
    )
    loader = accelerator.prepare(
        DataLoader(
            train_features,
            batch_size=phase.batch_size,
            sampler=sampler,
            collate_fn=partial(kind.collate, tokenizer=tokenizer),
        )
    )
    updates_per_epoch = math.ceil(len(loader) / phase.grad_accumulation)
    total_updates = phase.max_steps or max(1, math.ceil(updates_per_epoch * phase.epochs))
    groups = optimizer_groups(model, phase.weight_decay, phase.learning_rate, phase.head_learning_rate)
    # fused: one kernel over all parameters instead of per-tensor ops (CPU and CUDA both support it)
    optimizer = torch.optim.AdamW(groups, lr=phase.learning_rate, fused=True)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(phase.warmup_ratio * total_updates), total_updates
    )
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    eval_every = phase.eval_every or updates_per_epoch

    def evaluate_dev() -> dict[str, float]:
        return evaluate_task(
            accelerator.unwrap_model(model),
            tokenizer,
            spec,
            dev_examples,
            dev_features,
            phase.eval_batch_size,
            language=spec.train_language,
        )

    trainable = [name for name, p in accelerator.unwrap_model(model).named_parameters() if p.requires_grad]
    best_dev, best_step, best_state, history, best_scores = -1.0, 0, None, [], {}
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
        while step < total_updates:
            for batch in loader:
                with accelerator.accumulate(model):
                    loss = kind.loss(model(batch["input_ids"], batch["attention_mask"], head=head), batch)
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
                if dev_features and (step % eval_every == 0 or step == total_updates):
                    scores = evaluate_dev()
                    dev = scores[spec.metric]
                    history.append((step, dev))
                    progress.update(bar, dev=f"{dev:.4f}")
                    if dev > best_dev:
                        best_dev, best_step, best_scores = dev, step, scores
                        params = dict(accelerator.unwrap_model(model).named_parameters())
                        best_state = {name: params[name].detach().clone() for name in trainable}
                if step >= total_updates:
                    break
    seconds = time.perf_counter() - start
    unwrapped = accelerator.unwrap_model(model)
    if best_state is not None:
        unwrapped.load_state_dict(best_state, strict=False)
    accelerator.free_memory()
    return TrainResult(best_dev, best_step, step, seconds, seen / max(seconds, 1e-9), history, best_scores)
