from __future__ import annotations

import gzip
import re
from functools import partial
from pathlib import Path

import pytest
import torch

from seqlab.data import TextDataModule
from seqlab.data.base import IGNORE_INDEX
from seqlab.data.text import read_text
from seqlab.errors import SettingError


def _pairs(dm: TextDataModule, dataset) -> list[tuple[str, str]]:
    batches = [dm.gather(dataset[i]) for i in range(len(dataset))]
    return [(dm.vocab.decode(b.inputs[0]), dm.vocab.decode(b.targets[0])) for b in batches]


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

    batch = dm.gather(dm.train_set.__getitems__([0, 2, 6]))

    assert [dm.vocab.decode(x) for x in batch.inputs] == ["hell", "llo ", "worl"]
    assert [dm.vocab.decode(y) for y in batch.targets] == ["ello", "lo w", "orld"]


def test_lesson_validation_scores_every_character_once_with_most_context():
    text = "if you want to build a ship, don't drum up people together"
    dm = TextDataModule(text=text, seq_len=10)

    scored: dict[int, str] = {}
    batches = [dm.gather(dm.val_set[i]) for i in range(len(dm.val_set))]
    for start, batch in enumerate(batches):
        for step, target in enumerate(batch.targets[0].tolist()):
            if target != IGNORE_INDEX:
                position = start + step + 1
                assert position not in scored  # scored once
                scored[position] = dm.vocab.tokens[target]
    assert "".join(scored[i] for i in sorted(scored)) == text[1:]
    # after the first window, each character is scored at a window's last step: 10 characters
    # of context
    assert all(b.targets[0, :-1].eq(IGNORE_INDEX).all() for b in batches[1:])


def test_whole_string_is_one_sequence_without_seq_len():
    dm = TextDataModule(text="hihello")

    assert _pairs(dm, dm.train_set) == [("hihell", "ihello")]
    assert dm.samples[0].text == "hihell" and dm.samples[0].target == "ihello"


def test_vocab_orders_the_one_hot_columns_as_listed():
    dm = TextDataModule(text="hihello", vocab=["h", "i", "e", "l", "o"])

    # the lesson's numbering: x = hihell = [0, 1, 0, 2, 3, 3], y = ihello = [1, 0, 2, 3, 3, 4]
    assert _pairs(dm, dm.train_set) == [("hihell", "ihello")]
    batch = dm.gather(dm.train_set[0])
    assert batch.inputs[0].tolist() == [0, 1, 0, 2, 3, 3]
    assert batch.targets[0].tolist() == [1, 0, 2, 3, 3, 4]
    assert dm.class_names == ["h", "i", "e", "l", "o"]


def test_vocab_with_rare_characters_places_unk_where_listed(tmp_path: Path):
    text = "aaaaabbbbbcccc" * 10 + "xyz"
    dm = TextDataModule(
        path=_corpus(tmp_path, text), seq_len=5, min_char_count=2, vocab=["c", "<unk>", "b", "a"]
    )

    assert dm.vocab.tokens == ["c", "<unk>", "b", "a"]
    assert dm.vocab.decode(dm.vocab.encode("axc", unknown="unk")) == "a<unk>c"


def test_a_rebuilt_datamodule_keeps_the_vocab_order():
    from hydra.utils import instantiate

    dm = TextDataModule(text="hihello", vocab=["h", "i", "e", "l", "o"])

    assert instantiate(dm.spec(), _convert_="all").vocab.tokens == ["h", "i", "e", "l", "o"]


@pytest.mark.parametrize(
    ("override", "line"),
    [
        (
            "data.vocab=[h,i,e,l]",
            "data.vocab=['h', 'i', 'e', 'l'] is invalid: misses 'o': "
            "list every character of the text exactly once",
        ),
        (
            "data.vocab=[h,i,e,l,o,o]",
            "data.vocab=['h', 'i', 'e', 'l', 'o', 'o'] is invalid: lists 'o' more than once",
        ),
        (
            "data.vocab=[h,i,el,o]",
            "data.vocab=['h', 'i', 'el', 'o'] is invalid: 'el' is not a single character",
        ),
        (
            "data.vocab=hielo",
            "data.vocab='hielo' is invalid: expected a list, each a string or null",
        ),
        (
            "data.vocab=[h,i,e,l,o,x]",
            "data.vocab=['h', 'i', 'e', 'l', 'o', 'x'] is invalid: lists 'x', not in the text",
        ),
        (
            "data.vocab=[h,i,e,l,1]",
            "data.vocab=['h', 'i', 'e', 'l', 1] is invalid: expected a list, each a string or null",
        ),
    ],
)
def test_bad_vocab_is_one_line_naming_the_setting(make_cfg, override: str, line: str):
    from seqlab.train import train

    with pytest.raises(SettingError) as raised:
        train(make_cfg(override, bare=True))

    assert str(raised.value) == line


