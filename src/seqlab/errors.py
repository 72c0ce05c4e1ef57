"""The one error a user sees for a setting that cannot work."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def first_line(err: BaseException) -> str:
    """An exception's message as one line (an OmegaConf error's own message, without the
    key/type lines it appends), or its type's name if it has none."""
    text = str(getattr(err, "msg", None) or err).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(err).__name__


SHOWN = 120  # characters of a value an error shows: a whole corpus or vocabulary is not a line


def shown(value: Any) -> str:
    """``repr(value)``, cut to :data:`SHOWN` characters."""
    text = repr(value)
    return text if len(text) <= SHOWN else f"{text[: SHOWN - 5]}...{text[-1]}"


class SettingError(ValueError):
    """A constructor argument with a value that cannot work.

    Constructors raise it with the argument's own name; the code that built the object from a
    config group adds the group (``cell`` becomes ``model.cell``), so the line a user reads names
    the exact key to change.
    """

    def __init__(self, name: str, value: Any, expected: str) -> None:
        self.name, self.value, self.expected = name, value, expected
        super().__init__(f"{name}={shown(value)} is invalid: {expected}")

    def within(self, group: str) -> SettingError:
        """The same error, named by its full config key."""
        return SettingError(f"{group}.{self.name}", self.value, self.expected)

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        # rebuilt from its own arguments: a SLURM or joblib job's error is unpickled in the sweep
        return type(self), (self.name, self.value, self.expected)


class RefusedSettings(SettingError):
    """Settings a library refused when building its object: its own words name the value and
    the choices, so they are kept, on one line, after the config group they came from."""

    def __init__(self, group: str, reason: str) -> None:
        self.name, self.value, self.expected = group, None, " ".join(reason.split())
        ValueError.__init__(self, f"{group}: {self.expected}")

    def within(self, group: str) -> RefusedSettings:
        return RefusedSettings(f"{group}.{self.name}", self.expected)

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        return type(self), (self.name, self.expected)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise SettingError(name, value, f"expected one of {', '.join(choices)}")


def check_positive(name: str, value: float) -> None:
    if not value > 0:  # NaN too
        raise SettingError(name, value, "expected a number > 0")
    if not math.isfinite(value):
        raise SettingError(name, value, "expected a finite number > 0")


def check_at_least(name: str, value: float, low: float) -> None:
    if not value >= low:  # NaN too
        raise SettingError(name, value, f"expected a number >= {low}")
    if not math.isfinite(value):
        raise SettingError(name, value, f"expected a finite number >= {low}")


# settings of earlier seqlab versions that now live in a config group of their own:
# old key -> (new key, what else to know)
PICKS = "optimizer=NAME picks the class from conf/optimizer/"
MOVED = {
    "model.optimizer": ("optimizer", "a config group of its own: conf/optimizer/"),
    "model.lr": ("optimizer.lr", PICKS),
    "model.weight_decay": ("optimizer.weight_decay", PICKS),
}


def moved(key: str, value: Any) -> str | None:
    """Why an earlier seqlab's key is refused: where it lives now. None for any other key."""
    if key not in MOVED:
        return None
    new, hint = MOVED[key]
    return f"moved: use {new}={value} ({hint})"


# seeds: what seed_everything and numpy accept
MAX_SEED = 2**32 - 1


def check_seed(name: str, value: int) -> None:
    if not 0 <= value <= MAX_SEED:
        raise SettingError(name, value, f"expected a whole number from 0 to {MAX_SEED}")


def exits_on_setting_error(main: Callable[P, R]) -> Callable[P, R]:
    """For a command's main: a :class:`SettingError` ends it with one line and status 1."""

    @functools.wraps(main)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return main(*args, **kwargs)
        except SettingError as err:
            raise SystemExit(f"error: {err}") from None

    return wrapper


class RunFailed(Exception):
    """A run that cannot go on, for a reason one line tells (a full disk, a diverged loss).

    Unlike a :class:`SettingError` it happens while training: the run is marked failed with
    this line in its metrics.json, and the command ends with it, exit status 1.
    """
