"""The cells written from the equations against torch's: same weights, same numbers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqlab.errors import SettingError
from seqlab.models import NetConfig, RecurrentNet, ScratchGRU, ScratchLSTM, ScratchRNN
from seqlab.train import train

# name -> (torch class, scratch class, extra constructor arguments)
CELLS = {
    "rnn-tanh": (nn.RNN, ScratchRNN, {"nonlinearity": "tanh"}),
    "rnn-relu": (nn.RNN, ScratchRNN, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, ScratchLSTM, {}),
    "gru": (nn.GRU, ScratchGRU, {}),
}
INPUT, HIDDEN, STEPS = 3, 4, 5
TOLERANCE = {"atol": 1e-5, "rtol": 0.0}  # float32


def pair(cell: str, **kwargs) -> tuple[nn.Module, nn.Module]:
    """A torch module and a scratch module holding the same weights."""
    torch_class, scratch_class, extra = CELLS[cell]
    kwargs = {"batch_first": True, **extra, **kwargs}
    reference = torch_class(INPUT, HIDDEN, **kwargs)
    scratch = scratch_class(INPUT, HIDDEN, **kwargs)
    scratch.load_state_dict(reference.state_dict())
    return reference, scratch


def as_tuple(state) -> tuple[torch.Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


def run_backward(module: nn.Module, x: torch.Tensor, upstream: list[torch.Tensor], **kwargs):
    """Outputs, final states and the gradients of every parameter and of x, from ``upstream``."""
    x = x.clone().requires_grad_()
    output, state = module(x, **kwargs)
    results = [output, *as_tuple(state)]
    loss = sum((r * g).sum() for r, g in zip(results, upstream, strict=True))
    loss.backward()
    grads = {name: p.grad for name, p in module.named_parameters()}
    return results, grads, x.grad


def assert_same_run(reference, scratch, x, **kwargs) -> None:
    with torch.no_grad():
        output, state = reference(x, **kwargs)
    # a random gradient on every result: output, h_n (and c_n)
    upstream = [torch.randn_like(r) for r in (output, *as_tuple(state))]
    expected, expected_grads, expected_x_grad = run_backward(reference, x, upstream, **kwargs)
    actual, actual_grads, actual_x_grad = run_backward(scratch, x, upstream, **kwargs)

    for e, a in zip(expected, actual, strict=True):  # output, h_n (and c_n)
        torch.testing.assert_close(a, e, **TOLERANCE)
    assert actual_grads.keys() == expected_grads.keys()
    for name, grad in expected_grads.items():
        torch.testing.assert_close(actual_grads[name], grad, **TOLERANCE, msg=name)
    torch.testing.assert_close(actual_x_grad, expected_x_grad, **TOLERANCE)


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("cell", CELLS)
def test_outputs_states_and_gradients_match_torch(cell, num_layers, bidirectional, bias, batch):
    torch.manual_seed(0)
    reference, scratch = pair(cell, num_layers=num_layers, bidirectional=bidirectional, bias=bias)
    x = torch.randn(batch, STEPS, INPUT)

    assert_same_run(reference, scratch, x)


@pytest.mark.parametrize("cell", CELLS)
def test_a_given_initial_state_matches_torch(cell):
    torch.manual_seed(0)
    reference, scratch = pair(cell, num_layers=2, bidirectional=True)
    x = torch.randn(3, STEPS, INPUT)
    h0 = torch.randn(2 * 2, 3, HIDDEN)  # (L * D, B, H)
    hx = (h0, torch.randn_like(h0)) if cell == "lstm" else h0

    assert_same_run(reference, scratch, x, hx=hx)


class Packed(nn.Module):
    """torch's module fed a packed batch, as RecurrentNet does with impl=torch."""

    def __init__(self, rnn: nn.Module, lengths: torch.Tensor) -> None:
        super().__init__()
        self.rnn, self.lengths = rnn, lengths

    def forward(self, x: torch.Tensor):
        packed = pack_padded_sequence(x, self.lengths, batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0], state


class WithLengths(Packed):
    """A scratch module given the lengths, as RecurrentNet does with impl=scratch."""

    def forward(self, x: torch.Tensor):
        return self.rnn(x, lengths=self.lengths)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("cell", CELLS)
