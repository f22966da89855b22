"""Typed configs of the CLI, and their mapping onto command-line flags and TOML files.

Every field of a config dataclass is one flag (``hidden_size`` <-> ``--hidden-size``; a bool ``x`` gets
``--x`` / ``--no-x``; a list gets several values, ``--value-columns co2 temp``) and one TOML key
(``hidden_size = 64``). Values are merged as defaults < ``--config run.toml`` < flags given on the command line.
Unknown TOML keys, wrongly typed values and values out of range are errors (:class:`rnnkit.RnnkitError`, one
line). Example::

    parser = argparse.ArgumentParser(); add_config_arguments(parser, SentimentConfig)
    cfg = config_from_args(SentimentConfig, parser.parse_args(["--hidden-size", "32"]))
    cfg.hidden_size  # 32

A field's ``metadata`` holds its help text and checks: ``choices``, ``low`` (inclusive lower bound),
``high`` (inclusive upper bound) and ``below`` (exclusive upper bound). Fields whose default is ``None`` mean
"automatic" (chosen by the application from the data set, as the help says); ``auto`` on the command line or
leaving the key out of the TOML keeps them automatic.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit._errors import RnnkitError

__all__ = [
    "APP_CONFIGS",
    "GenerateConfig",
    "SentimentConfig",
    "TextGenConfig",
    "TimeSeriesConfig",
    "add_config_arguments",
    "config_from_args",
    "config_from_dict",
    "config_to_dict",
    "config_to_toml",
    "read_toml",
    "validate_config",
]


def _f(default: Any, help: str, **checks: Any) -> Any:
    """A dataclass field with help text and value checks in its metadata."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **checks})
    return field(default=default, metadata={"help": help, **checks})


# ------------------------------------------------------------------------------------------------------------
# Shared parts
# ------------------------------------------------------------------------------------------------------------
@dataclass
class RunOptions:
    """Where a run is written and how it is seeded (shared by every application)."""

    name: str | None = _f(
        None, "run name: the run is written to RUNS_DIR/NAME (default: the application's name)"
    )
    runs_dir: str = _f("runs", "folder that holds the run directories")
    seed: int = _f(0, "seed of the model's initial weights, the batch order and dropout", low=0)
    threads: int = _f(
        1, "torch threads (1 is fastest for small models on a busy machine); 0 = torch's default", low=0
    )


@dataclass
class TrainOptions:
    """Optimisation settings shared by the applications (Adam with gradient clipping and early stopping)."""

    epochs: int = _f(10, "passes over the training data at most", low=1)
    batch_size: int = _f(32, "sequences per batch", low=1)
    lr: float = _f(2e-3, "Adam learning rate", low=1e-12)
    weight_decay: float = _f(0.0, "AdamW weight decay", low=0.0)
    lr_decay: float = _f(
        1.0,
        "multiply the learning rate by this when the validation score stops improving; 1 = constant",
        low=1e-3,
        high=1.0,
    )
    clip_norm: float = _f(1.0, "clip the global gradient norm to this; 0 = no clipping", low=0.0)
    patience: int = _f(3, "stop after this many epochs without a better validation score; 0 = never", low=0)
    time_budget: float = _f(
        0.0, "stop training after this many seconds (at the end of a step); 0 = no limit", low=0.0
    )
    progress: bool = _f(True, "show a progress bar while training")


# ------------------------------------------------------------------------------------------------------------
# The applications
# ------------------------------------------------------------------------------------------------------------
@dataclass
class SentimentConfig(RunOptions, TrainOptions):
    """Sentiment analysis: a (bidirectional) GRU/LSTM text classifier next to a bag-of-words baseline."""

    data: str = _f("polarity", "'polarity' (Pang & Lee, built in) or a CSV/TSV/JSONL file of labelled texts")
    text_column: str = _f("text", "column (or JSON key) of the texts in a user file")
    label_column: str = _f("label", "column (or JSON key) of the labels in a user file")
    val_fraction: float = _f(0.1, "share of the examples held out for early stopping", low=0.0, below=1.0)
    test_fraction: float = _f(
        0.1, "share of the examples held out for the reported scores", low=0.0, below=1.0
    )
    split_seed: int = _f(0, "seed of the shuffle that makes the fixed train/validation/test split", low=0)
    level: str = _f("word", "tokens: words or characters", choices=("word", "char"))
    min_freq: int = _f(2, "keep tokens seen at least this often in the training texts", low=1)
    max_vocab: int = _f(20000, "vocabulary size at most (special tokens included)", low=4)
    max_tokens: int = _f(80, "truncate texts to this many tokens", low=1)
    cell: str = _f("gru", "recurrent cell", choices=("gru", "lstm", "rnn", "mingru", "minlstm"))
    embedding_dim: int = _f(64, "size of the token embeddings", low=1)
    hidden_size: int = _f(64, "hidden units per direction", low=1)
    num_layers: int = _f(1, "stacked recurrent layers", low=1)
    bidirectional: bool = _f(True, "read the text in both directions")
    pooling: str = _f(
        "max", "how the per-token outputs become one vector", choices=("last", "mean", "max", "attention")
    )
    dropout: float = _f(0.4, "dropout on the embeddings and before the output layer", low=0.0, below=1.0)
    baseline_ngrams: int = _f(1, "n-gram order of the bag-of-words baseline (1 = words only)", low=1, high=3)

    def check(self) -> None:
        _check_fractions(self)


