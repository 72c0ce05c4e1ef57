"""What a SeqModule trains with: an optimizer and an optional LR schedule, as partials.

train() builds them from the ``optimizer`` and ``scheduler`` config groups (``_target_: torch.
optim.X`` + ``_partial_: true``); the module calls them with its parameters. They are runtime
objects, not hyper-parameters: a checkpoint keeps :func:`record`'s plain data of them instead,
so that a resume with other settings is refused (``seqlab.checkpoint.resume``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import torch

from seqlab.errors import RefusedSettings

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]


class Schedule:
    """An LR scheduler to build on the optimizer, and the two keys Lightning steps it by:
    ``interval`` (``epoch`` | ``step``) and ``monitor``, the metric ReduceLROnPlateau watches.

    A plain class, not a dataclass: Hydra's instantiate turns a dataclass given at the call
    site into a dict.
    """

    def __init__(
        self, build: SchedulerFactory, interval: str = "epoch", monitor: str | None = None
    ) -> None:
        self.build, self.interval, self.monitor = build, interval, monitor

    def lightning(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """Lightning's ``lr_scheduler`` config of a scheduler built on ``optimizer``."""
        config = {"scheduler": self.build(optimizer), "interval": self.interval}
        return config | ({"monitor": self.monitor} if self.monitor else {})


def described(build: Callable[..., Any]) -> dict[str, Any]:
    """A partial as plain data: its class's import path and its arguments (no ``_target_``: a
    checkpoint names nothing to call)."""
    func = build.func if isinstance(build, functools.partial) else build
    keywords = build.keywords if isinstance(build, functools.partial) else {}
    return {"class": f"{func.__module__}.{func.__qualname__}", **keywords}


def record(optimizer: OptimizerFactory, schedule: Schedule | None) -> dict[str, Any]:
    """The optimizer's and the schedule's settings, as a checkpoint keeps them."""
    scheduler = None
    if schedule is not None:
        scheduler = described(schedule.build)
        scheduler |= {"interval": schedule.interval, "monitor": schedule.monitor}
    return {"optimizer": described(optimizer), "scheduler": scheduler}


def differences(then: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What ``then`` (a :func:`record`) set otherwise than ``now``, by config key and ``then``'s
    value: ``optimizer.lr=0.1``; a class of its own is one item (``scheduler=none``)."""
    found = []
    for group in {**then, **now}:
        was, is_ = then.get(group), now.get(group)
        if was == is_:
            continue
        was_class = was.get("class") if isinstance(was, dict) else "none"
        if not (isinstance(was, dict) and isinstance(is_, dict)) or was_class != is_["class"]:
            found.append(f"{group}={was_class}")  # another class: its arguments differ too
            continue
        found += [f"{group}.{k}={was.get(k)!r}" for k in {**was, **is_} if was.get(k) != is_.get(k)]
    return found


def probe(optimizer: OptimizerFactory, schedule: Schedule | None) -> None:
    """Build both on one throwaway parameter, so that a value torch refuses (a negative
    momentum, a factor >= 1) is one line before training, in torch's words."""
    group = "optimizer"
    try:
        built = optimizer([torch.nn.Parameter(torch.zeros(1))])
        group = "scheduler"
        if schedule is not None:
            schedule.build(built)
    except (ValueError, TypeError, RuntimeError) as err:
        raise RefusedSettings(group, str(err)) from None
