"""One config system: typed dataclasses <-> command-line flags, TOML files and JSON, with one set of rules.

Every field of a config dataclass is one flag (``hidden_size`` <-> ``--hidden-size``; a bool ``x`` gets
``--x`` / ``--no-x``; a list gets several values, ``--value-columns co2 temp``; a dict is JSON text,
``--optimizer-options '{"momentum": 0.9}'``), one TOML key (``hidden_size = 64``) and one JSON key. Values
are merged as defaults < ``--config run.toml`` < flags given on the command line. Unknown keys, wrongly
typed values and values out of range are errors (:class:`rnnkit.RnnkitError`, one line). Example::

    parser = argparse.ArgumentParser(); add_config_arguments(parser, SentimentConfig)
    cfg = config_from_args(SentimentConfig, parser.parse_args(["--hidden-size", "32"]))
    cfg.hidden_size  # 32

A field is declared with :func:`option`, whose metadata holds its help text and checks: ``choices``,
``low`` (inclusive lower bound), ``high`` (inclusive upper bound) and ``below`` (exclusive upper bound).
Fields whose default is ``None`` mean "automatic" or "off" (as the help says); ``auto`` (or ``none``) on the
command line, or leaving the key out of the TOML, keeps them so. A config class may name fields in a
``cli_hidden`` class attribute: those get no flag and no TOML line (the application sets them itself) but
are still kept in ``config.json``.

The trainer's :class:`rnnkit.train.TrainerConfig` is the base of every application's config, so a training
setting has one name everywhere. Settings saved under an older name are read under the new one
(:data:`RENAMED`), and the old flag still works as an alias. A setting added later whose default changes
what training does is listed in the class's ``added_since`` with the value older runs had, so a run saved
before it resumes as it began (:func:`saved_run_settings`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import field
from pathlib import Path
from typing import Any

from rnnkit._errors import RnnkitError

__all__ = [
    "RENAMED",
    "add_config_arguments",
    "config_from_args",
    "config_from_dict",
    "config_to_dict",
    "config_to_toml",
    "flag_values",
    "option",
    "read_toml",
    "saved_run_settings",
    "settings_from_json",
    "validate_config",
]

RENAMED: dict[str, str] = {
    "patience": "early_stopping",
    "k1": "tbptt_k1",
    "k2": "tbptt_k2",
    "eval_every": "validate_every",
}
"""Old name -> current name of settings renamed when the applications' options and the trainer's config
became one dataclass. Old runs' ``config.json`` / TOML files and the old flags keep working."""


def option(default: Any, help: str, **checks: Any) -> Any:
    """A config dataclass field with help text and value checks (``choices``, ``low``, ``high``, ``below``)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **checks})
    return field(default=default, metadata={"help": help, **checks})


def _hidden(cls: type) -> tuple[str, ...]:
    return tuple(getattr(cls, "cli_hidden", ()))


# ------------------------------------------------------------------------------------------------------------
# Conversion and checks
# ------------------------------------------------------------------------------------------------------------
def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _where(name: str) -> str:
    return f"{name} ({_flag(name)})"


def _base_type(tp: Any) -> tuple[Any, bool]:
    """``(T, optional)`` for an annotation ``T`` or ``T | None``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


def _sequence(base: Any) -> tuple[type, type] | None:
    """``(container, element type)`` for ``list[T]`` / ``tuple[T, ...]``; None for other types."""
    origin = typing.get_origin(base)
    if origin in (list, tuple) or base in (list, tuple):
        args = [a for a in typing.get_args(base) if a is not Ellipsis]
        return (origin or base), (args[0] if args else str)
    return None


