"""Each lesson's promised outcome, from `experiment=NAME` with the default seed."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from conftest import run_script

from seqlab.callbacks.lesson_trace import LESSON_LOSS
from seqlab.metrics import VAL_ACC
from seqlab.train import train


def test_hihello_rnn_predicts_ihello(make_cfg, tmp_path):
    result = train(make_cfg("experiment=hihello"))

    [prediction] = result.predictions
    assert (prediction.text, prediction.predicted) == ("hihell", "ihello")
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["predictions"][0]["predicted"] == "ihello"


def _lesson_script(steps: int) -> list[tuple[float, str]]:
    """The hihello lesson's PyTorch loop as the lesson writes it: (loss, prediction str) a step."""
    torch.manual_seed(0)
    char_set = ["h", "i", "e", "l", "o"]
    x_one_hot = [[[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [1, 0, 0, 0, 0], [0, 0, 1, 0, 0],
                  [0, 0, 0, 1, 0], [0, 0, 0, 1, 0]]]  # hihell  # fmt: skip
    y_data = [[1, 0, 2, 3, 3, 4]]  # ihello
    X, Y = torch.FloatTensor(x_one_hot), torch.LongTensor(y_data)
    rnn = torch.nn.RNN(5, 5, batch_first=True)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(rnn.parameters(), 0.1)
    trace = []
    for _ in range(steps):
        optimizer.zero_grad()
        outputs, _status = rnn(X)
        loss = criterion(outputs.view(-1, 5), Y.view(-1))
        loss.backward()
        optimizer.step()
        result = outputs.data.numpy().argmax(axis=2)
        trace.append((loss.item(), "".join(char_set[c] for c in np.squeeze(result))))
    return trace


TRACE_LINE = re.compile(r"^(\d+) loss: (\S+) prediction str: (\S+)$", re.MULTILINE)


def test_hihello_exact_reproduces_the_lesson_scripts_trace(make_cfg, tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(make_cfg("experiment=hihello_exact"))

    printed = TRACE_LINE.findall(capsys.readouterr().out)
    lesson = _lesson_script(100)
    assert [int(step) for step, _, _ in printed] == list(range(100))
    assert printed[0] == ("0", "1.7802648544311523", "iiiiii")
    # the loss as the lesson prints it, all digits: exact for the first steps
    assert [float(loss) for _, loss, _ in printed[:10]] == [loss for loss, _ in lesson[:10]]
    assert [text for _, _, text in printed] == [text for _, text in lesson]
    assert printed[-1][2] == lesson[-1][1] == "ilello"  # the lesson's last line
    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"scalars": 0})
    events.Reload()
    logged = events.Scalars(LESSON_LOSS)
    assert [e.step for e in logged] == list(range(100))
    assert logged[0].value == 1.7802648544311523


def test_lstm_learns_hihello_in_the_lessons_vocab_order(make_cfg):
    result = train(make_cfg("model=lstm", "data.vocab=[h,i,e,l,o]", bare=True))

    assert [p.predicted for p in result.predictions] == ["ihello"]


def test_charseq_predicts_if_you_want_you(make_cfg):
    result = train(make_cfg("experiment=charseq"))

    assert [p.predicted for p in result.predictions] == ["if you want you"]


def test_seoul_lstm_predicts_the_sentence(make_cfg):
    result = train(make_cfg("experiment=seoul"))

    assert [p.predicted for p in result.predictions] == ["seoul is the capital of south korea"]


def test_longtext_stacked_rnn_reaches_95_percent_over_all_windows(make_cfg):
    result = train(make_cfg("experiment=longtext"))

    assert result.final[VAL_ACC] >= 0.95


def test_sentiment_classifies_all_four_words(make_cfg):
    result = train(make_cfg("experiment=sentiment"))

    labels = {p.text: p.predicted for p in result.predictions}
    assert labels == {"good": "1", "bad": "0", "worse": "0", "so good": "1"}
    assert all(p.probability > 0.5 for p in result.predictions)


@pytest.mark.parametrize("model", ["lstm", "gru"])
def test_default_data_learns_with_other_cells(make_cfg, model):
    result = train(make_cfg(f"model={model}"))

    assert [p.predicted for p in result.predictions] == ["ihello"]


@pytest.mark.parametrize("precision", ["bf16-true", "64-true", "bf16-mixed"])
def test_hihello_learns_in_every_cpu_precision_with_one_hot_inputs(make_cfg, precision):
    # one-hot vectors take the parameters' dtype; the pictures are drawn from it too
    result = train(make_cfg("experiment=hihello", f"trainer.precision={precision}"))

    assert [p.predicted for p in result.predictions] == ["ihello"]


def test_plain_pytorch_hihello_lesson_script_predicts_ihello(tmp_path):
    # scripts/plain/hihello.py: the side bench_startup.py measures seqlab's start-up against
    done = run_script("plain/hihello.py", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("predicted: ihello")
