"""A test's view of what a run trained on: each training batch, and the autograd mode it ran in."""

from __future__ import annotations

from typing import ClassVar

import pytorch_lightning as pl
import torch


class BatchProbe(pl.Callback):
    """Built by Hydra inside ``train()`` (``+callbacks.probe._target_=batch_probe.BatchProbe``):
    the latest one is ``BatchProbe.latest``."""

    latest: ClassVar[BatchProbe | None] = None

    def __init__(self) -> None:
        self.train_inputs: list[torch.Tensor] = []  # (B, T) of every training step
        self.anomaly_detection: list[bool] = []  # torch's anomaly mode at every training step
        self.val_batches = 0  # after the sanity check
        BatchProbe.latest = self

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module, batch, batch_idx) -> None:
        self.train_inputs.append(batch.inputs.detach().cpu().clone())
        self.anomaly_detection.append(torch.is_anomaly_enabled())

    def on_validation_batch_start(self, trainer: pl.Trainer, *args: object) -> None:
        if not trainer.sanity_checking:
            self.val_batches += 1
