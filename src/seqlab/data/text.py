"""Next-character prediction over a string or a text file, in windows of ``seq_len``."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from seqlab.data.base import IGNORE_INDEX, NEXT_TOKEN, Batch, Sample, SeqDataModule
from seqlab.data.vocab import Vocab
from seqlab.errors import SettingError, check_positive

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


class TextDataModule(SeqDataModule):
    """Windows of ``seq_len`` characters over ``text``, or over the file at ``path``.

    ``seq_len=None`` makes the whole text one sequence: input ``text[:-1]``, target ``text[1:]``
    (the hihello lesson). Training uses every window (stride 1). A lesson string has no
    held-out part, so validation runs on the same windows; a file is split contiguously, the
    last ``val_fraction`` held out. Either way validation scores each character once (see
    :class:`Windows`).
    """

    task = NEXT_TOKEN

    def __init__(
        self,
        text: str | None = None,
        path: str | None = None,
        seq_len: int | None = None,
        batch_size: int = 32,
        val_fraction: float = 0.1,
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
        check_positive("batch_size", batch_size)
        self.batch_size, self.num_workers = batch_size, num_workers

        if path is None:
            train_text = val_text = text
        else:
            if not 0 < val_fraction < 1:
                raise SettingError("val_fraction", val_fraction, "expected 0 < val_fraction < 1")
            split = len(text) - max(int(len(text) * val_fraction), 1)
            train_text, val_text = text[:split], text[split:]

        self.seq_len = len(train_text) - 1 if seq_len is None else seq_len
        shortest = min(len(train_text), len(val_text))
        if not 1 <= self.seq_len < shortest:
            part = "text" if path is None else "shorter split of the file"
            raise SettingError("seq_len", seq_len, f"expected 1 <= seq_len < {shortest} ({part})")

        self.vocab = Vocab.from_texts([text])
        self.class_names = list(self.vocab.tokens)
        self.train_set = Windows(self.vocab.encode(train_text), self.seq_len)
        if path is None:  # the lesson's way: every window, scored as one stitched prediction
            self.val_set = Windows(self.train_set.ids, self.seq_len, score_once=True)
        else:  # a held-out corpus: back-to-back windows, every character scored once
            val_ids = self.vocab.encode(val_text)
            self.val_set = Windows(val_ids, self.seq_len, stride=self.seq_len, score_once=True)
        shown = val_text[: SAMPLE_CHARS + 1]
        self.samples = [Sample(shown[:-1], shown[1:])]
        self.sample_window = self.seq_len
