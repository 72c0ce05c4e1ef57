"""Language modelling on a folder of train / valid / test text files (WikiText-2, PTB, your own).

Word level follows those corpora's convention (word_language_model's ``Corpus``): tokens split on
whitespace, ``<eos>`` at the end of every line, the vocabulary from the training split only.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from seqlab.data.base import (
    NEXT_TOKEN,
    Batch,
    ResumableLoader,
    Sample,
    SeqDataModule,
    already_collated,
    fingerprint,
)
from seqlab.data.streams import check_streams, stream_loader
from seqlab.data.text import (
    RandomWindows,
    StepSeeds,
    Windows,
    WindowStarts,
    gather_windows,
    read_text,
)
from seqlab.data.vocab import EOS, UNK, Vocab
from seqlab.errors import SettingError, check_at_least, check_choice, check_positive

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
# the names the public corpora give their splits: {split} is train, valid or test
PATTERNS = ("{split}.txt", "ptb.{split}.txt", "wiki.{split}.tokens", "{split}.tokens")
LEVELS = ("word", "char")
UNKNOWN = ("error", "unk")
BATCHINGS = ("stream", "windows")
SAMPLE_TOKENS = {"word": 30, "char": 200}  # of the sample predicted every validation


def split_files(directory: str) -> dict[str, Path]:
    """The split files in ``directory`` (each also found gzip-compressed, ``train.txt.gz``): a
    missing train or valid file, or two files for one split, is a ``SettingError``."""
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise SettingError("dir", directory, "no such directory")
    found: dict[str, Path] = {}
    for split in SPLITS:
        names = [p.format(split=split) for p in PATTERNS]
        matches = [root / n for name in names for n in (name, f"{name}.gz") if (root / n).is_file()]
        if len(matches) > 1:
            both = " and ".join(m.name for m in matches)
            raise SettingError("dir", directory, f"holds {both}: which is the {split} split?")
        if matches:
            found[split] = matches[0]
        elif split != "test":
            looked = ", ".join(names)
            raise SettingError("dir", directory, f"no {split} file: looked for {looked} (or .gz)")
    return found


def words(text: str) -> Iterator[str]:
    """The tokens of ``text``: each line's whitespace-separated words, then ``<eos>``."""
    lines = text.split("\n")  # only "\n" ends a line (str.splitlines also splits on \x1c ...)
    if lines[-1] == "":  # the file's final newline ends its last line; it starts none
        lines.pop()
    for line in lines:
        yield from line.split()
        yield EOS


def word_vocab(train: str, unknown: str) -> Vocab:
    """The training split's words, most frequent first (ties: first seen first).

    A corpus that writes ``<unk>`` keeps it as a word like any other; with ``unknown=unk`` a
    corpus without one gets it, last, for the words of valid and test it does not have.
    """
    counts = Counter(words(train))
    tokens = sorted(counts, key=lambda word: -counts[word])  # stable: ties keep first-seen order
    if unknown == "unk" and UNK not in counts:
        tokens.append(UNK)
    return Vocab(tokens, level="word", by_count=True)


