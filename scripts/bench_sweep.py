"""Wall time of a 4-job longtext sweep: Hydra's basic launcher vs. joblib, in one run.

    python scripts/bench_sweep.py             # 4 seeds of experiment=longtext, n_jobs=2, 3 rounds
    python scripts/bench_sweep.py --n-jobs 4 --rounds 5 -- trainer.max_epochs=50

Each sweep runs as a user would start it (a fresh `scripts/train.py -m` process, start-up
included) and writes into a temporary dir that is removed afterwards. The rounds alternate
which launcher goes first; each is reported as the median and the spread (lowest to highest)
of its rounds, the speed-up as the ratio of the medians.
"""

from __future__ import annotations

import argparse
import statistics
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


def _median_spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.1f} s  ({min(values):.1f} to {max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jobs", type=int, default=2, help="joblib's parallel jobs (2)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both sweeps (3)")
    parser.add_argument("overrides", nargs="*", help="extra overrides for both sweeps")
    args = parser.parse_args()

    launchers = {
        "basic launcher": [],
        f"joblib, n_jobs={args.n_jobs}": [
            "hydra/launcher=joblib",
            f"hydra.launcher.n_jobs={args.n_jobs}",
        ],
    }
    times: dict[str, list[float]] = {name: [] for name in launchers}
    for round_ in range(args.rounds):
        for name in list(launchers)[:: 1 if round_ % 2 == 0 else -1]:
            times[name].append(timed_sweep(launchers[name], args.overrides))
    print(f"4-job sweep of experiment=longtext {' '.join(args.overrides)}".rstrip())
    print(f"median of {args.rounds} rounds, the launchers' order alternating")
    for name, values in times.items():
        print(f"  {name:24} {_median_spread(values)}")
    basic, joblib = (statistics.median(values) for values in times.values())
    print(f"  speed-up                 {basic / joblib:7.2f}x")


if __name__ == "__main__":
    main()
