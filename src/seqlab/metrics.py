"""Metric keys, named once: the module logs them, callbacks, configs and tools read them.

Free of torch: the config path (`--help`, `--cfg job`) imports it."""

from __future__ import annotations

from seqlab.tasks import CLASSIFY

TRAIN_LOSS = "train/loss"
TRAIN_ACC = "train/acc"
VAL_LOSS = "val/loss"
VAL_ACC = "val/acc"
VAL_BPC = "val/bpc"  # bits per character: val/loss in base 2, next-token tasks only

METRICS = (TRAIN_LOSS, TRAIN_ACC, VAL_LOSS, VAL_ACC, VAL_BPC)

METRICS_FILE = "metrics.json"  # each run's final and best metrics, in its run dir


def task_metrics(task: str) -> tuple[str, ...]:
    """The metrics a run of ``task`` logs."""
    return tuple(m for m in METRICS if not (m == VAL_BPC and task == CLASSIFY))


def metric_mode(name: str) -> str:
    """``max`` for accuracies, ``min`` for losses and bits per character."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}: expected one of {', '.join(METRICS)}")
    return "max" if name.endswith("/acc") else "min"
