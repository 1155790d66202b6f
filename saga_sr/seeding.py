"""The one way seeds are derived: (seed, named stream, keys ...) -> an independent 63-bit seed, a
torch.Generator or a numpy Generator, through numpy's SeedSequence (stable across processes, platforms and
Python's salted `hash`). Every random draw in saga_sr comes from a generator made here, never from the global
RNG, so a resumed run, another batching or another device draws the same numbers.

Each use of randomness has its own `Stream`, and the number of keys enters the hash, so no two streams, and no
two key tuples of one stream, share a seed. Never derive one seed from another by an offset (`seed + 1` is
another seed's draw).
"""

from __future__ import annotations

import zlib
from enum import IntEnum

import numpy as np
import torch

__all__ = ["Stream", "derive_seed", "torch_generator", "numpy_rng", "text_key"]

_U64 = 2**64


class Stream(IntEnum):
    """The random streams of saga_sr, with the keys each is derived with after the seed."""

    NOISE = 1  # upsample: a window's initial noise (window)
    POSTERIOR = 2  # upsample: a window's LR latent posterior draw (window)
    PREFILL = 3  # upsample: a window's DSP prefill noise (window)
    TRAIN_STEP = 4  # training: a batch's t, posteriors, prefill, flow noise and dropouts (rank, step, batch)
    VAL_LOSS = 5  # validation: the same draws for the fixed-t flow loss (rank, batch)
    VAL_ENCODE = 6  # validation sampling: posteriors and prefill of the encoded batch (rank, batch)
    VAL_NOISE = 7  # validation sampling: the initial noise (rank, batch)
    DATA_ORDER = 8  # the training loader's shuffle (epoch)
    CROP = 9  # an audio item's crop, LR filter and target low-pass (index[, epoch] or index, worker, n)
    LATENT_CROP = 10  # a pre-encoded item's crop and LR version (epoch, index)
    LR_SIM = 11  # prepare: a file's LR versions (index)
    EVAL_CLIP = 12  # evaluate: a clip's LR simulation and DSP baseline (path key, cutoff in 0.1 Hz)
    BENCH = 13  # benchmarks' synthetic inputs (no key)


def _entropy(seed: int, stream: Stream, keys) -> list[int]:
    if not isinstance(stream, Stream):
        raise TypeError(f"a seed is derived for a named Stream, got {stream!r}")
    # the key count is part of the hash: SeedSequence alone gives [a, b] and [a, b, 0] the same state
    parts = (seed, int(stream), len(keys), *keys)
    return [int(p) % _U64 for p in parts]  # negatives wrap like a uint64; SeedSequence takes any non-negative int


def derive_seed(seed: int, stream: Stream, *keys: int) -> int:
    """A seed in [0, 2**63) for (seed, stream, *keys); equal arguments give equal seeds everywhere."""
    state = np.random.SeedSequence(_entropy(seed, stream, keys)).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def torch_generator(seed: int, stream: Stream, *keys: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch.Generator on `device` seeded with `derive_seed(seed, stream, *keys)`."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, stream, *keys))


def numpy_rng(seed: int, stream: Stream, *keys: int) -> np.random.Generator:
    """A numpy Generator on the SeedSequence of (seed, stream, *keys)."""
    return np.random.default_rng(np.random.SeedSequence(_entropy(seed, stream, keys)))


def text_key(text: str) -> int:
    """A stable integer for a string key (a file's relative path), to use as one of the parts."""
    return zlib.crc32(text.encode("utf-8"))
