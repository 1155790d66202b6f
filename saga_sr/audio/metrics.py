"""Objective metrics for super-resolution: log-spectral distance (two published variants), LSD-HF/LF, SI-SDR.

All take `[C, L]` or `[L]` float arrays at the same rate with the same channel count and the same length
give or take one hop (LENGTH_TOLERANCE samples, trimmed to the shorter); anything else is a ValueError, so
a score never silently ignores part of a signal. `align(ref, est)` makes a pair comparable on purpose
(trim to the shorter, a mono signal compared with every channel of the other). Multi-channel results are
the mean of the per-channel values (the convention of ssr_eval and AudioSR, which score each channel alone).

LSD, per channel, is mean over frames t of sqrt(mean over bins f of D(f, t)^2), with
- `lsd` (NU-Wave 2 / AERO): centred STFT n_fft 2048, hop 512, Hann;
  D = log10(max(|R|^2, 1e-8)) - log10(max(|E|^2, 1e-8)).
- `lsd_ssr` (ssr_eval / AudioSR): centred (librosa-style) STFT n_fft 2048 (46 ms at 44.1 kHz),
  hop 10 ms (441 at 44.1 kHz), Hann; D = log10(|R|^2 / (|E| + 1e-12)^2 + 1e-12).
Both are in log10 units ("bels"): a gain of 0.5 gives log10(4) = 0.602.

Digital silence: in `lsd` the 1e-8 power floor already makes bins silent in both signals count as
equal (D = 0); all frames are kept, exactly as NU-Wave 2 / AERO. In `lsd_ssr` a bin that is exactly
zero in both counts as equal (D = 0) and a frame silent in both (every bin below 1e-10 in power) is left
out of the mean over frames; without this, ssr_eval's formula gives D = log10(1e-12) = -12 there, adding
(-12)^2 per bin and swamping the score of a clip with a few silent frames. All frames silent: LSD 0.

`lsd_bands` splits the NU-Wave-style LSD at the LR cutoff: LSD-LF over the bins whose centre frequency
is below the cutoff (k < cutoff * 2048 / sr), LSD-HF over the rest (the NVSR / ssr_eval split).

`si_sdr` is the standard scale-invariant SDR (Le Roux et al. 2019): the reference is scaled by
alpha = <est, ref> / ||ref||^2, SI-SDR = 10 log10(||alpha ref||^2 / ||est - alpha ref||^2), without
removing the mean (as torchmetrics' default); a 1e-12 guard keeps a perfect copy finite (very large).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from saga_sr.audio.spectral import stft

LSD_N_FFT = 2048
LSD_HOP = 512
LSD_POWER_FLOOR = 1e-8
SSR_EPS = 1e-12
SILENT_FRAME_POWER = 1e-10
LENGTH_TOLERANCE = LSD_HOP  # samples two signals may differ by (resampling rounding) and still be scored


def _as_2d(ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(ref, dtype=np.float64)
    e = np.asarray(est, dtype=np.float64)
    r = r[None] if r.ndim == 1 else r
    e = e[None] if e.ndim == 1 else e
    if r.ndim != 2 or e.ndim != 2:
        raise ValueError(f"expected [C, L] or [L] audio, got {np.shape(ref)} and {np.shape(est)}")
    return r, e


def align(ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An explicitly aligned pair: both trimmed to the shorter; a mono signal repeated to the other's channels."""
    r, e = _as_2d(ref, est)
    if r.shape[0] != e.shape[0]:
        if r.shape[0] == 1:
            r = np.repeat(r, e.shape[0], axis=0)
        elif e.shape[0] == 1:
            e = np.repeat(e, r.shape[0], axis=0)
        else:
            raise ValueError(
                f"channel mismatch: reference has {r.shape[0]}, estimate {e.shape[0]}; "
                "only a mono signal can be aligned to a multi-channel one"
            )
    n = min(r.shape[-1], e.shape[-1])
    return r[:, :n], e[:, :n]


