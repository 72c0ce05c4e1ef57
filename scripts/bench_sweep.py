"""Wall time of a 4-job longtext sweep: Hydra's basic launcher vs. joblib, in one run.

    python scripts/bench_sweep.py                # 4 seeds of experiment=longtext, n_jobs=2
    python scripts/bench_sweep.py --n-jobs 4 -- trainer.max_epochs=50

Each sweep runs as a user would start it (a fresh `scripts/train.py -m` process, start-up
included) and writes into a temporary dir that is removed afterwards.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRAIN = Path(__file__).resolve().parent / "train.py"
SWEEP = ["-m", "experiment=longtext", "seed=0,1,2,3", "callbacks.progress_bar=null"]


def timed_sweep(launcher: list[str], extra: list[str]) -> float:
    with tempfile.TemporaryDirectory() as cwd:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(TRAIN), *SWEEP, *launcher, *extra],
            cwd=cwd,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"sweep with {launcher or 'the basic launcher'} failed:\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jobs", type=int, default=2, help="joblib's parallel jobs (2)")
    parser.add_argument("overrides", nargs="*", help="extra overrides for both sweeps")
    args = parser.parse_args()

    basic = timed_sweep([], args.overrides)
    parallel = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.n_jobs}"]
    joblib = timed_sweep(parallel, args.overrides)
    print(f"4-job sweep of experiment=longtext {' '.join(args.overrides)}".rstrip())
    print(f"  basic launcher            {basic:7.1f} s")
    print(f"  joblib, n_jobs={args.n_jobs:<2}         {joblib:7.1f} s")
    print(f"  speed-up                  {basic / joblib:7.2f}x")


if __name__ == "__main__":
    main()
