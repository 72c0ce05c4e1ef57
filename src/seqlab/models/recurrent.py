"""One recurrent network for every cell: encoder -> RNN / LSTM / GRU -> linear, adaptive or no
head."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from seqlab.models.adaptive import AdaptiveHead
from seqlab.models.config import NetConfig
from seqlab.models.scratch import ScratchGRU, ScratchLSTM, ScratchRecurrent, ScratchRNN

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
    (the hihello lesson), which needs ``hidden_size x directions == num_outputs``;
    ``head='adaptive'`` is an adaptive softmax over a large vocabulary (:mod:`.adaptive`), whose
    scores are never all computed in training: ``forward`` then gives the features it reads.
    :meth:`loss`, :meth:`scores` and :meth:`predict` read ``forward``'s outputs for every head
    alike. Every setting and its rules are :class:`NetConfig`'s.
    """

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        self.vocab_size, self.num_outputs = config.vocab_size, config.num_outputs
        self.many_to_one, self.pooling = config.many_to_one, config.pooling
        self.num_layers, self.directions = config.num_layers, config.directions
        self.hidden_size = config.hidden_size
        # dropout where word_language_model has it: on the embedded inputs, between stacked
        # layers (nn.RNN's own) and on the outputs before the head
        dropout = config.dropout
        if config.encoding == "embedding":
            # the pad row stays zero and gets no gradient; packing keeps it from the RNN anyway
            self.embedding = nn.Embedding(
                config.vocab_size, config.embedding_dim, padding_idx=config.pad_index
            )
            # a large embedding table is where a small data set is overfitted first
            self.embedding_dropout = nn.Dropout(dropout)
            input_size = config.embedding_dim
        else:
            self.embedding = None
            input_size = config.vocab_size
        self.rnn = RNN_CLASSES[config.impl, config.cell](
            input_size,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            # nn.RNN's dropout acts between layers only (and warns with one layer)
            dropout=dropout if config.num_layers > 1 else 0.0,
            bidirectional=config.bidirectional,
            **({"nonlinearity": config.nonlinearity} if config.cell == "rnn" else {}),
        )
        if config.forget_bias is not None:
            self._set_forget_bias(config.forget_bias)
        if config.head == "fc":
            self.head: nn.Module = nn.Sequential(
                nn.Dropout(dropout), nn.Linear(config.features, config.num_outputs)
            )
        elif config.head == "adaptive":
            assert config.cutoffs is not None  # NetConfig chose them if the settings did not
            self.head = AdaptiveHead(
                config.features, config.num_outputs, config.cutoffs, config.div_value, dropout
            )
        else:
            self.head = nn.Identity()
        if config.init_range is not None:
            self._init_uniform(config.init_range)
        if config.tie_weights:
            # one (V, E) matrix reads tokens in and scores them out (Press & Wolf 2017, Inan et
            # al. 2017): the head's gradient trains the embedding too, pad row included
            self.head[-1].weight = self.embedding.weight

    @torch.no_grad()
    def _init_uniform(self, bound: float) -> None:
        # word_language_model's init_weights (Zaremba et al. 2014): U(-bound, bound) for the
        # embedding and the head's weight, a zero head bias; the RNN keeps torch's init
        if self.embedding is not None:
            nn.init.uniform_(self.embedding.weight, -bound, bound)
            if self.embedding.padding_idx is not None:
                self.embedding.weight[self.embedding.padding_idx] = 0.0
        if isinstance(self.head, nn.Sequential):
            nn.init.uniform_(self.head[-1].weight, -bound, bound)
            nn.init.zeros_(self.head[-1].bias)
        elif isinstance(self.head, AdaptiveHead):
            # the head layer's weight and every cluster's two projections; the head bias zero
            for name, parameter in self.head.named_parameters():
                if name.endswith("bias"):
                    nn.init.zeros_(parameter)
                else:
                    nn.init.uniform_(parameter, -bound, bound)

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
        Returns (B, T, num_outputs) for next-token models, (B, num_outputs) for many-to-one;
        with head=adaptive (B, T, D * H), the features the adaptive softmax reads.
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
            return self.head(out), state  # (B, T, D * H) -> (B, T, C), or features (adaptive)
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

    def loss(
        self, outputs: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The mean loss over the scored targets, what accuracy reads, and those targets.

        outputs: ``forward``'s; targets: (B, T) or (B,) ids, ``ignore_index`` where not scored.
        Returns the loss (), then (N, C) scores and (N,) targets, every prediction a row; with
        head=adaptive (M,) predicted ids and the (M,) targets that are scored. Either way the
        loss is the mean negative log-likelihood of the scored targets.
        """
        targets = targets.reshape(-1).long()  # (N,)
        rows = outputs.reshape(-1, outputs.size(-1))  # (N, C), or (N, D * H) features
        if not isinstance(self.head, AdaptiveHead):
            return F.cross_entropy(rows, targets, ignore_index=ignore_index), rows, targets
        # the adaptive softmax has no ignore_index: the unscored rows are left out first
        scored = targets != ignore_index
        rows, targets = rows[scored], targets[scored]
        loss, predicted = self.head.loss(rows, targets)
        return loss, predicted, targets

    def scores(self, outputs: torch.Tensor) -> torch.Tensor:
        """(..., C) scores whose softmax is the model's distribution: ``outputs`` themselves, or
        with head=adaptive every word's log-probability (the whole vocabulary's cost)."""
        return self.head.log_prob(outputs) if isinstance(self.head, AdaptiveHead) else outputs

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """(...,) the most likely class or next token of each of ``outputs``' rows."""
        if isinstance(self.head, AdaptiveHead):
            return self.head.predict(outputs)
        return outputs.argmax(-1)
