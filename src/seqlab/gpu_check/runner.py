"""Each step in a process of its own, with a timeout: one that fails or hangs is FAILED with its
one-line reason, and the others still run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from seqlab.gpu_check.plan import Step
from seqlab.gpu_check.rows import (
    FAILED,
    NOT_MEASURED,
    NOT_RUN,
    SKIPPED,
    Row,
    bench_rows,
    train_rows,
)


def _last_line(log: Path) -> str:
    """The last line a failed process wrote: Python's exception, or seqlab's one-line error."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    return next((line for line in reversed(lines) if line), "no output")


def run_step(step: Step, work: Path, timeout: float) -> list[Row]:
    """Run ``step`` in `python -m seqlab.gpu_check.child`, killed (its whole process group)
    after ``timeout`` seconds; its rows, from whatever it finished."""
    work.mkdir(parents=True, exist_ok=True)
    spec, result_file, log = (work / f"{step.name}.{kind}" for kind in ("spec.json", "json", "log"))
    spec.write_text(json.dumps(step.spec, indent=1))
    command = [sys.executable, "-m", "seqlab.gpu_check.child", str(spec), str(result_file)]
    started, failure = time.perf_counter(), None
    with log.open("w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            status = process.wait(timeout=max(timeout, 1))
            if status != 0:
                failure = f"exit status {status}: {_last_line(log)}"
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # DataLoader workers, DDP ranks with it
            process.wait()
            failure = f"timed out after {timeout:.0f} s (log: {log})"
    seconds = time.perf_counter() - started
    result: dict[str, Any] = json.loads(result_file.read_text()) if result_file.is_file() else {}
    rows = bench_rows(step, result) if step.spec["kind"] == "bench" else train_rows(step, result)
    bench = step.spec["kind"] == "bench"
    for row in rows:
        if bench:
            row.seconds = round(seconds, 1)  # the whole bench step
    if failure:
        # the rows the failure cut short take its reason; if it cut none, every row does
        unfinished = [row for row in rows if _unfinished(row, step)]
        for row in unfinished or [row for row in rows if row.status not in (FAILED, SKIPPED)]:
            row.status, row.reason = FAILED, failure
    return rows


def _unfinished(row: Row, step: Step) -> bool:
    if row.status == SKIPPED:
        return False
    if row.status == FAILED and row.reason in (NOT_RUN, NOT_MEASURED):
        return True
    return step.spec["kind"] == "bench" and row.figures.get("rounds", 0) < step.spec["rounds"]
