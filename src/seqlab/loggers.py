"""Lightning's CSV logger, made to continue a resumed run's metrics.csv instead of deleting it."""

from __future__ import annotations

import csv
import os
from typing import Any

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger as LightningCSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter


class _ContinuedWriter(ExperimentWriter):
    """Keeps the rows of an existing metrics.csv logged before ``purge_step``."""

    def __init__(self, log_dir: str, purge_step: int | None) -> None:
        self.purge_step = purge_step
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        # Lightning's writer deletes metrics.csv from a dir that holds anything (a run dir
        # always does): a resumed run keeps the rows up to the step it continues from, as
        # TensorBoard's purge_step keeps its events; those after it are logged again
        if not os.path.isfile(self.metrics_file_path):
            return
        with open(self.metrics_file_path, newline="") as file:
            reader = csv.DictReader(file)
            header, rows = list(reader.fieldnames or []), list(reader)
        if self.purge_step is not None:
            rows = [r for r in rows if not r.get("step") or int(r["step"]) < self.purge_step]
        with open(self.metrics_file_path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = header


class CSVLogger(LightningCSVLogger):
    """``pytorch_lightning.loggers.CSVLogger`` that a resumed run continues: ``purge_step`` is
    where it resumes (train() passes it, as to the TensorBoard logger)."""

    def __init__(self, *args: Any, purge_step: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._purge_step = purge_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuedWriter(self.log_dir, self._purge_step)
        return self._experiment
