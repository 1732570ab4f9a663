"""Which task the next multi-task training step draws from: uniform, proportional or temperature sampling.

Phang et al. (2020) train several intermediate tasks at once, sampling a task for each step in proportion
to its training-set size; jiant also offers uniform sampling and temperature sampling, where task i gets
p_i ~ n_i^(1/T) (T = 1 is proportional, T -> inf uniform), optionally with n_i capped first.

A sampler only draws task names; `MultiTaskBatches` turns the draws into (task, batch) pairs by cycling
each task's loader. All draws come from one seeded `numpy.random.Generator`, so a seed fixes the sequence
(and every process of a distributed run draws the same tasks in the same order).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import numpy as np

from xstilts.errors import XstiltsError, unknown_name


class TaskSampler:
    """Base class: subclasses say how each task is weighted (`_weights`); drawing is shared."""

    name = "base"

    def __init__(self, sizes: Mapping[str, int], seed: int = 0):
        if not sizes:
            raise XstiltsError("multi-task sampling needs at least one task")
        for task, size in sizes.items():
            if int(size) != size or size < 1:
                raise XstiltsError(f"task {task!r} has {size} training examples; every task needs at least 1")
        self.sizes = {task: int(size) for task, size in sizes.items()}
        self.tasks = list(self.sizes)
        self.seed = seed
        weights = np.asarray(self._weights(np.array(list(self.sizes.values()), dtype=np.float64)))
        self._p = weights / weights.sum()
        self._cumulative = np.cumsum(self._p)
        self._cumulative[-1] = 1.0  # no draw may fall past the last task through rounding
        self._rng = np.random.default_rng(seed)

    def _weights(self, sizes: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def probabilities(self) -> dict[str, float]:
        """Task name -> probability of being drawn at each step (sums to 1)."""
        return {task: float(p) for task, p in zip(self.tasks, self._p, strict=True)}

    def next_task(self) -> str:
        index = int(np.searchsorted(self._cumulative, self._rng.random(), side="right"))
        return self.tasks[min(index, len(self.tasks) - 1)]

    def state_dict(self) -> dict:
        return {"rng": self._rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self._rng.bit_generator.state = state["rng"]

    def sample(self, count: int) -> list[str]:
        """The next `count` draws (the same tasks `count` calls of `next_task` would give)."""
        return [self.next_task() for _ in range(count)]

    def __iter__(self) -> Iterator[str]:
        while True:
            yield self.next_task()

    def __repr__(self) -> str:
        shown = ", ".join(f"{task}={p:.3f}" for task, p in self.probabilities.items())
        return f"{type(self).__name__}({shown}; seed={self.seed})"


class UniformSampler(TaskSampler):
    """Every task equally often, whatever its size."""

    name = "uniform"

    def _weights(self, sizes: np.ndarray) -> np.ndarray:
        return np.ones_like(sizes)


class ProportionalSampler(TaskSampler):
    """Tasks in proportion to their number of training examples (Phang et al. 2020)."""

    name = "proportional"

    def _weights(self, sizes: np.ndarray) -> np.ndarray:
        return sizes


class TemperatureSampler(TaskSampler):
    """p_i ~ min(n_i, cap)^(1/temperature): flattens the size distribution as the temperature grows.

    temperature 1 is proportional sampling and `math.inf` uniform; `cap` (jiant's examples_cap) first
    limits how large a task may count.
    """

    name = "temperature"

    def __init__(self, sizes: Mapping[str, int], temperature: float, seed: int = 0, cap: int | None = None):
        if not temperature > 0:  # also rejects NaN
            raise XstiltsError(f"the sampling temperature must be positive, not {temperature}")
        if cap is not None and cap < 1:
            raise XstiltsError(f"the examples cap must be at least 1, not {cap}")
        self.temperature = float(temperature)
        self.cap = cap
        super().__init__(sizes, seed)

    def _weights(self, sizes: np.ndarray) -> np.ndarray:
        if self.cap is not None:
            sizes = np.minimum(sizes, self.cap)
        # Normalising by the largest size first keeps n^(1/T) finite for any size and small T.
        return (sizes / sizes.max()) ** (1.0 / self.temperature)


SAMPLERS: dict[str, type[TaskSampler]] = {
    cls.name: cls for cls in (UniformSampler, ProportionalSampler, TemperatureSampler)
}


def make_sampler(
    name: str,
    sizes: Mapping[str, int],
    seed: int = 0,
    *,
    temperature: float | None = None,
    cap: int | None = None,
) -> TaskSampler:
    """The sampler `name` over tasks of the given training-set `sizes`.

    `temperature` (required) and `cap` (optional) belong to temperature sampling; giving them to another
    sampler is an error rather than being silently ignored.
    """
    if name not in SAMPLERS:
        raise unknown_name("task sampler", name, SAMPLERS)
    if name == "temperature":
        if temperature is None:
            raise XstiltsError("temperature sampling needs a temperature (e.g. 2.0; 1.0 is proportional)")
        return TemperatureSampler(sizes, temperature, seed=seed, cap=cap)
    extra = [option for option, value in (("temperature", temperature), ("cap", cap)) if value is not None]
    if extra:
        raise XstiltsError(f"{' and '.join(extra)} only apply to temperature sampling, not {name!r}")
    return SAMPLERS[name](sizes, seed=seed)


class MultiTaskBatches:
    """(task, batch) pairs: a task drawn by `sampler`, then its loader's next batch(es).

    Each loader (a DataLoader or any re-iterable) is cycled: when one is exhausted it is iterated anew,
    which reshuffles a shuffling DataLoader. `steps` draws are made (None: forever), and each draw yields
    `batches_per_step` consecutive batches of the drawn task, so with gradient accumulation every optimizer
    step sees a single task (as in jiant). `epochs` counts each task's completed passes over its loader.
    """

    def __init__(
        self,
        loaders: Mapping[str, Iterable],
        sampler: TaskSampler,
        steps: int | None = None,
        batches_per_step: int = 1,
    ):
        missing = sorted(set(sampler.tasks) - set(loaders))
        unused = sorted(set(loaders) - set(sampler.tasks))
        if missing or unused:
            raise XstiltsError(
                f"the tasks of the loaders and of the sampler differ: no loader for {missing or 'none'}, "
                f"never sampled: {unused or 'none'}"
            )
        if steps is not None and steps < 0:
            raise XstiltsError(f"steps must not be negative, not {steps}")
        if batches_per_step < 1:
            raise XstiltsError(f"batches_per_step must be at least 1, not {batches_per_step}")
        self.loaders = dict(loaders)
        self.sampler = sampler
        self.steps = steps
        self.batches_per_step = batches_per_step
        self.epochs = dict.fromkeys(self.loaders, 0)
        self.draws = dict.fromkeys(self.loaders, 0)
        self._iterators: dict[str, Iterator] = {}

    def __len__(self) -> int:
        if self.steps is None:
            raise TypeError("an endless MultiTaskBatches (steps=None) has no length")
        return self.steps * self.batches_per_step

    def _next_batch(self, task: str):
        iterator = self._iterators.get(task)
        if iterator is not None:
            try:
                return next(iterator)
            except StopIteration:
                self.epochs[task] += 1
        iterator = self._iterators[task] = iter(self.loaders[task])
        try:
            return next(iterator)
        except StopIteration:
            raise XstiltsError(f"the loader of task {task!r} yields no batches") from None

    def next_draw(self) -> tuple[str, list]:
        """One draw: a task and its next `batches_per_step` batches (one optimizer step's micro-batches)."""
        task = self.sampler.next_task()
        self.draws[task] += 1
        return task, [self._next_batch(task) for _ in range(self.batches_per_step)]

    def __iter__(self) -> Iterator[tuple[str, object]]:
        while self.steps is None or sum(self.draws.values()) < self.steps:
            task, batches = self.next_draw()
            for batch in batches:
                yield task, batch

    def state_dict(self) -> dict:
        """Where the draws stand: the sampler's generator, counts, and each loader's position (loaders
        that can tell one, like `data.loaders.ResumableBatches`)."""
        return {
            "sampler": self.sampler.state_dict(),
            "draws": dict(self.draws),
            "epochs": dict(self.epochs),
            "positions": {
                task: loader.position()
                for task, loader in self.loaders.items()
                if hasattr(loader, "position")
            },
        }

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self.draws, self.epochs = dict(state["draws"]), dict(state["epochs"])
        for task, position in state["positions"].items():
            self.loaders[task].restore(position)
        self._iterators.clear()  # each loader resumes from its restored position


__all__ = [
    "SAMPLERS",
    "MultiTaskBatches",
    "ProportionalSampler",
    "TaskSampler",
    "TemperatureSampler",
    "UniformSampler",
    "make_sampler",
]
