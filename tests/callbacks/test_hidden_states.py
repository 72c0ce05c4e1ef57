"""Hidden-state pictures: heat maps of h_t and an LSTM's gates, embeddings in the projector."""

from __future__ import annotations

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seqlab.callbacks import hidden_states
from seqlab.callbacks.hidden_states import (
    EMBEDDING_TAG,
    GATES_TAG,
    HIDDEN_TAG,
    LSTM_GATES,
    HiddenStates,
)
from seqlab.errors import SettingError
from seqlab.train import train

# two short epochs, pictures at the second; gradient flow has its own tests
SHORT = [
    "trainer.max_epochs=2",
    "callbacks.hidden_states.every_n_epochs=2",
    "callbacks.gradient_flow=null",
]


@pytest.fixture
def pictures(monkeypatch) -> list:
    """Every figure the callback draws, in order, as well as logged."""
    drawn = []

    def record(figure):
        drawn.append(figure)
        return draw(figure)

    draw = hidden_states.figure_image
    monkeypatch.setattr(hidden_states, "figure_image", record)
    return drawn


def heat_map_of(figure) -> tuple[tuple[int, int], list[str]]:
    """The shape of the values a figure shows, and its time axis labels."""
    ax = figure.axes[0]
    return ax.images[0].get_array().shape, [label.get_text() for label in ax.get_xticklabels()]


def tensorboard_images(run_dir) -> dict[str, int]:
    events = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    events.Reload()
    return {tag: len(events.Images(tag)) for tag in events.Tags()["images"]}


def test_rnn_heat_map_is_hidden_units_by_sample_characters(make_cfg, tmp_path, pictures):
    train(make_cfg("experiment=hihello", *SHORT))  # hidden_size 8, sample "hihell"

    [figure] = pictures  # an RNN has no gates
    assert heat_map_of(figure) == ((8, 6), list("hihell"))
    assert tensorboard_images(tmp_path / "run") == {HIDDEN_TAG: 1}
    assert not (tmp_path / "run" / "projector_config.pbtxt").exists()  # one-hot: no embedding


def test_lstm_gets_a_gate_picture_with_four_bands(make_cfg, tmp_path, pictures):
    train(make_cfg("experiment=charseq", "model=lstm", *SHORT))  # sample " if you want yo"

    states, gates = pictures
    assert heat_map_of(states) == ((16, 15), list("␣if␣you␣want␣yo"))
    assert heat_map_of(gates)[0] == (4 * 16, 15)
    assert [label.get_text() for label in gates.axes[0].get_yticklabels()] == list(LSTM_GATES)
    assert tensorboard_images(tmp_path / "run") == {HIDDEN_TAG: 1, GATES_TAG: 1}


def test_bidirectional_embedding_model_shows_both_directions_and_the_projector(
    make_cfg, tmp_path, pictures
):
    # embedding_dim 32 and a bidirectional LSTM of 64 units; the first sample is "good"
    result = train(make_cfg("experiment=sentiment", *SHORT))

    states, gates = pictures
    assert heat_map_of(states)[0] == (2 * 64, 4)
    assert heat_map_of(gates)[0] == (4 * 64, 4)  # the forward direction's
    [projected] = (tmp_path / "run").glob(f"*/{EMBEDDING_TAG}")
    vectors = np.loadtxt(projected / "tensors.tsv", delimiter="\t")
    labels = (projected / "metadata.tsv").read_text().splitlines()
    assert vectors.shape == (len(labels), 32)
    assert labels == ["<pad>", "␣", "a", "b", "d", "e", "g", "o", "r", "s", "w"]
    assert result.final  # the run finished
    assert "embeddings" in (tmp_path / "run" / "projector_config.pbtxt").read_text()


def test_long_samples_are_cut_to_max_tokens(make_cfg, pictures):
    train(make_cfg("experiment=charseq", *SHORT, "callbacks.hidden_states.max_tokens=5"))

    [figure] = pictures
    assert heat_map_of(figure) == ((16, 5), list("␣if␣y"))


def test_without_tensorboard_nothing_is_drawn(make_cfg, pictures):
    train(make_cfg("experiment=hihello", *SHORT, "logger=none"))

    assert pictures == []


def test_bad_settings_are_setting_errors():
    with pytest.raises(SettingError, match=r"^every_n_epochs=0 "):
        HiddenStates(every_n_epochs=0)
    with pytest.raises(SettingError, match=r"^max_tokens=0 "):
        HiddenStates(max_tokens=0)
