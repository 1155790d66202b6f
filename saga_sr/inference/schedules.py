"""Time grids for rectified-flow sampling: pure functions returning t from 1 (noise) down to 0 (data).

Convention (stable-audio-tools): x_t = (1 - t) x0 + t noise, so sampling integrates from t = 1 to t = 0.
Every function returns a float64 tensor of length `steps + 1` whose first value is `t_max` and whose
last value is exactly 0; the sampler takes `steps` Euler steps between consecutive entries.
"""

from __future__ import annotations

import math

import torch

__all__ = ["linear_quadratic", "logsnr_linear", "SCHEDULES", "make_schedule"]


def _check_steps(steps: int) -> None:
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")


def linear_quadratic(steps: int, *, emulated_steps: int = 1000, t_max: float = 1.0) -> torch.Tensor:
    """Movie Gen's linear-quadratic schedule, as TorchJaekwon (the SAGA-SR authors' code) uses it.

    It imitates an `emulated_steps`-step linear schedule with only `steps` steps: the first
    `n_lin = steps // 2` steps are exactly the first steps of that fine linear grid (small steps near
    pure noise, where the velocity changes fastest), the remaining `n_quad = steps - n_lin` steps cover
    the rest of the grid with quadratically growing indices:

        t_i = t_max * (1 - i / emulated_steps)                      for i = 0 .. n_lin
        t_mid = t_max * (1 - n_lin / emulated_steps)
        t_{n_lin + k} = t_mid * (1 - (k / n_quad) ** 2)             for k = 0 .. n_quad

    With the paper's 100 steps and a 1000-step grid: 1.0, 0.999, ..., 0.95 (50 steps of 0.001), then
    0.95 * (1 - s^2) for s = 1/50 .. 1, ending at 0. `steps = 1` gives [t_max, 0].
    """
    _check_steps(steps)
    if not 0.0 < t_max <= 1.0:
        raise ValueError(f"t_max must be in (0, 1], got {t_max}")
    n_lin = steps // 2
    n_quad = steps - n_lin
    if emulated_steps <= n_lin:
        raise ValueError(f"emulated_steps ({emulated_steps}) must exceed steps // 2 ({n_lin})")
    lin = [1.0 - i / emulated_steps for i in range(n_lin + 1)]
    t_mid = lin[-1]
    quad = [t_mid * (1.0 - (k / n_quad) ** 2) for k in range(1, n_quad + 1)]
    ts = torch.tensor(lin + quad, dtype=torch.float64) * t_max
    ts[-1] = 0.0
    return ts


def logsnr_linear(steps: int, *, t_max: float = 1.0, logsnr_end: float = 2.0) -> torch.Tensor:
    """stable-audio-tools' rectified-flow grid (`sample_rf`): log-SNR linear from its start to `logsnr_end`.

    logsnr_start = log((1 - t_max) / t_max + 1e-6) if t_max < 1 else -6;
    logsnr = linspace(logsnr_start, logsnr_end, steps + 1); t = sigmoid(-logsnr); then the ends are pinned:
    t[0] = t_max, t[-1] = 0. (steps = 8: 1, .9933, .9820, .9526, .8808, .7311, .5, .2689, 0.)
    """
    _check_steps(steps)
    if not 0.0 < t_max <= 1.0:
        raise ValueError(f"t_max must be in (0, 1], got {t_max}")
    start = math.log((1.0 - t_max) / t_max + 1e-6) if t_max < 1.0 else -6.0
    logsnr = torch.linspace(start, logsnr_end, steps + 1, dtype=torch.float64)
    ts = torch.sigmoid(-logsnr)
    ts[0] = t_max
    ts[-1] = 0.0
    return ts


SCHEDULES = {"linear_quadratic": linear_quadratic, "logsnr_linear": logsnr_linear}


def make_schedule(name: str, steps: int) -> torch.Tensor:
    """Look a schedule up by name (the CLI's `--schedule`); unknown names list the known ones."""
    try:
        fn = SCHEDULES[name]
    except KeyError:
        raise ValueError(f"unknown schedule {name!r}; known: {', '.join(SCHEDULES)}") from None
    return fn(steps)
