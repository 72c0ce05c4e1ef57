"""A job's metrics.json and .hydra/overrides.yaml, read as files anyone could have written.

A value of the wrong type makes a file unreadable, with the reason in one line for the report's
error column; nothing in either file is resolved, instantiated or called.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# both are a few kB when seqlab writes them: far more is someone else's file
MAX_BYTES = 16 * 2**20
# what RunSummary and record_failure write
STATUSES = ("completed", "failed", "interrupted", "running")


class Unreadable(ValueError):
    """Why a file cannot be used, in one line that names it."""


@dataclass
class Summary:
    status: str
    error: str
    optimized_metric: str | None
    epochs: int | None
    wall_time_s: float | None
    final: dict[str, float]
    best: dict[str, float]


def shown(value: Any) -> str:
    """``value`` as the error column shows it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise Unreadable(f"{path.name}: {size} bytes, more than seqlab ever writes there")
        return path.read_bytes().decode()
    except OSError as err:
        raise Unreadable(f"{path.name}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise Unreadable(f"{path.name}: not UTF-8 text (byte {err.start})") from None


def read_summary(path: Path) -> Summary:
    """The run's summary from its metrics.json; :class:`Unreadable` names what is wrong."""
    try:
        data = json.loads(read_text(path))
    except (ValueError, RecursionError) as err:
        if isinstance(err, Unreadable):
            raise
        raise Unreadable(f"{path.name}: not JSON ({_first_line(err)})") from None
    if not isinstance(data, dict):
        raise Unreadable(f"{path.name}: {shown(data)} is not a JSON object")

    def field(key: str, kinds: type | tuple[type, ...], expected: str) -> Any:
        value = data.get(key)
        # bool is an int to Python, never a count or a time to seqlab
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
            raise Unreadable(f'{path.name}: "{key}" is {shown(value)}, expected {expected}')
        return value

    status = field("status", str, "a status")
    if status not in STATUSES:
        raise Unreadable(
            f'{path.name}: "status" is {shown(status)}, expected one of {", ".join(STATUSES)}'
        )
    wall_time = field("wall_time_s", (int, float), "a number of seconds")
    return Summary(
        status=status,
        error=field("error", str, "a message") or "",
        optimized_metric=field("optimized_metric", str, "a metric name"),
        epochs=field("epochs", int, "a whole number"),
        wall_time_s=None if wall_time is None else float(wall_time),
        final=_metric_values(path, "final", data.get("final")),
        best=_metric_values(path, "best", data.get("best")),
    )


def _metric_values(path: Path, key: str, values: Any) -> dict[str, float]:
    if values is None:
        return {}
    numbers = isinstance(values, dict) and all(
        v is None or (isinstance(v, int | float) and not isinstance(v, bool))
        for v in values.values()
    )
    if not numbers:
        raise Unreadable(
            f'{path.name}: "{key}" is {shown(values)}, expected metric names and numbers'
        )
    # null (NaN, inf: also what a diverged metric is) has no value to rank or draw: left out
    return {name: v for name, v in ((n, _float(v)) for n, v in values.items()) if v is not None}


def _float(value: float | None) -> float | None:
    try:
        number = float(value) if value is not None else math.nan
    except OverflowError:  # an integer too large for a float
        return None
    return number if math.isfinite(number) else None


def read_overrides(path: Path) -> list[str]:
    """The overrides Hydra gave a job, from its .hydra/overrides.yaml."""
    try:
        items = yaml.safe_load(read_text(path))  # plain data: tags that build objects refused
    except (yaml.YAMLError, ValueError, RecursionError) as err:
        if isinstance(err, Unreadable):
            raise
        raise Unreadable(f"{path.name}: not YAML ({_first_line(err)})") from None
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise Unreadable(f"{path.name}: {shown(items)} is not a list of overrides")
    return items


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
