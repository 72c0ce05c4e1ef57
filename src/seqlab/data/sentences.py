"""Labelled sentences read from TSV or CSV files: many-to-one classification of real text."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Sampler

from seqlab.data.base import (
    CLASSIFY,
    Batch,
    EpochShuffle,
    ResumableLoader,
    Sample,
    SeqDataModule,
    check_loading,
    fingerprint,
)
from seqlab.data.labelled import LabelledSequences, PadCollate
from seqlab.data.text import read_bytes
from seqlab.data.vocab import LEVELS, PAD, UNK, Vocab
from seqlab.errors import SettingError, check_choice, check_seed

# the files a folder may hold, by split: the first name found is used
SPLIT_FILES = {"train": ("train",), "val": ("dev", "val"), "test": ("test",)}
DELIMITERS = {".tsv": "\t", ".csv": ","}
COMPRESSED = ".gz"  # train.tsv.gz reads as train.tsv (gzip is told by the bytes, see read_bytes)
SAMPLES = 4  # dev sentences whose predicted label is shown every epoch
SAMPLE_TOKENS = {"word": 30, "char": 150}  # a longer sample is cut: shown (and predicted) shorter

Fail = Callable[[str], SettingError]  # the SettingError of the setting that named the file

# a sentence is one CSV field: allow any length (the csv module stops at 131,072 characters)
csv.field_size_limit(2**31 - 1)


@dataclass
class Rows:
    """One split as read from its file: each row's text, label and line number."""

    name: str  # the file's name, as errors show it
    file: Path
    texts: list[str]
    labels: list[str]
    lines: list[int]

    def subset(self, indices: list[int]) -> Rows:
        return Rows(
            self.name,
            self.file,
            [self.texts[i] for i in indices],
            [self.labels[i] for i in indices],
            [self.lines[i] for i in indices],
        )


class LengthBuckets(Sampler[list[int]]):
    """Batches of sentences of about the same length, in a new order every epoch.

    Sentences are sorted by length, ties in :class:`EpochShuffle`'s order for the epoch, cut
    into batches, and the batches shuffled: little padding, and the order depends on the seed
    and the epoch only, so a resumed run sees the same batches. Lightning calls ``set_epoch``
    on ``self.sampler``.
    """

    def __init__(self, lengths: torch.Tensor, batch_size: int, seed: int) -> None:
        self.lengths, self.batch_size = lengths, batch_size
        self.sampler = EpochShuffle(len(lengths), seed)

    def __iter__(self) -> Iterator[list[int]]:
        shuffled = self.sampler.permutation().long()
        by_length = shuffled[torch.argsort(self.lengths[shuffled], stable=True)]
        batches = by_length.split(self.batch_size)
        generator = self.sampler.generator()
        for i in torch.randperm(len(batches), generator=generator).tolist():
            yield batches[i].tolist()

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)


class TokenDropout:
    """Pads a training batch, then reads each real token as ``<unk>`` with probability ``p``.

    The model cannot lean on any one word, and ``<unk>`` learns to stand for a word it has not
    seen, as dev and test words outside the vocabulary are read. Drawn from torch's generator,
    which a resumed run restores (as for the model's dropout).
    """

    def __init__(self, collate: PadCollate, p: float, unk_index: int) -> None:
        self.collate, self.p, self.unk_index = collate, p, unk_index

    def __call__(self, items: list[tuple[torch.Tensor, int]]) -> Batch:
        batch = self.collate(items)
        real = batch.inputs != self.collate.pad_index  # (B, T)
        drop = real & (torch.rand(batch.inputs.shape) < self.p)
        return batch._replace(inputs=batch.inputs.masked_fill(drop, self.unk_index))