@dataclass
class TimeSeriesConfig(RunOptions, TrainOptions):
    """Time-series forecasting: a recurrent network reads a window and forecasts the next HORIZON values."""

    data: str = _f("co2", "'co2' or 'sunspots' (built in), or a CSV file with a header line")
    time_column: str | None = _f(None, "time-stamp column of a user CSV (default: detected from the header)")
    value_columns: list[str] = _f([], "input columns (default: every column but the time column)")
    target: str | None = _f(None, "column to forecast (default: the first value column)")
    horizon: int | None = _f(
        None, "steps ahead to forecast (default: 52 for co2, 5 for sunspots, else 1)", low=1
    )
    window: int | None = _f(
        None, "past steps the model reads (default: 2 seasons, at least 2 * horizon)", low=2
    )
    season: int | None = _f(
        None,
        "seasonal period for seasonal naive and MASE (default: 52 for co2, 11 for sunspots, else 1)",
        low=1,
    )
    structure: str = _f(
        "many-to-one",
        "many-to-one: forecast from the last step; many-to-many: forecast at every step, train on all",
        choices=("many-to-one", "many-to-many"),
    )
    val_fraction: float = _f(
        0.1, "share of the series (before the test part) for early stopping", low=0.0, below=1.0
    )
    test_fraction: float = _f(0.1, "last share of the series for the reported scores", low=0.0, below=1.0)
    normalize: str = _f(
        "level",
        "level: values relative to the latest value, in units of the typical HORIZON-step change; "
        "standard: (x - mean) / std of the training part",
        choices=("level", "standard"),
    )
    stride: int = _f(1, "step between forecast origins in the validation and test parts", low=1)
    cell: str = _f("gru", "recurrent cell", choices=("gru", "lstm", "rnn", "mingru", "minlstm"))
    hidden_size: int = _f(64, "hidden units", low=1)
    num_layers: int = _f(1, "stacked recurrent layers", low=1)
    dropout: float = _f(0.0, "dropout between stacked layers and before the output layer", low=0.0, below=1.0)
    epochs: int = _f(60, "passes over the training windows at most", low=1)
    batch_size: int = _f(64, "windows per batch", low=1)
    lr: float = _f(3e-3, "Adam learning rate", low=1e-12)
    patience: int = _f(10, "stop after this many epochs without a better validation MAE; 0 = never", low=0)

    def check(self) -> None:
        _check_fractions(self)


@dataclass
class TextGenConfig(RunOptions, TrainOptions):
    """Text generation: a character-level LSTM language model trained with truncated BPTT."""

    data: str = _f("austen", "'austen' (Jane Austen's novels, built in) or a UTF-8 text file")
    books: list[str] = _f([], "Austen novels to use (default: all six)")
    level: str = _f("char", "tokens: characters or words", choices=("char", "word"))
    min_freq: int = _f(1, "keep tokens seen at least this often in the training text", low=1)
    val_fraction: float = _f(
        0.02, "share of the text (before the test part) for early stopping", low=0.0, below=1.0
    )
    test_fraction: float = _f(
        0.05, "last share of the text held out for the reported bits per character", low=0.0, below=1.0
    )
    eval_tokens: int = _f(
        100000, "score at most this many held-out tokens (from the start of each part); 0 = all", low=0
    )
    cell: str = _f("lstm", "recurrent cell", choices=("lstm", "gru", "rnn", "mingru", "minlstm"))
    embedding_dim: int = _f(64, "size of the character embeddings", low=1)
    hidden_size: int = _f(256, "hidden units per layer", low=1)
    num_layers: int = _f(1, "stacked recurrent layers", low=1)
    dropout: float = _f(
        0.0, "dropout on the embeddings, between layers and before the output layer", low=0.0, below=1.0
    )
    tie_weights: bool = _f(
        False,
        "share the embedding and output weights (a projection is added when embedding_dim != hidden_size)",
    )
    k1: int = _f(50, "truncated BPTT: time steps forward between updates", low=1)
    k2: int = _f(50, "truncated BPTT: time steps backpropagated (k2 >= k1 overlaps chunks)", low=1)
    epochs: int = _f(1, "passes over the training text at most", low=1)
    batch_size: int = _f(32, "parallel streams of text", low=1)
    lr: float = _f(5e-3, "Adam learning rate", low=1e-12)
    patience: int = _f(
        0, "stop after this many evaluations without a better validation score; 0 = never", low=0
    )
    eval_every: int = _f(
        300, "evaluate on the validation text every this many updates; 0 = once per epoch", low=0
    )
    max_steps: int = _f(0, "stop after this many updates; 0 = no limit", low=0)
    sample_length: int = _f(300, "characters of sample text written to the run at the end", low=0)

    def check(self) -> None:
        _check_fractions(self)
        if self.k2 < self.k1:
            raise RnnkitError(f"k2 (--k2) must be >= k1 (--k1): got k1={self.k1}, k2={self.k2}")


