"""Loss-curve PNGs: one run's OUT/metrics.csv (train + val) and several runs side by side (the ladder)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from saga_sr.audio.plots import save_figure
from saga_sr.training.metrics_csv import read_metrics


def smooth(values: list[float], window: int) -> np.ndarray:
    """Trailing moving average (same length as `values`)."""
    v = np.asarray(values, dtype=np.float64)
    if window <= 1 or v.size == 0:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, v.size + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def loss_curve(csv_path: str | Path, png_path: str | Path, *, title: str = "SAGA-SR training") -> Path:
    """One run's OUT/metrics.csv as a PNG: train loss (raw and smoothed) and val loss against step."""
    metrics = read_metrics(csv_path)
    kinds = {kind: metrics[f"{kind}/loss"] for kind in ("train", "val") if metrics.get(f"{kind}/loss")}
    return loss_curves({"": kinds}, png_path, title=title)


def loss_curves(
    curves: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]],
    path: str | Path,
    *,
    title: str = "training and validation loss",
) -> Path:
    """Runs on one plot: `curves[run][kind] = (steps, losses)`, kind "train" (solid; raw faded under a trailing
    mean of len/20 points once there are 40 or more) or "val" (dashed); log-scaled when every loss is > 0."""
    from matplotlib.figure import Figure  # lazy: matplotlib is slow to import and only drawing needs it

    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    values: list[float] = []
    for i, (run, kinds) in enumerate(curves.items()):
        color = f"C{i % 10}"
        for kind, style, marker in (("train", "-", None), ("val", "--", "o")):
            steps, losses = (list(v) for v in kinds.get(kind, ((), ())))
            if not steps:
                continue
            label = f"{run} {kind}".strip()
            values += losses
            window = len(losses) // 20
            if kind == "train" and window > 1:
                ax.plot(steps, losses, color=color, alpha=0.3, lw=0.8)
                losses, label = smooth(losses, window), f"{label} (smoothed)"
            ax.plot(steps, losses, ls=style, marker=marker, ms=3, color=color, label=label)
    if values:
        if min(values) > 0:
            ax.set_yscale("log")
        ax.legend(fontsize=8, ncols=2)
    else:
        ax.text(0.5, 0.5, "no loss values were logged", ha="center", transform=ax.transAxes)
    ax.set_xlabel("step")
    ax.set_ylabel("flow loss (velocity MSE)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return save_figure(fig, Path(path))
