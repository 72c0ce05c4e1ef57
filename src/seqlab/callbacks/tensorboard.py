"""What the callbacks share on TensorBoard's side: rank zero's writers, figures as images."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from pytorch_lightning.loggers import TensorBoardLogger
from torch.utils.tensorboard import SummaryWriter


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
