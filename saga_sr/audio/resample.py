"""The one resampler: soxr high quality (steep linear-phase anti-alias filter), on [C, L] or [L] arrays, or on a
stream of [C, n] blocks (bit-identical to resampling the whole signal)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import soxr

__all__ = ["resample", "resample_blocks"]


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """x [C, L] or [L] at `sr_in` -> the same layout at `sr_out` (soxr HQ; float32 stays float32). Same rate:
    returned as is."""
    if sr_in == sr_out:
        return x
    x = np.asarray(x)
    if x.ndim == 1:
        return soxr.resample(np.ascontiguousarray(x), sr_in, sr_out, quality="HQ")
    return np.ascontiguousarray(soxr.resample(np.ascontiguousarray(x.T), sr_in, sr_out, quality="HQ").T)


def resample_blocks(blocks: Iterable[np.ndarray], sr_in: int, sr_out: int, channels: int) -> Iterator[np.ndarray]:
    """Resample a stream of `[C, n]` blocks with soxr's stream API (HQ): the concatenated output is
    bit-identical to `soxr.resample` of the whole signal (and `resample` here)."""
    if sr_in == sr_out:
        yield from blocks
        return
    stream = soxr.ResampleStream(sr_in, sr_out, channels, dtype="float32", quality="HQ")
    for block in blocks:
        yield np.ascontiguousarray(stream.resample_chunk(np.ascontiguousarray(block.T, dtype=np.float32)).T)
    yield np.ascontiguousarray(stream.resample_chunk(np.zeros((0, channels), np.float32), last=True).T)