@dataclass
class GenerateConfig:
    """How ``rnnkit generate`` samples text from a language model (see the models' decoding strategies)."""

    length: int = _f(300, "tokens to generate after the prompt", low=1)
    temperature: float = _f(
        0.8, "divide the logits by this before sampling; 0 = greedy (most probable)", low=0.0
    )
    top_k: int = _f(0, "sample among the k most probable tokens only; 0 = all", low=0)
    top_p: float = _f(
        1.0, "nucleus sampling: the smallest set with this much probability; 1 = all", low=1e-9, high=1.0
    )
    num_samples: int = _f(1, "samples per prompt", low=1)
    seed: int = _f(0, "random seed of the sampling", low=0)


def _check_fractions(cfg: Any) -> None:
    if cfg.val_fraction + cfg.test_fraction >= 1:
        raise RnnkitError(
            f"val_fraction + test_fraction (--val-fraction, --test-fraction) must be < 1, got "
            f"{cfg.val_fraction} + {cfg.test_fraction}"
        )


APP_CONFIGS: dict[str, type] = {
    "sentiment": SentimentConfig,
    "timeseries": TimeSeriesConfig,
    "textgen": TextGenConfig,
}
"""The applications ``rnnkit train`` knows, by name, with their config classes."""


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


def _convert(name: str, tp: Any, value: Any) -> Any:
    """Check one (TOML or JSON) value against the field type; ints are accepted for floats."""
    base, optional = _base_type(tp)
    if value is None:
        if optional:
            return None
        raise RnnkitError(f"{_where(name)}: expected a value, got nothing")
    if optional and value == "auto":
        return None
    if typing.get_origin(base) is list or base is list:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise RnnkitError(f"{_where(name)}: expected a list of strings, got {value!r}")
        return list(value)
    if base is bool:
        if not isinstance(value, bool):
            raise RnnkitError(f"{_where(name)}: expected true or false, got {value!r}")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RnnkitError(f"{_where(name)}: expected an integer, got {value!r}")
        return value
    if base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
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
        if "choices" in meta and value not in meta["choices"]:
            raise RnnkitError(f"{_where(f.name)}: expected one of {list(meta['choices'])}, got {value!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "low" in meta and value < meta["low"]:
                raise RnnkitError(f"{_where(f.name)}: expected a value >= {meta['low']}, got {value}")
            if "high" in meta and value > meta["high"]:
                raise RnnkitError(f"{_where(f.name)}: expected a value <= {meta['high']}, got {value}")
            if "below" in meta and value >= meta["below"]:
                raise RnnkitError(f"{_where(f.name)}: expected a value < {meta['below']}, got {value}")
    checker = getattr(cfg, "check", None)
    if callable(checker):
        checker()
    return cfg


def config_from_dict(cls: type, data: Mapping[str, Any], source: str = "config") -> Any:
    """Build and validate config ``cls`` from a mapping; unknown keys and wrong types are errors."""
    if not isinstance(data, Mapping):
        raise RnnkitError(f"{source}: expected a table of settings, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in _fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise RnnkitError(
            f"{source}: unknown key {unknown[0]!r} for {cls.__name__}; known keys: {', '.join(names)}"
        )
    try:
        values = {k: _convert(k, hints[k], v) for k, v in data.items()}
    except RnnkitError as exc:
        raise RnnkitError(f"{source}: {exc}") from None
    return validate_config(cls(**values))


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A config as a plain JSON-able dict (field order kept)."""
    return {f.name: getattr(cfg, f.name) for f in _fields(type(cfg))}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise RnnkitError(f"cannot write {type(value).__name__} to TOML")


def config_to_toml(cfg: Any, header: str = "") -> str:
    """The config as TOML text that ``--config`` reads back (``None`` = automatic fields are left out)."""
    lines = [f"# {line}" for line in header.splitlines()]
    for f in _fields(type(cfg)):
        value = getattr(cfg, f.name)
        if value is not None:
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
        return "auto" if text == "auto" else self.inner(text)  # "auto" becomes None in _convert


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


_finite_float.__name__ = "float"


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add one flag per field of config ``cls``; unset flags stay ``None`` in the namespace.

    The namespace attribute is the field name. Help text shows the default.
    """
    hints = typing.get_type_hints(cls)
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
        elif typing.get_origin(base) is list or base is list:
            kwargs.update(nargs="+", metavar="NAME")
        else:
            conv = {int: int, float: _finite_float, str: str}[base]
            kwargs["type"] = _Auto(conv) if optional else conv
            if "choices" in f.metadata:
                kwargs["metavar"] = "{" + ",".join(f.metadata["choices"]) + "}"
        group.add_argument(_flag(f.name), **kwargs)


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
    base = config_from_dict(cls, data, source)
    flags = {f.name: getattr(args, f.name) for f in _fields(cls) if getattr(args, f.name, None) is not None}
    return config_from_dict(cls, {**config_to_dict(base), **flags}, "flags")
