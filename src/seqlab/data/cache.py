"""Corpora larger than memory: encoded once, streaming, into a token file that later runs map.

With ``data.cache`` on (by default for files of :data:`AUTO_BYTES` or more) a corpus is read in
pieces twice: once to count its tokens (the vocabulary, and the length of each file), once to
write their ids, in the vocabulary's smallest dtype, to ``tokens.npy`` (nanoGPT's
``train.bin``, with a header), by plain file writes: a writable map's dirty pages would count
as this process's memory. Later runs map that file in milliseconds, and every split, window
and stream is a view of the map: memory holds the pages being read, not the corpus.

``<cache_dir>/<first file's name>-<key>/`` holds ``tokens.npy`` (the files' ids back to back),
``vocab.json``, ``sources.json`` (each file's token count and fingerprint, so its sha256 is not
computed again) and ``complete``, written last. The key hashes each file's resolved path, size
and modification time, the level, the vocabulary settings and :data:`FORMAT`: a changed file or
other settings make another folder, never reuse this one. A folder is built in a hidden
temporary one beside it and renamed into place, under a lock on ``<name>.lock``: DDP ranks or
sweep jobs starting together encode once, the others wait and map the result. A build that was
stopped leaves only its temporary folder, never one that looks complete; the next build of the
same key removes it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import mmap
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqlab.data.files import Piece, TextStream
from seqlab.data.vocab import EOS, UNK, Vocab, count_chars
from seqlab.errors import SettingError

log = logging.getLogger(__name__)

FORMAT = 1  # of the folder and of the tokenisation rules: a change makes every key new
# data.cache=null caches files of this size or more (all of a corpus's files together, on
# disk): from here on reading and encoding take seconds at every start, and the text held as a
# Python string, its bytes and its ids take several times the file in memory
AUTO_BYTES = 64 * 2**20
# batches read between two drops of the mapped pages from resident memory: a fault maps a whole
# folio of the page cache (0.3 to 2 MB a random window on Linux 6.18), so one batch of 32 random
# windows maps 10 to 60 MB; a drop costs about 70 us
TRIM_EVERY = 1
COPY_TOKENS = 1 << 24  # copied to a device at a time, the pages dropped after each
DONTNEED = getattr(mmap, "MADV_DONTNEED", None)  # Linux and macOS; elsewhere pages stay
CHANGED = "changed while it was read: start again once it is written"


def default_cache_dir() -> Path:
    """Where ``cache_dir=null`` keeps token files: the user's cache folder (XDG), so that a
    checkpoint's recorded settings work on any machine."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "seqlab" / "tokens"


def uses_cache(cache: object, cache_dir: object, files: Sequence[Path]) -> bool:
    """Whether ``files`` are read through the cache; bad ``cache`` or ``cache_dir`` values are
    a ``SettingError``."""
    if type(cache) not in (bool, type(None)):
        auto = f"null: on for files of {AUTO_BYTES // 2**20} MiB or more"
        raise SettingError("cache", cache, f"expected true, false or {auto}")
    if cache_dir is not None and (type(cache_dir) is not str or not cache_dir.strip()):
        raise SettingError("cache_dir", cache_dir, f"expected a folder, or null: {_default()}")
    if cache is not None:
        return bool(cache)
    return sum(f.stat().st_size for f in files if f.is_file()) >= AUTO_BYTES


def _default() -> str:
    return str(default_cache_dir()).replace(str(Path.home()), "~", 1)


@dataclass
class Counts:
    """One file's tokens, counted in the first pass."""

    tokens: Counter[str]  # each token's count, words in first-seen order
    total: int  # the file's tokens: the length of its ids
    has_text: bool  # anything but whitespace


def piece_words(piece: Piece) -> list[str]:
    """``corpus.words`` of a piece: its whitespace-separated words, ``<eos>`` at each line end.
    A literal ``<eos>`` in the text is the same token, so marking newlines with it is exact."""
    words = piece.text.replace("\n", f" {EOS} ").split()
    if piece.ends_file_line:
        words.append(EOS)
    return words


def count(stream: TextStream, level: str) -> Counts:
    """The first pass over one file."""
    tokens: Counter[str] = Counter()
    total, has_text = 0, False
    for piece in stream.pieces(whole_words=level == "word"):
        if level == "char":
            tokens.update(count_chars([piece.text]))
            total += len(piece.text)
        else:
            words = piece_words(piece)
            tokens.update(words)
            total += len(words)
        has_text = has_text or bool(piece.text.strip())
    return Counts(tokens, total, has_text)


