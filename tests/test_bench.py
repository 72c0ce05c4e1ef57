"""scripts/bench.py: its sides take turns, one at a time, and it reports each side's turns."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from seqlab.callbacks.step_timer import Turns

ROOT = Path(__file__).resolve().parents[1]


def test_sides_taking_turns_never_step_at_the_same_time() -> None:
    steps, turn = 6, 2
    spans: dict[str, list[tuple[float, float]]] = {"a": [], "b": []}
    ends: dict[str, float] = {}
    pipes = {}

    def side(name: str, inbox: int, outbox: int) -> None:
        turns = Turns(inbox, outbox, turn)
        for step in range(steps):
            turns.at_step(step)
            start = time.perf_counter()
            time.sleep(0.01)  # the step
            spans[name].append((start, time.perf_counter()))
        turns.finish()
        ends[name] = time.perf_counter()  # after the conductor's last line only

    threads = []
    for name in spans:
        to_side, from_side = os.pipe(), os.pipe()
        pipes[name] = (os.fdopen(to_side[1], "w"), os.fdopen(from_side[0], "r"))
        threads.append(threading.Thread(target=side, args=(name, to_side[0], from_side[1])))
        threads[-1].start()
    for name in spans:
        assert pipes[name][1].readline() == "ready\n"
    reported: dict[str, list[float]] = {name: [] for name in spans}
    for number in range(steps // turn):
        for name in ("a", "b") if number % 2 == 0 else ("b", "a"):
            pipes[name][0].write("go\n")
            pipes[name][0].flush()
            reported[name].append(float(pipes[name][1].readline()))
    last_turn_over = time.perf_counter()
    for name in spans:
        pipes[name][0].write("go\n")
        pipes[name][0].flush()
    for thread in threads:
        thread.join(timeout=10)

    assert all(len(seconds) == steps // turn for seconds in reported.values())
    # each turn's seconds cover its two steps, and no step of one side overlaps the other's
    assert all(seconds >= 2 * 0.01 for values in reported.values() for seconds in values)
    for start, end in spans["a"]:
        assert all(end <= s or e <= start for s, e in spans["b"])
    assert min(ends.values()) >= last_turn_over


def test_bench_reports_each_sides_turns_and_the_ratio_of_their_medians() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench.py"),
            *("--steps", "4", "--turn", "2", "--warmup", "1", "--rounds", "1"),
            *("--hidden", "8", "--layers", "1", "--seq-len", "10", "--batch", "4"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "median of 2 turns a side" in out
    plain = re.search(r"plain +fp32 +([\d,]+) +\(middle half", out)
    ours = re.search(r"seqlab +fp32 +([\d,]+) +\(middle half", out)
    ratio = re.search(r"seqlab / plain, fp32 +([\d.]+)", out)
    assert plain and ours and ratio, out
    medians = [float(m.group(1).replace(",", "")) for m in (plain, ours)]
    assert abs(float(ratio.group(1)) - medians[1] / medians[0]) < 0.01


def test_bench_refuses_a_turn_that_does_not_divide_the_steps() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--steps", "10", "--turn", "3"],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "error: --turn 3: must divide --steps (10) into whole turns"
    ]
