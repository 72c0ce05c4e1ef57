"""One recurrent network for every cell: encoder -> RNN / LSTM / GRU -> optional linear head."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from seqlab.errors import SettingError, check_choice, check_positive
from seqlab.models.scratch import ScratchGRU, ScratchLSTM, ScratchRecurrent, ScratchRNN

CELLS = ("rnn", "lstm", "gru")
IMPLS = ("torch", "scratch")
NONLINEARITIES = ("tanh", "relu")
ENCODINGS = ("onehot", "embedding")
HEADS = ("fc", "none")
# many-to-one: what represents a sequence: the final states, or the outputs' max or mean over time
POOLINGS = ("last", "max", "mean")

# nn.RNN and nn.GRU carry h; nn.LSTM carries (h, c). Code outside this file passes it through.
State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]

# (impl, cell) -> class; both impls take the same arguments and hold the same parameters
RNN_CLASSES: dict[tuple[str, str], type[nn.Module]] = {
    ("torch", "rnn"): nn.RNN,
    ("torch", "lstm"): nn.LSTM,
    ("torch", "gru"): nn.GRU,
    ("scratch", "rnn"): ScratchRNN,
    ("scratch", "lstm"): ScratchLSTM,
    ("scratch", "gru"): ScratchGRU,
}


class RecurrentNet(nn.Module):
    """Tokens -> scores, for next-token prediction (many-to-many) or classification (many-to-one).

    ``encoding`` turns ids into vectors (one-hot, as the lessons do, or a learned embedding);
    ``cell`` picks ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``, or with ``impl='scratch'`` their twins
    written from the lesson's equations (``seqlab.models.scratch``); ``head='fc'`` maps the RNN's
    features to ``num_outputs`` scores, ``head='none'`` uses the features as the scores themselves
    (the hihello lesson), which needs ``hidden_size x directions == num_outputs``.
    """

    def __init__(
        self,
        vocab_size: int,
        num_outputs: int,
        many_to_one: bool = False,
        pad_index: int | None = None,
        cell: str = "rnn",
        impl: str = "torch",
        nonlinearity: str = "tanh",
        hidden_size: int = 32,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        encoding: str = "onehot",
        embedding_dim: int = 16,
        head: str = "fc",
        pooling: str = "last",
        forget_bias: float | None = None,
    ) -> None:
        super().__init__()
        check_choice("cell", cell, CELLS)
        check_choice("impl", impl, IMPLS)
        check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
        if cell != "rnn" and nonlinearity != "tanh":
            raise SettingError(
                "nonlinearity", nonlinearity, f"applies to cell=rnn only, not {cell}"
            )
        check_choice("encoding", encoding, ENCODINGS)
        check_choice("head", head, HEADS)
        check_choice("pooling", pooling, POOLINGS)
        if forget_bias is not None and cell != "lstm":
            raise SettingError("forget_bias", forget_bias, f"applies to cell=lstm only, not {cell}")
        check_positive("hidden_size", hidden_size)
        check_positive("num_layers", num_layers)
        if encoding == "embedding":
            check_positive("embedding_dim", embedding_dim)
        if not 0 <= dropout < 1:
            raise SettingError("dropout", dropout, "expected 0 <= dropout < 1")
        directions = 2 if bidirectional else 1
        features = hidden_size * directions  # size of the RNN's output at each step
        if head == "none" and features != num_outputs:
            scores = f"head=none makes the RNN outputs the {num_outputs} class scores"
            if num_outputs % directions == 0:
                need = f"{scores}, so hidden_size must be {num_outputs // directions}"
            else:
                need = f"{scores}; hidden_size x 2 directions cannot be {num_outputs}: use head=fc"
            raise SettingError("hidden_size", hidden_size, need)

        self.vocab_size, self.num_outputs = vocab_size, num_outputs
        self.many_to_one, self.pooling = many_to_one, pooling
        self.num_layers, self.directions, self.hidden_size = num_layers, directions, hidden_size
        if encoding == "embedding":
            # the pad row stays zero and gets no gradient; packing keeps it from the RNN anyway
            self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_index)
            # dropout on the looked-up vectors too (word_language_model's way): a large
            # embedding table is where a small data set is overfitted first
            self.embedding_dropout = nn.Dropout(dropout)
            input_size = embedding_dim
        else:
            self.embedding = None
            input_size = vocab_size
        self.rnn = RNN_CLASSES[impl, cell](
            input_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            # nn.RNN's dropout acts between layers only (and warns with one layer)
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
            **({"nonlinearity": nonlinearity} if cell == "rnn" else {}),
        )
        if forget_bias is not None:
            self._set_forget_bias(forget_bias)
        if head == "fc":
            self.head: nn.Module = nn.Sequential(
                nn.Dropout(dropout), nn.Linear(features, num_outputs)
            )
        else:
            self.head = nn.Identity()

    @torch.no_grad()
    def _set_forget_bias(self, value: float) -> None:
        # f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf): torch starts b_if + b_hf near 0,
        # so the cell state halves at every step and a gradient from 100 steps back is ~2^-100;
        # a positive bias keeps the cell (and the gradient) until the gate learns to close
        h = self.hidden_size
        for name, bias in self.rnn.named_parameters():
            if name.startswith("bias_ih"):  # gates i, f, g, o: f is the second block of h rows
                bias[h : 2 * h] = value
            elif name.startswith("bias_hh"):
                bias[h : 2 * h] = 0.0

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens.long()  # ids arrive in the corpus's compact dtype
        if self.embedding is not None:
            return self.embedding_dropout(self.embedding(tokens))  # (B, T, E)
        # built on the batch's device, in one op: nothing per sample on the CPU; in the
        # parameters' dtype, so that a network cast to bf16 or float64 reads it as it is
        dtype = next(self.rnn.parameters()).dtype
        return F.one_hot(tokens, self.vocab_size).to(dtype)  # (B, T, V)

    def forward(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor | None = None,
        state: State | None = None,
    ) -> tuple[torch.Tensor, State]:
        """Scores and the final state.

        tokens: (B, T) ids; lengths: (B,) real lengths of a padded batch, or None.
        Returns (B, T, num_outputs) for next-token models, (B, num_outputs) for many-to-one.
        """
        x = self.encode(tokens)
        batch, steps = tokens.shape
        if lengths is None:
            out, state = self.rnn(x, state)
        elif isinstance(self.rnn, ScratchRecurrent):
            # the scratch cells skip padded steps themselves, with the same results as packing
            out, state = self.rnn(x, state, lengths=lengths)
        else:
            # packing hides the padding from the RNN: a sequence's result is the same alone or
            # padded in a batch, and h_n holds each sequence's last real step
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, state = self.rnn(packed, state)
        if isinstance(out, PackedSequence) and not (self.many_to_one and self.pooling == "last"):
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=steps)
        if not self.many_to_one:
            return self.head(out), state  # (B, T, D * H) -> (B, T, C)
        h_n = state[0] if isinstance(state, tuple) else state  # (L * D, B, H)
        # last layer, both directions: forward saw every step, backward ended at step 0
        last = h_n.view(self.num_layers, self.directions, batch, self.hidden_size)[-1]
        features = self.pool(out, last.transpose(0, 1).reshape(batch, -1), lengths)
        return self.head(features), state

    def pool(
        self, out: torch.Tensor | PackedSequence, last: torch.Tensor, lengths: torch.Tensor | None
    ) -> torch.Tensor:
        """(B, D * H): one vector per sequence, as ``pooling`` says.

        out: (B, T, D * H) the top layer's outputs (unused by ``last`` pooling, and then may stay
        packed); last: (B, D * H) its final states, the forward one at each sequence's last real
        step; lengths: (B,) real lengths of a padded batch, or None.
        """
        if self.pooling == "last":
            return last
        batch, steps = out.shape[:2]
        # (B, T, 1): the real steps; padded ones take no part in the pooling
        real = torch.ones(batch, steps, 1, dtype=torch.bool, device=out.device)
        if lengths is not None:
            step = torch.arange(steps, device=out.device)
            real = (step < lengths.to(out.device)[:, None])[..., None]
        if self.pooling == "max":
            return out.masked_fill(~real, float("-inf")).amax(dim=1)
        return (out * real).sum(dim=1) / real.sum(dim=1)
