"""Samplers: pure functions of (velocity function, start state, time grid).

The velocity function is called as `velocity_fn(x, t)` with `t` a Python float (the same time for the
whole batch) and returns dx/dt in the rectified-flow convention (noise - data), so integrating from t = 1
down to t = 0 moves noise to data. Classifier-free guidance is a wrapper around the velocity function
(see `guidance.py`), never a branch here.
"""

from __future__ import annotations

from typing import Callable, Protocol

import torch

__all__ = ["euler", "VelocityFn", "StepCallback"]

VelocityFn = Callable[[torch.Tensor, float], torch.Tensor]


class StepCallback(Protocol):
    def __call__(self, step: int, t: float, x: torch.Tensor) -> None: ...


def euler(
    velocity_fn: VelocityFn, x: torch.Tensor, ts: torch.Tensor, *, callback: StepCallback | None = None
) -> torch.Tensor:
    """Explicit Euler: x_{i+1} = x_i + (t_{i+1} - t_i) * v(x_i, t_i), for i = 0 .. len(ts) - 2.

    `x` is not modified in place. `callback(step, t_next, x_next)` runs after every step (progress bars).
    A field that does not depend on x or t is integrated exactly.
    """
    if ts.ndim != 1 or len(ts) < 2:
        raise ValueError(f"ts must be a 1-D grid with at least 2 entries, got shape {tuple(ts.shape)}")
    grid = [float(t) for t in ts]
    for i, (t_cur, t_next) in enumerate(zip(grid[:-1], grid[1:])):
        v = velocity_fn(x, t_cur)
        x = x + (t_next - t_cur) * v.to(x.dtype)
        if callback is not None:
            callback(i, t_next, x)
    return x
