"""Reading OUT/metrics.csv (written by training.csvlog's Lightning CSVLogger) without importing Lightning:
used by the loss-curve plot, the ladder and the benchmarks."""

from __future__ import annotations

import csv
import math
from pathlib import Path


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
