"""The check's one table: markdown for people, JSON for machines, both under --out."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from seqlab.gpu_check.rows import FAILED, Row

COLUMNS = ("step", "measured", "outcome", "s", "GPU peak MiB", "status")


def _cells(row: Row) -> list[str]:
    peak = "n/a" if row.gpu_peak_mib is None else f"{row.gpu_peak_mib:,.1f}"
    seconds = "" if row.seconds is None else f"{row.seconds:.1f}"
    status = f"FAILED: {row.reason}" if row.status == FAILED else row.status
    return [row.step, row.measured, row.outcome, seconds, peak, status]


def markdown(rows: list[Row], header: dict[str, Any]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    title = ", ".join(f"{key} {value}" for key, value in header.items())
    lines = [f"GPU check: {title}", "", line(list(COLUMNS)), line(["---"] * len(COLUMNS))]
    body = [line(_cells(row)) for row in rows]
    notes = [
        "",
        "s: a run's seconds in its step's process (a process's first run includes importing "
        "torch); a bench row's: the whole bench step",
    ]
    return "\n".join([*lines, *body, *notes]) + "\n"


def write(rows: list[Row], header: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """``out/gpu_check.json`` and ``out/gpu_check.md``; the markdown is also returned printed."""
    out.mkdir(parents=True, exist_ok=True)
    as_json, as_md = out / "gpu_check.json", out / "gpu_check.md"
    record = {**header, "rows": [asdict(row) for row in rows]}
    as_json.write_text(json.dumps(record, indent=1, default=str) + "\n")
    as_md.write_text(markdown(rows, header))
    return as_json, as_md
