"""A checkpoint is a file anyone may have written: what it asks for is checked, never called.

Every crafted file below passes ``torch.load(weights_only=True)`` (it is plain data), yet asks
seqlab to call something, or records settings and weights that cannot go together. Each is
refused with one line naming the file, exit status 1, and nothing on disk changes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import QUIET, compose_train, snapshot

from seqlab.train import train

Craft = Callable[[dict[str, Any], Path], None]  # edits a checkpoint; the Path is the victim file


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    run = tmp_path_factory.mktemp("trained") / "hihello"
    train(compose_train(run, "experiment=hihello", *QUIET, "trainer.max_epochs=3"))
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)


def _data(target: str, *args: Any, **kwargs: Any) -> Craft:
    def craft(checkpoint: dict[str, Any], victim: Path) -> None:
        arguments = [str(victim) if a == "VICTIM" else a for a in args]
        checkpoint["seqlab"]["datamodule"] = {"_target_": target, "_args_": arguments, **kwargs}

    return craft


def _keys(path: str) -> list[str]:
    # "state_dict:net.head.1.bias": a weight's name has dots of its own
    head, _, weight = path.partition(":")
    return [*head.split("."), *([weight] if weight else [])]


def _set(path: str, value: Any) -> Craft:
    def craft(checkpoint: dict[str, Any], victim: Path) -> None:
        *parents, last = _keys(path)
        node = checkpoint
        for part in parents:
            node = node[part]
        node[last] = value(victim) if callable(value) else value

    return craft


def _drop(path: str) -> Craft:
    def craft(checkpoint: dict[str, Any], victim: Path) -> None:
        *parents, last = _keys(path)
        node = checkpoint
        for part in parents:
            node = node[part]
        del node[last]

    return craft


def _list_target(checkpoint: dict[str, Any], victim: Path) -> None:
    # the chain that ran a shell command: write a pickle, then torch.load it unsafely
    checkpoint["seqlab"]["datamodule"] = [
        {"_target_": "pathlib.Path.write_bytes", "_args_": [str(victim), b"payload"]},
        {"_target_": "torch.load", "_args_": [str(victim)], "weights_only": False},
    ]


def _nested_target(checkpoint: dict[str, Any], victim: Path) -> None:
    checkpoint["seqlab"]["datamodule"]["text"] = {
        "_target_": "pathlib.Path.write_text",
        "_args_": [str(victim), ""],
    }


def _repeat_token(checkpoint: dict[str, Any], victim: Path) -> None:
    tokens = checkpoint["hyper_parameters"]["vocab"]["tokens"]
    tokens[1] = tokens[0]


def _shape(checkpoint: dict[str, Any], victim: Path) -> None:
    weights = checkpoint["state_dict"]
    weights["net.head.1.weight"] = weights["net.head.1.weight"][:, :3].clone()


CRAFTED: dict[str, tuple[Craft, str]] = {
    "open() truncating a file": (
        _data("builtins.open", "VICTIM", "w"),
        "it asks for data class 'builtins.open'; seqlab builds",
    ),
    "Path.write_text": (
        _data("pathlib.Path.write_text", "VICTIM", ""),
        "it asks for data class 'pathlib.Path.write_text'",
    ),
    "Path.unlink": (
        _data("pathlib.Path.unlink", "VICTIM"),
        "it asks for data class 'pathlib.Path.unlink'",
    ),
    "shutil.copyfile from /dev/null": (
        _data("shutil.copyfile", "/dev/null", "VICTIM"),
        "it asks for data class 'shutil.copyfile'",
    ),
    "torch.save over a file": (
        _data("torch.save", {}, "VICTIM"),
        "it asks for data class 'torch.save'",
    ),
    "os.symlink": (
        _data("os.symlink", "VICTIM", "VICTIM.link"),
        "it asks for data class 'os.symlink'",
    ),
    "a list of targets": (_list_target, "it lacks the model's or the data's settings"),
    "a target nested in an argument": (
        _nested_target,
        "it names something to call at text._target_",
    ),
    "a target in the model's settings": (
        _set("hyper_parameters.cell", {"_target_": "os.getcwd"}),
        "it names something to call at cell._target_",
    ),
    "a target in the optimizer's record": (
        _set("seqlab.optimization.optimizer", {"_target_": "os.getcwd"}),
        "it names something to call at optimizer._target_",
    ),
    "a tensor in the optimizer's record": (
        _set("seqlab.optimization.optimizer.lr", torch.ones(1)),
        "its optimization record is not plain settings",
    ),
    "an optimizer recorded as a model setting": (
        _set("hyper_parameters.optimizer", "adam"),
        "it records optimizer='adam', which cannot be used: no such setting",
    ),
    "an unknown model setting": (
        _set("hyper_parameters.depth", 3),
        "it records depth=3, which cannot be used: no such setting",
    ),
    "no vocabulary": (
        _drop("hyper_parameters.vocab"),
        "it records vocab=None, which cannot be used: a value is required",
    ),
    "a string for an integer": (
        _set("hyper_parameters.hidden_size", "8"),
        "it records hidden_size='8', which cannot be used: expected a whole number",
    ),
    "a setting out of range": (
        _set("hyper_parameters.hidden_size", 0),
        "it records hidden_size=0, which cannot be used: expected a number > 0",
    ),
    "a repeated token": (
        _repeat_token,
        "its vocabulary cannot be used: vocabulary has repeated tokens",
    ),
    "a token of two characters": (
        _set("hyper_parameters.vocab.tokens", ["e", "h", "i", "l", "ox"]),
        "a character vocabulary holds a token longer than one character",
    ),
    "classes other than the vocabulary": (
        _set("hyper_parameters.class_names", ["a", "b", "c", "d", "e"]),
        "a next-token model's classes are its vocabulary's tokens",
    ),
    "an unknown data setting": (
        _set("seqlab.datamodule.corpus", "x"),
        "it records data.corpus='x', which cannot be used: no such setting",
    ),
    "a weight of the wrong shape": (
        _shape,
        "its weights do not fit its settings: net.head.1.weight is (5, 3), not (5, 8)",
    ),
    "a missing weight": (
        _drop("state_dict:net.head.1.bias"),
        "its weights are not this model's: no net.head.1.bias",
    ),
    "a weight that is not a tensor": (
        _set("state_dict:net.head.1.bias", [0.0] * 5),
        "its state_dict is not a mapping of names to tensors",
    ),
    "an epoch that is not a number": (
        _set("epoch", "12"),
        "its epoch is '12', not a whole number >= 0",
    ),
    "a broken random state": (
        _set("seqlab.rng_state", torch.zeros(3, dtype=torch.uint8)),
        "its rng_state is not a random-number generator state",
    ),
    "a carried state that is not a state": (
        _set("seqlab.carried_state", [torch.zeros(3)]),
        "its carried_state is not one or two (ranks, layers, streams, units) tensors",
    ),
    "another format": (_set("seqlab.format", 2), "checkpoint format 2, this seqlab reads 1"),
}


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "precious.txt"
    path.write_text("a file the checkpoint must not touch\n")
    return path


@pytest.mark.parametrize("craft, message", CRAFTED.values(), ids=CRAFTED.keys())
def test_crafted_checkpoint_is_refused_and_nothing_is_called(
    cli, tmp_path, trained, victim, craft, message
):
    checkpoint = copy.deepcopy(trained)
    craft(checkpoint, victim)
    path = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, path)
    torch.load(path, weights_only=True)  # plain data: the loader itself would take it
    before = snapshot(tmp_path)

    for script, args in [
        ("eval.py", []),
        ("generate.py", ["prompt=h"]),
        ("predict.py", ["text=hi"]),
    ]:
        done = cli(script, f"ckpt_path={path}", *args)

        assert done.status == 1, done.stderr
        assert done.lines == [
            f"error: ckpt_path='{path}' is invalid: {done.lines[0].split(': ', 2)[2]}"
        ]
        assert message in done.lines[0]
    assert snapshot(tmp_path) == before


def test_interpolations_in_a_checkpoint_are_never_resolved(cli, tmp_path, trained, monkeypatch):
    # resolved, the text would be "hihello" and eval would run; as written, it is other data
    monkeypatch.setenv("SEQLAB_TEST_TEXT", "hihello")
    checkpoint = copy.deepcopy(trained)
    checkpoint["seqlab"]["datamodule"]["text"] = "${oc.env:SEQLAB_TEST_TEXT}"
    checkpoint["hyper_parameters"]["cell"] = "${oc.env:SEQLAB_TEST_CELL}"
    monkeypatch.setenv("SEQLAB_TEST_CELL", "rnn")
    torch.save(checkpoint, tmp_path / "crafted.ckpt")

    done = cli("eval.py", f"ckpt_path={tmp_path / 'crafted.ckpt'}")

    assert done.status == 1
    assert (
        "it records cell='${oc.env:SEQLAB_TEST_CELL}', which cannot be used: expected one of rnn"
        in done.lines[0]
    )


def test_resume_from_a_checkpoint_with_a_broken_random_state_changes_nothing(cli, tmp_path):
    done = cli(
        "train.py", "experiment=hihello", "trainer.max_epochs=2", *QUIET, "hydra.run.dir=run"
    )
    assert done.status == 0, done.stderr
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    checkpoint["seqlab"]["rng_state"] = torch.zeros(10, dtype=torch.uint8)
    torch.save(checkpoint, last)
    before = snapshot(tmp_path)

    done = cli("train.py", "experiment=hihello", "trainer.max_epochs=4", *QUIET, "resume=run")

    assert done.lines == [
        "error: resume='run' is invalid: its rng_state is not a random-number generator state (5056 bytes)"
    ]
    assert snapshot(tmp_path) == before


@pytest.fixture
def textfile_run(cli, tmp_path: Path) -> Path:
    (tmp_path / "corpus.txt").write_text("the cat sat on the mat. " * 200)
    done = cli(
        "train.py",
        "data=textfile",
        "data.path=corpus.txt",
        "data.seq_len=10",
        "data.steps_per_epoch=3",
        "trainer.max_epochs=1",
        *QUIET,
        "hydra.run.dir=run",
    )
    assert done.status == 0, done.stderr
    return tmp_path / "run" / "checkpoints" / "last.ckpt"


def test_eval_on_a_corpus_changed_since_training_says_so(cli, tmp_path, textfile_run):
    # the same characters, another text: the vocabulary alone would not tell
    (tmp_path / "corpus.txt").write_text("the mat sat on the cat. " * 200)

    done = cli("eval.py", f"ckpt_path={textfile_run}")

    assert done.lines == [
        f"error: ckpt_path='{textfile_run}' is invalid: the data has changed since training: "
        "corpus.txt has the same size but other content (its sha256 differs)"
    ]


def test_eval_with_its_corpus_gone_is_one_line(cli, tmp_path, textfile_run):
    (tmp_path / "corpus.txt").unlink()

    done = cli("eval.py", f"ckpt_path={textfile_run}")

    assert done.lines == [
        f"error: ckpt_path='{textfile_run}' is invalid: the data it was trained on cannot be read: "
        "data.path='corpus.txt' is invalid: no such file"
    ]


def test_a_prompt_character_the_model_lacks_is_shown_as_typed(cli, tmp_path):
    (tmp_path / "corpus.txt").write_text("the cat sat on the mat. " * 200 + "q")
    # q is seen once: it becomes <unk>, so the vocabulary has one
    done = cli(
        "train.py",
        "data=textfile",
        "data.path=corpus.txt",
        "data.seq_len=10",
        "data.min_char_count=2",
        "data.steps_per_epoch=3",
        "trainer.max_epochs=1",
        *QUIET,
        "hydra.run.dir=run",
    )
    assert done.status == 0, done.stderr

    shown = cli(
        "generate.py", "ckpt_path=run/checkpoints/last.ckpt", "prompt=the zebra", "length=5"
    )

    assert shown.status == 0, shown.stderr
    assert shown.stdout.startswith("the zebra") and "<unk>" not in shown.stdout
