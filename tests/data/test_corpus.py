"""data=corpus: the split files of a folder, read as the public corpora are read."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch
from conftest import SHARED_DATA, needs_shared_data

from seqlab.corpora import corpus_path
from seqlab.data import CorpusDataModule
from seqlab.data.corpus import split_files, words
from seqlab.errors import SettingError


def _corpus(root: Path, **splits: str) -> str:
    root.mkdir(exist_ok=True)
    for name, text in splits.items():
        (root / name).write_text(text)
    return str(root)


def test_wikitext2_gives_the_published_token_counts_and_vocabulary():
    data = CorpusDataModule(dir=corpus_path("wikitext-2"))

    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [2_088_628, 217_646, 245_569]
    assert len(data.vocab) == 33_278
    assert data.vocab.tokens[:3] == ["the", ",", "."]  # most frequent first
    assert "<unk>" in data.vocab.index and "<eos>" in data.vocab.index
    assert data.vocab.dtype == torch.int32  # 33,278 ids do not fit in int16


@needs_shared_data
def test_the_packaged_wikitext2_is_the_shared_copy_byte_for_byte():
    for split in ("train", "valid", "test"):
        packaged = gzip.decompress(Path(corpus_path("wikitext-2"), f"{split}.txt.gz").read_bytes())
        assert packaged == (SHARED_DATA / "wikitext-2" / f"{split}.txt").read_bytes(), split


def test_the_public_corpora_file_names_are_found(tmp_path):
    ptb = _corpus(tmp_path / "ptb", **{f"ptb.{s}.txt": "a b\n" for s in ("train", "valid", "test")})
    wiki = _corpus(tmp_path / "wiki", **{f"wiki.{s}.tokens": "a b\n" for s in ("train", "valid")})
    (tmp_path / "gz").mkdir()
    for split in ("train", "valid"):
        (tmp_path / "gz" / f"{split}.txt.gz").write_bytes(gzip.compress(b"a b\n"))

    assert [p.name for p in split_files(ptb).values()] == [
        "ptb.train.txt",
        "ptb.valid.txt",
        "ptb.test.txt",
    ]
    assert [p.name for p in split_files(wiki).values()] == [
        "wiki.train.tokens",
        "wiki.valid.tokens",
    ]
    assert [p.name for p in split_files(str(tmp_path / "gz")).values()] == [
        "train.txt.gz",
        "valid.txt.gz",
    ]


def test_a_folder_without_a_train_file_or_with_two_is_one_line(tmp_path):
    only_valid = _corpus(tmp_path / "a", **{"valid.txt": "a\n"})
    two = _corpus(tmp_path / "b", **{"train.txt": "a\n", "ptb.train.txt": "a\n", "valid.txt": "a"})

    with pytest.raises(SettingError, match=r"no train file: looked for train.txt, ptb.train.txt"):
        split_files(only_valid)
    with pytest.raises(
        SettingError, match=r"holds train.txt and ptb.train.txt: which is the train"
    ):
        split_files(two)


def test_words_end_every_line_with_eos_including_empty_lines():
    assert list(words("a b\n\n c\n")) == ["a", "b", "<eos>", "<eos>", "c", "<eos>"]
    assert list(words("a b")) == ["a", "b", "<eos>"]  # no final newline: still a line
    assert list(words("a\x1cb\n")) == ["a", "b", "<eos>"]  # \x1c is whitespace, not a line end


def test_the_vocabulary_comes_from_train_only_and_keeps_the_corpus_own_unk(tmp_path):
    root = _corpus(tmp_path / "c", **{"train.txt": "a b <unk>\nb\n", "valid.txt": "b a <unk>\n"})

    data = CorpusDataModule(dir=root, seq_len=1, batch_size=1, eval_batch_size=1)

    assert data.vocab.tokens == ["b", "<eos>", "a", "<unk>"]  # by count, ties first seen first
    assert data.vocab.decode(data.splits["val"]) == "b a <unk> <eos>"


def test_a_word_outside_the_vocabulary_is_one_line_naming_it_unless_unknown_unk(tmp_path):
    root = _corpus(tmp_path / "c", **{"train.txt": "a b a b a b\n", "valid.txt": "a zebra\n"})

    with pytest.raises(SettingError, match=r"valid.txt has the word 'zebra', .* data.unknown=unk"):
        CorpusDataModule(dir=root, seq_len=1, batch_size=1, eval_batch_size=1)
    data = CorpusDataModule(dir=root, unknown="unk", seq_len=1, batch_size=1, eval_batch_size=1)
    assert data.vocab.tokens[-1] == "<unk>"
    assert data.vocab.decode(data.splits["val"]) == "a <unk> <eos>"


def test_char_level_reads_characters_newlines_included(tmp_path):
    root = _corpus(tmp_path / "c", **{"train.txt": "abab\nba\n", "valid.txt": "ab\n"})

    data = CorpusDataModule(dir=root, level="char", seq_len=1, batch_size=1, eval_batch_size=1)

    assert data.vocab.tokens == ["\n", "a", "b"]
    assert data.vocab.decode(data.splits["val"]) == "ab\n"
    assert data.sample_window is None  # a stream model reads its sample as one sequence


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"seq_len": 5}, r"seq_len=5 is invalid: expected seq_len < 4: the val split's 9 tokens"),
        ({"eval_batch_size": 0}, r"eval_batch_size=0 is invalid"),
        ({"level": "byte"}, r"level='?byte'? is invalid: expected one of word, char"),
        ({"batching": "windows", "seq_len_jitter": 5.0}, r"applies to batching=stream"),
    ],
)
def test_bad_corpus_settings_are_one_line(tmp_path, settings, message):
    root = _corpus(tmp_path / "c", **{"train.txt": "a b c\n" * 50, "valid.txt": "a b\n" * 3})
    with pytest.raises(SettingError, match=message):
        CorpusDataModule(dir=root, **{"batch_size": 2, "eval_batch_size": 2, **settings})


def test_windows_batching_draws_random_windows_and_scores_back_to_back_windows(tmp_path):
    root = _corpus(tmp_path / "c", **{"train.txt": "a b c d\n" * 50, "valid.txt": "a b\n" * 30})

    data = CorpusDataModule(dir=root, batching="windows", seq_len=4, batch_size=3)
    batch = data.on_after_batch_transfer(next(iter(data.train_dataloader())), 0)

    assert batch.inputs.shape == (3, 4) and not batch.carry_state
    assert data.steps_per_epoch == 250 // 12
