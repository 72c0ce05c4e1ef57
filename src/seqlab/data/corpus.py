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
from seqlab.data.cache import Counts, TokenMap, cached_tokens, uses_cache
from seqlab.data.files import read_text
from seqlab.data.streams import check_streams, stream_loader
from seqlab.data.text import RandomWindows, StepSeeds, Windows, WindowStarts, gather_windows
from seqlab.data.vocab import EOS, UNK, Vocab, count_chars
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


def word_vocab(counts: Counter[str], unknown: str) -> Vocab:
    """The training split's words (``counts``: ``Counter(words(train))``), most frequent first
    (ties: first seen first).

    A corpus that writes ``<unk>`` keeps it as a word like any other; with ``unknown=unk`` a
    corpus without one gets it, last, for the words of valid and test it does not have.
    """
    tokens = sorted(counts, key=lambda word: -counts[word])  # stable: ties keep first-seen order
    if unknown == "unk" and UNK not in counts:
        tokens.append(UNK)
    return Vocab(tokens, level="word", by_count=True)


def corpus_vocab(
    directory: str, files: dict[str, Path], counts: list[Counts], level: str, unknown: str
) -> Vocab:
    """The vocabulary of the training split, from every split's counts: a split without text,
    or with a token the training split lacks (``unknown=error``), is a ``SettingError``."""
    for file, counted in zip(files.values(), counts, strict=True):
        if not counted.has_text:
            raise SettingError("dir", directory, f"{file.name} holds no text")
    train = counts[0].tokens
    if level == "word":
        vocab = word_vocab(train, unknown)
    else:
        vocab = Vocab.from_counts(train, specials=[UNK] if unknown == "unk" else [])
    for file, counted in zip(list(files.values())[1:], counts[1:], strict=True):
        unseen = [token for token in counted.tokens if token not in vocab.index]
        if unseen and unknown == "error":
            # the first such word of the file; of characters, the first in code point order
            what = f"word {unseen[0]!r}" if level == "word" else f"character {min(unseen)!r}"
            raise SettingError("dir", directory, _unseen(file, what))
    return vocab


def _unseen(file: Path, what: str) -> str:
    return (
        f"{file.name} has the {what}, which the training split does not: "
        "data.unknown=unk reads such tokens as <unk>"
    )


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
        cache: bool | None = None,
        cache_dir: str | None = None,
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
        self.tokens: TokenMap | None = None  # the cached token file (data.cache), if read so
        if uses_cache(cache, cache_dir, list(files.values())):
            self.tokens = cached_tokens(
                {str(file): file for file in files.values()},
                "dir",
                level,
                {"unknown": unknown},
                lambda counts: corpus_vocab(dir, files, counts, level, unknown),
                cache_dir,
            )
            self.vocab, corpus, lengths = self.tokens.vocab, self.tokens.ids, self.tokens.lengths
            self.data_files.update(
                zip(map(str, files.values()), self.tokens.fingerprints, strict=True)
            )
        else:
            texts = [self._read(dir, file) for file in files.values()]
            counted = [_counts(text, level) for text in texts]
            self.vocab = corpus_vocab(dir, files, counted, level, unknown)
            ids = [self._encode(text, unknown) for text in texts]
            corpus, lengths = torch.cat(ids), [len(i) for i in ids]
        self.class_names = list(self.vocab.tokens)
        # one tensor for all splits, each a view of it: a window is a position in it
        self.corpus, self.starts = corpus, np.cumsum([0, *lengths]).tolist()
        views = [corpus[a:b] for a, b in zip(self.starts, self.starts[1:], strict=False)]
        named = dict(zip(files, views, strict=True))
        self.splits = {"train": named["train"], "val": named["valid"], "test": named.get("test")}
        counts = ", ".join(f"{files[s].name} {len(i):,}" for s, i in named.items())
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
        # each file checked as it is read: a later file's error waits for an earlier one's
        text = read_text(str(file), "dir")
        self.data_files[str(file)] = fingerprint(file)
        if not text.strip():
            raise SettingError("dir", directory, f"{file.name} holds no text")
        return text

    def _encode(self, text: str, unknown: str) -> torch.Tensor:
        # every token is known, or unknown=unk: corpus_vocab refused the rest
        if self.level == "char":
            return self.vocab.encode(text, unknown="unk" if unknown == "unk" else "error")
        index = self.vocab.index
        ids = np.fromiter((index.get(w, -1) for w in words(text)), dtype=np.int64)
        ids[ids < 0] = index.get(UNK, -1)
        return torch.from_numpy(ids).to(self.vocab.dtype)

    def _windows(self, steps_per_epoch: int | None) -> None:
        # a window is a position in the corpus, gathered on the batch's device
        starts = self.starts
        train, val, test = self.splits["train"], self.splits["val"], self.splits["test"]
        self.steps_per_epoch = steps_per_epoch or max(
            len(train) // (self.batch_size * self.seq_len), 1
        )
        steps = self.steps_per_epoch
        self.train_set = RandomWindows(train, self.seq_len, self.batch_size, steps, 0)
        self.val_set = Windows(val, self.seq_len, int(starts[1]), self.seq_len, score_once=True)
        if test is not None:
            self.test_set = Windows(
                test, self.seq_len, int(starts[2]), self.seq_len, score_once=True
            )
        self._corpus_on: dict[torch.device, torch.Tensor] = {}

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Batch:
        if self.tokens is not None:
            self.tokens.batch_read()
        if isinstance(batch, WindowStarts):
            corpus, copies = self.corpus, self._corpus_on
            return gather_windows(corpus, copies, batch, self.seq_len, self.tokens)
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


def _counts(text: str, level: str) -> Counts:
    """A split's tokens counted in memory, as the cache counts them streaming."""
    if level == "char":
        return Counts(count_chars([text]), len(text), bool(text.strip()))
    tokens = Counter(words(text))
    return Counts(tokens, sum(tokens.values()), bool(text.strip()))
