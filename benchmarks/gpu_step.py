"""One XLM-R-large-sized training run per task kind, on a GPU: throughput and the memory a paper run needs.

The encoder has XLM-R large's shape (24 layers, hidden 1024, 16 heads, 250,002 pieces, 560M parameters)
with random weights: speed and memory depend on the shape, not the values, and a machine without hub
access can still measure them. Inputs are real English text packed to the paper's maximum lengths (256 for
classification, multiple choice and tagging; 384 for QA), so the numbers are the worst case of a real run.
Each kind trains through xstilts' own loop (`train_task`) for a few optimizer steps after a warm-up.

    python benchmarks/gpu_step.py --tokenizer DIR --text FILE [--steps 5] [--gradient-checkpointing]
"""

from __future__ import annotations

import argparse
import json
import time

KINDS = {  # kind -> (registry task, per-device batch, accumulation, max length): the paper's settings
    "pair_classification": ("xnli", 8, 4, 256),
    "multiple_choice": ("hellaswag", 2, 16, 256),
    "tagging": ("udpos", 8, 4, 256),
    "span_qa": ("xquad", 4, 4, 384),
}


def xlmr_large(size: str):
    from transformers import XLMRobertaConfig, XLMRobertaModel

    dims = {"large": (1024, 24, 16, 4096), "tiny": (64, 2, 2, 128)}[size]
    config = XLMRobertaConfig(
        vocab_size=250002,
        hidden_size=dims[0],
        num_hidden_layers=dims[1],
        num_attention_heads=dims[2],
        intermediate_size=dims[3],
        max_position_embeddings=514,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
    )
    return XLMRobertaModel(config, add_pooling_layer=False)


def _pair(i: int, words: list[str], start: int, n_words: int) -> dict:
    chunk = words[start : start + n_words]
    half = n_words // 2
    return {"id": str(i), "text_a": " ".join(chunk[:half]), "text_b": " ".join(chunk[half:]), "label": i % 3}


def _multiple_choice(i: int, words: list[str], start: int, n_words: int) -> dict:
    context = " ".join(words[start : start + n_words // 2])
    choices = [" ".join(words[start + k * 40 : start + k * 40 + n_words // 2]) for k in range(4)]
    return {"id": str(i), "context": context, "choices": choices, "label": i % 4}


def _tagging(i: int, words: list[str], start: int, n_words: int) -> dict:
    chunk = words[start : start + n_words]
    return {"id": str(i), "tokens": chunk, "tags": [j % 17 for j in range(len(chunk))]}


def _span_qa(i: int, words: list[str], start: int, n_words: int) -> dict:
    """The answer is a few words in the middle of the context."""
    chunk = words[start : start + n_words]
    text, answer = " ".join(chunk), " ".join(chunk[n_words // 2 : n_words // 2 + 3])
    question = " ".join(chunk[5:20]) + "?"
    answers = {"text": [answer], "answer_start": [text.index(answer)]}
    return {"id": str(i), "question": question, "context": text, "answers": answers}


# one example builder per benchmarked kind, in the kind's example schema (tasks/spec.py)
EXAMPLE_BUILDERS = {
    "pair_classification": _pair,
    "multiple_choice": _multiple_choice,
    "tagging": _tagging,
    "span_qa": _span_qa,
}


def examples_for(kind: str, words: list[str], n: int, length_words: int) -> list[dict]:
    """n examples of the kind's schema cut from running text, long enough to fill the max length."""
    build, span = EXAMPLE_BUILDERS[kind], max(1, len(words) - 2 * length_words)
    return [build(i, words, (i * 997) % span, length_words) for i in range(n)]


def run_kind(kind_name: str, args, tokenizer, words: list[str]) -> dict:
    import torch

    from xstilts.config import PhaseConfig
    from xstilts.models.heads import MultiHeadModel
    from xstilts.models.loading import enable_gradient_checkpointing
    from xstilts.tasks.kinds import get_kind
    from xstilts.tasks.registry import get_task
    from xstilts.train.loop import train_task

    task, batch, accumulation, max_length = KINDS[kind_name]
    spec = get_task(task)
    kind = get_kind(spec.kind)
    torch.manual_seed(0)
    encoder = xlmr_large(args.size)
    if args.gradient_checkpointing:
        enable_gradient_checkpointing(encoder)
    device = "cuda" if torch.cuda.is_available() else "cpu"  # CPU: a smoke test with --size tiny
    precision = "bf16" if device == "cuda" else "no"
    model = MultiHeadModel(encoder, {spec.head_name: kind.head(spec)}, pooling="first").to(device)
    steps = args.warmup + args.steps
    rows = examples_for(kind_name, words, batch * accumulation * steps, max_length)
    features = kind.encode(rows, tokenizer, max_length, for_training=True)
    _sync()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    phase = PhaseConfig(
        max_steps=args.warmup, batch_size=batch, grad_accumulation=accumulation, learning_rate=1e-5
    )
    train_task(model, tokenizer, spec, features, phase, seed=0, mixed_precision=precision)
    phase = phase.model_copy(update={"max_steps": args.steps})
    _sync()
    start = time.perf_counter()
    result = train_task(model, tokenizer, spec, features, phase, seed=1, mixed_precision=precision)
    _sync()
    seconds = time.perf_counter() - start
    sequences = batch * accumulation * result.steps * (4 if kind_name == "multiple_choice" else 1)
    row = {
        "kind": kind_name,
        "task": task,
        "max_length": max_length,
        "batch": f"{batch}x{accumulation}",
        "optimizer_steps_per_s": round(result.steps / seconds, 3),
        "sequences_per_s": round(sequences / seconds, 1),
        "peak_gib": round(_peak_bytes() / 2**30, 2),
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "gradient_checkpointing": args.gradient_checkpointing,
    }
    return row


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _peak_bytes() -> int:
    """GPU: the allocator's peak since the warm-up; CPU: the process's peak RSS."""
    import resource

    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True, help="a directory with an XLM-R tokenizer")
    parser.add_argument("--text", required=True, help="English running text, one line per sentence")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--size", choices=("large", "tiny"), default="large")
    parser.add_argument("--kinds", nargs="*", default=list(KINDS))
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()

    import torch
    from transformers import AutoTokenizer

    if torch.cuda.is_available():
        print(f"device: {torch.cuda.get_device_name()}, bf16: {torch.cuda.is_bf16_supported()}")
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    words = open(args.text, encoding="utf-8").read().split()
    rows = [run_kind(kind, args, tokenizer, words) for kind in args.kinds]
    for row in rows:
        print(json.dumps(row))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
