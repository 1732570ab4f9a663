"""Adversarial training strategies (FGM, PGD, FreeLB, SMART) at the loop's training step, on the tiny model.

Correctness: the perturbation stays in its ball and off padding and special tokens; position embeddings
are added once (explicit position ids); an ascent step does not lower the loss; radius 0 (alpha 0)
trains exactly like plain training, weights compared; every trained kind trains under every strategy; a
diverging strategy stops the run with its state saved.
"""

from __future__ import annotations

import copy
import functools

import pytest
import torch

from xstilts.config import FGMConfig, FreeLBConfig, PGDConfig, PhaseConfig, SMARTConfig
from xstilts.errors import XstiltsError
from xstilts.models.checkpoint import build_model
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.spec import TaskSpec
from xstilts.train.adversarial import (
    FGM,
    PGD,
    SMART,
    FreeLB,
    build_strategy,
    example_norms,
    perturbable_mask,
)
from xstilts.train.loop import CHECKPOINT_FILE, TaskStream, TrainingRecipe
from xstilts.train.strategy import PlainTraining

SENTENCES = [
    "In the beginning was the word",
    "and the word was with God",
    "He went up into the mountain to pray",
    "Blessed are the meek for they shall inherit the earth",
    "The light shineth in darkness",
    "A sower went out to sow his seed",
]


def _examples(kind: str) -> list[dict]:
    """A few hand-made training examples of each trained kind."""
    if kind in ("classification",):
        return [{"id": str(i), "text": s, "label": i % 3} for i, s in enumerate(SENTENCES)]
    if kind == "pair_classification":
        return [
            {"id": str(i), "text_a": s, "text_b": SENTENCES[i - 1], "label": i % 2}
            for i, s in enumerate(SENTENCES)
        ]
    if kind == "multiple_choice":
        return [
            {"id": str(i), "context": s, "choices": [SENTENCES[i - 1], SENTENCES[i - 2]], "label": i % 2}
            for i, s in enumerate(SENTENCES)
        ]
    if kind == "tagging":
        return [
            {"id": str(i), "tokens": s.split(), "tags": [j % 3 for j in range(len(s.split()))]}
            for i, s in enumerate(SENTENCES)
        ]
    if kind == "span_qa":
        out = []
        for i, s in enumerate(SENTENCES):
            answer = s.split()[-1]
            out.append(
                {
                    "id": str(i),
                    "question": f"What is the last word of sentence {i}?",
                    "context": s,
                    "answers": {"text": [answer], "answer_start": [s.rindex(answer)]},
                }
            )
        return out
    raise ValueError(kind)


KINDS = ("classification", "pair_classification", "multiple_choice", "tagging", "span_qa")
OUTPUTS = {"classification": 3, "pair_classification": 2, "multiple_choice": 1, "tagging": 3, "span_qa": 2}


def _spec(kind: str) -> TaskSpec:
    labels = (
        ("a", "b", "c")[: OUTPUTS[kind]]
        if kind in ("classification", "pair_classification", "tagging")
        else ()
    )
    return TaskSpec(
        name=f"toy-{kind}", kind=kind, source="bible", languages=("en",), metric="accuracy", labels=labels
    )


@functools.cache
def _shared_model():
    """One tiny model with a head for every kind (built once: tokenizer loading dominates)."""
    heads = {_spec(kind).head_name: get_kind(kind).head(_spec(kind)) for kind in KINDS}
    model, tokenizer, _ = build_model("tiny-random-xlmr", heads, seed=0)
    return model, tokenizer


@functools.cache
def _built(kind: str):
    model, tokenizer = _shared_model()
    features = get_kind(kind).encode(_examples(kind), tokenizer, 48, for_training=True)
    return model, tokenizer, TaskStream(_spec(kind), features, 3)


def _setup(kind: str):
    """A fresh copy of the tiny model with a head for `kind`, its tokenizer and a training stream."""
    model, tokenizer, stream = _built(kind)
    return copy.deepcopy(model), tokenizer, stream


def _train(kind: str, strategy=None, steps: int = 4, adversarial=None, checkpoint_dir=None):
    model, tokenizer, stream = _setup(kind)
    phase = PhaseConfig(
        max_steps=steps, batch_size=3, learning_rate=1e-3, warmup_ratio=0.0, adversarial=adversarial
    )
    recipe = TrainingRecipe(
        model, tokenizer, [stream], phase, seed=0, strategy=strategy, checkpoint_dir=checkpoint_dir
    )
    result = recipe.run()
    return model, result, recipe


