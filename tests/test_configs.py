"""Every YAML in conf/ composes, and builds what it names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import CONF_DIR, compose_train
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from seqlab.config import instantiate_setting
from seqlab.errors import SettingError


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_every_experiment_composes_and_lists_only_global_overrides(tmp_path, experiment):
    assert (
        (CONF_DIR / "experiment" / f"{experiment}.yaml")
        .read_text()
        .startswith("# @package _global_")
    )

    cfg = compose_train(tmp_path, f"experiment={experiment}")

    assert cfg.task_name == experiment


def _required_data(tmp_path: Path, data: str) -> list[str]:
    """Values an option leaves to the user (``???``): a small corpus or sentence files."""
    if data == "textfile":
        corpus = tmp_path / "corpus.txt"
        corpus.write_text("to be, or not to be, that is the question\n" * 40)
        return [f"data.path={corpus}"]
    if data == "sentences":
        for split in ("train", "dev"):
            (tmp_path / f"{split}.tsv").write_text("label\tsentence\n1\tgood film\n0\tbad film\n")
        return [f"data.dir={tmp_path}"]
    if data == "corpus":
        for split in ("train", "valid"):
            (tmp_path / f"{split}.txt").write_text(
                "to be or not to be\nthat is the question\n" * 300
            )
        return [f"data.dir={tmp_path}"]
    return []


@pytest.mark.parametrize("data", _options("data"))
def test_every_data_option_builds_its_datamodule(tmp_path, data):
    cfg = compose_train(tmp_path, f"data={data}", *_required_data(tmp_path, data))

    datamodule = instantiate_setting(cfg.data, "data")

    assert datamodule.num_classes >= 2 and len(datamodule.vocab) >= 2
    assert datamodule.samples


@pytest.mark.parametrize(
    "group, option",
    [
        (g, o)
        for g in ("model", "optimizer", "scheduler", "trainer", "logger", "callbacks")
        for o in _options(g)
    ],
)
def test_every_group_option_composes(tmp_path, group, option):
    cfg = compose_train(tmp_path, f"{group}={option}")

    assert group in cfg


def test_checkpoint_direction_follows_the_optimized_metric(tmp_path):
    for metric, mode in [("val/loss", "min"), ("val/acc", "max"), ("val/bpc", "min")]:
        cfg = compose_train(tmp_path, f"optimized_metric={metric}")
        assert cfg.callbacks.model_checkpoint.mode == mode


def test_run_dirs_are_dated_and_unique_below_the_second():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)

    assert re.fullmatch(r"outputs/\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d-\d{6}", cfg.hydra.run.dir)
    assert cfg.hydra.job.chdir is False


def test_a_cells_tuned_settings_apply_with_its_experiment_only(tmp_path):
    lstm = compose_train(tmp_path, "experiment=memory", "model=lstm")
    gru = compose_train(tmp_path, "experiment=memory", "model=gru")
    elsewhere = compose_train(tmp_path, "experiment=charseq", "model=lstm")
    typed = compose_train(tmp_path, "experiment=memory", "model=lstm", "optimizer.lr=0.02")

    assert (lstm.model.forget_bias, lstm.optimizer.lr) == (5.0, 0.001)
    assert (gru.model.forget_bias, gru.optimizer.lr) == (None, 0.01)
    assert elsewhere.model.forget_bias is None
    assert (typed.model.forget_bias, typed.optimizer.lr) == (5.0, 0.02)  # the command line wins


@pytest.mark.parametrize("tuned", _options("tuned"))
def test_every_tuned_file_names_an_experiment_and_a_model_and_composes(tmp_path, tuned):
    experiment, model = tuned.split("_", 1)
    assert experiment in _options("experiment") and model in _options("model")
    assert (CONF_DIR / "tuned" / f"{tuned}.yaml").read_text().startswith("# @package _global_")

    cfg = compose_train(tmp_path, f"experiment={experiment}", f"model={model}")

    assert cfg.model.cell == compose_train(tmp_path, f"model={model}").model.cell


def refuse_cell(**_: object) -> None:
    """A constructor that refuses its setting, as the model does for a bad ``cell``."""
    raise SettingError("cell", "tree", "one of rnn, lstm, gru")


def test_objects_passed_at_build_reach_the_constructor_as_they_are_and_errors_name_the_key():
    """A word-level vocabulary is handed to the model itself, not wrapped into config nodes."""
    words = [f"w{i}" for i in range(33_278)]
    node = OmegaConf.create({"_target_": "builtins.dict", "size": 2})

    built = instantiate_setting(node, "model", passed={"words": words})

    assert built == {"size": 2, "words": words} and built["words"] is words
    refusing = OmegaConf.create({"_target_": f"{__name__}.refuse_cell"})
    with pytest.raises(SettingError, match=r"^model\.cell"):
        instantiate_setting(refusing, "model", passed={"words": words})
