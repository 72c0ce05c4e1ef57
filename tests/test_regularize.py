"""AWD-LSTM's regularisers: each the identity in eval, masks of the stated structure in training,
AR and TAR as written, and with all of them off the network as it always was."""

from __future__ import annotations

import csv
import math
import random
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from seqlab.checkpoint import load_checkpoint
from seqlab.errors import SettingError
from seqlab.models import NetConfig, RecurrentNet
from seqlab.models.regularize import (
    EmbeddingDropout,
    LockedDropout,
    WeightDrop,
    activation_penalty,
    temporal_penalty,
)
from seqlab.train import train

V, E = 30, 8
LM = {"encoding": "embedding", "embedding_dim": E, "hidden_size": E, "cell": "lstm"}
AWD = {
    "dropout_input": 0.4,
    "dropout_output": 0.3,
    "dropout_embedding": 0.2,
    "weight_drop": 0.5,
    "ar_alpha": 2.0,
    "tar_beta": 1.0,
}


def _tokens(batch: int = 4, steps: int = 7) -> torch.Tensor:
    return torch.randint(0, V, (batch, steps), generator=torch.Generator().manual_seed(1))


def test_with_every_regulariser_off_the_network_is_plain_torch_bit_for_bit():
    # word_language_model's network, built in the same order from the same seed
    torch.manual_seed(0)
    net = RecurrentNet(NetConfig(V, V, **LM, num_layers=2, dropout=0.2))
    torch.manual_seed(0)
    reference = nn.ModuleDict(
        {
            "embedding": nn.Embedding(V, E),
            "embedding_dropout": nn.Dropout(0.2),
            "rnn": nn.LSTM(E, E, num_layers=2, batch_first=True, dropout=0.2),
            "head": nn.Sequential(nn.Dropout(0.2), nn.Linear(E, V)),
        }
    )
    ours, theirs = net.state_dict(), reference.state_dict()
    assert list(ours) == list(theirs)  # the same names: earlier checkpoints load
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert [name for name, _ in net.named_modules()] == [n for n, _ in reference.named_modules()]

    tokens = _tokens()
    torch.manual_seed(5)  # training mode: the same dropout masks drawn in the same order
    got, (h, c) = net(tokens)
    torch.manual_seed(5)
    x = reference["embedding_dropout"](reference["embedding"](tokens))
    out, (h_ref, c_ref) = reference["rnn"](x)
    expected = reference["head"](out)
    assert torch.equal(got, expected) and torch.equal(h, h_ref) and torch.equal(c, c_ref)


def _same_weights(config: NetConfig) -> tuple[RecurrentNet, RecurrentNet]:
    torch.manual_seed(0)
    regularised = RecurrentNet(config)
    plain = RecurrentNet(NetConfig(V, V, **LM, num_layers=config.num_layers))
    plain.load_state_dict(regularised.state_dict())
    return regularised.eval(), plain.eval()


def test_in_eval_the_regularised_network_equals_the_plain_one_with_its_weights():
    regularised, plain = _same_weights(NetConfig(V, V, **LM, num_layers=2, **AWD))
    tokens = _tokens()
    first, second = regularised(tokens)[0], regularised(tokens)[0]
    assert torch.equal(first, second)  # no random mask in eval
    assert torch.equal(first, plain(tokens)[0])
    regularised.train()
    assert not torch.allclose(regularised(tokens)[0], first)  # while training it does drop


def test_layers_run_one_by_one_equal_the_stacked_lstm_in_eval():
    torch.manual_seed(0)
    layered = RecurrentNet(NetConfig(V, V, **LM, num_layers=2, dropout_hidden=0.3)).eval()
    stacked = RecurrentNet(NetConfig(V, V, **LM, num_layers=2)).eval()
    # rnns.L.weight_ih_l0 is the stack's rnn.weight_ih_lL
    weights = {
        (f"rnn.{n[7:-1]}{n[5]}" if n.startswith("rnns.") else n): w
        for n, w in layered.state_dict().items()
    }
    stacked.load_state_dict(weights)
    tokens = _tokens()
    out, (h, c) = layered(tokens)
    ref, (h_ref, c_ref) = stacked(tokens)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(h, h_ref)
    torch.testing.assert_close(c, c_ref)
    # and it carries its state: a second batch from the first's final state
    torch.testing.assert_close(layered(tokens, state=(h, c))[0], stacked(tokens, state=(h, c))[0])


def test_layers_of_their_own_sizes_carry_one_zero_padded_state():
    config = NetConfig(V, V, **LM, num_layers=3, hidden_sizes=[12, 10, E], tie_weights=True)
    net = RecurrentNet(config)
    assert [rnn.hidden_size for rnn in net.rnns] == [12, 10, E]
    assert net.head[-1].weight is net.embedding.weight
    out, (h, c) = net(_tokens())
    assert out.shape == (4, 7, V) and h.shape == c.shape == (3, 4, 12)  # (L, B, widest)
    assert h[1, :, 10:].abs().sum() == 0 and h[2, :, E:].abs().sum() == 0


