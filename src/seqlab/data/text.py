"""Next-character prediction over a string or a text file of any size, in windows of ``seq_len``."""

from __future__ import annotations

import gzip
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset

from seqlab.data.base import (
    IGNORE_INDEX,
    NEXT_TOKEN,
    Batch,
    EpochSeeded,
    ResumableLoader,
    Sample,
    SeqDataModule,
    already_collated,
    check_loading,
    fingerprint,
)
from seqlab.data.streams import check_streams, stream_loader
from seqlab.data.vocab import UNK, Vocab
from seqlab.errors import SettingError, check_at_least, check_choice, check_positive

SAMPLE_CHARS = 200  # characters of the shown sample: enough to read, cheap to predict each epoch


class WindowStarts(NamedTuple):
    """A batch of windows as positions in the corpus; the corpus on the batch's device turns them
    into tokens (:meth:`TextDataModule.gather`), so slicing happens there, batched."""

    starts: torch.Tensor  # (B,) position of each window's first character in the corpus
    scored_from: torch.Tensor  # (B,) first step whose target is scored (0: every step)


class Windows(Dataset):
    """Windows of ``seq_len`` inputs and the ``seq_len`` targets one step ahead, every ``stride``.

    ``ids`` is a split of the encoded corpus that begins at ``offset``. An item is only where
    its window starts: no window is ever copied until a batch of them is gathered, so memory
    grows with the text, not with text x seq_len.

    ``score_once`` is for validation: overlapping windows would score a character once per
    window that holds it, mostly with little context. Instead each window scores only the
    targets no earlier window scored (its last ``stride`` steps; the first window all of
    them), so every character counts once, with as much context as a window gives: the
    lesson's stitched prediction of the whole text.
    """

    def __init__(
        self,
        ids: torch.Tensor,
        seq_len: int,
        offset: int = 0,
        stride: int = 1,
        score_once: bool = False,
    ) -> None:
        self.ids, self.seq_len, self.offset = ids, seq_len, offset
        self.stride, self.score_once = stride, score_once

    def __len__(self) -> int:
        return (len(self.ids) - self.seq_len - 1) // self.stride + 1

    def __getitem__(self, index: int) -> WindowStarts:
        return self.__getitems__([index])

    def __getitems__(self, indices: list[int]) -> WindowStarts:
        # the DataLoader asks for a whole batch at once
        index = torch.as_tensor(indices)
        scored_from = torch.zeros_like(index)
        if self.score_once:
            scored_from[index > 0] = self.seq_len - self.stride
        return WindowStarts(self.offset + index * self.stride, scored_from)


GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(file: Path) -> bytes:
    """The bytes of ``file``, decompressed where it is gzip; a damaged gzip file raises
    ``ValueError`` saying so in one line."""
    raw = file.read_bytes()
    # gzip is told by its first two bytes, not by the name, so a renamed file still reads; no
    # UTF-8 text can start with them (0x8b never begins a UTF-8 character), so no text is taken
    # for gzip
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:  # a bad header or CRC, cut short, bad data
        raise ValueError(f"a corrupt or truncated gzip file ({err})") from None