def _pair(ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """As `[C, L]` float64 pairs; same channels required, lengths within LENGTH_TOLERANCE (shorter kept)."""
    r, e = _as_2d(ref, est)
    if r.shape[0] != e.shape[0]:
        raise ValueError(f"channel mismatch: reference has {r.shape[0]}, estimate {e.shape[0]}")
    if abs(r.shape[-1] - e.shape[-1]) > LENGTH_TOLERANCE:
        raise ValueError(
            f"length mismatch: reference has {r.shape[-1]} samples, estimate {e.shape[-1]} "
            f"(more than one hop, {LENGTH_TOLERANCE}, apart)"
        )
    n = min(r.shape[-1], e.shape[-1])
    if n == 0:
        raise ValueError("cannot score empty audio")
    r, e = r[:, :n], e[:, :n]
    if not (np.isfinite(r).all() and np.isfinite(e).all()):
        raise ValueError("cannot score audio containing NaN or infinite samples")
    return r, e


def _frame_mean(d2: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Per channel: mean over kept frames of sqrt(mean over bins of d2 [C, F, T]); 0 if none kept."""
    per_frame = np.sqrt(d2.mean(axis=-2))
    kept = keep.sum(axis=-1)
    return np.where(kept > 0, (per_frame * keep).sum(axis=-1) / np.maximum(kept, 1), 0.0)


def _powers(ref: np.ndarray, est: np.ndarray, n_fft: int, hop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Power spectrograms [C, F, T] of both, and the frames [C, T] not silent in both."""
    r, e = _pair(ref, est)
    # double precision: a float32 FFT's rounding noise (~1e-7 of the loudest bin) would swamp the
    # near-empty stop band of an LR estimate, which the unfloored ssr_eval formula takes at face value
    pr = np.abs(stft(r, n_fft, hop)) ** 2
    pe = np.abs(stft(e, n_fft, hop)) ** 2
    keep = (pr.max(axis=-2) > SILENT_FRAME_POWER) | (pe.max(axis=-2) > SILENT_FRAME_POWER)
    return pr, pe, keep


def _nuwave_d2(pr: np.ndarray, pe: np.ndarray) -> np.ndarray:
    return np.log10(np.maximum(pr, LSD_POWER_FLOOR) / np.maximum(pe, LSD_POWER_FLOOR)) ** 2


def lsd(ref: np.ndarray, est: np.ndarray, sr: int, *, n_fft: int = LSD_N_FFT, hop: int = LSD_HOP) -> float:
    """NU-Wave 2 / AERO LSD (2048 / 512, log10 power floored at 1e-8); see the module docstring."""
    pr, pe, _ = _powers(ref, est, n_fft, hop)
    return float(_frame_mean(_nuwave_d2(pr, pe), np.ones(pr.shape[::2], bool)).mean())


def lsd_ssr(ref: np.ndarray, est: np.ndarray, sr: int, *, n_fft: int = 2048, hop: int | None = None) -> float:
    """ssr_eval / AudioSR LSD (2048 window, 10 ms hop; log10 of the power ratio with 1e-12 guards)."""
    hop = int(round(sr / 100)) if hop is None else hop
    pr, pe, keep = _powers(ref, est, n_fft, hop)
    mr, me = np.sqrt(pr), np.sqrt(pe)
    d = np.log10(pr / (me + SSR_EPS) ** 2 + SSR_EPS)
    d = np.where((mr == 0) & (me == 0), 0.0, d)
    return float(_frame_mean(d**2, keep).mean())


class LSDBands(NamedTuple):
    """LSD over the bins at/above (`hf`) and below (`lf`) the LR cutoff bin."""

    hf: float
    lf: float


def lsd_bands(
    ref: np.ndarray, est: np.ndarray, sr: int, cutoff_hz: float, *, n_fft: int = LSD_N_FFT, hop: int = LSD_HOP
) -> LSDBands:
    """LSDBands(hf, lf): the NU-Wave-style LSD over bins at/above and below the cutoff bin; the cutoff must
    lie in (0, sr / 2), where both bands exist."""
    if not 0 < cutoff_hz < sr / 2:
        raise ValueError(f"cutoff {cutoff_hz} Hz must lie in (0, {sr / 2:g}) Hz, the Nyquist frequency at {sr} Hz")
    pr, pe, _ = _powers(ref, est, n_fft, hop)
    d2 = _nuwave_d2(pr, pe)
    keep = np.ones(pr.shape[::2], bool)
    k = int(np.clip(np.ceil(cutoff_hz * n_fft / sr), 0, n_fft // 2 + 1))
    hf = float(_frame_mean(d2[:, k:], keep).mean()) if k < d2.shape[1] else 0.0
    lf = float(_frame_mean(d2[:, :k], keep).mean()) if k > 0 else 0.0
    return LSDBands(hf=hf, lf=lf)


def lsd_hf(ref: np.ndarray, est: np.ndarray, sr: int, cutoff_hz: float) -> float:
    return lsd_bands(ref, est, sr, cutoff_hz)[0]


def lsd_lf(ref: np.ndarray, est: np.ndarray, sr: int, cutoff_hz: float) -> float:
    return lsd_bands(ref, est, sr, cutoff_hz)[1]


def si_sdr(ref: np.ndarray, est: np.ndarray, *, eps: float = 1e-12) -> float:
    """Scale-invariant SDR in dB, mean over channels; see the module docstring."""
    r, e = _pair(ref, est)
    alpha = ((e * r).sum(-1) + eps) / ((r * r).sum(-1) + eps)
    target = alpha[:, None] * r
    noise = e - target
    values = 10.0 * np.log10(((target**2).sum(-1) + eps) / ((noise**2).sum(-1) + eps))
    return float(values.mean())


def all_metrics(ref: np.ndarray, est: np.ndarray, sr: int, cutoff_hz: float | None = None) -> dict[str, float | None]:
    """lsd, lsd_ssr, lsd_hf, lsd_lf (None without a cutoff), si_sdr for one reference/estimate pair."""
    hf, lf = lsd_bands(ref, est, sr, cutoff_hz) if cutoff_hz is not None else (None, None)
    return {
        "lsd": lsd(ref, est, sr),
        "lsd_ssr": lsd_ssr(ref, est, sr),
        "lsd_hf": hf,
        "lsd_lf": lf,
        "si_sdr": si_sdr(ref, est),
    }


def lsd_range(
    ref: np.ndarray, est: np.ndarray, sr: int, lo_hz: float, hi_hz: float, *, n_fft: int = LSD_N_FFT, hop: int = LSD_HOP
) -> float:
    """The NU-Wave-style LSD over the bins whose centre lies in [lo_hz, hi_hz] (e.g. the band an input holds)."""
    pr, pe, _ = _powers(ref, est, n_fft, hop)
    f = np.arange(pr.shape[1]) * sr / n_fft
    band = (f >= lo_hz) & (f <= hi_hz)
    if not band.any():
        raise ValueError(f"no STFT bin lies in [{lo_hz:g}, {hi_hz:g}] Hz")
    return float(_frame_mean(_nuwave_d2(pr[:, band], pe[:, band]), np.ones(pr.shape[::2], bool)).mean())