@pytest.mark.parametrize("seq_len", [10, 1000])
def test_a_1mb_file_is_held_once_whatever_seq_len(tmp_path: Path, seq_len: int):
    path = tmp_path / "big.txt"
    path.write_text(("the quick brown fox jumps over the lazy dog. " * 23302)[:1_000_000])

    dm = TextDataModule(path=str(path), seq_len=seq_len)

    corpus, ids = dm.corpus, dm.train_set.ids
    assert corpus.numel() == 1_000_000 and corpus.element_size() == 1  # one byte per character
    # the splits are views of the one encoded text, and a window is only its start: memory is
    # the text, not text x seq_len
    assert ids.numel() == 900_000 and ids.data_ptr() == corpus.data_ptr()
    assert dm.val_set.ids.untyped_storage().data_ptr() == corpus.untyped_storage().data_ptr()
    assert len(dm.train_set) == 900_000 - seq_len
    batch = dm.gather(dm.train_set.__getitems__(list(range(32))))
    assert batch.inputs.shape == (32, seq_len)


def test_shuffled_batches_repeat_with_the_seed():
    def first_batch() -> torch.Tensor:
        torch.manual_seed(0)
        dm = TextDataModule(text="if you want to build a ship", seq_len=5, batch_size=4)
        return dm.gather(next(iter(dm.train_dataloader()))).inputs

    assert torch.equal(first_batch(), first_batch())


def _corpus(tmp_path: Path, text: str) -> str:
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    return str(path)


SONNET = (
    "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate:\n"
    "Rough winds do shake the darling buds of May,\nAnd summer's lease hath all too short a date;\n"
) * 20


def test_vectorised_encoding_equals_a_per_character_reference(tmp_path: Path):
    text = SONNET + "ünïcödé ✓ 한국어"
    dm = TextDataModule(path=_corpus(tmp_path, text), seq_len=16)

    reference = [dm.vocab.index[c] for c in text]

    assert dm.vocab.encode(text).tolist() == reference
    assert dm.train_set.ids.tolist() == reference[: len(dm.train_set.ids)]


def test_random_windows_are_shifted_pairs_drawn_again_each_epoch(tmp_path: Path):
    dm = TextDataModule(path=_corpus(tmp_path, SONNET), seq_len=12, batch_size=8, sampling="random")
    loader = dm.train_dataloader()
    text = dm.vocab.decode(dm.train_set.ids)

    first = [dm.gather(refs) for refs in loader]
    loader.sampler.set_epoch(1)
    second = [dm.gather(refs) for refs in loader]
    loader.sampler.set_epoch(0)
    again = [dm.gather(refs) for refs in loader]

    assert len(first) == dm.steps_per_epoch == len(dm.train_set.ids) // (8 * 12)
    for batch in first:
        assert batch.inputs.shape == batch.targets.shape == (8, 12)
        assert torch.equal(batch.inputs[:, 1:], batch.targets[:, :-1])  # shifted by one
        for x, y in zip(batch.inputs, batch.targets, strict=True):
            window = dm.vocab.decode(x) + dm.vocab.decode(y)[-1]
            assert window in text  # a real window of the train split
    assert all(torch.equal(a.inputs, b.inputs) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0].inputs, second[0].inputs)


