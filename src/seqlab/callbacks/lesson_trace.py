"""The lesson script's trace, one line per training step:
``0 loss: 1.7802648544311523 prediction str: iiiiii``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch

from seqlab.callbacks.tensorboard import tensorboard_writers
from seqlab.data.base import Batch

LESSON_LOSS = "lesson/loss"  # TensorBoard tag: step i's training loss, at step i


class LessonTrace(pl.Callback):
    """Prints each step's loss and prediction as the lesson's loop does, and logs the loss.

    The lesson predicts from the outputs of the step's own forward pass, before the optimizer
    step; seqlab's validation predicts after it. So before each step the batch's first sequence
    is run once more without gradients: the same outputs as the step's when the network draws
    nothing at random (no dropout). That is an extra forward pass per step, and the trace is
    one line per step: for the lessons' one-sample runs only.

    The loss is printed as the lesson prints it, the repr of ``loss.item()`` (all digits of the
    float32 value), and logged under :data:`LESSON_LOSS` at the step it was computed at.
    """

    def __init__(self) -> None:
        self._step = 0
        self._prediction = ""

    @torch.no_grad()
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Batch, batch_idx: int
    ) -> None:
        self._step = trainer.global_step  # before the optimizer step counts it
        lengths = None if batch.lengths is None else batch.lengths[:1]
        net = pl_module.net
        outputs = net(batch.inputs[:1], lengths)[0][0]  # (T, C), or (C,) many-to-one
        ids = net.predict(outputs).reshape(-1).tolist()
        self._prediction = "".join(pl_module.class_names[i] for i in ids)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Batch,
        batch_idx: int,
    ) -> None:
        loss = (outputs["loss"] if isinstance(outputs, Mapping) else outputs).item()
        if not trainer.is_global_zero:
            return
        print(f"{self._step} loss: {loss!r} prediction str: {self._prediction}", flush=True)
        for writer in tensorboard_writers(trainer):
            writer.add_scalar(LESSON_LOSS, loss, global_step=self._step)
