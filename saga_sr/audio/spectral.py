"""STFT helpers (librosa-style: centred, zero-padded, periodic Hann) and the paper's spectral roll-off.

Roll-off (SAGA-SR paper and its code's `get_cutoff_ratio`): mix stereo to mono, STFT (Hann 2048, hop 512),
magnitude summed over time, cumulative sum over frequency; the roll-off bin is the highest bin whose
cumulative magnitude is still below 98.5 % of the total (one bin below librosa's first bin at or above it).
Normalised = bin / 1025 in [0, 1); Hz = bin * sr / 2048. Silence gives bin 0.

Note the magnitude (not power) sum: for white noise band-limited at c the 98.5 % point is near 0.985 * c.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft

N_FFT = 2048
HOP = 512
ROLLOFF_PERCENT = 0.985


@lru_cache(maxsize=8)
def hann(n: int) -> np.ndarray:
    """Periodic Hann window (scipy.signal.get_window('hann', n), which librosa uses)."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float64)


def n_frames(length: int, n_fft: int = N_FFT, hop: int = HOP) -> int:
    """Frames of a centred STFT of `length` samples."""
    return 1 + length // hop


def stft(x: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Centred STFT (zero padding of n_fft // 2 each side) of `[..., L]` -> complex `[..., n_fft//2+1, T]`.

    float32 input is transformed in single precision (complex64: about twice as fast), anything else in double.
    """
    x = np.asarray(x)
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    x = x.astype(dtype, copy=False)
    pad = [(0, 0)] * (x.ndim - 1) + [(n_fft // 2, n_fft // 2)]
    xp = np.pad(x, pad)
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft, axis=-1)[..., ::hop, :]
    frames = frames[..., : n_frames(x.shape[-1], n_fft, hop), :]
    spec = scipy.fft.rfft(frames * hann(n_fft).astype(dtype), axis=-1)
    return np.swapaxes(spec, -1, -2)


def istft(spec: np.ndarray, length: int, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Inverse of `stft` (windowed overlap-add, divided by the summed squared window) -> `[..., length]`."""
    frames = scipy.fft.irfft(np.swapaxes(spec, -1, -2), n=n_fft, axis=-1)
    frames = frames * hann(n_fft).astype(frames.dtype)
    t = frames.shape[-2]
    total = n_fft + hop * (t - 1)
    out = np.zeros(frames.shape[:-2] + (total,), dtype=frames.dtype)
    norm = np.zeros(total)
    win_sq = hann(n_fft) ** 2
    for i in range(t):
        out[..., i * hop : i * hop + n_fft] += frames[..., i, :]
        norm[i * hop : i * hop + n_fft] += win_sq
    out /= np.where(norm > 1e-10, norm, 1.0)
    out = out[..., n_fft // 2 : n_fft // 2 + length]
    if out.shape[-1] < length:
        out = np.pad(out, [(0, 0)] * (out.ndim - 1) + [(0, length - out.shape[-1])])
    return out


def magnitude(x: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """|STFT| of `[..., L]`."""
    return np.abs(stft(x, n_fft, hop))


def bin_of_hz(hz: float, sr: int, n_fft: int = N_FFT) -> int:
    """The STFT bin containing `hz` (floor), clamped to the valid bins."""
    return int(np.clip(np.floor(hz * n_fft / sr), 0, n_fft // 2))


def hz_of_bin(k: int | float, sr: int, n_fft: int = N_FFT) -> float:
    return float(k) * sr / n_fft


def hz_to_normalized(hz: float, sr: int, n_fft: int = N_FFT) -> float:
    """A roll-off in Hz as the normalised conditioning value bin / (n_fft // 2 + 1) (fractional bins kept)."""
    return float(hz) * n_fft / (sr * (n_fft // 2 + 1))


def normalized_to_hz(value: float, sr: int, n_fft: int = N_FFT) -> float:
    return float(value) * (n_fft // 2 + 1) * sr / n_fft


@dataclass(frozen=True)
class Rolloff:
    """One clip's spectral roll-off: `normalized` = bin / 1025 (the conditioning value), `hz`, `bin`."""

    normalized: float
    hz: float
    bin: int


def rolloff_bin_from_spectrum(mag_sum: np.ndarray, percent: float = ROLLOFF_PERCENT) -> int:
    """Highest bin whose cumulative magnitude is below `percent` of the total (0 for silence)."""
    cum = np.cumsum(np.asarray(mag_sum, dtype=np.float64))
    total = cum[-1]
    if not np.isfinite(total) or total <= 0.0:
        return 0
    first_at_or_above = int(np.count_nonzero(cum < percent * total))
    return max(first_at_or_above - 1, 0)


def rolloff(
    wav: np.ndarray, sr: int, percent: float = ROLLOFF_PERCENT, *, n_fft: int = N_FFT, hop: int = HOP
) -> Rolloff:
    """Spectral roll-off of a clip (`[C, L]` or `[L]`; channels averaged to mono first, as the paper's code)."""
    x = np.asarray(wav)
    x = x.astype(np.float32 if x.dtype == np.float32 else np.float64, copy=False)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.ndim != 1 or x.shape[0] == 0:
        raise ValueError(f"rolloff expects [C, L] or [L] audio with L > 0, got shape {np.shape(wav)}")
    x = np.nan_to_num(x)
    k = rolloff_bin_from_spectrum(magnitude(x, n_fft, hop).sum(axis=-1), percent)
    return Rolloff(normalized=k / (n_fft // 2 + 1), hz=hz_of_bin(k, sr, n_fft), bin=k)
