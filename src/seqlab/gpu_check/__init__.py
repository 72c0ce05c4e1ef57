"""The GPU check: seqlab's promises on one CUDA GPU, in one command of at most 8 minutes.

    python scripts/gpu_check.py             # on a machine with CUDA
    python scripts/gpu_check.py --dry-run   # the same steps on the CPU, budgets of seconds

Steps (each a process of its own, with a timeout): the lessons with trainer=gpu, bench.py's
plain loop vs seqlab for rnn / lstm / gru in 32-true and bf16-mixed, 3 minutes of
experiment=shakespeare, one epoch of experiment=wikitext2, experiment=longtext under
trainer=ddp on one GPU; each run's CUDA memory peak. One table, printed and written to
--out as gpu_check.md and gpu_check.json; exit status 1 if any row FAILED.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from seqlab.gpu_check.plan import ORDER, Step, plan
from seqlab.gpu_check.rows import FAILED, Row
from seqlab.gpu_check.runner import run_step
from seqlab.gpu_check.table import markdown, write

DEADLINE = 8 * 60 - 15  # seconds, all steps together on CUDA: 8 minutes with this process's
MIN_TIMEOUT = 10  # seconds: a step left less than this by the deadline is not started


def run_steps(steps: list[Step], out: Path, deadline: float | None = None) -> list[Row]:
    """Every step, in turn; a step never runs past ``deadline`` seconds from now. The rows in
    the table's order."""
    started, found = time.perf_counter(), {}
    for step in steps:
        timeout = step.timeout
        if deadline is not None:
            timeout = min(timeout, deadline - (time.perf_counter() - started))
            if timeout < MIN_TIMEOUT:
                reason = f"not run: the {deadline:.0f} s deadline was reached"
                found[step.name] = [Row(name, status=FAILED, reason=reason) for name in step.rows]
                continue
        print(f"gpu check: {step.name} (up to {timeout:.0f} s) ...", flush=True)
        found[step.name] = run_step(step, out / "logs", timeout)
    ranked = sorted(found, key=lambda name: ORDER.index(name) if name in ORDER else len(ORDER))
    return [row for name in ranked for row in found[name]]


def main(argv: list[str] | None = None) -> int:
    """The command; returns its exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="the same steps on the CPU, tiny")
    default_out = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path("outputs/gpu_check")
    parser.add_argument(
        "--out",
        type=Path,
        default=default_out,
        help="(default: $OUT if set, else outputs/gpu_check)",
    )
    parser.add_argument(
        "--runs",
        type=Path,
        default=Path("outputs/gpu_check/runs"),
        help="where the steps' run dirs (checkpoints, TensorBoard) go (outputs/gpu_check/runs)",
    )
    parser.add_argument(
        "--bigger",
        action="store_true",
        help="also 3 minutes of a bigger shakespeare model (2 x 512, batch 128): 11 min in all",
    )
    args = parser.parse_args(argv)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit(
            "error: CUDA is not available on this machine: "
            "use --dry-run to run the same steps on the CPU"
        )
    out = args.out.resolve()
    # run dirs apart from --out: a device machine sends back --out, not the checkpoints
    runs = args.runs.resolve() / time.strftime("%Y-%m-%d_%H-%M-%S")  # never a rerun's
    steps = plan(runs, args.dry_run, args.bigger)
    started = time.perf_counter()
    rows = run_steps(steps, out, None if args.dry_run else DEADLINE + 180 * args.bigger)
    devices = {d for row in rows if (d := row.figures.get("device"))}
    header = {
        "mode": "dry run (CPU)" if args.dry_run else "CUDA",
        "device": ", ".join(sorted(devices)) or platform.processor() or "cpu",
        "torch": torch.__version__,
        "wall s": round(time.perf_counter() - started, 1),
        "runs": str(runs),
    }
    as_json, as_md = write(rows, header, out)
    print(markdown(rows, header), end="")
    failed = [row.step for row in rows if row.status == FAILED]
    print(f"written: {as_md}, {as_json}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