class CorpusDataModule(SeqDataModule):
    """Next-token prediction on the train / valid / test files of ``dir``.

    ``batching="stream"`` (stateful truncated BPTT, see :mod:`seqlab.data.streams`): the
    training split is cut into ``batch_size`` contiguous streams and read ``seq_len`` tokens
    at a time, the model's state carried from batch to batch; valid and test the same with
    ``eval_batch_size`` streams, every token scored once. ``batching="windows"``: random
    windows of ``seq_len`` for training (``steps_per_epoch`` a pass), back-to-back windows for
    evaluation, the state reset every window.
    """

    task = NEXT_TOKEN

    def __init__(
        self,
        dir: str,
        level: str = "word",
        unknown: str = "error",
        batching: str = "stream",
        seq_len: int = 35,
        batch_size: int = 20,
        eval_batch_size: int = 10,
        seq_len_jitter: float = 0.0,
        steps_per_epoch: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_choice("level", level, LEVELS)
        check_choice("unknown", unknown, UNKNOWN)
        check_choice("batching", batching, BATCHINGS)
        check_positive("seq_len", seq_len)
        check_positive("batch_size", batch_size)
        check_positive("eval_batch_size", eval_batch_size)
        check_at_least("seq_len_jitter", seq_len_jitter, 0)
        if seq_len_jitter and batching != "stream":
            raise SettingError("seq_len_jitter", seq_len_jitter, "applies to batching=stream")
        if steps_per_epoch is not None:
            check_positive("steps_per_epoch", steps_per_epoch)
        self.level, self.batching, self.seq_len = level, batching, seq_len
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.seq_len_jitter, self.num_workers = seq_len_jitter, 0
        self.collate = already_collated

        files = split_files(dir)
        texts = {split: self._read(dir, file) for split, file in files.items()}
        if level == "word":
            self.vocab = word_vocab(texts["train"], unknown)
        else:
            self.vocab = Vocab.from_texts(
                [texts["train"]], specials=[UNK] if unknown == "unk" else []
            )
        self.class_names = list(self.vocab.tokens)
        ids = {
            split: self._encode(dir, files[split], text, unknown) for split, text in texts.items()
        }
        self.splits = {"train": ids["train"], "val": ids["valid"], "test": ids.get("test")}
        counts = ", ".join(f"{files[s].name} {len(i):,}" for s, i in ids.items())
        log.info(
            "data.dir=%s: %s %ss, vocabulary %s",
            dir,
            counts,
            self.vocab.unit,
            f"{len(self.vocab):,}",
        )

        sizes = {"train": ("batch_size", batch_size), "val": ("eval_batch_size", eval_batch_size)}
        sizes["test"] = sizes["val"]
        if batching == "stream":
            present = {s: len(i) for s, i in self.splits.items() if i is not None}
            check_streams(present, sizes, seq_len)
            self.sample_window = None  # a stream model reads the sample as one sequence
        else:
            self._windows(steps_per_epoch)
            self.sample_window = seq_len
        shown = self.vocab.decode(self.splits["val"][: SAMPLE_TOKENS[level] + 1])
        cut = shown.split(" ") if level == "word" else list(shown)
        join = " " if level == "word" else ""
        self.samples = [Sample(join.join(cut[:-1]), join.join(cut[1:]))]

    @property
    def has_test(self) -> bool:
        return self.splits["test"] is not None

    def _read(self, directory: str, file: Path) -> str:
        text = read_text(str(file), "dir")
        self.data_files[str(file)] = fingerprint(file)
        if not text.strip():
            raise SettingError("dir", directory, f"{file.name} holds no text")
        return text

    def _encode(self, directory: str, file: Path, text: str, unknown: str) -> torch.Tensor:
        if self.level == "char":
            policy = "unk" if unknown == "unk" else "error"
            try:
                return self.vocab.encode(text, unknown=policy)
            except ValueError:
                missing = self.vocab.unknown_tokens(text)
                unseen = f"character {missing[0]!r}"
                raise SettingError("dir", directory, self._unseen(file, unseen)) from None
        index = self.vocab.index
        ids = np.fromiter((index.get(w, -1) for w in words(text)), dtype=np.int64)
        if (ids < 0).any():
            if unknown == "unk":
                ids[ids < 0] = index[UNK]
            else:
                first = next(w for w in words(text) if w not in index)
                raise SettingError("dir", directory, self._unseen(file, f"word {first!r}"))
        return torch.from_numpy(ids).to(self.vocab.dtype)

    @staticmethod
    def _unseen(file: Path, what: str) -> str:
        return (
            f"{file.name} has the {what}, which the training split does not: "
            "data.unknown=unk reads such tokens as <unk>"
        )

    def _windows(self, steps_per_epoch: int | None) -> None:
        # one tensor for all splits: a window is a position in it, gathered on the batch's device
        parts = [i for i in self.splits.values() if i is not None]
        self.corpus = torch.cat(parts)
        starts = np.cumsum([0, *map(len, parts)])
        train, val, test = self.splits["train"], self.splits["val"], self.splits["test"]
        self.steps_per_epoch = steps_per_epoch or max(
            len(train) // (self.batch_size * self.seq_len), 1
        )
        self.train_set = RandomWindows(train, self.seq_len, self.batch_size, 0)
        self.val_set = Windows(val, self.seq_len, int(starts[1]), self.seq_len, score_once=True)
        if test is not None:
            self.test_set = Windows(
                test, self.seq_len, int(starts[2]), self.seq_len, score_once=True
            )
        self._corpus_on: dict[torch.device, torch.Tensor] = {}

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Batch:
        if isinstance(batch, WindowStarts):
            return gather_windows(self.corpus, self._corpus_on, batch, self.seq_len)
        return batch

    def _streams(self, split: str, streams: int, jitter: float = 0.0) -> DataLoader:
        # seeded by the run's seed: seed_everything ran before this module was built
        ids, seed = self.splits[split], torch.initial_seed()
        return stream_loader(ids, streams, self.seq_len, self.trainer, jitter, seed, split)

    def train_dataloader(self) -> DataLoader:
        if self.batching == "stream":
            return self._streams("train", self.batch_size, self.seq_len_jitter)
        sampler = StepSeeds(self.steps_per_epoch, seed=torch.initial_seed())
        return ResumableLoader(self.train_set, batch_size=None, sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        if self.batching == "stream":
            return self._streams("val", self.eval_batch_size)
        return super().val_dataloader()

    def test_dataloader(self) -> DataLoader:
        if self.splits["test"] is None:
            raise ValueError(f"{self.hparams.dir} has no test split")
        if self.batching == "stream":
            return self._streams("test", self.eval_batch_size)
        return super().test_dataloader()
