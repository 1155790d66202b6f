"""A simple DSP bandwidth-extension baseline (what `evaluate` compares the model against besides the LR input).

Per channel, in the STFT domain (2048 / 512):
- level: per frame, the mean magnitude of the top octave below the cutoff, [c/2, 0.9 c) -- the top 10 %
  is skipped because the LR simulation's filters already roll off there -- taken to sit at that
  band's geometric centre f_ref;
- above the cutoff, the STFT of white noise shaped so that its magnitude continues that level with a fixed tilt of
  TILT_DB_PER_OCTAVE (-6 dB/octave, the slope of most natural spectra), |N(f, t)| = level(t) (f / f_ref)^(tilt/6.02),
  so the added band follows the LR signal's temporal envelope frame by frame;
- output = LR + inverse STFT of that band: the LR band itself is untouched.
Deterministic for a seed.
"""

from __future__ import annotations

import numpy as np

from saga_sr.audio.spectral import HOP, N_FFT, bin_of_hz, hann, hz_of_bin, istft, rolloff, stft

TILT_DB_PER_OCTAVE = -6.0
_DB_PER_OCTAVE_PER_UNIT_EXPONENT = 20.0 * np.log10(2.0)  # 6.02 dB/octave for magnitude ~ f^1


def _extension_band(x: np.ndarray, sr: int, k_cut: int, rng: np.random.Generator, tilt_db: float) -> np.ndarray:
    spec = stft(x, N_FFT, HOP)
    mag = np.abs(spec)
    lo = max(k_cut // 2, 1)
    hi = max(int(0.9 * k_cut), lo + 1)
    level = mag[lo:hi].mean(axis=0)  # [T]
    f_ref = np.sqrt(hz_of_bin(lo, sr) * hz_of_bin(hi, sr))
    freqs = np.arange(spec.shape[0]) * sr / N_FFT
    shape = np.zeros_like(freqs)
    shape[k_cut:] = (freqs[k_cut:] / f_ref) ** (tilt_db / _DB_PER_OCTAVE_PER_UNIT_EXPONENT)
    # Shape the STFT of white noise (a consistent STFT, unlike random phases, which would partly cancel in
    # the overlap-add); E|STFT| of unit white noise is sqrt(pi/4 * sum(window^2)) (Rayleigh mean).
    noise = stft(rng.standard_normal(x.shape[-1], dtype=np.float32), N_FFT, HOP)
    unit = np.sqrt(np.pi / 4.0 * float((hann(N_FFT) ** 2).sum()))
    band = noise * (shape[:, None] * level[None, :] / unit)
    return istft(band, x.shape[-1], N_FFT, HOP)


def dsp_bandwidth_extension(
    lr: np.ndarray,
    sr: int,
    cutoff_hz: float | None,
    seed: int = 0,
    *,
    tilt_db_per_octave: float = TILT_DB_PER_OCTAVE,
) -> np.ndarray:
    """Add tilted, envelope-following noise above `cutoff_hz` to `lr` (`[C, L]` or `[L]`); float32 out.

    `cutoff_hz=None` uses the LR roll-off; a cutoff at or above 0.99 x Nyquist returns the input.
    """
    x = np.asarray(lr, dtype=np.float32)
    squeeze = x.ndim == 1
    x2 = x[None] if squeeze else x
    if x2.ndim != 2:
        raise ValueError(f"expected [C, L] or [L] audio, got shape {x.shape}")
    if cutoff_hz is None:
        cutoff_hz = rolloff(x2, sr).hz
    k_cut = bin_of_hz(cutoff_hz, sr) + 1
    if cutoff_hz >= 0.99 * sr / 2 or k_cut < 4:
        out = x2
    else:
        rng = np.random.default_rng(seed)
        out = np.stack([x2[c] + _extension_band(x2[c], sr, k_cut, rng, tilt_db_per_octave) for c in range(x2.shape[0])])
    out = out.astype(np.float32)
    return out[0] if squeeze else out