def _convert(name: str, tp: Any, value: Any, finite: bool = True) -> Any:
    """Check one (TOML or JSON) value against the field type; ints are accepted for floats.

    Nested dataclasses (the models' configs, the trainer's state) are read with :func:`config_from_dict`;
    ``finite=False`` lets a float be infinite (a state's "best so far" starts at inf), never for a setting.
    """
    base, optional = _base_type(tp)
    if value is None:
        if optional:
            return None
        raise RnnkitError(f"{_where(name)}: expected a value, got nothing")
    if base is Any:
        return value
    if optional and value in ("auto", "none"):
        return None
    if dataclasses.is_dataclass(base):
        return value if isinstance(value, base) else config_from_dict(base, value, name)
    if typing.get_origin(base) is dict or base is dict:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise RnnkitError(f"{_where(name)}: expected a table of named values, got {value!r}")
        args = typing.get_args(base)
        if len(args) == 2 and args[1] is not Any:
            return {k: _convert(name, args[1], v, finite) for k, v in value.items()}
        return dict(value)
    seq = _sequence(base)
    if seq is not None:
        container, elem = seq
        what = {str: "strings", int: "integers", float: "numbers"}.get(elem, "values")
        if not isinstance(value, (list, tuple)):
            raise RnnkitError(f"{_where(name)}: expected a list of {what}, got {value!r}")
        try:
            return container(_convert(name, elem, v, finite) for v in value)
        except RnnkitError:
            raise RnnkitError(f"{_where(name)}: expected a list of {what}, got {value!r}") from None
    if base is bool:
        if not isinstance(value, bool):
            raise RnnkitError(f"{_where(name)}: expected true or false, got {value!r}")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RnnkitError(f"{_where(name)}: expected an integer, got {value!r}")
        return value
    if base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RnnkitError(f"{_where(name)}: expected a number, got {value!r}")
        if finite and not math.isfinite(value):
            raise RnnkitError(f"{_where(name)}: expected a finite number, got {value!r}")
        return float(value)
    if base is str:
        if not isinstance(value, str):
            raise RnnkitError(f"{_where(name)}: expected a string, got {value!r}")
        return value
    raise RnnkitError(f"{_where(name)}: unsupported field type {base!r}")  # a bug in a config class


def _fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


def validate_config(cfg: Any) -> Any:
    """Check every field of ``cfg`` against its metadata (choices and bounds); returns ``cfg``."""
    for f in _fields(type(cfg)):
        value = getattr(cfg, f.name)
        meta = f.metadata
        if value is None:
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:  # a list: each element
            _check_value(f.name, item, meta)
    checker = getattr(cfg, "check", None)
    if callable(checker):
        checker()
    return cfg


