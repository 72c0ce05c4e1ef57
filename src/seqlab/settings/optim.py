"""The ``optimizer`` and ``scheduler`` groups: a torch.optim class each, checked before training.

Their arguments are checked like any config node's, against the class's own annotations, with
what the LightningModule gives at the call site (the parameters, the optimizer) left out. A
scheduler file also holds two keys of Lightning's, which torch never sees: ``interval`` (when
it steps) and ``monitor`` (the metric ReduceLROnPlateau watches).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from hydra.utils import get_object

from seqlab.errors import SettingError, check_at_least, check_choice, check_positive
from seqlab.metrics import METRICS, metric_mode
from seqlab.settings.types import check_node

SCHEDULING = ("interval", "monitor")  # a scheduler file's keys that Lightning reads
INTERVALS = ("epoch", "step")
# scheduler arguments a step divides by: 0 would fail in the middle of training
COUNTS = ("T_max", "step_size", "total_iters")


def split_schedule(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A scheduler node's torch part (``_target_`` and arguments) and its Lightning keys."""
    torch_part = {k: v for k, v in values.items() if k not in SCHEDULING}
    return torch_part, {k: values.get(k) for k in SCHEDULING}


def _class(values: Any, key: str, base: type) -> type:
    """The class the node builds, a subclass of ``base``; else one line naming ``_target_``."""
    if not isinstance(values, Mapping) or "_target_" not in values:
        check_node(values, key)  # says what is missing
    target = values["_target_"]
    try:
        built = get_object(str(target))
    except Exception:
        raise SettingError(f"{key}._target_", target, "cannot be imported") from None
    if not (inspect.isclass(built) and issubclass(built, base)):
        expected = f"expected a subclass of {base.__module__}.{base.__qualname__}"
        raise SettingError(f"{key}._target_", target, expected)
    return built


def check_optimizer(values: Any) -> None:
    """``optimizer``: a torch.optim.Optimizer and arguments it takes, of their types."""
    _class(values, "optimizer", torch.optim.Optimizer)
    check_node(values, "optimizer", ("params",))
    # every torch.optim class takes these two; a Tensor value is left to torch
    if isinstance(lr := values.get("lr"), int | float):
        check_positive("optimizer.lr", lr)
    if isinstance(decay := values.get("weight_decay"), int | float):
        check_at_least("optimizer.weight_decay", decay, 0)


def check_scheduler(values: Any) -> None:
    """``scheduler``: none (an empty node), or an LR scheduler and when Lightning steps it."""
    if not values:  # scheduler=none
        return
    torch_part, lightning = split_schedule(values)
    built = _class(torch_part, "scheduler", torch.optim.lr_scheduler.LRScheduler)
    check_node(torch_part, "scheduler", ("optimizer",))
    for name in COUNTS:
        count = torch_part.get(name)
        if isinstance(count, int) and count < 1:
            raise SettingError(f"scheduler.{name}", count, "expected a whole number >= 1")
    interval, monitor = lightning["interval"], lightning["monitor"]
    check_choice("scheduler.interval", interval, INTERVALS)
    if monitor is not None:
        check_choice("scheduler.monitor", monitor, METRICS)
    watches = issubclass(built, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if watches and monitor is None:
        reason = f"{built.__name__} steps on a metric: expected one of {', '.join(METRICS)}"
        raise SettingError("scheduler.monitor", monitor, reason)
    if monitor is not None and interval == "step":
        reason = f"{monitor} is logged once an epoch: use scheduler.interval=epoch"
        raise SettingError("scheduler.interval", interval, reason)
    mode = torch_part.get("mode")
    if watches and mode is not None and mode != metric_mode(monitor):
        better = "lower" if metric_mode(monitor) == "min" else "higher"
        reason = f"{monitor} is better {better}: use scheduler.mode={metric_mode(monitor)}"
        raise SettingError("scheduler.mode", mode, reason)
