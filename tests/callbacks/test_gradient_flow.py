"""Gradient flow through time: ||dL/dh_t|| per step, logged to TensorBoard, training untouched."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import QUIET, compose_train
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seqlab.callbacks.gradient_flow import FIGURE_TAG, RATIO_TAG, GradientFlow, gradient_norms
from seqlab.data.base import Batch
from seqlab.errors import SettingError
from seqlab.models import NetConfig, RecurrentNet
from seqlab.train import train

# hihello, short: the callback measures every epoch, nothing else draws
HIHELLO = [
    "experiment=hihello",
    "trainer.max_epochs=4",
    "callbacks.gradient_flow.every_n_epochs=2",
    "callbacks.hidden_states=null",
]
EVERY_EPOCH = ["callbacks.gradient_flow.every_n_epochs=1"]


def events(run_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


def test_every_n_epochs_logs_a_curve_and_a_finite_ratio(make_cfg, tmp_path):
    train(make_cfg(*HIHELLO))

    logged = events(tmp_path / "run")
    assert [image.step for image in logged.Images(FIGURE_TAG)] == [2, 4]  # epochs 2 and 4
    image = logged.Images(FIGURE_TAG)[0]
    assert image.encoded_image_string.startswith(b"\x89PNG") and image.width > 100
    ratios = [scalar.value for scalar in logged.Scalars(RATIO_TAG)]
    assert len(ratios) == 2 and all(math.isfinite(r) and r > 0 for r in ratios)


def test_measuring_leaves_training_exactly_as_it_was(make_cfg, tmp_path):
    measured = train(make_cfg(*HIHELLO, *EVERY_EPOCH))
    plain = train(
        compose_train(tmp_path / "plain", *QUIET, *HIHELLO, "callbacks.gradient_flow=null")
    )

    assert measured.final == plain.final


def test_classification_runs_are_measured_only_when_listed(make_cfg, tmp_path):
    sentiment = ["experiment=sentiment", "trainer.max_epochs=1", "callbacks.hidden_states=null"]
    train(make_cfg(*sentiment, *EVERY_EPOCH))
    assert FIGURE_TAG not in events(tmp_path / "run").Tags()["images"]

    listed = tmp_path / "listed"
    train(
        compose_train(
            listed, *QUIET, *sentiment, *EVERY_EPOCH, "callbacks.gradient_flow.tasks=[classify]"
        )
    )
    assert RATIO_TAG in events(listed).Tags()["scalars"]


def test_without_tensorboard_nothing_is_measured(make_cfg, tmp_path, monkeypatch):
    def fail(*args):
        raise AssertionError("measured without a TensorBoard logger")

    monkeypatch.setattr("seqlab.callbacks.gradient_flow.gradient_norms", fail)

    train(make_cfg(*HIHELLO, "logger=none"))


def _step_by_step_norms(net: RecurrentNet, batch: Batch) -> np.ndarray:
    """The other way: torch's own module called one step at a time, carrying the state."""
    x = net.encode(batch.inputs)
    state, hidden = None, []
    for t in range(x.size(1)):
        _, state = net.rnn(x[:, t : t + 1], state)
        hidden.append(state[0] if isinstance(state, tuple) else state)  # (L, B, H)
    scores = net.head(hidden[-1][-1])  # the top layer's h at the last step
    loss = torch.nn.functional.cross_entropy(scores, batch.targets[:, -1], reduction="sum")
    grads = torch.autograd.grad(loss, hidden)
    return torch.stack([g[-1] for g in grads], dim=1).norm(dim=-1).mean(0).numpy()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_norms_match_torch_stepped_by_hand_and_leave_no_trace(cell):
    torch.manual_seed(0)
    net = RecurrentNet(
        NetConfig(vocab_size=5, num_outputs=5, cell=cell, hidden_size=6, num_layers=2)
    )
    batch = Batch(torch.randint(5, (3, 7)), torch.randint(5, (3, 7)))

    norms = gradient_norms(net, batch)

    assert norms.shape == (7,)
    np.testing.assert_allclose(norms, _step_by_step_norms(net, batch), rtol=1e-4)
    assert norms[0] < norms[-1]  # an untrained net forgets: the gradient fades going back
    assert net.training  # the mode it had
    assert all(p.grad is None for p in net.parameters())


@pytest.mark.parametrize("impl", ["torch", "scratch"])
def test_bidirectional_classifier_on_a_padded_batch(impl):
    torch.manual_seed(0)
    config = NetConfig(
        vocab_size=6, num_outputs=2, many_to_one=True, pad_index=0, cell="lstm", impl=impl,
        hidden_size=4, bidirectional=True, encoding="embedding",
    )  # fmt: skip
    net = RecurrentNet(config)
    inputs = torch.tensor([[1, 2, 3, 4, 5], [2, 3, 0, 0, 0]])
    batch = Batch(inputs, torch.tensor([0, 1]), lengths=torch.tensor([5, 2]))

    norms = gradient_norms(net, batch)

    assert norms.shape == (5,) and np.isfinite(norms).all() and (norms > 0).all()


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"every_n_epochs": 0}, "every_n_epochs"), ({"tasks": ["regression"]}, "tasks")],
)
def test_bad_settings_are_setting_errors(kwargs, key):
    with pytest.raises(SettingError, match=f"^{key}="):
        GradientFlow(**kwargs)


def test_bad_setting_names_its_config_key(make_cfg):
    with pytest.raises(SettingError, match=r"^callbacks\.gradient_flow\.every_n_epochs=0 "):
        train(make_cfg("experiment=hihello", "callbacks.gradient_flow.every_n_epochs=0"))
