"""Multi-task task samplers: exact probabilities, empirical frequencies, seeding, and batch cycling."""

import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from xstilts.data.samplers import (
    SAMPLERS,
    MultiTaskBatches,
    ProportionalSampler,
    TemperatureSampler,
    UniformSampler,
    make_sampler,
)
from xstilts.errors import XstiltsError

SIZES = {"a": 100, "b": 300, "c": 600}


def test_probabilities_computed_by_hand():
    assert ProportionalSampler(SIZES).probabilities == pytest.approx({"a": 0.1, "b": 0.3, "c": 0.6})
    assert UniformSampler(SIZES).probabilities == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    # T = 2: weights are square roots, 10 : 17.3205 : 24.4949 (sum 51.8154)
    total = 10 + math.sqrt(300) + math.sqrt(600)
    expected = {"a": 10 / total, "b": math.sqrt(300) / total, "c": math.sqrt(600) / total}
    assert TemperatureSampler(SIZES, 2.0).probabilities == pytest.approx(expected)
    assert TemperatureSampler(SIZES, 2.0).probabilities["a"] == pytest.approx(0.19299, abs=1e-5)


def test_temperature_limits_and_cap():
    assert TemperatureSampler(SIZES, 1.0).probabilities == pytest.approx(
        ProportionalSampler(SIZES).probabilities
    )
    assert TemperatureSampler(SIZES, math.inf).probabilities == pytest.approx(
        UniformSampler(SIZES).probabilities
    )
    # cap 300: sizes count as 100, 300, 300
    capped = TemperatureSampler(SIZES, 1.0, cap=300).probabilities
    assert capped == pytest.approx({"a": 1 / 7, "b": 3 / 7, "c": 3 / 7})
    # huge sizes and a small temperature stay finite
    extreme = TemperatureSampler({"x": 10**9, "y": 10**6}, 0.05).probabilities
    assert extreme["x"] == pytest.approx(1.0) and all(np.isfinite(list(extreme.values())))


@pytest.mark.parametrize(
    "sampler",
    [
        UniformSampler(SIZES, seed=1),
        ProportionalSampler(SIZES, seed=2),
        TemperatureSampler(SIZES, 2.0, seed=3),
    ],
    ids=lambda s: s.name,
)
def test_empirical_frequencies_match(sampler):
    draws = sampler.sample(30_000)
    for task, p in sampler.probabilities.items():
        frequency = draws.count(task) / len(draws)
        # one standard deviation is <= 0.0029 here, so 0.012 is > 4 sigma; any two of these samplers differ
        # by >= 0.09 on some task, so a sampler drawing with the wrong probabilities cannot pass.
        assert abs(frequency - p) < 0.012, (task, frequency, p)


def test_same_seed_same_sequence_and_seeds_differ():
    first = make_sampler("proportional", SIZES, seed=7).sample(500)
    again = make_sampler("proportional", SIZES, seed=7)
    assert [again.next_task() for _ in range(500)] == first
    assert make_sampler("proportional", SIZES, seed=8).sample(500) != first
    iterator = iter(make_sampler("proportional", SIZES, seed=7))
    assert [next(iterator) for _ in range(500)] == first


def test_make_sampler_validates():
    assert set(SAMPLERS) == {"uniform", "proportional", "temperature"}
    with pytest.raises(XstiltsError, match="proportional, temperature, uniform"):
        make_sampler("round-robin", SIZES)
    with pytest.raises(XstiltsError, match="needs a temperature"):
        make_sampler("temperature", SIZES)
    with pytest.raises(XstiltsError, match="only apply to temperature"):
        make_sampler("uniform", SIZES, temperature=2.0)
    assert isinstance(make_sampler("temperature", SIZES, temperature=2.0, cap=50), TemperatureSampler)
    with pytest.raises(XstiltsError, match="must be positive"):
        make_sampler("temperature", SIZES, temperature=0.0)
    with pytest.raises(XstiltsError, match="'b' has 0"):
        make_sampler("proportional", {"a": 3, "b": 0})
    with pytest.raises(XstiltsError, match="at least one task"):
        make_sampler("uniform", {})


def test_batches_cycle_each_loader_in_order():
    loaders = {"a": [1, 2, 3], "b": ["x", "y"]}
    batches = MultiTaskBatches(loaders, make_sampler("uniform", {"a": 3, "b": 2}, seed=0), steps=40)
    pairs = list(batches)
    assert len(pairs) == len(batches) == 40
    for task, cycle in loaders.items():
        seen = [batch for name, batch in pairs if name == task]
        assert seen == [cycle[i % len(cycle)] for i in range(len(seen))]
        assert batches.draws[task] == len(seen) and batches.epochs[task] == (len(seen) - 1) // len(cycle)
    assert {name for name, _ in pairs} == {"a", "b"}


def test_batches_per_step_keeps_one_task_per_step():
    sampler = make_sampler("proportional", {"a": 5, "b": 5}, seed=1)
    pairs = list(
        MultiTaskBatches({"a": range(5), "b": range(100, 105)}, sampler, steps=30, batches_per_step=2)
    )
    assert len(pairs) == 60
    assert all(pairs[i][0] == pairs[i + 1][0] for i in range(0, 60, 2))
    assert {pairs[i][0] for i in range(0, 60, 2)} == {"a", "b"}


def test_batches_reiterate_a_shuffling_dataloader():
    generator = torch.Generator().manual_seed(0)
    loader = DataLoader(list(range(10)), batch_size=4, shuffle=True, generator=generator)
    pairs = list(MultiTaskBatches({"only": loader}, make_sampler("uniform", {"only": 10}), steps=9))
    batches = [batch.tolist() for _, batch in pairs]
    assert [len(b) for b in batches] == [4, 4, 2] * 3
    epochs = [sorted(sum(batches[i : i + 3], [])) for i in range(0, 9, 3)]
    assert epochs == [list(range(10))] * 3  # every pass sees each example once
    assert len({tuple(sum(batches[i : i + 3], [])) for i in range(0, 9, 3)}) > 1  # reshuffled


def test_batches_validate_tasks_and_empty_loaders():
    sampler = make_sampler("uniform", {"a": 1, "b": 1})
    with pytest.raises(XstiltsError, match=r"no loader for \['b'\]"):
        MultiTaskBatches({"a": [1]}, sampler)
    with pytest.raises(XstiltsError, match="yields no batches"):
        list(MultiTaskBatches({"a": [1], "b": []}, sampler, steps=20))
    endless = iter(MultiTaskBatches({"a": [1], "b": [2]}, sampler))
    assert len([next(endless) for _ in range(1000)]) == 1000
