"""A network's forward pass written out one time step at a time, to look inside it.

:func:`unroll` runs a :class:`RecurrentNet` with its own weights and the cells of
``seqlab.models.scratch``, for torch's modules and the scratch twins alike (they hold the same
weights under the same names), and keeps what torch's fused kernels do not show: the top layer's
h_t at every step as graph nodes (for ||dL/dh_t||) and an LSTM's gates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from seqlab.models.recurrent import RecurrentNet
from seqlab.models.scratch import (
    ACTIVATIONS,
    CellState,
    ScratchLSTM,
    ScratchRecurrent,
    Step,
    direction_weights,
    gru_cell,
    lstm_cell,
    lstm_gates,
    rnn_cell,
    run_direction,
)


@dataclass
class Unrolled:
    scores: torch.Tensor  # (B, C): at each sequence's last real step, or of the whole sequence
    outputs: torch.Tensor  # (B, T, D * H): the top layer's output (h_t of both directions)
    hidden: list[torch.Tensor]  # T x (B, H): the top layer's forward h_t, each a graph node
    gates: torch.Tensor | None  # (B, 4, H, T): LSTM i, f, g, o of the top layer's forward


def cell_step(rnn: nn.Module) -> Step:
    """One step of ``rnn``'s cell, from the lesson's equations."""
    if isinstance(rnn, ScratchRecurrent):
        return rnn.cell
    if isinstance(rnn, nn.LSTM):
        return lstm_cell
    if isinstance(rnn, nn.GRU):
        return gru_cell
    return partial(rnn_cell, activation=ACTIVATIONS[rnn.nonlinearity])


def unroll(
    net: RecurrentNet,
    tokens: torch.Tensor,
    lengths: torch.Tensor | None = None,
    gates: bool = False,
) -> Unrolled:
    """``net``'s forward pass written out step by step, as in eval mode (no dropout).

    tokens: (B, T) ids; lengths: (B,) real lengths of a padded batch, or None. The scores are
    ``net``'s own: for a next-token model those of each sequence's last real step. ``gates``:
    also the LSTM gates of the top layer's forward direction (without gradient).
    """
    # (module, weight name) of each layer: one multi-layer RNN, or one RNN a layer (sizes of
    # their own, AWD's stack) whose weights are each its l0
    layers = (
        [(rnn, "l0") for rnn in net.rnns]
        if net.config.layered
        else [(net.rnn, f"l{layer}") for layer in range(net.num_layers)]
    )
    carries_cell = isinstance(layers[0][0], nn.LSTM | ScratchLSTM)
    batch, steps = tokens.shape
    real = None  # (B, T): True at a sequence's real steps
    if lengths is not None:
        real = torch.arange(steps, device=tokens.device) < lengths.to(tokens.device)[:, None]
    hidden: list[torch.Tensor] = []
    gate_steps: list[torch.Tensor] = []

    def watch(gx_t: torch.Tensor, before: CellState, new: CellState) -> None:
        # called for the top layer's forward direction only, whose weights are ``weights``
        hidden.append(new[0])  # the cell's own h_t, before padding keeps the old state
        if gates and carries_cell:
            _, w_hh, _, b_hh = weights
            with torch.no_grad():  # (B, 4, H): i, f, g, o
                gate_steps.append(torch.stack(lstm_gates(gx_t, before[0], w_hh, b_hh), dim=1))

    x = net.encode(tokens)  # (B, T, I)
    for layer, (rnn, name) in enumerate(layers):
        step = cell_step(rnn)
        outputs, finals = [], []
        for direction, suffix in enumerate(("", "_reverse")[: net.directions]):
            weights = direction_weights(rnn, f"{name}{suffix}")
            zeros = x.new_zeros(batch, rnn.hidden_size)
            start: CellState = (zeros, zeros) if carries_cell else (zeros,)
            top_forward = layer == len(layers) - 1 and direction == 0
            out, state = run_direction(
                step, x, start, weights, real, direction == 1, watch if top_forward else None
            )
            outputs.append(out)  # (B, T, H)
            finals.append(state[0])  # forward: at the last real step; backward: at step 0
        x = torch.cat(outputs, dim=-1)  # (B, T, D * H)
    if net.many_to_one:
        features = net.pool(x, torch.cat(finals, dim=-1), lengths)  # (B, D * H), as forward does
    else:
        last = torch.full((batch,), steps - 1) if lengths is None else lengths.long() - 1
        features = x[torch.arange(batch, device=x.device), last.to(x.device)]  # (B, D * H)
    return Unrolled(
        scores=net.scores(net.head(features)),  # the adaptive head's: log-probabilities
        outputs=x,
        hidden=hidden,
        gates=torch.stack(gate_steps, dim=-1) if gate_steps else None,
    )
