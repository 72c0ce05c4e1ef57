"""Ranges of the Trainer settings that Lightning checks late, or not at all.

The types come from ``pytorch_lightning.Trainer``'s own annotations (checked with every other
config node); what is here are the values of the right type that still cannot work: zero
epochs, a validation interval no run reaches, a time budget of zero, a negative clip.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping
from typing import Any

from seqlab.errors import SettingError

DURATION = re.compile(r"^(\d+):(\d+):(\d+):(\d+)$")  # DD:HH:MM:SS, as Lightning's Timer reads it


def _at_least(trainer: Mapping[str, Any], name: str, low: int, *allowed: int) -> None:
    value = trainer.get(name)
    if value is not None and value not in allowed and not value >= low:
        extra = "".join(f" or {a}" for a in allowed)
        raise SettingError(f"trainer.{name}", value, f"expected a whole number >= {low}{extra}")


def _fraction_or_count(trainer: Mapping[str, Any], name: str) -> None:
    value = trainer.get(name)
    if value is None:
        return
    if (isinstance(value, float) and not 0 <= value <= 1) or (isinstance(value, int) and value < 0):
        reason = "expected a fraction from 0.0 to 1.0 or a number of batches >= 0"
        raise SettingError(f"trainer.{name}", value, reason)


def max_time_seconds(value: Any) -> float | None:
    """``trainer.max_time`` in seconds (DD:HH:MM:SS, or a dict of timedelta's arguments)."""
    if value is None:
        return None
    if isinstance(value, str):
        found = DURATION.match(value.strip())
        if not found:
            raise SettingError("trainer.max_time", value, "expected DD:HH:MM:SS, e.g. 00:00:10:00")
        days, hours, minutes, seconds = map(int, found.groups())
        return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    try:
        return datetime.timedelta(**value).total_seconds()
    except TypeError as err:
        raise SettingError("trainer.max_time", value, f"not a duration: {err}") from None


def check_trainer(trainer: Mapping[str, Any], optimized_metric: str) -> None:
    """``trainer`` (the composed ``trainer`` group, plain values) can train and validate."""
    _at_least(trainer, "max_epochs", 1, -1)  # -1: no limit (stop by max_time or max_steps)
    _at_least(trainer, "min_epochs", 0)
    _at_least(trainer, "max_steps", 1, -1)
    _at_least(trainer, "check_val_every_n_epoch", 1)
    _at_least(trainer, "log_every_n_steps", 1)
    _at_least(trainer, "accumulate_grad_batches", 1)
    _at_least(trainer, "num_nodes", 1)
    _at_least(trainer, "num_sanity_val_steps", 0, -1)
    for name in ("limit_train_batches", "limit_val_batches", "limit_test_batches"):
        _fraction_or_count(trainer, name)
    seconds = max_time_seconds(trainer.get("max_time"))
    if seconds is not None and seconds <= 0:
        raise SettingError("trainer.max_time", trainer["max_time"], "expected a duration > 0")
    clip = trainer.get("gradient_clip_val")
    if clip is not None and not (math.isfinite(clip) and clip >= 0):
        raise SettingError("trainer.gradient_clip_val", clip, "expected a number >= 0, or null")
    devices = trainer.get("devices")
    if isinstance(devices, int) and devices < 1 and devices != -1:
        raise SettingError("trainer.devices", devices, "expected a number >= 1, -1 (all) or auto")

    if optimized_metric.startswith("val/"):
        _check_validation_runs(trainer, optimized_metric)


def _check_validation_runs(trainer: Mapping[str, Any], optimized_metric: str) -> None:
    """The optimised metric is a validation one: some epoch of the run must validate."""
    every, epochs = trainer.get("check_val_every_n_epoch"), trainer.get("max_epochs")
    if every is not None and epochs is not None and epochs >= 1 and every > epochs:
        reason = (
            f"no validation would run in trainer.max_epochs={epochs} epochs, so "
            f"optimized_metric={optimized_metric} would never be measured"
        )
        raise SettingError("trainer.check_val_every_n_epoch", every, reason)
    if trainer.get("limit_val_batches") in (0, 0.0):
        reason = (
            f"no validation would run, so optimized_metric={optimized_metric} is never measured"
        )
        raise SettingError("trainer.limit_val_batches", trainer["limit_val_batches"], reason)
