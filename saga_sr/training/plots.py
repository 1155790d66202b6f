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
    """Train loss (raw and smoothed) and val loss against step, log-scaled, as a PNG."""
    from matplotlib.figure import Figure  # lazy: matplotlib is slow to import and only drawing needs it

    metrics = read_metrics(csv_path)
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    train = metrics.get("train/loss")
    if train and train[0]:
        ax.plot(train[0], train[1], color="C0", alpha=0.3, lw=0.8, label="train/loss")
        ax.plot(train[0], smooth(train[1], max(1, len(train[1]) // 20)), color="C0", label="train/loss (smoothed)")
    val = metrics.get("val/loss")
    if val and val[0]:
        ax.plot(val[0], val[1], "o--", color="C1", ms=4, label="val/loss (fixed t)")
    if (train and train[0]) or (val and val[0]):
        values = (train[1] if train else []) + (val[1] if val else [])
        if min(values) > 0:
            ax.set_yscale("log")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no loss values were logged", ha="center", transform=ax.transAxes)
    ax.set_xlabel("step")
    ax.set_ylabel("flow loss (velocity MSE)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    png = Path(png_path)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    return png


def loss_curves(curves: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]], path: str | Path,
                *, title: str = "training and validation loss") -> Path:
    """All runs on one plot: `curves[run][kind] = (steps, losses)`, kind "train" (solid) or "val" (dashed)."""
    from matplotlib.figure import Figure  # lazy: matplotlib is slow to import and only drawing needs it

    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    colors = [f"C{i}" for i in range(10)]
    plotted = 0
    for i, (run, kinds) in enumerate(curves.items()):
        for kind, style, marker in (("train", "-", None), ("val", "--", "o")):
            steps, values = kinds.get(kind, ((), ()))
            if len(steps):
                ax.plot(list(steps), list(values), ls=style, marker=marker, ms=3, color=colors[i % 10],
                        label=f"{run} {kind}")
                plotted += 1
    if plotted:
        ax.legend(fontsize=8, ncols=2)
    else:
        ax.text(0.5, 0.5, "no loss values were logged", ha="center", transform=ax.transAxes)
    ax.set_xlabel("step")
    ax.set_ylabel("flow loss (MSE on velocity)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return save_figure(fig, Path(path))
