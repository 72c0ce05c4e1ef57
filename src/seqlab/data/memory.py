"""Long-range memory: name the first symbol of a sequence after ``distance`` distractors."""

from __future__ import annotations

import string

import torch
from torch.utils.data import Dataset

from seqlab.data.base import CLASSIFY, Batch, Sample, SeqDataModule, already_collated
from seqlab.data.vocab import Vocab
from seqlab.errors import SettingError, check_seed

# one alphabet for the symbol and the distractors: only its place marks the symbol to recall, so
# a distractor cannot be told apart and tuned out. With a separate alphabet a plain RNN learns to
# zero the distractors' input weights and latch the symbol in a fixed point, and solves distance
# 100: the task would no longer measure memory carried through the steps.
SYMBOLS = string.ascii_uppercase
NUM_SAMPLES = 4  # validation sequences shown as lesson samples each epoch


class RecallSequences(Dataset):
    """(N, T) token ids and (N,) targets; a batch is one gather (see :meth:`__getitems__`)."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.inputs, self.targets = inputs, targets

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> Batch:
        return Batch(self.inputs[index], self.targets[index])

    def __getitems__(self, indices: list[int]) -> Batch:
        # the DataLoader asks for a whole batch at once: one gather instead of B items + stack
        index = torch.as_tensor(indices)
        return Batch(self.inputs[index], self.targets[index])


class MemoryDataModule(SeqDataModule):
    """Sequences of ``distance + 1`` symbols drawn uniformly from ``num_symbols`` (A, B, ...);
    the label is the first. The ``distance`` after it are distractors from the same alphabet.

    Many-to-one: the network reads the whole sequence and must still hold its first step, so
    chance accuracy is 1 / num_symbols. Generated in memory from ``seed`` alone (the run's seed
    does not change the data): train, then validation, from one generator; a few validation
    sequences are the lesson samples.
    """

    task = CLASSIFY

    def __init__(
        self,
        num_symbols: int = 4,
        distance: int = 20,
        train_size: int = 2000,
        val_size: int = 500,
        batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if not 2 <= num_symbols <= len(SYMBOLS):
            raise SettingError("num_symbols", num_symbols, f"expected 2 to {len(SYMBOLS)}")
        sizes = {
            "distance": distance,
            "train_size": train_size,
            "val_size": val_size,
            "batch_size": batch_size,
        }
        for name, value in sizes.items():
            if not (isinstance(value, int) and value >= 1):
                raise SettingError(name, value, "expected a whole number >= 1")
        check_seed("seed", seed)
        self.batch_size = batch_size

        self.class_names = list(SYMBOLS[:num_symbols])
        # token ids are the class indices: a sequence's label is its first id
        self.vocab = Vocab(self.class_names)
        generator = torch.Generator().manual_seed(seed)

        def draw(size: int) -> RecallSequences:
            inputs = torch.randint(num_symbols, (size, distance + 1), generator=generator)
            return RecallSequences(inputs.to(self.vocab.dtype), inputs[:, 0].clone())

        self.train_set, self.val_set = draw(train_size), draw(val_size)
        self.collate = already_collated
        shown = self.val_set.inputs[:NUM_SAMPLES]
        self.samples = [Sample(self.vocab.decode(ids), self.vocab.decode(ids[:1])) for ids in shown]
