"""Stateful truncated BPTT: a split cut into contiguous streams, read ``seq_len`` tokens at a time.

word_language_model's ``batchify`` and ``get_batch``, batch-first: the split becomes ``(S, N)``,
one row per stream, and batch ``i`` is every row's columns ``[p, p + T]`` where batch ``i - 1``
stopped at ``p``. The model carries its final state from one batch into the next (detached), so
the gradient reaches back ``T`` steps while the state has seen the whole epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import IterableDataset

from seqlab.data.base import Batch, ResumableLoader, already_collated
from seqlab.errors import SettingError

MIN_JITTERED = 5  # AWD-LSTM's shortest jittered length (fewer when seq_len itself is shorter)


def batchify(ids: torch.Tensor, streams: int) -> torch.Tensor:
    """(S, N): ``ids`` cut into ``streams`` contiguous rows; the ``len % S`` tokens left over at
    the end are dropped, as word_language_model does."""
    per_stream = len(ids) // streams
    return ids[: per_stream * streams].view(streams, per_stream)


def rank_streams(
    ids: torch.Tensor, streams: int, rank: int = 0, world_size: int = 1
) -> torch.Tensor:
    """(streams, N): this rank's own contiguous streams. The split is cut into ``streams`` x
    ``world_size`` rows and each rank takes a block of them, so the ranks together read the
    split once, each in order (no sampler reorders them)."""
    rows = batchify(ids, streams * world_size)
    return rows[rank * streams : (rank + 1) * streams]


def stream_length(tokens: int, streams: int, world_size: int = 1) -> int:
    """N: tokens in each stream when ``tokens`` are cut into ``streams`` per rank."""
    return tokens // (streams * world_size)


class StreamBatches(IterableDataset):
    """The batches of one pass over ``streams`` (S, N): inputs ``[:, p : p + T]``, targets one
    step ahead, with ``T = seq_len`` except for the last batch (what is left) and, with
    ``jitter``, AWD-LSTM's variable length: ``seq_len`` (95 %) or half of it (5 %), then drawn
    from a normal distribution of standard deviation ``jitter`` around that, at least
    ``MIN_JITTERED``. A jittered batch asks for its learning rate scaled by ``T / seq_len``, so
    a long batch does not take a larger step per token.

    ``epoch()`` says which epoch is read: the jittered lengths are drawn from ``seed`` and it,
    so a resumed epoch reads the same batches as the stopped one did.
    """

    def __init__(
        self,
        streams: torch.Tensor,
        seq_len: int,
        jitter: float = 0.0,
        seed: int = 0,
        epoch: Callable[[], int] = lambda: 0,
    ) -> None:
        self.streams, self.seq_len, self.jitter = streams, seq_len, jitter
        self.seed, self.epoch = seed, epoch

    def lengths(self) -> list[int]:
        """The BPTT length of each batch of the epoch, in order."""
        last = self.streams.size(1) - 1  # the last position that is only a target
        if not self.jitter:
            return [min(self.seq_len, last - p) for p in range(0, last, self.seq_len)]
        generator = torch.Generator().manual_seed(self.seed + self.epoch())
        shortest = min(MIN_JITTERED, self.seq_len)
        lengths, position = [], 0
        while position < last:
            half = torch.rand(1, generator=generator).item() >= 0.95
            mean = self.seq_len / 2 if half else self.seq_len
            drawn = mean + self.jitter * torch.randn(1, generator=generator).item()
            length = min(max(shortest, int(drawn)), last - position)
            lengths.append(length)
            position += length
        return lengths

    def __len__(self) -> int:
        if self.jitter:
            # the count differs from epoch to epoch: Lightning ends the epoch when the batches do
            raise TypeError("a jittered epoch has no fixed number of batches")
        return math.ceil((self.streams.size(1) - 1) / self.seq_len)

    def __iter__(self) -> Iterator[Batch]:
        position = 0
        for length in self.lengths():
            window = self.streams[:, position : position + length + 1]  # (S, T + 1), a view
            scale = length / self.seq_len if self.jitter else 1.0
            # copied: a view would hold on to the whole split when the batch is moved
            yield Batch(
                window[:, :-1].clone(),
                window[:, 1:].long(),
                carry_state=True,
                lr_scale=scale,
            )
            position += length


class StreamLoader(ResumableLoader):
    """The loader of a :class:`StreamBatches`: each item is a whole batch, in order; a
    checkpoint taken mid-epoch resumes at the batch after the last one trained on.

    A jittered epoch has no ``len()``, so Lightning's fetcher reads one batch ahead of the
    training loop (to know which batch is the epoch's last): the loader has then served one
    more batch than the loop took. With the ``trainer`` given, a checkpoint records the batches
    the fit loop took this epoch, so a resumed epoch does not skip the one read ahead; one taken
    once the epoch's batches have all been served records none, so the next epoch starts at its
    first batch.
    """

    def __init__(self, dataset: StreamBatches, trainer: Any | None = None, **kwargs: Any) -> None:
        super().__init__(dataset, batch_size=None, **kwargs)
        self._trainer, self._done = trainer, False

    def __iter__(self) -> Iterator[Batch]:
        self._done = False
        yield from super().__iter__()
        self._done = True

    def state_dict(self) -> dict[str, int]:
        if self._done:
            return {"served": 0}
        served = self._served
        if self._trainer is not None:
            served = min(served, self._trainer.fit_loop.epoch_loop.batch_progress.current.ready)
        return {"served": served}


def training_epoch(trainer: Any) -> int:
    """The epoch the fit loop is about to read, as Lightning tells samplers (``set_epoch``): on
    a resume from a checkpoint taken at an epoch's end it is already the next epoch, while
    ``trainer.current_epoch`` still names the finished one."""
    return trainer.fit_loop.epoch_progress.current.processed


def check_streams(
    tokens: dict[str, int], streams: dict[str, tuple[str, int]], seq_len: int, world_size: int = 1
) -> None:
    """Every split makes streams long enough for one batch of ``seq_len``: ``tokens`` counts
    each split's tokens, ``streams`` gives its number of streams and the setting that sets it."""
    for split, count in tokens.items():
        key, size = streams[split]
        per_stream = stream_length(count, size, world_size)
        if per_stream < 2:
            ranks = f" on each of {world_size} ranks" if world_size > 1 else ""
            raise SettingError(
                key,
                size,
                f"the {split} split's {count:,} tokens make {size} streams{ranks} of "
                f"{per_stream} tokens: too short to predict anything",
            )
        if seq_len >= per_stream:
            ranks = f" on each of {world_size} ranks" if world_size > 1 else ""
            raise SettingError(
                "seq_len",
                seq_len,
                f"expected seq_len < {per_stream}: the {split} split's {count:,} tokens make "
                f"{size} streams ({key}){ranks} of {per_stream} tokens",
            )


def stream_loader(
    ids: torch.Tensor,
    streams: int,
    seq_len: int,
    trainer: Any | None,
    jitter: float = 0.0,
    seed: int = 0,
    split: str = "train",
) -> StreamLoader:
    """The loader of this rank's streams of the split ``ids``, for ``trainer`` (or for one
    process without one). With several ranks the streams are checked again: each is shorter."""
    rank, world_size = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
    if world_size > 1:
        key = "batch_size" if split == "train" else "eval_batch_size"
        check_streams({split: len(ids)}, {split: (key, streams)}, seq_len, world_size)
    epoch = (lambda: training_epoch(trainer)) if trainer else (lambda: 0)
    rows = rank_streams(ids, streams, rank, world_size)
    dataset = StreamBatches(rows, seq_len, jitter, seed, epoch)
    return StreamLoader(dataset, trainer, collate_fn=already_collated)
