"""Training entry point: the one place that reads the whole config and builds every object."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.accelerators import CPUAccelerator
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint, ModelSummary
from pytorch_lightning.callbacks.progress import ProgressBar
from pytorch_lightning.plugins.environments import SLURMEnvironment
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from pytorch_lightning.utilities.rank_zero import rank_zero_only
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from seqlab.callbacks.last_checkpoint import LastCheckpoint
from seqlab.callbacks.predictions import LessonPredictions, prediction_rows
from seqlab.callbacks.summary import RunSummary, record_failure
from seqlab.checkpoint import AtomicCheckpointIO, SeqlabSection, check_continuation, continuation
from seqlab.config import instantiate_setting, run_hparams, switched_off
from seqlab.data import CLASSIFY, SeqDataModule
from seqlab.errors import RefusedSettings, RunFailed, SettingError
from seqlab.inference import Prediction
from seqlab.interrupt import GracefulStop, RunInterrupted, interrupts
from seqlab.launch import (
    check_launch,
    discard_unused_run_dir,
    is_multirun,
    quiet_known_noise,
    share_machine,
)
from seqlab.metrics import METRICS, METRICS_FILE, task_metrics
from seqlab.module import SeqModule
from seqlab.optimization import Schedule, probe
from seqlab.precision import check_autocast_kernels
from seqlab.preemption import requeue, requeued_run
from seqlab.runlock import RunLock, check_free
from seqlab.settings import check_train_config
from seqlab.settings.optim import split_schedule
from seqlab.stopping import report_interrupt
from seqlab.tracking import check_trackers

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    run_dir: Path
    optimized_metric: str
    final: dict[str, float]
    best: dict[str, float]
    predictions: list[Prediction]

    @classmethod
    def read(cls, run_dir: Path) -> RunResult:
        """The result recorded in a run dir's metrics.json."""
        summary = json.loads((run_dir / METRICS_FILE).read_text())
        predictions = [Prediction(**p) for p in summary["predictions"]]
        final, best = summary["final"], summary["best"]
        return cls(run_dir, summary["optimized_metric"], final, best, predictions)

    @property
    def optimized_value(self) -> float:
        if self.optimized_metric not in self.best:
            logged = ", ".join(self.best) or "nothing"
            raise RunFailed(
                f"no validation ran, so optimized_metric {self.optimized_metric} was never "
                f"measured; metrics.json keeps what was logged ({logged})"
            )
        return self.best[self.optimized_metric]


