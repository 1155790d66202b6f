"""A CSVLogger that keeps OUT/metrics.csv across resumes.

Lightning's CSV writer deletes an existing metrics.csv when it starts; a resumed run must instead keep the
rows logged before the checkpoint's step (rows at or after it are dropped: the resumed run logs them again).
"""

from __future__ import annotations

import csv
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment


class _KeepingWriter(ExperimentWriter):
    def __init__(self, log_dir: str, keep_before_step: int | None) -> None:
        self._keep_before = keep_before_step
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        if self._keep_before is None:
            path.unlink()
            return
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            keys = list(reader.fieldnames or [])
            rows = [r for r in reader if _step(r) < self._keep_before]
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = keys


def _step(row: dict) -> int:
    try:
        return int(float(row.get("step") or 0))
    except ValueError:
        return 0


class ResumableCSVLogger(CSVLogger):
    """CSVLogger writing `save_dir/metrics.csv`; with `keep_before_step` (a resume) earlier rows are kept."""

    def __init__(self, save_dir: str, keep_before_step: int | None = None) -> None:
        super().__init__(save_dir=save_dir, name="", version="")
        self._keep_before = keep_before_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _KeepingWriter(self.log_dir, self._keep_before)
        return self._experiment
