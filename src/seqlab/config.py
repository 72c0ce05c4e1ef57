"""Between the composed Hydra config and the objects it describes."""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Mapping
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from seqlab.corpora import corpus_path
from seqlab.errors import SettingError
from seqlab.metrics import metric_mode

# conf/hydra/launcher/{submitit_slurm,ray}.yaml extend the plugins' configs of the same name on
# purpose, so `hydra/launcher=submitit_slurm` keeps its name; Hydra 1.3 merges them and warns
warnings.filterwarnings(
    "ignore", "(?s).*is validated against ConfigStore schema with the same name"
)

# `mode: ${metric_mode:${optimized_metric}}` in YAML: the direction follows the metric's name,
# as Lightning (min | max) and Optuna (minimize | maximize) spell it
OmegaConf.register_new_resolver("metric_mode", metric_mode, replace=True)
OmegaConf.register_new_resolver(
    "metric_direction", lambda name: f"{metric_mode(name)}imize", replace=True
)
# `${if_set:${resume},A,B}`: A when resume is given, else B (the run dir of a resumed run)
OmegaConf.register_new_resolver(
    "if_set", lambda value, then, otherwise: then if value else otherwise, replace=True
)
# `${gpus_for:${trainer.accelerator},${trainer.devices}}`: a GPU trainer's devices, else None,
# so a CPU job asks SLURM for no GPUs (sbatch refuses a GPU request on a cluster without any)
OmegaConf.register_new_resolver(
    "gpus_for",
    lambda accelerator, devices: devices if accelerator in ("gpu", "cuda") else None,
    replace=True,
)


def tasks_for(devices: Any) -> int:
    """`${tasks_for:${trainer.devices}}`: a SLURM job's tasks per node, one per device; a count
    SLURM must be given, where Lightning could have counted the devices itself (auto, -1)."""
    if isinstance(devices, int) and not isinstance(devices, bool) and devices > 0:
        return devices
    raise SettingError(
        "trainer.devices",
        devices,
        "a SLURM job needs a number of devices per node (one task each), e.g. trainer.devices=2",
    )


OmegaConf.register_new_resolver("tasks_for", tasks_for, replace=True)


HELP_FLAGS = {"--help", "-h"}  # Hydra's own, for the app's help (--hydra-help is its own)


def config_groups(hidden: list[str]) -> str:
    """`${config_groups:[tuned,tool]}` in a help template: Hydra's own list of the config groups
    and their options (as its $APP_CONFIG_GROUPS), without Hydra's and the ``hidden`` ones.

    Empty unless the command asks for --help, and listed once a process: OmegaConf resolves an
    interpolated string each time a merge reaches it, which composing one config does two to
    four times, and listing the groups reads every option's file, about 0.25 s each time (half
    of ``--cfg job``'s start, more than a second of every sweep job's).
    """
    from hydra.core.global_hydra import GlobalHydra

    hydra = GlobalHydra.instance().hydra
    if hydra is None or not HELP_FLAGS & set(sys.argv[1:]):  # None: a saved hydra.yaml read
        return ""
    return _listed_groups(hydra, tuple(hidden))


@functools.cache
def _listed_groups(hydra: Any, hidden: tuple[str, ...]) -> str:
    return hydra.format_config_groups(lambda group: group.split("/")[0] not in ("hydra", *hidden))


OmegaConf.register_new_resolver("config_groups", config_groups, replace=True)
# `${corpus:tinyshakespeare.txt.gz}`: the absolute path of a corpus shipped in the package
OmegaConf.register_new_resolver("corpus", corpus_path, replace=True)

# config sections a run's hyper-parameters are read from (TensorBoard HPARAMS, hparams.yaml)
HPARAM_SECTIONS = (
    "data",
    "model",
    "optimizer",
    "scheduler",
    "trainer",
    "seed",
    "task_name",
    "tags",
    "optimized_metric",
)
# sections whose class is what a run chose (optimizer=sgd): shown by name, as optimizer/class
CHOSEN_CLASS = ("optimizer", "scheduler")


def instantiate_setting(
    node: DictConfig, key: str, passed: Mapping[str, Any] | None = None, **runtime: Any
) -> Any:
    """``instantiate(node)``, where a bad setting is reported by its full key (``model.cell``).

    ``runtime`` holds facts known only at the call site, merged into the config as Hydra does;
    ``passed`` holds objects handed to the constructor as they are. Hydra turns every runtime
    argument into config nodes first, which for a 33,278-word vocabulary takes seconds.
    """
    try:
        if passed is None:
            return instantiate(node, _convert_="all", **runtime)
        build = instantiate(node, _convert_="all", _partial_=True, **runtime)
    except InstantiationException as err:
        if isinstance(err.__cause__, SettingError):
            raise err.__cause__.within(key) from None
        raise
    try:
        return build(**passed)
    except SettingError as err:
        raise err.within(key) from None


def switched_off(node: Any) -> bool:
    """A ``callbacks`` or ``logger`` entry that builds nothing: ``null``, or an EarlyStopping
    without a patience (the default one, until callbacks.early_stopping.patience=N)."""
    if node is None:
        return True
    stopping = str(node.get("_target_", "")).endswith("EarlyStopping")
    return stopping and node.get("patience") is None


def run_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The run's settings as a nested dict of plain values, without ``_target_`` noise."""

    def plain(value: Any, section: str) -> Any:
        if isinstance(value, DictConfig | ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
        if not isinstance(value, dict):
            return value
        shown = {k: plain(v, section) for k, v in value.items() if not k.startswith("_")}
        if section in CHOSEN_CLASS and "_target_" in value:  # SGD, not torch.optim.SGD
            return {"class": str(value["_target_"]).rpartition(".")[2], **shown}
        return shown

    return {key: plain(cfg[key], key) for key in HPARAM_SECTIONS if key in cfg}
