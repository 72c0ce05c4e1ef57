"""A step's result as rows of the table: the figures measured and whether the promise held."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqlab.gpu_check.plan import Step

OK, FAILED, SKIPPED = "ok", "FAILED", "skipped"
NOT_CHECKED = "not checked (dry run)"
NOT_RUN, NOT_MEASURED = "did not run", "not measured"
# the lessons' promises, as tests/test_lessons.py asserts them
PREDICTS = {
    "hihello": "ihello",
    "charseq": "if you want you",
    "seoul": "seoul is the capital of south korea",
}
SENTIMENT = {"good": "1", "bad": "0", "worse": "0", "so good": "1"}
MIN_ACC = 0.95  # longtext, also under DDP: the test's floor (the README's run: 0.994)
NANOGPT = "nanoGPT's 10.7 M-parameter transformer: 1.4697 in about 3 min on an A100"


@dataclass
class Row:
    step: str
    measured: str = ""  # the figures, as a person reads them
    outcome: str = ""  # the promise and whether it held
    seconds: float | None = None
    gpu_peak_mib: float | None = None  # None: not on CUDA (n/a)
    status: str = OK
    reason: str = ""  # why FAILED, one line
    figures: dict[str, Any] = field(default_factory=dict)  # the numbers, for the JSON

    def fail(self, reason: str) -> None:
        self.status, self.reason = FAILED, self.reason or reason


def _mib(peak: int | None) -> float | None:
    return None if peak is None else round(peak / 2**20, 1)


def _check(row: Row, held: bool, promise: str, dry_run: bool) -> None:
    if dry_run:
        row.outcome = f"{promise}: {NOT_CHECKED}"
    elif held:
        row.outcome = f"{promise}: reached"
    else:
        row.outcome = f"{promise}: MISSED"
        row.fail(f"missed: {promise}")


def _lesson(row: Row, name: str, found: dict[str, Any], dry_run: bool) -> None:
    metrics = found["metrics"]
    final = metrics["final"]
    row.figures = {"epochs": metrics["epochs"], "val/acc": final.get("val/acc")}
    if name in PREDICTS:
        [prediction] = metrics["predictions"]
        row.figures["predicted"] = prediction["predicted"]
        row.measured = f"predicts '{prediction['predicted']}', val/acc {final['val/acc']:.3f}"
        held = prediction["predicted"] == PREDICTS[name]
        _check(row, held, f"predicts '{PREDICTS[name]}'", dry_run)
    elif name == "sentiment":
        labels = {p["text"]: p["predicted"] for p in metrics["predictions"]}
        lowest = min(p["probability"] for p in metrics["predictions"])
        right = sum(labels.get(text) == label for text, label in SENTIMENT.items())
        row.figures.update(right=right, lowest_probability=lowest)
        row.measured = f"{right} of 4 right, lowest p {lowest:.3f}"
        _check(row, right == 4 and lowest > 0.5, "all four right, p > 0.5", dry_run)
    else:
        row.measured = f"val/acc {final['val/acc']:.4f} after {metrics['epochs']} epochs"
        _check(row, final["val/acc"] >= MIN_ACC, f"val/acc >= {MIN_ACC}", dry_run)


def _timed(found: dict[str, Any]) -> tuple[int, float, float]:
    """Steps trained, their seconds (first step to last), one epoch's batches."""
    timer = found.get("timer", {})
    if "timed_end" not in timer:
        raise KeyError("no training step was timed")
    per_epoch = timer.get("batches_per_epoch")
    per_epoch = float(per_epoch) if per_epoch is not None else math.inf
    return int(timer["steps"]), timer["timed_end"] - timer["first_step"], per_epoch


def _shakespeare(row: Row, found: dict[str, Any]) -> None:
    metrics = found["metrics"]
    steps, seconds, _ = _timed(found)
    loss = metrics["final"]["val/loss"]
    row.figures = {
        "val/loss": loss,
        "best val/loss": metrics["best"]["val/loss"],
        "steps": steps,
        "train_s": seconds,
    }
    row.measured = (
        f"val/loss {loss:.4f} nats/char (best {metrics['best']['val/loss']:.4f}), "
        f"{steps:,} steps in {seconds:.0f} s"
    )
    row.outcome = f"for scale: {NANOGPT}"
    if not math.isfinite(loss):
        row.fail(f"val/loss {loss}")


