"""Next-character prediction over a string or a text file of any size, in windows of ``seq_len``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from seqlab.data.base import IGNORE_INDEX, NEXT_TOKEN, Batch, Sample, SeqDataModule
from seqlab.data.vocab import UNK, Vocab
from seqlab.errors import SettingError, check_choice, check_positive

SAMPLE_CHARS = 200  # characters of the shown sample: enough to read, cheap to predict each epoch


class Windows(Dataset):
    """Windows of ``seq_len`` inputs and the ``seq_len`` targets one step ahead, every ``stride``.

    Windows are views into the one encoded tensor (``unfold`` copies nothing); only a batch
    gathered from them is new memory, so memory grows with the text, not with text x seq_len.

    ``score_once`` is for validation: overlapping windows would score a character once per
    window that holds it, mostly with little context. Instead each window scores only the
    targets no earlier window scored (its last ``stride`` steps; the first window all of
    them), so every character counts once, with as much context as a window gives: the
    lesson's stitched prediction of the whole text.
    """

    def __init__(
        self, ids: torch.Tensor, seq_len: int, stride: int = 1, score_once: bool = False
    ) -> None:
        self.ids, self.seq_len, self.stride, self.score_once = ids, seq_len, stride, score_once
        self.windows = ids.unfold(0, seq_len + 1, stride)  # (N, T + 1) view of ids

    def __len__(self) -> int:
        return self.windows.size(0)

    def __getitem__(self, index: int) -> Batch:
        batch = self.__getitems__([index])
        return Batch(batch.inputs[0], batch.targets[0])

    def __getitems__(self, indices: list[int]) -> Batch:
        # the DataLoader asks for a whole batch at once: one gather instead of B slices + stack
        index = torch.as_tensor(indices)
        windows = self.windows[index]  # (B, T + 1)
        inputs, targets = windows[:, :-1], windows[:, 1:]
        if self.score_once:
            seen = torch.arange(self.seq_len) < self.seq_len - self.stride  # (T,)
            targets = targets.long().masked_fill((index > 0)[:, None] & seen, IGNORE_INDEX)
        return Batch(inputs, targets)


def _as_batch(batch: Batch) -> Batch:
    return batch  # ``Windows.__getitems__`` already returns the collated batch


def read_text(path: str) -> str:
    """The UTF-8 text of ``path``; a missing, empty or non-UTF-8 file is a ``SettingError``."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise SettingError("path", path, "no such file")
    raw = file.read_bytes()
    if not raw:
        raise SettingError("path", path, "the file is empty")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SettingError("path", path, f"not UTF-8 text (byte {err.start})") from None


class RandomWindows(Dataset):
    """Whole batches of windows at random offsets, drawn anew for every step (nanoGPT's way).

    The DataLoader hands each step a seed (:class:`StepSeeds`); the batch is the windows at
    ``batch_size`` offsets drawn from it, gathered from the one encoded tensor.
    """

    def __init__(self, ids: torch.Tensor, seq_len: int, batch_size: int) -> None:
        self.ids, self.batch_size = ids, batch_size
        self.windows = ids.unfold(0, seq_len + 1, 1)  # (N, T + 1) view of ids

    def __getitem__(self, seed: int) -> Batch:
        generator = torch.Generator().manual_seed(seed)
        offsets = torch.randint(len(self.windows), (self.batch_size,), generator=generator)
        windows = self.windows[offsets]  # (B, T + 1)
        return Batch(windows[:, :-1], windows[:, 1:])


