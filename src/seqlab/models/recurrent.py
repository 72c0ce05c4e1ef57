"""One recurrent network for every cell: encoder -> RNN / LSTM / GRU -> linear, adaptive or no
head."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from seqlab.models.adaptive import AdaptiveHead
from seqlab.models.config import NetConfig
from seqlab.models.regularize import EmbeddingDropout, LockedDropout, WeightDrop
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


@dataclass
class Run:
    outputs: torch.Tensor  # forward's: scores, or the adaptive head's features
    state: State
    raw: torch.Tensor | PackedSequence  # (B, T, D * H): the last layer's output (TAR reads it)
    dropped: torch.Tensor | PackedSequence  # the same after dropout_output (AR reads it)


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
        # the state's width: with layers of their own sizes each layer's (h, c) is zero-padded
        # to the widest, so the state stays one (L * D, B, H) tensor (or two) as without
        self.state_size = max(config.layer_sizes)
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
        rnn_class = RNN_CLASSES[config.impl, config.cell]
        extra = {"nonlinearity": config.nonlinearity} if config.cell == "rnn" else {}
        if config.layered:
            # AWD-LSTM's stack: one single-layer RNN per layer, locked dropout between them
            sizes = config.layer_sizes
            inputs = [input_size, *(size * self.directions for size in sizes[:-1])]
            self.rnns = nn.ModuleList(
                rnn_class(
                    features,
                    size,
                    batch_first=True,
                    bidirectional=config.bidirectional,
                    **extra,
                )
                for features, size in zip(inputs, sizes, strict=True)
            )
        else:
            self.rnn = rnn_class(
                input_size,
                config.hidden_size,
                num_layers=config.num_layers,
                batch_first=True,
                # nn.RNN's dropout acts between layers only (and warns with one layer)
                dropout=dropout if config.num_layers > 1 else 0.0,
                bidirectional=config.bidirectional,
                **extra,
            )
        self._regularisers(config)
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

    def _regularisers(self, config: NetConfig) -> None:
        # AWD-LSTM's, each the identity at 0 (seqlab.models.regularize); registered only when
        # set, so the plain network's modules are as they always were
        if config.dropout_embedding:
            self.word_dropout = EmbeddingDropout(config.dropout_embedding)
        if config.dropout_input:
            self.input_dropout = LockedDropout(config.dropout_input)
        if config.dropout_hidden:
            self.hidden_dropout = LockedDropout(config.dropout_hidden)
        if config.dropout_output:
            self.output_dropout = LockedDropout(config.dropout_output)
        if config.weight_drop:
            self.weight_drop = WeightDrop(config.weight_drop)

    @property
    def recurrent_layers(self) -> list[nn.Module]:
        """The RNN modules in order: one, or one per layer when they run one by one."""
        return list(self.rnns) if self.config.layered else [self.rnn]

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
        for rnn in self.recurrent_layers:
            h = rnn.hidden_size
            for name, bias in rnn.named_parameters():
                if name.startswith("bias_ih"):  # gates i, f, g, o: f is the 2nd block of h rows
                    bias[h : 2 * h] = value
                elif name.startswith("bias_hh"):
                    bias[h : 2 * h] = 0.0

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens.long()  # ids arrive in the corpus's compact dtype
        if self.embedding is not None:
            if hasattr(self, "word_dropout"):
                return self.embedding_dropout(self.word_dropout(self.embedding, tokens))
            return self.embedding_dropout(self.embedding(tokens))  # (B, T, E)
        # built on the batch's device, in one op: nothing per sample on the CPU; in the
        # parameters' dtype, so that a network cast to bf16 or float64 reads it as it is
        dtype = next(self.recurrent_layers[0].parameters()).dtype
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
        run = self.run(tokens, lengths, state)
        return run.outputs, run.state

    def run(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor | None = None,
        state: State | None = None,
    ) -> Run:
        """:meth:`forward`'s outputs and state, with the last layer's output before and after
        ``dropout_output`` (what AR and TAR read)."""
        x = self.encode(tokens)
        if hasattr(self, "input_dropout"):
            x = self.input_dropout(x)
        batch, steps = tokens.shape
        if self.config.layered:
            out, state = self._run_layers(x, lengths, state)
        else:
            out, state = self._recur(self.rnn, x, lengths, state)
        if isinstance(out, PackedSequence) and not (self.many_to_one and self.pooling == "last"):
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=steps)
        raw = out
        if hasattr(self, "output_dropout") and not isinstance(out, PackedSequence):
            out = self.output_dropout(out)
        if not self.many_to_one:
            # (B, T, D * H) -> (B, T, C), or features (adaptive)
            return Run(self.head(out), state, raw, out)
        h_n = state[0] if isinstance(state, tuple) else state  # (L * D, B, H)
        # last layer, both directions: forward saw every step, backward ended at step 0
        last = h_n.view(self.num_layers, self.directions, batch, self.state_size)[-1]
        last = last[..., : self.hidden_size].transpose(0, 1).reshape(batch, -1)
        features = self.pool(out, last, lengths)
        if hasattr(self, "output_dropout") and isinstance(out, PackedSequence):
            features = self.output_dropout(features)  # (B, D * H): one mask per sequence
        return Run(self.head(features), state, raw, out)

    def _recur(
        self, rnn: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None, state: State | None
    ) -> tuple[torch.Tensor | PackedSequence, State]:
        """``rnn`` over x (B, T, I), through weight drop when it is on."""
        call = partial(self.weight_drop, rnn) if hasattr(self, "weight_drop") else rnn
        if lengths is None:
            return call(x, state)
        if isinstance(rnn, ScratchRecurrent):
            # the scratch cells skip padded steps themselves, with the same results as packing
            return call(x, state, lengths=lengths)
        # packing hides the padding from the RNN: a sequence's result is the same alone or
        # padded in a batch, and h_n holds each sequence's last real step
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        return call(packed, state)

    def _run_layers(
        self, x: torch.Tensor, lengths: torch.Tensor | None, state: State | None
    ) -> tuple[torch.Tensor, State]:
        """The layers one by one, locked dropout between them; x: (B, T, I) -> (B, T, D * H).

        The state is (L * D, B, state_size) (or two): layer l's rows ``l * D : (l + 1) * D``,
        its first H_l units, the rest zero."""
        parts = None if state is None else (state if isinstance(state, tuple) else (state,))
        finals: list[tuple[torch.Tensor, ...]] = []
        steps, d = x.size(1), self.directions
        for layer, rnn in enumerate(self.rnns):
            if layer and hasattr(self, "hidden_dropout"):
                x = self.hidden_dropout(x)
            start = None
            if parts is not None:
                mine = tuple(p[layer * d : (layer + 1) * d, :, : rnn.hidden_size] for p in parts)
                start = mine if len(mine) == 2 else mine[0]
            out, final = self._recur(rnn, x.contiguous(), lengths, start)
            if isinstance(out, PackedSequence):
                out, _ = pad_packed_sequence(out, batch_first=True, total_length=steps)
            x = out
            widen = self.state_size - rnn.hidden_size
            finals.append(
                tuple(
                    F.pad(f, (0, widen)) for f in (final if isinstance(final, tuple) else (final,))
                )
            )
        stacked = tuple(torch.cat(layer_parts) for layer_parts in zip(*finals, strict=True))
        return x, (stacked if len(stacked) == 2 else stacked[0])

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
            if rows.dtype != torch.float32 and torch.is_autocast_enabled(rows.device.type):
                # autocast runs cross-entropy in float32 on a copy of the bf16/fp16 scores:
                # that copy, made here, is what accuracy's argmax reads too (the same maximum,
                # as the cast is exact; on the CPU 3x faster than an argmax over bf16)
                rows = rows.float()
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
