"""The training loop on a real (tiny) model: it learns, it is deterministic, it selects on dev."""

import numpy as np
import torch

from xstilts.config import PhaseConfig
from xstilts.evaluate.inference import predict_logits
from xstilts.models.checkpoint import build_model
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.spec import TaskSpec
from xstilts.train.loop import freeze_word_embeddings, optimizer_groups, train_task


def toy_examples():
    """Label = which of two words the sentence contains: learnable by a tiny model in a few steps."""
    words = [("river", 0), ("mountain", 1)]
    return [
        {"id": str(i), "text": f"the {words[i % 2][0]} number {i}", "label": words[i % 2][1]}
        for i in range(16)
    ]


TOY = TaskSpec(
    name="toy", kind="classification", source="bible", languages=("en",), metric="accuracy", labels=("r", "m")
)


def train_once(seed: int, steps: int = 30, phase_kw=None):
    model, tokenizer, _ = build_model("tiny-random-xlmr", {"toy": 2}, seed=seed)
    kind = get_kind("classification")
    examples = toy_examples()
    features = kind.encode(examples, tokenizer, 32, for_training=True)
    labels = np.array([ex["label"] for ex in examples])
    settings = dict(max_steps=steps, learning_rate=2e-3, batch_size=8, warmup_ratio=0.0, eval_every=10)
    phase = PhaseConfig(**(settings | (phase_kw or {})))
    result = train_task(
        model, tokenizer, TOY, features, phase, dev_examples=examples, dev_features=features, seed=seed
    )
    return model, tokenizer, kind, features, labels, result


def test_the_loop_learns_and_keeps_the_best_dev_weights():
    model, tokenizer, kind, features, labels, result = train_once(seed=0)
    assert result.steps == 30 and [s for s, _ in result.dev_history] == [10, 20, 30]
    assert result.best_dev == 1.0 and result.best_scores == {"accuracy": 1.0}
    best_step = max(result.dev_history, key=lambda item: item[1])[0]
    assert result.best_step == best_step
    logits = predict_logits(model, kind, tokenizer, features, "toy", batch_size=5)
    assert (logits.argmax(-1) == labels).mean() == 1.0


def test_same_seed_same_weights_on_cpu():
    first = train_once(seed=3, steps=5)[0]
    second = train_once(seed=3, steps=5)[0]
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    third = train_once(seed=4, steps=5)[0]
    assert not torch.equal(first.heads["toy"].out_proj.weight, third.heads["toy"].out_proj.weight)


def test_gradient_accumulation_counts_optimizer_steps(monkeypatch):
    import transformers

    from xstilts.train import loop

    schedulers = []

    def recording_schedule(*args, **kwargs):
        schedulers.append(transformers.get_linear_schedule_with_warmup(*args, **kwargs))
        return schedulers[-1]

    monkeypatch.setattr(loop, "get_linear_schedule_with_warmup", recording_schedule)
    *_, result = train_once(seed=0, steps=4, phase_kw={"grad_accumulation": 2, "batch_size": 4})
    assert result.steps == 4 and result.examples_per_second > 0
    # 8 micro-batches, 4 optimizer steps: the learning-rate schedule advanced once per optimizer step
    assert schedulers[0].last_epoch == 4


def test_frozen_embeddings_stay_fixed_and_leave_the_optimizer():
    model, tokenizer, _ = build_model("tiny-random-xlmr", {"toy": 2})
    frozen = freeze_word_embeddings(model)
    assert frozen == model.encoder.get_input_embeddings().weight.numel()
    groups = optimizer_groups(model, 0.01, learning_rate=1e-5, head_learning_rate=1e-3)
    trained = {id(p) for group in groups for p in group["params"]}
    assert id(model.encoder.get_input_embeddings().weight) not in trained
    names = {id(p): n for n, p in model.named_parameters()}
    for group in groups:
        group_names = [names[id(p)] for p in group["params"]]
        heads = {n.startswith("heads.") for n in group_names}
        assert len(heads) == 1  # a group is all head or all encoder
        assert group["lr"] == (1e-3 if heads.pop() else 1e-5)
        no_decay = {n.endswith(("bias", "LayerNorm.weight")) for n in group_names}
        assert no_decay == {group["weight_decay"] == 0.0}
    same = optimizer_groups(model, 0.01, learning_rate=1e-5)
    assert {group["lr"] for group in same} == {1e-5}


def test_model_selection_keeps_the_best_evaluations_weights_and_patience_stops(monkeypatch):
    """jiant's XTREME selection: evaluate every `eval_every` steps, stop after `patience` evaluations
    without improvement, reload the best weights. The dev scores are scripted (0.2, 0.9, 0.1, ...), so the
    best evaluation is the second whatever the tiny model learns; the weights at each evaluation are
    recorded to compare with what the loop leaves in the model."""
    import xstilts.train.loop as loop

    scripted = iter([0.2, 0.9, 0.1, 0.3, 0.5, 0.95, 0.99])
    snapshots = []

    def scripted_evaluate(model, *args, **kwargs):
        snapshots.append({name: p.detach().clone() for name, p in model.named_parameters()})
        return {"accuracy": next(scripted)}

    monkeypatch.setattr(loop, "evaluate_task", scripted_evaluate)
    model, *_, result = train_once(seed=0, steps=70, phase_kw={"eval_every": 5, "patience": 3})
    # 0.2, 0.9 (best), then 0.1, 0.3, 0.5: three without improvement -> stop at step 25, not 35 or 70
    assert result.dev_history == [(5, 0.2), (10, 0.9), (15, 0.1), (20, 0.3), (25, 0.5)]
    assert result.steps == 25 and result.best_step == 10 and result.best_dev == 0.9
    best, last = snapshots[1], snapshots[-1]
    kept = dict(model.named_parameters())
    assert any(not torch.equal(best[name], last[name]) for name in best)  # training moved the weights
    for name, value in best.items():
        assert torch.equal(kept[name].detach(), value), name


def test_without_patience_every_planned_step_runs(monkeypatch):
    import xstilts.train.loop as loop

    scores = iter([0.5, 0.4, 0.3, 0.2])
    monkeypatch.setattr(loop, "evaluate_task", lambda *a, **k: {"accuracy": next(scores)})
    *_, result = train_once(seed=0, steps=20, phase_kw={"eval_every": 5})
    assert result.steps == 20 and result.best_step == 5
