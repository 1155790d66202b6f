"""Small-sample statistics for evaluation tables and ladder verdicts.

Test sets and seed counts are small, so intervals use Student's t (not a normal approximation) and a
single value gets no interval at all rather than a fake zero-width one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from scipy import stats as _scipy_stats


@dataclass(frozen=True)
class Summary:
    """Mean and 95 % confidence half-width of `n` finite values (`half_width` is nan when n < 2)."""

    mean: float
    half_width: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def format(self, digits: int = 2) -> str:
        """`1.23 ± 0.45` (or `1.23 (n=1)`, `n/a` when there is nothing)."""
        if self.n == 0 or math.isnan(self.mean):
            return "n/a"
        if self.n < 2 or math.isnan(self.half_width):
            return f"{self.mean:.{digits}f} (n={self.n})"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f}"


def finite(values: Iterable[float]) -> list[float]:
    """The values that are real finite numbers (None / nan / inf dropped)."""
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


def mean_ci(values: Iterable[float], confidence: float = 0.95) -> Summary:
    """Mean and the t-interval half-width at `confidence` of the finite values."""
    xs = finite(values)
    n = len(xs)
    if n == 0:
        return Summary(float("nan"), float("nan"), 0)
    mean = sum(xs) / n
    if n < 2:
        return Summary(mean, float("nan"), 1)
    var = sum((x - mean) ** 2 for x in xs) / (n - 1)
    t = float(_scipy_stats.t.ppf(0.5 + confidence / 2, n - 1))
    return Summary(mean, t * math.sqrt(var / n), n)


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Summary:
    """Mean and interval of a[i] - b[i] over pairs where both are finite (same clips, two systems)."""
    if len(a) != len(b):
        raise ValueError(f"paired_difference: {len(a)} values vs {len(b)}")
    diffs = [x - y for x, y in zip(a, b) if len(finite([x, y])) == 2]
    return mean_ci(diffs, confidence)


def std(values: Iterable[float]) -> float:
    """Sample standard deviation of the finite values (nan with fewer than two)."""
    xs = finite(values)
    if len(xs) < 2:
        return float("nan")
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
