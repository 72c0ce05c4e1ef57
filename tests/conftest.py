"""Tests compose the real conf/ in-process and shrink it where speed matters."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

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


def run_script(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python scripts/<script> args...`` run from ``cwd``, as a user types it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
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
