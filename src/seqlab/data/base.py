"""What every seqlab DataModule tells the model: the task, the vocabulary, the classes."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from seqlab.tasks import CLASSIFY, NEXT_TOKEN, TASKS

__all__ = [
    "CLASSIFY",
    "IGNORE_INDEX",
    "NEXT_TOKEN",
    "TASKS",
    "Batch",
    "EpochSeeded",
    "EpochShuffle",
    "Sample",
    "SeqDataModule",
    "already_collated",
]

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


def already_collated(batch: Any) -> Any:
    """The DataLoader's ``collate_fn`` for a dataset whose ``__getitems__`` returns the whole
    batch at once (one gather instead of B items and a stack)."""
    return batch


class EpochSeeded(Sampler[int]):
    """A sampler whose order depends on the run's seed and the epoch number only.

    A run resumed from a checkpoint therefore sees the same batches as one that was never
    stopped. Lightning calls ``set_epoch`` before each epoch, as it does for DistributedSampler.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed + self.epoch)

    def __len__(self) -> int:
        return self.size


class EpochShuffle(EpochSeeded):
    """The dataset's indices in a new order every epoch."""

    def __iter__(self) -> Iterator[int]:
        return iter(torch.randperm(self.size, generator=self.generator()).tolist())


class SeqDataModule(pl.LightningDataModule):
    """Base for seqlab's DataModules.

    Subclasses read and check their data in ``__init__`` (so a bad setting fails before any
    training), call ``save_hyperparameters()`` (their arguments travel in the checkpoint), and
    set the facts the model is built from: ``task``, ``vocab``, ``class_names``, ``samples``
    and ``sample_window``, plus ``train_set``, ``val_set``, ``batch_size``, ``num_workers``
    and ``collate``.
    """

    task: str
    class_names: list[str]
    samples: list[Sample]
    # next-token models trained on windows predict a long sample window by window
    sample_window: int | None = None
    train_set: Dataset
    val_set: Dataset
    test_set: Dataset | None = None  # a held-out test split, for scripts/eval.py
    batch_size: int
    num_workers: int = 0
    collate: Callable[[Any], Batch]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def spec(self) -> dict[str, Any]:
        """How to build this DataModule again: its class and arguments, as plain data."""
        cls = type(self)
        return {"_target_": f"{cls.__module__}.{cls.__qualname__}", **self.hparams}

    def train_dataloader(self) -> DataLoader:
        assert isinstance(self.train_set, Sized)
        # seeded by the run's seed (seed_everything ran before this DataModule was built)
        sampler = EpochShuffle(len(self.train_set), seed=torch.initial_seed())
        return self._loader(self.train_set, sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, sampler=None)

    def test_dataloader(self) -> DataLoader:
        if self.test_set is None:
            raise ValueError(f"{type(self).__name__} has no test split")
        return self._loader(self.test_set, sampler=None)

    def _loader(self, dataset: Dataset, sampler: Sampler | None) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=self.collate,
        )
