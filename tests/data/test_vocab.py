from __future__ import annotations

import re

import pytest
import torch

from seqlab.data import PAD, UNK, Vocab


def test_vocabulary_is_specials_then_sorted_characters():
    assert Vocab.from_texts(["hihello"]).tokens == ["e", "h", "i", "l", "o"]
    assert Vocab.from_texts(["so good", "bad"], specials=[PAD]).tokens == [
        PAD,
        " ",
        "a",
        "b",
        "d",
        "g",
        "o",
        "s",
    ]


def test_encode_then_decode_gives_the_text_back():
    vocab = Vocab.from_texts([" seoul is the capital of south korea"])

    ids = vocab.encode(" seoul is the capital of south korea")

    assert ids.dtype == torch.uint8
    assert vocab.decode(ids) == " seoul is the capital of south korea"


def test_unknown_characters_are_named_or_mapped_or_skipped():
    vocab = Vocab([UNK, "a", "b"])

    with pytest.raises(ValueError, match=re.escape("not in the vocabulary: ['x', 'z']")):
        vocab.encode("zaxb")
    assert vocab.encode("zaxb", unknown="unk").tolist() == [0, 1, 0, 2]
    assert vocab.encode("zaxb", unknown="skip").tolist() == [1, 2]


def test_ids_use_the_smallest_dtype_that_fits():
    assert Vocab([chr(0x100 + i) for i in range(300)]).dtype == torch.int16
    wide = Vocab([chr(0x100 + i) for i in range(300)])
    assert wide.decode(wide.encode("".join(wide.tokens))) == "".join(wide.tokens)


def test_non_ascii_text_round_trips():
    text = "한국어 문장, ünïcödé ✓"
    vocab = Vocab.from_texts([text])

    assert vocab.decode(vocab.encode(text)) == text
