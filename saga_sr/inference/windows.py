"""Window planning and crossfade weights for long audio (pure, unit-agnostic: latent frames or samples).

A plan covers [0, total) with windows of one fixed length (so windows batch together), overlapping by
at least `min_overlap`; starts are spread evenly so no window sticks out past the end. Each window's
weight is a trapezoid (linear ramps over its overlaps with its neighbours) divided by the sum of all
windows' trapezoids at that position, so the weights of every position sum to exactly 1 (up to float
rounding) and a window's weight can be computed from the plan alone -- outputs can be accumulated window
by window into the result without keeping any other window around.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["WindowPlan", "plan_windows", "window_weights"]


@dataclass(frozen=True)
class WindowPlan:
    total: int  # length to cover
    length: int  # every window's length (== total when the input is shorter than one window)
    starts: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.starts)

    def span(self, i: int) -> tuple[int, int]:
        return self.starts[i], self.starts[i] + self.length

    def scaled(self, factor: int, total: int | None = None) -> WindowPlan:
        """The same plan in finer units (latent frames -> samples), optionally clipped to `total`."""
        new_total = self.total * factor if total is None else total
        return WindowPlan(new_total, self.length * factor, tuple(s * factor for s in self.starts))


def plan_windows(total: int, length: int, min_overlap: int) -> WindowPlan:
    """Evenly spaced windows of `length` covering [0, total), consecutive ones overlapping >= min_overlap."""
    if total < 1:
        raise ValueError(f"nothing to cover (total={total})")
    if length < 1 or not 0 <= min_overlap < length:
        raise ValueError(f"need length >= 1 and 0 <= min_overlap < length, got {length}, {min_overlap}")
    if total <= length:
        return WindowPlan(total, total, (0,))
    n = 1 + math.ceil((total - length) / (length - min_overlap))
    starts = tuple(round(i * (total - length) / (n - 1)) for i in range(n))
    return WindowPlan(total, length, starts)


def _trapezoid(plan: WindowPlan, i: int, lo: int, hi: int) -> np.ndarray:
    """Un-normalised weight of window i at positions [lo, hi) (0 outside the window)."""
    s, e = plan.span(i)
    pos = np.arange(lo, hi, dtype=np.float64) + 0.5
    w = np.where((pos > s) & (pos < e), 1.0, 0.0)
    if i > 0:  # ramp up over the overlap with the previous window
        ramp = plan.span(i - 1)[1] - s
        if ramp > 0:
            w = np.minimum(w, np.clip((pos - s) / ramp, 0.0, 1.0))
    if i < len(plan) - 1:  # ramp down over the overlap with the next window
        ramp = e - plan.starts[i + 1]
        if ramp > 0:
            w = np.minimum(w, np.clip((e - pos) / ramp, 0.0, 1.0))
    return w


def window_weights(plan: WindowPlan, i: int) -> np.ndarray:
    """Normalised crossfade weights of window i over its own span, float32 [plan.length]."""
    s, e = plan.span(i)
    own = _trapezoid(plan, i, s, e)
    total = own.copy()
    j = i - 1
    while j >= 0 and plan.span(j)[1] > s:
        total += _trapezoid(plan, j, s, e)
        j -= 1
    j = i + 1
    while j < len(plan) and plan.starts[j] < e:
        total += _trapezoid(plan, j, s, e)
        j += 1
    return (own / total).astype(np.float32)