def train(cfg: DictConfig) -> RunResult:
    """Build the DataModule, model, loggers, callbacks and Trainer from ``cfg``, and fit.

    Every setting's type is checked before anything is built (:mod:`seqlab.settings`), its
    range as its object is built, all before any training: a bad one raises
    :class:`SettingError` naming its key.
    """
    quiet_known_noise()
    settings = check_train_config(cfg)
    check_launch(cfg)
    check_trackers(cfg.get("logger"))  # an extra not installed: one line, nothing built
    share_machine(cfg)
    pl.seed_everything(settings.seed, workers=True, verbose=False)
    run_dir = Path(cfg.paths.output_dir)
    resume = settings.resume or requeued_run(run_dir)  # a requeued SLURM job goes on in place
    claim = (run_dir, "resume", resume) if resume else (run_dir, "paths.output_dir", str(run_dir))
    if rank_zero_only.rank == 0:  # the ranks Lightning starts for DDP train in rank zero's dir
        check_free(*claim)  # a run dir in use is refused before anything is built or written

    datamodule: SeqDataModule = instantiate_setting(cfg.data, "data")
    logged = task_metrics(datamodule.task, datamodule.vocab.level)
    if cfg.optimized_metric not in logged:
        raise SettingError(
            "optimized_metric",
            cfg.optimized_metric,
            f"a {_run_kind(datamodule)} run logs {', '.join(logged)}",
        )
    # partials: the module calls them with its parameters (and the optimizer)
    optimizer = instantiate_setting(cfg.optimizer, "optimizer")
    schedule = instantiate_schedule(cfg.get("scheduler"))
    if schedule and schedule.monitor and schedule.monitor not in logged:
        reason = f"a {_run_kind(datamodule)} run logs {', '.join(logged)}"
        raise SettingError("scheduler.monitor", schedule.monitor, reason)
    probe(optimizer, schedule)
    model: SeqModule = instantiate_setting(
        cfg.model,
        "model",
        passed={
            "vocab": datamodule.vocab.to_dict(),
            "class_names": datamodule.class_names,
            "task": datamodule.task,
            "optimizer": optimizer,
            "scheduler": schedule,
        },
    )
    callbacks = [
        c
        for c in _instantiate_all(cfg.get("callbacks"), "callbacks")
        if not _off_in_trainer(c, cfg.trainer)
    ]
    start = continuation(resume, settings.ckpt_path, _last_checkpoint(callbacks))
    if start:
        check_continuation(start, model)
    # resuming in place: TensorBoard hides what the stopped run logged after its last
    # checkpoint, since those steps are logged again
    purge_step = start.checkpoint["global_step"] + 1 if start and start.in_place else None
    loggers = _instantiate_all(cfg.get("logger"), "logger", purge_step)
    if not loggers:  # Lightning refuses a learning-rate monitor with nothing to log to
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    predictions = LessonPredictions()
    summary = RunSummary(
        run_dir / METRICS_FILE, run_hparams(cfg), cfg.optimized_metric, predictions
    )
    try:
        trainer: pl.Trainer = instantiate_setting(
            cfg.trainer,
            "trainer",
            **_switched_off(cfg.get("callbacks")),
            logger=loggers or False,
            callbacks=[*callbacks, predictions, summary, SeqlabSection(), GracefulStop()],
            plugins=[AtomicCheckpointIO(), *_cluster_environment()],
        )
    except InstantiationException as err:
        # a precision, strategy or accelerator Lightning cannot use: its message names it
        if isinstance(err.__cause__, ValueError | ImportError | MisconfigurationException):
            raise RefusedSettings("trainer", str(err.__cause__)) from None
        raise
    on_cpu = isinstance(trainer.accelerator, CPUAccelerator)
    check_autocast_kernels(cfg.trainer.get("precision"), trainer.precision, on_cpu, model)

    if trainer.is_global_zero:  # taken once every setting is checked: a bad one leaves nothing
        RunLock.acquire(*claim)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=start.path if start else None)
    except RunInterrupted as stop:
        stop.epoch, stop.step = trainer.current_epoch, trainer.global_step
        stop.trained = summary.trained
        raise

    if not trainer.is_global_zero:
        return RunResult(
            run_dir, cfg.optimized_metric, summary.final, summary.best, predictions.latest
        )
    # what rank 0 wrote, also when other processes trained the model (ddp_spawn)
    result = RunResult.read(run_dir)
    _print_result(result)
    return result


