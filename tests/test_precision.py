"""trainer.precision=bf16-mixed on the CPU: bf16 matrix products under autocast, float32 losses."""

from __future__ import annotations

from collections import Counter

import pytest
import pytorch_lightning as pl
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import seqlab.precision
from seqlab.errors import SettingError
from seqlab.models import NetConfig, RecurrentNet
from seqlab.precision import cpu_lstm_kernel_missing
from seqlab.train import train

# the ops that run on the CPU's matrix units: oneDNN's fused LSTM layer, and the GEMMs that
# nn.RNN's and nn.GRU's CPU kernels are made of
MATRIX_OPS = ("mm", "addmm", "bmm", "linear", "mkldnn_rnn_layer")

# an LSTM under bf16 autocast runs only on a CPU oneDNN has bf16 kernels for (AVX-512); on
# another, the tests below check that seqlab refuses it before training
MISSING = cpu_lstm_kernel_missing("bf16-mixed")
LSTM = pytest.param("lstm", marks=pytest.mark.skipif(MISSING is not None, reason=str(MISSING)))
CELLS = ["rnn", LSTM, "gru"]


class MatrixDtypes(TorchDispatchMode):
    """Counts the dtypes of the tensors every matrix op is called with."""

    def __init__(self) -> None:
        super().__init__()
        self.dtypes: Counter[torch.dtype] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in MATRIX_OPS:
            self.dtypes.update(a.dtype for a in args if isinstance(a, torch.Tensor))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("encoding", ["onehot", "embedding"])
def test_autocast_runs_every_cells_matrix_products_in_bf16(cell, encoding):
    net = RecurrentNet(NetConfig(12, 12, cell=cell, encoding=encoding, num_layers=2))
    tokens = torch.randint(12, (3, 7))

    with torch.autocast("cpu", dtype=torch.bfloat16), MatrixDtypes() as seen:
        scores, _ = net(tokens)
    loss = torch.nn.functional.cross_entropy(scores.reshape(-1, 12).float(), tokens.reshape(-1))
    loss.backward()

    assert set(seen.dtypes) == {torch.bfloat16}, seen.dtypes
    assert scores.dtype == torch.bfloat16
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in net.parameters())


def test_under_autocast_the_loss_and_accuracy_read_the_bf16_scores_cast_exactly_to_float32():
    torch.manual_seed(0)
    net = RecurrentNet(NetConfig(12, 12, cell="gru", encoding="embedding", num_layers=2))
    tokens, targets = torch.randint(12, (4, 9)), torch.randint(12, (4, 9))

    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = net.run(tokens).outputs
        loss, rows, _ = net.loss(outputs, targets)
        bf16_loss = torch.nn.functional.cross_entropy(outputs.reshape(-1, 12), targets.reshape(-1))

    assert outputs.dtype == torch.bfloat16
    assert rows.dtype == loss.dtype == torch.float32
    assert torch.equal(rows, outputs.reshape(-1, 12).float())  # the same scores, not recomputed
    assert loss.item() == bf16_loss.item()  # what autocast's own float32 cross-entropy gives
    assert torch.equal(rows.argmax(-1), outputs.reshape(-1, 12).argmax(-1))


class StepDtypes(pl.Callback):
    """The dtypes of the training steps' scores and losses and of the weights the optimizer
    updates. Built by Hydra inside ``train()``: the latest one is ``StepDtypes.latest``."""

    latest: StepDtypes | None = None

    def __init__(self) -> None:
        self.losses: set[torch.dtype] = set()
        self.weights: set[torch.dtype] = set()
        self.scores: set[torch.dtype] = set()  # the (B, T, V) scores the training steps read
        StepDtypes.latest = self

    def on_train_start(self, trainer, pl_module) -> None:
        def record(head, inputs, output) -> None:
            if head.training:
                self.scores.add(output.dtype)

        pl_module.net.head.register_forward_hook(record)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.add(outputs["loss"].dtype)
        self.weights.update(p.dtype for p in pl_module.parameters())


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("encoding", ["onehot", "embedding"])
def test_bf16_mixed_learns_the_charseq_lesson_with_float32_losses(make_cfg, cell, encoding):
    cfg = make_cfg(
        "experiment=charseq",
        f"model={cell}",
        f"model.encoding={encoding}",
        "trainer.precision=bf16-mixed",
        "trainer.accelerator=cpu",
        "+callbacks.dtypes._target_=test_precision.StepDtypes",
    )
    result = train(cfg)
    probe = StepDtypes.latest

    assert probe.scores == {torch.bfloat16}  # autocast was on
    assert probe.losses == {torch.float32}
    assert probe.weights == {torch.float32}  # mixed: the master weights stay float32
    assert [p.predicted == p.target for p in result.predictions] == [True]


