"""Settings are checked against the types their constructor declares, before it is called.

A constructor's annotations are the one definition of what each argument takes: a config node
(``_target_`` + keys), a tool's settings dataclass and a checkpoint's recorded arguments are all
checked against them here, so a string never reaches an ``int`` argument and a key that the
constructor does not take is named with the ones it does. Ranges and rules between arguments
stay in the constructors (or a dataclass's ``__post_init__``), beside the arguments themselves.
A class that takes its settings as ``**settings`` names their dataclass as ``SETTINGS``: its
keyword-only fields are then that class's arguments too (SeqModule takes NetConfig's so).
"""

from __future__ import annotations

import collections.abc as abc
import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Collection, Mapping
from typing import Any

from hydra.utils import get_object

from seqlab.errors import SettingError

# values of these types are written in a config or a checkpoint as themselves
PLAIN = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}
SEQUENCES = (list, tuple, abc.Sequence, abc.Iterable, abc.Collection, abc.MutableSequence)
MAPPINGS = (dict, abc.Mapping, abc.MutableMapping)


def declared_settings(target: Callable[..., Any]) -> type | None:
    """The dataclass whose keyword-only fields ``target`` takes as ``**settings``, if any."""
    settings = getattr(target, "SETTINGS", None)
    return settings if inspect.isclass(settings) and dataclasses.is_dataclass(settings) else None


def parameters(target: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """The keyword arguments ``target`` takes (a class: its ``__init__``'s), by name."""
    signature = inspect.signature(target)
    found = {
        name: p
        for name, p in signature.parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    settings = declared_settings(target)
    if settings is None:
        return found
    declared = {n: p for n, p in parameters(settings).items() if p.kind == p.KEYWORD_ONLY}
    return declared | found  # the settings first: what an error lists as expected


def annotations(target: Callable[..., Any]) -> dict[str, Any]:
    """The resolved type annotations of ``target``'s arguments; {} where they cannot be read."""
    function = target.__init__ if inspect.isclass(target) else target
    settings = declared_settings(target)
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # an annotation naming something not importable: checked by the callee
        hints = {}
    return hints if settings is None else {**annotations(settings), **hints}


def takes_any_keyword(target: Callable[..., Any]) -> bool:
    if declared_settings(target) is not None:  # its **settings are the declared ones only
        return False
    return any(p.kind == p.VAR_KEYWORD for p in inspect.signature(target).parameters.values())


def check_arguments(
    target: Callable[..., Any],
    values: Mapping[str, Any],
    prefix: str = "",
    provided: Collection[str] = (),
    required: bool = True,
) -> None:
    """Every key of ``values`` is an argument of ``target`` holding a value of its type.

    ``prefix`` makes the keys the user's (``model.`` + ``hidden_size``); ``provided`` are the
    arguments given at the call site, not by ``values``; with ``required`` an argument without a
    default must be in ``values``. Raises :class:`SettingError` for the first key that fails.
    """
    accepted = parameters(target)
    hints = annotations(target)
    settable = [name for name in accepted if name not in provided]
    for name, value in values.items():
        key = f"{prefix}{name}"
        if name not in accepted or name in provided:
            if takes_any_keyword(target):
                continue
            raise SettingError(
                key, value, f"no such setting; expected one of {', '.join(settable)}"
            )
        if name in hints:
            check_type(key, value, hints[name])
    if required:
        for name in settable:
            if accepted[name].default is inspect.Parameter.empty and name not in values:
                raise SettingError(f"{prefix}{name}", None, "a value is required")


def check_node(values: Mapping[str, Any], key: str, provided: Collection[str] = ()) -> None:
    """A config node (plain values) builds its ``_target_`` with arguments of the right types."""
    if not isinstance(values, Mapping) or "_target_" not in values:
        raise SettingError(key, values, "expected a config with a _target_ to build")
    target = values["_target_"]
    try:
        built = get_object(str(target))
    except Exception:
        raise SettingError(f"{key}._target_", target, "cannot be imported") from None
    arguments = {k: v for k, v in values.items() if not k.startswith("_")}
    check_arguments(built, arguments, f"{key}.", provided)
    for name, value in arguments.items():  # a nested object the config builds too
        if isinstance(value, Mapping) and "_target_" in value:
            check_node(value, f"{key}.{name}")


def check_type(key: str, value: Any, annotation: Any) -> None:
    """``value`` is of type ``annotation``; else a :class:`SettingError` saying what is."""
    if not matches(value, annotation):
        raise SettingError(key, value, f"expected {describe(annotation)}")


def matches(value: Any, annotation: Any) -> bool:
    if annotation is Any or isinstance(annotation, typing.TypeVar):
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, arg) for arg in args)
    if origin is typing.Literal:
        # True == 1 and 1 == 1.0 in Python: a literal matches a value of its own type only
        return any(type(value) is type(arg) and value == arg for arg in args)
    if annotation in PLAIN:
        if annotation is float:
            return type(value) in (int, float)
        return type(value) is annotation  # bool is an int in Python, but not a setting's
    if origin in SEQUENCES or annotation in SEQUENCES:
        if not isinstance(value, list | tuple):  # a string is a sequence, but not of settings
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:  # tuple[int, str]: by place
            return len(value) == len(args) and all(map(matches, value, args))
        return all(matches(v, args[0] if args else Any) for v in value)
    if origin in MAPPINGS or annotation in MAPPINGS:
        if not isinstance(value, dict):
            return False
        key_type, value_type = args if len(args) == 2 else (Any, Any)
        return all(matches(k, key_type) and matches(v, value_type) for k, v in value.items())
    if inspect.isclass(annotation):
        # a config may build the object itself (a nested `_target_`); else an instance of it
        return isinstance(value, annotation) or (isinstance(value, dict) and "_target_" in value)
    return True  # an annotation this checker does not know: the callee checks it


def describe(annotation: Any) -> str:
    """What a value of ``annotation`` is, as a user reads it: ``a whole number or null``."""
    if annotation is None or annotation is type(None):
        return "null"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        literals = [a for a in args if typing.get_origin(a) is typing.Literal]
        if literals and len(literals) == len([a for a in args if a is not type(None)]):
            values = [v for a in literals for v in typing.get_args(a)]
            null = ", null" if type(None) in args else ""
            return f"one of {', '.join(map(str, values))}{null}"
        return " or ".join(dict.fromkeys(describe(a) for a in args))
    if origin is typing.Literal:
        return f"one of {', '.join(map(str, args))}"
    if annotation in PLAIN:
        return PLAIN[annotation]
    if origin in SEQUENCES or annotation in SEQUENCES:
        return f"a list, each {describe(args[0])}" if args else "a list"
    if origin in MAPPINGS or annotation in MAPPINGS:
        return "a mapping"
    return getattr(annotation, "__name__", str(annotation))
