"""train(cfg): every model on every data set, seeding, and what a run leaves behind."""

from __future__ import annotations

import json
import math
import re

import pytest
from conftest import compose_train

from seqlab.metrics import task_metrics
from seqlab.train import train

MODELS = ["rnn", "lstm", "gru", "bilstm", "stacked_rnn"]
DATA = ["hihello", "charseq", "longtext", "seoul", "sentiment"]


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_on_every_data(make_cfg, tmp_path, model, data):
    result = train(make_cfg(f"model={model}", f"data={data}", "trainer.max_epochs=1", bare=True))

    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 1
    task = "classify" if data == "sentiment" else "next_token"
    assert set(task_metrics(task)) <= set(summary["final"])
    assert all(math.isfinite(v) for v in summary["final"].values())
    for p in result.predictions:  # the data decides the shape of the answer
        if task == "classify":
            assert p.predicted in {"0", "1"} and 0 < p.probability <= 1
        else:
            assert len(p.predicted) == len(p.text)


def test_head_none_uses_rnn_outputs_as_scores_like_the_hihello_lesson(make_cfg):
    # the lesson's original model: nn.RNN(5, 5) whose outputs are the class scores
    result = train(make_cfg("experiment=hihello", "model.head=none", "model.hidden_size=5"))

    assert [p.predicted for p in result.predictions] == ["ihello"]


def test_same_seed_gives_identical_losses_and_another_seed_does_not(make_cfg):
    def final_losses(seed: int) -> dict[str, float]:
        cfg = make_cfg("experiment=longtext", "trainer.max_epochs=3", f"seed={seed}", bare=True)
        return train(cfg).final

    first, again, other = final_losses(0), final_losses(0), final_losses(1)

    assert first["train/loss"] == again["train/loss"] and first["val/loss"] == again["val/loss"]
    assert first["train/loss"] != other["train/loss"]


def test_run_dir_holds_tensorboard_checkpoints_and_metrics(make_cfg, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(make_cfg("experiment=hihello", "trainer.max_epochs=5"))

    run = tmp_path / "run"
    assert {p.name for p in (run / "checkpoints").iterdir()} == {"best.ckpt", "last.ckpt"}
    events = EventAccumulator(str(run), size_guidance={"tensors": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "val/bpc"} <= scalars
    assert len(events.Scalars("val/loss")) == 5  # one point per epoch
    text = events.Tensors("predictions/text_summary")[-1].tensor_proto.string_val[0].decode()
    assert "hihell" in text and "ihello" in text

    summary = json.loads((run / "metrics.json").read_text())
    val_losses = [e.value for e in events.Scalars("val/loss")]
    assert summary["final"]["val/loss"] == pytest.approx(val_losses[-1])
    assert summary["best"]["val/loss"] == pytest.approx(min(val_losses))


def test_hparams_tab_gets_the_config_and_real_final_metrics(make_cfg, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    train(make_cfg("experiment=hihello", "trainer.max_epochs=5", "model.hidden_size=7"))

    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    plugin = events.PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(plugin["_hparams_/session_start_info"])
    hparams = session.session_start_info.hparams
    assert hparams["model/hidden_size"].number_value == 7
    assert hparams["data/text"].string_value == "hihello"
    assert hparams["optimizer/class"].string_value == "Adam"  # the choice, by its name
    assert hparams["optimizer/lr"].number_value == pytest.approx(0.1)
    assert not [name for name in hparams if "_target_" in name or "_partial_" in name]
    experiment = plugin_data_pb2.HParamsPluginData.FromString(plugin["_hparams_/experiment"])
    metric_tags = {m.name.tag for m in experiment.experiment.metric_infos}
    assert {"final/val/loss", "final/val/acc", "best/val/loss", "best/val/acc"} <= metric_tags
    assert "hp_metric" not in events.Tags()["scalars"]
    val_losses = [e.value for e in events.Scalars("val/loss")]
    assert events.Scalars("best/val/loss")[-1].value == pytest.approx(min(val_losses))
    assert events.Scalars("final/val/loss")[-1].value == pytest.approx(val_losses[-1])


@pytest.mark.parametrize("logger, written", [("csv", "metrics.csv"), ("none", None)])
def test_other_loggers(make_cfg, tmp_path, logger, written):
    train(make_cfg("experiment=hihello", f"logger={logger}", "trainer.max_epochs=2"))

    run = tmp_path / "run"
    assert not list(run.glob("events.out.tfevents.*"))
    if written:
        assert "val/loss" in (run / written).read_text().splitlines()[0]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2


def test_a_callback_switched_off_with_null_is_not_replaced_by_lightnings_own(make_cfg, capfd):
    train(make_cfg("experiment=hihello", "trainer.max_epochs=2", "logger=none"))

    out, err = capfd.readouterr()
    assert not re.search(r"Epoch \d", out + err)  # no progress bar, rich or tqdm
    assert "Trainable params" not in out + err  # no model summary
    assert "final prediction" in out  # the result is still printed


def test_trainer_flags_switch_off_the_configs_progress_bar_and_summary_too(tmp_path, capfd):
    # the default callbacks hold a RichProgressBar and a RichModelSummary: Lightning refuses
    # them beside enable_progress_bar=False / enable_model_summary=False
    cfg = compose_train(
        tmp_path / "run",
        "experiment=hihello",
        "trainer.max_epochs=2",
        "logger=none",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    )

    train(cfg)

    out, err = capfd.readouterr()
    assert not re.search(r"Epoch \d", out + err)
    assert "Trainable params" not in out + err
    assert "final prediction" in out
