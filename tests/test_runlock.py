"""One training process per run dir: a second `train.py resume=DIR` is refused, the first is
untouched, and the lock ends with its holder, however it ends."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import QUIET, ROOT, run_script
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seqlab.checkpoint import load_checkpoint
from seqlab.errors import SettingError
from seqlab.runlock import RunLock, lock_state

# takes the lock on argv[1], forks a child that sleeps, prints both pids once the child runs
# (its at-fork clean-up done: on a loaded machine a child may not have run yet), and waits
HOLDER = """
import os, sys, time
from seqlab.runlock import RunLock
RunLock.acquire(sys.argv[1], "resume", sys.argv[1])
running, started = os.pipe()
child = os.fork()
if child == 0:
    os.write(started, b"1")
    time.sleep(60)
    os._exit(0)
os.close(started)
os.read(running, 1)
print(os.getpid(), child, flush=True)
sys.stdin.read()
"""


@contextmanager
def held_by_another_process(run_dir: Path) -> Iterator[tuple[subprocess.Popen, int]]:
    """A process holding ``run_dir``'s lock, with a forked child (as a DataLoader worker is)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        _, child = map(int, holder.stdout.readline().split())
        yield holder, child
    finally:
        holder.kill()
        holder.wait()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def test_a_run_dir_locked_by_another_process_is_refused_naming_it_and_left_as_it_was(tmp_path):
    with held_by_another_process(tmp_path) as (holder, _):
        before = (tmp_path / ".lock").read_bytes()

        with pytest.raises(SettingError) as error:
            RunLock.acquire(tmp_path, "resume", "outputs/run")

        assert str(error.value) == (
            f"resume='outputs/run' is invalid: another process (pid {holder.pid} on "
            f"{socket.gethostname()}) is training in this run dir"
        )
        assert (tmp_path / ".lock").read_bytes() == before
        assert lock_state(tmp_path) == "held"


def test_the_lock_ends_with_its_holder_killed_even_while_its_forked_child_lives(tmp_path):
    with held_by_another_process(tmp_path) as (holder, child):
        assert lock_state(tmp_path) == "held"

        holder.send_signal(signal.SIGKILL)  # no clean-up of any kind
        holder.wait()

        os.kill(child, 0)  # the child still lives, and does not hold the lock for it
        assert lock_state(tmp_path) == "free"
        lock = RunLock.acquire(tmp_path, "resume", str(tmp_path))
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
        lock.release()


def test_a_process_keeps_one_lock_and_may_take_its_own_run_dir_again(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    assert lock_state(first) is None  # no .lock: nothing ever trained there

    lock = RunLock.acquire(first, "paths.output_dir", str(first))
    assert RunLock.acquire(first, "resume", str(first)) is lock  # resumed in this process
    assert lock_state(first) == "held"

    other = RunLock.acquire(second, "paths.output_dir", str(second))  # the next job of a sweep
    assert lock_state(first) == "free" and lock_state(second) == "held"
    other.release()
    assert lock_state(second) == "free"


def test_a_lock_file_that_is_a_link_is_refused_and_its_target_untouched(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lock").symlink_to(target)

    with pytest.raises(SettingError, match=r"^resume='run' is invalid: cannot open .*\.lock"):
        RunLock.acquire(tmp_path / "run", "resume", "run")

    assert target.read_text() == "keep me"
    assert lock_state(tmp_path / "run") is None


# --- train.py -----------------------------------------------------------------------------------

# one thread: two processes on a busy machine's cores would oversubscribe them many times over
LONGTEXT = ["experiment=longtext", "num_threads=1", *QUIET]


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_a_second_resume_of_a_training_run_is_refused_and_the_first_ends_whole(tmp_path):
    short = run_script(
        "train.py", *LONGTEXT, "trainer.max_epochs=1", "hydra.run.dir=run", cwd=tmp_path
    )
    assert short.returncode == 0, short.stderr
    run = tmp_path / "run"

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), *LONGTEXT, "resume=run"]
    first = subprocess.Popen(
        [*command, "trainer.max_epochs=40"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "first.err").open("w"),
    )
    deadline = time.monotonic() + 120
    while _summary(run)["epochs"] < 2:  # the short run wrote epoch 1: this one is training
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    # frozen, not killed: it holds its lock mid-run however long the second takes to start
    first.send_signal(signal.SIGSTOP)
    files = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    try:
        second = run_script(
            "train.py", *LONGTEXT, "resume=run", "trainer.max_epochs=40", cwd=tmp_path
        )
        # the refused one changed nothing, not even train.log, and left no config of its own
        assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == files
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=120) == 0, (tmp_path / "first.err").read_text()

    assert second.returncode == 1
    assert second.stderr.strip().splitlines() == [
        f"error: resume='run' is invalid: another process (pid {first.pid} on "
        f"{socket.gethostname()}) is training in this run dir"
    ]
    summary = _summary(run)
    assert (summary["status"], summary["epochs"]) == ("completed", 40)
    for name in ("best", "last"):  # whole, and written by the resumed run
        assert load_checkpoint(run / "checkpoints" / f"{name}.ckpt")["epoch"] >= 1
    # the events of the short run and of the first resume, each epoch once: none of the second
    assert len(list(run.glob("events.out.tfevents.*"))) == 2
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    steps = [e.step for e in events.Scalars("val/loss")]
    assert len(steps) == len(set(steps)) == 40
    assert lock_state(run) == "free"
