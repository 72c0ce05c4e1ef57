"""Text files from disk, plain or gzip: read whole, or streamed in pieces for a corpus of any size.

Both ways give the same text and the same one-line errors for a missing, empty, damaged or
non-UTF-8 file; the streamed way also hashes the file's bytes as it reads them, so its
fingerprint costs no second pass.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from seqlab.errors import SettingError

GZIP_MAGIC = b"\x1f\x8b"
GZIP_ERRORS = (OSError, EOFError, zlib.error)  # a bad header or CRC, cut short, bad data
CHUNK_BYTES = 1 << 22  # read at a time when streaming: 4 MB, tens of MB of temporaries at most


def read_bytes(file: Path) -> bytes:
    """The bytes of ``file``, decompressed where it is gzip; a damaged gzip file raises
    ``ValueError`` saying so in one line."""
    raw = file.read_bytes()
    # gzip is told by its first two bytes, not by the name, so a renamed file still reads; no
    # UTF-8 text can start with them (0x8b never begins a UTF-8 character), so no text is taken
    # for gzip
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except GZIP_ERRORS as err:
        raise ValueError(f"a corrupt or truncated gzip file ({err})") from None


def read_text(path: str, key: str = "path") -> str:
    """The UTF-8 text of ``path``, plain or gzip-compressed; a missing, empty, damaged or
    non-UTF-8 file is a ``SettingError`` naming the setting ``key``."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise SettingError(key, path, "no such file")
    try:
        raw = read_bytes(file)
    except ValueError as err:
        raise SettingError(key, path, str(err)) from None
    if not raw:
        raise SettingError(key, path, "the file is empty")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SettingError(key, path, f"not UTF-8 text (byte {err.start})") from None


class Piece(NamedTuple):
    """Text streamed from a file. With ``whole_words`` no word is cut in two: a piece ends
    after a newline, or after a space where a line is longer than a chunk."""

    text: str
    # the file ends here without a final newline: its last line ends here all the same
    ends_file_line: bool = False


class _NoDigest:  # a pass that does not hash (the second one: the first did)
    def update(self, data: bytes) -> None:
        pass


class _Hashing:
    """A binary file whose bytes are hashed as they are read."""

    def __init__(self, file: BinaryIO, digest: Any) -> None:
        self.file, self.digest = file, digest

    def read(self, size: int = -1) -> bytes:
        data = self.file.read(size)
        self.digest.update(data)
        return data


class TextStream:
    """The UTF-8 text of ``file`` in pieces of about :data:`CHUNK_BYTES`, in order.

    Errors name the setting ``key`` with ``value``, in :func:`read_text`'s words. After a whole
    pass, ``fingerprint`` is the file's size and sha256 (as ``base.fingerprint`` gives them).
    """

    def __init__(self, file: Path, key: str, value: str) -> None:
        if not file.is_file():
            raise SettingError(key, value, "no such file")
        self.file, self.key, self.value = file, key, value
        self.fingerprint: dict[str, Any] | None = None

    def pieces(self, whole_words: bool = False, hashed: bool = True) -> Iterator[Piece]:
        """One pass over the file; ``hashed=False`` leaves ``fingerprint`` as it was."""
        digest = hashlib.sha256() if hashed else _NoDigest()
        pending, last = "", ""  # text held back to end on a line; the last character read
        with self.file.open("rb") as file:
            raw = _Hashing(file, digest)
            for text in self._decoded(raw):
                last = text[-1]
                if not whole_words:
                    yield Piece(text)
                    continue
                pending += text
                # "\n" ends a line; else a space ends a word (a line longer than a chunk)
                cut = pending.rfind("\n") + 1 or max(pending.rfind(" "), pending.rfind("\t")) + 1
                if cut:
                    yield Piece(pending[:cut])
                    pending = pending[cut:]
            while raw.read(1 << 20):  # bytes after the end of gzip data: hashed all the same
                pass
        if whole_words and last != "\n":
            yield Piece(pending, ends_file_line=True)
        if hashed:
            self.fingerprint = {"size": self.file.stat().st_size, "sha256": digest.hexdigest()}

    def _decoded(self, raw: _Hashing) -> Iterator[str]:
        source: Any = raw
        if self._is_gzip():  # told by the first two bytes, as read_bytes tells it
            source = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[arg-type]
        decoder = codecs.getincrementaldecoder("utf-8")()
        fed = 0  # bytes given to the decoder so far: where a bad byte is, in the whole text
        while True:
            try:
                data = source.read(CHUNK_BYTES)
            except GZIP_ERRORS as err:
                raise SettingError(
                    self.key, self.value, f"a corrupt or truncated gzip file ({err})"
                ) from None
            if not data and fed == 0:
                raise SettingError(self.key, self.value, "the file is empty")
            held = len(decoder.getstate()[0])  # the start of a character cut by the last chunk
            try:
                text = decoder.decode(data, final=not data)
            except UnicodeDecodeError as err:
                byte = fed - held + err.start
                raise SettingError(self.key, self.value, f"not UTF-8 text (byte {byte})") from None
            fed += len(data)
            if text:
                yield text
            if not data:
                return

    def _is_gzip(self) -> bool:
        with self.file.open("rb") as file:
            return file.read(2) == GZIP_MAGIC
