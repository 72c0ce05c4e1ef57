"""The adaptive softmax head: its loss by hand, its scores and predictions, its settings."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from seqlab.data.vocab import Vocab
from seqlab.errors import SettingError
from seqlab.models import NetConfig, RecurrentNet
from seqlab.models.adaptive import default_cutoffs
from seqlab.module import SeqModule

IGNORE = -100


def _net(**settings) -> RecurrentNet:
    """Five words, most frequent first: a shortlist of 2, clusters {2, 3} and {4}."""
    torch.manual_seed(0)
    config = dict(head="adaptive", cutoffs=[2, 4], div_value=2.0, hidden_size=4)
    return RecurrentNet(NetConfig(5, 5, by_count=True, **(config | settings))).eval()


def _by_hand(net: RecurrentNet, x: torch.Tensor, target: int) -> float:
    """-log p(target | x), written out: the head's softmax over the 2 shortlist words and the
    2 clusters, then the softmax within the target's cluster."""
    softmax = net.head.softmax
    head = softmax.head.weight @ x + softmax.head.bias  # (4,): words 0, 1; clusters 0, 1
    log_head = head - math.log(sum(math.exp(z) for z in head.tolist()))
    if target < 2:
        return -log_head[target].item()
    cluster, first = (0, 2) if target < 4 else (1, 4)
    down, up = softmax.tail[cluster]  # (F/2^(c+1), F) then (words of the cluster, that)
    tail = up.weight @ (down.weight @ x)
    log_tail = tail - math.log(sum(math.exp(z) for z in tail.tolist()))
    return -(log_head[2 + cluster] + log_tail[target - first]).item()


def test_the_loss_is_the_mean_of_the_hand_computed_nll_over_the_scored_targets():
    net = _net()
    tokens = torch.tensor([[0, 1, 2, 3, 4, 0], [4, 3, 2, 1, 0, 1]])
    targets = torch.tensor([[1, 2, 3, 4, 0, IGNORE], [3, IGNORE, 1, 0, 4, 2]])

    with torch.no_grad():
        features, _ = net(tokens)  # (B, T, F): the adaptive head's input
        loss, predicted, scored = net.loss(features, targets, IGNORE)

    rows = features.reshape(-1, 4)[targets.reshape(-1) != IGNORE]
    wanted = [t for t in targets.reshape(-1).tolist() if t != IGNORE]
    hand = [_by_hand(net, x, t) for x, t in zip(rows, wanted, strict=True)]
    assert features.shape == (2, 6, 4)
    assert loss.item() == pytest.approx(sum(hand) / len(hand), rel=1e-6)
    assert scored.tolist() == wanted and predicted.shape == (10,)
    assert set(wanted) == {0, 1, 2, 3, 4}  # every part of the head is used


def test_the_scores_are_every_words_log_probability_and_agree_with_loss_and_predict():
    net = _net()
    tokens = torch.randint(0, 5, (3, 7))
    targets = torch.randint(0, 5, (3, 7))

    with torch.no_grad():
        features, _ = net(tokens)
        scores = net.scores(features)  # (B, T, V)
        loss, predicted, _ = net.loss(features, targets, IGNORE)

    assert scores.shape == (3, 7, 5)
    torch.testing.assert_close(scores.exp().sum(-1), torch.ones(3, 7))
    nll = F.cross_entropy(scores.reshape(-1, 5), targets.reshape(-1))  # perplexity's way
    assert loss.item() == pytest.approx(nll.item(), rel=1e-6)
    assert torch.equal(net.predict(features), scores.argmax(-1))
    best = scores.argmax(-1).reshape(-1)
    assert torch.equal(predicted == targets.reshape(-1), best == targets.reshape(-1))


def test_accuracy_counts_the_rows_whose_target_is_the_most_likely_word():
    """Without every word's log-probability: the rows the head alone decides and those whose
    clusters are scored agree with the full distribution's argmax."""
    torch.manual_seed(0)
    config = NetConfig(40, 40, by_count=True, head="adaptive", cutoffs=[3, 10, 25], div_value=2)
    head = RecurrentNet(config).head.eval()
    scales = torch.tensor([0.1, 3.0, 10.0]).repeat(1000)[:, None]  # flat to peaked
    features = torch.randn(3000, config.features) * scales
    log_p = head.log_prob(features)
    best = log_p.argmax(-1)
    # the most likely word as the target of a third of the rows: every kind of hit happens
    targets = torch.where(torch.rand(3000) < 0.3, best, torch.randint(0, 40, (3000,)))

    hits = head.hits(features, targets)

    assert torch.equal(hits, best == targets)
    cluster = (targets[:, None] >= torch.tensor([3, 10, 25])).sum(1)  # 0: the shortlist
    assert all((hits & (cluster == c)).any() for c in range(4))
    # the shortlist's best word, yet a cluster holds a more likely one
    beaten = (cluster == 0) & (log_p[:, :3].argmax(-1) == targets) & ~hits
    assert beaten.any()


