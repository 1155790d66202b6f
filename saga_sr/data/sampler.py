"""EpochSampler: the training loader's order and per-item draws as a pure function of (seed, epoch).

Yields `(index, epoch)` keys in an order shuffled by a generator seeded from (seed, epoch); the dataset
derives each item's crop and LR filter from (seed, index, epoch). Lightning calls `set_epoch` at the start of
every epoch, also on a resume and through its DistributedSamplerWrapper, so a resumed run sees exactly the
batches the uninterrupted run saw (no global RNG, no per-worker state).
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler

from saga_sr.seeding import Stream, torch_generator

__all__ = ["EpochSampler"]


class EpochSampler(Sampler):
    """A shuffled permutation of range(n) per epoch, as (index, epoch) keys for SAGASRDataset."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed, self.epoch = int(n), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = torch.randperm(self.n, generator=torch_generator(self.seed, Stream.DATA_ORDER, self.epoch)).tolist()
        return iter([(i, self.epoch) for i in order])
