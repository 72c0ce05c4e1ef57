"""Wall-clock marks of a run's training steps, for the benchmarks (scripts/bench*.py)."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import pytorch_lightning as pl


class StepTimer(pl.Callback):
    """Marks the first step, the first timed step (after ``warmup`` steps) and the end of the
    latest step. Built by Hydra inside ``train()`` (``+callbacks.timer._target_=...``), so the
    marks are kept on the class for the caller to read."""

    marks: ClassVar[dict[str, float]] = {}
    warmup: ClassVar[int] = 0

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == 0:
            self.marks["first_step"] = time.perf_counter()
            # one epoch's batches (after limit_train_batches): a partial epoch's seconds scale to it
            self.marks["batches_per_epoch"] = trainer.num_training_batches
        if trainer.global_step == self.warmup:
            self.marks["timed_start"] = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.marks["timed_end"] = time.perf_counter()
        self.marks["steps"] = trainer.global_step