def _check_value(name: str, value: Any, meta: Mapping[str, Any]) -> None:
    if "choices" in meta and value not in meta["choices"]:
        raise RnnkitError(f"{_where(name)}: expected one of {list(meta['choices'])}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "low" in meta and value < meta["low"]:
            raise RnnkitError(f"{_where(name)}: expected a value >= {meta['low']}, got {value}")
        if "high" in meta and value > meta["high"]:
            raise RnnkitError(f"{_where(name)}: expected a value <= {meta['high']}, got {value}")
        if "below" in meta and value >= meta["below"]:
            raise RnnkitError(f"{_where(name)}: expected a value < {meta['below']}, got {value}")


def _renamed(cls: type, data: Mapping[str, Any], names: list[str]) -> dict[str, Any]:
    """``data`` with keys saved under an old name (:data:`RENAMED`) moved to the current one."""
    out = dict(data)
    for old, new in RENAMED.items():
        if old in out and old not in names and new in names:
            value = out.pop(old)
            out.setdefault(new, value)
    return out


def saved_run_settings(cls: type, saved: Mapping[str, Any]) -> dict[str, Any]:
    """A saved run's settings (its ``config.json``), with every setting added to ``cls`` since it was saved
    set to the value that reproduces the run rather than to today's default: ``cls.added_since`` lists
    ``(name, value before the setting existed)`` pairs (a plain class attribute, like ``cli_hidden``).
    ``rnnkit train --resume`` and loading a run read their settings through it."""
    data = dict(saved)
    for name, before in getattr(cls, "added_since", ()):
        data.setdefault(name, before)
    return data


def config_from_dict(cls: type, data: Mapping[str, Any] | Any, source: str = "config") -> Any:
    """Build and validate config ``cls`` from a mapping (or check an instance of ``cls``).

    Unknown keys and wrong types are errors; keys under an old name (:data:`RENAMED`) are read under the
    current one.
    """
    if isinstance(data, cls):
        data = config_to_dict(data)
    if not isinstance(data, Mapping):
        raise RnnkitError(f"{source}: expected a table of settings, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in _fields(cls)]
    data = _renamed(cls, data, names)
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise RnnkitError(
            f"{source}: unknown key {unknown[0]!r} for {cls.__name__}; known keys: {', '.join(names)}"
        )
    try:
        setting = {f.name: "help" in f.metadata for f in _fields(cls)}  # settings must be finite
        values = {k: _convert(k, hints[k], v, finite=setting[k]) for k, v in data.items()}
    except RnnkitError as exc:
        raise RnnkitError(f"{source}: {exc}") from None
    return validate_config(cls(**values))


def settings_from_json(
    cls: type,
    text: str,
    base: Mapping[str, Any] | None = None,
    source: str = "--set",
    reserved: Sequence[str] = (),
) -> dict[str, Any]:
    """A JSON object of ``cls`` settings laid over ``base``, checked by :func:`config_from_dict` (unknown keys,
    types, bounds, the config's own ``check``) and returned as a dict (a ``null`` stays None). ``reserved``:
    settings the caller sets itself (a script's data, run directory, its own flags), refused rather than
    silently overridden. Anything else (bad JSON, a list, an unknown or reserved key ...) is one
    ``RnnkitError`` saying what was expected and what came.
    Example: ``settings_from_json(TextGenConfig, '{"lr": 0.01}', {"level": "word"})``."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}")
        own = [k for k in reserved if k in data]
        if own:
            raise ValueError(f"{own[0]!r} is set by the caller, not by {source}: {', '.join(reserved)}")
        settings = {**(base or {}), **data}
        config_from_dict(cls, settings, "settings")
    except (ValueError, RnnkitError) as e:
        raise RnnkitError(
            f"{source}: expected a JSON object of {cls.__name__} settings, got {text!r} ({e})"
        ) from None
    return settings


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A config as a plain JSON-able dict (field order kept; nested configs become dicts)."""
    return {f.name: _plain(getattr(cfg, f.name)) for f in _fields(type(cfg))}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_to_dict(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_value(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise RnnkitError(f"cannot write {type(value).__name__} to TOML")


def config_to_toml(cfg: Any, header: str = "") -> str:
    """The config as TOML text that ``--config`` reads back (``None`` = automatic fields are left out)."""
    lines = [f"# {line}" for line in header.splitlines()]
    hidden = _hidden(type(cfg))
    for f in _fields(type(cfg)):
        value = getattr(cfg, f.name)
        if value is not None and f.name not in hidden:
            lines.append(f"{f.name} = {_toml_value(value)}  # {f.metadata.get('help', '')}")
    return "\n".join(lines) + "\n"


def read_toml(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a TOML file; ``RnnkitError`` for a missing, undecodable or invalid file."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise RnnkitError(
                "reading --config TOML files needs Python >= 3.11 or the 'tomli' package"
            ) from None
    p = Path(path)
    if not p.is_file():
        raise RnnkitError(f"--config: expected a TOML file, got {str(p)!r} which does not exist")
    try:
        return tomllib.loads(p.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise RnnkitError(f"--config {p.name}: expected UTF-8 text, got undecodable bytes") from None
    except tomllib.TOMLDecodeError as exc:
        raise RnnkitError(f"--config {p.name}: invalid TOML: {exc}") from None


# ------------------------------------------------------------------------------------------------------------
# argparse
# ------------------------------------------------------------------------------------------------------------
class _Auto:
    """argparse type for ``T | None`` fields: ``auto`` (kept as the string) means None, automatic."""

    def __init__(self, inner: type):
        self.inner = inner
        self.__name__ = inner.__name__  # argparse names the type in its error messages

    def __call__(self, text: str) -> Any:
        return text if text in ("auto", "none") else self.inner(text)  # None in _convert


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


_finite_float.__name__ = "float"


def _comma_list(conv: Any) -> Any:
    def parse(text: str) -> list[Any]:
        return [conv(part.strip()) for part in text.split(",") if part.strip()]

    parse.__name__ = getattr(conv, "__name__", "value")
    return parse


def _json_table(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(text)
    return value


_json_table.__name__ = "JSON object"


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add one flag per field of config ``cls``; unset flags stay ``None`` in the namespace.

    The namespace attribute is the field name. Help text shows the default. Fields in ``skip`` or in the
    class's ``cli_hidden`` get no flag; a field with an old name (:data:`RENAMED`) also answers to the old flag.
    """
    hints = typing.get_type_hints(cls)
    skip = (*skip, *_hidden(cls))
    old_names = {new: old for old, new in RENAMED.items()}
    group = parser.add_argument_group(f"{cls.__name__} settings (also TOML keys for --config)")
    own = set(vars(cls).get("__annotations__", {}))
    for f in sorted(_fields(cls), key=lambda f: f.name not in own):  # the application's own settings first
        if f.name in skip:
            continue
        base, optional = _base_type(hints[f.name])
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        shown = "auto" if default is None else default
        help_text = f.metadata.get("help", "")
        if "default" not in help_text:
            help_text += f" (default: {shown})"
        help_text = help_text.replace("%", "%%")
        kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": help_text}
        if base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif _sequence(base) is not None:
            elem = _sequence(base)[1]
            conv = {int: int, float: _finite_float, str: str}[elem]
            # several values, each of which may also be a comma-separated list: --lengths 50,100 200
            kwargs.update(nargs="+", action="extend", type=_comma_list(conv), metavar=elem.__name__.upper())
        elif typing.get_origin(base) is dict or base is dict:
            kwargs.update(type=_json_table, metavar="JSON")
        else:
            conv = {int: int, float: _finite_float, str: str}[base]
            kwargs["type"] = _Auto(conv) if optional else conv
            if "choices" in f.metadata:
                kwargs["metavar"] = "{" + ",".join(f.metadata["choices"]) + "}"
        flags = [_flag(f.name)]
        if f.name in old_names and old_names[f.name] not in {g.name for g in _fields(cls)}:
            flags.append(_flag(old_names[f.name]))  # the old flag, kept as an alias
        group.add_argument(*flags, **kwargs)


def flag_values(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The fields of ``cls`` set on the command line (flags added by :func:`add_config_arguments`)."""
    flags = {f.name: getattr(args, f.name) for f in _fields(cls) if getattr(args, f.name, None) is not None}
    for name, value in flags.items():  # several values, each a comma-separated list: one flat list
        if isinstance(value, list) and all(isinstance(v, list) for v in value):
            flags[name] = [item for part in value for item in part]
    return flags


def config_from_args(cls: type, args: argparse.Namespace, toml_path: str | None = None, app: str = "") -> Any:
    """Defaults < TOML file (``toml_path``) < flags set in ``args``; validated.

    A TOML file may also hold ``app = "<name>"``; it must then equal ``app``.
    """
    data: dict[str, Any] = {}
    source = "flags"
    if toml_path:
        source = f"--config {Path(toml_path).name}"
        data.update(read_toml(toml_path))
        named = data.pop("app", app)
        if app and named != app:
            raise RnnkitError(f"{source}: the file is for app {named!r}, but the command trains {app!r}")
    base = config_from_dict(cls, data, source)  # the file checked alone, so that its errors name it
    # only the settings the file gives: a field left unset (None) may take a default that depends on another
    # setting (textgen's --level), which a flag can still change
    given = set(_renamed(cls, data, [f.name for f in _fields(cls)]))
    from_file = {k: v for k, v in config_to_dict(base).items() if k in given}
    return config_from_dict(cls, {**from_file, **flag_values(cls, args)}, "flags")
