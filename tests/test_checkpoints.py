"""Checkpoints: resume after a kill, atomic saves, and what eval, generate and predict do."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest
import torch
from conftest import CONF_DIR, ROOT, compose_train, run_script
from hydra import compose, initialize_config_dir

from seqlab.checkpoint import AtomicCheckpointIO, load_checkpoint, module_from
from seqlab.errors import SettingError
from seqlab.tools import eval_main, generate_main, predict_main
from seqlab.train import train

QUIET = ["callbacks.progress_bar=null", "callbacks.model_summary=null"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run dirs of trained lesson models, shared by the tests of this file."""
    root = tmp_path_factory.mktemp("runs")
    for name in ("hihello", "sentiment"):
        train(compose_train(root / name, f"experiment={name}", *QUIET))
    # a bidirectional next-character model, one epoch: only its refusal is tested
    train(
        compose_train(
            root / "bidirectional", "data=charseq", "model=bilstm", *QUIET, "trainer.max_epochs=1"
        )
    )
    return {name: root / name for name in ("hihello", "sentiment", "bidirectional")}


def _tool_cfg(tool: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(tool, overrides=list(overrides))


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


# --- resume ------------------------------------------------------------------------------------

TRAIN = [
    "experiment=longtext",
    "trainer.max_epochs=30",
    "model.dropout=0.2",  # dropout draws from the RNG: a resumed run must restore its state
    *QUIET,
]


def test_run_killed_mid_training_and_resumed_ends_as_if_never_stopped(tmp_path):
    full = run_script("train.py", *TRAIN, "hydra.run.dir=full", cwd=tmp_path)
    assert full.returncode == 0, full.stderr

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), *TRAIN, "hydra.run.dir=run"]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    summary = tmp_path / "run" / "metrics.json"
    deadline = time.monotonic() + 120
    while not (summary.is_file() and json.loads(summary.read_text())["epochs"] >= 8):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)  # no clean-up of any kind: as if the machine died
    process.wait()
    assert _metrics(tmp_path / "run")["epochs"] < 30

    resumed = run_script("train.py", *TRAIN, "resume=run", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr

    expected, got = _metrics(tmp_path / "full"), _metrics(tmp_path / "run")
    assert got["epochs"] == 30 and got["status"] == "completed"
    assert got["final"] == expected["final"]
    assert got["best"] == expected["best"]
    # one TensorBoard run: the dir holds the events of both processes, each epoch once
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert len(list((tmp_path / "run").glob("events.out.tfevents.*"))) == 2
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith("version_")]
    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"scalars": 0})
    events.Reload()
    steps = [e.step for e in events.Scalars("val/loss")]
    assert len(steps) == len(set(steps)) == 30


def test_checkpoint_from_another_model_is_refused_before_training(tmp_path, runs):
    cfg = compose_train(
        tmp_path / "run",
        "experiment=hihello",
        "model=lstm",
        f"ckpt_path={runs['hihello']}/checkpoints/last.ckpt",
    )

    expected = "trained with other settings: model.cell='rnn'"
    with pytest.raises(SettingError, match=re.escape(expected)):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_resume_of_a_dir_without_checkpoint_is_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "notes.txt").write_text("keep me")

    done = run_script("train.py", "experiment=hihello", "resume=old", cwd=tmp_path)

    assert done.returncode == 1
    last = tmp_path / "old" / "checkpoints" / "last.ckpt"
    assert done.stderr.strip().splitlines() == [
        f"error: resume='old' is invalid: nothing to resume: no {last}"
    ]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["notes.txt", "old"]


