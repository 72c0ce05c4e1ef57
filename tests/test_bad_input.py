"""A bad setting stops the run before training with one line naming key, value and choices."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT

from seqlab.errors import SettingError
from seqlab.train import train

CASES = {
    "unknown cell": (
        ["model.cell=transformer"],
        "model.cell='transformer' is invalid: expected one of rnn, lstm, gru",
    ),
    "unknown optimizer": (
        ["model.optimizer=lbfgs"],
        "model.optimizer='lbfgs' is invalid: expected one of adam, adamw, sgd, rmsprop",
    ),
    "unknown encoding": (
        ["model.encoding=bytes"],
        "model.encoding='bytes' is invalid: expected one of onehot, embedding",
    ),
    "unknown nonlinearity": (
        ["model.nonlinearity=sigmoid"],
        "model.nonlinearity='sigmoid' is invalid: expected one of tanh, relu",
    ),
    "relu on an lstm": (
        ["model=lstm", "model.nonlinearity=relu"],
        "model.nonlinearity='relu' is invalid: applies to cell=rnn only, not lstm",
    ),
    "head none, wrong size": (
        ["model.head=none", "model.hidden_size=32"],
        "model.hidden_size=32 is invalid: head=none makes the RNN outputs the 5 class scores, "
        "so hidden_size must be 5",
    ),
    "head none, bidirectional": (
        ["model.head=none", "model.bidirectional=true"],
        "model.hidden_size=32 is invalid: head=none makes the RNN outputs the 5 class scores; "
        "hidden_size x 2 directions cannot be 5: use head=fc",
    ),
    "zero hidden size": (
        ["model.hidden_size=0"],
        "model.hidden_size=0 is invalid: expected a number > 0",
    ),
    "negative layers": (
        ["model.num_layers=-1"],
        "model.num_layers=-1 is invalid: expected a number > 0",
    ),
    "zero lr": (["model.lr=0"], "model.lr=0 is invalid: expected a number > 0"),
    "negative lr": (["model.lr=-0.1"], "model.lr=-0.1 is invalid: expected a number > 0"),
    "dropout of one": (
        ["model.dropout=1.0"],
        "model.dropout=1.0 is invalid: expected 0 <= dropout < 1",
    ),
    "negative dropout": (
        ["model.dropout=-0.1"],
        "model.dropout=-0.1 is invalid: expected 0 <= dropout < 1",
    ),
    "zero seq_len": (
        ["data=longtext", "data.seq_len=0"],
        "data.seq_len=0 is invalid: expected 1 <= seq_len < 180 (text)",
    ),
    "seq_len as long as the text": (
        ["data=longtext", "data.seq_len=180"],
        "data.seq_len=180 is invalid: expected 1 <= seq_len < 180 (text)",
    ),
    "empty text": (
        ["data=charseq", "data.text=''"],
        "data.text='' is invalid: expected a text of at least 2 characters",
    ),
    "unknown metric": (
        ["optimized_metric=val/f1"],
        "optimized_metric='val/f1' is invalid: expected one of train/loss",
    ),
    "metric the task never logs": (
        ["data=sentiment", "optimized_metric=val/bpc"],
        "optimized_metric='val/bpc' is invalid: "
        "a classify run logs train/loss, train/acc, val/loss, val/acc",
    ),
}


@pytest.mark.parametrize("overrides, message", CASES.values(), ids=CASES.keys())
def test_bad_setting_is_one_line_naming_it_before_anything_is_written(
    make_cfg, tmp_path, overrides, message
):
    with pytest.raises(SettingError) as error:
        train(make_cfg(*overrides))

    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


def _text_file(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "content, reason",
    [
        (None, "no such file"),
        (b"", "the file is empty"),
        (b"caf\xe9 latin-1", "not UTF-8 text (byte 3)"),
    ],
    ids=["missing", "empty", "not utf-8"],
)
def test_bad_data_path_is_named_with_the_reason(make_cfg, tmp_path, content, reason):
    path = tmp_path / "missing.txt" if content is None else _text_file(tmp_path, content)

    with pytest.raises(SettingError) as error:
        train(make_cfg("data=longtext", f"data.path={path}"))

    assert str(error.value) == f"data.path='{path}' is invalid: {reason}"


def test_command_line_prints_one_error_line_exits_1_and_leaves_no_run_dir(tmp_path):
    (tmp_path / "outputs" / "earlier-run").mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "model=gru", "model.cell=cnn"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )

    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: model.cell='cnn' is invalid: expected one of rnn, lstm, gru"
    ]
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["earlier-run"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_gpu_trainer_without_a_gpu_is_one_line_before_anything_is_written(make_cfg, tmp_path):
    with pytest.raises(SettingError) as error:
        train(make_cfg("trainer=gpu", "trainer.precision=bf16-mixed"))

    assert str(error.value) == (
        "trainer.accelerator='gpu' is invalid: this machine has no CUDA GPU: use trainer=cpu, "
        "or trainer=default to take one where there is one"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "override, named",
    [("trainer.strategy=foo", "'foo'"), ("trainer.accelerator=foo", "foo")],
)
def test_trainer_settings_lightning_refuses_are_one_line_in_its_words(
    make_cfg, tmp_path, override, named
):
    with pytest.raises(SettingError) as error:
        train(make_cfg(override))

    assert str(error.value).startswith("trainer: ") and named in str(error.value)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()
