"""AWD-LSTM's regularisers (Merity et al. 2017), each a small module beside the network.

Each draws new masks at every forward pass in training and is the identity in eval mode:
:class:`LockedDropout` (one mask per sequence, the same at every step), :class:`EmbeddingDropout`
(whole words of the embedding matrix), :class:`WeightDrop` (DropConnect on an RNN's
hidden-to-hidden matrices). :func:`activation_penalty` and :func:`temporal_penalty` are AR and
TAR, which the training loss adds.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F


def _keep_mask(shape: tuple[int, ...], p: float, like: torch.Tensor) -> torch.Tensor:
    # inverted dropout: kept entries scaled by 1 / (1 - p), so eval needs no rescaling
    return like.new_empty(shape).bernoulli_(1 - p) / (1 - p)


class LockedDropout(nn.Module):
    """Variational dropout (Gal & Ghahramani 2016): one mask per sequence and feature, the
    same at every time step. x: (B, T, H) batch-first, or (B, H) one vector per sequence."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.p:
            return x
        shape = (x.size(0), 1, x.size(2)) if x.dim() == 3 else tuple(x.shape)  # (B, 1, H)
        return x * _keep_mask(shape, self.p, x)


class EmbeddingDropout(nn.Module):
    """Word dropout on an embedding's matrix (Gal & Ghahramani 2016): each row of the (V, E)
    matrix is zero with probability ``p`` for the whole batch, the rest scaled by 1 / (1 - p),
    so a dropped word is dropped at every place it occurs. Called with the embedding, which
    keeps its weight as the network's own parameter."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, embedding: nn.Embedding, tokens: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.p:
            return embedding(tokens)
        weight = embedding.weight
        dropped = weight * _keep_mask((weight.size(0), 1), self.p, weight)  # (V, E)
        return F.embedding(tokens, dropped, embedding.padding_idx)  # (B, T, E)


class WeightDrop(nn.Module):
    """DropConnect (Wan et al. 2013) on an RNN's hidden-to-hidden weights: ``rnn`` called with
    each ``weight_hh_*`` replaced by a dropped copy (inverted dropout: eval uses the weights as
    they are), a new mask every forward pass in training.

    ``rnn`` keeps its own parameters under their own names (checkpoints are unchanged); the
    dropped weights are handed to its forward through ``torch.func.functional_call``, so torch's
    fused kernels run as usual. On CUDA the weights are first laid out as the RNN's flattened
    buffer is (one contiguous chunk at the same offsets), which is what cuDNN reads directly.
    Holds no parameters; its training flag follows the network's.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, rnn: nn.Module, *args: Any, **kwargs: Any) -> Any:
        if not self.training or not self.p:
            return rnn(*args, **kwargs)
        names, originals = zip(*rnn.named_parameters(), strict=True)
        values = [
            F.dropout(w, self.p, training=True) if name.startswith("weight_hh") else w
            for name, w in zip(names, originals, strict=True)
        ]
        if originals[0].is_cuda:
            values = laid_out_like(list(originals), values)
        return functional_call(rnn, dict(zip(names, values, strict=True)), args, kwargs)


def laid_out_like(originals: list[torch.Tensor], values: list[torch.Tensor]) -> list[torch.Tensor]:
    """``values`` as views of one new tensor, each at the offset its original has in their
    shared storage (an ``nn.LSTM`` after ``flatten_parameters``); ``values`` themselves when
    the originals do not share one storage without overlaps."""
    storage = originals[0].untyped_storage()
    if any(o.untyped_storage().data_ptr() != storage.data_ptr() for o in originals):
        return values
    order = sorted(range(len(originals)), key=lambda i: originals[i].storage_offset())
    pieces, at = [], 0
    for i in order:
        gap = originals[i].storage_offset() - at
        if gap < 0 or not originals[i].is_contiguous():
            return values
        if gap:
            pieces.append(values[i].new_zeros(gap))
        pieces.append(values[i].reshape(-1))
        at = originals[i].storage_offset() + originals[i].numel()
    total = storage.nbytes() // originals[0].element_size()
    if total > at:
        pieces.append(values[0].new_zeros(total - at))
    flat = torch.cat(pieces)  # gradients flow back to each value through the cat
    return [flat[o.storage_offset() :][: o.numel()].view_as(o) for o in originals]


def activation_penalty(dropped: torch.Tensor, alpha: float) -> torch.Tensor:
    """AR: alpha * mean(h_t^2) over the last layer's dropped outputs, dropped: (B, T, H)."""
    return alpha * dropped.pow(2).mean()


def temporal_penalty(raw: torch.Tensor, beta: float) -> torch.Tensor:
    """TAR: beta * mean((h_t - h_{t-1})^2) over the last layer's outputs before dropout,
    raw: (B, T, H); a one-step batch has no change to penalise."""
    if raw.size(1) < 2:
        return raw.new_zeros(())
    return beta * (raw[:, 1:] - raw[:, :-1]).pow(2).mean()
