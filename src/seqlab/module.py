"""The LightningModule: builds the network from plain arguments, trains it, logs its metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from torch.nn import functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from seqlab.data.base import CLASSIFY, IGNORE_INDEX, TASKS, Batch, Sample
from seqlab.data.vocab import Vocab
from seqlab.errors import SettingError, check_choice, check_positive
from seqlab.inference import Prediction, classify, predict_next
from seqlab.metrics import TRAIN_ACC, TRAIN_LOSS, VAL_ACC, VAL_BPC, VAL_LOSS, task_metrics
from seqlab.models import RecurrentNet

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}


class SeqModule(pl.LightningModule):
    """A :class:`RecurrentNet` trained on a task the data decides.

    ``vocab``, ``class_names`` and ``task`` come from the DataModule; every other argument is a
    ``model.*`` setting. All of them are plain data saved in the checkpoint, which is all that
    is needed to rebuild the module (``SeqModule.load_from_checkpoint(path)``).
    """

    def __init__(
        self,
        vocab: Sequence[str],
        class_names: Sequence[str],
        task: str,
        cell: str = "rnn",
        nonlinearity: str = "tanh",
        hidden_size: int = 32,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        encoding: str = "onehot",
        embedding_dim: int = 16,
        head: str = "fc",
        optimizer: str = "adam",
        lr: float = 0.01,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        check_choice("task", task, TASKS)
        check_choice("optimizer", optimizer, OPTIMIZERS)
        check_positive("lr", lr)
        if weight_decay < 0:
            raise SettingError("weight_decay", weight_decay, "expected a number >= 0")
        self.save_hyperparameters()
        self.vocab = Vocab(vocab)
        self.class_names = list(class_names)
        self.net = RecurrentNet(
            vocab_size=len(self.vocab),
            num_outputs=len(self.class_names),
            many_to_one=task == CLASSIFY,
            pad_index=self.vocab.pad_index,
            cell=cell,
            nonlinearity=nonlinearity,
            hidden_size=hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
            encoding=encoding,
            embedding_dim=embedding_dim,
            head=head,
        )
        # epoch means weighted by scored predictions; no host sync until the epoch ends
        # nan_strategy="disable": a diverged loss stays NaN (and is caught), with no per-step check
        self.train_loss = MeanMetric(nan_strategy="disable")
        self.val_loss = MeanMetric(nan_strategy="disable")
        accuracy = dict(
            num_classes=len(self.class_names), average="micro", ignore_index=IGNORE_INDEX
        )
        self.train_acc, self.val_acc = (
            MulticlassAccuracy(**accuracy),
            MulticlassAccuracy(**accuracy),
        )

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.net(batch.inputs, batch.lengths)[0]

    def _scores(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scores = self(batch)  # (B, T, C) next-token, (B, C) many-to-one
        scores = scores.reshape(-1, scores.size(-1))  # (N, C): every prediction one row
        targets = batch.targets.reshape(-1).long()  # (N,), IGNORE_INDEX where not scored
        loss = F.cross_entropy(scores, targets, ignore_index=IGNORE_INDEX)
        return loss, scores, targets

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss, scores, targets = self._scores(batch)
        self.train_loss.update(loss, weight=(targets != IGNORE_INDEX).sum())
        self.train_acc.update(scores, targets)
        if self.trainer.is_last_batch:
            # the epoch means, registered once: each self.log call costs about a millisecond of
            # bookkeeping, more than a lesson's whole step
            self.log(TRAIN_LOSS, self.train_loss, on_step=False, on_epoch=True)
            self.log(TRAIN_ACC, self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        loss, scores, targets = self._scores(batch)
        self.val_loss.update(loss, weight=(targets != IGNORE_INDEX).sum())
        self.val_acc.update(scores, targets)

    def on_validation_epoch_end(self) -> None:
        loss = self.val_loss.compute()
        self.val_loss.reset()
        self.log(VAL_LOSS, loss, prog_bar=True)
        self.log(VAL_ACC, self.val_acc, prog_bar=True)
        if VAL_BPC in task_metrics(self.hparams.task):
            self.log(VAL_BPC, loss / math.log(2))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        optimizer = OPTIMIZERS[self.hparams.optimizer]
        return optimizer(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )

    @torch.no_grad()
    def predict_samples(
        self, samples: Sequence[Sample], window: int | None = None
    ) -> list[Prediction]:
        """The model's answer for each lesson sample (call in eval mode)."""
        if self.hparams.task == CLASSIFY:
            labels = classify(self.net, self.vocab, self.class_names, [s.text for s in samples])
            return [
                Prediction(s.text, label, s.target, p)
                for s, (label, p) in zip(samples, labels, strict=True)
            ]
        return [
            Prediction(s.text, predict_next(self.net, self.vocab, s.text, window), s.target)
            for s in samples
        ]
