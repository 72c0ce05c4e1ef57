"""Next-character prediction over a string or a text file of any size, in windows of ``seq_len``."""

from __future__ import annotations

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
from seqlab.data.cache import Counts, TokenMap, cached_tokens, uses_cache
from seqlab.data.files import read_bytes as read_bytes  # importable from here, as before
from seqlab.data.files import read_text
from seqlab.data.streams import check_streams, stream_loader
from seqlab.data.vocab import UNK, Vocab, count_chars
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


def gather_windows(
    corpus: torch.Tensor,
    copies: dict[torch.device, torch.Tensor],
    refs: WindowStarts,
    seq_len: int,
    tokens: TokenMap | None = None,
) -> Batch:
    """The windows of ``seq_len`` at ``refs``, gathered from the copy of ``corpus`` on their
    device (made once, kept in ``copies``: e.g. 100 MB to the GPU). ``tokens``: the cached map
    that ``corpus`` is, copied without making all of it resident."""
    device = refs.starts.device
    if device not in copies:
        copies[device] = corpus.to(device) if tokens is None else tokens.to(device)
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

    def __init__(
        self, ids: torch.Tensor, seq_len: int, batch_size: int, steps: int, offset: int = 0
    ) -> None:
        self.ids, self.seq_len, self.batch_size, self.offset = ids, seq_len, batch_size, offset
        self.steps = steps

    def __len__(self) -> int:
        # the batches of an epoch: a SequentialSampler over it (Lightning's overfit_batches puts
        # one in) hands out seeds 0, 1, ..., the same batches every epoch
        return self.steps

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
    into it. With ``cache`` (null: for a file of ``AUTO_BYTES`` or more) that tensor is a token
    file in ``cache_dir``, encoded once, streaming, and mapped by later runs
    (:mod:`seqlab.data.cache`).
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
        cache: bool | None = None,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        # Lightning logs these beside the model's hparams and refuses a key with two values:
        # the model's `vocab` already shows the order, and spec() keeps it for a rebuild
        self.save_hyperparameters(ignore=["vocab"])
        self.collate = already_collated
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
        rare = min_char_count > 1 or max_vocab is not None  # only then is <unk> needed
        if max_vocab is not None and max_vocab < 2 + rare:
            raise SettingError("max_vocab", max_vocab, f"expected at least {2 + rare}")
        if path is not None:  # before a file of any size is read
            _check_fractions(val_fraction, test_fraction)
        self.batch_size, self.num_workers, self.sampling = batch_size, num_workers, sampling
        self.batching, self.eval_batch_size = batching, eval_batch_size
        self.seq_len_jitter = seq_len_jitter

        # the vocabulary from the characters' counts, checked (SettingErrors name the text)
        rules = {"min_char_count": min_char_count, "max_vocab": max_vocab, "vocab": vocab}
        self.tokens: TokenMap | None = None  # the cached token file (data.cache), if read so
        file = None if path is None else Path(path).expanduser()
        if file is not None and uses_cache(cache, cache_dir, [file]):
            self.tokens = cached_tokens(
                {path: file},
                "path",
                "char",
                rules,
                lambda counts: char_vocab(counts[0], "path", path, **rules),
                cache_dir,
            )
            self.vocab, ids = self.tokens.vocab, self.tokens.ids  # a view of the map
            self.data_files[path] = self.tokens.fingerprints[0]
        else:
            if path is None and cache:
                raise SettingError("cache", cache, "applies to a file (path), not to text")
            if path is not None:
                text = read_text(path)
                self.data_files[path] = fingerprint(path)
            if not text:
                raise SettingError("text", text, "expected a text of at least 2 characters")
            counts = Counts(count_chars([text]), len(text), has_text=True)
            name, value = ("text", text) if path is None else ("path", path)
            self.vocab = char_vocab(counts, name, value, **rules)
            ids = self.vocab.encode(text, unknown="unk")  # the whole text, once
        self.order = None if vocab is None else list(vocab)
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
            lengths = {s: len(ids) for s, ids in self.splits.items() if ids is not None}
            sizes = {
                "train": ("batch_size", batch_size),
                "val": ("eval_batch_size", eval_batch_size),
            }
            check_streams(lengths, sizes | {"test": sizes["val"]}, self.seq_len)

        at_train, at_val, at_test = starts
        if sampling == "random":
            self.steps_per_epoch = steps_per_epoch or max(
                len(train) // (batch_size * self.seq_len), 1
            )
            steps = self.steps_per_epoch
            self.train_set = RandomWindows(train, self.seq_len, batch_size, steps, at_train)
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
        return gather_windows(self.corpus, self._corpus_on, refs, self.seq_len, self.tokens)

    def on_after_batch_transfer(self, batch: WindowStarts | Batch, dataloader_idx: int) -> Batch:
        if self.tokens is not None:
            self.tokens.batch_read()
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


def char_vocab(
    counts: Counts,
    name: str,
    value: Any,
    min_char_count: int,
    max_vocab: int | None,
    vocab: list[str] | None,
) -> Vocab:
    """The vocabulary of a text from its characters' counts; a text of one character, or one
    whose vocabulary would be one token, is a ``SettingError`` naming ``name``."""
    if counts.total < 2:
        raise SettingError(name, value, "expected a text of at least 2 characters")
    rare = min_char_count > 1 or max_vocab is not None
    specials = [UNK] if rare else []
    found = Vocab.from_counts(counts.tokens, specials, min_count=min_char_count, max_size=max_vocab)
    if len(found) < 2:  # one class: nothing to predict, and accuracy is undefined
        only = ", ".join(map(repr, found.tokens))
        reason = f"its vocabulary is {only} only: next-character prediction needs two or more"
        if rare:
            reason += f" (min_char_count={min_char_count} makes the rest <unk>)"
        raise SettingError(name, value if name == "path" else value[:40], reason)
    return found if vocab is None else Vocab(_check_order(vocab, found.tokens))


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not 0 < val_fraction < 1:
        raise SettingError("val_fraction", val_fraction, "expected 0 < val_fraction < 1")
    if not 0 <= test_fraction < 1 - val_fraction:
        limit = f"{1 - val_fraction:g}"
        raise SettingError("test_fraction", test_fraction, f"expected 0 <= test_fraction < {limit}")


def _split(
    ids: torch.Tensor, val_fraction: float, test_fraction: float
) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None], tuple[int, int, int]]:
    """Contiguous train / val / test views of ``ids`` and where each starts: no window crosses
    from one into another."""
    n = len(ids)
    n_test = int(n * test_fraction)
    n_val = max(int(n * val_fraction), 1)
    train_end, val_end = n - n_val - n_test, n - n_test
    splits = ids[:train_end], ids[train_end:val_end], ids[val_end:] if n_test else None
    return splits, (0, train_end, val_end)