class WeightCasts(TorchDispatchMode):
    """Counts the casts to bf16 of tensors shaped like one weight."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape, self.count = shape, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if (
            func is torch.ops.aten._to_copy.default
            and kwargs.get("dtype") == torch.bfloat16
            and tuple(args[0].shape) == self.shape
        ):
            self.count += 1
        return func(*args, **kwargs)


class RecurrentWeightCasts(pl.Callback):
    """How often each training step's forward pass casts ``weight_hh_l0`` to bf16. Built by
    Hydra inside ``train()``: the latest one is ``RecurrentWeightCasts.latest``."""

    latest: RecurrentWeightCasts | None = None

    def __init__(self) -> None:
        self.per_step: list[int] = []
        self.steps: set[int] = set()
        RecurrentWeightCasts.latest = self

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.steps.add(batch.inputs.size(1))
        self.mode = WeightCasts(tuple(pl_module.net.rnn.weight_hh_l0.shape))
        self.mode.__enter__()

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self.mode.__exit__(None, None, None)
        self.per_step.append(self.mode.count)


@pytest.mark.parametrize("cell", CELLS)
def test_bf16_mixed_casts_the_recurrent_weights_once_a_step_not_once_a_time_step(make_cfg, cell):
    # nn.RNN's and nn.GRU's CPU kernels read weight_hh at every time step: without autocast's
    # weight cache (Lightning turns it off) each read was a new cast, T per step
    cfg = make_cfg(
        "experiment=charseq",
        f"model={cell}",
        "trainer.precision=bf16-mixed",
        "trainer.accelerator=cpu",
        "trainer.max_epochs=3",
        "+callbacks.casts._target_=test_precision.RecurrentWeightCasts",
    )
    train(cfg)
    probe = RecurrentWeightCasts.latest

    assert min(probe.steps) > 10  # enough time steps for T casts to show
    assert probe.per_step == [1] * len(probe.per_step)


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_the_kernel_check_agrees_with_torchs_own_lstm_on_this_cpu(precision):
    dtype = seqlab.precision.AUTOCAST_DTYPES[precision]
    lstm = torch.nn.LSTM(8, 16, batch_first=True)
    try:
        with torch.autocast("cpu", dtype=dtype):
            lstm(torch.randn(2, 5, 8))
        ran = True
    except RuntimeError as err:
        assert "LSTM forward propagation primitive" in str(err)
        ran = False

    assert ran == (cpu_lstm_kernel_missing(precision) is None)


NO_KERNEL = (
    "this CPU has no bf16 kernel for oneDNN's LSTM layer (it needs AVX-512); expected 32-true or "
    "bf16-true for an LSTM on this CPU, or a GPU"
)


@pytest.mark.parametrize(
    ("precision", "reason"),
    [
        ("bf16-mixed", NO_KERNEL),
        # Lightning runs 16-mixed as bf16-mixed on the CPU: the message says why bf16 is named
        ("16-mixed", f"on the CPU Lightning runs it as bf16-mixed, and {NO_KERNEL}"),
    ],
)
def test_an_autocast_lstm_on_a_cpu_without_its_kernel_is_one_line_before_anything_is_written(
    make_cfg, tmp_path, monkeypatch, precision, reason
):
    monkeypatch.setattr(seqlab.precision, "_cpu_supports", lambda dtype: False)
    cfg = make_cfg("experiment=charseq", "model=lstm", f"trainer.precision={precision}")

    with pytest.raises(SettingError) as error:
        train(cfg)

    assert str(error.value) == f"trainer.precision='{precision}' is invalid: {reason}"
    assert not (tmp_path / "run").exists()


def test_a_gru_in_bf16_mixed_and_an_lstm_in_bf16_true_still_train_on_such_a_cpu(
    make_cfg, monkeypatch
):
    # GRU's CPU kernel is GEMMs, and bf16-true runs another LSTM kernel: both run on any CPU
    monkeypatch.setattr(seqlab.precision, "_cpu_supports", lambda dtype: False)
    for cell, precision in [("gru", "bf16-mixed"), ("lstm", "bf16-true")]:
        cfg = make_cfg(
            "experiment=charseq", f"model={cell}", f"trainer.precision={precision}", bare=True
        )
        result = train(cfg)

        assert [p.predicted == p.target for p in result.predictions] == [True], (cell, precision)


def test_a_bf16_true_runs_val_loss_is_the_mean_of_its_batches_losses_not_a_bf16_sum(
    make_cfg, monkeypatch
):
    # bf16-true casts the whole module to bf16, the loss means' sums included unless they keep
    # their dtype: val/loss was then a bf16 number (2.15625 here, where the mean is 2.1540)
    losses: list[tuple[float, int]] = []  # every validation batch's mean loss and its targets
    loss = RecurrentNet.loss

    def recorded(net, outputs, targets, ignore_index=-100):
        mean, scores, scored = loss(net, outputs, targets, ignore_index)
        if not net.training:
            losses.append((mean.double().item(), int((scored != ignore_index).sum())))
        return mean, scores, scored

    monkeypatch.setattr(RecurrentNet, "loss", recorded)
    cfg = make_cfg(
        "experiment=longtext",
        "trainer.max_epochs=2",
        "trainer.precision=bf16-true",
        "+trainer.num_sanity_val_steps=0",
        bare=True,
    )
    result = train(cfg)

    last = losses[len(losses) // 2 :]  # the second epoch's validation
    expected = sum(mean * n for mean, n in last) / sum(n for _, n in last)
    assert len(losses) % 2 == 0
    assert result.final["val/loss"] == pytest.approx(expected, rel=1e-9)
