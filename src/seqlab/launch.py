"""How a training process fits the launcher that started it: threads, workers, noise, clean-up."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from seqlab.errors import SettingError, exits_on_setting_error
from seqlab.metrics import METRICS_FILE
from seqlab.preemption import requeued_run

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


def check_accelerator(trainer: DictConfig | dict, prefix: str = "trainer.") -> None:
    """The accelerator asked for is on this machine, with at least as many devices.

    ``prefix``: where the settings are, ``trainer.`` in a training run, none for eval.py.
    """
    import torch

    accelerator = str(trainer.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda"):
        kind, found = "CUDA GPU", torch.cuda.device_count()
    elif accelerator == "mps":
        kind, found = "MPS device", int(torch.backends.mps.is_available())
    elif accelerator == "cpu":
        kind, found = "CPU core", os.cpu_count() or 1
    else:
        return  # auto (whatever there is), or one Lightning checks itself
    if found == 0:
        use = "trainer=cpu, or trainer=default to take one where there is one"
        raise SettingError(
            f"{prefix}accelerator",
            accelerator,
            f"this machine has no {kind}: use {use if prefix else 'accelerator=cpu'}",
        )
    devices = trainer.get("devices", "auto")
    if isinstance(devices, int) and devices > found:
        raise SettingError(f"{prefix}devices", devices, f"this machine has {found} {kind}(s)")


def available_cores() -> int:
    """The CPU cores this process may use: a SLURM task's share of its node (``--cpus-per-task``,
    else the node's allocated CPUs over its tasks), else the cores its affinity mask allows (a
    container's share), else the machine's."""
    env = os.environ
    if env.get("SLURM_JOB_ID"):
        if env.get("SLURM_CPUS_PER_TASK", "").isdigit():
            return max(1, int(env["SLURM_CPUS_PER_TASK"]))
        cpus, tasks = env.get("SLURM_CPUS_ON_NODE", ""), env.get("SLURM_NTASKS_PER_NODE", "1")
        if cpus.isdigit() and tasks.isdigit():
            return max(1, int(cpus) // max(1, int(tasks)))
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def share_machine(cfg: DictConfig) -> None:
    """Keep parallel jobs from oversubscribing the CPU, and steps from mapping memory afresh.

    ``num_threads`` sets torch's threads; left null under the joblib launcher, each job gets
    cores / jobs, and DataLoader worker processes are switched off (jobs already are processes);
    under SLURM, each task its share of the node's allocated CPUs (:func:`available_cores`).
    ``keep_freed_memory`` keeps glibc's malloc from handing each step's memory back to the
    system (:mod:`seqlab.allocator`).
    """
    import torch

    from seqlab.allocator import keep_freed_memory

    if cfg.get("keep_freed_memory", True):
        keep_freed_memory()
    jobs = parallel_jobs()
    threads = cfg.get("num_threads")
    if threads is None and (jobs > 1 or os.environ.get("SLURM_JOB_ID")):
        # torch's default is every core of the node: a SLURM task would take its neighbours'
        threads = max(1, available_cores() // jobs)
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
    # submitit_slurm starts a task per device; submitit_local one process per job, like the rest
    if strategy in RELAUNCHING_STRATEGIES and "SlurmLauncher" not in launcher_target:
        raise SettingError(
            "trainer.strategy",
            strategy,
            "in a sweep (-m) Lightning's ddp would start the whole sweep again on every device: "
            "use trainer.strategy=ddp_spawn, or hydra/launcher=submitit_slurm (a task per device)",
        )


class RefuseRelaunchingSweeps(Callback):
    """Stops a sweep before its first job when its jobs could not run (see above)."""

    @exits_on_setting_error
    def on_multirun_start(self, config: DictConfig, **kwargs: object) -> None:
        strategy = str(config.trainer.get("strategy", "auto"))
        check_strategy_fits_sweep(strategy, str(config.hydra.launcher.get("_target_", "")))


class _DropAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


def quiet_known_noise() -> None:
    """Silence messages that say nothing about this run."""
    # the lesson data sets are a few hundred characters: worker processes would only cost time
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    # a resumed run writes into its own checkpoints/ again; a new run never finds one there
    # (CheckRunStart refuses a dir that holds a run)
    warnings.filterwarnings("ignore", ".*Checkpoint directory .* exists and is not empty")
    # best.ckpt monitors optimized_metric, checked before training; a run that ends before any
    # validation says so in its own line (RunResult.optimized_value)
    warnings.filterwarnings("ignore", ".*could not find the monitored key in the returned metrics")
    # stream batches (seqlab.data.streams) are read in the process that trains, never by workers
    warnings.filterwarnings("ignore", ".*Your `IterableDataset` has `__len__` defined")
    # on any machine with SLURM's tools installed, a run not started by srun: a run under
    # submitit_slurm or srun is detected (metrics.json records SLURMEnvironment)
    warnings.filterwarnings("ignore", ".*The `srun` command is available on your system")
    # a lesson's one-step epochs log no train/loss_step until step log_every_n_steps: its
    # train/loss is logged every epoch all the same
    warnings.filterwarnings("ignore", ".*is smaller than the logging interval")
    # raised inside Lightning's own code by newer torch releases
    warnings.filterwarnings("ignore", r".*isinstance\(treespec, LeafSpec\)")
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropAdverts) for f in logger.filters):  # once per process
            logger.addFilter(_DropAdverts())


@dataclass
class RunDirBefore:
    """What was at a run dir before Hydra made it: the clean-up of a refused run removes only
    what this process created, never a dir or file that was there before."""

    run_dir: Path  # absolute
    entries: frozenset[str] | None  # names in it, None if it did not exist
    created: tuple[Path, ...]  # the dirs above it that did not exist, deepest first

    @classmethod
    def read(cls, run_dir: Path) -> RunDirBefore:
        run_dir = run_dir.absolute()
        entries = frozenset(p.name for p in run_dir.iterdir()) if run_dir.is_dir() else None
        created = tuple(parent for parent in run_dir.parents if not parent.exists())
        return cls(run_dir, entries, created)


_before: RunDirBefore | None = None  # this process's single run, recorded by CheckRunStart


def _run_dir(config: DictConfig) -> Path:
    return Path(str(config.hydra.run.dir))


class CheckRunStart(Callback):
    """Before Hydra makes a run dir or starts a sweep: every group option named on the command
    line exists (an optional group such as ``experiment`` would silently fall back to none),
    a run dir that holds a run is continued only with ``resume=``, and what was there is
    recorded for :func:`discard_unused_run_dir`."""

    # Hydra turns any other exception of a callback into a warning: SystemExit stops the run
    @exits_on_setting_error
    def on_run_start(self, config: DictConfig, **kwargs: object) -> None:
        global _before
        from seqlab.cli import describe

        check_group_options(task_overrides(config.hydra))
        try:
            resume, run_dir = config.get("resume"), _run_dir(config)
        except OmegaConfBaseException as err:  # the run dir's own interpolation (hydra.run.dir)
            raise SystemExit(f"error: {describe(err)}") from None
        if resume and not run_dir.is_dir():
            raise SettingError("resume", resume, "no such run dir")
        if not resume and (run_dir / METRICS_FILE).is_file() and not requeued_run(run_dir):
            reason = "it already holds a run: continue it with resume=DIR, or pick a new dir"
            raise SettingError("hydra.run.dir", str(run_dir), reason)
        _before = RunDirBefore.read(run_dir)

    @exits_on_setting_error
    def on_multirun_start(self, config: DictConfig, **kwargs: object) -> None:
        check_group_options(task_overrides(config.hydra))


def task_overrides(hydra: DictConfig) -> list[str]:
    """The command line's overrides as typed: a value like ${oc.env:X} stays unresolved."""
    return [str(o) for o in OmegaConf.to_container(hydra.overrides.task, resolve=False)]


