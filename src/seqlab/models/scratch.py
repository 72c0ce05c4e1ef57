"""RNN, LSTM and GRU written from the lesson's equations, one time step at a time.

Drop-in twins of ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU``: the same constructor arguments, the same
parameter names, shapes and gate order (a state dict moves either way), the same initialisation
and the same ``forward(x, hx) -> (output, h_n)``. Slower than torch's fused kernels; they are here
to be read next to the formulas and to check them against torch.

Shapes: B batch, T steps, I input features, H hidden_size, L num_layers, D directions (1 or 2).
In the comments ``*`` is the elementwise product and ``W x`` a matrix product.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from seqlab.errors import check_choice

# The state a cell carries from step to step: (h,) for RNN and GRU, (h, c) for LSTM. A tuple for
# every cell keeps the layer loop free of cell-type branches.
CellState = tuple[torch.Tensor, ...]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
}


# Each cell gets ``gx = W_ih x_t + b_ih`` for all its gates, (B, G * H), computed for every step
# at once (it does not depend on h), and adds the recurrent part ``W_hh h_{t-1} + b_hh`` itself.


def rnn_cell(
    gx: torch.Tensor,
    state: CellState,
    w_hh: torch.Tensor,
    b_hh: torch.Tensor | None,
    activation: Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
) -> CellState:
    (h,) = state  # (B, H)
    # h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)      (relu in place of tanh if chosen)
    return (activation(gx + F.linear(h, w_hh, b_hh)),)


def lstm_gates(
    gx: torch.Tensor, h: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """An LSTM's four gates at one step, (B, H) each."""
    # torch stacks the four gates' rows in the order i, f, g, o: (B, 4H) -> four (B, H)
    gi, gf, gg, go = (gx + F.linear(h, w_hh, b_hh)).chunk(4, dim=-1)
    i = torch.sigmoid(gi)  # i_t = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)   input gate
    f = torch.sigmoid(gf)  # f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)   forget gate
    g = torch.tanh(gg)  # g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)         cell input
    o = torch.sigmoid(go)  # o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)   output gate
    return i, f, g, o


def lstm_cell(
    gx: torch.Tensor, state: CellState, w_hh: torch.Tensor, b_hh: torch.Tensor | None
) -> CellState:
    h, c = state  # (B, H) each
    i, f, g, o = lstm_gates(gx, h, w_hh, b_hh)
    c = f * c + i * g  # c_t = f_t * c_{t-1} + i_t * g_t                           cell state
    h = o * torch.tanh(c)  # h_t = o_t * tanh(c_t)
    return h, c


def gru_cell(
    gx: torch.Tensor, state: CellState, w_hh: torch.Tensor, b_hh: torch.Tensor | None
) -> CellState:
    (h,) = state  # (B, H)
    # torch's order r, z, n; the input and hidden parts stay apart because r scales only W_hn h
    xr, xz, xn = gx.chunk(3, dim=-1)  # W_i* x_t + b_i*, (B, H) each
    hr, hz, hn = F.linear(h, w_hh, b_hh).chunk(3, dim=-1)  # W_h* h_{t-1} + b_h*, (B, H) each
    r = torch.sigmoid(xr + hr)  # r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)  reset
    z = torch.sigmoid(xz + hz)  # z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)  update
    n = torch.tanh(xn + r * hn)  # n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    return ((1 - z) * n + z * h,)  # h_t = (1 - z_t) * n_t + z_t * h_{t-1}


Step = Callable[[torch.Tensor, CellState, torch.Tensor, torch.Tensor | None], CellState]
Weights = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]
# called at every step with (gx_t, the state before the step, the state the cell computed)
StepHook = Callable[[torch.Tensor, CellState, CellState], None]


def direction_weights(rnn: nn.Module, name: str) -> Weights:
    """W_ih, W_hh, b_ih, b_hh of one layer and direction (``name``: l0, l0_reverse, l1, ...),
    under torch's names: of a torch RNN / LSTM / GRU and of its scratch twin alike."""
    w_ih, w_hh = getattr(rnn, f"weight_ih_{name}"), getattr(rnn, f"weight_hh_{name}")
    b_ih = getattr(rnn, f"bias_ih_{name}") if rnn.bias else None
    b_hh = getattr(rnn, f"bias_hh_{name}") if rnn.bias else None
    return w_ih, w_hh, b_ih, b_hh


def run_direction(
    step: Step,
    x: torch.Tensor,
    state: CellState,
    weights: Weights,
    real: torch.Tensor | None,
    reverse: bool,
    on_step: StepHook | None = None,
) -> tuple[torch.Tensor, CellState]:
    """One layer, one direction: (B, T, features) -> (B, T, H) and the state after it.

    real: (B, T), True at a sequence's real steps, or None without padding.
    """
    w_ih, w_hh, b_ih, b_hh = weights
    gx = F.linear(x, w_ih, b_ih)  # (B, T, G * H): W_ih x_t + b_ih for every step at once
    steps = range(x.size(1))
    outputs = []  # (B, H) per step, in the order visited
    for t in reversed(steps) if reverse else steps:
        new = step(gx[:, t], state, w_hh, b_hh)
        if on_step is not None:
            on_step(gx[:, t], state, new)
        if real is None:
            outputs.append(new[0])
        else:
            keep = real[:, t, None]  # (B, 1)
            # a padded step leaves the state as it was: forward, h_n is the state at the
            # last real step; backward, the run starts from hx at the last real step
            new = tuple(torch.where(keep, n, s) for n, s in zip(new, state, strict=True))
            outputs.append(torch.where(keep, new[0], 0.0))  # zeros, as pad_packed_sequence
        state = new
    if reverse:
        outputs.reverse()  # back into time order
    return torch.stack(outputs, dim=1), state


