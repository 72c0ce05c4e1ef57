"""The pictures of the final weights: drawn at the end of training, once, however the run ends."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seqlab.callbacks import gradient_flow, hidden_states
from seqlab.callbacks.gradient_flow import FIGURE_TAG, RATIO_TAG
from seqlab.callbacks.hidden_states import GATES_TAG, HIDDEN_TAG, hidden_pictures
from seqlab.models import NetConfig, RecurrentNet
from seqlab.train import train

# experiment=memory shrunk: 200 sequences in batches of 64 are 4 steps an epoch; it draws
# gradient flow every 5 epochs and hidden states every 10, so 3 epochs draw nothing on the way
MEMORY = [
    "experiment=memory",
    "model=lstm",
    "trainer.max_epochs=3",
    "data.train_size=200",
    "data.val_size=50",
    "data.distance=10",
]
STEPS_PER_EPOCH = 4
PICTURES = (FIGURE_TAG, HIDDEN_TAG, GATES_TAG)


@pytest.fixture
def titles(monkeypatch) -> list[str]:
    """The title of every figure either callback draws, in order, as well as logged."""
    drawn = []

    def record(module):
        draw = module.figure_image

        def recorded(figure):
            drawn.append(figure.axes[0].get_title())
            return draw(figure)

        monkeypatch.setattr(module, "figure_image", recorded)

    record(gradient_flow)
    record(hidden_states)
    return drawn


def logged_steps(run_dir: Path) -> dict[str, list[int]]:
    """{tag: the steps it was logged at} for the pictures and the gradient ratio."""
    events = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    steps = {tag: [image.step for image in events.Images(tag)] for tag in events.Tags()["images"]}
    if RATIO_TAG in events.Tags()["scalars"]:
        steps[RATIO_TAG] = [scalar.step for scalar in events.Scalars(RATIO_TAG)]
    return steps


def test_a_short_run_gets_every_picture_once_at_its_final_step(make_cfg, tmp_path, titles):
    train(make_cfg(*MEMORY))

    final = 3 * STEPS_PER_EPOCH
    assert logged_steps(tmp_path / "run") == {tag: [final] for tag in (*PICTURES, RATIO_TAG)}
    assert len(titles) == 3
    assert all(title.endswith("epoch 3 (end of training)") for title in titles[:2])
    assert "epoch 3 (end of training):" in titles[2]  # the gates' title goes on to their ranges


def test_a_last_epoch_that_drew_is_not_drawn_again(make_cfg, tmp_path, titles):
    every_3 = [f"callbacks.{name}.every_n_epochs=3" for name in ("gradient_flow", "hidden_states")]
    train(make_cfg(*MEMORY, *every_3))

    final = 3 * STEPS_PER_EPOCH
    assert logged_steps(tmp_path / "run") == {tag: [final] for tag in (*PICTURES, RATIO_TAG)}
    assert len(titles) == 3 and not any("end of training" in title for title in titles)
    assert all("epoch 3" in title for title in titles)


def test_the_end_adds_to_the_periodic_pictures(make_cfg, tmp_path):
    train(make_cfg(*MEMORY, "callbacks.gradient_flow.every_n_epochs=2"))

    steps = logged_steps(tmp_path / "run")
    periodic_and_final = [2 * STEPS_PER_EPOCH, 3 * STEPS_PER_EPOCH]
    assert steps[FIGURE_TAG] == steps[RATIO_TAG] == periodic_and_final
    assert steps[HIDDEN_TAG] == steps[GATES_TAG] == [3 * STEPS_PER_EPOCH]


@pytest.mark.parametrize(
    ("stop", "step", "epoch"),
    [
        # in the middle of epoch 2, after the last validation (epoch 1's)
        ("+trainer.max_steps=6", 6, 2),
        # val/acc >= 0 holds at once: stopped after epoch 1
        ("callbacks.early_stopping.stopping_threshold=0.0", STEPS_PER_EPOCH, 1),
    ],
    ids=["max_steps", "early_stopping"],
)
def test_a_run_stopped_early_gets_its_final_pictures(make_cfg, tmp_path, titles, stop, step, epoch):
    train(make_cfg(*MEMORY, stop))

    assert logged_steps(tmp_path / "run") == {tag: [step] for tag in (*PICTURES, RATIO_TAG)}
    assert all(f"epoch {epoch} (end of training)" in title for title in titles)


def test_a_run_that_never_validates_gets_hidden_states_but_no_gradient_flow(make_cfg, tmp_path):
    no_validation = ["+trainer.limit_val_batches=0", "callbacks.early_stopping=null"]
    train(make_cfg(*MEMORY, *no_validation, "optimized_metric=train/acc"))

    final = 3 * STEPS_PER_EPOCH
    assert logged_steps(tmp_path / "run") == {HIDDEN_TAG: [final], GATES_TAG: [final]}


def test_next_token_pictures_are_drawn_at_the_end_of_a_lesson_run(make_cfg, tmp_path):
    train(make_cfg("experiment=hihello", "trainer.max_epochs=3"))  # both every 50 epochs

    assert logged_steps(tmp_path / "run") == {FIGURE_TAG: [3], RATIO_TAG: [3], HIDDEN_TAG: [3]}


def test_a_classification_run_not_listed_gets_no_gradient_flow_at_the_end(make_cfg, tmp_path):
    train(make_cfg(*MEMORY, "callbacks.gradient_flow.tasks=[next_token]"))

    assert set(logged_steps(tmp_path / "run")) == {HIDDEN_TAG, GATES_TAG}


def test_fast_dev_run_draws_nothing(make_cfg, titles):
    train(make_cfg(*MEMORY, "+trainer.fast_dev_run=true"))  # Lightning logs nowhere then

    assert titles == []


def test_pictures_show_the_net_without_dropout_and_leave_its_mode():
    torch.manual_seed(0)
    config = NetConfig(
        vocab_size=5, num_outputs=5, cell="lstm", hidden_size=4, num_layers=2, dropout=0.5,
        encoding="embedding",
    )  # fmt: skip
    net = RecurrentNet(config)
    ids = torch.tensor([1, 2, 3, 4])

    first, again = (hidden_pictures(net, ids, list("abcd"), "epoch 1") for _ in range(2))

    for tag in (HIDDEN_TAG, GATES_TAG):
        values = [pictures[tag].axes[0].images[0].get_array() for pictures in (first, again)]
        assert (values[0] == values[1]).all()  # dropout would draw two different maps
    assert net.training