def test_checkpoint_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": 1, "seqlab": {"format": 1}}, path)

    def killed_halfway(obj, file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt  # the process dies mid-write

    monkeypatch.setattr(torch, "save", killed_halfway)
    with pytest.raises(KeyboardInterrupt):
        AtomicCheckpointIO().save_checkpoint({"step": 2, "seqlab": {"format": 1}}, path)

    assert torch.load(path, weights_only=True)["step"] == 1  # the previous checkpoint, whole
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no partial file left


def test_checkpoint_holds_plain_data_enough_to_rebuild(runs):
    checkpoint = torch.load(runs["hihello"] / "checkpoints" / "best.ckpt", weights_only=True)

    assert checkpoint["hyper_parameters"]["vocab"]["tokens"] == ["e", "h", "i", "l", "o"]
    assert checkpoint["hyper_parameters"]["task"] == "next_token"
    assert checkpoint["seqlab"]["datamodule"]["_target_"] == "seqlab.data.text.TextDataModule"
    assert checkpoint["seqlab"]["datamodule"]["text"] == "hihello"


def test_tied_weights_come_back_from_a_checkpoint_as_one_tensor(tmp_path):
    tied = ["model.encoding=embedding", "model.embedding_dim=8", "model.tie_weights=true"]
    run = tmp_path / "run"
    train(compose_train(run, "experiment=hihello", *tied, *QUIET, "trainer.max_epochs=5"))
    path = run / "checkpoints" / "last.ckpt"

    checkpoint = load_checkpoint(path)
    weights = checkpoint["state_dict"]  # two names, one storage
    assert weights["net.head.1.weight"].data_ptr() == weights["net.embedding.weight"].data_ptr()
    module = module_from(checkpoint, partial(SettingError, "ckpt_path", str(path)))
    assert module.net.head[-1].weight is module.net.embedding.weight
    metrics = eval_main(_tool_cfg("eval", f"ckpt_path={path}"))
    assert metrics["val/loss"] == _metrics(run)["final"]["val/loss"]


# --- eval, generate, predict --------------------------------------------------------------------


@pytest.mark.parametrize("name, summary_key", [("best", "best"), ("last", "final")])
def test_eval_reproduces_the_metrics_training_logged(runs, name, summary_key):
    logged = _metrics(runs["hihello"])[summary_key]

    metrics = eval_main(_tool_cfg("eval", f"ckpt_path={runs['hihello']}/checkpoints/{name}.ckpt"))

    assert metrics["val/loss"] == logged["val/loss"]
    assert metrics["val/acc"] == logged["val/acc"]


def test_generate_continues_hihell_with_o_greedily(runs, capsys):
    cfg = _tool_cfg(
        "generate",
        f"ckpt_path={runs['hihello']}/checkpoints/best.ckpt",
        "prompt=hihell",
        "greedy=true",
        "length=1",
    )

    assert generate_main(cfg) == "hihello"
    assert capsys.readouterr().out == "hihello\n"


def test_seeded_sampling_repeats_and_another_seed_differs(runs):
    def sample(seed: int) -> str:
        cfg = _tool_cfg(
            "generate", f"ckpt_path={runs['hihello']}/checkpoints/best.ckpt", "prompt=h",
            "length=80", "temperature=2.0", f"seed={seed}",
        )  # fmt: skip
        return generate_main(cfg)

    assert sample(0) == sample(0)
    assert sample(0) != sample(1)
    assert len(sample(0)) == 81


def test_predict_gives_the_sentiment_lessons_labels(runs, tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("good\nbad\nworse\nso good\n")

    lines = predict_main(
        _tool_cfg(
            "predict", f"ckpt_path={runs['sentiment']}/checkpoints/best.ckpt", f"file={words}"
        )
    )

    assert [line.split("\t")[:2] for line in lines] == [
        ["good", "1"],
        ["bad", "0"],
        ["worse", "0"],
        ["so good", "1"],
    ]
    assert all(float(line.split("\t")[2]) > 0.5 for line in lines)


def test_predict_on_a_next_character_model_gives_the_next_characters(runs):
    [line] = predict_main(
        _tool_cfg("predict", f"ckpt_path={runs['hihello']}/checkpoints/best.ckpt", "text=hihell")
    )

    assert line == "hihell\tihello"


# --- bad input ----------------------------------------------------------------------------------


def _evil_checkpoint(path: Path, marker: Path) -> None:
    class Payload:
        def __reduce__(self):
            return (Path.write_text, (marker, "the checkpoint ran code"))

    torch.save({"seqlab": {"format": 1}, "payload": Payload()}, path)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no such file"),
        (
            lambda p: p.write_bytes(b"PK\x03\x04 cut short"),
            "not a checkpoint: not a whole zip archive as torch.save writes (truncated?)",
        ),
        (
            lambda p: torch.save({"state_dict": {}}, p),
            "not a seqlab checkpoint (no 'seqlab' section)",
        ),
    ],
    ids=["missing", "truncated", "not seqlab"],
)
def test_unusable_checkpoint_is_named_in_one_line(tmp_path, make, message):
    path = tmp_path / "model.ckpt"
    make(path)

    expected = f"error: ckpt_path='{path}' is invalid: {message}"
    with pytest.raises(SystemExit, match=f"^{re.escape(expected)}$"):
        generate_main(_tool_cfg("generate", f"ckpt_path={path}", "prompt=hi"))


