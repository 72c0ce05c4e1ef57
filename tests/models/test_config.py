"""NetConfig is the one list of the model.* settings: the checker, conf/ and checkpoints follow."""

from __future__ import annotations

import pytest
from conftest import compose_train

from seqlab.errors import SettingError
from seqlab.models import NetConfig
from seqlab.module import SeqModule
from seqlab.settings.types import check_arguments

VOCAB = {"tokens": ["a", "b", "c"], "level": "char", "lowercase": False}


def test_the_checker_names_every_netconfig_setting_as_a_model_key():
    with pytest.raises(SettingError) as error:
        check_arguments(SeqModule, {"hiden_size": 8}, "model.", ("vocab", "class_names", "task"))

    assert f"expected one of {', '.join(NetConfig.setting_names())}" in str(error.value)


def test_the_checker_reads_each_settings_type_from_netconfig():
    with pytest.raises(SettingError, match=r"model.tie_weights='yes' is invalid: expected true"):
        check_arguments(SeqModule, {"tie_weights": "yes"}, "model.", required=False)
    with pytest.raises(SettingError, match=r"model.init_range='a' is invalid: expected a number"):
        check_arguments(SeqModule, {"init_range": "a"}, "model.", required=False)


def test_conf_model_lists_every_setting_with_netconfigs_default(tmp_path):
    model = compose_train(tmp_path, "model=rnn").model
    defaults = NetConfig(vocab_size=3, num_outputs=3).settings()

    assert {k: model.get(k, "not in conf/model/rnn.yaml") for k in defaults} == defaults


def test_a_module_records_every_setting_flat_defaults_too():
    module = SeqModule(VOCAB, ["a", "b", "c"], "next_token", hidden_size=4)

    assert module.hparams["hidden_size"] == 4 and module.hparams["cell"] == "rnn"
    assert set(NetConfig.setting_names()) <= set(module.hparams)
    assert module.net.config.vocab_size == 3
