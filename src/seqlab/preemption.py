"""A SLURM job told to make way saves last.ckpt, requeues itself and resumes where it stopped.

SLURM signals a job before its time limit (``#SBATCH --signal=USR1@90``; submitit asks for
SIGUSR2 120 s before it) or when it is preempted (``scancel --signal=USR1 JOBID``). Under SLURM
both signals stop the run as SIGTERM does, at a step boundary with last.ckpt saved
(:mod:`seqlab.interrupt`); then rank 0 runs ``scontrol requeue`` and the job goes back to the
queue with the same id. When it starts again (``SLURM_RESTART_COUNT`` > 0) the run resumes in
place from that last.ckpt: the same run dir, TensorBoard run and metrics.json.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

REQUEUE_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)


def under_slurm() -> bool:
    return "SLURM_JOB_ID" in os.environ


def slurm_job_id() -> str:
    """The id ``scontrol requeue`` takes: an array task's is ARRAYID_TASK."""
    array_id = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array_id is not None:
        return f"{array_id}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ["SLURM_JOB_ID"]


def requeued_run(run_dir: Path) -> str | None:
    """``run_dir`` where this SLURM job was requeued after saving its last.ckpt there, else None."""
    restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
    if restarts and (run_dir / "checkpoints" / "last.ckpt").is_file():
        log.info("SLURM job %s restart %d: resuming %s", slurm_job_id(), restarts, run_dir)
        return str(run_dir)
    return None


def requeue(signum: int, global_rank: int) -> bool:
    """Put this SLURM job back in the queue if ``signum`` asks for it; True if it did (or will:
    rank 0 asks for all the ranks)."""
    if signum not in REQUEUE_SIGNALS or not under_slurm():
        return False
    # last.ckpt is saved: the SIGTERM SLURM sends the requeued job's tasks has nothing to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if global_rank == 0:
        job = slurm_job_id()
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
        if done.returncode != 0:
            said = done.stderr.strip() or f"exit status {done.returncode}"
            print(f"SLURM job {job} was not requeued: {said}", file=sys.stderr)
            return False
        print(f"SLURM job {job} requeued: it resumes from last.ckpt", file=sys.stderr)
    return True
