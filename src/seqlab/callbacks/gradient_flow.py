"""How far back the loss reaches: ||dL/dh_t|| at every time step, every few validation epochs
and at the end of training."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch.nn import functional as F

from seqlab.callbacks.tensorboard import (
    EveryNEpochsAndAtTheEnd,
    figure_image,
    margined_figure,
)
from seqlab.data.base import IGNORE_INDEX, Batch
from seqlab.errors import check_choice, check_positive
from seqlab.models import RecurrentNet
from seqlab.models.unroll import unroll
from seqlab.tasks import NEXT_TOKEN, TASKS

# TensorBoard tags, named once
RATIO_TAG = "grad_flow/first_last_ratio"  # ||dL/dh_first|| / ||dL/dh_last||
FIGURE_TAG = "grad_flow/norm_per_step"


def gradient_norms(net: RecurrentNet, batch: Batch) -> np.ndarray:
    """(T,) ||dL/dh_t|| for the top layer's forward h_t, the mean over the batch's sequences.

    L is the loss at the last step: a classifier's loss of the sequence, a next-token model's
    loss of the last step's prediction; each sequence's own (summed over the batch, so its
    gradient is not divided by the batch size). A padded batch's step t averages the sequences
    that reach it. Runs on a copy of the batch with gradients on (the validation loop runs in
    inference mode) and leaves no trace: no parameter gradient, ``net``'s mode as it was.
    """
    training = net.training
    net.eval()  # no dropout: the network as validation sees it
    try:
        with torch.inference_mode(False), torch.enable_grad():
            tensors = (batch.inputs, batch.targets, batch.lengths)
            tokens, targets, lengths = (t if t is None else t.clone() for t in tensors)
            if lengths is not None:  # a slice of a padded batch may end before its padding
                tokens = tokens[:, : int(lengths.max())]
            unrolled = unroll(net, tokens, lengths)
            if not net.many_to_one:  # (B,): the target of each sequence's last real step
                batch_size, steps = tokens.shape
                last = torch.full((batch_size,), steps - 1) if lengths is None else lengths - 1
                rows = torch.arange(batch_size, device=targets.device)
                targets = targets[rows, last.long().to(targets.device)]
            loss = F.cross_entropy(
                unrolled.scores, targets.long(), ignore_index=IGNORE_INDEX, reduction="sum"
            )
            # gradients of the loss with respect to the states only: parameters get none
            grads = torch.autograd.grad(loss, unrolled.hidden, materialize_grads=True)
    finally:
        net.train(training)
    norms = torch.stack(grads, dim=1).norm(dim=-1)  # (B, T)
    if lengths is None:
        return norms.mean(0).float().cpu().numpy()  # float: numpy has no bfloat16
    real = (torch.arange(norms.size(1), device=norms.device) < lengths[:, None]).to(norms)
    return ((norms * real).sum(0) / real.sum(0)).float().cpu().numpy()


def gradient_figure(norms: np.ndarray, when: str) -> Figure:
    """``when``: the title's account of the weights, e.g. "epoch 3 (end of training)"."""
    figure = margined_figure(6, 3.5, left=0.9)
    ax = figure.subplots()
    ax.plot(np.arange(len(norms)), norms, marker="." if len(norms) <= 60 else None)
    ax.set_yscale("log", nonpositive="mask")  # decades apart; an underflow to 0 is left out
    ax.set(
        title=f"gradient of the last step's loss, {when}",
        xlabel="time step t",
        ylabel="||dL/dh_t||, mean over sequences",
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


class GradientFlow(EveryNEpochsAndAtTheEnd):
    """Every ``every_n_epochs`` validation epochs and once at the end of training, for up to
    ``max_sequences`` sequences of the first validation batch: ||dL/dh_t|| of the top layer's
    hidden state at every step t, the loss taken at the last step (see :func:`gradient_norms`).
    TensorBoard gets the curve (log scale) and ``grad_flow/first_last_ratio``: near 1 the first
    step still shapes the loss, 1e-6 and the gradient has vanished on the way back.

    The end of training measures the final weights on the latest validation epoch's first
    batch, unless that epoch's measurement was already of them (the same global step). A run
    that never validated has nothing to measure. Runs only for the tasks in ``tasks``:
    next-token ones by default (a classification experiment such as memory lists its own). A
    bidirectional net's forward direction is the one measured: it reads the steps in order.
    Without a TensorBoard logger it does nothing.
    """

    def __init__(
        self,
        every_n_epochs: int = 50,
        max_sequences: int = 8,
        tasks: Sequence[str] = (NEXT_TOKEN,),
    ) -> None:
        super().__init__(every_n_epochs)
        check_positive("max_sequences", max_sequences)
        for task in tasks:
            check_choice("tasks", task, TASKS)
        self.max_sequences, self.tasks = max_sequences, tasks
        # views of the latest first validation batch, on its device: a few KB kept between
        # epochs so that the end of training measures without another pass over the data
        self._batch: Batch | None = None

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: object,
        batch: Batch,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx == 0 and dataloader_idx == 0:
            few = slice(self.max_sequences)
            lengths = None if batch.lengths is None else batch.lengths[few]
            self._batch = Batch(batch.inputs[few], batch.targets[few], lengths)

    def draw(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, writers: list, when: str
    ) -> bool:
        if self._batch is None or pl_module.hparams.task not in self.tasks:
            return False
        norms = gradient_norms(pl_module.net, self._batch)
        image = figure_image(gradient_figure(norms, when))
        for writer in writers:
            writer.add_scalar(RATIO_TAG, norms[0] / norms[-1], trainer.global_step)
            writer.add_image(FIGURE_TAG, image, trainer.global_step, dataformats="HWC")
        return True
