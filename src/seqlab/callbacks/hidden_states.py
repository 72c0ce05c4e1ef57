"""Pictures of what the RNN holds: its hidden state and LSTM gates at each character of a lesson
sample, every few validation epochs and at the end of training, and the learned embeddings in
TensorBoard's projector (the states and gates come from :func:`seqlab.models.unroll.unroll`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from seqlab.callbacks.tensorboard import (
    EveryNEpochsAndAtTheEnd,
    figure_image,
    margined_figure,
    tensorboard_writers,
)
from seqlab.errors import check_positive
from seqlab.models import RecurrentNet
from seqlab.models.unroll import unroll

# TensorBoard tags, named once
HIDDEN_TAG = "hidden/states"
GATES_TAG = "hidden/lstm_gates"
EMBEDDING_TAG = "embeddings"

# torch stacks an LSTM's gate rows in this order: i, f, g, o
LSTM_GATES = ("i", "f", "g", "o")
# a token a user can see on an axis or in a one-line-per-token TSV
VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥"}


def visible(token: str) -> str:
    return VISIBLE.get(token, token)


def heat_map(
    values: np.ndarray,
    labels: list[str],
    title: str,
    limit: float = 1.0,
    bands: Sequence[str] = (),
) -> Figure:
    """(units, T) ``values`` as a heat map in (-limit, limit), ``labels`` along the time axis.

    ``bands``: names of equal bands of rows (an LSTM's four gates), marked on the y axis.
    """
    units, steps = values.shape
    # inches: a readable column per token and a visible row per unit, within a screen
    figure = margined_figure(min(4 + 0.16 * steps, 16), min(1.5 + 0.04 * units, 8), right=0.6)
    ax = figure.subplots()
    image = ax.imshow(values, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit)
    figure.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
    ax.set_title(title, fontsize="small")
    ax.set_xticks(range(steps), [visible(label) for label in labels], fontsize="small")
    if bands:
        rows = units // len(bands)
        for band in range(1, len(bands)):
            ax.axhline(band * rows - 0.5, color="black", linewidth=1)
        ax.set_yticks([(band + 0.5) * rows - 0.5 for band in range(len(bands))], bands)
    else:
        ax.set_ylabel("unit")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


def hidden_pictures(
    net: RecurrentNet, ids: torch.Tensor, labels: list[str], when: str
) -> dict[str, Figure]:
    """{tag: heat map} of ``net`` reading the (T,) token ``ids``, ``labels`` along the time axis:
    the top layer's h_t, and for an LSTM its gates. ``when`` goes into the titles ("epoch 3").

    The network as validation sees it (no dropout), its mode left as it was.
    """
    training = net.training
    net.eval()
    try:
        with torch.no_grad():
            unrolled = unroll(net, ids[None].long(), gates=True)
    finally:
        net.train(training)
    states = unrolled.outputs[0].T.float().cpu().numpy()  # (D * H, T); numpy has no bfloat16
    limit = max(1.0, float(np.abs(states).max()))  # tanh keeps h in (-1, 1); relu may not
    both = " (forward units, then backward)" if net.directions == 2 else ""
    pictures = {HIDDEN_TAG: heat_map(states, labels, f"top layer's h_t{both}, {when}", limit)}
    if unrolled.gates is not None:
        gates = unrolled.gates[0].flatten(0, 1).float().cpu().numpy()  # (4 * H, T): i, f, g, o
        forward = " (forward direction)" if net.directions == 2 else ""
        title = f"LSTM gates, top layer{forward}, {when}: i f o in (0, 1), g in (-1, 1)"
        pictures[GATES_TAG] = heat_map(gates, labels, title, bands=LSTM_GATES)
    return pictures


class HiddenStates(EveryNEpochsAndAtTheEnd):
    """Every ``every_n_epochs`` validation epochs and once at the end of training (unless the
    last validation epoch drew the final weights already): heat maps (units x time) of the top
    layer's hidden state, and for an LSTM of its gates, while it reads the DataModule's first
    lesson sample (its first ``max_tokens`` tokens), see :func:`hidden_pictures`. At the end of
    training an embedding model's token embeddings go to TensorBoard's projector, the
    vocabulary as their labels.

    Logs to TensorBoard only; without a TensorBoard logger it does nothing.
    """

    def __init__(self, every_n_epochs: int = 50, max_tokens: int = 60) -> None:
        super().__init__(every_n_epochs)
        check_positive("max_tokens", max_tokens)
        self.max_tokens = max_tokens

    def draw(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, writers: list, when: str
    ) -> bool:
        ids = pl_module.vocab.encode(trainer.datamodule.samples[0].text)[: self.max_tokens]
        labels = [pl_module.vocab.tokens[i] for i in ids.tolist()]
        pictures = hidden_pictures(pl_module.net, ids.to(pl_module.device), labels, when)
        for tag, figure in pictures.items():
            image = figure_image(figure)
            for writer in writers:
                writer.add_image(tag, image, trainer.global_step, dataformats="HWC")
        return True

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        embedding = pl_module.net.embedding
        if embedding is None:  # one-hot inputs: nothing learned to show
            return
        tokens = [visible(token) for token in pl_module.vocab.tokens]
        for writer in tensorboard_writers(trainer):
            writer.add_embedding(
                embedding.weight.detach().cpu(),
                metadata=tokens,
                global_step=trainer.global_step,
                tag=EMBEDDING_TAG,
            )