def check_group_options(overrides: list[str]) -> None:
    """Each ``group=option`` of ``overrides`` (every option of a sweep) names a config file."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    loader = GlobalHydra.instance().config_loader()
    for override in OverridesParser.create().parse_overrides(overrides):
        group = override.key_or_group
        options = loader.get_group_options(group) if not override.is_delete() else []
        if not options:
            continue  # a key, not a group
        if override.is_sweep_override():
            try:
                chosen = list(override.sweep_string_iterator())
            except Exception:  # a range or interval: not option names
                continue
        else:
            chosen = [override.get_value_element_as_str()]
        for option in chosen:
            if option not in options and option != "null":
                raise SettingError(group, option, f"expected one of {', '.join(options)}")


def discard_unused_run_dir() -> None:
    """Remove what Hydra wrote for a run that stopped on a bad setting before doing anything.

    Only what this process created goes: the config dir Hydra wrote (``.hydra``, or a resumed
    run's ``.hydra/resume-...``), the job's log if it was not there before, the run dir and the
    dirs above it if they were made for this run and are empty now. A dir that was there
    before (a run dir given to ``resume=``, the current dir) is never removed.
    """
    if not HydraConfig.initialized() or _before is None:
        return
    hydra = HydraConfig.get()
    run_dir = Path(hydra.runtime.output_dir).absolute()
    if run_dir != _before.run_dir:
        return
    before = _before.entries or frozenset()
    if hydra.output_subdir:
        written = run_dir / hydra.output_subdir  # .hydra, or .hydra/resume-<time>
        top = run_dir / Path(hydra.output_subdir).parts[0]
        if written != top or top.name not in before:  # a dir this run made
            for name in HYDRA_FILES:
                (written / name).unlink(missing_ok=True)
            for folder in (written, top) if top.name not in before else (written,):
                with contextlib.suppress(OSError):  # only if empty
                    folder.rmdir()
    job_log = run_dir / f"{hydra.job.name}.log"
    if job_log.name not in before:
        job_log.unlink(missing_ok=True)
    if _before.entries is None:
        for folder in (run_dir, *_before.created):
            with contextlib.suppress(OSError):  # only if empty
                folder.rmdir()


HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")  # what Hydra writes per run
