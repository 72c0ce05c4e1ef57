"""The epoch means the module logs: weighted by the targets each batch scores."""

from __future__ import annotations

import math

import torch

from seqlab.module import WeightedMean


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
