"""What an upsample call measures of its input and conditions on: the input's roll-off f_l and band edge
(measured in one streamed pass), and the target roll-off (given).

Units (docs/DESIGN.md): normalised roll-off = bin / 1025 in [0, 1); Hz = bin * sr / 2048, so at 44.1 kHz
normalised 0.9 is about 19.9 kHz and 1.0 is 22.05 kHz.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from saga_sr.audio.bandedge import BandEdge, band_edge_from_power
from saga_sr.audio.spectral import (HOP, N_FFT, ROLLOFF_PERCENT, hann, hz_of_bin, hz_to_normalized, normalized_to_hz,
                                    rolloff_bin_from_spectrum)
from saga_sr.config.typed import DEFAULT_TARGET_ROLLOFF

__all__ = ["DEFAULT_TARGET_ROLLOFF", "InputBands", "LongTermSpectrum", "measure_bands", "resolve_target_rolloff"]

_BINS = N_FFT // 2 + 1


class LongTermSpectrum:
    """The centred STFT (Hann 2048 / hop 512, as `audio.spectral`) of a mono signal pushed in blocks, summed
    over frames: |X| per bin (the paper's roll-off) and |X|^2 per bin (the band edge). The sums equal those
    of the whole signal, but only one block and one frame of history are ever held."""

    def __init__(self) -> None:
        self.length = 0
        self.mag = np.zeros(_BINS)
        self.power = np.zeros(_BINS)
        self._buf = np.zeros(N_FFT // 2)  # the padded signal from frame `_next` on (starts with the left pad)
        self._next = 0                    # index of the next frame to transform

    def _frames(self, count: int, group: int = 256) -> None:
        for first in range(0, max(count, 0), group):  # a group of frames at a time bounds the memory
            n = min(group, count - first)
            seg = self._buf[first * HOP: first * HOP + (n - 1) * HOP + N_FFT]
            frames = np.lib.stride_tricks.sliding_window_view(seg, N_FFT)[::HOP][:n]
            spec = np.abs(np.fft.rfft(frames * hann(N_FFT), axis=-1))
            self.mag += spec.sum(axis=0)
            self.power += (spec ** 2).sum(axis=0)
        self._buf = self._buf[max(count, 0) * HOP:]
        self._next += max(count, 0)

    def push(self, x: np.ndarray) -> None:
        """Append samples `[n]` (float)."""
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        self.length += x.shape[0]
        self._buf = np.concatenate([self._buf, x])
        self._frames((self._buf.shape[0] - N_FFT) // HOP + 1 if self._buf.shape[0] >= N_FFT else 0)

    def finish(self) -> "LongTermSpectrum":
        """Add the right zero padding and transform the last frames (1 + length // HOP frames in all)."""
        self._buf = np.concatenate([self._buf, np.zeros(N_FFT // 2)])
        self._frames(1 + self.length // HOP - self._next)
        return self


@dataclass(frozen=True)
class InputBands:
    """What an input's long-term spectrum says. rolloff_hz: the paper's 98.5 % roll-off (f_l, the value the
    model is conditioned on, as in training); edge: the band edge (what low-frequency replacement keeps)."""

    rolloff_hz: float
    edge: BandEdge


def measure_bands(blocks: Iterable[np.ndarray], sr: int, input_sr: int) -> InputBands:
    """Roll-off and band edge of a signal at `sr` arriving in mono blocks `[n]` or `[1, n]`; the band edge
    never exceeds the original file's Nyquist `input_sr / 2`."""
    acc = LongTermSpectrum()
    for block in blocks:
        acc.push(block)
    acc.finish()
    edge = band_edge_from_power(acc.power, sr, max_hz=min(input_sr, sr) / 2, n_fft=N_FFT)
    return InputBands(rolloff_hz=hz_of_bin(rolloff_bin_from_spectrum(acc.mag, ROLLOFF_PERCENT), sr), edge=edge)


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
