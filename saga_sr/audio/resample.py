"""The one resampler: soxr high quality (steep linear-phase anti-alias filter), on [C, L] or [L] arrays."""

from __future__ import annotations

import numpy as np
import soxr

__all__ = ["resample"]


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """x [C, L] or [L] at `sr_in` -> the same layout at `sr_out` (soxr HQ; float32 stays float32). Same rate:
    returned as is."""
    if sr_in == sr_out:
        return x
    x = np.asarray(x)
    if x.ndim == 1:
        return soxr.resample(np.ascontiguousarray(x), sr_in, sr_out, quality="HQ")
    return np.ascontiguousarray(soxr.resample(np.ascontiguousarray(x.T), sr_in, sr_out, quality="HQ").T)
