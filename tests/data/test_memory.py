"""data=memory: recall the first symbol after `distance` distractors."""

from __future__ import annotations

import math

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seqlab.callbacks.gradient_flow import RATIO_TAG
from seqlab.data.memory import MemoryDataModule
from seqlab.errors import SettingError
from seqlab.metrics import VAL_ACC, VAL_LOSS
from seqlab.train import train

SMALL = {"num_symbols": 3, "distance": 5, "train_size": 40, "val_size": 10, "batch_size": 8}


def test_each_target_is_the_first_symbol_and_the_rest_are_distractors():
    dm = MemoryDataModule(**SMALL)

    batch = next(iter(dm.train_dataloader()))

    assert dm.class_names == ["A", "B", "C"] and dm.vocab.tokens == ["A", "B", "C"]
    assert batch.inputs.shape == (8, 6) and batch.lengths is None
    assert batch.targets.tolist() == batch.inputs[:, 0].tolist()
    for split in (dm.train_set, dm.val_set):
        texts = [dm.vocab.decode(ids) for ids in split.inputs]
        assert [text[0] for text in texts] == [dm.class_names[t] for t in split.targets]
        assert set("".join(text[1:] for text in texts)) == set("ABC")  # the same alphabet
    shown = [dm.vocab.decode(ids) for ids in dm.val_set.inputs[:4]]
    assert [(s.text, s.target) for s in dm.samples] == [(text, text[0]) for text in shown]


def test_the_data_seed_alone_decides_the_data():
    torch.manual_seed(123)  # the run's seed: no say
    first = MemoryDataModule(**SMALL)
    torch.manual_seed(456)
    again = MemoryDataModule(**SMALL)
    other = MemoryDataModule(**SMALL, seed=1)

    for split in ("train_set", "val_set"):
        assert torch.equal(getattr(first, split).inputs, getattr(again, split).inputs)
        assert not torch.equal(getattr(first, split).inputs, getattr(other, split).inputs)
    assert not torch.equal(first.train_set.inputs[:10], first.val_set.inputs)  # two draws


def test_a_short_memory_run_learns_and_measures_its_gradient_flow(make_cfg, tmp_path):
    result = train(
        make_cfg(
            "experiment=memory",
            "model=gru",
            "data.distance=3",
            "data.train_size=256",
            "data.val_size=64",
            "data.batch_size=16",
            "trainer.max_epochs=3",
            "callbacks.gradient_flow.every_n_epochs=3",
            "callbacks.hidden_states=null",
        )
    )

    assert math.isfinite(result.final[VAL_LOSS])
    assert result.best[VAL_ACC] > 0.5  # chance is 0.25
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    [ratio] = events.Scalars(RATIO_TAG)  # a classification task, measured: memory asks for it
    assert math.isfinite(ratio.value)


def test_memory_runs_without_the_default_callbacks(make_cfg):
    # the experiment brings its gradient-flow callback along; with no logger it stays idle
    cfg = make_cfg(
        "experiment=memory",
        "data.distance=2",
        "data.train_size=512",
        "trainer.max_epochs=1",
        bare=True,
    )

    result = train(cfg)

    assert math.isfinite(result.final[VAL_LOSS])


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("distance", 0, "expected a whole number >= 1"),
        ("num_symbols", 1, "expected 2 to 26"),
        ("num_symbols", 27, "expected 2 to 26"),
        ("train_size", 0, "expected a whole number >= 1"),
        ("val_size", 0, "expected a whole number >= 1"),
        ("batch_size", 0, "expected a whole number >= 1"),
    ],
)
def test_bad_settings_are_one_line_errors(setting, value, expected):
    with pytest.raises(SettingError) as error:
        MemoryDataModule(**{**SMALL, setting: value})

    assert str(error.value) == f"{setting}={value} is invalid: {expected}"


def test_a_bad_setting_names_its_config_key(make_cfg):
    with pytest.raises(SettingError, match=r"^data\.distance=0 is invalid"):
        train(make_cfg("experiment=memory", "data.distance=0", bare=True))
