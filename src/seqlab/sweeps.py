"""The jobs a sweep planned, read back from the multirun.yaml Hydra writes as it starts.

A sweep that ends early (a worker killed, Ctrl-C) leaves no dir for the jobs it never started;
the plan is how a report knows they exist. Only Hydra's basic sweeper has a plan to read: an
Optuna study decides each trial as it goes.
"""

from __future__ import annotations

import math
import os
import shlex
from itertools import islice
from pathlib import Path
from typing import Any

import yaml
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, RangeSweep
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

SWEEP_FILE = "multirun.yaml"
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
# beyond this a plan is no list a report could show (and range(0, 10**12) is a short line)
MAX_JOBS = 100_000


def planned_jobs(sweep_dir: Path) -> list[list[str]] | None:
    """Every job of a basic-sweeper sweep, in launch order, as the overrides it was given.

    None where the plan cannot be known: no readable multirun.yaml, another sweeper, sweep
    values that Hydra resolved or listed from the config dir (``${...}``, ``glob(...)``), or
    more than MAX_JOBS jobs.
    """
    lines = _sweep_lines(sweep_dir / SWEEP_FILE)
    if lines is None:
        return None
    # Hydra's own parser and product, as BasicSweeper.sweep does; they evaluate nothing but
    # the grammar's built-in sweeps (choice, range, sort, ...). Any line they cannot read
    # means no plan, whatever the exception.
    try:
        overrides = OverridesParser.create().parse_overrides(lines)
        if math.prod(_count(override) for override in overrides) > MAX_JOBS:
            return None
        batches = BasicSweeper.split_arguments(overrides, max_batch_size=None)
    except Exception:
        return None
    return [list(job) for batch in batches for job in batch]


def _sweep_lines(path: Path) -> list[str] | None:
    """The sweeper's params as ``key=value`` and the command line's task overrides, or None."""
    try:
        config = yaml.safe_load(path.read_text())  # plain data: nothing in it is resolved
    except (OSError, ValueError, yaml.YAMLError, RecursionError):
        return None
    hydra = _get(config, "hydra")
    sweeper, task = _get(hydra, "sweeper"), _get(_get(hydra, "overrides"), "task")
    if _get(sweeper, "_target_") != BASIC_SWEEPER or not _strings(task):
        return None
    params = _get(sweeper, "params") or {}
    if not isinstance(params, dict):
        return None
    lines = []
    for key, value in params.items():
        # the sweeper got its params resolved, which a file's plain text cannot be
        if not isinstance(key, str) or not _scalar(value) or "${" in str(value):
            return None
        lines.append(f"{key}={value}")
    return lines + task


def _get(node: Any, key: str) -> Any:
    return node.get(key) if isinstance(node, dict) else None


def _strings(items: Any) -> bool:
    return isinstance(items, list) and all(isinstance(item, str) for item in items)


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _count(override: Override) -> int:
    """How many values ``override`` sweeps, without listing a range (it may be huge)."""
    if not override.is_sweep_override():
        return 1
    sweep = override.value()
    if isinstance(sweep, RangeSweep):
        values = sweep.range()
        if isinstance(values, range):
            return len(values)
        return max(0, math.ceil((values.stop - values.start) / values.step))
    return sum(1 for _ in islice(override.sweep_string_iterator(), MAX_JOBS + 1))


class PrintSweepEnd(Callback):
    """At the end of a sweep whose jobs all ran: where they are, and the report that reads them."""

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:
        sweep_dir = os.path.relpath(str(config.hydra.sweep.dir))
        print(f"sweep dir: {sweep_dir}\n{report_command(sweep_dir)}")


def report_command(sweep_dir: str | Path) -> str:
    """The line that tells how to report on ``sweep_dir``, as a shell reads it."""
    return f"report:    python scripts/report.py {shlex.quote(os.path.relpath(sweep_dir))}"
