"""Each lesson's promised outcome, from `experiment=NAME` with the default seed."""

from __future__ import annotations

import json

import pytest

from seqlab.metrics import VAL_ACC
from seqlab.train import train


def test_hihello_rnn_predicts_ihello(make_cfg, tmp_path):
    result = train(make_cfg("experiment=hihello"))

    [prediction] = result.predictions
    assert (prediction.text, prediction.predicted) == ("hihell", "ihello")
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["predictions"][0]["predicted"] == "ihello"


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
