"""The two roll-off numbers an upsample call conditions on: the input band (measured) and the target.

Units (docs/DESIGN.md): normalised roll-off = bin / 1025 in [0, 1); Hz = bin * sr / 2048, so at 44.1 kHz
normalised 0.9 is about 19.9 kHz and 1.0 is 22.05 kHz.
"""

from __future__ import annotations

import numpy as np

from saga_sr.audio.spectral import (HOP, N_FFT, ROLLOFF_PERCENT, hann, hz_of_bin, hz_to_normalized, normalized_to_hz,
                                    rolloff_bin_from_spectrum)

__all__ = ["DEFAULT_TARGET_ROLLOFF", "streaming_rolloff_hz", "resolve_target_rolloff"]

# The authors' training logger conditions on output_cutoff_ratio 0.9 (saga_sr.yaml); we use it as default.
DEFAULT_TARGET_ROLLOFF = 0.9
_BINS = N_FFT // 2 + 1


def streaming_rolloff_hz(wav: np.ndarray, sr: int, *, block_frames: int = 512,
                         percent: float = ROLLOFF_PERCENT) -> float:
    """The paper's clip roll-off in Hz, identical to `saga_sr.audio.spectral.rolloff(wav, sr).hz` but
    computed over blocks of STFT frames, so a 10-minute file never materialises its whole spectrogram.

    Channels are averaged to mono first (as the paper's code does)."""
    x = np.asarray(wav, dtype=np.float32)
    x = x.mean(axis=0) if x.ndim == 2 else x
    length = x.shape[-1]
    frames = 1 + length // HOP
    padded = np.pad(x, (N_FFT // 2, N_FFT // 2))
    window = hann(N_FFT)
    mag_sum = np.zeros(_BINS)
    for f0 in range(0, frames, block_frames):
        f1 = min(f0 + block_frames, frames)
        seg = padded[f0 * HOP: (f1 - 1) * HOP + N_FFT].astype(np.float64)
        view = np.lib.stride_tricks.sliding_window_view(seg, N_FFT)[::HOP][: f1 - f0]
        mag_sum += np.abs(np.fft.rfft(view * window, axis=-1)).sum(axis=0)
    return hz_of_bin(rolloff_bin_from_spectrum(mag_sum, percent), sr)


def resolve_target_rolloff(value: float | None, sr: int) -> tuple[float, float]:
    """User target roll-off -> (normalised, Hz). Values <= 1 are normalised, larger ones are Hz;
    None is DEFAULT_TARGET_ROLLOFF. Raises ValueError outside (0, 1] / (1, sr/2]."""
    if value is None:
        value = DEFAULT_TARGET_ROLLOFF
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"target roll-off must be positive (0-1 normalised or Hz), got {value}")
    if value <= 1.0:
        return value, normalized_to_hz(value, sr)
    if value > sr / 2:
        raise ValueError(f"target roll-off {value:g} Hz is above the Nyquist frequency {sr / 2:g} Hz")
    return hz_to_normalized(value, sr), value
