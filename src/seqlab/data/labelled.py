"""Many-to-one classification of short texts given in the config (the sentiment lesson)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from seqlab.data.base import CLASSIFY, Batch, Sample, SeqDataModule, check_loading
from seqlab.data.vocab import PAD, Vocab
from seqlab.errors import SettingError


class LabelledSequences(Dataset):
    """Token-id sequences of different lengths with one class index each."""

    def __init__(self, sequences: list[torch.Tensor], targets: list[int]) -> None:
        self.sequences, self.targets = sequences, targets

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.sequences[index], self.targets[index]


class PadCollate:
    """Pads a batch to its longest sequence and keeps the real lengths for packing."""

    def __init__(self, pad_index: int) -> None:
        self.pad_index = pad_index

    def __call__(self, items: list[tuple[torch.Tensor, int]]) -> Batch:
        sequences, targets = zip(*items, strict=True)
        return Batch(
            inputs=pad_sequence(sequences, batch_first=True, padding_value=self.pad_index),
            targets=torch.tensor(targets),
            lengths=torch.tensor([len(s) for s in sequences]),
        )


class LabelledTextDataModule(SeqDataModule):
    """``texts[i]`` has label ``labels[i]``; characters are the tokens, ``<pad>`` is index 0.

    Class names are the distinct labels, sorted. With only the lesson's few texts there is no
    held-out data: validation runs on the training texts.
    """

    task = CLASSIFY

    def __init__(
        self,
        texts: Sequence[str],
        labels: Sequence[int | str],
        batch_size: int = 32,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        texts, labels = list(texts), [str(label) for label in labels]
        if not texts or any(not text for text in texts):
            raise SettingError("texts", texts, "expected a list of non-empty strings")
        if len(labels) != len(texts):
            raise SettingError("labels", labels, f"expected one label per text ({len(texts)})")
        if any(not label.strip() for label in labels):
            raise SettingError("labels", labels, "expected a non-empty label for every text")
        if len(set(labels)) < 2:
            raise SettingError("labels", labels, "expected two or more classes: nothing to learn")
        check_loading(batch_size, num_workers)
        self.batch_size, self.num_workers = batch_size, num_workers

        self.vocab = Vocab.from_texts(texts, specials=[PAD])
        self.class_names = sorted(set(labels))
        targets = [self.class_names.index(label) for label in labels]
        self.train_set = LabelledSequences([self.vocab.encode(t) for t in texts], targets)
        self.val_set = self.train_set
        self.collate = PadCollate(self.vocab.pad_index)
        self.samples = [Sample(text, label) for text, label in zip(texts, labels, strict=True)]
