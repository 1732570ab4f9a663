"""The training loop, top to bottom: one task, one head, English dev selection. Built on accelerate."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch.utils.data import DataLoader
from transformers import get_linear_schedule_with_warmup
from transformers.trainer_pt_utils import LengthGroupedSampler

from xstilts.config import PhaseConfig
from xstilts.evaluate.inference import predict_logits
from xstilts.evaluate.metrics import get_metric
from xstilts.models.heads import MultiHeadModel
from xstilts.tasks.kinds import sequence_lengths

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


@dataclass
class TrainResult:
    best_dev: float
    best_step: int
    steps: int
    seconds: float
    examples_per_second: float
    dev_history: list[tuple[int, float]]


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
    kind,
    head: str,
    metric: str,
    train_features: list[dict],
    dev_features: list[dict] | None,
    dev_labels: np.ndarray | None,
    phase: PhaseConfig,
    *,
    seed: int,
    mixed_precision: str = "auto",
    description: str = "train",
) -> TrainResult:
    """Fine-tune `model` on one task; leaves the model holding the weights of its best dev evaluation.

    With no dev set (benchmarks), nothing is evaluated and the final weights are kept.
    """
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
    score = get_metric(metric)
    eval_every = phase.eval_every or updates_per_epoch

    def evaluate_dev() -> float:
        logits = predict_logits(
            accelerator.unwrap_model(model), kind, tokenizer, dev_features, head, phase.eval_batch_size
        )
        return score(kind.predict(logits), dev_labels)

    trainable = [name for name, p in accelerator.unwrap_model(model).named_parameters() if p.requires_grad]
    best_dev, best_step, best_state, history = -1.0, 0, None, []
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
                    logits = model(batch["input_ids"], batch["attention_mask"], head=head)
                    logits = kind.logits_shape(logits, batch)
                    loss = torch.nn.functional.cross_entropy(logits.float(), batch["labels"])
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and phase.max_grad_norm:
                        accelerator.clip_grad_norm_(model.parameters(), phase.max_grad_norm)
                    optimizer.step()  # a no-op on accumulation micro-steps
                    if accelerator.sync_gradients:
                        scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                seen += batch["labels"].shape[0]
                if not accelerator.sync_gradients:
                    continue
                step += 1
                speed = seen / (time.perf_counter() - start)
                progress.update(bar, advance=1, loss=loss.item(), speed=speed)
                if dev_features and (step % eval_every == 0 or step == total_updates):
                    dev = evaluate_dev()
                    history.append((step, dev))
                    progress.update(bar, dev=f"{dev:.4f}")
                    if dev > best_dev:
                        best_dev, best_step = dev, step
                        params = dict(accelerator.unwrap_model(model).named_parameters())
                        best_state = {name: params[name].detach().clone() for name in trainable}
                if step >= total_updates:
                    break
    seconds = time.perf_counter() - start
    unwrapped = accelerator.unwrap_model(model)
    if best_state is not None:
        unwrapped.load_state_dict(best_state, strict=False)
    accelerator.free_memory()
    return TrainResult(best_dev, best_step, step, seconds, seen / max(seconds, 1e-9), history)
