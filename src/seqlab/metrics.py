"""Metric keys, named once: the module logs them, callbacks, configs and tools read them.

Free of torch: the config path (`--help`, `--cfg job`) imports it."""

from __future__ import annotations

from seqlab.tasks import CLASSIFY

TRAIN_LOSS = "train/loss"
TRAIN_ACC = "train/acc"
VAL_LOSS = "val/loss"
VAL_ACC = "val/acc"
VAL_BPC = "val/bpc"  # bits per character: val/loss in base 2, next-token tasks only

METRICS = (TRAIN_LOSS, TRAIN_ACC, VAL_LOSS, VAL_ACC, VAL_BPC)  # logged while training

# the held-out test split, measured by scripts/eval.py only
TEST_LOSS = "test/loss"
TEST_ACC = "test/acc"
TEST_BPC = "test/bpc"
TEST_METRICS = (TEST_LOSS, TEST_ACC, TEST_BPC)

METRICS_FILE = "metrics.json"  # each run's final and best metrics, in its run dir


def logs_bpc(task: str) -> bool:
    """Bits per character measure next-character prediction, not classification."""
    return task != CLASSIFY


def task_metrics(task: str) -> tuple[str, ...]:
    """The metrics a run of ``task`` logs while training."""
    return tuple(m for m in METRICS if m != VAL_BPC or logs_bpc(task))


def metric_mode(name: str) -> str:
    """``max`` for accuracies, ``min`` for losses and bits per character."""
    if name not in (*METRICS, *TEST_METRICS):
        raise ValueError(f"unknown metric {name!r}: expected one of {', '.join(METRICS)}")
    return "max" if name.endswith("/acc") else "min"