def test_locked_dropout_keeps_one_mask_for_every_step():
    drop = LockedDropout(0.5).train()
    x = torch.ones(6, 9, 10)
    out = drop(x)
    assert torch.equal(out, out[:, :1].expand_as(out))  # the same at every step
    assert set(out.unique().tolist()) == {0.0, 2.0}  # dropped, or scaled by 1 / (1 - p)
    assert not torch.equal(drop(x), out)  # a new mask every forward pass
    assert torch.equal(drop.eval()(x), x)


def test_embedding_dropout_drops_whole_words_and_scales_the_rest():
    torch.manual_seed(0)
    embedding = nn.Embedding(V, E)
    drop = EmbeddingDropout(0.5).train()
    tokens = torch.arange(V).repeat(3, 1)  # every word, three times over
    out = drop(embedding, tokens)  # (3, V, E)
    zero = out.abs().sum(-1) == 0  # (3, V): which words were dropped
    assert zero.any() and not zero.all()
    assert torch.equal(zero[0], zero[1]) and torch.equal(zero[0], zero[2])  # the word, everywhere
    kept = ~zero[0]
    torch.testing.assert_close(out[0, kept], embedding.weight[kept] * 2)
    assert torch.equal(drop.eval()(embedding, tokens), embedding(tokens))


