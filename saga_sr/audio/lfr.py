"""Low-frequency replacement (LFR): AudioSR's post-processing, which SAGA-SR applies after decoding.

Per channel: STFT (2048 / 512) of the LR input and of the prediction; the cutoff bin k is the LR
channel's roll-off bin (or the bin of a given cutoff in Hz); the energy ratio
r = sum_t |LR[k, t]| / sum_t |pred[k, t]|, clamped to [0.8, 1.2]; bins below k of the prediction are
replaced by LR / r (the LR scaled to the prediction's level at the cutoff); inverse STFT, same length.

The paper names the seam this leaves at bin k as a limitation. `crossfade_hz` (default 200 Hz, about
9 bins at 44.1 kHz) blends over the band just *below* k with raised-cosine amplitude weights: the LR
weight falls from 1 to 0 across [k - n, k) while the prediction's weight rises from 0 to 1, so the LR
band below k - n is kept exactly and no step is left at k. `crossfade_hz=0` reproduces AudioSR exactly.
"""

from __future__ import annotations

import numpy as np

from saga_sr.audio.spectral import HOP, N_FFT, bin_of_hz, istft, rolloff_bin_from_spectrum, stft

RATIO_CLAMP = (0.8, 1.2)
DEFAULT_CROSSFADE_HZ = 200.0


def crossfade_weights(n_bins: int, cutoff_bin: int, width_bins: int) -> np.ndarray:
    """LR weight per bin: 1 below cutoff_bin - width, raised-cosine fall to 0 at cutoff_bin, 0 above."""
    w = np.zeros(n_bins)
    start = max(cutoff_bin - width_bins, 0)
    w[:start] = 1.0
    if cutoff_bin > start:
        pos = (np.arange(start, cutoff_bin) - start + 0.5) / (cutoff_bin - start)
        w[start:cutoff_bin] = 0.5 * (1.0 + np.cos(np.pi * pos))
    return w


def _replace_channel(pred: np.ndarray, lr: np.ndarray, sr: int, cutoff_hz: float | None, crossfade_hz: float) -> np.ndarray:
    spec_pred = stft(pred, N_FFT, HOP)
    spec_lr = stft(lr, N_FFT, HOP)
    mag_lr = np.abs(spec_lr)
    k = bin_of_hz(cutoff_hz, sr) if cutoff_hz is not None else rolloff_bin_from_spectrum(mag_lr.sum(axis=-1))
    if k <= 0:
        return pred.copy()
    lr_level = mag_lr[k].sum()
    pred_level = np.abs(spec_pred[k]).sum()
    ratio = lr_level / pred_level if pred_level > 0 else (1.0 if lr_level == 0 else np.inf)
    ratio = float(np.clip(ratio, *RATIO_CLAMP))
    width = int(round(crossfade_hz * N_FFT / sr)) if crossfade_hz > 0 else 0
    w = crossfade_weights(spec_pred.shape[0], k, width)[:k, None].astype(np.float32)
    out = spec_pred.copy()
    out[:k] = spec_pred[:k] * (1.0 - w) + spec_lr[:k] * (w / ratio)
    return istft(out, pred.shape[-1], N_FFT, HOP)


def low_frequency_replace(
    pred: np.ndarray,
    lr: np.ndarray,
    sr: int,
    *,
    cutoff_hz: float | None = None,
    crossfade_hz: float = DEFAULT_CROSSFADE_HZ,
) -> np.ndarray:
    """Put the LR input's band back into a prediction (both `[C, L]` or `[L]`, same rate).

    `lr` is trimmed or zero-padded to the prediction's length; a mono `lr` serves every prediction
    channel. `cutoff_hz=None` uses each LR channel's roll-off. Returns float32 of `pred`'s shape.
    """
    p = np.asarray(pred, dtype=np.float32)
    x = np.asarray(lr, dtype=np.float32)
    squeeze = p.ndim == 1
    p2 = p[None] if squeeze else p
    x2 = x[None] if x.ndim == 1 else x
    if p2.ndim != 2 or x2.ndim != 2:
        raise ValueError(f"expected [C, L] or [L] audio, got pred {p.shape} and lr {x.shape}")
    if x2.shape[0] not in (1, p2.shape[0]):
        raise ValueError(f"lr has {x2.shape[0]} channels but the prediction has {p2.shape[0]}")
    length = p2.shape[-1]
    x2 = x2[:, :length] if x2.shape[-1] >= length else np.pad(x2, ((0, 0), (0, length - x2.shape[-1])))
    out = np.stack([
        _replace_channel(p2[c], x2[c if x2.shape[0] > 1 else 0], sr, cutoff_hz, crossfade_hz)
        for c in range(p2.shape[0])
    ])
    out = out.astype(np.float32)
    return out[0] if squeeze else out
