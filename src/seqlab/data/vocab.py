"""Character vocabulary: deterministic, vectorised encoding, plain data in checkpoints."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

PAD = "<pad>"
UNK = "<unk>"
UNKNOWN_POLICIES = ("error", "unk", "skip")

_CHUNK = 1 << 22  # characters encoded at a time: bounds the temporaries for a large corpus
_NUMPY_DTYPES = {torch.uint8: np.uint8, torch.int16: np.int16, torch.int32: np.int32}


class Vocab:
    """Tokens in a fixed order: special tokens first, then the characters sorted.

    Only ``tokens`` (a list of str) needs to be stored to rebuild it, so a checkpoint keeps it as
    plain data. Characters are single code points; specials (``<pad>``, ``<unk>``) never occur
    in text and are only produced by padding and by ``unknown="unk"``.
    """

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = list(tokens)
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError(f"vocabulary has repeated tokens: {self.tokens}")
        self.index = {tok: i for i, tok in enumerate(self.tokens)}
        chars = [(ord(tok), i) for i, tok in enumerate(self.tokens) if len(tok) == 1]
        chars.sort()
        # sorted code points and their ids: encoding is one searchsorted over the whole text
        self._codes = np.array([c for c, _ in chars], dtype=np.uint32)
        self._ids = np.array([i for _, i in chars], dtype=np.int64)

    @classmethod
    def from_texts(cls, texts: Iterable[str], specials: Sequence[str] = ()) -> Vocab:
        chars: set[str] = set()
        for text in texts:
            chars.update(text)
        return cls([*specials, *sorted(chars)])

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.tokens == other.tokens

    def __repr__(self) -> str:
        return f"Vocab({self.tokens!r})"

    @property
    def pad_index(self) -> int | None:
        return self.index.get(PAD)

    @property
    def special_ids(self) -> list[int]:
        """Ids of the special tokens (``<pad>``, ``<unk>``): never part of generated text."""
        return [i for i, token in enumerate(self.tokens) if len(token) > 1]

    @property
    def dtype(self) -> torch.dtype:
        """The smallest integer dtype that holds every id: a corpus is stored in it."""
        return (
            torch.uint8 if len(self) <= 256 else torch.int16 if len(self) <= 32768 else torch.int32
        )

    def unknown_chars(self, text: str) -> list[str]:
        """Characters of ``text`` that are not in the vocabulary, sorted, each once."""
        return sorted(set(text) - set(self.index))

    def encode(self, text: str, unknown: str = "error") -> torch.Tensor:
        """``text`` as a 1-D tensor of ids in :attr:`dtype`.

        ``unknown`` says what happens to characters outside the vocabulary: ``error`` raises
        naming them, ``unk`` maps them to ``<unk>`` (which must be in the vocabulary), ``skip``
        drops them. Works in chunks, so a 100 MB text needs little more than its ids' memory.
        """
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown={unknown!r}: expected one of {', '.join(UNKNOWN_POLICIES)}")
        chunks = [
            self._encode_chunk(text[i : i + _CHUNK], unknown) for i in range(0, len(text), _CHUNK)
        ]
        if not chunks:
            return torch.zeros(0, dtype=self.dtype)
        return torch.from_numpy(np.concatenate(chunks))

    def _encode_chunk(self, text: str, unknown: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        if len(self._codes) == 0:
            pos = np.zeros(len(codes), dtype=np.int64)
            known = np.zeros(len(codes), dtype=bool)
        else:
            pos = np.searchsorted(self._codes, codes).clip(max=len(self._codes) - 1)
            known = self._codes[pos] == codes
        ids = self._ids[pos] if len(self._ids) else pos
        if not known.all():
            if unknown == "skip":
                ids = ids[known]
            elif unknown == "unk" and UNK in self.index:
                ids = np.where(known, ids, self.index[UNK])
            else:
                missing = "".join(self.unknown_chars(text))
                raise ValueError(f"characters not in the vocabulary: {missing!r}")
        return ids.astype(_NUMPY_DTYPES[self.dtype])

    def decode(self, ids: Iterable[int] | torch.Tensor) -> str:
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return "".join(self.tokens[i] for i in ids)