def test_weight_drop_drops_only_the_hidden_to_hidden_weights_and_warns_of_nothing():
    torch.manual_seed(0)
    rnn = nn.LSTM(5, 6, num_layers=2, batch_first=True)
    before = {name: w.detach().clone() for name, w in rnn.named_parameters()}
    drop = WeightDrop(0.5).train()
    x = torch.randn(3, 4, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # one step from a zero state never reads W_hh: the same output as without the drop
        assert torch.equal(drop(rnn, x[:, :1])[0], rnn(x[:, :1])[0])
        dropped, _ = drop(rnn, x)
        again, _ = drop(rnn, x)
    plain, _ = rnn(x)
    assert not torch.allclose(dropped, plain) and not torch.allclose(dropped, again)
    dropped.sum().backward()  # the gradient reaches the network's own parameters
    assert rnn.weight_hh_l0.grad is not None and rnn.weight_hh_l0.grad.abs().sum() > 0
    assert all(torch.equal(w, before[name]) for name, w in rnn.named_parameters())
    assert torch.equal(drop.eval()(rnn, x)[0], plain)


def test_ar_and_tar_are_the_means_awd_lstm_adds():
    h = torch.tensor([[[1.0, -2.0], [3.0, 0.0], [3.0, 4.0]]])  # (B=1, T=3, H=2)
    # AR: 2 * mean of squares (1 + 4 + 9 + 0 + 9 + 16) / 6
    assert activation_penalty(h, 2.0).item() == pytest.approx(2.0 * 39 / 6)
    # TAR: 1 * mean of squared steps ((2, 2), (0, 4)): (4 + 4 + 0 + 16) / 4
    assert temporal_penalty(h, 1.0).item() == pytest.approx(24 / 4)
    assert temporal_penalty(h[:, :1], 1.0).item() == 0.0


def test_ar_reads_the_dropped_output_and_tar_the_output_before_dropout():
    torch.manual_seed(0)
    net = RecurrentNet(NetConfig(V, V, **LM, dropout_output=0.5)).train()
    run = net.run(_tokens())
    mask = run.dropped / run.raw  # (B, T, H): 0 or 2, one mask per sequence
    assert set(mask.round().unique().tolist()) <= {0.0, 2.0}
    assert torch.equal(run.dropped, run.raw * (run.dropped != 0) * 2)
    assert torch.equal(run.outputs, net.head(run.dropped))


@pytest.mark.parametrize(
    ("settings", "named", "says"),
    [
        ({"weight_drop": 1.0}, "weight_drop", "expected 0 <= weight_drop < 1"),
        ({"ar_alpha": -1.0}, "ar_alpha", "expected a number >= 0"),
        ({"dropout_hidden": 0.3}, "dropout_hidden", "needs num_layers >= 2"),
        ({"hidden_sizes": [16, E]}, "hidden_sizes", "set model.num_layers=2 too"),
        (
            {"num_layers": 2, "hidden_sizes": [16, 12], "tie_weights": True},
            "hidden_sizes",
            "set model.hidden_size=12 too",
        ),
        (
            {"num_layers": 2, "hidden_size": 12, "hidden_sizes": [16, 12], "tie_weights": True},
            "hidden_sizes",
            "the last layer x directions to be embedding_dim 8, not 12",
        ),
    ],
)
def test_a_regulariser_setting_that_cannot_work_is_one_line(settings, named, says):
    with pytest.raises(SettingError) as caught:
        NetConfig(V, V, **(LM | settings))
    assert caught.value.name == named and says in str(caught.value)


def test_embedding_dropout_needs_an_embedding():
    with pytest.raises(SettingError, match="needs encoding=embedding"):
        NetConfig(V, V, dropout_embedding=0.1)


def test_weight_drop_follows_the_functional_path_of_any_cell():
    for cell in ("rnn", "gru"):
        net = RecurrentNet(NetConfig(V, V, **(LM | {"cell": cell}), weight_drop=0.5)).train()
        out, _ = net(_tokens())
        F.cross_entropy(out.reshape(-1, V), _tokens().reshape(-1)).backward()
        assert net.rnn.weight_hh_l0.grad.abs().sum() > 0


def test_experiment_awd_wikitext2_is_the_published_recipe_and_trains(make_cfg, tmp_path):
    cfg = make_cfg("experiment=awd_wikitext2")
    model, data, optimizer = cfg.model, cfg.data, cfg.optimizer
    assert (model.embedding_dim, list(model.hidden_sizes), model.tie_weights) == (
        400,
        [1150, 1150, 400],
        True,
    )
    dropouts = (model.dropout_output, model.dropout_hidden, model.dropout_input)
    assert (*dropouts, model.dropout_embedding, model.weight_drop) == (0.4, 0.3, 0.65, 0.1, 0.5)
    assert (model.ar_alpha, model.tar_beta) == (2.0, 1.0)
    assert (data.seq_len, data.seq_len_jitter, data.batch_size) == (70, 5, 80)
    assert optimizer._target_ == "seqlab.nt_asgd.NTASGD"
    assert (optimizer.lr, optimizer.weight_decay, optimizer.nonmono) == (30, 1.2e-6, 5)
    assert cfg.trainer.max_epochs == 750

    # two steps of it on a slice of text, the network shrunk
    root = tmp_path / "slice"
    root.mkdir()
    words = [f"w{i}" for i in range(12)]
    for split, seed in (("train", 0), ("valid", 1)):
        r = random.Random(seed)
        (root / f"{split}.txt").write_text(
            "".join(" ".join(r.choices(words, k=6)) + "\n" for _ in range(40))
        )
    cfg = make_cfg(
        "experiment=awd_wikitext2",
        f"data.dir={root}",
        "data.batch_size=2",
        "data.seq_len=8",
        "data.eval_batch_size=2",
        "model.embedding_dim=8",
        "model.hidden_size=8",
        "model.hidden_sizes=[12,12,8]",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=2",
        "logger=csv",
    )
    result = train(cfg)
    logged = _csv_columns(result.run_dir / "metrics.csv")
    assert result.final["train/loss"] > 0 and math.isfinite(result.final["val/ppl"])
    assert logged["train/ar"] and logged["train/tar"] and logged["train/asgd"] == [0.0]
    checkpoint = load_checkpoint(result.run_dir / "checkpoints" / "last.ckpt")
    recorded = checkpoint["hyper_parameters"]
    assert (recorded["weight_drop"], recorded["hidden_sizes"]) == (0.5, [12, 12, 8])
    # a checkpoint is checked against the settings' types before anything is built from it
    recorded["weight_drop"] = "half"
    torch.save(checkpoint, tmp_path / "crafted.ckpt")
    with pytest.raises(SettingError, match=r"weight_drop='half'.*expected a number"):
        load_checkpoint(tmp_path / "crafted.ckpt")


def _csv_columns(path: Path) -> dict[str, list[float]]:
    with open(path) as file:
        rows = list(csv.DictReader(file))
    return {key: [float(r[key]) for r in rows if r[key]] for key in rows[0]}


def test_the_logged_train_loss_is_the_cross_entropy_without_the_penalties(make_cfg, tmp_path):
    root = tmp_path / "words"
    root.mkdir()
    for split, seed in (("train", 0), ("valid", 1)):
        r = random.Random(seed)
        text = "".join(" ".join(r.choices("abcdefgh", k=6)) + "\n" for _ in range(40))
        (root / f"{split}.txt").write_text(text)
    args = [
        "data=corpus",
        f"data.dir={root}",
        "data.seq_len=8",
        "data.batch_size=2",
        "model=lstm",
        "model.encoding=embedding",
        "+trainer.max_steps=1",
    ]
    # one step: its loss is measured before any update, from the same seed and masks
    plain = train(make_cfg(*args, bare=True))
    penalised = train(make_cfg(*args, "model.ar_alpha=50", "model.tar_beta=50", bare=True))
    assert penalised.final["train/loss"] == plain.final["train/loss"]
