"""Reading one fixed-length segment of a recording: choose the start, read only those frames, resample,
match the channel count, pad with a mask when the recording is shorter than the segment."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from saga_sr.audio.io import sf_name
from saga_sr.audio.resample import resample
from saga_sr.data.index import AudioEntry
from saga_sr.errors import AudioError

# native frames read on each side of the segment so the resampler's edges fall outside it
_MARGIN = 256


@dataclass(frozen=True)
class Segment:
    audio: np.ndarray  # [C, sample_size] float32, zero after `valid`
    valid: int  # number of real samples at the start
    seconds_start: float
    seconds_total: float


def choose_start(total: int, size: int, rng: np.random.Generator | None) -> int:
    """A uniformly random start such that the segment fits; 0 when too short or `rng` is None (centred
    crops would hide the start of speech, so deterministic crops begin at the start)."""
    if total <= size or rng is None:
        return 0
    return int(rng.integers(0, total - size + 1))


def match_channels(wav: np.ndarray, channels: int) -> np.ndarray:
    """[C_in, L] -> [channels, L]: mono is duplicated, extra channels are averaged (mono) or dropped."""
    c = wav.shape[0]
    if c == channels:
        return wav
    if channels == 1:
        return wav.mean(axis=0, keepdims=True)
    if c == 1:
        return np.repeat(wav, channels, axis=0)
    return wav[:channels]


def read_segment(
    entry: AudioEntry, sample_size: int, sample_rate: int, channels: int, rng: np.random.Generator | None
) -> Segment:
    """The segment of `entry` at a random (or fixed) start, at `sample_rate` with `channels` channels."""
    sr_in = entry.sample_rate
    total = int(round(entry.frames * sample_rate / sr_in))
    start = choose_start(total, sample_size, rng)
    valid = min(sample_size, total - start)
    # read from a native frame where both sample grids meet (a multiple of sr_in / gcd), so the resampled
    # segment is sample-exact with the whole file resampled; the margin keeps the filter edges outside it
    g = math.gcd(sr_in, sample_rate)
    step_in, step_out = sr_in // g, sample_rate // g
    lo = max(0, int((start * sr_in / sample_rate - _MARGIN) // step_in) * step_in)
    hi = min(entry.frames, int(math.ceil((start + valid) * sr_in / sample_rate)) + _MARGIN)
    try:
        raw, _ = sf.read(sf_name(entry.path), start=lo, stop=hi, dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001
        raise AudioError(f"{entry.path}: cannot read frames {lo}-{hi}: {exc}") from exc
    wav = raw.T
    if sr_in != sample_rate:
        wav = resample(wav, sr_in, sample_rate)
    offset = start - lo // step_in * step_out
    wav = wav[:, offset : offset + valid]
    valid = wav.shape[1]
    out = np.zeros((channels, sample_size), dtype=np.float32)
    out[:, :valid] = match_channels(np.ascontiguousarray(wav, dtype=np.float32), channels)
    if not np.isfinite(out).all():
        raise AudioError(f"{entry.path}: non-finite samples in the segment at {start / sample_rate:.2f} s")
    return Segment(out, valid, start / sample_rate, entry.seconds)
