from __future__ import annotations

import re

import pytest
import torch

from seqlab.errors import SettingError
from seqlab.models import NetConfig, RecurrentNet


@pytest.mark.parametrize("pooling", ["last", "max", "mean"])
@pytest.mark.parametrize("encoding", ["onehot", "embedding"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_padding_does_not_change_a_sequences_prediction(cell, bidirectional, encoding, pooling):
    torch.manual_seed(0)
    net = RecurrentNet(
        NetConfig(
            vocab_size=6,
            num_outputs=2,
            many_to_one=True,
            pad_index=0,
            cell=cell,
            bidirectional=bidirectional,
            encoding=encoding,
            num_layers=2,
            hidden_size=8,
            pooling=pooling,
        )
    ).eval()
    short = torch.tensor([[3, 1, 4]])
    batch = torch.tensor([[3, 1, 4, 0, 0], [5, 2, 1, 5, 3]])  # the short one padded with 0

    alone = net(short, torch.tensor([3]))[0]
    padded = net(batch, torch.tensor([3, 5]))[0]

    torch.testing.assert_close(padded[0], alone[0])


def test_next_token_scores_every_step_and_many_to_one_scores_the_sequence():
    tokens = torch.randint(0, 5, (4, 7))

    per_step, _ = RecurrentNet(NetConfig(vocab_size=5, num_outputs=5))(tokens)
    per_sequence, _ = RecurrentNet(NetConfig(vocab_size=5, num_outputs=3, many_to_one=True))(tokens)

    assert per_step.shape == (4, 7, 5)
    assert per_sequence.shape == (4, 3)


def test_lstm_state_is_carried_between_calls():
    torch.manual_seed(0)
    net = RecurrentNet(NetConfig(vocab_size=5, num_outputs=5, cell="lstm")).eval()
    tokens = torch.randint(0, 5, (1, 8))

    whole, _ = net(tokens)
    first, state = net(tokens[:, :4])
    second, _ = net(tokens[:, 4:], state=state)

    assert isinstance(state, tuple)  # (h, c)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)


def test_head_none_outputs_are_the_rnn_outputs():
    net = RecurrentNet(NetConfig(vocab_size=5, num_outputs=5, hidden_size=5, head="none"))

    tokens = torch.randint(0, 5, (2, 3))

    scores, _ = net(tokens)
    outputs, _ = net.rnn(net.encode(tokens))

    assert scores.shape == (2, 3, 5)
    torch.testing.assert_close(scores, outputs)
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in net.rnn.parameters())


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_packed_and_unpacked_passes_agree_on_unpadded_sequences(cell):
    torch.manual_seed(0)
    net = RecurrentNet(
        NetConfig(vocab_size=7, num_outputs=7, cell=cell, num_layers=2, bidirectional=True)
    )
    tokens = torch.randint(0, 7, (3, 9))

    unpacked, _ = net(tokens)
    packed, _ = net(tokens, lengths=torch.tensor([9, 9, 9]))

    torch.testing.assert_close(packed, unpacked)


def test_max_and_mean_pooling_summarise_the_outputs_over_time():
    torch.manual_seed(0)
    kwargs = dict(vocab_size=5, num_outputs=4, many_to_one=True, hidden_size=4, head="none")
    tokens = torch.randint(0, 5, (2, 6))
    net_max = RecurrentNet(NetConfig(**kwargs, pooling="max")).eval()
    net_mean = RecurrentNet(NetConfig(**kwargs, pooling="mean")).eval()
    net_mean.load_state_dict(net_max.state_dict())

    outputs, _ = net_max.rnn(net_max.encode(tokens))  # (B, T, H)

    torch.testing.assert_close(net_max(tokens)[0], outputs.amax(dim=1))
    torch.testing.assert_close(net_mean(tokens)[0], outputs.mean(dim=1))


def test_forget_bias_opens_the_lstm_forget_gate_and_only_an_lstm_has_one():
    net = RecurrentNet(
        NetConfig(
            vocab_size=5, num_outputs=5, cell="lstm", hidden_size=4, num_layers=2, forget_bias=2.0
        )
    )

    for name, bias in net.rnn.named_parameters():
        if name.startswith("bias_ih"):
            assert torch.all(bias[4:8] == 2.0)  # the f block of i, f, g, o
        elif name.startswith("bias_hh"):
            assert torch.all(bias[4:8] == 0.0)
    with pytest.raises(
        SettingError, match=r"forget_bias=2\.0 is invalid: applies to cell=lstm only, not gru"
    ):
        NetConfig(vocab_size=5, num_outputs=5, cell="gru", forget_bias=2.0)


def _tied(**kwargs) -> NetConfig:
    return NetConfig(7, 7, encoding="embedding", embedding_dim=8, hidden_size=8, **kwargs)


def test_tied_weights_are_one_tensor_read_in_and_scored_out():
    torch.manual_seed(0)
    tied, untied = RecurrentNet(_tied(tie_weights=True)), RecurrentNet(_tied())

    assert tied.head[-1].weight is tied.embedding.weight
    weights = tied.state_dict()  # both names, one storage: what a checkpoint holds
    assert weights["head.1.weight"].data_ptr() == weights["embedding.weight"].data_ptr()
    count = sum(p.numel() for p in tied.parameters())
    assert count == sum(p.numel() for p in untied.parameters()) - 7 * 8
    tied(torch.randint(0, 7, (2, 5)))[0].sum().backward()
    assert tied.embedding.weight.grad is not None


@pytest.mark.parametrize(
    "settings, reason",
    [
        ({"encoding": "onehot"}, "needs encoding=embedding, not onehot"),
        ({"head": "none"}, "needs head=fc, not none"),
        (
            {"bidirectional": True},
            "the head's input is hidden_size x directions = 16, so embedding_dim must be 16, not 8",
        ),
    ],
)
def test_tied_weights_need_one_vocabulary_and_one_size(settings, reason):
    with pytest.raises(SettingError, match=re.escape(f"tie_weights=True is invalid: {reason}")):
        # 8 tokens: head=none fits hidden_size 8
        NetConfig(8, 8, **{"encoding": "embedding", "embedding_dim": 8, "hidden_size": 8,
                           "tie_weights": True, **settings})  # fmt: skip
    with pytest.raises(SettingError, match="needs a next-token model"):
        _tied(tie_weights=True, many_to_one=True)


def test_init_range_draws_the_embedding_and_head_uniformly_with_a_zero_bias():
    torch.manual_seed(0)
    net = RecurrentNet(NetConfig(7, 7, pad_index=0, encoding="embedding", init_range=0.1))
    default = RecurrentNet(NetConfig(7, 7, pad_index=0, encoding="embedding"))

    for weight in (net.embedding.weight, net.head[-1].weight):
        assert 0.09 < weight.abs().max() <= 0.1
    assert torch.all(net.head[-1].bias == 0)
    assert torch.all(net.embedding.weight[0] == 0)  # the pad row stays zero
    assert default.embedding.weight.abs().max() > 1  # torch's N(0, 1), which this replaces
    with pytest.raises(SettingError, match=r"init_range=0 is invalid: expected a number > 0"):
        NetConfig(7, 7, init_range=0)
