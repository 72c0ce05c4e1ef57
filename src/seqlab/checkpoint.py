"""Checkpoints: written atomically, read without unpickling code, enough to rebuild everything.

A seqlab checkpoint is Lightning's (weights, optimizer, loops, callbacks, ``hyper_parameters``:
the model's build arguments with the vocabulary, class names and task) plus a ``seqlab``
section: the format version and the DataModule's class and arguments. All of it is plain data,
so ``torch.load(weights_only=True)`` reads it.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from seqlab.data import SeqDataModule
from seqlab.errors import SettingError
from seqlab.module import SeqModule

FORMAT = 1


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint beside its target, then renames it into place.

    A process killed while saving leaves the previous ``last.ckpt`` whole (and at worst a
    stray ``.tmp`` file), never a truncated one.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)


class SeqlabSection(pl.Callback):
    """Adds the ``seqlab`` section to every checkpoint, and restores its RNG state on resume.

    With the epoch-seeded data order, the restored RNG state (dropout draws from it) makes a
    resumed run continue exactly as an uninterrupted one would.
    """

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["seqlab"] = {
            "format": FORMAT,
            "datamodule": trainer.datamodule.spec(),
            "rng_state": torch.get_rng_state(),
        }

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if "seqlab" in checkpoint:
            torch.set_rng_state(checkpoint["seqlab"]["rng_state"])


def load_checkpoint(path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    """The checkpoint at ``path``; anything that is not a readable seqlab checkpoint is a
    :class:`SettingError` naming ``key``, and pickled code in it is never run."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise SettingError(key, str(path), "no such file")
    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err) or "weights_only" in str(err).lower():
            reason = "it holds pickled Python objects, which seqlab will not load"
        else:
            reason = f"not a readable checkpoint ({_first_line(err)})"
        raise SettingError(key, str(path), reason) from None
    except Exception:  # torch.load fails in many ways on a truncated or foreign file
        reason = "not a readable checkpoint: truncated, or not written by torch.save"
        raise SettingError(key, str(path), reason) from None
    if not isinstance(checkpoint, dict) or "seqlab" not in checkpoint:
        raise SettingError(key, str(path), "not a seqlab checkpoint (no 'seqlab' section)")
    if checkpoint["seqlab"].get("format") != FORMAT:
        found = checkpoint["seqlab"].get("format")
        raise SettingError(key, str(path), f"checkpoint format {found}, this seqlab reads {FORMAT}")
    return checkpoint


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def module_from(checkpoint: dict[str, Any]) -> SeqModule:
    """The trained module, in eval mode, on the CPU."""
    module = SeqModule(**checkpoint["hyper_parameters"])
    module.load_state_dict(checkpoint["state_dict"])
    return module.eval()


def datamodule_from(checkpoint: dict[str, Any]) -> SeqDataModule:
    """The DataModule the checkpoint was trained on, built from its recorded arguments."""
    return instantiate(checkpoint["seqlab"]["datamodule"], _convert_="all")


def check_same_model(checkpoint: dict[str, Any], module: SeqModule, key: str, value: str) -> None:
    """A checkpoint only continues training of the model it was made from."""
    saved = checkpoint.get("hyper_parameters", {})
    differ = [name for name, setting in module.hparams.items() if saved.get(name) != setting]
    if not differ:
        return
    # vocab, class_names and task are facts of the data, not model.* settings
    changes = [f"model.{n}={saved.get(n)!r}" for n in differ if n not in _DATA_FACTS]
    if set(differ) & set(_DATA_FACTS):
        changes.insert(0, "other data")
    raise SettingError(key, value, f"it was trained with other settings: {', '.join(changes)}")


_DATA_FACTS = ("vocab", "class_names", "task")


@dataclass
class Continuation:
    """Where training continues from: ``resume=RUN_DIR`` (in place) or ``ckpt_path=FILE``."""

    key: str  # the setting that asked for it
    value: str
    path: Path
    checkpoint: dict[str, Any]

    @property
    def in_place(self) -> bool:
        return self.key == "resume"


def continuation(
    resume: str | None, ckpt_path: str | None, last_checkpoint: Path | None
) -> Continuation | None:
    """The checkpoint a run continues from, checked before any training.

    ``last_checkpoint`` is where this run's checkpoint callback keeps ``last.ckpt``: with
    ``resume=RUN_DIR`` the run dir is RUN_DIR, so that is the file to continue from.
    """
    if resume and ckpt_path:
        raise SettingError(
            "resume", resume, "set resume (continue a run in place) or ckpt_path, not both"
        )
    if resume:
        if last_checkpoint is None or not last_checkpoint.is_file():
            where = "no last.ckpt" if last_checkpoint is None else f"no {last_checkpoint}"
            raise SettingError("resume", resume, f"nothing to resume: {where}")
        checkpoint = load_checkpoint(last_checkpoint, "resume")
        return Continuation("resume", resume, last_checkpoint, checkpoint)
    if ckpt_path:
        return Continuation("ckpt_path", ckpt_path, Path(ckpt_path), load_checkpoint(ckpt_path))
    return None
