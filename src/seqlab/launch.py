"""How a training process fits the launcher that started it: threads, workers, noise, clean-up."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import warnings
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from seqlab.errors import SettingError

log = logging.getLogger(__name__)


def is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def parallel_jobs() -> int:
    """How many jobs of this sweep run at once on this machine (joblib), else 1."""
    if not HydraConfig.initialized():
        return 1
    launcher = HydraConfig.get().launcher
    if "joblib" not in str(launcher.get("_target_", "")):
        return 1
    import joblib  # the launcher's own dependency

    return joblib.effective_n_jobs(launcher.get("n_jobs", -1))


def check_launch(cfg: DictConfig) -> None:
    """Settings that cannot work on this machine or under the launcher that started this job."""
    if is_multirun():
        launcher = str(HydraConfig.get().launcher.get("_target_", ""))
        check_strategy_fits_sweep(str(cfg.trainer.get("strategy", "auto")), launcher)
    check_accelerator(cfg.trainer)


def check_accelerator(trainer: DictConfig) -> None:
    """The accelerator asked for is on this machine, with at least as many devices."""
    import torch

    accelerator = str(trainer.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda"):
        kind, found = "CUDA GPU", torch.cuda.device_count()
    elif accelerator == "mps":
        kind, found = "MPS device", int(torch.backends.mps.is_available())
    else:
        return  # cpu, auto (whatever there is), or one Lightning checks itself
    if found == 0:
        raise SettingError(
            "trainer.accelerator",
            accelerator,
            f"this machine has no {kind}: use trainer=cpu, or trainer=default to take one where "
            "there is one",
        )
    devices = trainer.get("devices", "auto")
    if isinstance(devices, int) and devices > found:
        raise SettingError("trainer.devices", devices, f"this machine has {found} {kind}(s)")


def share_machine(cfg: DictConfig) -> None:
    """Keep parallel jobs from oversubscribing the CPU.

    ``num_threads`` sets torch's threads; left null under the joblib launcher, each job gets
    cores / jobs, and DataLoader worker processes are switched off (jobs already are processes).
    """
    import torch

    jobs = parallel_jobs()
    threads = cfg.get("num_threads")
    if threads is None and jobs > 1:
        threads = max(1, (os.cpu_count() or 1) // jobs)
    if threads:
        torch.set_num_threads(threads)
    if jobs > 1 and cfg.data.get("num_workers"):
        log.info("data.num_workers=%s -> 0: %d jobs run in parallel", cfg.data.num_workers, jobs)
        with open_dict(cfg):
            cfg.data.num_workers = 0


# strategies for which Lightning starts this script again, once per extra device
RELAUNCHING_STRATEGIES = (
    "ddp",
    "ddp_find_unused_parameters_false",
    "ddp_find_unused_parameters_true",
)


def check_strategy_fits_sweep(strategy: str, launcher_target: str) -> None:
    """In a sweep, a script-relaunching strategy would start the whole sweep again per device."""
    if strategy in RELAUNCHING_STRATEGIES and "submitit" not in launcher_target:
        raise SettingError(
            "trainer.strategy",
            strategy,
            "in a sweep (-m) Lightning's ddp would start the whole sweep again on every device: "
            "use trainer.strategy=ddp_spawn, or hydra/launcher=submitit_slurm (a task per device)",
        )


class RefuseRelaunchingSweeps(Callback):
    """Stops a sweep before its first job when its jobs could not run (see above)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: object) -> None:
        try:
            strategy = str(config.trainer.get("strategy", "auto"))
            check_strategy_fits_sweep(strategy, str(config.hydra.launcher.get("_target_", "")))
        except SettingError as err:
            raise SystemExit(f"error: {err}") from None


class _DropAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


def quiet_known_noise() -> None:
    """Silence messages that say nothing about this run."""
    # the lesson data sets are a few hundred characters: worker processes would only cost time
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    # raised inside Lightning's own code by newer torch releases
    warnings.filterwarnings("ignore", r".*isinstance\(treespec, LeafSpec\)")
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropAdverts) for f in logger.filters):  # once per process
            logger.addFilter(_DropAdverts())


def discard_unused_run_dir() -> None:
    """Remove what Hydra wrote for a run that stopped on a bad setting before doing anything.

    A resumed run's own config dir (.hydra/resume-...) and an empty log go; the run dir goes too
    if nothing but Hydra's config is left in it, and with it the dirs made for it
    (outputs/<date>/) if empty.
    """
    if not HydraConfig.initialized():
        return
    hydra = HydraConfig.get()
    run_dir = Path(hydra.runtime.output_dir)
    if hydra.output_subdir and Path(hydra.output_subdir).parent != Path("."):
        shutil.rmtree(run_dir / hydra.output_subdir, ignore_errors=True)
        with contextlib.suppress(OSError):  # only if empty: the resumed run's own config stays
            (run_dir / hydra.output_subdir).parent.rmdir()
    job_log = run_dir / f"{hydra.job.name}.log"
    if job_log.is_file() and job_log.stat().st_size == 0:  # opened by Hydra, nothing logged
        job_log.unlink()
    if not run_dir.is_dir() or not {p.name for p in run_dir.iterdir()} <= {".hydra"}:
        return
    shutil.rmtree(run_dir)
    cwd = Path.cwd().resolve()
    for parent in run_dir.resolve().parents:
        if parent == cwd or cwd not in parent.parents or any(parent.iterdir()):
            break
        parent.rmdir()