class StepSeeds(Sampler[int]):
    """One seed per step of an epoch, from the run's seed and the epoch alone: a resumed run
    draws the same batches as one that never stopped. Lightning calls ``set_epoch``."""

    def __init__(self, steps: int, seed: int) -> None:
        self.steps, self.seed, self.epoch = steps, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randint(2**62, (self.steps,), generator=generator).tolist())

    def __len__(self) -> int:
        return self.steps


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
    frequent, become ``<unk>``. The text is encoded once, in one vectorised pass, into a tensor
    of the smallest integer type that holds the vocabulary; windows are views into it.
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
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.collate = _as_batch
        if path is not None:
            text = read_text(path)
        if not text or len(text) < 2:
            name, value = ("text", text) if path is None else ("path", path)
            raise SettingError(name, value, "expected a text of at least 2 characters")
        check_choice("sampling", sampling, SAMPLINGS)
        for name, value in [("batch_size", batch_size), ("stride", stride)]:
            check_positive(name, value)
        if steps_per_epoch is not None:
            check_positive("steps_per_epoch", steps_per_epoch)
        self.batch_size, self.num_workers, self.sampling = batch_size, num_workers, sampling

        rare = min_char_count > 1 or max_vocab is not None  # only then is <unk> needed
        if max_vocab is not None and max_vocab < 2 + rare:
            raise SettingError("max_vocab", max_vocab, f"expected at least {2 + rare}")
        self.vocab = Vocab.from_texts(
            [text], specials=[UNK] if rare else [], min_count=min_char_count, max_size=max_vocab
        )
        ids = self.vocab.encode(text, unknown="unk")  # the whole text, once
        self.class_names = list(self.vocab.tokens)

        if path is None:
            train, val, test = ids, ids, None
        else:
            train, val, test = _split(ids, val_fraction, test_fraction)
        self.seq_len = len(train) - 1 if seq_len is None else seq_len
        parts = {"text" if path is None else "train split": train, "val split": val}
        if test is not None:
            parts["test split"] = test
        shortest, part = min((len(p), name) for name, p in parts.items())
        if not 1 <= self.seq_len < shortest:
            raise SettingError("seq_len", seq_len, f"expected 1 <= seq_len < {shortest} ({part})")

        if sampling == "random":
            self.train_set = RandomWindows(train, self.seq_len, batch_size)
            self.steps_per_epoch = steps_per_epoch or max(
                len(train) // (batch_size * self.seq_len), 1
            )
        else:
            self.train_set = Windows(train, self.seq_len, stride=stride)
        if path is None:  # the lesson's way: every window, scored as one stitched prediction
            self.val_set = Windows(train, self.seq_len, score_once=True)
        else:
            self.val_set = Windows(val, self.seq_len, stride=self.seq_len, score_once=True)
        if test is not None:
            self.test_set = Windows(test, self.seq_len, stride=self.seq_len, score_once=True)

        shown = self.vocab.decode(val[: SAMPLE_CHARS + 1])
        self.samples = [Sample(shown[:-1], shown[1:])]
        self.sample_window = self.seq_len

    def train_dataloader(self) -> DataLoader:
        if self.sampling == "stride":
            return super().train_dataloader()
        # each item is a whole batch (batch_size=None): one gather per step
        sampler = StepSeeds(self.steps_per_epoch, seed=torch.initial_seed())
        return DataLoader(
            self.train_set, batch_size=None, sampler=sampler, num_workers=self.num_workers
        )


SAMPLINGS = ("stride", "random")


def _split(
    ids: torch.Tensor, val_fraction: float, test_fraction: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Contiguous train / val / test views of ``ids``: no window crosses from one to another."""
    if not 0 < val_fraction < 1:
        raise SettingError("val_fraction", val_fraction, "expected 0 < val_fraction < 1")
    if not 0 <= test_fraction < 1 - val_fraction:
        limit = f"{1 - val_fraction:g}"
        raise SettingError("test_fraction", test_fraction, f"expected 0 <= test_fraction < {limit}")
    n = len(ids)
    n_test = int(n * test_fraction)
    n_val = max(int(n * val_fraction), 1)
    train_end, val_end = n - n_val - n_test, n - n_test
    return ids[:train_end], ids[train_end:val_end], ids[val_end:] if n_test else None
