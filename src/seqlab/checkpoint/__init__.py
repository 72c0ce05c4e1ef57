"""Checkpoints: written atomically, read as plain data, able to rebuild only seqlab's classes.

``load_checkpoint(path)`` is the one way in: the file is read without unpickling code and all
that seqlab reads from it is checked (types, the classes it names, the tensors' shapes) before
anything is built from it.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from seqlab.checkpoint.contents import (
    DATAMODULES,
    FORMAT,
    SeqlabSection,
    check_contents,
    datamodule_from,
    module_from,
)
from seqlab.checkpoint.files import AtomicCheckpointIO, CheckpointWriteError, read_checkpoint
from seqlab.checkpoint.resume import Continuation, check_continuation, continuation
from seqlab.errors import SettingError

__all__ = [
    "DATAMODULES",
    "FORMAT",
    "AtomicCheckpointIO",
    "CheckpointWriteError",
    "Continuation",
    "SeqlabSection",
    "check_continuation",
    "continuation",
    "datamodule_from",
    "load_checkpoint",
    "module_from",
]


def load_checkpoint(path: str | Path, key: str = "ckpt_path", value: str | None = None) -> Any:
    """The seqlab checkpoint at ``path``, checked; any problem is one :class:`SettingError`
    naming ``key`` (with ``value``, default the path)."""
    checkpoint = read_checkpoint(path, key)
    check_contents(checkpoint, partial(SettingError, key, str(path) if value is None else value))
    return checkpoint
