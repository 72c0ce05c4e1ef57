"""Lightning's DDP inside a SLURM job: one task per device, ranks from SLURM's environment.

Needs the test cluster (`bash tests/slurm/cluster.sh start`), as test_slurm_launcher.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT
from test_slurm_launcher import ENV, require_cluster, slurm_states

pytestmark = pytest.mark.slurm

QUIET = ["callbacks.progress_bar=null", "callbacks.model_summary=null"]


def test_a_two_task_job_trains_one_ddp_run_through_slurms_environment(tmp_path):
    require_cluster()
    sweep_dir = tmp_path / "sweep"
    command = [sys.executable, "scripts/train.py", "-m", "experiment=longtext", *QUIET]
    command += ["hydra/launcher=submitit_slurm", "trainer=ddp_cpu", "trainer.devices=2"]
    command += [f"hydra.sweep.dir={sweep_dir}"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=ENV, timeout=300)

    assert done.returncode == 0, done.stderr[-3000:]
    assert slurm_states(sweep_dir) == {0: "COMPLETED"}
    [array_dir] = [p for p in (sweep_dir / ".submitit").iterdir() if p.name[0].isdigit()]
    assert "#SBATCH --ntasks-per-node=2" in next(array_dir.glob("*_submission.sh")).read_text()
    [run_dir] = [p.parent for p in sweep_dir.glob("*/metrics.json")]  # one run dir, not two
    summary = json.loads((run_dir / "metrics.json").read_text())
    # the two srun tasks were the two ranks, as SLURM numbered them: Lightning started none
    assert (summary["cluster_environment"], summary["world_size"]) == ("SLURMEnvironment", 2)
    assert summary["status"] == "completed"
    # each task ran torch on its one CPU of the job, not on every core of the node
    assert summary["num_threads"] == 1
    assert summary["final"]["val/acc"] >= 0.95  # the single-process lesson target
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1  # one TensorBoard run
    print(f"{array_dir.name}: val/acc {summary['final']['val/acc']:.4f}")