def test_no_window_crosses_from_train_into_val_or_test(tmp_path: Path):
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    dm = TextDataModule(
        path=_corpus(tmp_path, text), seq_len=9, val_fraction=0.1, test_fraction=0.2
    )

    train, val, test = dm.train_set.ids, dm.val_set.ids, dm.test_set.ids
    assert (len(train), len(val), len(test)) == (700, 100, 200)
    assert dm.vocab.decode(torch.cat([train, val, test])) == text  # contiguous, in order
    last = dm.gather(dm.train_set[len(dm.train_set) - 1])
    assert dm.vocab.decode(last.targets[0])[-1] == text[699]  # the train split's last character
    # back-to-back windows: each starts where the previous one's inputs end
    assert [len(dm.val_set), len(dm.test_set)] == [(100 - 10) // 9 + 1, (200 - 10) // 9 + 1]
    assert dm.vocab.decode(dm.gather(dm.val_set[0]).inputs[0]) == text[700:709]


def test_rare_characters_become_unk(tmp_path: Path):
    text = "aaaaabbbbbcccc" * 10 + "xyz"  # x, y, z once each
    dm = TextDataModule(path=_corpus(tmp_path, text), seq_len=5, min_char_count=2)
    capped = TextDataModule(path=_corpus(tmp_path, text), seq_len=5, max_vocab=3)

    assert dm.vocab.tokens == ["<unk>", "a", "b", "c"]
    assert dm.vocab.decode(dm.vocab.encode("axz", unknown="unk")) == "a<unk><unk>"
    assert capped.vocab.tokens == ["<unk>", "a", "b"]  # the 2 most frequent, and <unk>
    assert TextDataModule(path=_corpus(tmp_path, text), seq_len=5).vocab.tokens[0] == "a"


def test_corpus_shorter_than_seq_len_plus_one_is_named(tmp_path: Path):
    with pytest.raises(
        SettingError,
        match=re.escape("seq_len=500 is invalid: expected 1 <= seq_len < 100 (val split)"),
    ):
        TextDataModule(path=_corpus(tmp_path, "xy" * 500), seq_len=500)


def test_textfile_trains_and_evaluates_its_test_split(make_cfg, tmp_path: Path):
    from seqlab.checkpoint import datamodule_from, load_checkpoint
    from seqlab.train import train

    corpus = _corpus(tmp_path, SONNET)
    result = train(
        make_cfg(
            "data=textfile", f"data.path={corpus}", "data.seq_len=20", "data.steps_per_epoch=5",
            "data.test_fraction=0.1", "model=lstm", "trainer.max_epochs=2",
        )
    )  # fmt: skip

    assert {"val/loss", "val/acc", "val/bpc"} <= set(result.final)
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    fail = partial(SettingError, "ckpt_path", "last.ckpt")
    assert datamodule_from(checkpoint, fail).test_set is not None


def test_the_epoch_order_is_held_as_int32_indices_not_python_ints():
    from seqlab.data.base import EpochShuffle

    sampler = EpochShuffle(100_000, seed=3)
    sampler.set_epoch(2)

    order = sampler.permutation()
    assert order.dtype == torch.int32  # 4 bytes an index, where a list of ints costs ~47
    assert list(sampler) == order.tolist()
    assert sorted(order.tolist()) == list(range(100_000))


def test_a_gzip_file_reads_as_its_text_whatever_its_name(tmp_path: Path):
    text = SONNET + "ünïcödé ✓"
    for name in ("sonnet.txt.gz", "sonnet.txt"):  # told by its bytes, not by its name
        (tmp_path / name).write_bytes(gzip.compress(text.encode()))

        assert read_text(str(tmp_path / name)) == text


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda raw: raw[:-12], "Compressed file ended before the end-of-stream marker"),
        (lambda raw: raw[:-8] + bytes(8), "CRC check failed"),
        (lambda raw: raw[:10] + bytes(len(raw) - 10), "Error -3 while decompressing data"),
    ],
    ids=["truncated", "wrong checksum", "corrupt data"],
)
def test_a_damaged_gzip_corpus_is_one_line_naming_the_setting(make_cfg, tmp_path, damage, reason):
    from seqlab.train import train

    corpus = tmp_path / "corpus.txt.gz"
    corpus.write_bytes(damage(gzip.compress(SONNET.encode())))

    with pytest.raises(SettingError) as error:
        train(make_cfg("data=textfile", f"data.path={corpus}"))

    expected = f"data.path='{corpus}' is invalid: a corrupt or truncated gzip file ({reason}"
    assert str(error.value).startswith(expected) and "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


def test_a_gzip_corpus_trains_through_data_textfile(make_cfg, tmp_path: Path):
    from seqlab.train import train

    corpus = tmp_path / "corpus.txt.gz"
    corpus.write_bytes(gzip.compress(SONNET.encode()))
    result = train(
        make_cfg(
            "data=textfile", f"data.path={corpus}", "data.seq_len=20", "data.steps_per_epoch=3",
            "model=lstm", "trainer.max_epochs=1", bare=True,
        )
    )  # fmt: skip

    assert {"val/loss", "val/acc", "val/bpc"} <= set(result.final)
    assert set(result.predictions[0].text) <= set(SONNET)  # the decompressed text, not its bytes


def test_a_text_file_read_as_streams_carries_the_state_through_its_splits(tmp_path):
    from seqlab.data.streams import batchify

    path = tmp_path / "corpus.txt"
    path.write_text("abcdefghij" * 100)
    data = TextDataModule(
        path=str(path), seq_len=7, batch_size=4, batching="stream", eval_batch_size=2
    )

    train = list(data.train_dataloader())
    val = list(data.val_dataloader())
    assert all(b.carry_state for b in train + val)
    assert torch.equal(
        torch.cat([b.inputs for b in train], 1), batchify(data.splits["train"], 4)[:, :-1]
    )
    assert [b.inputs.size(0) for b in val] == [2] * len(val)
    assert data.sample_window is None
