from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqlab.data import TextDataModule
from seqlab.data.base import IGNORE_INDEX


def _pairs(dm: TextDataModule, dataset) -> list[tuple[str, str]]:
    return [(dm.vocab.decode(b.inputs), dm.vocab.decode(b.targets)) for b in dataset]


def test_file_gives_the_windows_expected_by_hand(tmp_path: Path):
    path = tmp_path / "abc.txt"
    path.write_text("abcdefghijklmnopqrst")  # 20 characters: 15 train, 5 held out

    dm = TextDataModule(path=str(path), seq_len=3, val_fraction=0.25)

    assert _pairs(dm, dm.train_set)[:2] == [("abc", "bcd"), ("bcd", "cde")]
    assert _pairs(dm, dm.train_set)[-1] == ("lmn", "mno")
    assert len(dm.train_set) == 12  # stride 1 over the first 15 characters
    assert _pairs(dm, dm.val_set) == [("pqr", "qrs")]  # back-to-back windows, held-out part
    assert dm.vocab.tokens == list("abcdefghijklmnopqrst")


def test_a_batch_is_one_gather_of_windows():
    dm = TextDataModule(text="hello world", seq_len=4, batch_size=3)

    batch = dm.train_set.__getitems__([0, 2, 6])

    assert [dm.vocab.decode(x) for x in batch.inputs] == ["hell", "llo ", "worl"]
    assert [dm.vocab.decode(y) for y in batch.targets] == ["ello", "lo w", "orld"]


def test_lesson_validation_scores_every_character_once_with_most_context():
    text = "if you want to build a ship, don't drum up people together"
    dm = TextDataModule(text=text, seq_len=10)

    scored: dict[int, str] = {}
    for start, batch in enumerate(dm.val_set):
        for step, target in enumerate(batch.targets.tolist()):
            if target != IGNORE_INDEX:
                position = start + step + 1
                assert position not in scored  # scored once
                scored[position] = dm.vocab.tokens[target]
    assert "".join(scored[i] for i in sorted(scored)) == text[1:]
    # after the first window, each character is scored at a window's last step: 10 characters
    # of context
    assert all(b.targets[:-1].eq(IGNORE_INDEX).all() for b in list(dm.val_set)[1:])


def test_whole_string_is_one_sequence_without_seq_len():
    dm = TextDataModule(text="hihello")

    assert _pairs(dm, dm.train_set) == [("hihell", "ihello")]
    assert dm.samples[0].text == "hihell" and dm.samples[0].target == "ihello"


@pytest.mark.parametrize("seq_len", [10, 1000])
def test_windows_of_a_1mb_file_share_one_tensor_whatever_seq_len(tmp_path: Path, seq_len: int):
    path = tmp_path / "big.txt"
    path.write_text(("the quick brown fox jumps over the lazy dog. " * 23302)[:1_000_000])

    dm = TextDataModule(path=str(path), seq_len=seq_len)

    windows, ids = dm.train_set.windows, dm.train_set.ids
    assert ids.numel() == 900_000 and ids.element_size() == 1  # one byte per character
    assert windows.data_ptr() == ids.data_ptr()  # a view: no window is copied
    assert windows.untyped_storage().nbytes() == 900_000  # memory is the text, not text x seq_len
    assert len(dm.train_set) == 900_000 - seq_len
    batch = dm.train_set.__getitems__(list(range(32)))
    assert batch.inputs.shape == (32, seq_len)


def test_shuffled_batches_repeat_with_the_seed():
    def first_batch() -> torch.Tensor:
        torch.manual_seed(0)
        dm = TextDataModule(text="if you want to build a ship", seq_len=5, batch_size=4)
        return next(iter(dm.train_dataloader())).inputs

    assert torch.equal(first_batch(), first_batch())
