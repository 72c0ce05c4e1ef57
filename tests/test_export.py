"""scripts/export.py: checkpoints of real runs as ONNX models, run with onnxruntime on inputs of
other batch sizes and lengths than the export's, scored as PyTorch scores them."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import QUIET, compose_train, run_in_process, snapshot

from seqlab.checkpoint import load_checkpoint, module_from
from seqlab.data.vocab import Vocab
from seqlab.inference import generate
from seqlab.module import SeqModule
from seqlab.train import train

WORDS = ["to", "be", "or", "not", "that", "is", "the", "question"]
TOLERANCE = 1e-4


def _trained(root: Path, *overrides: str) -> Path:
    """best.ckpt of a real run with ``overrides``, trained into ``root``."""
    train(compose_train(root, *QUIET, "logger=none", *overrides))
    return root / "checkpoints" / "best.ckpt"


@pytest.fixture(scope="module")
def word_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("words")
    for split, n, seed in (("train", 400, 0), ("valid", 40, 1)):
        r = random.Random(seed)
        lines = (" ".join(r.choices(WORDS, k=r.randint(2, 9))) for _ in range(n))
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


RUNS = {
    "rnn": ["experiment=hihello", "model=rnn", "model.hidden_size=8", "trainer.max_epochs=20"],
    "gru": ["experiment=hihello", "model=gru", "model.hidden_size=8", "trainer.max_epochs=20"],
    "lstm": ["experiment=hihello", "model=lstm", "model.hidden_size=8", "trainer.max_epochs=20"],
    # the RNN's outputs are the scores themselves (the lesson's way)
    "rnn_headless": [
        "experiment=hihello",
        "model.head=none",
        "model.hidden_size=5",
        "trainer.max_epochs=20",
    ],
    # the scratch cells' twin in torch's cells is what is written
    "scratch_lstm": [
        "experiment=hihello",
        "model=lstm",
        "model.impl=scratch",
        "trainer.max_epochs=5",
    ],
    "bilstm_last": ["experiment=sentiment", "trainer.max_epochs=20"],
    "bilstm_max": [
        "experiment=sentiment",
        "model.pooling=max",
        "model.num_layers=2",
        "trainer.max_epochs=20",
    ],
    "word": [
        "data=corpus",
        "data.seq_len=9",
        "data.batch_size=4",
        "model=lstm",
        "model.encoding=embedding",
        "model.hidden_size=32",
        "model.num_layers=2",
        "trainer.max_epochs=1",
    ],
    # AWD's stack: one LSTM a layer, sizes of their own, weight drop and locked dropout
    "awd_word": [
        "data=corpus",
        "data.seq_len=9",
        "data.batch_size=4",
        "model=lstm",
        "model.encoding=embedding",
        "model.hidden_size=12",
        "model.num_layers=2",
        "model.hidden_sizes=[20,12]",
        "model.weight_drop=0.3",
        "model.dropout_hidden=0.2",
        "trainer.max_epochs=1",
    ],
    "bilstm_layered": [
        "experiment=sentiment",
        "model.num_layers=2",
        "model.dropout_hidden=0.2",
        "trainer.max_epochs=20",
    ],
    "adaptive": [
        "data=corpus",
        "data.seq_len=9",
        "data.batch_size=4",
        "model=lstm",
        "model.encoding=embedding",
        "model.head=adaptive",
        "model.cutoffs=[4]",
        "trainer.max_epochs=1",
    ],
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, word_corpus: Path):
    """``checkpoint(name)``: best.ckpt of the run ``RUNS[name]``, trained once per module."""
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            data = [f"data.dir={word_corpus}"] if "data=corpus" in RUNS[name] else []
            made[name] = _trained(tmp_path_factory.mktemp(name) / "run", *RUNS[name], *data)
        return made[name]

    return get


def _export(ckpt: Path, out: Path) -> tuple[ort.InferenceSession, onnx.ModelProto, str]:
    done = run_in_process("export.py", f"ckpt_path={ckpt}", f"out={out}")
    assert done.status == 0, done.stderr
    return ort.InferenceSession(str(out)), onnx.load(out), done.stdout


def _module(ckpt: Path) -> SeqModule:
    return module_from(load_checkpoint(ckpt), ValueError)


def _facts(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def _state_names(session: ort.InferenceSession) -> list[str]:
    return [i.name for i in session.get_inputs()][1:]  # after tokens: h, and c for an LSTM


@pytest.mark.parametrize(
    "name", ["rnn", "rnn_headless", "gru", "lstm", "scratch_lstm", "word", "awd_word"]
)
def test_a_next_token_model_scores_new_batches_and_states_as_pytorch(checkpoint, tmp_path, name):
    ckpt = checkpoint(name)
    session, model, shown = _export(ckpt, tmp_path / "model.onnx")
    net = _module(ckpt).net
    assert "input  tokens  int64   (batch, time)" in shown

    # the export traced a batch of 2 sequences of 3 steps: 5 of 7, from a random state
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, net.vocab_size, (5, 7), generator=generator)
    states = [
        torch.randn(net.num_layers * net.directions, 5, net.state_size, generator=generator)
        for _ in _state_names(session)
    ]
    got = session.run(
        None,
        {"tokens": tokens.numpy()}
        | {n: s.numpy() for n, s in zip(_state_names(session), states, strict=True)},
    )
    with torch.no_grad():
        scores, state = net(tokens, state=states[0] if len(states) == 1 else tuple(states))
    expected = [scores, *(state if isinstance(state, tuple) else [state])]

    assert [g.shape for g in got] == [tuple(e.shape) for e in expected]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e.numpy(), atol=TOLERANCE, rtol=0)
    assert _facts(model)["seqlab.task"] != "classify"
    assert Vocab.from_dict(json.loads(_facts(model)["seqlab.vocab"])) == _module(ckpt).vocab


def _greedy_onnx(
    session: ort.InferenceSession, prompt: list[int], length: int, banned: list[int]
) -> list[int]:
    """Greedy continuation as a runtime writes it: the prompt once, then one step at a time,
    each step's state fed back as the next step's."""
    names = _state_names(session)
    shape = session.get_inputs()[1].shape  # (layers x directions, "batch", H)
    state = [np.zeros((shape[0], 1, shape[2]), np.float32) for _ in names]
    tokens = np.array([prompt], dtype=np.int64)
    drawn = []
    for _ in range(length):
        scores, *state = session.run(
            None, {"tokens": tokens} | dict(zip(names, state, strict=True))
        )
        last = scores[0, -1].astype(np.float64)
        last[banned] = -np.inf
        drawn.append(int(last.argmax()))
        tokens = np.array([[drawn[-1]]], dtype=np.int64)
    return drawn


@pytest.mark.parametrize("name", ["rnn", "gru", "lstm"])
def test_stepping_the_onnx_state_writes_what_generate_py_writes(checkpoint, tmp_path, cli, name):
    ckpt = checkpoint(name)
    session, model, _ = _export(ckpt, tmp_path / "model.onnx")
    vocab = Vocab.from_dict(json.loads(_facts(model)["seqlab.vocab"]))

    drawn = _greedy_onnx(session, vocab.encode("hihell").tolist(), 8, vocab.special_ids)
    written = cli("generate.py", f"ckpt_path={ckpt}", "prompt=hihell", "length=8", "greedy=true")

    assert written.status == 0, written.stderr
    assert written.stdout == "hihell" + vocab.decode(drawn) + "\n"
    if name == "lstm":  # 20 epochs learn the lesson
        assert written.stdout.startswith("hihello")


def test_a_word_models_onnx_steps_draw_pytorchs_greedy_words(checkpoint, tmp_path):
    ckpt = checkpoint("word")
    session, _, _ = _export(ckpt, tmp_path / "model.onnx")
    module = _module(ckpt)
    prompt = module.vocab.encode("to be or")

    drawn = _greedy_onnx(session, prompt.tolist(), 12, module.vocab.special_ids)
    expected = list(generate(module.net, prompt, 12, module.vocab.special_ids, greedy=True))

    assert drawn == expected


@pytest.mark.parametrize("name", ["bilstm_last", "bilstm_max", "bilstm_layered"])
def test_a_classifier_scores_a_padded_batch_of_other_lengths_as_pytorch(checkpoint, tmp_path, name):
    ckpt = checkpoint(name)
    session, model, shown = _export(ckpt, tmp_path / "model.onnx")
    module = _module(ckpt)
    vocab = module.vocab
    assert "input  lengths int64   (batch)" in shown

    # the export traced 2 sequences of 3 steps: 6 of 1 to 11 characters, padded
    r = random.Random(0)
    letters = [t for t in vocab.tokens if t not in ("<pad>", "<unk>")]
    texts = ["so good", "bad", "worse", *("".join(r.choices(letters, k=n)) for n in (1, 11, 4))]
    sequences = [vocab.encode(t).long() for t in texts]
    lengths = torch.tensor([len(s) for s in sequences])
    tokens = torch.nn.utils.rnn.pad_sequence(
        sequences, batch_first=True, padding_value=vocab.pad_index
    )
    got = session.run(None, {"tokens": tokens.numpy(), "lengths": lengths.numpy()})[0]
    with torch.no_grad():
        expected = module.net(tokens, lengths)[0]
        alone = torch.cat([module.net(s[None])[0] for s in sequences])  # each unpadded

    assert got.shape == (6, 2)
    np.testing.assert_allclose(got, expected.numpy(), atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(
        got, alone.numpy(), atol=TOLERANCE, rtol=0
    )  # padding changes nothing
    classes = json.loads(_facts(model)["seqlab.class_names"])
    assert [classes[i] for i in got[:3].argmax(-1)] == ["1", "0", "0"]  # the lesson's labels


def _refused(tmp_path: Path, *args: str) -> list[str]:
    before = snapshot(tmp_path)
    done = run_in_process("export.py", *args)
    assert done.status == 1
    assert snapshot(tmp_path) == before  # nothing written
    return done.lines


def test_an_adaptive_head_is_refused_in_one_line_before_anything_is_written(checkpoint, tmp_path):
    ckpt = checkpoint("adaptive")

    lines = _refused(tmp_path, f"ckpt_path={ckpt}", f"out={tmp_path / 'out' / 'model.onnx'}")

    assert len(lines) == 1
    assert lines[0].startswith(
        f"error: ckpt_path='{ckpt}' is invalid: its model has model.head=adaptive"
    )
    assert "model.head=fc" in lines[0]


def test_a_missing_checkpoint_is_one_line(tmp_path):
    lines = _refused(
        tmp_path, f"ckpt_path={tmp_path / 'nope.ckpt'}", f"out={tmp_path / 'model.onnx'}"
    )

    assert lines == [f"error: ckpt_path='{tmp_path / 'nope.ckpt'}' is invalid: no such file"]


def test_an_out_that_is_a_directory_is_one_line(checkpoint, tmp_path):
    (tmp_path / "models").mkdir()
    lines = _refused(tmp_path, f"ckpt_path={checkpoint('rnn')}", f"out={tmp_path / 'models'}")

    assert lines == [
        f"error: out='{tmp_path / 'models'}' is invalid: is a directory: expected a file path"
    ]


def test_without_the_onnx_package_the_line_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError

    lines = _refused(tmp_path, f"ckpt_path={tmp_path / 'x.ckpt'}", f"out={tmp_path / 'model.onnx'}")

    assert lines == ['error: scripts/export.py needs the onnx package: pip install -e ".[onnx]"']
