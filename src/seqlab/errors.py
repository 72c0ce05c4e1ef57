"""The one error a user sees for a setting that cannot work."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class SettingError(ValueError):
    """A constructor argument with a value that cannot work.

    Constructors raise it with the argument's own name; the code that built the object from a
    config group adds the group (``cell`` becomes ``model.cell``), so the line a user reads names
    the exact key to change.
    """

    def __init__(self, name: str, value: Any, expected: str) -> None:
        self.name, self.value, self.expected = name, value, expected
        super().__init__(f"{name}={value!r} is invalid: {expected}")

    def within(self, group: str) -> SettingError:
        """The same error, named by its full config key."""
        return SettingError(f"{group}.{self.name}", self.value, self.expected)


class RefusedSettings(SettingError):
    """Settings a library refused when building its object: its own words name the value and
    the choices, so they are kept, on one line, after the config group they came from."""

    def __init__(self, group: str, reason: str) -> None:
        self.name, self.value, self.expected = group, None, " ".join(reason.split())
        ValueError.__init__(self, f"{group}: {self.expected}")

    def within(self, group: str) -> RefusedSettings:
        return RefusedSettings(f"{group}.{self.name}", self.expected)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise SettingError(name, value, f"expected one of {', '.join(choices)}")


def check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise SettingError(name, value, "expected a number > 0")


def exits_on_setting_error(main: Callable[P, R]) -> Callable[P, R]:
    """For a command's main: a :class:`SettingError` ends it with one line and status 1."""

    @functools.wraps(main)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return main(*args, **kwargs)
        except SettingError as err:
            raise SystemExit(f"error: {err}") from None

    return wrapper
