"""The launcher behind hydra/launcher=submitit_local (conf/hydra/launcher/submitit_local.yaml).

Hydra takes launchers only from the hydra_plugins namespace package: this is seqlab's part of it.
Hydra imports every module of that package at each start, so without submitit (seqlab installed
without its slurm extra) this one defines nothing rather than warning on every run.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

from seqlab.errors import RunFailed


class JobTimedOut(RunFailed):
    """A job of a submitit_local sweep still ran as its time limit came."""


if find_spec("hydra_plugins.hydra_submitit_launcher") is not None:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher

    class TimedLocalLauncher(LocalLauncher):
        """submitit's local launcher, where a job over its time limit fails once, saying so.

        submitit tells a job 30 s before its limit (SIGUSR2) and asks the launcher to checkpoint
        it; the plugin's launcher would rerun such a job from its start up to 3 times (each run
        overwriting the last one's dir) and then fail it with "timed-out too many times".
        """

        def checkpoint(self, *args: Any, **kwargs: Any) -> None:
            # called by submitit's handler of the time-limit signal, inside the job: what it
            # raises ends the run there, and the job is marked failed with this line
            limit = self.params["timeout_min"]
            raise JobTimedOut(
                f"the job ran past its time limit, hydra.launcher.timeout_min={limit}"
            )
