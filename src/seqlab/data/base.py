"""What every seqlab DataModule tells the model: the task, the vocabulary, the classes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from seqlab.errors import SettingError, check_positive
from seqlab.tasks import CLASSIFY, NEXT_TOKEN, TASKS

__all__ = [
    "CLASSIFY",
    "IGNORE_INDEX",
    "NEXT_TOKEN",
    "TASKS",
    "Batch",
    "EpochSeeded",
    "EpochShuffle",
    "ResumableLoader",
    "Sample",
    "SeqDataModule",
    "already_collated",
    "check_loading",
    "fingerprint",
]

IGNORE_INDEX = -100  # a target with this value is not scored (cross_entropy's default)


class Batch(NamedTuple):
    inputs: torch.Tensor  # (B, T) token ids, in the vocabulary's compact dtype
    targets: torch.Tensor  # (B, T) next-token ids (IGNORE_INDEX: not scored), or (B,) classes
    lengths: torch.Tensor | None = None  # (B,) real lengths when ``inputs`` is padded
    # each row continues the previous batch's row (streams): start from its final state
    carry_state: bool = False
    lr_scale: float = 1.0  # this step's learning rate, relative to the configured one


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

    BLOCK = 1 << 16  # indices turned into Python ints at a time

    def permutation(self) -> torch.Tensor:
        """(size,) this epoch's order, in the smallest index type: 4 bytes an index up to 2**31
        (a Python list would cost about 47 bytes each: 2.6 GB for a 50 MB corpus at stride 1)."""
        dtype = torch.int32 if self.size < 2**31 else torch.int64
        return torch.randperm(self.size, generator=self.generator(), dtype=dtype)

    def __iter__(self) -> Iterator[int]:
        for block in self.permutation().split(self.BLOCK):
            yield from block.tolist()


class ResumableLoader(DataLoader):
    """A DataLoader that picks up in the middle of an epoch where a checkpoint left it.

    Lightning keeps a training loader's ``state_dict`` in every checkpoint: here, how many
    batches of the current epoch were served. On resume the epoch's order is drawn again (it
    depends only on the seed and the epoch) and the served batches are skipped; the random
    state is put back afterwards, so the skipped batches change nothing that follows.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._served, self._resume_at = 0, 0

    def __iter__(self) -> Iterator[Any]:
        skip, self._resume_at = self._resume_at, 0
        state = torch.get_rng_state()  # making the iterator and the skipped batches draw from it
        batches = super().__iter__()
        for _ in range(skip):
            next(batches, None)
        if skip:
            torch.set_rng_state(state)
        self._served = skip
        for batch in batches:
            self._served += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"served": self._served}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        served = state.get("served", 0)
        if type(served) is not int or served <= 0:
            return
        try:
            within = served < len(self)
        except TypeError:  # an epoch of no fixed length (a jittered stream) has no len()
            within = True
        if within:
            self._resume_at = served


def check_loading(batch_size: int, num_workers: int) -> None:
    """Settings every DataModule's loaders share."""
    check_positive("batch_size", batch_size)
    if num_workers < 0:
        raise SettingError("num_workers", num_workers, "expected 0 (load in this process) or more")


def fingerprint(path: str | Path) -> dict[str, Any]:
    """The size and sha256 of a data file, recorded in checkpoints: eval.py names a file that
    changed since training instead of reporting other numbers."""
    digest = hashlib.sha256()
    with Path(path).expanduser().open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return {"size": Path(path).expanduser().stat().st_size, "sha256": digest.hexdigest()}


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

    def __init__(self) -> None:
        super().__init__()
        # data file -> size and sha256 (see fingerprint), for the files this module read
        self.data_files: dict[str, dict[str, Any]] = {}

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_test(self) -> bool:
        """Whether there is a test split for ``test_dataloader``."""
        return self.test_set is not None

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
        return ResumableLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=self.collate,
        )
