"""The hihello lesson end to end: seqlab beside the plain PyTorch lesson script, in one run.

    python scripts/bench_startup.py              # 3 rounds
    python scripts/bench_startup.py --rounds 7

Each measurement is a fresh process, started as a user starts it: `scripts/plain/hihello.py`
and `scripts/train.py experiment=hihello` (default settings, in a temporary dir so that
outputs/ is left alone), and the floors under both, `python -c "import torch"` and
`python -c "import pytorch_lightning"`. The rounds rotate which goes first, so that neither
gains from the machine's drift; each is reported as the median and the spread (lowest to
highest) of its wall time, and of its CPU time (user + system: less moved by a busy machine).
Both lessons must print the lesson's outcome, the prediction "ihello", or the bench fails.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
AIM = 1.8  # seqlab / plain, wall time: issue 13
PREDICTED = "ihello"
SIDES = {
    "plain": [str(SCRIPTS / "plain" / "hihello.py")],
    "seqlab": [str(SCRIPTS / "train.py"), "experiment=hihello"],
    "import torch": ["-c", "import torch"],
    "import pytorch_lightning": ["-c", "import pytorch_lightning"],
}


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(side: str) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh process of ``side``, its outcome checked."""
    with tempfile.TemporaryDirectory() as cwd:
        cpu, start = _cpu_of_children(), time.perf_counter()
        done = subprocess.run(
            [sys.executable, *SIDES[side]], cwd=cwd, capture_output=True, text=True
        )
        wall, cpu = time.perf_counter() - start, _cpu_of_children() - cpu
        if done.returncode != 0:
            sys.exit(f"error: {side} exited with {done.returncode}:\n{done.stderr[-3000:]}")
        predicted = _predicted(side, done.stdout, Path(cwd))
    if predicted not in (None, PREDICTED):
        sys.exit(f"error: {side} predicted {predicted!r}, not the lesson's {PREDICTED!r}")
    return wall, cpu


def _predicted(side: str, stdout: str, cwd: Path) -> str | None:
    """What a lesson predicted (None for the import floors)."""
    if side == "plain":
        return stdout.strip().rsplit("predicted: ", 1)[-1]
    if side == "seqlab":
        [metrics] = cwd.glob("outputs/*/*/metrics.json")  # the run dir scripts/train.py made
        return json.loads(metrics.read_text())["predictions"][0]["predicted"]
    return None


def _median_spread(values: list[float]) -> str:
    return f"{statistics.median(values):5.2f} s ({min(values):.2f} to {max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every side (3)")
    args = parser.parse_args()

    sides = list(SIDES)
    walls: dict[str, list[float]] = {side: [] for side in sides}
    cpus: dict[str, list[float]] = {side: [] for side in sides}
    for round_ in range(args.rounds):
        for side in sides[round_ % len(sides) :] + sides[: round_ % len(sides)]:
            wall, cpu = measure(side)
            walls[side].append(wall)
            cpus[side].append(cpu)

    print(f"hihello end to end, median of {args.rounds} rounds (fresh processes, order rotating)")
    print(f"  {'':26} {'wall':24} cpu (user + system)")
    for side in sides:
        print(f"  {side:26} {_median_spread(walls[side]):24} {_median_spread(cpus[side])}")
    wall = statistics.median(walls["seqlab"]) / statistics.median(walls["plain"])
    cpu = statistics.median(cpus["seqlab"]) / statistics.median(cpus["plain"])
    verdict = "within" if wall <= AIM else "above"
    print(f"  seqlab / plain: {wall:.2f}x wall ({verdict} the {AIM}x aim), {cpu:.2f}x cpu")
    print(f"  both predicted {PREDICTED!r}")


if __name__ == "__main__":
    main()
