"""What a seqlab checkpoint holds, and what it may build: seqlab's own classes, nothing else.

A checkpoint is Lightning's (weights, optimizer, loops, callbacks, ``hyper_parameters``: the
model's build arguments with the vocabulary, class names and task) plus a ``seqlab`` section:
the format version, the DataModule's class and arguments, the data files' sizes and hashes,
the RNG state, the training epoch's running metrics and the optimizer's and scheduler's
settings (``optimization``: compared on resume, never built from). All of it is plain data;
but plain data can still name a callable, so nothing in it is handed to
``hydra.utils.instantiate``: the DataModule's class is looked up in :data:`DATAMODULES`, and
every recorded argument is checked against the type its constructor declares before anything
is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytorch_lightning as pl
import torch

from seqlab.data import (
    CorpusDataModule,
    LabelledTextDataModule,
    SentencesDataModule,
    SeqDataModule,
    TextDataModule,
)
from seqlab.data.memory import MemoryDataModule
from seqlab.data.vocab import Vocab
from seqlab.errors import SettingError, shown
from seqlab.module import SeqModule
from seqlab.nt_asgd import TRAINING_WEIGHTS
from seqlab.settings.types import check_arguments

FORMAT = 1

# the classes a checkpoint may name, by the name it records
DATAMODULES: dict[str, type[SeqDataModule]] = {
    f"{cls.__module__}.{cls.__qualname__}": cls
    for cls in (
        TextDataModule,
        CorpusDataModule,
        SentencesDataModule,
        LabelledTextDataModule,
        MemoryDataModule,
    )
}

Fail = Callable[[str], SettingError]  # the error of the setting that named the checkpoint


def _recorded(err: SettingError) -> str:
    return f"it records {err.name}={shown(err.value)}, which cannot be used: {err.expected}"


def _targets(value: Any, path: str = "") -> list[str]:
    """Where ``value`` names something to call (a ``_target_`` key), at any depth."""
    found = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            found += [here] if key == "_target_" else _targets(item, here)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found += _targets(item, f"{path}[{i}]")
    return found


def check_contents(checkpoint: Any, fail: Fail) -> None:
    """Everything seqlab reads from ``checkpoint`` is there, of the type it must have."""
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("seqlab"), dict):
        raise fail("not a seqlab checkpoint (no 'seqlab' section)")
    section = checkpoint["seqlab"]
    if section.get("format") != FORMAT:
        raise fail(f"checkpoint format {section.get('format')!r}, this seqlab reads {FORMAT}")
    for name in ("epoch", "global_step"):
        if type(checkpoint.get(name)) is not int or checkpoint[name] < 0:
            raise fail(f"its {name} is {checkpoint.get(name)!r}, not a whole number >= 0")
    hparams, spec = checkpoint.get("hyper_parameters"), section.get("datamodule")
    if not isinstance(hparams, dict) or not isinstance(spec, dict):
        raise fail("it lacks the model's or the data's settings")
    data_class = spec.get("_target_")  # the one place a name is recorded: looked up, not imported
    if data_class not in DATAMODULES:
        raise fail(f"it asks for data class {data_class!r}; seqlab builds {', '.join(DATAMODULES)}")
    arguments = {k: v for k, v in spec.items() if k != "_target_"}
    optimization = section.get("optimization")
    calls = _targets(hparams) + _targets(arguments) + _targets(optimization)
    if calls:
        raise fail(f"it names something to call at {calls[0]}; a checkpoint holds settings only")
    try:
        # the optimizer and scheduler are runtime objects: a checkpoint never names one
        check_arguments(SeqModule, hparams, provided=("optimizer", "scheduler"))
        check_arguments(DATAMODULES[data_class], arguments, "data.")
        Vocab.from_dict(hparams["vocab"])
    except SettingError as err:
        raise fail(_recorded(err)) from None
    except (TypeError, ValueError, KeyError) as err:
        raise fail(f"its vocabulary cannot be used: {err}") from None
    if not _plain(optimization):
        raise fail("its optimization record is not plain settings")
    _check_tensors(checkpoint, fail)


def _plain(value: Any) -> bool:
    """Settings as a config writes them: mappings, lists, strings, numbers, booleans, null."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(map(_plain, value))
    return value is None or isinstance(value, str | int | float | bool)


