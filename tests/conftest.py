"""Tests compose the real conf/ in-process and shrink it where speed matters."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import runpy
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

# under pytest-xdist (pytest -n 2) each worker and what it starts get one torch thread: two
# workers of two threads each on two cores run slower than one of each
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
# larger data some developers keep beside the clone; no test of the default selection needs it
SHARED_DATA = ROOT.parent / "shared" / "data"
needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} is not there"
)

# a quiet run: no progress bar or model table in the test log
QUIET = [
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "trainer.enable_model_summary=false",
]
# a fast run: nothing but metrics.json written
BARE = [
    "logger=none",
    "callbacks=none",
    "trainer.enable_checkpointing=false",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def compose_train(output_dir: Path, *overrides: str) -> DictConfig:
    """conf/train.yaml composed as `scripts/train.py` would, writing into ``output_dir``."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=[f"paths.output_dir={output_dir}", *overrides])


def run_script(
    script: str, *args: str, cwd: Path, pythonpath: str | None = None
) -> subprocess.CompletedProcess:
    """``python scripts/<script> args...`` run from ``cwd``, as a user types it."""
    env = {**os.environ, "PYTHONPATH": pythonpath or str(ROOT / "src")}
    command = [sys.executable, str(ROOT / "scripts" / script), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``make_cfg(*overrides, bare=False)``: a composed config writing into ``tmp_path / "run"``.

    ``bare=True`` leaves out loggers and checkpoints where a test needs only the metrics.
    """

    def make(*overrides: str, bare: bool = False) -> DictConfig:
        return compose_train(tmp_path / "run", *(BARE if bare else QUIET), *overrides)

    return make


@dataclass
class Command:
    status: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stderr.strip().splitlines()


def run_in_process(script: str, *args: str) -> Command:
    """``python scripts/<script> args...`` run in this process from the current dir: the real
    Hydra entry point (run dir, callbacks, clean-up) without the seconds a new process costs."""
    argv, out, err = sys.argv, io.StringIO(), io.StringIO()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    sys.argv = [str(ROOT / "scripts" / script), *args]
    status = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as done:
        if isinstance(done.code, str):  # what Python prints on stderr, with exit status 1
            err.write(done.code + "\n")
            status = 1
        else:
            status = done.code or 0
    finally:
        sys.argv = argv
        for signum, handler in handlers.items():  # the command installs its own
            signal.signal(signum, handler)
    return Command(status, out.getvalue(), err.getvalue())


def snapshot(root: Path) -> dict[str, str]:
    """Every file and dir below ``root`` with a hash of its content: equal snapshots, nothing
    was written, changed or removed."""
    found = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        found[name] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Command]:
    """``cli("train.py", *args)``: a command run in-process from ``tmp_path`` (a user's dir)."""
    monkeypatch.chdir(tmp_path)
    return run_in_process
