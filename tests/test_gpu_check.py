"""scripts/gpu_check.py: its dry run on the CPU, and a step that fails."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import seqlab.gpu_check as gpu_check
from seqlab.gpu_check.plan import BENCH_CELLS, BENCH_PRECISIONS, LESSONS, Step, train_run
from seqlab.gpu_check.rows import FAILED, OK, SKIPPED, bench_rows
from seqlab.gpu_check.table import markdown
from seqlab.precision import cpu_lstm_kernel_missing

ROOT = Path(__file__).resolve().parents[1]
STEP_ROWS = [
    *(f"lesson {name}" for name in LESSONS),
    *(f"bench {cell} {precision}" for cell in BENCH_CELLS for precision in BENCH_PRECISIONS),
    "shakespeare",
    "wikitext2",
    "ddp",
]


def _numbers(figures: dict) -> list[float]:
    return [v for v in figures.values() if isinstance(v, int | float) and not isinstance(v, bool)]


def test_dry_run_measures_every_step_on_the_cpu(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--dry-run"]
    done = subprocess.run(
        [*command, "--out", str(tmp_path), "--runs", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record = json.loads((tmp_path / "gpu_check.json").read_text())
    assert record["mode"] == "dry run (CPU)"
    assert [row["step"] for row in record["rows"]] == STEP_ROWS
    # what this CPU cannot run (an LSTM in bf16-mixed without AVX-512) is skipped, saying why
    missing = {
        f"bench lstm {p}": why for p in BENCH_PRECISIONS if (why := cpu_lstm_kernel_missing(p))
    }
    for row in record["rows"]:
        if row["step"] in missing:
            assert row["status"] == SKIPPED, row
            assert row["outcome"] == f"not run: {missing[row['step']]}"
            continue
        assert row["status"] == OK, row
        assert row["measured"] and row["seconds"] > 0, row
        assert _numbers(row["figures"]) and all(map(math.isfinite, _numbers(row["figures"])))
        assert row["gpu_peak_mib"] is None  # no CUDA: n/a
    figures = {row["step"]: row["figures"] for row in record["rows"]}
    assert figures["ddp"]["run_dirs"] == 1
    assert figures["bench gru bf16-mixed"]["plain_tokens_per_s"] > 0
    table = (tmp_path / "gpu_check.md").read_text()
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(lines) == 2 + len(STEP_ROWS)  # header, rule, one row a step
    assert all(line.split(" | ")[-2] == "n/a" for line in lines[2:])
    assert table in done.stdout


def test_a_failing_step_is_failed_with_its_reason_and_exit_status_1(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    bad = Step(
        "lessons",
        {"kind": "train", "runs": [train_run("nope", runs / "nope", "experiment=nope")]},
        timeout=120,
        dry_run=True,
    )
    hung = Step(  # killed at its timeout, long before it could train
        "ddp",
        {"kind": "train", "runs": [train_run("ddp", runs / "ddp", "experiment=hihello")]},
        timeout=1,
        dry_run=True,
    )
    monkeypatch.setattr(gpu_check, "plan", lambda *args: [bad, hung])

    status = gpu_check.main(["--dry-run", "--out", str(tmp_path), "--runs", str(runs)])

    assert status == 1
    rows = json.loads((tmp_path / "gpu_check.json").read_text())["rows"]
    assert [(row["step"], row["status"]) for row in rows] == [
        ("lesson nope", FAILED),
        ("ddp", FAILED),
    ]
    assert rows[0]["reason"].startswith("experiment='nope' is invalid: expected one of ")
    assert rows[1]["reason"].startswith("timed out after 1 s")
    table = (tmp_path / "gpu_check.md").read_text()
    assert "| FAILED: experiment='nope' is invalid" in table


def test_a_bench_pair_this_cpu_cannot_run_is_a_skipped_row_saying_why():
    step = Step(
        "bench",
        {"kind": "bench", "cells": ["lstm"], "precisions": ["32-true", "bf16-mixed"], "steps": 3},
        timeout=60,
        dry_run=True,
    )
    measured = [
        {"cell": "lstm", "precision": "32-true", "side": side, "tokens_per_s": speed}
        for side, speed in (("plain", 1000.0), ("seqlab", 990.0))
    ]
    why = "this CPU has no bf16 kernel for oneDNN's LSTM layer (it needs AVX-512)"
    result = {"measurements": measured, "skipped": {"lstm bf16-mixed": why}}

    fp32, bf16 = bench_rows(step, result)

    assert (fp32.status, round(fp32.figures["ratio"], 3)) == (OK, 0.99)
    assert (bf16.status, bf16.outcome, bf16.figures) == (SKIPPED, f"not run: {why}", {})
    [_, bf16_line] = markdown([fp32, bf16], {"mode": "dry run"}).splitlines()[-4:-2]
    assert bf16_line.startswith(f"| bench lstm bf16-mixed |  | not run: {why} |")
    assert bf16_line.endswith("| skipped |")
