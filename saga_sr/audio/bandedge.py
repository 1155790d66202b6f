"""The band edge of a recording: the highest frequency that holds real content (pure functions).

The 98.5 % roll-off (audio.spectral) says where most of the *energy* is, which for speech, drums and most
music is far below the band the file really has. Low-frequency replacement must keep everything the input
holds, so it needs the band *edge*: the frequency where the long-term spectrum falls to the noise floor at a
cliff (an anti-alias or codec low-pass, a resampler's transition band) -- or the file's Nyquist when there is
no such cliff (a natural spectral tilt is content, not an edge).

Method, on the long-term power spectrum P (mean |STFT|^2 over frames, channels averaged):
1. S = 10 log10(P) floored 140 dB below its peak (digital silence), median-smoothed over `SMOOTH_FRACTION`
   of the bins (removes isolated tones, keeps steps).
2. M(k) = max(S[k+1:]), the loudest anything above bin k.
3. The edge is the highest bin k with S[k] >= M(k) + EDGE_DB (everything above k is clearly lower) whose
   cliff is steep: somewhere within CLIFF_OCTAVES below k the level is >= M(k) + CLIFF_DB. A gentle slope
   never qualifies (at -24 dB/octave it loses 4 dB over 1/6 octave), a low-pass / resampler cliff does.
4. No such bin: the edge is the Nyquist frequency. The result never exceeds `max_hz` (the file's own Nyquist).

Known answers (tests/test_audio_bandedge.py): white noise low-passed at f_c by a resampler or an order-8+
filter gives an edge within a few per cent above the filter's passband, below f_c + 3 %; full-band noise gives
the Nyquist; real recordings resampled down to 8-32 kHz give 0.93-1.0 x their Nyquist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage

from saga_sr.audio.spectral import N_FFT, hz_of_bin, stft

__all__ = ["BandEdge", "band_edge", "band_edge_from_power", "long_term_power"]

FLOOR_DB = 140.0  # below the spectrum's peak: digital silence
SMOOTH_FRACTION = 1 / 64  # median filter width as a fraction of the bins (16 bins at n_fft 2048)
CLIFF_DB = 30.0  # a cliff: the level falls this much ...
CLIFF_OCTAVES = 1 / 6  # ... within this much of an octave


@dataclass(frozen=True)
class BandEdge:
    """hz: the band edge; cliff: True if a cliff was found (False: the edge is the Nyquist / max_hz);
    drop_db: how far the level falls across the cliff (0 without one)."""

    hz: float
    cliff: bool
    drop_db: float


def long_term_power(wav: np.ndarray, n_fft: int = N_FFT, hop: int = N_FFT // 4) -> np.ndarray:
    """Sum over frames of |STFT|^2 of `[C, L]` or `[L]` (channels averaged first) -> [n_fft // 2 + 1]."""
    x = np.asarray(wav, dtype=np.float64)
    x = x.mean(axis=0) if x.ndim == 2 else x
    return (np.abs(stft(x, n_fft, hop)) ** 2).sum(axis=-1)


def band_edge_from_power(
    power: np.ndarray, sr: int, *, max_hz: float | None = None, n_fft: int | None = None
) -> BandEdge:
    """The band edge (see the module docstring) of a long-term power spectrum over bins 0..n_fft/2."""
    p = np.asarray(power, dtype=np.float64)
    n_fft = n_fft or 2 * (p.shape[0] - 1)
    nyquist = sr / 2 if max_hz is None else min(float(max_hz), sr / 2)
    peak = float(p.max()) if p.size else 0.0
    if not np.isfinite(peak) or peak <= 0:
        return BandEdge(hz=0.0, cliff=False, drop_db=0.0)
    s = 10 * np.log10(np.maximum(p, peak * 10 ** (-FLOOR_DB / 10)))
    width = max(3, int(p.shape[0] * SMOOTH_FRACTION) | 1)
    s = scipy.ndimage.median_filter(s, size=width, mode="nearest")
    above = np.maximum.accumulate(s[::-1])[::-1]  # above[k] = max(s[k:]), the loudest anything from k up
    k = np.arange(s.shape[0])
    lo = np.floor(k / 2**CLIFF_OCTAVES).astype(int)
    below = np.array([s[a : b + 1].max() for a, b in zip(lo, k)])  # loudest within CLIFF_OCTAVES below k
    last = min(int(np.floor(nyquist * n_fft / sr)), s.shape[0] - 1)
    ok = (below - above >= CLIFF_DB) & (k > 0) & (k <= last)
    if not ok.any():
        return BandEdge(hz=float(nyquist), cliff=False, drop_db=0.0)
    end = int(np.flatnonzero(ok)[-1])
    start = end
    while start > 1 and ok[start - 1]:
        start -= 1
    drop = float((below - above)[start : end + 1].max())
    return BandEdge(hz=min(hz_of_bin(start, sr, n_fft), nyquist), cliff=True, drop_db=drop)


def band_edge(wav: np.ndarray, sr: int, *, max_hz: float | None = None, n_fft: int = N_FFT) -> BandEdge:
    """The band edge of a clip `[C, L]` or `[L]` at `sr`, never above `max_hz` (default: its Nyquist)."""
    return band_edge_from_power(long_term_power(wav, n_fft), sr, max_hz=max_hz, n_fft=n_fft)
