"""Reading OUT/metrics.csv (Lightning's CSVLogger) and drawing the loss curve PNG."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np


def read_metrics(csv_path: str | Path, *, finite_only: bool = True) -> dict[str, tuple[list[int], list[float]]]:
    """{column: (steps, values)} for every metric column, skipping empty cells (Lightning writes sparse rows)
    and, with `finite_only`, NaN / inf values."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    path = Path(csv_path)
    if not path.is_file():
        return out
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            step = int(float(row.get("step") or 0))
            for key, cell in row.items():
                if key in ("step", "epoch") or cell in (None, ""):
                    continue
                try:
                    value = float(cell)
                except ValueError:
                    continue
                if math.isfinite(value) or not finite_only:
                    steps, values = out.setdefault(key, ([], []))
                    steps.append(step)
                    values.append(value)
    return out


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
    from matplotlib.figure import Figure

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
