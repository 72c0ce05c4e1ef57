"""Vocabulary of characters or words: deterministic, fast to encode, plain data in checkpoints."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

PAD = "<pad>"
UNK = "<unk>"
EOS = "<eos>"  # ends every line of a word-level corpus: a token the model predicts like a word
SPECIALS = (PAD, UNK)
LEVELS = ("char", "word")
UNKNOWN_POLICIES = ("error", "unk", "skip")
IDENTITY = ("tokens", "level", "lowercase")  # what two equal vocabularies share

_CHUNK = 1 << 22  # characters handled at a time: bounds the temporaries for a large corpus
_NUMPY_DTYPES = {torch.uint8: np.uint8, torch.int16: np.int16, torch.int32: np.int32}


class Vocab:
    """Tokens in a fixed order: special tokens first, then the characters (or words) sorted.

    ``level="char"`` reads text one code point at a time, encoded in one vectorised pass;
    ``level="word"`` splits on whitespace (lower-cased with ``lowercase=True``). ``by_count``
    says that the tokens are in another order, most frequent first (a word corpus's: what an
    adaptive softmax needs). ``to_dict()`` is all a checkpoint needs to rebuild it.
    """

    def __init__(
        self,
        tokens: Sequence[str],
        level: str = "char",
        lowercase: bool = False,
        by_count: bool = False,
    ) -> None:
        if level not in LEVELS:
            raise ValueError(f"level={level!r}: expected one of {', '.join(LEVELS)}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary has repeated tokens")
        self.tokens, self.level, self.lowercase = list(tokens), level, lowercase
        self.by_count = by_count
        self.index = {token: i for i, token in enumerate(self.tokens)}
        if level == "char":
            chars = sorted((ord(t), i) for i, t in enumerate(self.tokens) if t not in SPECIALS)
            # sorted code points and their ids: encoding is one searchsorted over the text
            self._codes = np.array([c for c, _ in chars], dtype=np.uint32)
            self._ids = np.array([i for _, i in chars], dtype=np.int64)

    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        specials: Sequence[str] = (),
        level: str = "char",
        lowercase: bool = False,
        min_count: int = 1,
        max_size: int | None = None,
    ) -> Vocab:
        """The tokens of ``texts`` seen at least ``min_count`` times, at most ``max_size`` in all
        (the most frequent kept; specials count), sorted after the specials."""
        counts = count_chars(texts) if level == "char" else _count_words(texts, lowercase)
        return cls.from_counts(counts, specials, level, lowercase, min_count, max_size)

    @classmethod
    def from_counts(
        cls,
        counts: Mapping[str, int],
        specials: Sequence[str] = (),
        level: str = "char",
        lowercase: bool = False,
        min_count: int = 1,
        max_size: int | None = None,
    ) -> Vocab:
        """:meth:`from_texts` from the texts' token counts (a corpus counted as it streams)."""
        kept = [token for token, n in counts.items() if n >= min_count and token not in specials]
        if max_size is not None:
            kept.sort(key=lambda token: (-counts[token], token))  # ties: a fixed order
            kept = kept[: max(max_size - len(specials), 0)]
        return cls([*specials, *sorted(kept)], level, lowercase)

    def to_dict(self) -> dict[str, Any]:
        data = {"tokens": self.tokens, "level": self.level, "lowercase": self.lowercase}
        return (data | {"by_count": True}) if self.by_count else data  # else as it always was

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocab:
        """The vocabulary ``to_dict`` wrote; anything else is a ValueError saying what is wrong
        (a checkpoint is a file anyone may have written)."""
        tokens = data.get("tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
            raise ValueError("its tokens are not a list of non-empty strings")
        level, lowercase = data.get("level", "char"), data.get("lowercase", False)
        by_count = data.get("by_count", False)
        for name, flag in (("lowercase", lowercase), ("by_count", by_count)):
            if type(flag) is not bool:
                raise ValueError(f"{name} is {flag!r}, not true or false")
        if level == "char" and any(len(t) != 1 for t in tokens if t not in SPECIALS):
            raise ValueError("a character vocabulary holds a token longer than one character")
        return cls(tokens, level, lowercase, by_count)

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        # the same tokens in the same order, read the same way; by_count only names that order
        mine, theirs = self.to_dict(), other.to_dict() if isinstance(other, Vocab) else None
        return theirs is not None and all(mine[k] == theirs[k] for k in IDENTITY)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} {self.level}s)"

    @property
    def pad_index(self) -> int | None:
        return self.index.get(PAD)

    @property
    def special_ids(self) -> list[int]:
        """Ids of ``<pad>`` and ``<unk>``: never part of generated text."""
        return [self.index[token] for token in SPECIALS if token in self.index]

    @property
    def dtype(self) -> torch.dtype:
        """The smallest integer dtype that holds every id: a corpus is stored in it."""
        if len(self) <= 256:
            return torch.uint8
        return torch.int16 if len(self) <= 32768 else torch.int32

    @property
    def np_dtype(self) -> np.dtype:
        """:attr:`dtype` as numpy's: the dtype of a token file (see ``data.cache``)."""
        return np.dtype(_NUMPY_DTYPES[self.dtype])

    @property
    def unit(self) -> str:
        """What a token is, in words a user reads: character or word."""
        return "character" if self.level == "char" else "word"

    def split(self, text: str) -> list[str]:
        """``text`` as tokens: its characters, or its whitespace-separated words."""
        return list(text) if self.level == "char" else _words(text, self.lowercase)

    def unknown_tokens(self, text: str) -> list[str]:
        """Tokens of ``text`` that are not in the vocabulary, sorted, each once."""
        return sorted(set(self.split(text)) - set(self.index))

    def encode(self, text: str, unknown: str = "error") -> torch.Tensor:
        """``text`` as a 1-D tensor of ids in :attr:`dtype`.

        ``unknown`` says what happens to tokens outside the vocabulary: ``error`` raises naming
        them, ``unk`` maps them to ``<unk>`` (which must be in the vocabulary), ``skip`` drops
        them. Characters are encoded in chunks, so a 100 MB text needs little more memory than
        its ids.
        """
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown={unknown!r}: expected one of {', '.join(UNKNOWN_POLICIES)}")
        if self.level == "word":
            return self._encode_words(text, unknown)
        chunks = [
            self._encode_chars(text[i : i + _CHUNK], unknown) for i in range(0, len(text), _CHUNK)
        ]
        if not chunks:
            return torch.zeros(0, dtype=self.dtype)
        return torch.from_numpy(np.concatenate(chunks))

    def _encode_chars(self, text: str, unknown: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        if len(self._codes) == 0:
            pos, known = np.zeros(len(codes), dtype=np.int64), np.zeros(len(codes), dtype=bool)
        else:
            pos = np.searchsorted(self._codes, codes).clip(max=len(self._codes) - 1)
            known = self._codes[pos] == codes
        ids = self._ids[pos] if len(self._ids) else pos
        return self._handle_unknown(ids, known, text, unknown).astype(_NUMPY_DTYPES[self.dtype])

    def _encode_words(self, text: str, unknown: str) -> torch.Tensor:
        words = self.split(text)
        ids = np.array([self.index.get(w, -1) for w in words], dtype=np.int64)
        ids = self._handle_unknown(ids, ids >= 0, text, unknown)
        return torch.from_numpy(ids.astype(_NUMPY_DTYPES[self.dtype]))

    def _handle_unknown(
        self, ids: np.ndarray, known: np.ndarray, text: str, unknown: str
    ) -> np.ndarray:
        if known.all():
            return ids
        if unknown == "skip":
            return ids[known]
        if unknown == "unk" and UNK in self.index:
            return np.where(known, ids, self.index[UNK])
        raise ValueError(f"not in the vocabulary: {self.unknown_tokens(text)}")

    def decode(self, ids: Iterable[int] | torch.Tensor) -> str:
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return ("" if self.level == "char" else " ").join(self.tokens[i] for i in ids)


def count_chars(texts: Iterable[str]) -> Counter[str]:
    # one bincount per chunk of code points: linear and vectorised, even for 100 MB
    totals = np.zeros(0, dtype=np.int64)
    for text in texts:
        for i in range(0, len(text), _CHUNK):
            codes = np.frombuffer(text[i : i + _CHUNK].encode("utf-32-le"), dtype=np.uint32)
            counts = np.bincount(codes)
            if len(counts) > len(totals):
                totals = np.pad(totals, (0, len(counts) - len(totals)))
            totals[: len(counts)] += counts
    return Counter({chr(code): int(totals[code]) for code in np.flatnonzero(totals)})


def _words(text: str, lowercase: bool) -> list[str]:
    return (text.lower() if lowercase else text).split()


def _count_words(texts: Iterable[str], lowercase: bool) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(_words(text, lowercase))
    return counts
