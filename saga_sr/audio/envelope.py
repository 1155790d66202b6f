"""Envelope following: the generated band above the LR's band edge re-modulated so that its energy over time
follows the LR's top octave, the band the DSP fill (audio.bwe) follows.

Why: ViSQOL compares gammatone band envelopes over 20 ms frames; a generated band at the right level but with a
smeared time envelope scores poorly, and the LR's top octave [c/2, 0.9 c) is the best evidence of the missing
band's envelope (the top 10 % is skipped because the LR filters already roll off there).

Per channel, in the STFT domain (2048 / 512), with k the bin nearest the edge c:
- top(t) = energy of the LR in bins [k/2, 0.9 k); band(t) = energy of the prediction in bins >= k;
- gain(t) = (top(t) / band(t) * sum(band) / sum(top)) ** (strength / 2), so at strength 1 the band's energy
  follows top(t) at the band's own total energy over the signal given, at 0 nothing changes, and in between
  the modulation depth in dB is scaled by the strength;
- bins >= k are multiplied by gain(t); bins below k are the prediction's own; inverse STFT, same length.
The prediction's spectral shape within the band is kept; only its time envelope moves.
"""

from __future__ import annotations

import numpy as np

from saga_sr.audio.spectral import HOP, N_FFT, istft, stft

__all__ = ["follow_top_octave_envelope"]

_EPS = 1e-20
_SILENT_TOP = 1e-12  # summed top-octave energy below which the LR gives no envelope to follow


def _band_gain(pred_spec: np.ndarray, lr_spec: np.ndarray, k: int, strength: float) -> np.ndarray | None:
    """Per-frame gain [T] for bins >= k, or None when the LR's top octave is silent."""
    top = (np.abs(lr_spec[k // 2 : int(0.9 * k)]) ** 2).sum(axis=0) + _EPS
    if top.sum() < _SILENT_TOP:
        return None
    band = (np.abs(pred_spec[k:]) ** 2).sum(axis=0) + _EPS
    return (top / band * (band.sum() / top.sum())) ** (0.5 * strength)


def follow_top_octave_envelope(
    pred: np.ndarray, lr: np.ndarray, cutoff_hz: float, sr: int, strength: float
) -> np.ndarray:
    """`pred` ([C, L] or [L]) with its band above `cutoff_hz` following the top-octave envelope of `lr` (same
    shape and rate) at `strength` in [0, 1]; float32 out, inputs untouched. Strength 0, an edge at or above
    0.99 x Nyquist, or an LR whose top octave is silent returns the prediction unchanged."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    p, x = np.asarray(pred, dtype=np.float32), np.asarray(lr, dtype=np.float32)
    if p.shape != x.shape or p.ndim not in (1, 2):
        raise ValueError(f"pred and lr must have the same [C, L] or [L] shape, got {p.shape} and {x.shape}")
    k = round(cutoff_hz * N_FFT / sr)
    if strength == 0.0 or cutoff_hz >= 0.99 * sr / 2 or k < 4:
        return p.copy()
    squeeze = p.ndim == 1
    p2, x2 = (p[None], x[None]) if squeeze else (p, x)
    out = np.empty_like(p2)
    for c in range(p2.shape[0]):
        spec = stft(p2[c].astype(np.float64), N_FFT, HOP)
        gain = _band_gain(spec, stft(x2[c].astype(np.float64), N_FFT, HOP), k, strength)
        if gain is None:
            out[c] = p2[c]
            continue
        spec[k:] *= gain
        out[c] = istft(spec, p2.shape[-1], N_FFT, HOP)
    return out[0] if squeeze else out
