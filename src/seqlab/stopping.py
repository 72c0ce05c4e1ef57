"""What an interrupted run tells its user: where it stopped, and the command that goes on."""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from lightning_fabric.utilities.rank_zero import rank_zero_only

from seqlab.interrupt import RunInterrupted
from seqlab.launch import is_multirun, task_overrides


def resume_command(run_dir: Path) -> str:
    """The command line that continues the run at ``run_dir`` in place."""
    overrides = []
    if HydraConfig.initialized():
        for override in task_overrides(HydraConfig.get()):
            key = override.split("=", 1)[0].lstrip("+~")
            # how the run was launched, or where: resume= names the dir itself
            if not key.startswith("hydra") and key not in ("resume", "hparams_search"):
                overrides.append(override)
    where = os.path.relpath(run_dir)
    if not SAFE.fullmatch(where):  # a sweep job's dir: "=" and "," mean something to Hydra
        where = "'" + where.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return " ".join(
        _shell(a) for a in ["python", "scripts/train.py", *overrides, f"resume={where}"]
    )


SAFE = re.compile(r"[\w./-]+")  # a value Hydra's override grammar reads as it is


def _shell(argument: str) -> str:
    """``argument`` as a shell reads it back: bare, in double quotes (Hydra's single quotes
    stay readable inside), or quoted by shlex."""
    if re.fullmatch(r"[\w@%+=:,./-]+", argument):
        return argument
    if not re.search(r'["$`\\!]', argument):
        return f'"{argument}"'
    return shlex.quote(argument)


def report_interrupt(run_dir: Path, stop: RunInterrupted) -> None:
    """One line on stderr for the run; in a sweep, one more naming the jobs that did not run.
    Under DDP every rank stops; rank zero tells."""
    if rank_zero_only.rank != 0:
        return
    last = run_dir / "checkpoints" / "last.ckpt"
    where = "" if stop.step is None else f" at epoch {stop.epoch}, step {stop.step}"
    if stop.step is None or not stop.trained:
        saved = "before training started: nothing to resume"
    elif stop.forced or not last.is_file():
        saved = "without a checkpoint of this step" + (
            f"; continue from the last one: {resume_command(run_dir)}" if last.is_file() else ""
        )
    else:
        saved = f"{os.path.relpath(last)} saved; continue with: {resume_command(run_dir)}"
    print(f"interrupted by {stop.signal_name}{where}: {saved}", file=sys.stderr)
    if is_multirun():
        from seqlab.sweeps import report_command

        print(f"sweep stopped: {_not_run()}", file=sys.stderr)
        print(report_command(HydraConfig.get().sweep.dir), file=sys.stderr)  # on what did run


def _not_run() -> str:
    """The jobs of this sweep after the current one, which will not run."""
    from seqlab.sweeps import planned_jobs

    hydra = HydraConfig.get()
    planned = planned_jobs(Path(hydra.sweep.dir))
    if planned is None:
        return "the jobs after this one did not run"
    later = planned[hydra.job.num + 1 :]
    if not later:
        return "this was its last job"
    # each job by what sets it apart from the others
    varying = [
        o
        for o in dict.fromkeys(o for job in planned for o in job)
        if not all(o in job for job in planned)
    ]
    names = [",".join(o for o in job if o in varying) or ",".join(job) for job in later]
    shown = "; ".join(names[:5]) + ("; ..." if len(names) > 5 else "")
    return f"{len(later)} of {len(planned)} jobs did not run: {shown}"
