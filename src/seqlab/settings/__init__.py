"""Every setting of a run or a tool checked, types and ranges, before anything is built.

``check_train_config(cfg)`` is the one place a training config is checked: the top-level keys
against :class:`RunSettings`, each config node with a ``_target_`` against its constructor's
annotations, the Trainer's ranges, and what the machine has.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig

from seqlab.errors import SettingError, check_choice
from seqlab.metrics import METRICS
from seqlab.settings.run import EvalSettings, GenerateSettings, PredictSettings, RunSettings
from seqlab.settings.trainer import check_trainer
from seqlab.settings.types import check_arguments
from seqlab.settings.values import plain, settings_from

__all__ = [
    "EvalSettings",
    "GenerateSettings",
    "PredictSettings",
    "RunSettings",
    "check_node",
    "check_train_config",
    "plain",
    "settings_from",
]

# config groups whose nodes name the object they build; their facts from the data (vocab, ...)
# and the objects train() passes in are given at the call site
BUILT = {
    "data": (),
    "model": ("vocab", "class_names", "task"),
    "trainer": ("logger", "callbacks", "plugins"),
}
COLLECTIONS = ("callbacks", "logger")  # groups of named nodes, each one object or null
OTHER_SECTIONS = ("paths",)


def check_node(values: Mapping[str, Any], key: str, provided: Collection[str] = ()) -> None:
    """A config node (plain values) builds its ``_target_`` with arguments of the right types."""
    if not isinstance(values, Mapping) or "_target_" not in values:
        raise SettingError(key, values, "expected a config with a _target_ to build")
    target = values["_target_"]
    try:
        built = get_object(str(target))
    except Exception:
        raise SettingError(f"{key}._target_", target, "cannot be imported") from None
    arguments = {k: v for k, v in values.items() if not k.startswith("_")}
    check_arguments(built, arguments, f"{key}.", provided)
    for name, value in arguments.items():  # a nested object the config builds too
        if isinstance(value, Mapping) and "_target_" in value:
            check_node(value, f"{key}.{name}")


def check_train_config(cfg: DictConfig) -> RunSettings:
    """The run's top-level settings, with every group checked too."""
    # first: resolving the config asks for the metric's mode (best.ckpt), which needs its name
    check_choice("optimized_metric", cfg.get("optimized_metric"), METRICS)
    values = plain(cfg)  # resolved once: a missing or unresolvable value is named by its key
    groups = {name: values[name] for name in (*BUILT, *COLLECTIONS) if name in values}
    top = {k: v for k, v in values.items() if k not in groups and k not in OTHER_SECTIONS}
    run = settings_from(RunSettings, top)
    for name, provided in BUILT.items():
        check_node(groups[name], name, provided)
    for name in COLLECTIONS:
        for entry, node in (groups.get(name) or {}).items():
            if node is not None:  # callbacks.progress_bar=null: switched off
                check_node(node, f"{name}.{entry}")
    check_trainer(groups["trainer"], run.optimized_metric)
    return run
