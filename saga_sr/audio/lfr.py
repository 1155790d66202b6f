"""Low-frequency replacement (LFR): AudioSR's post-processing, which SAGA-SR applies after decoding.

Per channel: STFT (2048 / 512) of the LR input and of the prediction; the cutoff bin k is the LR
channel's roll-off bin (or the bin of a given cutoff in Hz -- the upsampler gives the input's band edge);
the energy ratio r = sum_t |LR[b, t]| / sum_t |pred[b, t]| at the seam bin b, clamped to [0.8, 1.2];
bins below k of the prediction are replaced by the LR; inverse STFT, same length.

Level matching (`scale`): AudioSR divides the LR by r (`scale="input"`: the real input band changes level
by up to +-1.9 dB). By default (`scale="prediction"`) the prediction is multiplied by r instead: the same
spectrum up to one overall gain, but the input band is kept exactly as recorded.

The paper names the seam this leaves at bin k as a limitation. `crossfade_hz` (default 200 Hz, about
9 bins at 44.1 kHz) blends over the band just *below* k with raised-cosine amplitude weights: the LR
weight falls from 1 to 0 across [k - n, k) while the prediction's weight rises from 0 to 1, so the LR
band below k - n is kept exactly and no step is left at k. The seam bin b is k - n, the last bin where the
LR is whole (k without a crossfade). `crossfade_hz=0, scale="input"` reproduces AudioSR exactly.
A cutoff given at the Nyquist (a full-band input at the output rate) returns the LR itself: no crossfade then
lets the prediction into the input's top bins.
"""

from __future__ import annotations

import numpy as np

from saga_sr.audio.spectral import HOP, N_FFT, bin_of_hz, istft, rolloff_bin_from_spectrum, stft

RATIO_CLAMP = (0.8, 1.2)
DEFAULT_CROSSFADE_HZ = 200.0


def edge_crossfade_hz(edge_hz: float) -> float:
    """The crossfade for a cutoff at a band edge: DEFAULT_CROSSFADE_HZ, but at most 4 % of the edge (1/17
    octave), so that with edges found at 0.95-0.98 x Nyquist the band up to 0.9 x Nyquist is kept exactly
    at every input rate down to 4 kHz (200 Hz would reach below it under a 5 kHz edge)."""
    return min(DEFAULT_CROSSFADE_HZ, 0.04 * float(edge_hz))


def crossfade_weights(n_bins: int, cutoff_bin: int, width_bins: int) -> np.ndarray:
    """LR weight per bin: 1 below cutoff_bin - width, raised-cosine fall to 0 at cutoff_bin, 0 above."""
    w = np.zeros(n_bins)
    start = max(cutoff_bin - width_bins, 0)
    w[:start] = 1.0
    if cutoff_bin > start:
        pos = (np.arange(start, cutoff_bin) - start + 0.5) / (cutoff_bin - start)
        w[start:cutoff_bin] = 0.5 * (1.0 + np.cos(np.pi * pos))
    return w


def _replace_channel(
    pred: np.ndarray, lr: np.ndarray, sr: int, cutoff_hz: float | None, crossfade_hz: float, scale: str
) -> np.ndarray:
    spec_pred = stft(pred, N_FFT, HOP)
    spec_lr = stft(lr, N_FFT, HOP)
    mag_lr = np.abs(spec_lr)
    k = bin_of_hz(cutoff_hz, sr) if cutoff_hz is not None else rolloff_bin_from_spectrum(mag_lr.sum(axis=-1))
    if k <= 0:
        return pred.copy()
    if cutoff_hz is not None and k >= spec_pred.shape[0] - 1:  # a band to the Nyquist: nothing to generate
        return lr.copy()
    width = int(round(crossfade_hz * N_FFT / sr)) if crossfade_hz > 0 else 0
    seam = max(k - width, 0)
    lr_level = mag_lr[seam].sum()
    pred_level = np.abs(spec_pred[seam]).sum()
    ratio = lr_level / pred_level if pred_level > 0 else (1.0 if lr_level == 0 else np.inf)
    ratio = float(np.clip(ratio, *RATIO_CLAMP))
    w = crossfade_weights(spec_pred.shape[0], k, width)[:k, None].astype(np.float32)
    out = spec_pred.copy()
    if scale == "input":  # AudioSR: the LR brought to the prediction's level
        out[:k] = spec_pred[:k] * (1.0 - w) + spec_lr[:k] * (w / ratio)
    else:  # the prediction brought to the LR's level; the LR band untouched
        out *= ratio
        out[:k] = out[:k] * (1.0 - w) + spec_lr[:k] * w
    return istft(out, pred.shape[-1], N_FFT, HOP)


def low_frequency_replace(
    pred: np.ndarray,
    lr: np.ndarray,
    sr: int,
    *,
    cutoff_hz: float | None = None,
    crossfade_hz: float = DEFAULT_CROSSFADE_HZ,
    scale: str = "prediction",
) -> np.ndarray:
    """Put the LR input's band back into a prediction (both `[C, L]` or `[L]`, same rate).

    `lr` is trimmed or zero-padded to the prediction's length; a mono `lr` serves every prediction
    channel. `cutoff_hz=None` uses each LR channel's roll-off. `scale`: "prediction" (default: the LR band
    kept exactly) or "input" (AudioSR). Returns float32 of `pred`'s shape.
    """
    if scale not in ("prediction", "input"):
        raise ValueError(f"scale must be 'prediction' or 'input', got {scale!r}")
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
    out = np.stack(
        [
            _replace_channel(p2[c], x2[c if x2.shape[0] > 1 else 0], sr, cutoff_hz, crossfade_hz, scale)
            for c in range(p2.shape[0])
        ]
    )
    out = out.astype(np.float32)
    return out[0] if squeeze else out


TARGET_TAPER_FRACTION = 0.03  # the band limit's raised-cosine taper: 3 % of the target below it


def limit_to_target(pred: np.ndarray, sr: int, target_hz: float) -> np.ndarray:
    """The other end of the band: remove what a prediction (`[C, L]` or `[L]`) holds above `target_hz`, with a
    raised-cosine taper over the 3 % below it (STFT 2048 / 512, as LFR). A target at or above the Nyquist
    frequency returns the prediction unchanged.

    Why: the target roll-off means "content up to this frequency"; a small model follows its target roll-off
    tokens only weakly, so the upsampler enforces the band the user asked for after decoding."""
    p = np.asarray(pred, dtype=np.float32)
    if target_hz >= sr / 2:
        return p
    p2 = p[None] if p.ndim == 1 else p
    k = bin_of_hz(target_hz, sr)
    width = max(1, int(round(TARGET_TAPER_FRACTION * target_hz * N_FFT / sr)))
    out = []
    for ch in p2:
        spec = stft(ch, N_FFT, HOP)
        spec *= crossfade_weights(spec.shape[0], k, width)[:, None].astype(np.float32)
        out.append(istft(spec, ch.shape[-1], N_FFT, HOP))
    res = np.stack(out).astype(np.float32)
    return res[0] if p.ndim == 1 else res