class SentencesDataModule(SeqDataModule):
    """One label per sentence, from a folder of split files or from one file split here.

    ``dir`` holds ``train``, ``dev`` (or ``val``) and optionally ``test`` files, each ``.tsv``
    or ``.csv`` with a header row naming ``text_column`` and ``label_column``. ``path`` is one
    such file instead, whose ``val_fraction`` of rows (drawn with ``split_seed``) is held out.
    Tokens are words (whitespace-separated) or characters; the vocabulary and the class names
    (sorted) come from the training split only, and words it lacks read as ``<unk>``.
    ``token_dropout`` and ``bucket`` change the training batches only.
    """

    task = CLASSIFY

    def __init__(
        self,
        dir: str | None = None,
        path: str | None = None,
        text_column: str = "sentence",
        label_column: str = "label",
        level: str = "word",
        lowercase: bool = False,
        min_freq: int = 1,
        max_size: int | None = None,
        token_dropout: float = 0.0,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        bucket: bool = False,
        batch_size: int = 32,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_choice("level", level, LEVELS)
        if lowercase and level != "word":
            raise SettingError("lowercase", lowercase, f"applies to level=word only, not {level}")
        if min_freq < 1:
            raise SettingError("min_freq", min_freq, "expected a whole number >= 1")
        if max_size is not None and max_size <= 2:
            raise SettingError("max_size", max_size, "expected null or > 2 (<pad> and <unk> count)")
        if not 0 <= token_dropout < 1:
            raise SettingError("token_dropout", token_dropout, "expected 0 <= token_dropout < 1")
        check_loading(batch_size, num_workers)
        check_seed("split_seed", split_seed)
        if text_column == label_column:
            reason = "the text and the label must be two columns (label_column is the same)"
            raise SettingError("text_column", text_column, reason)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.bucket, self.token_dropout = bucket, token_dropout
        columns = (text_column, label_column)

        if dir is None and path is None:
            reason = "give dir=FOLDER (train, dev and test files) or path=FILE (one file)"
            raise SettingError("dir", dir, reason)
        if dir is not None and path is not None:
            raise SettingError("path", path, f"give dir or path, not both (dir={dir!r})")
        if dir is not None:
            fail: Fail = partial(SettingError, "dir", dir)
            train, val, test = _read_folder(Path(dir).expanduser(), columns, fail)
        else:
            fail = partial(SettingError, "path", path)
            train, val = _split_file(
                Path(path).expanduser(), columns, val_fraction, split_seed, fail
            )
            test = None
        for rows in (train, val, test):
            if rows is not None:
                self.data_files[str(rows.file)] = fingerprint(rows.file)

        self.vocab = Vocab.from_texts(
            train.texts,
            specials=[PAD, UNK],  # <pad> = 0: packing drops it; <unk> = 1: words train lacks
            level=level,
            lowercase=lowercase,
            min_count=min_freq,
            max_size=max_size,
        )
        self.class_names = sorted(set(train.labels))
        if len(self.class_names) < 2:
            reason = f"{train.name} has one class only ({self.class_names[0]!r}): nothing to learn"
            raise fail(reason)
        self.train_set = self._encode(train, fail)
        self.val_set = self._encode(val, fail)
        self.test_set = None if test is None else self._encode(test, fail)
        self.train_lengths = torch.tensor([len(ids) for ids in self.train_set.sequences])
        self.collate = PadCollate(self.vocab.pad_index)
        self.samples = self._samples(self.val_set)

    def _encode(self, rows: Rows, fail: Fail) -> LabelledSequences:
        """Every sentence as ids, once: batches only gather and pad them."""
        classes = {name: i for i, name in enumerate(self.class_names)}
        for label, line in zip(rows.labels, rows.lines, strict=True):
            if label not in classes:
                known = ", ".join(self.class_names)
                raise fail(f"{rows.name} line {line}: label {label!r} is not in train ({known})")
        sequences = [self.vocab.encode(text, unknown="unk") for text in rows.texts]
        return LabelledSequences(sequences, [classes[label] for label in rows.labels])

    def _samples(self, dev: LabelledSequences) -> list[Sample]:
        # sentences spread over dev, with every token known where there are such: the text
        # shown is what the model reads
        unk = self.vocab.index[UNK]
        known = [i for i, ids in enumerate(dev.sequences) if not (ids == unk).any()]
        candidates = known or list(range(len(dev)))
        picked = candidates[:: max(len(candidates) // SAMPLES, 1)][:SAMPLES]
        samples = []
        for i in picked:
            ids = dev.sequences[i][: SAMPLE_TOKENS[self.vocab.level]]
            if self.vocab.level == "char":
                ids = ids[ids != unk]  # "<unk>" is five characters, not one
            samples.append(Sample(self.vocab.decode(ids), self.class_names[dev.targets[i]]))
        return samples

    def train_dataloader(self) -> DataLoader:
        seed = torch.initial_seed()  # the run's seed: seed_everything ran before this was built
        if self.bucket:
            batches = {"batch_sampler": LengthBuckets(self.train_lengths, self.batch_size, seed)}
        else:
            sampler = EpochShuffle(len(self.train_set), seed)
            batches = {"batch_size": self.batch_size, "sampler": sampler}
        collate = self.collate
        if self.token_dropout:
            collate = TokenDropout(self.collate, self.token_dropout, self.vocab.index[UNK])
        return ResumableLoader(
            self.train_set, num_workers=self.num_workers, collate_fn=collate, **batches
        )


def _read_folder(
    folder: Path, columns: tuple[str, str], fail: Fail
) -> tuple[Rows, Rows, Rows | None]:
    if not folder.is_dir():
        raise fail("no such folder")
    files = {split: _find(folder, stems, fail) for split, stems in SPLIT_FILES.items()}
    if files["train"] is None:
        raise fail("no train.tsv or train.csv in it")
    if files["val"] is None:
        raise fail("no dev or val file (.tsv or .csv) in it")
    train, val = _read(files["train"], columns, fail), _read(files["val"], columns, fail)
    return train, val, None if files["test"] is None else _read(files["test"], columns, fail)


def _find(folder: Path, stems: tuple[str, ...], fail: Fail) -> Path | None:
    names = [stem + ext + gz for stem in stems for ext in DELIMITERS for gz in ("", COMPRESSED)]
    found = [folder / name for name in names]
    found = [file for file in found if file.is_file()]
    if len(found) > 1:
        raise fail(f"{found[0].name} and {found[1].name} are the same split: keep one")
    return found[0] if found else None


def _split_file(
    file: Path, columns: tuple[str, str], val_fraction: float, seed: int, fail: Fail
) -> tuple[Rows, Rows]:
    if not 0 < val_fraction < 1:
        raise SettingError("val_fraction", val_fraction, "expected 0 < val_fraction < 1")
    if not file.is_file():
        raise fail("no such file")
    rows = _read(file, columns, fail)
    held_out = max(round(len(rows.texts) * val_fraction), 1)
    if held_out >= len(rows.texts):
        raise fail(f"{len(rows.texts)} rows: too few to hold out val_fraction={val_fraction}")
    order = torch.randperm(len(rows.texts), generator=torch.Generator().manual_seed(seed))
    val, train = order[:held_out].sort().values, order[held_out:].sort().values
    return rows.subset(train.tolist()), rows.subset(val.tolist())


def _read(file: Path, columns: tuple[str, str], fail: Fail) -> Rows:
    """The text and label columns of a .tsv or .csv file (or .tsv.gz, .csv.gz) with a header row."""
    delimiter = DELIMITERS.get(Path(file.name.lower().removesuffix(COMPRESSED)).suffix)
    if delimiter is None:
        raise fail(f"{file.name}: expected a .tsv or .csv file (or .tsv.gz, .csv.gz)")
    try:
        content = read_bytes(file).decode("utf-8")
    except UnicodeDecodeError as err:
        raise fail(f"{file.name} is not UTF-8 text (byte {err.start})") from None
    except ValueError as err:  # a damaged gzip file (UnicodeDecodeError is one too: first)
        raise fail(f"{file.name} is {err}") from None
    content = content.removeprefix("\ufeff")  # the byte-order mark a spreadsheet may write
    # a TSV has no quoting: a " in a sentence is a character like any other
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter, quoting=quoting)
    header = next(reader, [])
    text_column, label_column = columns
    for setting, column in (("text_column", text_column), ("label_column", label_column)):
        if column not in header:
            found = ", ".join(header) or "none"
            raise SettingError(setting, column, f"{file.name} has no such column (it has {found})")
    repeated = sorted({column for column in header if header.count(column) > 1})
    if repeated:
        raise fail(f"{file.name}: column {repeated[0]!r} appears more than once in the header")
    text_at, label_at = header.index(text_column), header.index(label_column)

    rows = Rows(file.name, file, [], [], [])
    for row in reader:
        if not row:
            continue  # a blank line
        if len(row) != len(header):
            reason = f"{len(row)} fields where the header has {len(header)}"
            raise fail(f"{file.name} line {reader.line_num}: {reason}")
        if not row[text_at].strip():
            raise fail(f"{file.name} line {reader.line_num}: no text in {text_column}")
        if not row[label_at].strip():
            raise fail(f"{file.name} line {reader.line_num}: no label in {label_column}")
        rows.texts.append(row[text_at])
        rows.labels.append(row[label_at].strip())
        rows.lines.append(reader.line_num)
    if not rows.texts:
        raise fail(f"{file.name} has a header but no rows")
    return rows
