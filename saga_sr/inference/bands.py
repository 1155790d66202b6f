"""What an upsample call measures of its input and conditions on: the input's roll-off f_l and band edge
(measured in one streamed pass), and the target roll-off (given): the one rule that checks it and places
the output's band limit, shared by `upsample`, `evaluate`, the web page and the Python API.

Units (docs/DESIGN.md): normalised roll-off = bin / 1025 in [0, 1); Hz = bin * sr / 2048, so at 44.1 kHz
normalised 0.9 is about 19.9 kHz and 1.0 is 22.05 kHz.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from saga_sr.audio.bandedge import BandEdge, band_edge_from_power
from saga_sr.audio.lfr import TARGET_TAPER_FRACTION
from saga_sr.audio.spectral import (
    HOP,
    N_FFT,
    ROLLOFF_PERCENT,
    hann,
    hz_of_bin,
    hz_to_normalized,
    normalized_to_hz,
    rolloff_bin_from_spectrum,
)
from saga_sr.config.typed import DEFAULT_TARGET_ROLLOFF

__all__ = [
    "DEFAULT_TARGET_ROLLOFF",
    "MIN_TARGET_HZ",
    "InputBands",
    "LongTermSpectrum",
    "band_limit_hz",
    "measure_bands",
    "parse_target_rolloff",
    "resolve_target_rolloff",
]

# The lowest target roll-off, in either form. Below 1 kHz a target asks for less than any input's own band
# (4 kHz files reach 2 kHz), and a Hz value from 1 to 1000 is far likelier a slip (1.5 meant normalised,
# 16 meant kHz) than a wish: such values are refused rather than silently honoured.
MIN_TARGET_HZ = 1000.0
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
        self._next = 0  # index of the next frame to transform

    def _frames(self, count: int, group: int = 256) -> None:
        for first in range(0, max(count, 0), group):  # a group of frames at a time bounds the memory
            n = min(group, count - first)
            seg = self._buf[first * HOP : first * HOP + (n - 1) * HOP + N_FFT]
            frames = np.lib.stride_tricks.sliding_window_view(seg, N_FFT)[::HOP][:n]
            spec = np.abs(np.fft.rfft(frames * hann(N_FFT), axis=-1))
            self.mag += spec.sum(axis=0)
            self.power += (spec**2).sum(axis=0)
        self._buf = self._buf[max(count, 0) * HOP :]
        self._next += max(count, 0)

    def push(self, x: np.ndarray) -> None:
        """Append samples `[n]` (float)."""
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        self.length += x.shape[0]
        self._buf = np.concatenate([self._buf, x])
        self._frames((self._buf.shape[0] - N_FFT) // HOP + 1 if self._buf.shape[0] >= N_FFT else 0)

    def finish(self) -> LongTermSpectrum:
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
    """User target roll-off -> (normalised, Hz). Values in (0, 1] are normalised (bin / 1025), larger ones
    are Hz; either must come to MIN_TARGET_HZ .. sr / 2 (normalised 1.0 is the Nyquist bin, a hair above
    sr / 2, and allowed). None (not given) conditions on DEFAULT_TARGET_ROLLOFF. ValueError otherwise."""
    if value is None:
        value = DEFAULT_TARGET_ROLLOFF
    value = float(value)
    nyquist = sr / 2
    accepted = f"0-1 normalised or {MIN_TARGET_HZ:g}-{nyquist:g} Hz"
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"target roll-off must be {accepted}, got {value:g}")
    if value <= 1.0:
        hz = normalized_to_hz(value, sr)
        if hz < MIN_TARGET_HZ:
            raise ValueError(
                f"target roll-off {value:g} (normalised) is {hz:.0f} Hz, below the lowest target "
                f"{MIN_TARGET_HZ:g} Hz (accepted: {accepted})"
            )
        return value, hz
    if value < MIN_TARGET_HZ:
        hint = f"; for {value:g} kHz write {value * 1000:g}" if 2 <= value <= nyquist / 1000 else ""
        raise ValueError(
            f"target roll-off {value:g} is neither 0-1 normalised nor a frequency of "
            f"{MIN_TARGET_HZ:g}-{nyquist:g} Hz{hint}"
        )
    if value > nyquist:
        raise ValueError(
            f"target roll-off {value:g} Hz is above the Nyquist frequency {nyquist:g} Hz (accepted: {accepted})"
        )
    return hz_to_normalized(value, sr), value


def parse_target_rolloff(text: str, sr: int = 44100) -> float | None:
    """A target roll-off as typed: 'default' (None: not given) or a number under `resolve_target_rolloff`'s rule."""
    if str(text).strip().lower() == "default":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected 'default' or a number, got {text!r}") from None
    resolve_target_rolloff(value, sr)
    return value


def band_limit_hz(target_hz: float | None, edge_hz: float, sr: int) -> float | None:
    """Where the output's band limit (`audio.lfr.limit_to_target`) sits, or None for no limit.

    The limit only removes what the model generated, never the input's own band: its taper (the
    TARGET_TAPER_FRACTION below the limit) starts at the band edge's bin at the lowest (one bin added for the
    bins' rounding), so a target below the edge gives the input's band and nothing added above it. No target
    (None) or a limit at or above the Nyquist frequency: no limit."""
    if target_hz is None:
        return None
    limit = max(float(target_hz), float(edge_hz) / (1.0 - TARGET_TAPER_FRACTION) + sr / N_FFT)
    return None if limit >= sr / 2 else limit
