"""Stream batching: contiguous streams read seq_len tokens at a time, on one rank or several."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
import torch

from seqlab.data.streams import StreamBatches, StreamLoader, batchify, rank_streams, stream_loader
from seqlab.errors import SettingError

IDS = torch.arange(1003)  # token i is i: where a batch reads from is its values


def _batches(streams: torch.Tensor, seq_len: int, **kwargs) -> list:
    return list(StreamBatches(streams, seq_len, **kwargs))


def test_batchify_cuts_contiguous_streams_and_drops_the_remainder_like_word_language_model():
    rows = batchify(IDS, 4)

    assert rows.shape == (4, 250)  # 1003 // 4; the last 3 tokens dropped
    assert torch.equal(rows.flatten(), IDS[:1000])
    assert torch.equal(rows[1, :3], torch.tensor([250, 251, 252]))


def test_each_stream_of_the_next_batch_starts_where_the_last_batch_ended():
    batches = _batches(batchify(IDS, 4), seq_len=35)

    assert [b.inputs.size(1) for b in batches] == [35] * 7 + [4]  # 249 targets: 7 x 35 + 4
    for before, after in itertools.pairwise(batches):
        # the last target of each row is the first input of the same row next batch
        assert torch.equal(before.targets[:, -1], after.inputs[:, 0].long())
    assert all(b.carry_state and b.lr_scale == 1.0 for b in batches)


def test_the_streams_cover_the_split_once_and_every_target_is_scored_once():
    streams = batchify(IDS, 4)
    batches = _batches(streams, seq_len=35)

    inputs = torch.cat([b.inputs for b in batches], dim=1)
    targets = torch.cat([b.targets for b in batches], dim=1)
    assert torch.equal(inputs, streams[:, :-1])
    assert torch.equal(targets, streams[:, 1:])
    assert len(StreamBatches(streams, 35)) == len(batches)


def test_two_ranks_each_read_their_own_contiguous_streams_and_together_the_split_once():
    per_rank = [rank_streams(IDS, 3, rank, world_size=2) for rank in (0, 1)]

    assert [p.shape for p in per_rank] == [(3, 167), (3, 167)]  # 1003 // 6 tokens each
    assert torch.equal(torch.cat(per_rank).flatten(), IDS[: 6 * 167])
    assert per_rank[0][-1, -1] + 1 == per_rank[1][0, 0]  # rank 1 goes on where rank 0 stops
    # each row is one stretch of the text, read in order
    for rows in per_rank:
        assert (rows.diff(dim=1) == 1).all()


class _Trainer:
    def __init__(self, rank: int, world_size: int, epoch: int = 0) -> None:
        self.global_rank, self.world_size, self.current_epoch = rank, world_size, epoch


def test_the_loader_of_each_rank_serves_that_ranks_streams():
    loaders = [stream_loader(IDS, 3, 10, _Trainer(rank, 2)) for rank in (0, 1)]

    first = [next(iter(loader)).inputs for loader in loaders]
    assert torch.equal(first[0][:, 0], torch.tensor([0, 167, 334]))
    assert torch.equal(first[1][:, 0], torch.tensor([501, 668, 835]))


def test_jittered_lengths_follow_awd_lstm_and_scale_the_learning_rate():
    streams = batchify(torch.arange(40_000), 2)
    batches = _batches(streams, seq_len=70, jitter=5.0, seed=3)
    lengths = [b.inputs.size(1) for b in batches]

    assert torch.equal(torch.cat([b.inputs for b in batches], dim=1), streams[:, :-1])
    assert len(set(lengths)) > 10  # lengths vary around 70
    assert 60 < sum(lengths[:-1]) / len(lengths[:-1]) < 70  # 95 % near 70, 5 % near 35
    assert any(length < 50 for length in lengths[:-1])  # the half-length draws
    assert min(lengths[:-1]) >= 5
    for batch, length in zip(batches, lengths, strict=True):
        assert batch.lr_scale == pytest.approx(length / 70)


def test_jittered_lengths_are_the_same_for_the_same_epoch_and_differ_between_epochs():
    streams = batchify(torch.arange(20_000), 2)

    def lengths(epoch: int) -> list[int]:
        return StreamBatches(streams, 35, jitter=5.0, seed=1, epoch=lambda: epoch).lengths()

    assert lengths(0) == lengths(0)
    assert lengths(0) != lengths(1)
    with pytest.raises(TypeError):  # Lightning then ends the epoch when the batches end
        len(StreamBatches(streams, 35, jitter=5.0))


def test_a_loader_resumed_mid_epoch_serves_the_batches_after_the_last_one_served():
    loader = StreamLoader(StreamBatches(batchify(IDS, 4), 10))
    served = []
    for batch in loader:
        served.append(batch.inputs)
        if len(served) == 7:
            break
    state = loader.state_dict()

    resumed = StreamLoader(StreamBatches(batchify(IDS, 4), 10))
    resumed.load_state_dict(state)

    assert state == {"served": 7}
    assert torch.equal(next(iter(resumed)).inputs, batchify(IDS, 4)[:, 70:80])


@pytest.mark.parametrize("jitter", [0.0, 2.0])
def test_a_loader_checkpointed_after_its_last_batch_starts_the_next_epoch_at_its_first(jitter):
    loader = StreamLoader(StreamBatches(batchify(IDS, 4), 10, jitter))
    served = list(loader)
    state = loader.state_dict()

    resumed = StreamLoader(StreamBatches(batchify(IDS, 4), 10, jitter))
    resumed.load_state_dict(state)

    assert torch.equal(next(iter(resumed)).inputs, served[0].inputs)


def test_a_jittered_loader_read_ahead_of_the_loop_records_only_the_batches_the_loop_took():
    class Progress:  # what Lightning's fit loop counts: batches it took this epoch
        ready = 0

    trainer = SimpleNamespace(
        fit_loop=SimpleNamespace(
            epoch_loop=SimpleNamespace(batch_progress=SimpleNamespace(current=Progress))
        )
    )
    loader = StreamLoader(StreamBatches(batchify(IDS, 4), 10, jitter=2.0), trainer)
    batches = iter(loader)
    taken = [next(batches) for _ in range(4)]
    Progress.ready = 3  # the fourth batch was only read ahead (Lightning's prefetch)
    state = loader.state_dict()

    resumed = StreamLoader(StreamBatches(batchify(IDS, 4), 10, jitter=2.0))
    resumed.load_state_dict(state)

    assert state == {"served": 3}
    assert torch.equal(next(iter(resumed)).inputs, taken[3].inputs)


def test_streams_too_short_for_a_batch_are_refused_naming_the_setting():
    from seqlab.data.streams import check_streams

    with pytest.raises(SettingError, match=r"seq_len=35 is invalid: expected seq_len < 25"):
        check_streams({"val": 250}, {"val": ("eval_batch_size", 10)}, 35)
    with pytest.raises(SettingError, match=r"batch_size=200 .* streams of 1 tokens"):
        check_streams({"train": 250}, {"train": ("batch_size", 200)}, 5)
