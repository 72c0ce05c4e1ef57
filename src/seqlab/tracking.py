"""Experiment trackers beside TensorBoard: MLflow on a local database, W&B offline.

Both are optional extras; neither package is imported until its logger is built (importing
mlflow takes seconds). :func:`check_trackers` says which extra a config's loggers need before
anything is built.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import MLFlowLogger as LightningMLFlowLogger
from pytorch_lightning.loggers import WandbLogger as LightningWandbLogger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from seqlab.errors import RefusedSettings

SQLITE = "sqlite:///"


def _named(run_name: str | None) -> str | None:
    # a run dir (absolute, as Hydra gives it) is shown as the console shows it: from here
    return os.path.relpath(run_name) if run_name and os.path.isabs(run_name) else run_name


class MLFlowLogger(LightningMLFlowLogger):
    """``pytorch_lightning.loggers.MLFlowLogger`` on a local SQLite file, that logs a run's own
    files as artifacts when it ends.

    ``tracking_uri``: ``sqlite:///outputs/mlflow.db`` is a path from the dir the run starts in,
    made absolute here (and its dir made), so every run started there shares one database;
    any other URI (a tracking server) is used as it is. ``artifact_location``: where a new
    experiment keeps its runs' files; None: ``mlartifacts/`` beside a SQLite file (MLflow's own
    default is ``./mlruns`` of whatever dir the run started in). ``artifacts``: files and dirs
    logged once the run ends, after metrics.json got its final state (Lightning finalizes its
    loggers after every callback's ``on_fit_end`` / ``on_exception``); those missing are
    skipped (a run without checkpoints). ``synchronous=False`` (MLflow's async logging): the
    metrics are written by a thread of MLflow's while training goes on, and all of them before
    the run is closed.
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment_name: str,
        run_name: str | None = None,
        artifact_location: str | None = None,
        artifacts: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        if tracking_uri.startswith(SQLITE) and tracking_uri != f"{SQLITE}:memory:":
            database = Path(tracking_uri.removeprefix(SQLITE)).absolute()
            if rank_zero_only.rank == 0:
                database.parent.mkdir(parents=True, exist_ok=True)
            tracking_uri = f"{SQLITE}{database}"
            artifact_location = artifact_location or str(database.parent / "mlartifacts")
        super().__init__(
            experiment_name=experiment_name,
            run_name=_named(run_name),
            tracking_uri=tracking_uri,
            artifact_location=artifact_location,
            **kwargs,
        )
        self.artifacts = [Path(path) for path in artifacts]

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        if self._initialized:  # a run was started: not when the run failed before any logging
            import mlflow

            mlflow.flush_async_logging()  # every metric written before the run is closed
            for path in self.artifacts:
                if path.is_dir():
                    self.experiment.log_artifacts(self.run_id, str(path), path.name)
                elif path.is_file():
                    self.experiment.log_artifact(self.run_id, str(path))
        super().finalize(status)


class WandbLogger(LightningWandbLogger):
    """``pytorch_lightning.loggers.WandbLogger`` whose run is finished when the job ends.

    Lightning leaves the W&B run open, and a logger built later in the same process (the next
    job of a sweep) would log into it; here each job gets its own run, finished as it ended
    (exit code 1 when it failed, as wandb marks a crash). ``offline``: the run's files stay in
    ``save_dir/wandb/offline-run-*``, for ``wandb sync`` later.
    """

    def __init__(self, run_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=_named(run_name), **kwargs)
        # Lightning passes anonymous=None, which wandb 0.19+ warns of on every run
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        super().finalize(status)
        if self._experiment is not None:
            self._experiment.finish(exit_code=0 if status == "success" else 1)
            self._experiment = None


# a logger's class name: the package it needs, and the extra of seqlab's that installs it
TRACKER_PACKAGES = {"MLFlowLogger": ("mlflow", "mlflow"), "WandbLogger": ("wandb", "wandb")}


def check_trackers(loggers: Mapping[str, Any] | None) -> None:
    """Every logger of the ``logger`` group can be built: a tracker whose package is not
    installed is one line naming the install command, before anything is built."""
    for name, node in (loggers or {}).items():
        if node is None:
            continue
        target = str(node.get("_target_", "")).rpartition(".")[2]
        if target not in TRACKER_PACKAGES:
            continue
        package, extra = TRACKER_PACKAGES[target]
        if importlib.util.find_spec(package) is None:
            raise RefusedSettings(
                f"logger.{name}", f'needs the {package} package: pip install -e ".[{extra}]"'
            )
