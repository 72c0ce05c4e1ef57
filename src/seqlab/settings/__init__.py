"""Every setting of a run or a tool checked, types and ranges, before anything is built.

``check_train_config(cfg)`` is the one place a training config is checked: the top-level keys
against :class:`RunSettings`, each config node with a ``_target_`` against its constructor's
annotations, the optimizer's and the scheduler's (:mod:`seqlab.settings.optim`), the Trainer's
ranges, and what the machine has.
"""

from __future__ import annotations

from omegaconf import DictConfig

from seqlab.config import switched_off
from seqlab.errors import MOVED, SettingError, check_choice, moved
from seqlab.metrics import METRICS
from seqlab.settings.optim import check_optimizer, check_scheduler
from seqlab.settings.run import (
    EvalSettings,
    ExportSettings,
    GenerateSettings,
    PredictSettings,
    RunSettings,
)
from seqlab.settings.trainer import check_trainer
from seqlab.settings.types import check_node
from seqlab.settings.values import plain, settings_from

__all__ = [
    "EvalSettings",
    "ExportSettings",
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
    "model": ("vocab", "class_names", "task", "optimizer", "scheduler"),
    "trainer": ("logger", "callbacks", "plugins"),
}
OPTIMIZATION = ("optimizer", "scheduler")  # torch.optim classes: seqlab.settings.optim
COLLECTIONS = ("callbacks", "logger")  # groups of named nodes, each one object or null
OTHER_SECTIONS = ("paths",)


def check_train_config(cfg: DictConfig) -> RunSettings:
    """The run's top-level settings, with every group checked too."""
    # first: resolving the config asks for the metric's mode (best.ckpt), which needs its name
    check_choice("optimized_metric", cfg.get("optimized_metric"), METRICS)
    values = plain(cfg)  # resolved once: a missing or unresolvable value is named by its key
    sections = (*BUILT, *OPTIMIZATION, *COLLECTIONS)
    groups = {name: values[name] for name in sections if name in values}
    top = {k: v for k, v in values.items() if k not in groups and k not in OTHER_SECTIONS}
    run = settings_from(RunSettings, top)
    for key in MOVED:  # an earlier seqlab's key added with +model.lr=...
        group, _, name = key.partition(".")
        if name in (groups.get(group) or {}):
            raise SettingError(key, groups[group][name], moved(key, groups[group][name]))
    for name, provided in BUILT.items():
        check_node(groups[name], name, provided)
    check_optimizer(groups.get("optimizer"))
    check_scheduler(groups.get("scheduler"))
    for name in COLLECTIONS:
        for entry, node in (groups.get(name) or {}).items():
            if not switched_off(node):  # callbacks.progress_bar=null: switched off
                check_node(node, f"{name}.{entry}")
                _check_patience(node, f"{name}.{entry}")
    check_trainer(groups["trainer"], run.optimized_metric)
    return run


def _check_patience(node: dict, key: str) -> None:
    """An EarlyStopping's patience counts validations; Lightning takes any whole number."""
    patience = node.get("patience") if "EarlyStopping" in str(node["_target_"]) else None
    if patience is not None and patience < 0:
        reason = "expected a whole number >= 0 (validations without improvement), or null: off"
        raise SettingError(f"{key}.patience", patience, reason)
