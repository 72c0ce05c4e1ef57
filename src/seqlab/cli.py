"""The commands' common front door: a mistake on the command line is one line, not a report.

Hydra reports a config it cannot compose (an unknown option, a key that does not exist, an
override it cannot parse, an interpolation it cannot resolve) over several lines with a hint
about HYDRA_FULL_ERROR. :func:`run` lets Hydra raise instead and says the same in one line:
the key, the value and what is allowed, exit status 1. Torch-free: ``--help`` stays fast.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import sys
from collections.abc import Callable, Iterator
from importlib.util import find_spec
from typing import Any

from hydra.errors import (
    ConfigCompositionException,
    HydraException,
    MissingConfigException,
    OverrideParseException,
)
from omegaconf.errors import OmegaConfBaseException

from seqlab.errors import SettingError, first_line, moved


@contextlib.contextmanager
def settled_imports() -> Iterator[None]:
    """Import torch and Lightning with the garbage collector off, then freeze what they made.

    Importing them makes a few million objects that live as long as the process; every full
    collection on the way would scan them all again (about 2 s of a 5 s start on 2 cores).
    Frozen, no later collection scans them either; the run's own objects are collected as usual.
    Only the first time in a process: a sweep worker's next job finds the modules imported, and
    freezing again would keep the last job's garbage for good.
    """
    if "pytorch_lightning" in sys.modules:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


# hydra/launcher=NAME: the plugin package it needs, and the extra that installs it
LAUNCHER_PLUGINS = {
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "ray": ("hydra_plugins.hydra_ray_launcher", "ray"),
}


def missing_launcher(argv: list[str]) -> str | None:
    """The line for a hydra/launcher= whose plugin is not installed; None if all is there.

    Hydra itself would report it deep in a traceback, after the config was composed.
    """
    for arg in argv:
        name = arg.removeprefix("hydra/launcher=")
        if name == arg or name not in LAUNCHER_PLUGINS:
            continue
        module, extra = LAUNCHER_PLUGINS[name]
        if find_spec(module) is None:
            return (
                f"hydra/launcher={name} needs the {module.split('.')[-1].replace('_', '-')} "
                f'package: pip install -e ".[{extra}]"'
            )
    return None


def run(entry: Callable[[], Any]) -> Any:
    """Call a ``@hydra.main`` function, turning Hydra's composition errors into one line."""
    os.environ["HYDRA_FULL_ERROR"] = "1"  # raise, so the error can be read, not printed
    line = missing_launcher(sys.argv[1:])
    if line is not None:
        raise SystemExit(f"error: {line}")
    try:
        return entry()
    except SettingError as err:  # a sweep's failed job, re-raised when its sweep ends
        raise SystemExit(f"error: {err}") from None
    except (HydraException, OmegaConfBaseException) as err:
        line = describe(err)
        if line is None:
            raise
        raise SystemExit(f"error: {line}") from None
    except Exception as err:
        if type(err).__name__ != "TerminatedWorkerError":  # joblib's, without importing it
            raise
        # a joblib job's process was killed (SIGKILL, out of memory): the sweep cannot go on
        found = re.search(r"exit codes of the workers are (\{.*?\})", str(err))
        codes = f" (exit codes {found.group(1)})" if found else ""
        raise SystemExit(
            f"error: the sweep stopped: a job's worker process was killed{codes}; "
            "scripts/report.py on the sweep dir shows which jobs ran"
        ) from None
    except KeyboardInterrupt:  # Ctrl-C while starting up, before a run could stop cleanly
        print("interrupted before a run started: nothing was trained", file=sys.stderr)
        raise SystemExit(130) from None


def describe(err: BaseException) -> str | None:
    """One line for a config Hydra could not compose; None for anything else (a real bug)."""
    # a resolver's own SettingError (e.g. ${tasks_for:...}), wrapped by OmegaConf: its line
    inner: BaseException | None = err
    for _ in range(3):
        inner = inner.__cause__ or inner.__context__ if inner is not None else None
        if isinstance(inner, SettingError):
            return str(inner)
    if isinstance(err, MissingConfigException) and err.missing_cfg_file and err.options:
        group, _, option = err.missing_cfg_file.rpartition("/")
        return str(SettingError(group, option, f"expected one of {', '.join(err.options)}"))
    cause = err.__cause__
    if isinstance(err, ConfigCompositionException) and isinstance(cause, OmegaConfBaseException):
        key = getattr(cause, "full_key", None)
        parent = getattr(cause, "parent_node", None)
        if key and "not in struct" in str(cause):
            value = _given(key)
            if (reason := moved(key, value)) is not None:
                return f"{key}={value} is invalid: {reason}"
            known = ", ".join(str(k) for k in parent or () if not str(k).startswith("_"))
            return (
                f"{key}={value} is invalid: not in the config (it has {known or 'no keys'}); "
                f"a key the config leaves out is added with +{key}={value}"
            )
        return f"{key or 'config'}: {first_line(cause)}"
    if isinstance(err, OverrideParseException | ConfigCompositionException):
        return first_line(err)
    if isinstance(err, OmegaConfBaseException):
        key = getattr(err, "full_key", None)
        return f"{key}: {first_line(err)}" if key else first_line(err)
    return None


def _given(key: str) -> str:
    """The value the command line gave ``key``, as typed."""
    for argument in sys.argv[1:]:
        name, equals, value = argument.partition("=")
        if equals and name.lstrip("+~") == key:
            return value
    return "..."
