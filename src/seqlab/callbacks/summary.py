"""``metrics.json`` and TensorBoard's HPARAMS tab: each run's final and best metrics."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks.early_stopping import EarlyStoppingReason
from pytorch_lightning.loggers import TensorBoardLogger

from seqlab.callbacks.predictions import LessonPredictions
from seqlab.errors import RunFailed, SettingError, first_line
from seqlab.interrupt import RunInterrupted
from seqlab.metrics import METRICS, TRAIN_LOSS, TRAIN_LOSS_STEP, VAL_LOSS, metric_mode


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
    """Write ``data`` as strict JSON so that a reader never sees a half-written file (under a
    temporary name of its own, so two writers never share one; removed if the write fails)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(json.dumps(_strict(data), indent=2, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def describe_error(error: BaseException) -> str:
    """One line for metrics.json: a known failure in its own words, else type and message."""
    if isinstance(error, RunFailed | SettingError):
        return str(error)
    return f"{type(error).__name__}: {first_line(error)}"


def record_failure(path: Path, error: BaseException) -> None:
    """Mark a run failed that ended before it wrote its summary (a bad setting in a sweep job).

    A metrics.json already there is left as it is: it is this run's own record of how it
    ended, or a resumed run's from before this process, which a failed start must not change.
    """
    if path.is_file():
        return
    with contextlib.suppress(OSError):  # a full disk: the one line on stderr still tells
        write_json(path, {"status": "failed", "error": describe_error(error)})


# what a checkpoint keeps of the summary, by type (with wall_time, a number)
SUMMARY_STATE = {"final": dict, "best": dict, "best_epoch": dict, "at_best": dict, "epochs": int}


class Diverged(RunFailed):
    """The training or validation loss is no longer a finite number."""


def _cluster_environment(trainer: pl.Trainer) -> str | None:
    environment = getattr(trainer.strategy, "cluster_environment", None)  # none: one device
    return type(environment).__name__ if environment is not None else None


def _stopped_early(trainer: pl.Trainer) -> dict[str, Any]:
    """``stopped_early``: the epoch (from 0) an EarlyStopping stopped the run at, and why."""
    for callback in trainer.early_stopping_callbacks:
        if callback.stopping_reason != EarlyStoppingReason.NOT_STOPPED:
            reason = callback.stopping_reason_message or callback.stopping_reason.name.lower()
            return {"stopped_early": {"epoch": callback.stopped_epoch, "reason": reason}}
    return {}


class RunSummary(pl.Callback):
    """Tracks the final and best value of every logged metric, and the epoch of each best.

    After every training epoch it rewrites ``path`` (``metrics.json``: the machine-readable
    summary later tools read) and fails the run if its loss is no longer finite. ``at_best``
    holds every metric of the epoch whose ``optimized_metric`` was best: the epoch best.ckpt
    holds. At the end of fit it logs ``hparams`` to TensorBoard with the real final and best
    metrics (``final/val/loss``, ``best/val/loss``, ...), so the HPARAMS tab can sort runs. Its
    state is saved in checkpoints, so a resumed run keeps its best values and wall time.

    A failure before this process trained a step leaves metrics.json as it was: a rejected
    resume changes nothing in the run dir.
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
        self.best_epoch: dict[str, int] = {}  # Lightning's epoch index (from 0), as checkpoints
        self.at_best: dict[str, float] = {}
        self.epochs = 0
        self.status = "running"
        self.error: str | None = None
        self.trained = False  # this process has started training
        self._wall_time = 0.0  # of earlier sessions of this run (resume)
        self._started = time.monotonic()

    @property
    def wall_time(self) -> float:
        return self._wall_time + time.monotonic() - self._started

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.monotonic()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.trained = True

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # validation of this epoch has run: callback_metrics hold its epoch means
        epoch = trainer.current_epoch
        current = {
            name: float(value)
            for name, value in trainer.callback_metrics.items()
            if name != TRAIN_LOSS_STEP  # a point within the epoch: the epoch's mean is train/loss
        }
        self.final.update(current)
        for name, value in current.items():
            if name not in METRICS or not math.isfinite(value):
                continue
            better = min if metric_mode(name) == "min" else max
            if name not in self.best or better(self.best[name], value) != self.best[name]:
                self.best[name], self.best_epoch[name] = value, epoch
                if name == self.optimized_metric:
                    self.at_best = {m: v for m, v in current.items() if m in METRICS}
        self.epochs = epoch + 1
        self._write(trainer)
        for name in (TRAIN_LOSS, VAL_LOSS):
            if not math.isfinite(self.final.get(name, 0.0)):
                raise Diverged(
                    f"{name} is {self.final[name]} at epoch {epoch}: training diverged "
                    "(try a lower optimizer.lr or trainer.gradient_clip_val=1.0)"
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
        if not self.trained:  # nothing of this process to record; an earlier summary stays
            return
        self.status = "interrupted" if isinstance(exception, RunInterrupted) else "failed"
        self.error = describe_error(exception)
        with contextlib.suppress(OSError):  # a full disk: the error line still tells
            self._write(trainer)

    def summary(self, trainer: pl.Trainer) -> dict[str, Any]:
        return {
            "status": self.status,
            **({"error": self.error} if self.error else {}),
            "optimized_metric": self.optimized_metric,
            "epochs": self.epochs,
            "global_step": trainer.global_step,
            "wall_time_s": round(self.wall_time, 3),
            "num_threads": torch.get_num_threads(),
            # how many processes trained, and who told Lightning their ranks: SLURMEnvironment
            # under srun, TorchElasticEnvironment under torchrun, LightningEnvironment for the
            # processes Lightning starts itself
            "world_size": trainer.world_size,
            "num_nodes": trainer.num_nodes,
            "cluster_environment": _cluster_environment(trainer),
            **_stopped_early(trainer),
            "final": self.final,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "at_best": self.at_best,
            "predictions": [asdict(p) for p in self.predictions.latest] if self.predictions else [],
        }

    def _write(self, trainer: pl.Trainer) -> None:
        if trainer.is_global_zero:
            write_json(self.path, self.summary(trainer))

    def state_dict(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in SUMMARY_STATE}
        return state | {"wall_time": self.wall_time}

    @classmethod
    def check_state(cls, state: Any) -> str | None:
        """What is wrong with a checkpoint's record of this callback, or None."""
        if not isinstance(state, dict) or not isinstance(state.get("wall_time"), int | float):
            return "no wall_time"
        for name in ("final", "best"):  # present since the first format; the rest may not be
            if not isinstance(state.get(name), dict):
                return f"no {name} metrics"
        for name, kind in SUMMARY_STATE.items():
            if name in state and not isinstance(state[name], kind):
                return f"its {name} is not a {kind.__name__}"
        return None

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for name in SUMMARY_STATE:
            if name in state_dict:
                setattr(self, name, state_dict[name])
        self._wall_time = state_dict["wall_time"]