def _weights(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


class Recorder(torch.nn.Module):
    """The real model, noting each call's perturbation and logits (the strategy's forward passes)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, []

    def forward(self, *args, perturbation=None, **kwargs):
        logits = self.model(*args, perturbation=perturbation, **kwargs)
        self.calls.append((None if perturbation is None else perturbation.detach().clone(), logits.detach()))
        return logits

    @property
    def encoder(self):
        return self.model.encoder


class _Accelerator:
    """What a strategy asks of accelerate here: backward (a plain single-process backward)."""

    @staticmethod
    def backward(loss):
        loss.backward()


def _batch(kind: str, tokenizer, stream):
    return get_kind(kind).collate(stream.features[:3], tokenizer)


# ------------------------------------------------------------------------------------------ geometry
def test_position_embeddings_are_added_once_explicit_positions_match_input_ids():
    """inputs_embeds + explicit position ids give the input_ids logits exactly, padding rows included;
    without explicit positions XLM-R numbers padded positions wrongly (so the token logits there differ)."""
    model, tokenizer, stream = _setup("tagging")
    model.eval()
    batch = _batch("tagging", tokenizer, stream)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert not mask.all()  # rows of different lengths: padding present
    plain = model(ids, mask, head=stream.spec.head_name)
    zero = torch.zeros(*ids.shape, model.hidden_size)
    perturbed = model(ids, mask, head=stream.spec.head_name, perturbation=zero)
    assert torch.equal(plain, perturbed)
    embeds = model.encoder.get_input_embeddings()(ids)
    implicit = model.heads[stream.spec.head_name](
        model.encoder(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
    )
    assert not torch.equal(plain, implicit)


@pytest.mark.parametrize(
    "config",
    [
        FGMConfig(strategy="fgm", radius=0.5),
        PGDConfig(strategy="pgd", radius=0.05, norm="linf", steps=3, step_size=0.03),
        FreeLBConfig(strategy="freelb", radius=0.4, steps=3, step_size=0.3, init_radius=0.5),
        FreeLBConfig(strategy="freelb", radius=0.02, norm="linf", steps=3, step_size=0.05, init_radius=0.05),
    ],
    ids=lambda c: f"{c.strategy}-{c.norm}",
)
def test_perturbations_stay_in_their_ball_and_off_padding_and_special_tokens(config):
    model, tokenizer, stream = _setup("pair_classification")
    batch = _batch("pair_classification", tokenizer, stream)
    recorder = Recorder(model)
    strategy = build_strategy(config, tokenizer.all_special_ids, seed=0)
    strategy.loss_and_backward(_Accelerator(), recorder, stream, batch, 1.0)
    special = torch.isin(batch["input_ids"], torch.tensor(tokenizer.all_special_ids)).unsqueeze(-1)
    keep = (batch["attention_mask"].bool().unsqueeze(-1) & ~special).float()
    assert special.any() and (~batch["attention_mask"].bool()).any()  # both kinds of untouchable token
    assert torch.equal(
        perturbable_mask(batch["input_ids"], batch["attention_mask"], tokenizer.all_special_ids), keep
    )
    deltas = [delta for delta, _ in recorder.calls if delta is not None]
    assert len(deltas) == {"fgm": 2, "pgd": 4, "freelb": 3}[config.strategy]
    moved = False
    for delta in deltas:
        assert (delta * (1 - keep)).abs().max() == 0  # padding and <s>, </s> untouched
        assert (example_norms(delta, config.norm) <= config.radius * (1 + 1e-5)).all()
        moved |= bool(delta.abs().max() > 0)
    assert moved
    assert (example_norms(deltas[-1], config.norm) > 0.5 * config.radius).all()  # it uses its ball


def test_an_ascent_step_does_not_lower_the_loss():
    """FGM's adversarial input (eval mode: no dropout) has a loss at least the clean input's, per kind."""
    for kind in ("classification", "span_qa"):
        model, tokenizer, stream = _setup(kind)
        model.eval()
        batch = _batch(kind, tokenizer, stream)
        recorder = Recorder(model)
        FGM(FGMConfig(strategy="fgm", radius=0.5), tokenizer.all_special_ids, 0).loss_and_backward(
            _Accelerator(), recorder, stream, batch, 1.0
        )
        (_, clean), (_, adversarial) = recorder.calls
        kind_ = get_kind(kind)
        assert kind_.loss(adversarial, batch) > kind_.loss(clean, batch)


# ------------------------------------------------------------------------- radius 0 is plain training
@pytest.mark.parametrize(
    "config",
    [
        FGMConfig(strategy="fgm", radius=0.0),
        PGDConfig(strategy="pgd", radius=0.0, steps=2),
        FreeLBConfig(strategy="freelb", radius=0.0, steps=2, init_radius=0.0),
        SMARTConfig(strategy="smart", alpha=0.0),
    ],
    ids=lambda c: c.strategy,
)
def test_radius_zero_trains_exactly_like_plain_training(config, plain_weights):
    """Same weights to the bit after several steps with dropout on: the strategy's passes replay the
    dropout masks and leave the random state as one plain forward would."""
    adversarial, _, recipe = _train("classification", adversarial=config)
    assert recipe.strategy.name == config.strategy
    for name, value in _weights(adversarial).items():
        assert torch.equal(value, plain_weights[name]), name


def test_a_positive_radius_changes_the_training(plain_weights):
    adversarial, _, _ = _train("classification", adversarial=FreeLBConfig(strategy="freelb", radius=1.0))
    assert any(not torch.equal(value, plain_weights[name]) for name, value in _weights(adversarial).items())


@pytest.fixture(scope="module")
def plain_weights():
    plain, _, _ = _train("classification", PlainTraining())
    return _weights(plain)


# ------------------------------------------------------------------------------- every kind trains
STRATEGY_CONFIGS = [
    FGMConfig(strategy="fgm"),
    PGDConfig(strategy="pgd", steps=2),
    FreeLBConfig(strategy="freelb", steps=2, radius=1.0),
    SMARTConfig(strategy="smart", bregman=1.0),
]


@pytest.mark.parametrize("kind", KINDS)
def test_every_strategy_trains_a_step_of_every_kind(kind):
    """Each strategy's step on a batch of each kind: a finite loss and gradients in encoder and head."""
    model, tokenizer, stream = _setup(kind)
    batch = _batch(kind, tokenizer, stream)
    for config in STRATEGY_CONFIGS:
        model.zero_grad(set_to_none=True)
        strategy = build_strategy(config, tokenizer.all_special_ids, 0)
        loss = strategy.loss_and_backward(_Accelerator(), model, stream, batch, 1.0)
        assert torch.isfinite(loss), (kind, config.strategy)
        for part in (model.encoder.encoder, model.heads):
            grads = [p.grad for p in part.parameters() if p.grad is not None]
            assert grads and all(torch.isfinite(g).all() for g in grads), (kind, config.strategy)
            assert any(g.abs().max() > 0 for g in grads), (kind, config.strategy)


@pytest.mark.parametrize("config", STRATEGY_CONFIGS, ids=lambda c: c.strategy)
def test_every_strategy_runs_the_training_loop(config):
    """End to end through the recipe (multiple choice: rows are choices), set by the phase's config."""
    model, result, recipe = _train("multiple_choice", adversarial=config, steps=2)
    assert recipe.strategy.name == config.strategy and result.steps == 2
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_smart_regulariser_and_momentum_copy():
    """SMART's objective adds alpha x a positive symmetric KL to the task loss; the Bregman copy follows
    the model by theta~ <- beta theta~ + (1 - beta) theta after each update."""
    model, tokenizer, stream = _setup("classification")
    batch = _batch("classification", tokenizer, stream)
    config = SMARTConfig(
        strategy="smart", alpha=1.0, step_size=1e-3, radius=1.0, bregman=1.0, bregman_momentum=0.5
    )
    smart = SMART(config, tokenizer.all_special_ids, 0)
    model.eval()
    objective = smart.loss_and_backward(_Accelerator(), model, stream, batch, 1.0)
    task = get_kind("classification").loss(
        model(batch["input_ids"], batch["attention_mask"], head=stream.spec.head_name), batch
    )
    assert objective > task.detach()
    anchor = next(smart.momentum_model.parameters()).detach().clone()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    smart.after_optimizer_step(model)
    assert torch.allclose(
        next(smart.momentum_model.parameters()), 0.5 * anchor + 0.5 * next(model.parameters())
    )


def test_freelb_random_start_comes_from_its_own_seeded_generator():
    """The start is scaled by 1/sqrt(length x hidden) and drawn from the strategy's generator (state kept
    in checkpoints): the global random state is not touched, and a restored state repeats the draw."""
    _, tokenizer, stream = _setup("classification")
    batch = _batch("classification", tokenizer, stream)
    mask = perturbable_mask(batch["input_ids"], batch["attention_mask"], tokenizer.all_special_ids)
    shape = (mask.shape[0], mask.shape[1], 32)
    freelb = FreeLB(FreeLBConfig(strategy="freelb", init_radius=1.0), tokenizer.all_special_ids, 7)
    before = torch.get_rng_state()
    saved = freelb.state_dict()
    first = freelb.start(mask, shape)
    assert torch.equal(torch.get_rng_state(), before)
    lengths = mask.sum(dim=(1, 2))
    # uniform(-1, 1) entries scaled by init / sqrt(L d): each row's norm is at most sqrt(L d) x that = init
    assert (example_norms(first, "l2").flatten() <= 1.0).all()
    assert (example_norms(first, "linf").flatten() <= 1.0 / torch.sqrt(lengths * 32) + 1e-7).all()
    freelb.load_state_dict(saved)
    assert torch.equal(freelb.start(mask, shape), first)


# ------------------------------------------------------------------------------------- bad input
def test_a_diverging_strategy_stops_the_run_saving_its_state(tmp_path):
    config = FreeLBConfig(strategy="freelb", steps=2, step_size=1e38, init_radius=0.0)
    with pytest.raises(XstiltsError) as err:
        _train("classification", adversarial=config, steps=4, checkpoint_dir=tmp_path)
    message = str(err.value)
    assert "step 1 of 4" in message and "freelb" in message and "not finite" in message
    assert str(tmp_path) in message
    state = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=False)
    assert state["progress"]["step"] == 1
    assert all(torch.isfinite(value).all() for value in state["model"].values())  # not applied


def test_build_strategy_names_the_strategy_of_each_config():
    assert isinstance(build_strategy(None, (), 0), PlainTraining)
    assert isinstance(build_strategy(PGDConfig(strategy="pgd"), (), 0), PGD)
    assert isinstance(build_strategy(SMARTConfig(strategy="smart"), (), 0), SMART)
