"""Bounded buffers that let the upsampler stream: the input read forward, the output overlap-added and
handed out as soon as it is final. Both hold only the span between what is still needed and what has
been read / written, so memory does not depend on the length of the audio (pure numpy, no model).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["ForwardBuffer", "OverlapAdd"]


class ForwardBuffer:
    """A signal `[C, length]` arriving as blocks `[C, n]`, read on demand and forgotten once released.

    `get(start, end)` may ask for any span at or after the released point (zeros outside [0, length));
    blocks beyond `length` are cut, a stream that ends early is padded with zeros."""

    def __init__(self, blocks: Iterator[np.ndarray], channels: int, length: int) -> None:
        self.blocks, self.channels, self.length = blocks, channels, length
        self.start = 0  # first sample held
        self.buf = np.zeros((channels, 0), dtype=np.float32)  # samples [start, start + buf.shape[1])
        self.released = 0  # samples before this are never asked for again
        self._done = False

    @property
    def end(self) -> int:
        return self.start + self.buf.shape[1]

    def _fill(self, until: int) -> None:
        parts = [self.buf]
        have = self.end
        while have < min(until, self.length) and not self._done:
            block = next(self.blocks, None)
            if block is None:
                self._done = True
                break
            block = np.asarray(block, dtype=np.float32)
            if block.ndim != 2 or block.shape[0] != self.channels:
                raise ValueError(f"expected blocks of {self.channels} channels, got shape {block.shape}")
            parts.append(block)
            have += block.shape[1]
        if len(parts) > 1:
            self.buf = np.concatenate(parts, axis=1)
        self._trim()

    def _trim(self) -> None:
        drop = min(self.released, self.end) - self.start
        if drop > 0:
            self.buf = self.buf[:, drop:]
            self.start += drop

    def get(self, start: int, end: int) -> np.ndarray:
        """Samples [start, end) as float32 `[C, end - start]`."""
        if max(start, 0) < self.released and end > 0:
            raise ValueError(f"samples before {self.released} were released (asked for {start})")
        self._fill(end)
        seg = np.zeros((self.channels, end - start), dtype=np.float32)
        a, b = max(start, 0), min(end, self.end, self.length)
        if b > a:
            seg[:, a - start : b - start] = self.buf[:, a - self.start : b - self.start]
        return seg

    def release(self, before: int) -> None:
        """Forget the samples before `before` (never asked for again)."""
        self.released = max(self.released, before)
        self._trim()


class OverlapAdd:
    """Output `[*lead, length]` accumulated from weighted overlapping spans; `emit(until)` returns (and
    forgets) the samples before `until`, which no later span may touch."""

    def __init__(self, lead: tuple[int, ...], length: int) -> None:
        self.lead, self.length = lead, length
        self.start = 0
        self.buf = np.zeros((*lead, 0), dtype=np.float32)

    def add(self, start: int, values: np.ndarray) -> None:
        end = min(start + values.shape[-1], self.length)
        if start < self.start:
            raise ValueError(f"samples before {self.start} were already emitted (span starts at {start})")
        if end > self.start + self.buf.shape[-1]:
            grow = np.zeros((*self.lead, end - self.start - self.buf.shape[-1]), dtype=np.float32)
            self.buf = np.concatenate([self.buf, grow], axis=-1)
        self.buf[..., start - self.start : end - self.start] += values[..., : end - start]

    def emit(self, until: int) -> np.ndarray:
        until = min(until, self.length)
        n = max(until - self.start, 0)
        if n > self.buf.shape[-1]:  # nothing was added to part of it: zeros
            self.buf = np.concatenate([self.buf, np.zeros((*self.lead, n - self.buf.shape[-1]), np.float32)], -1)
        out, self.buf = self.buf[..., :n], self.buf[..., n:]
        self.start += n
        return out
