"""Metric keys, named once: the module logs them, callbacks, configs and tools read them.

Free of torch: the config path (`--help`, `--cfg job`) imports it."""

from __future__ import annotations

from seqlab.tasks import CLASSIFY, NEXT_TOKEN

TRAIN_LOSS = "train/loss"
TRAIN_ACC = "train/acc"
TRAIN_PPL = "train/ppl"  # perplexity: exp of the mean per-word loss, word-level models only
# the mean training loss of the last trainer.log_every_n_steps steps, logged at that interval:
# a curve within an epoch (loggers only; metrics.json keeps the epoch means)
TRAIN_LOSS_STEP = "train/loss_step"
VAL_LOSS = "val/loss"
VAL_ACC = "val/acc"
VAL_BPC = "val/bpc"  # bits per character: val/loss in base 2, character-level models only
VAL_PPL = "val/ppl"

# logged beside them when set: the AR and TAR penalties (added to the training loss, which
# train/loss leaves out), and whether NT-ASGD has switched to averaging (0 or 1)
TRAIN_AR = "train/ar"
TRAIN_TAR = "train/tar"
TRAIN_ASGD = "train/asgd"

# logged while training
METRICS = (TRAIN_LOSS, TRAIN_ACC, TRAIN_PPL, VAL_LOSS, VAL_ACC, VAL_BPC, VAL_PPL)

# the held-out test split, measured by scripts/eval.py only
TEST_LOSS = "test/loss"
TEST_ACC = "test/acc"
TEST_BPC = "test/bpc"
TEST_PPL = "test/ppl"
TEST_METRICS = (TEST_LOSS, TEST_ACC, TEST_BPC, TEST_PPL)

METRICS_FILE = "metrics.json"  # each run's final and best metrics, in its run dir


def logs_bpc(task: str, level: str = "char") -> bool:
    """Bits per character measure next-character prediction, not classification."""
    return task != CLASSIFY and level == "char"


def logs_ppl(task: str, level: str) -> bool:
    """Perplexity is the measure of next-word prediction (the published figures' unit)."""
    return task == NEXT_TOKEN and level == "word"


def task_metrics(task: str, level: str = "char") -> tuple[str, ...]:
    """The metrics a run of ``task`` on ``level`` tokens (char or word) logs while training."""
    skip = set()
    if not logs_bpc(task, level):
        skip.add(VAL_BPC)
    if not logs_ppl(task, level):
        skip |= {TRAIN_PPL, VAL_PPL}
    return tuple(m for m in METRICS if m not in skip)


def metric_mode(name: str) -> str:
    """``max`` for accuracies, ``min`` for losses and bits per character."""
    if name not in (*METRICS, *TEST_METRICS):
        raise ValueError(f"unknown metric {name!r}: expected one of {', '.join(METRICS)}")
    return "max" if name.endswith("/acc") else "min"
