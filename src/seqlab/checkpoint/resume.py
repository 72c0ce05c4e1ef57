"""Where training continues from (``resume=RUN_DIR`` or ``ckpt_path=FILE``), checked before any
training: the checkpoint must have been made by this model with this optimizer and schedule,
and their states must fit."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from seqlab.callbacks.summary import RunSummary
from seqlab.checkpoint.contents import check_weights
from seqlab.errors import SettingError, first_line
from seqlab.models import NetConfig
from seqlab.module import SeqModule
from seqlab.nt_asgd import TRAINING_WEIGHTS
from seqlab.optimization import differences

# vocab, class_names and task are facts of the data, not model.* settings
_DATA_FACTS = ("vocab", "class_names", "task")
_SETTING_DEFAULTS = NetConfig(2, 2).settings()


@dataclass
class Continuation:
    """Where training continues from: ``resume=RUN_DIR`` (in place) or ``ckpt_path=FILE``."""

    key: str  # the setting that asked for it
    value: str
    path: Path
    checkpoint: dict[str, Any]

    @property
    def in_place(self) -> bool:
        return self.key == "resume"


def continuation(
    resume: str | None, ckpt_path: str | None, last_checkpoint: Path | None
) -> Continuation | None:
    """The checkpoint a run continues from, checked before any training.

    ``last_checkpoint`` is where this run's checkpoint callback keeps ``last.ckpt``: with
    ``resume=RUN_DIR`` the run dir is RUN_DIR, so that is the file to continue from.
    """
    from seqlab.checkpoint import load_checkpoint

    if resume and ckpt_path:
        raise SettingError(
            "resume", resume, "set resume (continue a run in place) or ckpt_path, not both"
        )
    if resume:
        if last_checkpoint is None or not last_checkpoint.is_file():
            where = "no last.ckpt" if last_checkpoint is None else f"no {last_checkpoint}"
            raise SettingError("resume", resume, f"nothing to resume: {where}")
        checkpoint = load_checkpoint(last_checkpoint, "resume", resume)
        return Continuation("resume", resume, last_checkpoint, checkpoint)
    if ckpt_path:
        return Continuation("ckpt_path", ckpt_path, Path(ckpt_path), load_checkpoint(ckpt_path))
    return None


def check_continuation(start: Continuation, module: SeqModule) -> None:
    """``start`` continues training of ``module``: the same settings (the model's, the
    optimizer's and the scheduler's), weights that fit, and optimizer and scheduler states that
    this module's load (tried on copies, before training)."""
    fail = partial(SettingError, start.key, start.value)
    # a setting added since the checkpoint was made is recorded as its default
    saved = _SETTING_DEFAULTS | start.checkpoint["hyper_parameters"]
    differ = [name for name, setting in module.hparams.items() if saved.get(name) != setting]
    changes = [f"model.{n}={saved.get(n)!r}" for n in differ if n not in _DATA_FACTS]
    if set(differ) & set(_DATA_FACTS):
        changes.insert(0, "other data")
    recorded = start.checkpoint["seqlab"].get("optimization")
    if not isinstance(recorded, dict):
        raise fail("it holds no record of its optimizer and scheduler settings")
    changes += differences(recorded, module.optimization or {})
    if changes:
        raise fail(f"it was trained with other settings: {', '.join(changes)}")
    check_weights(start.checkpoint["state_dict"], module, fail)
    training = start.checkpoint["seqlab"].get(TRAINING_WEIGHTS) or {}
    check_weights(start.checkpoint["state_dict"] | training, module, fail)
    configured = module.configure_optimizers()
    optimizer = configured["optimizer"] if isinstance(configured, dict) else configured
    schedulers = [configured["lr_scheduler"]["scheduler"]] if isinstance(configured, dict) else []
    # Lightning's keys: a list of states each, as many as this module configures
    for key, what, built in [
        ("optimizer_states", "optimizer", [optimizer]),
        ("lr_schedulers", "scheduler", schedulers),
    ]:
        states = start.checkpoint.get(key, [])
        if not isinstance(states, list) or len(states) != len(built):
            raise fail(f"it holds no {what} state to continue from")
        try:
            for state, target in zip(states, built, strict=True):
                target.load_state_dict(copy.deepcopy(state))
        except Exception as err:  # torch's own refusal, in its words
            raise fail(f"its {what} state does not fit the model: {first_line(err)}") from None
    for name in ("loops", "callbacks"):
        if not isinstance(start.checkpoint.get(name), dict):
            raise fail(f"it holds no {name} state to continue from")
    carried = start.checkpoint["seqlab"].get("carried_state", [])
    if problem := module.carried_state_problem(carried):  # the ranks: checked on loading
        raise fail(problem)
    summary = start.checkpoint["callbacks"].get(RunSummary.__qualname__)
    if summary is not None and (problem := RunSummary.check_state(summary)):
        raise fail(f"its run summary cannot be continued: {problem}")