def encode(piece: Piece, vocab: Vocab, level: str) -> np.ndarray:
    """(n,) the ids of one piece in ``vocab.np_dtype``; a token outside the vocabulary is
    ``<unk>`` (the caller's vocabulary rules have already refused those that may not be)."""
    unknown = "unk" if UNK in vocab.index else "error"
    if level == "char":
        return vocab.encode(piece.text, unknown).numpy()
    words = piece_words(piece)
    ids = np.fromiter(map(vocab.index.get, words, repeat(-1)), np.int64, len(words))
    if unknown == "unk":
        ids[ids < 0] = vocab.index[UNK]
    return ids.astype(vocab.np_dtype)


class TokenMap:
    """A complete cache folder, opened: ``ids`` (N,) is ``tokens.npy`` mapped, the files' ids
    back to back, ``lengths`` and ``fingerprints`` say which are whose."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        sources = json.loads((folder / "sources.json").read_text())["files"]
        self.vocab = Vocab.from_dict(json.loads((folder / "vocab.json").read_text()))
        self.lengths: list[int] = [source["tokens"] for source in sources]
        self.fingerprints: list[dict[str, Any]] = [source["fingerprint"] for source in sources]
        with (folder / "tokens.npy").open("rb") as file:
            if np.lib.format.read_magic(file) != (1, 0):
                raise ValueError("tokens.npy has another header version")
            shape, _, dtype = np.lib.format.read_array_header_1_0(file)
            if shape != (sum(self.lengths),) or dtype != self.vocab.np_dtype:
                raise ValueError(f"tokens.npy holds {shape} x {dtype}, not what sources.json says")
            # copy-on-write (MAP_PRIVATE): writable, so torch takes it without a warning, yet no
            # write could reach the file
            self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY)
            self.ids = torch.from_numpy(np.frombuffer(self._map, dtype, shape[0], file.tell()))
        self._batches = 0

    def __reduce__(self) -> tuple[type, tuple[Path]]:  # a process started by spawn maps it anew
        return TokenMap, (self.folder,)

    def trim(self) -> None:
        """Drops the pages read so far from this process's resident memory. Mapped pages count
        in it until the kernel wants them back, though they are the page cache's; reading them
        again costs a minor fault, not a read from disk."""
        if DONTNEED is not None:
            self._map.madvise(DONTNEED)

    def batch_read(self) -> None:
        """Called once a batch: resident memory holds the pages of the last TRIM_EVERY batches
        only, whatever the share of the corpus read so far."""
        self._batches += 1
        if self._batches % TRIM_EVERY == 0:
            self.trim()

    def to(self, device: torch.device) -> torch.Tensor:
        """The ids on ``device``: the map itself on the CPU, else copied a slice at a time, so
        the copy never makes the whole file resident here."""
        if device.type == "cpu":
            return self.ids
        copy = torch.empty_like(self.ids, device=device)
        for start in range(0, len(self.ids), COPY_TOKENS):
            copy[start : start + COPY_TOKENS].copy_(self.ids[start : start + COPY_TOKENS])
            self.trim()
        return copy


def cached_tokens(
    files: Mapping[str, Path],
    setting: str,
    level: str,
    settings: Mapping[str, Any],
    vocabulary: Callable[[list[Counts]], Vocab],
    cache_dir: str | None,
) -> TokenMap:
    """The token map of ``files`` (their names as the user gave them: the setting ``setting``'s
    value in errors), built if no complete one has the same files and ``settings``.

    ``level`` is ``char`` or ``word`` (``corpus.words``' rule: ``<eos>`` at every line end).
    ``vocabulary`` turns the files' counts into the vocabulary, refusing what the DataModule's
    rules refuse; its errors stop the build before the second pass.
    """
    streams = [TextStream(file, setting, name) for name, file in files.items()]
    stats = _stats(streams)
    described = {"format": FORMAT, "level": level, "settings": settings, "files": stats}
    digest = hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode())
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    folder = root / f"{streams[0].file.name}-{digest.hexdigest()[:20]}"
    if (tokens := _open(folder)) is not None:
        log.info("data.cache: reusing %s (%s tokens)", folder, f"{len(tokens.ids):,}")
        return tokens
    with _locked(folder, cache_dir):
        if (tokens := _open(folder)) is not None:  # built by another process while this waited
            log.info("data.cache: reusing %s, built meanwhile", folder)
            return tokens
        for stale in [folder, *root.glob(f".{folder.name}.*")]:  # builds that were stopped
            shutil.rmtree(stale, ignore_errors=True)
        started = time.perf_counter()
        building = Path(_writing(cache_dir, tempfile.mkdtemp, prefix=f".{folder.name}.", dir=root))
        try:
            _build(building, streams, level, vocabulary, described, cache_dir)
            for stream, then, now in zip(streams, stats, _stats(streams), strict=True):
                if now != then:
                    raise SettingError(setting, stream.value, CHANGED)
            os.rename(building, folder)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
    tokens = TokenMap(folder)
    seconds = time.perf_counter() - started
    log.info("data.cache: built %s (%s tokens) in %.1f s", folder, f"{len(tokens.ids):,}", seconds)
    return tokens


def _stats(streams: list[TextStream]) -> list[tuple[str, int, int]]:
    """Each file's resolved path, size and modification time: what the key knows of it."""
    stats = [(s.file.resolve(), s.file.stat()) for s in streams]
    return [(str(path), stat.st_size, stat.st_mtime_ns) for path, stat in stats]


def _build(
    folder: Path,
    streams: list[TextStream],
    level: str,
    vocabulary: Callable[[list[Counts]], Vocab],
    described: dict[str, Any],
    cache_dir: str | None,
) -> None:
    counts = [count(stream, level) for stream in streams]
    vocab = vocabulary(counts)
    total = sum(c.total for c in counts)
    needed, free = total * vocab.np_dtype.itemsize, shutil.disk_usage(folder).free
    if needed > free:  # said now, not as a write failing minutes later
        reason = f"the token file needs {needed / 2**20:,.0f} MiB, {free / 2**20:,.0f} MiB are free"
        raise SettingError("cache_dir", _shown(cache_dir), reason)
    header = {"descr": np.lib.format.dtype_to_descr(vocab.np_dtype), "fortran_order": False}
    with (folder / "tokens.npy").open("wb") as out:
        np.lib.format.write_array_header_1_0(out, {**header, "shape": (total,)})
        for stream, counted in zip(streams, counts, strict=True):
            written = 0
            for piece in stream.pieces(whole_words=level == "word", hashed=False):
                ids = encode(piece, vocab, level)
                out.write(ids.data)
                written += len(ids)
            if written != counted.total:
                raise SettingError(stream.key, stream.value, CHANGED)
        out.flush()
        os.fsync(out.fileno())  # on disk before `complete` says so
    (folder / "vocab.json").write_text(json.dumps(vocab.to_dict()))
    files = [
        {
            "path": path,
            "size": size,
            "mtime_ns": mtime,
            "tokens": c.total,
            "fingerprint": s.fingerprint,
        }
        for (path, size, mtime), s, c in zip(described["files"], streams, counts, strict=True)
    ]
    (folder / "sources.json").write_text(json.dumps({**described, "files": files}, indent=1))
    (folder / "complete").write_text(f"{FORMAT}\n")


def _open(folder: Path) -> TokenMap | None:
    """The folder's tokens if it is complete; a damaged one is said and left to be rebuilt."""
    if not (folder / "complete").is_file():
        return None
    try:
        return TokenMap(folder)
    except (OSError, ValueError, KeyError) as err:
        log.warning("data.cache: %s is damaged (%s): building it again", folder, err)
        return None


@contextmanager
def _locked(folder: Path, cache_dir: str | None) -> Iterator[None]:
    """Holds ``<folder>.lock``: one process builds a folder, the others wait for it."""
    root = folder.parent
    if root.exists() and not root.is_dir():
        raise SettingError("cache_dir", _shown(cache_dir), "it is a file, not a folder")
    _writing(cache_dir, root.mkdir, parents=True, exist_ok=True)
    with _writing(cache_dir, open, root / f"{folder.name}.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("data.cache: waiting for another process to build %s", folder)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def _writing(cache_dir: str | None, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``action(*args, **kwargs)`` in the cache folder; an OSError names ``cache_dir``."""
    try:
        return action(*args, **kwargs)
    except OSError as err:
        reason = f"cannot be written ({err.strerror or err})"
        raise SettingError("cache_dir", _shown(cache_dir), reason) from None


def _shown(cache_dir: str | None) -> str:
    """``cache_dir`` as an error names it: null is the folder it stands for."""
    return cache_dir if cache_dir is not None else _default()
