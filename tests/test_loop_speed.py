"""What the loop does to stay fast, checked for correctness only (no timings): the loss is read from the
device once per `log_every` window, and `compile: true` reaches torch.compile."""

import pytest
import torch
from pydantic import ValidationError

from xstilts.config import PhaseConfig
from xstilts.models.checkpoint import build_model
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.spec import TaskSpec
from xstilts.train.loop import TaskStream, TrainingRecipe

TOY = TaskSpec(
    name="toy", kind="classification", source="bible", languages=("en",), metric="accuracy", labels=("r", "m")
)


def recipe_for(steps: int, seed: int = 0, **phase_kw) -> TrainingRecipe:
    model, tokenizer, _ = build_model("tiny-random-xlmr", {"toy": 2}, seed=seed)
    words = [("river", 0), ("mountain", 1)]
    examples = [
        {"id": str(i), "text": f"the {words[i % 2][0]} number {i}", "label": words[i % 2][1]}
        for i in range(12)
    ]
    features = get_kind("classification").encode(examples, tokenizer, 32, for_training=True)
    settings = dict(max_steps=steps, learning_rate=2e-3, batch_size=4, warmup_ratio=0.0) | phase_kw
    return TrainingRecipe(
        model, tokenizer, [TaskStream(TOY, features, 4)], PhaseConfig(**settings), seed=seed
    )


def test_the_loss_is_logged_as_the_mean_of_each_window():
    """25 steps, log_every 10: windows end at steps 10, 20 and 25 (the last, shorter one at the end)."""
    recipe = recipe_for(25, log_every=10)
    train_step, step_losses = recipe.train_step, []

    def recorded_step():
        loss = train_step()
        step_losses.append(loss.item())  # the test may wait for the device; the loop does not
        return loss

    recipe.train_step = recorded_step
    recipe.run()
    assert [step for step, _ in recipe.loss_log] == [10, 20, 25]
    windows = [step_losses[0:10], step_losses[10:20], step_losses[20:25]]
    for (_, logged), window in zip(recipe.loss_log, windows, strict=True):
        assert logged == pytest.approx(sum(window) / len(window), rel=1e-5)


def test_how_often_the_loss_is_read_changes_nothing_in_training():
    every_step = recipe_for(6, log_every=1)
    every_step.run()
    rarely = recipe_for(6, log_every=4)
    rarely.run()
    assert [step for step, _ in every_step.loss_log] == [1, 2, 3, 4, 5, 6]
    assert [step for step, _ in rarely.loss_log] == [4, 6]
    first, second = every_step.unwrapped.state_dict(), rarely.unwrapped.state_dict()
    for name, value in first.items():
        assert torch.equal(value, second[name]), name


def test_log_every_is_a_positive_phase_setting():
    assert PhaseConfig().log_every == 10
    with pytest.raises(ValidationError):
        PhaseConfig(log_every=0)


def test_compile_reaches_torch_compile_of_the_encoder_and_ends_with_the_training(monkeypatch):
    """`compile: true` compiles the encoder in place (parameter names unchanged), and the training's end
    leaves it eager again. torch.compile is replaced by a recorder here: compiling takes ~30 s on a CPU."""
    compiled = []

    def fake_compile(function, *args, **kwargs):
        compiled.append(function)
        return function  # runs eagerly

    monkeypatch.setattr(torch, "compile", fake_compile)
    plain = recipe_for(2)
    plain.setup()
    assert plain.unwrapped.encoder._compiled_call_impl is None and not compiled

    recipe = recipe_for(2, compile=True)
    names = [name for name, _ in recipe.model.named_parameters()]
    recipe.setup()
    encoder = recipe.unwrapped.encoder
    assert encoder._compiled_call_impl is not None
    assert len(compiled) == 1 and compiled[0].__self__ is encoder  # the encoder's own call
    assert [name for name, _ in recipe.unwrapped.named_parameters()] == names

    trained = recipe_for(2, compile=True)
    assert trained.run().steps == 2 and len(compiled) == 2
    assert trained.unwrapped.encoder._compiled_call_impl is None  # eager again after the training