def _cluster_environment() -> list[SLURMEnvironment]:
    """Under SLURM, Lightning's environment without its own requeue on SIGUSR1 (which saves
    wherever the run is, mid-validation too): seqlab stops at a step boundary and requeues."""
    return [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []


def _run_kind(datamodule: SeqDataModule) -> str:
    """``classify``, or ``next_token on words`` (the metrics a next-token run logs depend on it)."""
    if datamodule.task == CLASSIFY:
        return datamodule.task
    return f"{datamodule.task} on {datamodule.vocab.unit}s"


def instantiate_schedule(node: DictConfig | None) -> Schedule | None:
    """The ``scheduler`` group as a :class:`Schedule`: Lightning's keys (interval, monitor)
    taken out, the rest a partial of the torch class; None for ``scheduler=none``."""
    if not node:
        return None
    torch_part, lightning = split_schedule(OmegaConf.to_container(node, resolve=True))
    build = instantiate_setting(OmegaConf.create(torch_part), "scheduler")
    return Schedule(build, **lightning)


def _instantiate_all(group: DictConfig | None, key: str, purge_step: int | None = None) -> list:
    """One object per named entry; ``callbacks.progress_bar=null`` switches an entry off (and
    a null ``callbacks.early_stopping.patience`` early stopping).

    ``purge_step``: where a resumed run continues, for the loggers that hide what the stopped
    run logged after it (TensorBoard's SummaryWriter, seqlab's CSV logger).
    """
    objects = []
    for name, node in (group or {}).items():
        if switched_off(node):
            continue
        target = str(node.get("_target_", ""))
        purging = purge_step is not None and target.endswith(PURGING)
        extra = {"purge_step": purge_step} if purging else {}
        objects.append(instantiate_setting(node, f"{key}.{name}", **extra))
    return objects


PURGING = ("TensorBoardLogger", "seqlab.loggers.CSVLogger")  # loggers that take purge_step


# callbacks.NAME=null means none of it, not Lightning's stand-in for it
STAND_INS = {"progress_bar": "enable_progress_bar", "model_summary": "enable_model_summary"}


def _off_in_trainer(callback: object, trainer: DictConfig) -> bool:
    """``trainer.enable_progress_bar=false`` (or ``enable_model_summary``) switches the config's
    own progress bar (or model summary) off too, which Lightning refuses to take with it."""
    if isinstance(callback, ProgressBar):
        return trainer.get("enable_progress_bar") is False
    if isinstance(callback, ModelSummary):
        return trainer.get("enable_model_summary") is False
    return False


def _switched_off(callbacks: DictConfig | None) -> dict[str, bool]:
    """Trainer flags for the default callbacks a config switched off with ``null``."""
    nodes = callbacks or {}
    return {
        flag: False for name, flag in STAND_INS.items() if name in nodes and nodes[name] is None
    }


def _last_checkpoint(callbacks: list) -> Path | None:
    """Where this run keeps last.ckpt, if it keeps one."""
    for callback in callbacks:
        if isinstance(callback, LastCheckpoint):
            return callback.path
        if isinstance(callback, ModelCheckpoint) and callback.save_last and callback.dirpath:
            return Path(callback.format_checkpoint_name({}, callback.CHECKPOINT_NAME_LAST))
    return None


def _print_result(result: RunResult) -> None:
    console = Console()
    if result.predictions:
        header, *rows = prediction_rows(result.predictions)
        table = Table(*header, title="final prediction", title_justify="left")
        for row in rows:
            table.add_row(*map(escape, row))  # text like "[x]" is not rich markup
        console.print(table)
    shown = [m for m in METRICS if m in result.final]
    # soft_wrap: long lines stay whole, so a path can be copied from the terminal
    console.print(
        "  ".join(f"{m} {result.final[m]:.4f} (best {result.best[m]:.4f})" for m in shown),
        soft_wrap=True,
    )
    run_dir = os.path.relpath(result.run_dir)
    console.print(f"run dir: {run_dir}", soft_wrap=True)
    if any(result.run_dir.glob("events.out.tfevents.*")):  # none without a TensorBoard logger
        console.print(f"logs:    tensorboard --logdir {run_dir}", soft_wrap=True)


def main(cfg: DictConfig) -> float:
    """Hydra's task function: train, and return the optimised metric's best value.

    A bad setting in a single run ends it with one line on stderr and exit status 1, and what
    Hydra made for it is removed. A run that fails for a reason one line tells (a full disk, a
    diverged loss) is marked failed in its metrics.json with that line. SIGINT / SIGTERM end it
    at a step boundary with last.ckpt saved, status ``interrupted``, the command that resumes
    it, and exit status 130 / 143; a sweep stops there and says which jobs did not run. In a
    sweep, any other failure is recorded in the job's metrics.json and re-raised, so the
    launcher marks the job failed and the others go on.
    """
    interrupts.install()
    summary = Path(cfg.paths.output_dir) / METRICS_FILE
    try:
        return train(cfg).optimized_value
    except SettingError as err:
        if not is_multirun():
            discard_unused_run_dir()
            raise SystemExit(f"error: {err}") from None
        record_failure(summary, err)
        raise
    except RunInterrupted as stop:
        if not requeue(stop.signum, rank_zero_only.rank):
            report_interrupt(Path(cfg.paths.output_dir), stop)
        raise SystemExit(stop.exit_status) from None
    except RunFailed as err:
        record_failure(summary, err)
        if not is_multirun():
            raise SystemExit(f"error: {err}") from None
        raise
    except Exception as err:
        record_failure(summary, err)
        raise