def _check_tensors(checkpoint: dict[str, Any], fail: Fail) -> None:
    weights = checkpoint.get("state_dict")
    if not isinstance(weights, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()
    ):
        raise fail("its state_dict is not a mapping of names to tensors")
    training = checkpoint["seqlab"].get(TRAINING_WEIGHTS, {})
    if not isinstance(training, dict) or not all(
        isinstance(k, str) and k in weights and isinstance(v, torch.Tensor)
        for k, v in training.items()
    ):
        raise fail(f"its {TRAINING_WEIGHTS} are not a mapping of its weights' names to tensors")
    rng = checkpoint["seqlab"].get("rng_state")
    expected = torch.get_rng_state()
    if (
        not isinstance(rng, torch.Tensor)
        or rng.dtype != expected.dtype
        or rng.shape != expected.shape
    ):
        raise fail(
            f"its rng_state is not a random-number generator state ({expected.numel()} bytes)"
        )
    running = checkpoint["seqlab"].get("running_metrics", {})
    if not isinstance(running, dict) or not all(
        isinstance(state, dict) and all(isinstance(t, torch.Tensor) for t in state.values())
        for state in running.values()
    ):
        raise fail("its running_metrics are not mappings of names to tensors")
    carried = checkpoint["seqlab"].get("carried_state", [])
    if (
        not isinstance(carried, list)
        or len(carried) > 2
        or not all(isinstance(t, torch.Tensor) and t.is_floating_point() for t in carried)
        or len({t.shape for t in carried}) > 1
        or any(t.dim() != 4 for t in carried)
    ):
        raise fail("its carried_state is not one or two (ranks, layers, streams, units) tensors")


def module_from(checkpoint: dict[str, Any], fail: Fail) -> SeqModule:
    """The trained module, in eval mode, on the CPU; weights that do not fit are refused."""
    try:
        module = SeqModule(**checkpoint["hyper_parameters"])
    except SettingError as err:
        raise fail(_recorded(err)) from None
    check_weights(checkpoint["state_dict"], module, fail)
    module.load_state_dict(checkpoint["state_dict"])
    return module.eval()


def check_weights(weights: dict[str, torch.Tensor], module: torch.nn.Module, fail: Fail) -> None:
    """``weights`` are exactly ``module``'s parameters and buffers, each of the right shape."""
    own = module.state_dict()
    missing, extra = sorted(set(own) - set(weights)), sorted(set(weights) - set(own))
    if missing or extra:
        names = ", ".join([*(f"no {n}" for n in missing[:3]), *(f"extra {n}" for n in extra[:3])])
        raise fail(f"its weights are not this model's: {names}")
    for name, tensor in own.items():
        if weights[name].shape != tensor.shape:
            shape, saved = tuple(tensor.shape), tuple(weights[name].shape)
            raise fail(f"its weights do not fit its settings: {name} is {saved}, not {shape}")


def datamodule_from(checkpoint: dict[str, Any], fail: Fail) -> SeqDataModule:
    """The DataModule the checkpoint was trained on, from its recorded class and arguments;
    data files that are missing or changed since training are refused."""
    spec = dict(checkpoint["seqlab"]["datamodule"])
    cls = DATAMODULES[spec.pop("_target_")]
    try:
        datamodule = cls(**spec)
    except SettingError as err:
        raise fail(f"the data it was trained on cannot be read: {err.within('data')}") from None
    recorded = checkpoint["seqlab"].get("data_files") or {}
    for name, seen in recorded.items():
        now = datamodule.data_files.get(name)
        if now != seen:
            change = "is gone" if now is None else _change(seen, now)
            raise fail(f"the data has changed since training: {name} {change}")
    return datamodule


def _change(then: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    if then.get("size") != now.get("size"):
        return f"has {now.get('size'):,} bytes, {then.get('size'):,} when trained"
    return "has the same size but other content (its sha256 differs)"


class SeqlabSection(pl.Callback):
    """Adds the ``seqlab`` section to every checkpoint, and on resume restores the RNG state
    and the training epoch's running metrics from it.

    With the epoch-seeded data order and a loader that resumes mid-epoch, the restored RNG
    (dropout draws from it) makes a resumed run continue exactly as an uninterrupted one.
    """

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["seqlab"] = {
            "format": FORMAT,
            "datamodule": trainer.datamodule.spec(),
            "data_files": trainer.datamodule.data_files,
            "rng_state": torch.get_rng_state(),
            "running_metrics": pl_module.running_metrics(),
            "optimization": pl_module.optimization,  # what a resume must train with
            # the streams' state after the last batch (stateful BPTT), so a resumed epoch
            # continues from it
            "carried_state": pl_module.carried_state(),
        }

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        section = checkpoint["seqlab"]
        torch.set_rng_state(section["rng_state"])
        if isinstance(section.get("running_metrics"), dict):
            pl_module.load_running_metrics(section["running_metrics"])
        pl_module.load_carried_state(section.get("carried_state", []))
