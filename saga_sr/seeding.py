"""The one way seeds are derived: a seed and any tuple of integers (step, rank, window, item ...) -> an
independent 63-bit seed, a torch.Generator or a numpy Generator, through numpy's SeedSequence (stable across
processes, platforms and Python's salted `hash`). Every random draw in saga_sr comes from a generator made
here, never from the global RNG, so a resumed run, another batching or another device draws the same numbers.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

__all__ = ["derive_seed", "torch_generator", "numpy_rng", "text_key"]

_U64 = 2 ** 64


def _entropy(parts) -> list[int]:
    return [int(p) % _U64 for p in parts]  # negatives wrap like a uint64; SeedSequence takes any non-negative int


def derive_seed(*parts: int) -> int:
    """A seed in [0, 2**63) for (seed, *keys); equal parts give equal seeds everywhere."""
    state = np.random.SeedSequence(_entropy(parts)).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def torch_generator(*parts: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch.Generator on `device` seeded with `derive_seed(*parts)`."""
    return torch.Generator(device=device).manual_seed(derive_seed(*parts))


def numpy_rng(*parts: int) -> np.random.Generator:
    """A numpy Generator on the SeedSequence of the parts (the same as `np.random.default_rng(list(parts))`)."""
    return np.random.default_rng(np.random.SeedSequence(_entropy(parts)))


def text_key(text: str) -> int:
    """A stable integer for a string key (a file's relative path), to use as one of the parts."""
    return zlib.crc32(text.encode("utf-8"))
