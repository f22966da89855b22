"""Typed dataclasses from and to JSON-able dicts, nested dataclasses included (models' and trainer's configs).

``config_from_dict(cls, data)`` checks every key and value against the annotations of ``cls``: unknown keys
and wrongly typed values are a one-line :class:`~rnnkit.RnnkitError`. Moved here from ``rnnkit.models`` so
that the trainer reads its own config and state without importing the models.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from rnnkit._errors import RnnkitError

__all__ = ["config_from_dict", "config_to_dict"]


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass as a JSON-able dict (nested dataclasses become dicts)."""
    return dataclasses.asdict(cfg)


def _convert(tp: Any, value: Any, where: str) -> Any:
    """Check/convert one JSON value to the annotated field type ``tp`` (nested dataclasses included)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return config_from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(a, value, where)
            except RnnkitError as e:
                errors.append(str(e))
        raise RnnkitError(errors[0] if errors else f"{where}: bad value {value!r}")
    if tp is Any:
        return value
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise RnnkitError(f"{where}: expected a mapping, got {type(value).__name__}")
        return dict(value)
    if origin in (tuple, list) or tp in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise RnnkitError(f"{where}: expected a list, got {type(value).__name__}")
        args = typing.get_args(tp)
        if args and args[-1] is not Ellipsis and origin is tuple:
            return tuple(_convert(a, v, where) for a, v in zip(args, value))
        inner = args[0] if args else Any
        out = [_convert(inner, v, where) for v in value]
        return tuple(out) if origin is tuple or tp is tuple else out
    if tp is bool:
        if not isinstance(value, bool):
            raise RnnkitError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RnnkitError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RnnkitError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise RnnkitError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def config_from_dict(cls: type, data: Mapping[str, Any] | Any, where: str | None = None) -> Any:
    """Build config dataclass ``cls`` from a mapping; unknown keys and wrongly typed values are errors."""
    where = where or cls.__name__
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise RnnkitError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise RnnkitError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(names)}")
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)
