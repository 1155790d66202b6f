"""Low-resolution (LR) simulation for training and test sets, as the SAGA-SR authors' code does it.

1. cutoff: integer Hz uniform in `cutoff_range` (default [2000, 16000], both ends included), then capped
   at 0.94 x the HR clip's own roll-off frequency and floored at 2000 Hz (so a dull clip is not "degraded"
   above where it has content);
2. a low-pass drawn uniformly from cheby1 (0.1 dB), butter, bessel, ellip (0.1 dB / 60 dB), order 2..10,
   applied zero-phase (sosfiltfilt);
3. resampled to 2 x cutoff and back to the input rate (soxr HQ; the authors use resample_poly, which is
   equivalent here but very slow for co-prime rates), so the LR input is truly band-limited;
4. trimmed or zero-padded back to the input length.

An explicit `cutoff` is used as given (no roll-off cap). Deterministic for a seed or generator.
`filter_type="resample"` skips step 2: only the resampler's own anti-aliasing filter acts, which is what a
real low-rate file is (a 16 kHz recording = cutoff 8000, 22.05 kHz = cutoff 11025).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from saga_sr.audio.filters import FILTER_TYPES, ORDER_RANGE, lowpass_sos, zero_phase_lowpass
from saga_sr.audio.resample import resample
from saga_sr.audio.spectral import rolloff

CUTOFF_RANGE = (2000, 16000)
MIN_CUTOFF_HZ = 2000.0
ROLLOFF_CAP = 0.94
RESAMPLE_ONLY = "resample"  # filter_type of a real low-rate file: no extra low-pass


@dataclass(frozen=True)
class LRResult:
    """Simulated LR audio (`[C, L]` float32, input rate and length) and how it was made."""

    audio: np.ndarray
    cutoff_hz: float
    filter_type: str
    order: int


def draw_cutoff(
    rng: np.random.Generator, cutoff_range: tuple[float, float] = CUTOFF_RANGE, hr_rolloff_hz: float | None = None
) -> float:
    """Integer cutoff uniform in `cutoff_range`, capped at 0.94 x `hr_rolloff_hz`, never below 2 kHz."""
    lo, hi = int(cutoff_range[0]), int(cutoff_range[1])
    if lo > hi:
        raise ValueError(f"cutoff_range {cutoff_range} is empty")
    cutoff = float(rng.integers(lo, hi + 1))
    if hr_rolloff_hz is not None:
        cutoff = min(cutoff, ROLLOFF_CAP * float(hr_rolloff_hz))
    return max(cutoff, MIN_CUTOFF_HZ)


def _band_limit(x: np.ndarray, sr: int, cutoff_hz: float) -> np.ndarray:
    """Resample `[C, L]` to 2 x cutoff and back to `sr`, keeping the length."""
    low_sr = 2.0 * cutoff_hz
    if low_sr >= sr:
        return x
    up = resample(resample(x, sr, low_sr), low_sr, sr)
    length = x.shape[-1]
    if up.shape[-1] >= length:
        return up[:, :length]
    return np.pad(up, ((0, 0), (0, length - up.shape[-1])))


def simulate_lr(
    wav: np.ndarray,
    sr: int,
    *,
    seed: int | None = None,
    rng: np.random.Generator | None = None,
    cutoff: float | None = None,
    filter_type: str | None = None,
    order: int | None = None,
    cutoff_range: tuple[float, float] = CUTOFF_RANGE,
    hr_rolloff_hz: float | None = None,
    cap_to_rolloff: bool = True,
) -> LRResult:
    """Degrade HR `wav` (`[C, L]` or `[L]`) to a random (or the given) band limit; see the module docstring.

    Give either `seed` or `rng` (neither: seed 0). `hr_rolloff_hz=None` with `cap_to_rolloff=True`
    measures the HR roll-off here; pass it when it is known (dataset metadata) to save an STFT.
    """
    if rng is None:
        rng = np.random.default_rng(0 if seed is None else seed)
    x = np.asarray(wav, dtype=np.float64)
    squeeze = x.ndim == 1
    if squeeze:
        x = x[None]
    if x.ndim != 2 or x.shape[-1] < 2:
        raise ValueError(f"simulate_lr expects [C, L] audio with L >= 2, got shape {np.shape(wav)}")
    nyquist = sr / 2.0
    if cutoff is None:
        if cap_to_rolloff and hr_rolloff_hz is None:
            hr_rolloff_hz = rolloff(np.asarray(wav), sr).hz  # float32 input -> single-precision STFT
        cutoff = draw_cutoff(rng, cutoff_range, hr_rolloff_hz if cap_to_rolloff else None)
        cutoff = min(cutoff, 0.95 * nyquist)
    elif not 0.0 < float(cutoff) < nyquist:
        raise ValueError(f"cutoff {cutoff} Hz must lie in (0, {nyquist}) Hz at {sr} Hz")
    if filter_type is None:
        filter_type = FILTER_TYPES[int(rng.integers(len(FILTER_TYPES)))]
    if order is None:
        order = int(rng.integers(ORDER_RANGE[0], ORDER_RANGE[1] + 1))
    x = np.nan_to_num(x)
    if filter_type != RESAMPLE_ONLY:
        x = zero_phase_lowpass(x, lowpass_sos(filter_type, int(order), float(cutoff), int(sr)))
    y = _band_limit(x, int(sr), float(cutoff))
    y = y.astype(np.float32)
    return LRResult(audio=y[0] if squeeze else y, cutoff_hz=float(cutoff), filter_type=filter_type, order=int(order))
