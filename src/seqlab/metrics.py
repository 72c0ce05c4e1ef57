"""Metric keys, named once: the module logs them, callbacks, configs and tools read them."""

from __future__ import annotations

from seqlab.data.base import CLASSIFY

TRAIN_LOSS = "train/loss"
TRAIN_ACC = "train/acc"
VAL_LOSS = "val/loss"
VAL_ACC = "val/acc"
VAL_BPC = "val/bpc"  # bits per character: val/loss in base 2, next-token tasks only

METRICS = (TRAIN_LOSS, TRAIN_ACC, VAL_LOSS, VAL_ACC, VAL_BPC)


def task_metrics(task: str) -> tuple[str, ...]:
    """The metrics a run of ``task`` logs."""
    return tuple(m for m in METRICS if not (m == VAL_BPC and task == CLASSIFY))


def metric_mode(name: str) -> str:
    """``max`` for accuracies, ``min`` for losses and bits per character."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}: expected one of {', '.join(METRICS)}")
    return "max" if name.endswith("/acc") else "min"
