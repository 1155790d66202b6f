"""A perceptual score next to LSD: ViSQOL (audio mode) when it runs here, else a labelled log-mel distance.

LSD only compares spectral levels, so a noise fill of the right level scores well on it; ViSQOL compares
spectro-temporal patches the way a listener would. The `visqol-python` package ships its SVR model and
runs offline; its audio mode is defined at 48 kHz, so both signals are resampled to 48 kHz and downmixed
to mono first. If the package is missing or fails, `make_scorer("auto")` falls back to a log-mel
distance and says why in `Scorer.note` (the evaluation writes that note next to its tables).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.signal import stft

from saga_sr.audio.resample import resample
from saga_sr.errors import SagaError

VISQOL_RATE = 48000
METHODS = ("auto", "visqol", "mel", "none")


@dataclass(frozen=True)
class Scorer:
    """A reference-vs-estimate score: `name` is the table column, `higher_is_better` its direction."""

    name: str
    label: str
    higher_is_better: bool
    note: str
    fn: Callable[[np.ndarray, np.ndarray, int], float] | None

    def __call__(self, ref: np.ndarray, est: np.ndarray, sr: int) -> float:
        return float("nan") if self.fn is None else float(self.fn(ref, est, sr))


def _mono(wav: np.ndarray) -> np.ndarray:
    wav = np.asarray(wav, dtype=np.float64)
    return wav.mean(axis=0) if wav.ndim == 2 else wav


def _same_length(ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = min(ref.shape[-1], est.shape[-1])
    return ref[..., :n], est[..., :n]


def log_mel_distance(ref: np.ndarray, est: np.ndarray, sr: int, n_mels: int = 128) -> float:
    """RMS over frames and mel bands of the dB difference of mel energies (2048/512 STFT); lower is better."""
    ref, est = _same_length(_mono(ref), _mono(est))
    n_fft = 2048
    if ref.shape[-1] < n_fft:
        pad = n_fft - ref.shape[-1]
        ref, est = np.pad(ref, (0, pad)), np.pad(est, (0, pad))
    fb = _mel_filterbank(sr, n_fft, n_mels)
    energies = []
    for x in (ref, est):
        _, _, spec = stft(x, fs=sr, nperseg=n_fft, noverlap=n_fft - 512, window="hann", boundary=None)
        energies.append(fb @ (np.abs(spec) ** 2))
    floor = 1e-10
    diff = 10.0 * (np.log10(energies[0] + floor) - np.log10(energies[1] + floor))
    return float(np.sqrt(np.mean(diff**2)))


def _mel_filterbank(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular HTK-mel filters [n_mels, n_fft // 2 + 1] spanning 0 .. sr / 2."""

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    fb = np.zeros((n_mels, freqs.size))
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        rise = (freqs - lo) / max(mid - lo, 1e-9)
        fall = (hi - freqs) / max(hi - mid, 1e-9)
        fb[i] = np.clip(np.minimum(rise, fall), 0.0, None)
    return fb


def _visqol_fn() -> Callable[[np.ndarray, np.ndarray, int], float]:
    """A ViSQOL audio-mode scorer; raises if the package is missing or cannot score a probe signal."""
    from visqol import VisqolApi  # lazy: optional dependency (visqol-python)

    api = VisqolApi()
    api.create(mode="audio")

    def score(ref: np.ndarray, est: np.ndarray, sr: int) -> float:
        r, e = _same_length(_mono(ref), _mono(est))
        if sr != VISQOL_RATE:
            r, e = resample(r, sr, VISQOL_RATE), resample(e, sr, VISQOL_RATE)
        logger = logging.getLogger("visqol")
        level = logger.level
        logger.setLevel(logging.ERROR)  # it warns on every call about non-48 kHz or short input
        try:
            result = api.measure_from_arrays(r, e, VISQOL_RATE)
        except ValueError as exc:
            if "patch size" in str(exc):  # the clip is shorter than ViSQOL's analysis patches: no score
                return float("nan")
            raise
        finally:
            logger.setLevel(level)
        return float(result.moslqo)

    probe = np.sin(2 * np.pi * 440.0 * np.arange(VISQOL_RATE) / VISQOL_RATE)[None]
    value = score(probe, probe, VISQOL_RATE)
    if not math.isfinite(value):
        raise RuntimeError(f"ViSQOL scored identical signals as {value}")
    return score


MEL_SCORER = Scorer(
    "mel_dist",
    "log-mel distance (dB, lower is better)",
    False,
    "log-mel distance: RMS of the dB difference of 128 mel-band energies (2048/512 STFT)",
    log_mel_distance,
)


def make_scorer(method: str = "auto") -> Scorer:
    """The perceptual scorer for `method`: "visqol" (error if unusable), "auto" (ViSQOL, else mel), "mel", "none"."""
    if method not in METHODS:
        raise ValueError(f"perceptual method '{method}' is unknown; choose one of {', '.join(METHODS)}")
    if method == "none":
        return Scorer("perceptual", "none", True, "no perceptual metric requested (--perceptual none)", None)
    if method == "mel":
        return MEL_SCORER
    try:
        fn = _visqol_fn()
    except Exception as exc:  # any failure of the optional package means: fall back, and say why
        if method == "visqol":
            raise SagaError(f"ViSQOL (visqol-python) is not usable here: {type(exc).__name__}: {exc}") from exc
        reason = f"ViSQOL unavailable ({type(exc).__name__}: {exc}); using the log-mel distance instead"
        return Scorer(MEL_SCORER.name, MEL_SCORER.label, False, reason, log_mel_distance)
    return Scorer(
        "visqol",
        "ViSQOL MOS-LQO (audio mode, 48 kHz, mono; higher is better)",
        True,
        "ViSQOL v3 audio mode via visqol-python (offline SVR model), signals resampled to 48 kHz mono",
        fn,
    )
