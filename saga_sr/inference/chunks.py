"""Latent windows -> output audio for the streaming upsampler: overlapping latent chunks are decoded as soon
as the sampling windows they need are finished (with extra context margins that are thrown away), the
generated band optionally follows the LR's top-octave envelope (audio.envelope, measured on the chunk and its
margins), the input band below the edge is put back (low-frequency replacement), and the chunks are
crossfaded into an OverlapAdd from which final samples are handed out.

The LFR crossfade lies just below the edge, inside the input's own roll-off (audio.lfr.edge_crossfade_hz).

Shape legend: I model items, m model audio channels, K latent channels, W window frames, n samples.
"""

from __future__ import annotations

import bisect
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from saga_sr.audio.envelope import follow_top_octave_envelope
from saga_sr.audio.lfr import edge_crossfade_hz, limit_to_target, low_frequency_replace
from saga_sr.inference.stream import ForwardBuffer, OverlapAdd
from saga_sr.inference.windows import WindowPlan, window_weights

__all__ = ["ChunkDecoder", "Window"]


@dataclass
class Window:
    """A finished sampling window: weighted latents of every item [I, K, W] and its span in frames."""

    start: int
    end: int
    z: torch.Tensor


Decode = Callable[[torch.Tensor], np.ndarray]  # latents [I, K, T] -> audio [I, m, T * ratio]
Item = Callable[[np.ndarray, int], np.ndarray]  # (input audio [C, n], item i) -> the item's audio [m, n]


class ChunkDecoder:
    """Decodes overlapping latent chunks as soon as the sampling windows they need are finished, and hands
    out the output samples that no later chunk touches.

    decode / item: the model's decoder and its view of the input; ratio: samples per latent frame; margin:
    extra latent frames decoded on each side of a chunk and dropped; cutoff_hz: the LFR band edge (None: no
    LFR); target_hz: remove content above it (None: keep); envelope: (strength, band edge in Hz) of the
    top-octave envelope following, applied before LFR (None: off). `decode_s` / `lfr_s`: seconds spent so far
    (the envelope step counts as post-processing, in `lfr_s`)."""

    def __init__(
        self,
        plan: WindowPlan,
        lr: ForwardBuffer,
        out: OverlapAdd,
        *,
        decode: Decode,
        item: Item,
        sample_rate: int,
        ratio: int,
        margin: int,
        cutoff_hz: float | None,
        target_hz: float | None = None,
        envelope: tuple[float, float] | None = None,
    ) -> None:
        self.lr, self.out, self.cutoff_hz, self.target_hz = lr, out, cutoff_hz, target_hz
        self.envelope = envelope if envelope is not None and envelope[0] > 0 else None
        self.decode, self.item, self.sr, self.ratio = decode, item, int(sample_rate), int(ratio)
        self.plan = plan
        self.margin = int(margin)
        self.sample_plan = plan.scaled(self.ratio, total=out.length)
        self.windows: OrderedDict[int, Window] = OrderedDict()
        self.next_chunk = 0
        self.decode_s = self.lfr_s = 0.0

    def add(self, window: Window) -> None:
        self.windows[window.start] = window

    def _extended(self, j: int) -> tuple[int, int]:
        s, e = self.plan.span(j)
        return max(0, s - self.margin), min(self.plan.total, e + self.margin)

    def needed_from(self) -> int:
        """The first latent frame (and LR input frame) a chunk still to decode needs."""
        return self._extended(self.next_chunk)[0] if self.next_chunk < len(self.plan) else self.plan.total

    def flush(self, tick: Callable[[int], None], final: bool = False) -> Iterator[np.ndarray]:
        """Decode every chunk whose windows are finished; yield the output [I, m, n] that became final."""
        finished_until = self.plan.total if final else self._finished_until()
        while self.next_chunk < len(self.plan):
            a, b = self._extended(self.next_chunk)
            if b > finished_until:
                break
            self._decode(self.next_chunk, a, b)
            self.next_chunk += 1
            tick(1)
            keep_from = self.needed_from()
            for start in [s for s, w in self.windows.items() if w.end <= keep_from]:
                del self.windows[start]
            done = self.sample_plan.starts[self.next_chunk] if self.next_chunk < len(self.plan) else self.out.length
            yield self.out.emit(done)

    def _finished_until(self) -> int:
        """Frames before the first not-yet-finished window are final (windows finish in order)."""
        if not self.windows:
            return 0
        last = max(self.windows)
        idx = bisect.bisect_left(self.plan.starts, last)  # starts are sorted: O(log n) on hour-long files
        return self.plan.starts[idx + 1] if idx + 1 < len(self.plan) else self.plan.total

    def _latent(self, a: int, b: int) -> torch.Tensor:
        first = next(iter(self.windows.values())).z
        z = torch.zeros(first.shape[0], first.shape[1], b - a)
        for w in self.windows.values():
            lo, hi = max(a, w.start), min(b, w.end)
            if hi > lo:
                z[:, :, lo - a : hi - a] += w.z[:, :, lo - w.start : hi - w.start]
        return z

    def _decode(self, j: int, a: int, b: int) -> None:
        ratio, clock = self.ratio, time.perf_counter
        t0 = clock()
        wav = self.decode(self._latent(a, b))
        t1 = clock()
        needs_lr = self.envelope is not None or self.cutoff_hz is not None
        lr = self.lr.get(a * ratio, b * ratio) if needs_lr else None
        if self.envelope is not None:
            strength, edge_hz = self.envelope
            wav = np.stack(
                [
                    follow_top_octave_envelope(wav[i], self.item(lr, i), edge_hz, self.sr, strength)
                    for i in range(wav.shape[0])
                ]
            )
        if self.cutoff_hz is not None:
            fade = edge_crossfade_hz(self.cutoff_hz)
            wav = np.stack(
                [
                    low_frequency_replace(
                        wav[i], self.item(lr, i), self.sr, cutoff_hz=self.cutoff_hz, crossfade_hz=fade
                    )
                    for i in range(wav.shape[0])
                ]
            )
        if self.target_hz is not None:
            wav = np.stack([limit_to_target(wav[i], self.sr, self.target_hz) for i in range(wav.shape[0])])
        t2 = clock()
        s, e = self.sample_plan.span(j)
        e = min(e, self.out.length)
        weights = window_weights(self.sample_plan, j)[: e - s]
        self.out.add(s, wav[:, :, s - a * ratio : e - a * ratio] * weights)
        self.decode_s += t1 - t0
        self.lfr_s += t2 - t1
