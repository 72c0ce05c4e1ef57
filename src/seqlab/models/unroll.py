"""A network's forward pass written out one time step at a time, to look inside it.

:func:`unroll` runs a :class:`RecurrentNet` with its own weights and the cells of
``seqlab.models.scratch``, for torch's modules and the scratch twins alike (they hold the same
weights under the same names), and keeps what torch's fused kernels do not show: the top layer's
h_t at every step as graph nodes (for ||dL/dh_t||) and an LSTM's gates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F

from seqlab.models.recurrent import RecurrentNet
from seqlab.models.scratch import (
    ACTIVATIONS,
    CellState,
    ScratchLSTM,
    ScratchRecurrent,
    gru_cell,
    lstm_cell,
    rnn_cell,
)

Step = Callable[[torch.Tensor, CellState, torch.Tensor, torch.Tensor | None], CellState]


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


def lstm_gates(
    gx: torch.Tensor, h: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor | None
) -> torch.Tensor:
    """(B, 4, H): the gates lstm_cell computes from the same pre-activations."""
    gi, gf, gg, go = (gx + F.linear(h, w_hh, b_hh)).chunk(4, dim=-1)
    return torch.stack([gi.sigmoid(), gf.sigmoid(), gg.tanh(), go.sigmoid()], dim=1)


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
    rnn, step = net.rnn, cell_step(net.rnn)
    carries_cell = isinstance(rnn, nn.LSTM | ScratchLSTM)
    batch, steps = tokens.shape
    real = None  # (B, T): True at a sequence's real steps
    if lengths is not None:
        real = torch.arange(steps, device=tokens.device) < lengths.to(tokens.device)[:, None]
    x = net.encode(tokens)  # (B, T, I)
    hidden: list[torch.Tensor] = []
    gate_steps: list[torch.Tensor] = []
    for layer in range(net.num_layers):
        outputs, finals = [], []
        for direction, suffix in enumerate(("", "_reverse")[: net.directions]):
            name = f"l{layer}{suffix}"
            w_hh = getattr(rnn, f"weight_hh_{name}")
            b_ih = getattr(rnn, f"bias_ih_{name}") if rnn.bias else None
            b_hh = getattr(rnn, f"bias_hh_{name}") if rnn.bias else None
            gx = F.linear(x, getattr(rnn, f"weight_ih_{name}"), b_ih)  # (B, T, G * H)
            zeros = x.new_zeros(batch, net.hidden_size)
            state: CellState = (zeros, zeros) if carries_cell else (zeros,)
            top_forward = layer == net.num_layers - 1 and direction == 0
            out: list[torch.Tensor] = [zeros] * steps  # (B, H) per step, in time order
            for t in reversed(range(steps)) if direction else range(steps):
                if top_forward and gates and carries_cell:
                    with torch.no_grad():
                        gate_steps.append(lstm_gates(gx[:, t], state[0], w_hh, b_hh))
                new = step(gx[:, t], state, w_hh, b_hh)
                if top_forward:
                    hidden.append(new[0])
                if real is not None:
                    # a padded step keeps the state, as packing does (see ScratchRecurrent)
                    keep = real[:, t, None]  # (B, 1)
                    new = tuple(torch.where(keep, n, s) for n, s in zip(new, state, strict=True))
                out[t] = new[0]
                state = new
            outputs.append(torch.stack(out, dim=1))  # (B, T, H)
            finals.append(state[0])  # forward: at the last real step; backward: at step 0
        x = torch.cat(outputs, dim=-1)  # (B, T, D * H)
    if net.many_to_one:
        features = net.pool(x, torch.cat(finals, dim=-1), lengths)  # (B, D * H), as forward does
    else:
        last = torch.full((batch,), steps - 1) if lengths is None else lengths.long() - 1
        features = x[torch.arange(batch, device=x.device), last.to(x.device)]  # (B, D * H)
    return Unrolled(
        scores=net.head(features),
        outputs=x,
        hidden=hidden,
        gates=torch.stack(gate_steps, dim=-1) if gate_steps else None,
    )
