"""What every seqlab DataModule tells the model: the task, the vocabulary, the classes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import pytorch_lightning as pl
import torch

from seqlab.tasks import CLASSIFY, NEXT_TOKEN, TASKS

__all__ = ["CLASSIFY", "IGNORE_INDEX", "NEXT_TOKEN", "TASKS", "Batch", "Sample", "SeqDataModule"]

IGNORE_INDEX = -100  # a target with this value is not scored (cross_entropy's default)


class Batch(NamedTuple):
    inputs: torch.Tensor  # (B, T) token ids, in the vocabulary's compact dtype
    targets: torch.Tensor  # (B, T) next-token ids (IGNORE_INDEX: not scored), or (B,) classes
    lengths: torch.Tensor | None = None  # (B,) real lengths when ``inputs`` is padded


@dataclass(frozen=True)
class Sample:
    """A lesson example whose prediction is shown every validation epoch."""

    text: str  # the model's input, as a user reads it
    target: str  # the expected output: the shifted string, or the class name


class SeqDataModule(pl.LightningDataModule):
    """Base for seqlab's DataModules.

    Subclasses read and check their data in ``__init__`` (so a bad setting fails before any
    training) and set the facts the model is built from: ``task``, ``vocab``, ``class_names``,
    ``samples`` and ``sample_window``.
    """

    task: str
    class_names: list[str]
    samples: list[Sample]
    # next-token models trained on windows predict a long sample window by window
    sample_window: int | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)