def _wikitext2(row: Row, found: dict[str, Any], dry_run: bool) -> None:
    metrics = found["metrics"]
    steps, seconds, per_epoch = _timed(found)
    ppl = metrics["final"]["val/ppl"]
    whole = steps >= per_epoch
    epoch_s = seconds if whole else seconds / steps * per_epoch
    row.figures = {
        "s/epoch": epoch_s,
        "val/ppl": ppl,
        "steps": steps,
        "batches_per_epoch": per_epoch,
        "extrapolated": not whole,
    }
    if whole:
        row.measured = f"{epoch_s:.1f} s/epoch ({steps:,} steps), val/ppl {ppl:.2f} after 1 epoch"
    else:
        row.measured = (
            f"{epoch_s:.1f} s/epoch EXTRAPOLATED from {steps:,} of {per_epoch:,.0f} steps "
            f"({seconds:.1f} s); val/ppl {ppl:.2f} after those steps, not a whole epoch"
        )
    row.outcome = "README, 2 CPU cores: 1 epoch 16.4 min, val/ppl 261.4"
    if dry_run:
        row.outcome = "dry run: 200 lines of each split, not comparable"


def _ddp(row: Row, found: dict[str, Any], run_dir: Path, dry_run: bool) -> None:
    acc = found["metrics"]["final"]["val/acc"]
    dirs = sum(1 for _ in run_dir.parent.rglob("metrics.json"))
    row.figures = {"val/acc": acc, "run_dirs": dirs}
    row.measured = f"val/acc {acc:.4f}, {dirs} run dir"
    _check(row, acc >= MIN_ACC, f"val/acc >= {MIN_ACC}", dry_run)
    if dirs != 1:
        row.fail(f"{dirs} run dirs, expected 1")


def train_rows(step: Step, result: dict[str, Any]) -> list[Row]:
    """Rows of a ``train`` step from the child's results (missing runs: FAILED)."""
    rows = []
    for run, name in zip(step.spec["runs"], step.rows, strict=True):
        row = Row(name)
        rows.append(row)
        found = result.get("runs", {}).get(run["name"])
        if found is None:
            row.fail(NOT_RUN)
            continue
        row.seconds, row.gpu_peak_mib = round(found["seconds"], 1), _mib(found["peak_bytes"])
        if "error" in found:
            row.fail(found["error"])
        if "metrics" not in found:
            row.fail("no metrics.json")
            continue
        try:
            if step.name == "lessons":
                _lesson(row, run["name"], found, step.dry_run)
            elif step.name == "ddp":
                _ddp(row, found, Path(run["run_dir"]), step.dry_run)
            elif step.name == "wikitext2":
                _wikitext2(row, found, step.dry_run)
            else:
                _shakespeare(row, found)
        except (KeyError, ValueError, TypeError, ZeroDivisionError) as err:
            row.fail(f"no figure: {type(err).__name__} {err}")
        if found.get("device"):
            row.figures["device"] = found["device"]
    return rows


def bench_rows(step: Step, result: dict[str, Any]) -> list[Row]:
    """Per cell and precision: median tokens/s of each side, and seqlab / plain."""
    rows, done = [], result.get("measurements", [])
    for cell in step.spec["cells"]:
        for precision in step.spec["precisions"]:
            row = Row(f"bench {cell} {precision}")
            rows.append(row)
            if why := result.get("skipped", {}).get(f"{cell} {precision}"):
                row.status, row.outcome = SKIPPED, f"not run: {why}"
                continue
            ours = [m for m in done if (m["cell"], m["precision"]) == (cell, precision)]
            speed = {
                side: [m["tokens_per_s"] for m in ours if m["side"] == side]
                for side in ("plain", "seqlab")
            }
            if not speed["plain"] or not speed["seqlab"]:
                row.fail(NOT_MEASURED)
                continue
            plain, seqlab = (statistics.median(speed[s]) for s in ("plain", "seqlab"))
            peaks = [m["peak_bytes"] for m in ours if m.get("peak_bytes") is not None]
            row.gpu_peak_mib = _mib(max(peaks)) if peaks else None
            rounds = min(len(v) for v in speed.values())
            row.figures = {
                "plain_tokens_per_s": plain,
                "seqlab_tokens_per_s": seqlab,
                "ratio": seqlab / plain,
                "rounds": rounds,
            }
            if devices := {m["device"] for m in ours if m.get("device")}:
                row.figures["device"] = devices.pop()
            row.measured = (
                f"plain {plain:,.0f}, seqlab {seqlab:,.0f} tokens/s, "
                f"ratio {seqlab / plain:.3f} (medians of {rounds})"
            )
            kernels = f"cuDNN {result['cudnn']}" if result.get("cudnn") else "CPU kernels"
            row.outcome = f"{kernels}, {step.spec['steps']} timed steps"
    return rows
