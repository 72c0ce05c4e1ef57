"""One step of the GPU check, in a process of its own:

    python -m seqlab.gpu_check.child SPEC.json RESULT.json

``train`` steps run `scripts/train.py` in this process once per run (the real Hydra entry
point: run dir, callbacks, metrics.json), ``bench`` steps run scripts/bench.py's two sides.
RESULT.json is rewritten after every run, so a step stopped at its timeout still shows what it
finished. Each run's CUDA memory peak is torch.cuda.max_memory_allocated() since its start.
"""

from __future__ import annotations

import argparse
import gc
import json
import runpy
import sys
import time
from pathlib import Path
from typing import Any

from seqlab.errors import first_line

ROOT = Path(__file__).resolve().parents[3]  # the checkout: scripts/ and conf/


def _cuda_used() -> bool:
    torch = sys.modules.get("torch")  # imported by a run, or not at all (a refused setting)
    return torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized()


def _start_peak() -> None:
    if _cuda_used():
        import torch

        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak() -> dict[str, Any]:
    if not _cuda_used():
        return {"peak_bytes": None}
    import torch

    return {"peak_bytes": torch.cuda.max_memory_allocated(), "device": torch.cuda.get_device_name()}


def _train(run: dict[str, Any]) -> dict[str, Any]:
    """``python scripts/train.py ARGV`` in this process; its metrics.json and step marks."""
    from seqlab.callbacks.step_timer import StepTimer

    script = str(ROOT / "scripts" / "train.py")
    argv, sys.argv = sys.argv, [script, *run["argv"]]
    StepTimer.marks.clear()
    _start_peak()
    started, error = time.perf_counter(), None
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as done:
        if done.code not in (0, None):
            error = done.code if isinstance(done.code, str) else f"exit status {done.code}"
    except Exception as err:
        error = f"{type(err).__name__}: {first_line(err)}"
    finally:
        sys.argv = argv
    found: dict[str, Any] = {"seconds": time.perf_counter() - started, **_peak()}
    metrics = Path(run["run_dir"]) / "metrics.json"
    if metrics.is_file():
        found["metrics"] = json.loads(metrics.read_text())
    found["timer"] = dict(StepTimer.marks)
    if error:
        found["error"] = error.removeprefix("error: ")
    return found


def _bench(spec: dict[str, Any], write: Any) -> None:
    """scripts/bench.py's plain loop and seqlab side for every cell and precision, ``rounds``
    times in rotating order, in this process (a fresh process for each costs seconds a side)."""
    bench = runpy.run_path(str(ROOT / "scripts" / "bench.py"), run_name="seqlab_bench")
    from seqlab.corpora import corpus_path

    corpus = Path(spec["corpus"] or corpus_path("tinyshakespeare.txt.gz"))
    from seqlab.precision import cpu_lstm_kernel_missing

    # on a CPU without oneDNN's bf16 LSTM kernel neither side can run an LSTM in bf16-mixed
    skipped = {
        f"{cell} {precision}": why
        for cell in spec["cells"]
        for precision in spec["precisions"]
        if spec["device"] == "cpu"
        and cell == "lstm"
        and (why := cpu_lstm_kernel_missing(precision))
    }
    sides = [
        (cell, precision, side)
        for cell in spec["cells"]
        for precision in spec["precisions"]
        if f"{cell} {precision}" not in skipped
        for side in ("plain", "seqlab")
    ]
    done: list[dict[str, Any]] = []
    write({"measurements": done, "cudnn": _cudnn(), "skipped": skipped})
    for round_ in range(spec["rounds"]):
        shift = round_ * len(sides) // spec["rounds"]
        for cell, precision, side in sides[shift:] + sides[:shift]:
            args = argparse.Namespace(
                corpus=corpus,
                device=spec["device"],
                precision=precision,
                cell=cell,
                hidden=spec["hidden"],
                layers=2,
                seq_len=spec["seq_len"],
                batch=spec["batch"],
                default_malloc=False,  # as seqlab's train() runs: keep_freed_memory
                steps=spec["steps"],
                warmup=spec["warmup"],
            )
            run = bench["plain_pytorch"] if side == "plain" else bench["seqlab_run"]
            _start_peak()
            measured = run(args)
            done.append({"cell": cell, "precision": precision, "side": side, **measured})
            done[-1].update(_peak())
            write({"measurements": done, "cudnn": _cudnn(), "skipped": skipped})


def _cudnn() -> int | None:
    import torch

    return torch.backends.cudnn.version() if torch.cuda.is_available() else None


def main() -> None:
    spec_file, result_file = map(Path, sys.argv[1:3])
    spec = json.loads(spec_file.read_text())

    def write(result: dict[str, Any]) -> None:
        partial = result_file.with_suffix(".partial")
        partial.write_text(json.dumps(result, indent=1, default=str))
        partial.replace(result_file)  # whole or not there, also when killed at the timeout

    if spec["kind"] == "bench":
        _bench(spec, write)
        return
    runs: dict[str, Any] = {}
    for run in spec["runs"]:
        runs[run["name"]] = _train(run)
        write({"runs": runs})


if __name__ == "__main__":
    main()
