"""Length-grouped training batches whose position can be saved and restored exactly.

The order of an epoch is transformers' `LengthGroupedSampler` (megabatches of similar lengths, little
padding) driven by one generator seeded with the stream's seed, epoch after epoch, so a run that never
stops sees exactly the batches it always saw. A position is (epoch, batches already taken in it): to
resume, the generator is replayed through the earlier epochs (a permutation each, cheap) and the epoch's
first batches are skipped by index, before any feature is collated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch.utils.data import DataLoader
from transformers.trainer_pt_utils import LengthGroupedSampler


class ResumableBatches:
    """Re-iterable batches of `features`; `position` / `restore` save and set where iteration stands."""

    def __init__(
        self,
        features: list[dict],
        batch_size: int,
        lengths: list[int],
        seed: int,
        collate: Callable,
        pin_memory: bool = False,
    ):
        self.features, self.batch_size, self.lengths = features, batch_size, lengths
        self.seed, self.collate, self.pin_memory = seed, collate, pin_memory
        self.epoch, self.taken = 0, 0  # the epoch being read and how many of its batches were handed out

    def __len__(self) -> int:
        return math.ceil(len(self.features) / self.batch_size)

    def _order(self, epoch: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed)
        sampler = LengthGroupedSampler(self.batch_size, lengths=self.lengths, generator=generator)
        for _ in range(epoch):  # replay the generator through the earlier epochs
            list(sampler)
        return list(sampler)

    def __iter__(self) -> Iterator[dict]:
        """The rest of the current epoch, from where the last iteration (or `restore`) left it; the next
        iteration starts the following epoch."""
        order = self._order(self.epoch)
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        # Opening a DataLoader draws a seed from the global torch RNG (which dropout uses) unless it has a
        # generator of its own. An epoch continued after a restore was opened before the checkpoint, so its
        # draw is already in the restored RNG state: it must not draw again.
        loader = DataLoader(
            self.features,
            batch_sampler=batches[self.taken :],
            collate_fn=self.collate,
            pin_memory=self.pin_memory,
            generator=torch.Generator() if self.taken else None,
        )
        for batch in loader:
            self.taken += 1
            yield batch
        self.epoch, self.taken = self.epoch + 1, 0

    def position(self) -> dict[str, int]:
        return {"epoch": self.epoch, "taken": self.taken}

    def restore(self, position: dict[str, int]) -> None:
        self.epoch, self.taken = int(position["epoch"]), int(position["taken"])
        if self.taken >= len(self):  # the epoch's last batch was the last one handed out
            self.epoch, self.taken = self.epoch + 1, 0
