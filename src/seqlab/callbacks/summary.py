"""``metrics.json`` and TensorBoard's HPARAMS tab: each run's final and best metrics."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger

from seqlab.callbacks.predictions import LessonPredictions
from seqlab.metrics import METRICS, TRAIN_LOSS, VAL_LOSS, metric_mode


def _strict(value: Any) -> Any:
    # NaN and inf are not JSON: a diverged metric is written as null
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict(v) for v in value]
    return value


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as strict JSON so that a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_strict(data), indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def record_failure(path: Path, error: BaseException) -> None:
    """Mark the run at ``path`` failed, unless the summary already recorded how it ended."""
    if path.is_file() and json.loads(path.read_text()).get("status") in ("failed", "interrupted"):
        return
    write_json(path, {"status": "failed", "error": f"{type(error).__name__}: {error}"})


class RunSummary(pl.Callback):
    """Tracks the final and best value of every logged metric.

    After every training epoch it rewrites ``path`` (``metrics.json``: the machine-readable
    summary later tools read) and fails the run if its loss is no longer finite. At the end of
    fit it logs ``hparams`` to TensorBoard with the real final and best metrics
    (``final/val/loss``, ``best/val/loss``, ...), so the HPARAMS tab can sort runs. Its state is
    saved in checkpoints, so a resumed run keeps its best values and wall time.
    """

    def __init__(
        self,
        path: str | Path,
        hparams: dict[str, Any],
        optimized_metric: str,
        predictions: LessonPredictions | None = None,
    ) -> None:
        self.path = Path(path)
        self.hparams, self.optimized_metric = hparams, optimized_metric
        self.predictions = predictions
        self.final: dict[str, float] = {}
        self.best: dict[str, float] = {}
        self.epochs = 0
        self.status = "running"
        self.error: str | None = None
        self._wall_time = 0.0  # of earlier sessions of this run (resume)
        self._started = time.monotonic()

    @property
    def wall_time(self) -> float:
        return self._wall_time + time.monotonic() - self._started

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.monotonic()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # validation of this epoch has run: callback_metrics hold its epoch means
        for name, value in trainer.callback_metrics.items():
            value = float(value)
            self.final[name] = value
            if name in METRICS and math.isfinite(value):
                better = min if metric_mode(name) == "min" else max
                self.best[name] = better(self.best.get(name, value), value)
        self.epochs = trainer.current_epoch + 1
        self._write(trainer)
        for name in (TRAIN_LOSS, VAL_LOSS):
            if not math.isfinite(self.final.get(name, 0.0)):
                raise FloatingPointError(
                    f"{name} is {self.final[name]} at epoch {self.epochs}: training diverged "
                    "(try a lower model.lr or trainer.gradient_clip_val=1.0)"
                )

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.status = "completed"
        self._write(trainer)
        if trainer.is_global_zero:
            # own tags, one point each: the HPARAMS tab shows them as columns, and the
            # metric's own chart gets no duplicate point
            metrics = {f"final/{name}": self.final[name] for name in METRICS if name in self.final}
            metrics |= {f"best/{name}": value for name, value in self.best.items()}
            for logger in trainer.loggers:
                if isinstance(logger, TensorBoardLogger):  # metrics here fill HPARAMS columns
                    logger.log_hyperparams(self.hparams, metrics=metrics, step=trainer.global_step)
                else:
                    logger.log_hyperparams(self.hparams)
                    logger.log_metrics(metrics, step=trainer.global_step)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self.status = "interrupted" if isinstance(exception, KeyboardInterrupt) else "failed"
        self.error = f"{type(exception).__name__}: {exception}"
        self._write(trainer)

    def summary(self, global_step: int) -> dict[str, Any]:
        return {
            "status": self.status,
            **({"error": self.error} if self.error else {}),
            "optimized_metric": self.optimized_metric,
            "epochs": self.epochs,
            "global_step": global_step,
            "wall_time_s": round(self.wall_time, 3),
            "num_threads": torch.get_num_threads(),
            "final": self.final,
            "best": self.best,
            "predictions": [asdict(p) for p in self.predictions.latest] if self.predictions else [],
        }

    def _write(self, trainer: pl.Trainer) -> None:
        if trainer.is_global_zero:
            write_json(self.path, self.summary(trainer.global_step))

    def state_dict(self) -> dict[str, Any]:
        return {"final": self.final, "best": self.best, "wall_time": self.wall_time}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.final, self.best = state_dict["final"], state_dict["best"]
        self._wall_time = state_dict["wall_time"]
