"""unroll(): the network's own forward pass, one step at a time."""

from __future__ import annotations

import itertools

import pytest
import torch

from seqlab.models import NetConfig, RecurrentNet
from seqlab.models.unroll import unroll

TOKENS = torch.tensor([[1, 2, 3, 4, 5], [2, 3, 0, 0, 0]])
LENGTHS = torch.tensor([5, 2])


def _net(**kwargs) -> RecurrentNet:
    torch.manual_seed(0)
    settings = {"vocab_size": 6, "num_outputs": 3, "pad_index": 0, "hidden_size": 4}
    settings |= {"num_layers": 2, "bidirectional": True, **kwargs}
    return RecurrentNet(NetConfig(**settings)).eval()


@pytest.mark.parametrize(
    ("impl", "cell"), list(itertools.product(["torch", "scratch"], ["rnn", "lstm", "gru"]))
)
def test_a_next_token_nets_scores_are_its_own_at_the_last_real_step(impl, cell):
    net = _net(cell=cell, impl=impl)

    unrolled = unroll(net, TOKENS, LENGTHS)

    last = net(TOKENS, LENGTHS)[0][torch.arange(2), LENGTHS - 1]  # (B, C)
    torch.testing.assert_close(unrolled.scores, last)
    assert unrolled.outputs.shape == (2, 5, 2 * 4) and len(unrolled.hidden) == 5


@pytest.mark.parametrize(
    ("impl", "pooling"), list(itertools.product(["torch", "scratch"], ["last", "max", "mean"]))
)
def test_a_classifiers_scores_are_its_own_whatever_the_pooling(impl, pooling):
    net = _net(cell="lstm", impl=impl, many_to_one=True, pooling=pooling, encoding="embedding")

    unrolled = unroll(net, TOKENS, LENGTHS)

    torch.testing.assert_close(unrolled.scores, net(TOKENS, LENGTHS)[0])


def test_lstm_gates_are_kept_per_step_and_lie_in_their_ranges():
    net = _net(cell="lstm")

    gates = unroll(net, TOKENS, gates=True).gates

    assert gates.shape == (2, 4, 4, 5)  # (B, i f g o, H, T)
    sigmoid = gates[:, [0, 1, 3]]
    assert bool(((sigmoid > 0) & (sigmoid < 1)).all()) and bool((gates[:, 2].abs() < 1).all())


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_stack_of_layers_of_their_own_sizes_unrolls_to_its_own_scores(cell):
    # AWD's stack: one RNN a layer, 6 -> 5 -> 4 units, locked dropout between (off in eval)
    net = _net(cell=cell, hidden_sizes=[6, 5, 4], num_layers=3, dropout_hidden=0.3)

    unrolled = unroll(net, TOKENS, LENGTHS, gates=cell == "lstm")

    last = net(TOKENS, LENGTHS)[0][torch.arange(2), LENGTHS - 1]
    torch.testing.assert_close(unrolled.scores, last)
    assert unrolled.outputs.shape == (2, 5, 2 * 4) and len(unrolled.hidden) == 5
    if cell == "lstm":
        assert unrolled.gates.shape == (2, 4, 4, 5)  # the top layer's 4 units