class ScratchRecurrent(nn.Module):
    """The loop shared by every cell: layers, directions, padding, dropout between layers.

    A subclass sets ``gates`` (blocks of H rows in each weight), ``carries_cell`` (LSTM's c)
    and ``cell``, one step of its equations.
    """

    gates = 1
    carries_cell = False

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        self.bidirectional = bidirectional
        self.directions = 2 if bidirectional else 1
        self.suffixes = ("", "_reverse")[: self.directions]
        # torch's names, shapes and order: weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0,
        # then the same with _reverse, then layer 1, whose input is layer 0's (D * H) output
        rows = self.gates * hidden_size
        for layer in range(num_layers):
            features = input_size if layer == 0 else hidden_size * self.directions
            for suffix in self.suffixes:
                shapes = {"weight_ih": (rows, features), "weight_hh": (rows, hidden_size)}
                if bias:
                    shapes |= {"bias_ih": (rows,), "bias_hh": (rows,)}
                for kind, shape in shapes.items():
                    self.register_parameter(
                        f"{kind}_l{layer}{suffix}", nn.Parameter(torch.empty(shape))
                    )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # torch's init: every weight and bias uniform in (-1/sqrt(H), 1/sqrt(H))
        bound = 1 / math.sqrt(self.hidden_size)
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def cell(
        self, gx: torch.Tensor, state: CellState, w_hh: torch.Tensor, b_hh: torch.Tensor | None
    ) -> CellState:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"bias={self.bias}, batch_first={self.batch_first}, dropout={self.dropout}, "
            f"bidirectional={self.bidirectional}"
        )

    def forward(
        self,
        x: torch.Tensor,
        hx: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None,
        lengths: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
        """(B, T, I) with batch_first -> output (B, T, D * H) and h_n (L * D, B, H), or (h_n, c_n).

        ``lengths`` (B,) marks steps ``t >= length`` as padding, with the results packing gives.
        """
        if not self.batch_first:
            x = x.transpose(0, 1)  # (T, B, I) -> (B, T, I)
        batch, steps, _ = x.shape
        if hx is None:
            zeros = x.new_zeros(self.num_layers * self.directions, batch, self.hidden_size)
            hx = (zeros, zeros) if self.carries_cell else zeros
        initial = hx if isinstance(hx, tuple) else (hx,)  # each (L * D, B, H)
        # (B, T): True at a sequence's real steps
        real = None
        if lengths is not None:
            real = torch.arange(steps, device=x.device) < lengths.to(x.device)[:, None]

        finals: list[CellState] = []  # one per layer and direction, in h_n's order
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(self.suffixes):
                start = tuple(s[layer * self.directions + direction] for s in initial)
                weights = direction_weights(self, f"l{layer}{suffix}")
                out, final = run_direction(self.cell, x, start, weights, real, direction == 1)
                outputs.append(out)
                finals.append(final)
            x = torch.cat(outputs, dim=-1)  # (B, T, D * H): both directions at each step
            if layer < self.num_layers - 1:
                # as torch: on the input of the next layer only, and only in training mode
                x = F.dropout(x, self.dropout, self.training)

        h_n = tuple(torch.stack(parts) for parts in zip(*finals, strict=True))  # (L * D, B, H)
        output = x if self.batch_first else x.transpose(0, 1)
        return output, (h_n if self.carries_cell else h_n[0])


class ScratchRNN(ScratchRecurrent):
    """``nn.RNN`` from h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) (or relu)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",  # where nn.RNN takes it
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        check_choice("nonlinearity", nonlinearity, ACTIVATIONS)
        super().__init__(
            input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional
        )
        self.nonlinearity = nonlinearity

    def cell(
        self, gx: torch.Tensor, state: CellState, w_hh: torch.Tensor, b_hh: torch.Tensor | None
    ) -> CellState:
        return rnn_cell(gx, state, w_hh, b_hh, ACTIVATIONS[self.nonlinearity])

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, nonlinearity={self.nonlinearity!r}"


class ScratchLSTM(ScratchRecurrent):
    """``nn.LSTM``: input, forget, cell and output gates, and a cell state c beside h."""

    gates = 4
    carries_cell = True

    def cell(
        self, gx: torch.Tensor, state: CellState, w_hh: torch.Tensor, b_hh: torch.Tensor | None
    ) -> CellState:
        return lstm_cell(gx, state, w_hh, b_hh)


class ScratchGRU(ScratchRecurrent):
    """``nn.GRU``: reset and update gates and a new-state candidate n."""

    gates = 3

    def cell(
        self, gx: torch.Tensor, state: CellState, w_hh: torch.Tensor, b_hh: torch.Tensor | None
    ) -> CellState:
        return gru_cell(gx, state, w_hh, b_hh)
