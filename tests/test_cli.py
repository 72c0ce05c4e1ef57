"""`python scripts/train.py ...` exactly as a user types it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT


def test_train_script_prints_the_prediction_and_where_the_logs_are(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "experiment=hihello"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    [run_dir] = (tmp_path / "outputs").glob("*/*")
    relative = run_dir.relative_to(tmp_path)
    tail = done.stdout.strip().splitlines()[-2:]
    assert tail == [f"run dir: {relative}", f"logs:    tensorboard --logdir {relative}"]
    assert "│ hihell │ ihello    │ ihello │ ✓  │" in done.stdout
    assert (
        json.loads((run_dir / "metrics.json").read_text())["predictions"][0]["predicted"]
        == "ihello"
    )
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert (run_dir / ".hydra" / "config.yaml").is_file()
