"""data.cache: a corpus encoded once into a token file, mapped by later runs, never mistaken."""

from __future__ import annotations

import gzip
import json
import logging
import multiprocessing
import os
import time
from pathlib import Path

import pytest
import torch
from conftest import BARE, compose_train

from seqlab.data import CorpusDataModule, TextDataModule
from seqlab.data import cache as cache_module
from seqlab.data import files as files_module
from seqlab.data.streams import rank_streams
from seqlab.errors import SettingError
from seqlab.train import train

# what a stream has to get right: characters of 2 to 4 bytes, \r\n, \x1c (whitespace, not a line
# end), empty lines, tabs, a literal <eos> and <unk>, a line longer than a chunk, and no final
# newline
TRICKY = (
    "the cat sat\r\non the mat\n\n  café naïve 한국어 🙂\tend\n"
    "a<eos>b <eos> <unk> x\x1cy\n" + "long " * 40 + "\n" + "the cat\n" * 30 + "last line"
)
VALID = "the cat ran\nwho sat on 🙂\n"


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # a few bytes a chunk: every piece boundary falls inside characters, words and lines
    monkeypatch.setattr(files_module, "CHUNK_BYTES", 7)


def _write(path: Path, text: str, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _folders(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.iterdir() if p.is_dir()) if cache_dir.exists() else []


def _corpus(root: Path, gz: bool = False, train: str = TRICKY) -> str:
    suffix = ".gz" if gz else ""
    _write(root / f"train.txt{suffix}", train, gz)
    _write(root / f"valid.txt{suffix}", VALID, gz)
    _write(root / f"test.txt{suffix}", VALID[::-1], gz)
    return str(root)


def _same(cached, in_memory) -> None:
    assert cached.vocab == in_memory.vocab
    assert cached.corpus.dtype == in_memory.corpus.dtype
    assert torch.equal(cached.corpus, in_memory.corpus)
    assert cached.data_files == in_memory.data_files  # what a checkpoint records
    for split, ids in in_memory.splits.items():
        assert (ids is None) == (cached.splits[split] is None)
        if ids is not None:
            assert torch.equal(cached.splits[split], ids), split


CORPUS = {"seq_len": 2, "batch_size": 1, "eval_batch_size": 1}


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("level, unknown", [("word", "unk"), ("char", "unk"), ("word", "error")])
def test_a_cached_corpus_has_the_ids_and_vocabulary_of_one_read_in_memory(
    tmp_path, gz, level, unknown
):
    valid = "the cat\nthe mat\n"  # unknown=error: only tokens the training split has
    root = _corpus(tmp_path / "c", gz)
    if unknown == "error":
        _write(Path(root) / f"valid.txt{'.gz' if gz else ''}", valid, gz)
        _write(Path(root) / f"test.txt{'.gz' if gz else ''}", valid, gz)
    settings = {"dir": root, "level": level, "unknown": unknown, **CORPUS}

    in_memory = CorpusDataModule(**settings, cache=False)
    cached = CorpusDataModule(**settings, cache=True, cache_dir=str(tmp_path / "cache"))

    _same(cached, in_memory)
    assert cached.tokens is not None and in_memory.tokens is None
    if level == "word":  # the last line has no newline, and ends all the same
        assert cached.vocab.decode(cached.splits["train"][-3:]) == "last line <eos>"


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize(
    "rules",
    [{}, {"min_char_count": 3}, {"max_vocab": 12}, {"test_fraction": 0.2}],
    ids=["every character", "rare ones <unk>", "most frequent", "with a test split"],
)
def test_a_cached_text_file_has_the_ids_and_vocabulary_of_one_read_in_memory(tmp_path, gz, rules):
    path = str(_write(tmp_path / "corpus.txt", TRICKY, gz))
    settings = {"path": path, "seq_len": 4, **rules}

    in_memory = TextDataModule(**settings, cache=False)
    cached = TextDataModule(**settings, cache=True, cache_dir=str(tmp_path / "cache"))

    _same(cached, in_memory)
    assert cached.samples == in_memory.samples


GZ = gzip.compress(TRICKY.encode())


@pytest.mark.parametrize(
    "content",
    [
        None,
        b"",
        gzip.compress(b""),
        TRICKY.encode()[:20] + b"\xe9" + TRICKY.encode()[20:],
        b"abcdef\xc3\xa9x\xffyz",  # the bad byte after a character cut between two chunks
        b"abc\xc3",  # a character cut short by the end of the file
        GZ[:-12],
        GZ[:12] + b"\xff" * 10 + GZ[22:],
        GZ[:-8] + bytes(4) + GZ[-4:],
    ],
    ids=[
        "missing",
        "empty",
        "empty gzip",
        "latin-1",
        "after a cut",
        "cut",
        "truncated gzip",
        "damaged gzip",
        "wrong checksum",
    ],
)
def test_a_bad_file_is_the_same_one_line_whether_streamed_or_read_whole(tmp_path, content):
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_bytes(content)
    errors = []
    for cache in (False, True):
        with pytest.raises(SettingError) as raised:
            TextDataModule(path=str(path), seq_len=1, cache=cache, cache_dir=str(tmp_path / "c"))
        errors.append(str(raised.value))

    if errors[0].endswith("(CRC check failed)"):  # streamed, it also gives both checksums
        assert errors[1].startswith(errors[0][:-1] + " 0x")
    else:
        assert errors[0] == errors[1]
    assert errors[0].startswith(f"path='{path}' is invalid: ")
    assert _folders(tmp_path / "c") == []


@pytest.mark.parametrize(
    "level, valid, reason",
    [
        ("word", " \n\t\n", "valid.txt holds no text"),
        ("word", "the zebra 🙂\n", "valid.txt has the word 'zebra', which"),
        ("char", "the zebra 🙂\n", "valid.txt has the character 'b', which"),
    ],
    ids=["no text", "an unseen word", "an unseen character"],
)
def test_a_bad_split_is_the_same_one_line_whether_cached_or_not(tmp_path, level, valid, reason):
    root = _corpus(tmp_path / "c", train="the cat sat on the mat\n" * 5)
    _write(Path(root) / "valid.txt", valid)
    errors = []
    for cache in (False, True):
        with pytest.raises(SettingError) as raised:
            CorpusDataModule(dir=root, level=level, cache=cache, cache_dir=str(tmp_path / "x"))
        errors.append(str(raised.value))

    assert errors[0] == errors[1]
    assert reason in errors[0]
    assert _folders(tmp_path / "x") == []


def test_a_given_vocabulary_order_is_the_cached_order(tmp_path):
    path = str(_write(tmp_path / "corpus.txt", "hihello" * 10))
    order = ["h", "i", "e", "l", "o"]

    cached = TextDataModule(path=path, seq_len=3, vocab=order, cache=True, cache_dir=str(tmp_path))

    assert cached.vocab.tokens == order and cached.vocab.decode(cached.corpus[:7]) == "hihello"
    assert cached.spec()["vocab"] == order


def test_a_second_start_maps_the_cache_without_reading_or_hashing_the_file(tmp_path, monkeypatch):
    path = str(_write(tmp_path / "corpus.txt", TRICKY))
    first = TextDataModule(path=path, seq_len=4, cache=True, cache_dir=str(tmp_path / "cache"))

    def refuse(*args, **kwargs):
        raise AssertionError("the file was read again")

    monkeypatch.setattr(cache_module, "count", refuse)
    monkeypatch.setattr(files_module.TextStream, "pieces", refuse)
    started = time.perf_counter()
    again = TextDataModule(path=path, seq_len=4, cache=True, cache_dir=str(tmp_path / "cache"))

    assert time.perf_counter() - started < 0.5
    _same(again, first)
    assert len(_folders(tmp_path / "cache")) == 1


def test_a_changed_file_builds_a_new_cache_even_at_the_same_size(tmp_path):
    path = _write(tmp_path / "corpus.txt", "abcabcabc\n" * 20)
    cache_dir = str(tmp_path / "cache")
    TextDataModule(path=str(path), seq_len=4, cache=True, cache_dir=cache_dir)
    before = path.stat()

    _write(path, "abcabcabd\n" * 20)  # same size, other content
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    same_size = TextDataModule(path=str(path), seq_len=4, cache=True, cache_dir=cache_dir)
    _write(path, "abcd\n" * 20)
    other_size = TextDataModule(path=str(path), seq_len=4, cache=True, cache_dir=cache_dir)

    assert len(_folders(tmp_path / "cache")) == 3
    assert same_size.vocab.tokens == ["\n", "a", "b", "c", "d"]
    assert same_size.vocab.decode(same_size.corpus[:10]) == "abcabcabd\n"
    _same(other_size, TextDataModule(path=str(path), seq_len=4, cache=False))


@pytest.mark.parametrize(
    "changed",
    [{"min_char_count": 2}, {"max_vocab": 5}, {"vocab": ["\n", "c", "b", "a", "d"]}],
    ids=["min_char_count", "max_vocab", "vocab order"],
)
def test_other_character_vocabulary_settings_never_reuse_a_cache(tmp_path, changed):
    path = str(_write(tmp_path / "corpus.txt", "aaaabbbccd\n" * 10))
    cache_dir = str(tmp_path / "cache")
    TextDataModule(path=path, seq_len=4, cache=True, cache_dir=cache_dir)

    cached = TextDataModule(path=path, seq_len=4, cache=True, cache_dir=cache_dir, **changed)

    assert len(_folders(tmp_path / "cache")) == 2
    _same(cached, TextDataModule(path=path, seq_len=4, cache=False, **changed))


@pytest.mark.parametrize(
    "changed", [{"level": "char"}, {"unknown": "unk"}], ids=["level", "unknown"]
)
def test_other_corpus_vocabulary_settings_never_reuse_a_cache(tmp_path, changed):
    root = _corpus(tmp_path / "c", train="the cat sat\n" * 5 + VALID + VALID[::-1])
    cache_dir = str(tmp_path / "cache")
    CorpusDataModule(dir=root, cache=True, cache_dir=cache_dir, **CORPUS)

    cached = CorpusDataModule(dir=root, cache=True, cache_dir=cache_dir, **CORPUS, **changed)

    assert len(_folders(tmp_path / "cache")) == 2
    _same(cached, CorpusDataModule(dir=root, cache=False, **CORPUS, **changed))


def test_an_encode_stopped_midway_leaves_no_cache_that_is_used(tmp_path, monkeypatch):
    path = str(_write(tmp_path / "corpus.txt", TRICKY))
    cache_dir = tmp_path / "cache"
    encode, pieces = cache_module.encode, []

    def stopped(piece, *args):  # Ctrl-C in the middle of the second pass
        pieces.append(piece)
        if len(pieces) == 5:
            raise KeyboardInterrupt
        return encode(piece, *args)

    monkeypatch.setattr(cache_module, "encode", stopped)
    with pytest.raises(KeyboardInterrupt):
        TextDataModule(path=path, seq_len=4, cache=True, cache_dir=str(cache_dir))
    assert _folders(cache_dir) == []  # the temporary folder went with it
    monkeypatch.setattr(cache_module, "encode", encode)

    cached = TextDataModule(path=path, seq_len=4, cache=True, cache_dir=str(cache_dir))

    _same(cached, TextDataModule(path=path, seq_len=4, cache=False))


def test_a_killed_build_and_an_incomplete_folder_are_rebuilt_and_cleared(tmp_path):
    path = str(_write(tmp_path / "corpus.txt", TRICKY))
    cache_dir = tmp_path / "cache"
    built = TextDataModule(path=path, seq_len=4, cache=True, cache_dir=str(cache_dir))
    folder = built.tokens.folder
    # as SIGKILL would leave them: a temporary folder half written, and the folder itself
    # without its completion marker (its token file cut short)
    killed = folder.parent / f".{folder.name}.x1y2z3"
    killed.mkdir()
    (killed / "tokens.npy").write_bytes(b"\x93NUMPY")
    (folder / "complete").unlink()
    tokens = folder / "tokens.npy"
    tokens.write_bytes(tokens.read_bytes()[:-5])

    cached = TextDataModule(path=path, seq_len=4, cache=True, cache_dir=str(cache_dir))

    _same(cached, TextDataModule(path=path, seq_len=4, cache=False))
    assert _folders(cache_dir) == [folder] and (folder / "complete").is_file()


def test_a_damaged_complete_cache_is_built_again(tmp_path, caplog):
    path = str(_write(tmp_path / "corpus.txt", TRICKY))
    cache_dir = str(tmp_path / "cache")
    folder = TextDataModule(path=path, seq_len=4, cache=True, cache_dir=cache_dir).tokens.folder
    tokens = folder / "tokens.npy"
    tokens.write_bytes(tokens.read_bytes()[:-5])

    cached = TextDataModule(path=path, seq_len=4, cache=True, cache_dir=cache_dir)

    assert "is damaged" in caplog.text
    _same(cached, TextDataModule(path=path, seq_len=4, cache=False))


def _build_in_child(path: str, cache_dir: str, builds: str, queue) -> None:
    build = cache_module._build

    def slow_build(*args, **kwargs):  # slow enough that the others find the lock held
        with open(builds, "a") as log:
            log.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        return build(*args, **kwargs)

    cache_module._build = slow_build
    data = TextDataModule(path=path, seq_len=4, cache=True, cache_dir=cache_dir)
    queue.put(data.corpus.tolist())


def test_processes_starting_together_encode_once_and_all_map_the_result(tmp_path):
    path = str(_write(tmp_path / "corpus.txt", TRICKY))
    builds = tmp_path / "builds.txt"
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    args = (path, str(tmp_path / "cache"), str(builds), queue)
    children = [context.Process(target=_build_in_child, args=args) for _ in range(3)]
    for child in children:
        child.start()
    results = [queue.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=60)

    assert [child.exitcode for child in children] == [0, 0, 0]
    assert len(builds.read_text().splitlines()) == 1
    expected = TextDataModule(path=path, seq_len=4, cache=False).corpus.tolist()
    assert results == [expected] * 3


def test_splits_windows_and_streams_are_views_of_the_map(tmp_path):
    path = str(_write(tmp_path / "corpus.txt", "the quick brown fox jumps over the dog\n" * 50))
    data = TextDataModule(
        path=path, seq_len=8, sampling="random", cache=True, cache_dir=str(tmp_path / "c")
    )
    words = CorpusDataModule(
        dir=_corpus(tmp_path / "w"), unknown="unk", batching="windows", seq_len=3, batch_size=2,
        cache=True, cache_dir=str(tmp_path / "c"),
    )  # fmt: skip

    for module in (data, words):
        mapped = module.tokens.ids
        start, end = mapped.data_ptr(), mapped.data_ptr() + mapped.numel()
        assert module.corpus.data_ptr() == start  # the map itself, no concatenated copy
        views = [v for v in module.splits.values() if v is not None]
        views += [module.train_set.ids, module.val_set.ids]
        views += list(rank_streams(module.splits["train"], 2, rank=1, world_size=2))
        assert all(start <= v.data_ptr() < end for v in views)
        batch = module.on_after_batch_transfer(next(iter(module.train_dataloader())), 0)
        assert module._corpus_on[torch.device("cpu")] is module.corpus  # gathered in place
        assert batch.inputs.shape[0] == (2 if module is words else 32)
    before = data.corpus.clone()
    data.tokens.trim()  # the pages dropped from memory come back from the file
    assert torch.equal(data.corpus, before)


def test_a_copy_to_a_device_is_made_a_slice_at_a_time_dropping_pages_after_each(
    tmp_path, monkeypatch
):
    path = str(_write(tmp_path / "corpus.txt", TRICKY * 3))
    data = TextDataModule(path=path, seq_len=8, cache=True, cache_dir=str(tmp_path / "c"))
    trims = []
    monkeypatch.setattr(cache_module, "COPY_TOKENS", 100)
    monkeypatch.setattr(data.tokens, "trim", lambda: trims.append(1))

    copy = data.tokens.to(torch.device("meta"))  # a device without memory: any but the CPU

    assert copy.shape == data.corpus.shape and copy.dtype == data.corpus.dtype
    assert len(trims) == -(-len(data.corpus) // 100)


def test_a_file_of_the_automatic_size_is_cached_and_a_smaller_one_is_not(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "AUTO_BYTES", 1000)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    small = str(_write(tmp_path / "small.txt", "abc\n" * 249))  # 996 bytes
    large = str(_write(tmp_path / "large.txt", "abc\n" * 250))

    assert TextDataModule(path=small, seq_len=4).tokens is None
    assert TextDataModule(path=large, seq_len=4).tokens is not None
    [folder] = _folders(tmp_path / "xdg" / "seqlab" / "tokens")  # the default cache_dir
    assert json.loads((folder / "sources.json").read_text())["files"][0]["tokens"] == 1000


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"cache": "maybe"}, "cache='maybe' is invalid: expected true, false or null: on for "),
        ({"cache": True, "cache_dir": ""}, "cache_dir='' is invalid: expected a folder, or null"),
        ({"cache": True, "cache_dir": "FILE"}, "cache_dir='FILE' is invalid: it is a file, not"),
        (
            {"cache": True, "cache_dir": "FILE/x"},
            "cache_dir='FILE/x' is invalid: cannot be written",
        ),
        ({"text": "abcabc", "cache": True}, "cache=True is invalid: applies to a file (path), not"),
    ],
    ids=["not a boolean", "empty folder", "a file", "below a file", "a text"],
)
def test_bad_cache_settings_are_one_line(tmp_path, settings, message):
    file = str(_write(tmp_path / "file", ""))
    source = {} if "text" in settings else {"path": str(_write(tmp_path / "corpus.txt", TRICKY))}
    if "cache_dir" in settings:
        settings["cache_dir"] = settings["cache_dir"].replace("FILE", file)

    with pytest.raises(SettingError) as raised:
        TextDataModule(**source, seq_len=4, **settings)

    assert message.replace("FILE", file) in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_cache_setting_of_the_wrong_type_stops_the_run_before_training(make_cfg, tmp_path):
    path = _write(tmp_path / "corpus.txt", TRICKY)

    with pytest.raises(SettingError) as raised:
        train(make_cfg("data=textfile", f"data.path={path}", "data.cache=maybe"))

    assert str(raised.value) == "data.cache='maybe' is invalid: expected true or false or null"