def read_text(path: str, key: str = "path") -> str:
    """The UTF-8 text of ``path``, plain or gzip-compressed; a missing, empty, damaged or
    non-UTF-8 file is a ``SettingError`` naming the setting ``key``."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise SettingError(key, path, "no such file")
    try:
        raw = read_bytes(file)
    except ValueError as err:
        raise SettingError(key, path, str(err)) from None
    if not raw:
        raise SettingError(key, path, "the file is empty")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SettingError(key, path, f"not UTF-8 text (byte {err.start})") from None


def gather_windows(
    corpus: torch.Tensor,
    copies: dict[torch.device, torch.Tensor],
    refs: WindowStarts,
    seq_len: int,
) -> Batch:
    """The windows of ``seq_len`` at ``refs``, gathered from the copy of ``corpus`` on their
    device (made once, kept in ``copies``: e.g. 100 MB to the GPU)."""
    device = refs.starts.device
    if device not in copies:
        copies[device] = corpus.to(device)
    steps = torch.arange(seq_len + 1, device=device)
    windows = copies[device][refs.starts[:, None] + steps]  # (B, T + 1)
    unscored = steps[:-1] < refs.scored_from[:, None]  # (B, T); no host sync on a GPU
    targets = windows[:, 1:].long().masked_fill(unscored, IGNORE_INDEX)
    return Batch(windows[:, :-1], targets)


class RandomWindows(Dataset):
    """Whole batches of windows at random offsets, drawn anew for every step (nanoGPT's way).

    The DataLoader hands each step a seed (:class:`StepSeeds`); the batch is ``batch_size``
    window starts drawn from it in the split of ``ids`` that begins at ``offset``.
    """

    def __init__(self, ids: torch.Tensor, seq_len: int, batch_size: int, offset: int = 0) -> None:
        self.ids, self.seq_len, self.batch_size, self.offset = ids, seq_len, batch_size, offset

    def __getitem__(self, seed: int) -> WindowStarts:
        generator = torch.Generator().manual_seed(seed)
        count = len(self.ids) - self.seq_len  # windows that fit in the split
        starts = torch.randint(count, (self.batch_size,), generator=generator)
        return WindowStarts(self.offset + starts, torch.zeros_like(starts))


class StepSeeds(EpochSeeded):
    """One seed per step of an epoch, for :class:`RandomWindows`."""

    def __iter__(self) -> Iterator[int]:
        return iter(torch.randint(2**62, (self.size,), generator=self.generator()).tolist())


class TextDataModule(SeqDataModule):
    """Next-character prediction over ``text``, or over the UTF-8 file at ``path``.

    Training batches are windows of ``seq_len`` characters, each target shifted by one:
    ``sampling="stride"`` takes every window starting ``stride`` characters apart, shuffled;
    ``sampling="random"`` draws ``batch_size`` random offsets per step, ``steps_per_epoch``
    steps an epoch (default: about one pass over the text). ``seq_len=None`` makes the whole
    text one sequence, input ``text[:-1]``, target ``text[1:]`` (the hihello lesson).

    A lesson string has no held-out part: validation scores its windows as one stitched
    prediction. A file is split contiguously into train, then ``val_fraction``, then
    ``test_fraction``; validation and test use fixed back-to-back windows, so their losses are
    comparable between runs. Either way every character is scored once (see :class:`Windows`).

    Characters seen fewer than ``min_char_count`` times, or beyond the ``max_vocab`` most
    frequent, become ``<unk>``. ``vocab`` fixes the token order (a lesson's one-hot columns):
    every character kept, and ``<unk>`` where it is used, exactly once; by default specials
    come first, then the characters sorted. The text is encoded once, in one vectorised pass,
    into a tensor of the smallest integer type that holds the vocabulary; windows are views
    into it.
    """

    task = NEXT_TOKEN

    def __init__(
        self,
        text: str | None = None,
        path: str | None = None,
        seq_len: int | None = None,
        batch_size: int = 32,
        sampling: str = "stride",
        stride: int = 1,
        steps_per_epoch: int | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.0,
        min_char_count: int = 1,
        max_vocab: int | None = None,
        vocab: list[str] | None = None,
        num_workers: int = 0,
        batching: str = "windows",
        eval_batch_size: int = 10,
        seq_len_jitter: float = 0.0,
    ) -> None:
        super().__init__()
        # Lightning logs these beside the model's hparams and refuses a key with two values:
        # the model's `vocab` already shows the order, and spec() keeps it for a rebuild
        self.save_hyperparameters(ignore=["vocab"])
        self.collate = already_collated
        if path is not None:
            text = read_text(path)
            self.data_files[path] = fingerprint(path)
        name, value = ("text", text) if path is None else ("path", path)
        if not text or len(text) < 2:
            raise SettingError(name, value, "expected a text of at least 2 characters")
        check_choice("sampling", sampling, SAMPLINGS)
        check_choice("batching", batching, BATCHINGS)
        check_positive("eval_batch_size", eval_batch_size)
        check_at_least("seq_len_jitter", seq_len_jitter, 0)
        if seq_len_jitter and batching != "stream":
            raise SettingError("seq_len_jitter", seq_len_jitter, "applies to batching=stream")
        if batching == "stream" and num_workers:
            reason = "stream batches are slices of one tensor, read in this process: use 0"
            raise SettingError("num_workers", num_workers, reason)
        check_loading(batch_size, num_workers)
        check_positive("stride", stride)
        if steps_per_epoch is not None:
            check_positive("steps_per_epoch", steps_per_epoch)
        if min_char_count < 1:
            raise SettingError("min_char_count", min_char_count, "expected a whole number >= 1")
        self.batch_size, self.num_workers, self.sampling = batch_size, num_workers, sampling
        self.batching, self.eval_batch_size = batching, eval_batch_size
        self.seq_len_jitter = seq_len_jitter

        rare = min_char_count > 1 or max_vocab is not None  # only then is <unk> needed
        if max_vocab is not None and max_vocab < 2 + rare:
            raise SettingError("max_vocab", max_vocab, f"expected at least {2 + rare}")
        self.vocab = Vocab.from_texts(
            [text], specials=[UNK] if rare else [], min_count=min_char_count, max_size=max_vocab
        )
        if len(self.vocab) < 2:  # one class: nothing to predict, and accuracy is undefined
            only = ", ".join(map(repr, self.vocab.tokens))
            reason = f"its vocabulary is {only} only: next-character prediction needs two or more"
            if rare:
                reason += f" (min_char_count={min_char_count} makes the rest <unk>)"
            raise SettingError(name, value if path else text[:40], reason)
        self.order = None if vocab is None else _check_order(vocab, self.vocab.tokens)
        if self.order is not None:
            self.vocab = Vocab(self.order)
        ids = self.vocab.encode(text, unknown="unk")  # the whole text, once
        self.class_names = list(self.vocab.tokens)

        self.corpus = ids
        if path is None:
            (train, val, test), starts = (ids, ids, None), (0, 0, 0)
        else:
            (train, val, test), starts = _split(ids, val_fraction, test_fraction)
        self.seq_len = len(train) - 1 if seq_len is None else seq_len
        parts = {"text" if path is None else "train split": train, "val split": val}
        if test is not None:
            parts["test split"] = test
        shortest, part = min((len(p), name) for name, p in parts.items())
        if not 1 <= self.seq_len < shortest:
            raise SettingError("seq_len", seq_len, f"expected 1 <= seq_len < {shortest} ({part})")

        self.splits = {"train": train, "val": val, "test": test}
        if batching == "stream":
            tokens = {s: len(ids) for s, ids in self.splits.items() if ids is not None}
            sizes = {
                "train": ("batch_size", batch_size),
                "val": ("eval_batch_size", eval_batch_size),
            }
            check_streams(tokens, sizes | {"test": sizes["val"]}, self.seq_len)

        at_train, at_val, at_test = starts
        if sampling == "random":
            self.train_set = RandomWindows(train, self.seq_len, batch_size, at_train)
            self.steps_per_epoch = steps_per_epoch or max(
                len(train) // (batch_size * self.seq_len), 1
            )
        else:
            self.train_set = Windows(train, self.seq_len, at_train, stride=stride)
        if path is None:  # the lesson's way: every window, scored as one stitched prediction
            self.val_set = Windows(train, self.seq_len, at_train, score_once=True)
        else:  # back-to-back windows: fixed, every character scored once
            self.val_set = Windows(val, self.seq_len, at_val, self.seq_len, score_once=True)
        if test is not None:
            self.test_set = Windows(test, self.seq_len, at_test, self.seq_len, score_once=True)
        self._corpus_on: dict[torch.device, torch.Tensor] = {}

        shown = self.vocab.decode(val[: SAMPLE_CHARS + 1])
        self.samples = [Sample(shown[:-1], shown[1:])]
        # a stream model reads the sample as one sequence, its state carried through it
        self.sample_window = None if batching == "stream" else self.seq_len

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "vocab": self.order}

    def gather(self, refs: WindowStarts) -> Batch:
        """The windows at ``refs``, gathered from a copy of the corpus on their device."""
        return gather_windows(self.corpus, self._corpus_on, refs, self.seq_len)

    def on_after_batch_transfer(self, batch: WindowStarts | Batch, dataloader_idx: int) -> Batch:
        return self.gather(batch) if isinstance(batch, WindowStarts) else batch

    def _streams(self, split: str, streams: int, jitter: float = 0.0) -> DataLoader:
        # seeded by the run's seed: seed_everything ran before this module was built
        ids, seed = self.splits[split], torch.initial_seed()
        return stream_loader(ids, streams, self.seq_len, self.trainer, jitter, seed, split)

    def val_dataloader(self) -> DataLoader:
        if self.batching == "stream":
            return self._streams("val", self.eval_batch_size)
        return super().val_dataloader()

    def test_dataloader(self) -> DataLoader:
        if self.batching == "stream" and self.test_set is not None:
            return self._streams("test", self.eval_batch_size)
        return super().test_dataloader()

    def train_dataloader(self) -> DataLoader:
        if self.batching == "stream":
            return self._streams("train", self.batch_size, self.seq_len_jitter)
        if self.sampling == "stride":
            return super().train_dataloader()
        # each item is a whole batch (batch_size=None): one gather per step
        sampler = StepSeeds(self.steps_per_epoch, seed=torch.initial_seed())
        return ResumableLoader(
            self.train_set, batch_size=None, sampler=sampler, num_workers=self.num_workers
        )


SAMPLINGS = ("stride", "random")
BATCHINGS = ("windows", "stream")


def _check_order(vocab: object, tokens: list[str]) -> list[str]:
    """``vocab``, checked to be an order of ``tokens`` (the text's characters, and ``<unk>``
    where it is used): a ``SettingError`` names what is missing, repeated or not a character."""
    if isinstance(vocab, str) or not isinstance(vocab, Sequence):
        raise SettingError("vocab", vocab, "expected a list of characters, e.g. [h, i, e, l, o]")
    for token in vocab:
        if not isinstance(token, str):  # YAML reads a bare 1 as a number
            raise SettingError("vocab", vocab, f"{token!r} is not a character: quote it, '{token}'")
        if len(token) != 1 and token != UNK:
            raise SettingError("vocab", vocab, f"{token!r} is not a single character")
    listed, kept = Counter(vocab), set(tokens)
    repeated = [t for t, n in listed.items() if n > 1]
    missing = [t for t in tokens if t not in listed]
    unused = [t for t in listed if t not in kept]
    if repeated:
        raise SettingError("vocab", vocab, f"lists {_listed(repeated)} more than once")
    if missing:
        every = f"every character of the text{f' and {UNK}' if UNK in kept else ''}"
        problem = f"misses {_listed(missing)}: list {every} exactly once"
        raise SettingError("vocab", vocab, problem)
    if UNK in unused:
        raise SettingError("vocab", vocab, f"{UNK!r} is used only with min_char_count or max_vocab")
    if unused:
        # with <unk> in use, a character of the text may also have been dropped as rare
        where = "kept from the text" if UNK in kept else "in the text"
        raise SettingError("vocab", vocab, f"lists {_listed(unused)}, not {where}")
    return list(vocab)


def _listed(tokens: list[str]) -> str:
    return ", ".join(map(repr, tokens))


def _split(
    ids: torch.Tensor, val_fraction: float, test_fraction: float
) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None], tuple[int, int, int]]:
    """Contiguous train / val / test views of ``ids`` and where each starts: no window crosses
    from one into another."""
    if not 0 < val_fraction < 1:
        raise SettingError("val_fraction", val_fraction, "expected 0 < val_fraction < 1")
    if not 0 <= test_fraction < 1 - val_fraction:
        limit = f"{1 - val_fraction:g}"
        raise SettingError("test_fraction", test_fraction, f"expected 0 <= test_fraction < {limit}")
    n = len(ids)
    n_test = int(n * test_fraction)
    n_val = max(int(n * val_fraction), 1)
    train_end, val_end = n - n_val - n_test, n - n_test
    splits = ids[:train_end], ids[train_end:val_end], ids[val_end:] if n_test else None
    return splits, (0, train_end, val_end)
