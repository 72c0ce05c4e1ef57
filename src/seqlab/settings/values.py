"""Plain values out of a composed config, with every missing or unresolvable one named by key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from seqlab.errors import SettingError, first_line, shown
from seqlab.settings.types import check_arguments

T = TypeVar("T")

MISSING = "???"  # how a config writes a value the user must give


def plain(node: DictConfig | Mapping[str, Any], key: str = "") -> dict[str, Any]:
    """``node`` as nested dicts and lists of plain values, interpolations resolved.

    ``key`` is the node's own key (``data``), so an error names the full key: a missing value
    (``???``) or an interpolation that cannot be resolved is a :class:`SettingError`.
    """
    if not isinstance(node, DictConfig):
        return dict(node)
    try:
        return OmegaConf.to_container(node, resolve=True, throw_on_missing=True)  # type: ignore[return-value]
    except MissingMandatoryValue as err:
        raise SettingError(_full_key(err, key), MISSING, "a value is required") from None
    except OmegaConfBaseException as err:
        reason = first_line(err)
        refused = _setting_error(err)  # a resolver's own refusal (an unknown ${corpus:NAME})
        if refused is not None:
            reason = f"{refused.name}={shown(refused.value)}: {refused.expected}"
        raise SettingError(_full_key(err, key), _raw(node, err), reason) from None


def _setting_error(err: BaseException) -> SettingError | None:
    """The SettingError a resolver raised, which OmegaConf wraps in errors of its own."""
    seen: BaseException | None = err
    while seen is not None and not isinstance(seen, SettingError):
        seen = seen.__cause__ or seen.__context__
    return seen


def _full_key(err: OmegaConfBaseException, key: str) -> str:
    inner = str(getattr(err, "full_key", "") or "")
    return ".".join(part for part in (key, inner) if part) or "config"


def _raw(node: DictConfig, err: OmegaConfBaseException) -> Any:
    """The value as written (``${oc.env:HOME}``), for the message; None where not found."""
    value: Any = OmegaConf.to_container(node, resolve=False)
    for part in str(getattr(err, "full_key", "") or "").split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def settings_from(cls: type[T], node: DictConfig | Mapping[str, Any], key: str = "") -> T:
    """A settings dataclass built from ``node``: every key one of its fields, every value of
    the field's type, then its own ranges (``__post_init__``). ``key``: the node's config key."""
    values = plain(node, key)
    check_arguments(cls, values, f"{key}." if key else "")
    return cls(**values)