def test_a_run_trains_on_the_cache_and_a_second_run_reuses_it(tmp_path, caplog):
    corpus = tmp_path / "corpus"
    _write(corpus / "train.txt", "to be or not to be\nthat is the question\n" * 40)
    _write(corpus / "valid.txt", "to be or not\nthat is it\n" * 10)
    run = [
        "data=corpus",
        f"data.dir={corpus}",
        "data.unknown=unk",
        "data.cache=true",
        f"data.cache_dir={tmp_path / 'cache'}",
        "data.seq_len=5",
        "data.batch_size=4",
        "data.eval_batch_size=2",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=3",
    ]

    caplog.set_level(logging.INFO, logger=cache_module.__name__)
    first = train(compose_train(tmp_path / "first", *BARE, *run))
    second = train(compose_train(tmp_path / "second", *BARE, *run))

    [folder] = _folders(tmp_path / "cache")
    said = [line for line in caplog.messages if line.startswith("data.cache")]
    assert len(said) == 2
    assert said[0].startswith(f"data.cache: built {folder} (")
    assert (
        said[1]
        == f"data.cache: reusing {folder} ({len(cache_module.TokenMap(folder).ids):,} tokens)"
    )
    assert first.final["val/loss"] == pytest.approx(second.final["val/loss"])  # same data, seed