def test_the_loss_trains_the_head_and_the_clusters():
    net = _net().train()
    features, _ = net(torch.tensor([[0, 1, 2, 3]]))
    loss, _, _ = net.loss(features, torch.tensor([[1, 2, 4, IGNORE]]), IGNORE)

    loss.backward()

    grads = {n: p.grad for n, p in net.head.named_parameters()}
    trained = [n for n, g in grads.items() if g is not None and g.abs().sum() > 0]
    # the cluster of one word (4) is certain of it once there: log softmax of one logit is 0
    assert trained == [n for n in grads if not n.startswith("softmax.tail.1.")]


def test_an_fc_heads_loss_is_cross_entropy_as_it_always_was():
    torch.manual_seed(0)
    net = RecurrentNet(NetConfig(5, 5, hidden_size=4))
    scores, _ = net(torch.randint(0, 5, (2, 6)))
    targets = torch.tensor([[1, 2, 3, 4, 0, IGNORE], [3, IGNORE, 1, 0, 4, 2]])

    loss, judged, scored = net.loss(scores, targets, IGNORE)

    flat = scores.reshape(-1, 5)
    assert torch.equal(loss, F.cross_entropy(flat, targets.reshape(-1), ignore_index=IGNORE))
    assert torch.equal(judged, flat) and torch.equal(scored, targets.reshape(-1))
    assert net.scores(scores) is scores


def test_init_range_draws_every_weight_of_the_adaptive_head_and_zeroes_its_bias():
    net = _net(init_range=0.01)

    for name, parameter in net.head.named_parameters():
        if name.endswith("bias"):
            assert not parameter.any()
        else:
            assert parameter.abs().max() <= 0.01


def test_default_cutoffs_follow_the_vocabulary_size_and_are_recorded():
    assert default_cutoffs(33_278) == [2079, 8319]
    assert default_cutoffs(20) == [1, 5] and default_cutoffs(5) == [1] and default_cutoffs(2) == [1]
    words = [f"w{i}" for i in range(40)]
    vocab = Vocab(words, level="word", by_count=True).to_dict()

    module = SeqModule(vocab, words, "next_token", head="adaptive")

    assert module.hparams["cutoffs"] == [2, 10]  # a checkpoint rebuilds the same head
    assert module.net.head.softmax.cutoffs == [2, 10, 40]


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"cutoffs": [2, 2]}, "cutoffs=[2, 2] is invalid: expected increasing whole numbers"),
        ({"cutoffs": [3, 2]}, "cutoffs=[3, 2] is invalid: expected increasing"),
        ({"cutoffs": [0, 2]}, "cutoffs=[0, 2] is invalid: expected increasing"),
        ({"cutoffs": [2, 5]}, "each > 0 and < the vocabulary's 5 tokens (most frequent first)"),
        ({"cutoffs": []}, "cutoffs=[] is invalid: expected increasing"),
        ({"div_value": 0.0}, "div_value=0.0 is invalid: expected a number > 0"),
        (
            {"cutoffs": [1, 2, 3], "hidden_size": 8, "div_value": 4.0},
            "div_value=4.0 is invalid: with hidden_size x directions = 8, cluster 3's "
            "projection would be 8 // 4^3 = 0 wide",
        ),
    ],
)
def test_bad_adaptive_settings_are_one_line(settings, message):
    with pytest.raises(SettingError) as error:
        _net(**settings)

    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_adaptive_head_is_refused_where_the_order_or_the_task_does_not_fit():
    with pytest.raises(SettingError, match="this vocabulary is not ordered most frequent first"):
        NetConfig(5, 5, head="adaptive")
    with pytest.raises(SettingError, match="needs a next-token model"):
        NetConfig(5, 2, many_to_one=True, by_count=True, head="adaptive")
    with pytest.raises(SettingError, match=r"cutoffs=\[2\] is invalid: applies to head=adaptive"):
        NetConfig(5, 5, cutoffs=[2])
    with pytest.raises(SettingError, match="tie_weights=True is invalid: needs head=fc"):
        NetConfig(5, 5, by_count=True, head="adaptive", encoding="embedding", tie_weights=True)


def test_a_vocabulary_ordered_by_count_says_so_in_its_record_only():
    counted = Vocab(["the", "a", "cat"], level="word", by_count=True)
    sorted_ = Vocab(["the", "a", "cat"], level="word")

    assert Vocab.from_dict(counted.to_dict()).by_count
    assert "by_count" not in sorted_.to_dict()  # every other vocabulary's record as it was
    assert counted == sorted_  # the same tokens in the same order
    with pytest.raises(ValueError, match="by_count is 'yes', not true or false"):
        Vocab.from_dict(counted.to_dict() | {"by_count": "yes"})
