"""Training entry point: the one place that reads the whole config and builds every object."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig
from pytorch_lightning.callbacks import LearningRateMonitor
from rich.console import Console
from rich.table import Table

from seqlab.callbacks.predictions import LessonPredictions, prediction_rows
from seqlab.callbacks.summary import RunSummary, record_failure
from seqlab.config import instantiate_setting, run_hparams
from seqlab.data import SeqDataModule
from seqlab.errors import SettingError, check_choice
from seqlab.inference import Prediction
from seqlab.launch import discard_unused_run_dir, is_multirun, quiet_known_noise, share_machine
from seqlab.metrics import METRICS, METRICS_FILE, task_metrics
from seqlab.module import SeqModule

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    run_dir: Path
    optimized_metric: str
    final: dict[str, float]
    best: dict[str, float]
    predictions: list[Prediction]

    @property
    def optimized_value(self) -> float:
        if self.optimized_metric not in self.best:
            logged = ", ".join(self.best) or "nothing"
            raise RuntimeError(
                f"optimized_metric {self.optimized_metric!r} was never logged ({logged} was)"
            )
        return self.best[self.optimized_metric]


def train(cfg: DictConfig) -> RunResult:
    """Build the DataModule, model, loggers, callbacks and Trainer from ``cfg``, and fit.

    Every setting is checked while the objects are built, before any training: a bad one
    raises :class:`SettingError` naming its key.
    """
    quiet_known_noise()
    check_choice("optimized_metric", cfg.optimized_metric, METRICS)
    share_machine(cfg)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    run_dir = Path(cfg.paths.output_dir)

    datamodule: SeqDataModule = instantiate_setting(cfg.data, "data")
    if cfg.optimized_metric not in task_metrics(datamodule.task):
        raise SettingError(
            "optimized_metric",
            cfg.optimized_metric,
            f"a {datamodule.task} run logs {', '.join(task_metrics(datamodule.task))}",
        )
    model: SeqModule = instantiate_setting(
        cfg.model,
        "model",
        vocab=datamodule.vocab.tokens,
        class_names=datamodule.class_names,
        task=datamodule.task,
    )
    loggers = _instantiate_all(cfg.get("logger"), "logger")
    callbacks = _instantiate_all(cfg.get("callbacks"), "callbacks")
    if not loggers:  # Lightning refuses a learning-rate monitor with nothing to log to
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    predictions = LessonPredictions()
    summary = RunSummary(
        run_dir / METRICS_FILE, run_hparams(cfg), cfg.optimized_metric, predictions
    )
    trainer: pl.Trainer = instantiate_setting(
        cfg.trainer,
        "trainer",
        logger=loggers or False,
        callbacks=[*callbacks, predictions, summary],
    )

    trainer.fit(model, datamodule=datamodule)

    result = RunResult(
        run_dir, cfg.optimized_metric, summary.final, summary.best, predictions.latest
    )
    if trainer.is_global_zero:
        _print_result(result)
    return result


def _instantiate_all(group: DictConfig | None, key: str) -> list:
    """One object per named entry; ``callbacks.progress_bar=null`` switches an entry off."""
    return [
        instantiate_setting(node, f"{key}.{name}")
        for name, node in (group or {}).items()
        if node is not None
    ]


def _print_result(result: RunResult) -> None:
    console = Console()
    if result.predictions:
        header, *rows = prediction_rows(result.predictions)
        table = Table(*header, title="final prediction", title_justify="left")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    shown = [m for m in METRICS if m in result.final]
    # soft_wrap: long lines stay whole, so a path can be copied from the terminal
    console.print(
        "  ".join(f"{m} {result.final[m]:.4f} (best {result.best[m]:.4f})" for m in shown),
        soft_wrap=True,
    )
    run_dir = os.path.relpath(result.run_dir)
    console.print(f"run dir: {run_dir}\nlogs:    tensorboard --logdir {run_dir}", soft_wrap=True)


def main(cfg: DictConfig) -> float:
    """Hydra's task function: train, and return the optimised metric's best value.

    A bad setting in a single run ends it with one line on stderr and exit status 1, and the
    run dir Hydra made for it is removed. In a sweep every failure is recorded in the job's
    metrics.json and re-raised, so the launcher marks the job failed and the others go on.
    """
    try:
        return train(cfg).optimized_value
    except SettingError as err:
        if not is_multirun():
            discard_unused_run_dir()
            raise SystemExit(f"error: {err}") from None
        record_failure(Path(cfg.paths.output_dir) / METRICS_FILE, err)
        raise
    except Exception as err:
        record_failure(Path(cfg.paths.output_dir) / METRICS_FILE, err)
        raise
