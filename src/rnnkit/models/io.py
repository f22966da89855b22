"""Saving and loading models as safetensors + JSON — never pickle — with atomic writes.

A saved model is a directory::

    model.safetensors   the weights (tied weights stored once; metadata names the model class)
    model.json          {"format": "rnnkit.model", "version": 1, "model": <class>, "config": {...},
                         "weights_sha256": <digest of model.safetensors>}

Both files are written atomically by :mod:`rnnkit.files`, so a crash never leaves a half-written file under
the final name. Loading checks the digest, the class, the tensor names and shapes before touching any weight: a damaged file or another model's weights is a clear
:class:`~rnnkit.RnnkitError` and the target model is left as it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from rnnkit._errors import RnnkitError
from rnnkit.files import (
    load_module_tensors,
    module_tensors,
    read_json,
    read_safetensors,
    write_json,
    write_safetensors,
)

__all__ = ["save_model", "load_model", "read_model_info", "MODEL_REGISTRY"]

MODEL_FORMAT = "rnnkit.model"
MODEL_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "model.json"

#: every model class by name, for :func:`load_model` (filled by ``Model.__init_subclass__``). It lives here,
#: below the model base class, so that saving and loading never import the models themselves.
MODEL_REGISTRY: dict[str, type[nn.Module]] = {}


# -- models ----------------------------------------------------------------------------------------------------
def save_model(model: nn.Module, directory: str | os.PathLike) -> Path:
    """Write ``model.safetensors`` and ``model.json`` into ``directory`` (created if needed); returns it."""
    if MODEL_REGISTRY.get(type(model).__name__) is not type(model):  # only registered model classes load back
        raise RnnkitError(f"save_model expects an rnnkit model, got {type(model).__name__}")
    return write_model_files(model, directory)


def write_model_files(model: nn.Module, directory: str | os.PathLike) -> Path:
    """``model.safetensors`` (its tensors) and ``model.json`` (its class name and ``to_config()``) in
    ``directory``, for any module with ``to_config`` (:func:`save_model` adds the check that it loads back)."""
    directory = Path(directory)
    cfg = model.to_config()
    tensors, aliases = module_tensors(model)
    meta = {"format": MODEL_FORMAT, "model": type(model).__name__, "aliases": json.dumps(aliases)}
    digest = write_safetensors(directory / WEIGHTS_FILE, tensors, meta)
    info = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "model": type(model).__name__,
        "config": cfg,
        "weights_sha256": digest,
    }
    write_json(directory / CONFIG_FILE, info)
    return directory


def read_model_info(directory: str | os.PathLike) -> dict[str, Any]:
    """The parsed and checked ``model.json`` of a saved model directory."""
    path = Path(directory) / CONFIG_FILE
    info = read_json(path)
    if not isinstance(info, dict) or info.get("format") != MODEL_FORMAT:
        raise RnnkitError(f"{path}: not an rnnkit model description (format {MODEL_FORMAT!r} expected)")
    if info.get("version") != MODEL_VERSION:
        raise RnnkitError(
            f"{path}: unsupported version {info.get('version')!r} (this rnnkit reads {MODEL_VERSION})"
        )
    return info


def load_model(directory: str | os.PathLike, expected: type | None = None) -> nn.Module:
    """The model saved in ``directory`` by :func:`save_model` (``expected``: the class it must be)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise RnnkitError(f"{directory}: no such model directory")
    info = read_model_info(directory)
    name = info.get("model")
    cls = MODEL_REGISTRY.get(name)
    if cls is None:
        raise RnnkitError(f"{directory}: unknown model class {name!r}; known: {sorted(MODEL_REGISTRY)}")
    if expected is not None and cls is not expected:
        raise RnnkitError(f"{directory}: holds a {name}, not a {expected.__name__}")
    model = cls.from_config(info["config"])
    tensors, meta = read_safetensors(directory / WEIGHTS_FILE, info.get("weights_sha256"))
    if meta.get("model") != name:
        raise RnnkitError(f"{directory / WEIGHTS_FILE}: weights of {meta.get('model')!r}, config of {name!r}")
    load_module_tensors(model, tensors, json.loads(meta.get("aliases", "{}")), str(directory / WEIGHTS_FILE))
    model.eval()
    return model
