"""Time per optimizer step: xstilts' training loop (`TrainingRecipe`) vs a bare PyTorch loop, same batches.

Both sides train the same model from the same initial weights on the same `bible-genre` English batches:
the recipe's own length-grouped batch order, collated by the kind's collate function inside a plain
`DataLoader` on the bare side (collation is part of both loops), the same fused AdamW and parameter groups,
the same linear schedule with warm-up, the same gradient clipping. The bare loop is the textbook one:

    for batch in loader: loss = loss_fn(model(batch)); loss.backward(); clip; opt.step(); sched.step(); zero

With the tiny random model (`tiny-random-xlmr`) the forward and backward passes are so cheap that whatever
the loop adds around them shows. The two sides alternate, repetition after repetition, in one process (a
busy machine slows both alike); each repetition starts from the same weights. The per-step time of a side
is timed from its first step to its last (set-up and the final reload of the best weights are not
steps); the headline is the median, over the repetitions, of the ratio of two neighbouring runs (robust to
another process taking the cores for a while), next to the ratio of each side's fastest run.
`--profile FILE` writes a cProfile of one more run of our loop.

    python benchmarks/loop_overhead.py [--steps 50] [--repeats 20] [--batch-size 16] [--profile FILE]
"""

from __future__ import annotations

import argparse
import statistics
import time


def load(model_name: str, examples: int, max_length: int):
    from xstilts.models.checkpoint import build_model
    from xstilts.tasks.kinds import get_kind
    from xstilts.tasks.registry import get_task
    from xstilts.tasks.sources import load_examples

    spec = get_task("bible-genre")
    kind = get_kind(spec.kind)
    model, tokenizer, _ = build_model(model_name, {spec.head_name: kind.head(spec)}, seed=0)
    rows = load_examples(spec, "train", "en", limit=examples)
    return spec, kind, model, tokenizer, kind.encode(rows, tokenizer, max_length, for_training=True)


def run_ours(model, tokenizer, spec, features, phase, seed: int) -> tuple[float, object]:
    """Seconds per optimizer step of `train_task`'s recipe, from its first step to its last."""
    from xstilts.train.loop import TaskStream, TrainingRecipe

    class Timed(TrainingRecipe):
        def finish(self):
            self.loop_seconds = self._elapsed()  # `_start` is set once setup is done
            return super().finish()

    recipe = Timed(model, tokenizer, [TaskStream(spec, features, phase.batch_size)], phase, seed=seed)
    result = recipe.run()
    return recipe.loop_seconds / result.steps, recipe


def run_bare(model, tokenizer, spec, kind, features, phase, seed: int) -> float:
    """Seconds per optimizer step of the bare loop over the recipe's batches (same order, same collate)."""
    from functools import partial

    import torch
    from torch.utils.data import DataLoader
    from transformers import get_linear_schedule_with_warmup

    from xstilts.data.loaders import ResumableBatches
    from xstilts.tasks.kinds import sequence_lengths
    from xstilts.train.loop import optimizer_groups

    torch.manual_seed(seed)
    collate = partial(kind.collate, tokenizer=tokenizer)
    order_of = ResumableBatches(features, phase.batch_size, sequence_lengths(features), seed, collate)
    groups = optimizer_groups(model, phase.weight_decay, phase.learning_rate, phase.head_learning_rate)
    optimizer = torch.optim.AdamW(groups, lr=phase.learning_rate, fused=True)
    steps = phase.max_steps
    scheduler = get_linear_schedule_with_warmup(optimizer, int(phase.warmup_ratio * steps), steps)
    head, size = spec.head_name, phase.batch_size

    def epochs():
        epoch = 0
        while True:
            order = order_of._order(epoch)
            batches = [order[i : i + size] for i in range(0, len(order), size)]
            yield from DataLoader(features, batch_sampler=batches, collate_fn=collate)
            epoch += 1

    model.train()
    start = time.perf_counter()
    for _, batch in zip(range(steps), epochs(), strict=False):
        logits = model(batch["input_ids"], batch["attention_mask"], head=head)
        loss = kind.loss(logits, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), phase.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny-random-xlmr")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--max-length", type=int, default=96)
    parser.add_argument("--compile", action="store_true", help="PhaseConfig(compile=True) on our side")
    parser.add_argument("--profile", help="write a cProfile of one more run of our loop to this file")
    args = parser.parse_args()

    import torch

    from xstilts.config import PhaseConfig

    spec, kind, model, tokenizer, features = load(args.model, args.examples, args.max_length)
    initial = {name: value.clone() for name, value in model.state_dict().items()}
    options = {"compile": True} if args.compile else {}
    phase = PhaseConfig(max_steps=args.steps, batch_size=args.batch_size, learning_rate=2e-5, **options)

    def fresh():
        model.load_state_dict(initial)
        return model

    # warm-up (allocator, lazy imports, and the deterministic mode `set_seed` turns on for both sides)
    warm = phase.model_copy(update={"max_steps": 5})
    run_ours(fresh(), tokenizer, spec, features, warm, seed=0)
    run_bare(fresh(), tokenizer, spec, kind, features, warm, seed=0)
    ours, bare = [], []
    for repeat in range(args.repeats):
        sides = [("ours", ours), ("bare", bare)]
        for side, times in sides if repeat % 2 == 0 else sides[::-1]:  # alternate who goes first
            if side == "ours":
                times.append(run_ours(fresh(), tokenizer, spec, features, phase, seed=0)[0])
            else:
                times.append(run_bare(fresh(), tokenizer, spec, kind, features, phase, seed=0))
        print(f"repeat {repeat + 1}: ours {ours[-1] * 1e3:.2f} ms/step, bare {bare[-1] * 1e3:.2f} ms/step")
    paired = statistics.median(a / b for a, b in zip(ours, bare, strict=True))
    print(
        f"model {args.model}, {args.steps} steps x batch {args.batch_size}, max length {args.max_length}, "
        f"{torch.get_num_threads()} threads, {args.repeats} alternating repeats"
    )
    for name, times in (("bare PyTorch loop", bare), ("xstilts loop", ours)):
        median, fastest = statistics.median(times) * 1e3, min(times) * 1e3
        print(f"{name:18s} {median:7.2f} ms per optimizer step (median), {fastest:7.2f} ms (fastest)")
    print(f"ratio of the fastest repeats (xstilts / bare): {min(ours) / min(bare):.3f}x")
    print(f"overhead ratio (xstilts / bare, median of the paired repeats): {paired:.3f}x")
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        run_ours(fresh(), tokenizer, spec, features, phase, seed=0)
        profiler.disable()
        profiler.dump_stats(args.profile)
        print(f"profile of our loop written to {args.profile}")


if __name__ == "__main__":
    main()
