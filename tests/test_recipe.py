"""The training recipe's own accumulation window: one task and `grad_accumulation` micro-batches per
optimizer step, every planned draw trained, whatever the lengths of the tasks' loaders."""

import torch

from xstilts.config import PhaseConfig
from xstilts.models.checkpoint import build_model
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.spec import TaskSpec
from xstilts.train.loop import TaskStream, TrainingRecipe
from xstilts.train.strategy import PlainTraining


def _stream(name: str, n: int, tokenizer) -> TaskStream:
    spec = TaskSpec(
        name=name,
        kind="classification",
        source="bible",
        languages=("en",),
        metric="accuracy",
        labels=("a", "b"),
    )
    examples = [{"id": str(i), "text": f"{name} sentence number {i}", "label": i % 2} for i in range(n)]
    features = get_kind("classification").encode(examples, tokenizer, 32, for_training=True)
    for i, feature in enumerate(features):
        feature["labels"] = i % 2
    return TaskStream(spec, features, batch_size=1)


class Recording(PlainTraining):
    """Plain training that notes the task of every micro-batch it trains."""

    def __init__(self):
        self.calls: list[str] = []

    def loss_and_backward(self, accelerator, model, stream, batch, scale):
        self.calls.append(stream.spec.name)
        return super().loss_and_backward(accelerator, model, stream, batch, scale)


def test_every_optimizer_step_is_one_task_and_a_full_accumulation_window():
    """Loaders of 5 and 20 batches (a 1:4 length ratio that made accelerate end windows early and mix
    tasks), accumulation 4, 30 steps: each step trains exactly 4 micro-batches of one task."""
    model, tokenizer, _ = build_model("tiny-random-xlmr", {"short": 2, "long": 2}, seed=0)
    streams = [_stream("short", 5, tokenizer), _stream("long", 20, tokenizer)]
    phase = PhaseConfig(max_steps=30, batch_size=1, grad_accumulation=4, learning_rate=1e-3, warmup_ratio=0.0)
    strategy = Recording()
    recipe = TrainingRecipe(model, tokenizer, streams, phase, seed=0, strategy=strategy)
    train_step, windows = recipe.train_step, []

    def recorded_step():
        before = len(strategy.calls)
        loss = train_step()
        windows.append(strategy.calls[before:])
        return loss

    recipe.train_step = recorded_step
    result = recipe.run()
    assert len(windows) == 30 == result.steps
    assert all(len(window) == 4 and len(set(window)) == 1 for window in windows), windows
    assert sum(result.task_draws.values()) == 30
    assert {window[0] for window in windows} == {"short", "long"}  # both tasks were drawn
    assert recipe.scheduler.scheduler.last_epoch == 30  # one scheduler (and optimizer) step per draw
    # the short task's loader ran out and restarted many times without ending a window early
    assert recipe.batches.epochs["short"] >= 3
    assert recipe.best_weights is None  # no dev set: the final weights are kept
    assert all(torch.isfinite(p).all() for p in model.parameters())