def test_checkpoint_with_pickled_code_is_refused_and_not_run(tmp_path):
    path, marker = tmp_path / "evil.ckpt", tmp_path / "ran.txt"
    _evil_checkpoint(path, marker)

    with pytest.raises(
        SystemExit, match="it holds pickled Python objects, which seqlab will not load"
    ):
        predict_main(_tool_cfg("predict", f"ckpt_path={path}", "text=hi"))
    assert not marker.exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["prompt=hixyz"],
            "prompt='hixyz' is invalid: characters not in the model's vocabulary: "
            "'x', 'y', 'z' (unknown=skip drops them)",
        ),
        (["prompt=hi", "temperature=0"], "temperature=0 is invalid: expected a number > 0"),
        (["prompt=hi", "temperature=-1.5"], "temperature=-1.5 is invalid: expected a number > 0"),
        (["prompt=hi", "length=-1"], "length=-1 is invalid: expected a number >= 0"),
        (["prompt=hi", "top_k=0"], "top_k=0 is invalid: expected a number > 0"),
        (
            ["prompt=xyz", "unknown=skip"],
            "prompt='xyz' is invalid: expected at least one character the model knows",
        ),
    ],
)
def test_bad_generate_setting_is_named_in_one_line(runs, overrides, message):
    cfg = _tool_cfg("generate", f"ckpt_path={runs['hihello']}/checkpoints/best.ckpt", *overrides)

    with pytest.raises(SystemExit, match=f"^{re.escape('error: ' + message)}$"):
        generate_main(cfg)


def test_unknown_characters_can_be_skipped(runs):
    cfg = _tool_cfg(
        "generate",
        f"ckpt_path={runs['hihello']}/checkpoints/best.ckpt",
        "prompt='hi!hel?l'",  # quoted: Hydra's override grammar reserves ! and ?
        "unknown=skip",
        "greedy=true",
        "length=1",
    )

    assert generate_main(cfg) == "hihello"


@pytest.mark.parametrize(
    "run, message",
    [
        ("sentiment", "a classifier (classes 0, 1) cannot generate text: use scripts/predict.py"),
        (
            "bidirectional",
            "the model is bidirectional: each prediction has seen the characters after it",
        ),
    ],
)
def test_generate_refuses_models_that_cannot_write_left_to_right(runs, run, message):
    cfg = _tool_cfg("generate", f"ckpt_path={runs[run]}/checkpoints/last.ckpt", "prompt=good")

    with pytest.raises(SystemExit, match=re.escape(message)):
        generate_main(cfg)


def test_tools_on_the_command_line_exit_1_with_one_line_and_write_nothing(tmp_path, runs):
    ckpt = runs["hihello"] / "checkpoints" / "best.ckpt"

    done = run_script(
        "generate.py", f"ckpt_path={ckpt}", "prompt=hi", "temperature=0", cwd=tmp_path
    )
    ok = run_script("predict.py", f"ckpt_path={ckpt}", "text=hihell", cwd=tmp_path)

    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: temperature=0 is invalid: expected a number > 0"
    ]
    assert ok.returncode == 0 and ok.stdout == "hihell\tihello\n"
    assert list(tmp_path.iterdir()) == []  # no run dir, no log