def test_padded_batch_with_lengths_matches_torch_with_packing(cell, bidirectional):
    torch.manual_seed(0)
    reference, scratch = pair(cell, num_layers=2, bidirectional=bidirectional)
    lengths = torch.tensor([STEPS, 2, 4, 1])  # unsorted, one full, one of a single step
    x = torch.randn(4, STEPS, INPUT)
    x[torch.arange(STEPS) >= lengths[:, None]] = 9.0  # padding that would show if it were read

    assert_same_run(Packed(reference, lengths), WithLengths(scratch, lengths), x)
    output, _ = scratch(x, lengths=lengths)
    assert output[1, 2:].eq(0).all()  # zeros after the last real step, as pad_packed_sequence


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("many_to_one", [False, True], ids=["next-token", "many-to-one"])
def test_recurrent_net_gives_the_same_scores_with_either_impl(cell, many_to_one):
    torch.manual_seed(0)
    build = dict(vocab_size=6, num_outputs=3, many_to_one=many_to_one, pad_index=0, cell=cell)
    build |= dict(num_layers=2, bidirectional=True, hidden_size=4, encoding="embedding")
    torch_net = RecurrentNet(NetConfig(**build)).eval()
    scratch_net = RecurrentNet(NetConfig(**build, impl="scratch")).eval()
    scratch_net.load_state_dict(torch_net.state_dict())
    tokens = torch.tensor([[3, 1, 4, 0, 0], [5, 2, 1, 5, 3], [2, 0, 0, 0, 0]])
    lengths = torch.tensor([3, 5, 1])

    expected, expected_state = torch_net(tokens, lengths)
    actual, actual_state = scratch_net(tokens, lengths)

    torch.testing.assert_close(actual, expected, **TOLERANCE)
    for a, e in zip(as_tuple(actual_state), as_tuple(expected_state), strict=True):
        torch.testing.assert_close(a, e, **TOLERANCE)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("cell", CELLS)
def test_state_dict_goes_torch_to_scratch_to_torch(cell, bias):
    torch.manual_seed(0)
    torch_class, scratch_class, extra = CELLS[cell]
    kwargs = dict(num_layers=2, bidirectional=True, bias=bias, batch_first=True, **extra)
    original = torch_class(INPUT, HIDDEN, **kwargs)
    scratch = scratch_class(INPUT, HIDDEN, **kwargs)
    back = torch_class(INPUT, HIDDEN, **kwargs)

    scratch.load_state_dict(original.state_dict())  # strict by default
    back.load_state_dict(scratch.state_dict())

    assert list(scratch.state_dict()) == list(original.state_dict())  # names, in torch's order
    for name, value in original.state_dict().items():
        assert torch.equal(back.state_dict()[name], value), name


@pytest.mark.parametrize("cell", CELLS)
def test_init_is_torchs_uniform_in_one_over_sqrt_hidden(cell):
    torch.manual_seed(0)
    _, scratch_class, extra = CELLS[cell]
    hidden = 64
    values = torch.cat([p.flatten() for p in scratch_class(INPUT, hidden, **extra).parameters()])

    bound = 1 / math.sqrt(hidden)
    assert values.abs().max() <= bound
    assert values.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)  # uniform's std


@pytest.mark.parametrize("cell", CELLS)
def test_dropout_acts_between_layers_in_training_mode_only(cell):
    torch.manual_seed(0)
    x = torch.randn(4, STEPS, INPUT)
    _, scratch_class, extra = CELLS[cell]
    one_layer = scratch_class(INPUT, HIDDEN, dropout=0.5, batch_first=True, **extra)
    reference, two_layers = pair(cell, num_layers=2, dropout=0.5)

    # eval mode: no dropout, the same as torch's
    torch.testing.assert_close(two_layers.eval()(x)[0], reference.eval()(x)[0], **TOLERANCE)
    # training mode: a single layer has nowhere to drop; two layers drop between them
    torch.testing.assert_close(one_layer.train()(x)[0], one_layer.eval()(x)[0])
    assert not torch.allclose(two_layers.train()(x)[0], two_layers.eval()(x)[0])


def test_hihello_from_the_equations_predicts_ihello(make_cfg):
    result = train(make_cfg("experiment=hihello", "model.impl=scratch"))

    [prediction] = result.predictions
    assert (prediction.text, prediction.predicted) == ("hihell", "ihello")


def test_unknown_impl_is_one_line_naming_it_before_anything_is_written(make_cfg, tmp_path):
    with pytest.raises(SettingError) as error:
        train(make_cfg("model.impl=nope"))

    message = "model.impl='nope' is invalid: expected one of torch, scratch"
    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()
