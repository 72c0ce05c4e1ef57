"""The corpus experiments learn from the packaged data: minutes each, so marked ``slow``
(``pytest -m slow``); tests/test_corpora.py covers the same path with tiny budgets."""

from __future__ import annotations

import pytest

from seqlab.metrics import VAL_ACC, VAL_LOSS
from seqlab.train import train

pytestmark = pytest.mark.slow


def test_shakespeare_char_lstm_learns_within_two_minutes(make_cfg):
    result = train(make_cfg("experiment=shakespeare", "trainer.max_time=00:00:02:00"))

    # a unigram model of these 65 characters is about 3.3 nats; 10 minutes reach 1.51
    assert result.best[VAL_LOSS] < 2.3


def test_sst2_bilstm_is_well_above_chance_after_two_epochs(make_cfg):
    result = train(make_cfg("experiment=sst2", "trainer.max_epochs=2"))

    assert result.best[VAL_ACC] > 0.7  # the dev set is about half positive
