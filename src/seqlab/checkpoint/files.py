"""Checkpoint files: written atomically, read without ever unpickling code."""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from seqlab.errors import RunFailed, SettingError, first_line


class CheckpointWriteError(RunFailed):
    """A checkpoint could not be written (a full disk, say); the previous one is whole."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint beside its target under a name of its own, then renames it into place.

    A process killed while saving leaves the previous ``last.ckpt`` whole; a save that fails (no
    space left) removes its partial file and raises :class:`CheckpointWriteError`, one line.
    Two processes never share a temporary file. Reading goes through :func:`read_checkpoint`:
    Lightning's resume never unpickles code either.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())  # the bytes are on disk before the name points at them
            os.replace(tmp, path)
        except BaseException as err:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(err, OSError):
                raise CheckpointWriteError(
                    f"could not write {path}: {err.strerror or err}"
                ) from None
            raise

    def load_checkpoint(
        self, path: str | Path, map_location: Callable | None = None, weights_only: Any = None
    ) -> dict[str, Any]:
        return read_checkpoint(path, "ckpt_path")


def read_checkpoint(path: str | Path, key: str) -> Any:
    """What ``torch.save`` wrote to ``path``, read as plain data (``weights_only``): a file that
    is missing, not a checkpoint, or holds pickled code is a :class:`SettingError` naming
    ``key``, and nothing in it is run."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise SettingError(key, str(path), "no such file")
    # torch.save writes a zip archive: anything else is not a checkpoint at all
    if not zipfile.is_zipfile(file):
        reason = "not a checkpoint: not a whole zip archive as torch.save writes (truncated?)"
        raise SettingError(key, str(path), reason)
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err) or "Unsupported operand" in str(err):
            reason = "it holds pickled Python objects, which seqlab will not load"
        else:
            reason = f"not a readable checkpoint ({first_line(err)})"
        raise SettingError(key, str(path), reason) from None
    except Exception:  # torch.load fails in many ways on a truncated or foreign file
        reason = "not a readable checkpoint: truncated, or not written by torch.save"
        raise SettingError(key, str(path), reason) from None
