"""Wall-clock marks of a run's training steps, for the benchmarks (scripts/bench*.py)."""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar, Protocol

import pytorch_lightning as pl


class TimedSteps(Protocol):
    """What :class:`StepTimer` calls through the timed steps: :class:`Turns`, or a benchmark's
    stopwatch for a side run alone."""

    def at_step(self, step: int) -> None: ...

    def finish(self) -> None: ...


class Turns:
    """One side of a benchmark whose sides take turns: its timed steps run in turns of
    ``steps`` steps, each started by the conductor (a line on ``inbox``) and reported when it
    ends (its seconds, a line on ``outbox``). Two processes measured this way never train at the
    same time, and a machine whose speed drifts slows both alike, turn by turn.

    Call :meth:`at_step` at the start of every timed step (0, 1, ...) and :meth:`finish` after
    the last one: the side then waits for the conductor's last line, so what it does next
    (validation, checkpoints, exit) runs in no other side's turn.
    """

    def __init__(self, inbox: int, outbox: int, steps: int) -> None:
        self._inbox = os.fdopen(inbox, "r")
        self._outbox = os.fdopen(outbox, "w")
        self.steps = steps
        self._started = 0.0

    def _say(self, line: str) -> None:
        self._outbox.write(line + "\n")
        self._outbox.flush()

    def _wait(self) -> None:
        if not self._inbox.readline():
            raise RuntimeError("the benchmark's conductor went away")
        self._started = time.perf_counter()

    def at_step(self, step: int) -> None:
        if step % self.steps:
            return
        if step:
            self._say(f"{time.perf_counter() - self._started!r}")
        else:
            self._say("ready")
        self._wait()

    def finish(self) -> None:
        self._say(f"{time.perf_counter() - self._started!r}")
        self._wait()


class StepTimer(pl.Callback):
    """Marks the first step, the first timed step (after ``warmup`` steps) and the end of the
    latest step; with ``turns`` set, runs the timed steps in the benchmark's turns (or through
    its stopwatch). Built by Hydra inside ``train()`` (``+callbacks.timer._target_=...``), so
    the marks and the turns are kept on the class, for the caller to read and set."""

    marks: ClassVar[dict[str, float]] = {}
    warmup: ClassVar[int] = 0
    turns: ClassVar[TimedSteps | None] = None
    timed_steps: ClassVar[int] = 0  # with turns: the last timed step ends the last turn

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == 0:
            self.marks["first_step"] = time.perf_counter()
            # one epoch's batches (after limit_train_batches): a partial epoch's seconds scale to it
            self.marks["batches_per_epoch"] = trainer.num_training_batches
        if trainer.global_step == self.warmup:
            self.marks["timed_start"] = time.perf_counter()
        timed = trainer.global_step - self.warmup
        if self.turns is not None and 0 <= timed < self.timed_steps:
            self.turns.at_step(timed)

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.marks["timed_end"] = time.perf_counter()
        self.marks["steps"] = trainer.global_step
        if self.turns is not None and trainer.global_step == self.warmup + self.timed_steps:
            self.turns.finish()
