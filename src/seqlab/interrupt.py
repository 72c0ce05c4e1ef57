"""SIGINT and SIGTERM end a run cleanly: at a step boundary, with last.ckpt saved to resume from.

Under SLURM, so do SIGUSR1 and SIGUSR2, its signals before a time limit or a preemption
(:mod:`seqlab.preemption` then requeues the job).

While training runs, a signal only asks to stop: :class:`GracefulStop` raises
:class:`RunInterrupted` after the current training step (or, if it came during the epoch's last
step or its validation, before the next epoch), so the checkpoint it leaves resumes exactly.
Before training starts there is nothing to save and the run stops at once; a second signal
while a stop is pending stops at once too.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import pytorch_lightning as pl

from seqlab.preemption import REQUEUE_SIGNALS, under_slurm

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stopping_signals() -> tuple[signal.Signals, ...]:
    # outside SLURM SIGUSR2 is submitit_local's time-limit signal: its handler stays
    return SIGNALS + REQUEUE_SIGNALS if under_slurm() else SIGNALS


class RunInterrupted(BaseException):
    """The run was stopped by ``signum``; not an Exception, so no ``except Exception`` keeps it.

    ``forced``: a second signal stopped it at once, wherever it was (nothing is saved then).
    """

    def __init__(self, signum: int, forced: bool = False) -> None:
        self.signum, self.forced = signum, forced
        # where it stopped, and whether this process had trained a step (set by train())
        self.epoch: int | None = None
        self.step: int | None = None
        self.trained = False
        super().__init__(f"stopped by {self.signal_name}")

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        return 128 + self.signum  # what a shell reports for a process ended by the signal


class _Interrupts:
    """The process's SIGINT / SIGTERM handler: defers a stop while a step may be running."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.deferring = False
        self.requested: int | None = None

    def install(self) -> None:
        """A new run in this process: nothing requested yet, and the signals taken."""
        self.pid, self.deferring, self.requested = os.getpid(), False, None
        self.take_signals()

    def take_signals(self) -> None:
        for signum in stopping_signals():
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if os.getpid() != self.pid:  # a forked DataLoader worker: the trainer decides
            raise KeyboardInterrupt
        if self.deferring and self.requested is None:
            self.requested = signum
            return
        raise RunInterrupted(signum, forced=self.deferring)


interrupts = _Interrupts()


def _requested(trainer: pl.Trainer) -> bool:
    """A stop was asked for, here or (under DDP) on any rank: the ranks stop at the same step,
    or the others would wait for this one in their next all-reduce."""
    requested = interrupts.requested is not None
    if trainer.world_size > 1:  # one small all-reduce a step, as Lightning's own SIGTERM check
        requested = trainer.strategy.reduce_boolean_decision(requested, all=False)
    return requested


class GracefulStop(pl.Callback):
    """Turns a pending SIGINT / SIGTERM into :class:`RunInterrupted` at a step boundary."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning's own SIGTERM handler (installed by now) would stop mid-validation, where a
        # resumed run cannot pick up exactly: this one takes its place until training ends
        if interrupts.pid is None:  # train() called without main(): a notebook, a test
            interrupts.install()
        interrupts.take_signals()
        interrupts.deferring = True

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if not trainer.is_last_batch and _requested(trainer):
            raise RunInterrupted(interrupts.requested or signal.SIGTERM)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # a signal during the last step or validation: the epoch ended and last.ckpt holds it
        if _requested(trainer):
            raise RunInterrupted(interrupts.requested or signal.SIGTERM)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        interrupts.deferring = False

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        interrupts.deferring = False
