"""A test's way to interrupt a run at a known step: the process sends itself a real signal."""

from __future__ import annotations

import os
import signal

import pytorch_lightning as pl


class SignalAtStep(pl.Callback):
    """Sends ``signal`` to this process as training step ``step`` starts (once); under DDP
    only in the process of global rank ``rank``, if given."""

    def __init__(self, step: int, signal: str = "SIGINT", rank: int | None = None) -> None:
        self.step, self.signal, self.rank, self.sent = step, signal, rank, False

    def on_train_batch_start(self, trainer: pl.Trainer, *args: object) -> None:
        if self.rank is not None and trainer.global_rank != self.rank:
            return
        if trainer.global_step == self.step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), getattr(signal, self.signal))
