"""The epoch means the module logs: weighted by the targets each batch scores."""

from __future__ import annotations

import math

import torch
from torchmetrics.classification import MulticlassAccuracy

from seqlab.data.base import IGNORE_INDEX
from seqlab.module import Accuracy, WeightedMean


def test_the_mean_loss_weighs_each_batch_by_its_scored_targets():
    mean = WeightedMean(nan_strategy="disable")
    mean.update(torch.tensor(1.0), torch.tensor(1))  # a batch that scores one target
    mean.update(torch.tensor(4.0), torch.tensor(3))  # and one that scores three

    assert mean.compute().item() == 13 / 4  # not (1 + 4) / 2


def test_a_nan_loss_stays_nan():
    mean = WeightedMean(nan_strategy="disable")
    mean.update(torch.tensor(float("nan")), torch.tensor(2))
    mean.update(torch.tensor(1.0), torch.tensor(2))

    assert math.isnan(mean.compute().item())


def test_the_accuracy_counts_as_torchmetrics_does_with_unscored_targets():
    torch.manual_seed(0)
    ours = Accuracy(7)
    theirs = MulticlassAccuracy(7, average="micro", ignore_index=IGNORE_INDEX)
    for _ in range(3):
        scores, targets = torch.randn(50, 7), torch.randint(7, (50,))
        targets[torch.rand(50) < 0.3] = IGNORE_INDEX  # unscored: padding, a window's context
        ours.update(scores, targets)
        theirs.update(scores, targets)
    ids, targets = torch.tensor([1, 2, 3]), torch.tensor([1, IGNORE_INDEX, 0])  # ids, as adaptive
    ours.update(ids, targets)
    theirs.update(ids, targets)

    for state in ("tp", "fp", "tn", "fn"):  # a checkpoint's running accuracy reads the same
        assert getattr(ours, state).item() == getattr(theirs, state).item(), state
    assert ours.compute().item() == theirs.compute().item()
    assert 0.05 < ours.compute().item() < 0.35  # random scores: about 1 in 7


def test_a_mean_over_more_than_2_24_tokens_counts_every_token():
    # float32 sums stop taking single tokens past 2**24: the 1,000 batches below would vanish
    mean = WeightedMean(nan_strategy="disable")
    mean.update(torch.tensor(1.0), torch.tensor(2**24))
    for _ in range(1000):
        mean.update(torch.tensor(3.0), torch.tensor(1))

    assert mean.compute().item() == (2**24 + 3000) / (2**24 + 1000)


def test_loss_sums_stay_float64_when_the_module_is_cast_to_bf16_or_half():
    # Lightning's bf16-true and 16-true cast the whole module with .to(dtype): bf16 sums would
    # count 256 tokens exactly and then drop whole batches
    mean = WeightedMean(nan_strategy="disable")
    mean.update(torch.tensor(1.0), torch.tensor(2**24))
    mean.update(torch.tensor(3.0), torch.tensor(1))
    mean.to(torch.bfloat16)  # sums already made are not rounded on the way
    mean.half()

    assert mean.compute().item() == (2**24 + 3) / (2**24 + 1)

    mean.reset()  # the defaults a new epoch starts from were kept in float64 too
    mean.update(torch.tensor(1.0, dtype=torch.bfloat16), torch.tensor(2**24))
    mean.update(torch.tensor(3.0, dtype=torch.bfloat16), torch.tensor(1))

    assert mean.compute().item() == (2**24 + 3) / (2**24 + 1)
