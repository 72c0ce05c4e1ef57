"""What the callbacks share on TensorBoard's side: rank zero's writers, figures as images."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from pytorch_lightning.loggers import TensorBoardLogger
from torch.utils.tensorboard import SummaryWriter

from seqlab.errors import check_positive


def tensorboard_writers(trainer: pl.Trainer) -> list[SummaryWriter]:
    """The run's TensorBoard writers; none off rank zero, so only rank zero logs."""
    if not trainer.is_global_zero:
        return []
    return [lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]


def figure_image(figure: Figure) -> np.ndarray:
    """(H, W, 3) uint8 pixels of ``figure``, drawn on the Agg canvas (no pyplot, no display)."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def margined_figure(width: float, height: float, left: float = 0.7, right: float = 0.2) -> Figure:
    """A ``width`` x ``height`` inch figure with fixed margins (inches) around its one axes.

    No layout engine: constrained layout measures every label again on each draw and would
    triple a picture's cost, paid every few epochs.
    """
    figure = Figure(figsize=(width, height), dpi=80)
    margins = {"left": left, "right": right, "bottom": 0.45, "top": 0.35}
    figure.subplots_adjust(
        left=margins["left"] / width,
        right=1 - margins["right"] / width,
        bottom=margins["bottom"] / height,
        top=1 - margins["top"] / height,
    )
    return figure


class EveryNEpochsAndAtTheEnd(pl.Callback):
    """Pictures drawn every ``every_n_epochs`` validation epochs and once more at the end of
    training, for the final weights, never twice for the same global step; rank zero only,
    and nothing without a TensorBoard logger. Subclasses say what :meth:`draw` logs."""

    def __init__(self, every_n_epochs: int) -> None:
        check_positive("every_n_epochs", every_n_epochs)
        self.every_n_epochs = every_n_epochs
        self._drawn_step: int | None = None  # the global step of the latest pictures

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch + 1  # the epoch being validated, counted from 1
        if not trainer.sanity_checking and epoch % self.every_n_epochs == 0:
            self._draw_once(trainer, pl_module, f"epoch {epoch}")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # by now current_epoch counts the epochs run, the last one perhaps cut short
        self._draw_once(trainer, pl_module, f"epoch {trainer.current_epoch} (end of training)")

    def _draw_once(self, trainer: pl.Trainer, pl_module: pl.LightningModule, when: str) -> None:
        writers = tensorboard_writers(trainer)
        fresh = writers and self._drawn_step != trainer.global_step
        if fresh and self.draw(trainer, pl_module, writers, when):
            self._drawn_step = trainer.global_step

    def draw(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, writers: list, when: str
    ) -> bool:
        """Log the pictures to ``writers``, titled ``when``; False if there was nothing to draw."""
        raise NotImplementedError
