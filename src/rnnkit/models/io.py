"""Saving and loading models as safetensors + JSON — never pickle — with atomic writes.

A saved model is a directory::

    model.safetensors   the weights (tied weights stored once; metadata names the model class)
    model.json          {"format": "rnnkit.model", "version": 1, "model": <class>, "config": {...},
                         "weights_sha256": <digest of model.safetensors>}

Each file is written to a temporary name in the same directory and moved into place with ``os.replace``,
so a crash never leaves a half-written file under the final name. Loading checks the digest, the class, the
tensor names and shapes before touching any weight: a damaged file or another model's weights is a clear
:class:`~rnnkit.RnnkitError` and the target model is left as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit._errors import RnnkitError

__all__ = [
    "save_model",
    "load_model",
    "load_weights",
    "model_tensors",
    "atomic_write_bytes",
    "atomic_write_json",
    "write_safetensors",
    "read_safetensors",
    "sha256_file",
]

MODEL_FORMAT = "rnnkit.model"
MODEL_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "model.json"


# -- atomic files ----------------------------------------------------------------------------------------------
def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_safetensors(path: str | os.PathLike, tensors: dict[str, Tensor], metadata: dict[str, str]) -> str:
    """Atomically write ``tensors`` (contiguous CPU copies) with string ``metadata``; returns the sha256."""
    from safetensors.torch import save

    data = save({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, metadata=metadata)
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def read_safetensors(
    path: str | os.PathLike, sha256: str | None = None
) -> tuple[dict[str, Tensor], dict[str, str]]:
    """``(tensors, metadata)`` of a safetensors file; a missing, truncated or altered file is an RnnkitError."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise RnnkitError(f"{path}: no such file")
    if sha256 is not None and sha256_file(path) != sha256:
        raise RnnkitError(f"{path}: corrupted (its sha256 does not match the one recorded when it was saved)")
    try:
        tensors = {}
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            for k in f.keys():
                tensors[k] = f.get_tensor(k)
    except RnnkitError:
        raise
    except Exception as e:  # safetensors raises its own error types for bad headers and short files
        raise RnnkitError(f"{path}: not a readable safetensors file (truncated or corrupted?): {e}") from None
    return tensors, metadata


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise RnnkitError(f"{path}: no such file")
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RnnkitError(f"{path}: not valid JSON (truncated or corrupted?): {e}") from None


# -- weights ---------------------------------------------------------------------------------------------------
def model_tensors(model: nn.Module) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The state dict with shared (tied) tensors stored once: ``(tensors, aliases name -> stored name)``."""
    tensors: dict[str, Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[int, int, tuple[int, ...]], str] = {}
    for name, t in model.state_dict(keep_vars=False).items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if key in seen and t.numel():
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = t
    return tensors, aliases


def load_weights(
    model: nn.Module, tensors: dict[str, Tensor], aliases: dict[str, str] | None = None, where: str = ""
) -> None:
    """Copy ``tensors`` into ``model`` after checking every name and shape first (all or nothing)."""
    expected, exp_aliases = model_tensors(model)
    where = f"{where}: " if where else ""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        raise RnnkitError(f"{where}weights do not fit this model ({'; '.join(parts)})")
    if aliases is not None and dict(aliases) != exp_aliases:
        raise RnnkitError(f"{where}weights do not fit this model (tied weights differ)")
    for name, t in expected.items():
        if tuple(tensors[name].shape) != tuple(t.shape):
            raise RnnkitError(
                f"{where}weights do not fit this model: {name} has shape {tuple(tensors[name].shape)}, "
                f"the model expects {tuple(t.shape)}"
            )
        if tensors[name].is_floating_point() != t.is_floating_point():
            raise RnnkitError(f"{where}weights do not fit this model: {name} has dtype {tensors[name].dtype}")
    with torch.no_grad():
        for name, t in expected.items():
            t.copy_(tensors[name])


# -- models ----------------------------------------------------------------------------------------------------
def save_model(model: nn.Module, directory: str | os.PathLike) -> Path:
    """Write ``model.safetensors`` and ``model.json`` into ``directory`` (created if needed); returns it."""
    from rnnkit.models._base import Model

    if not isinstance(model, Model):
        raise RnnkitError(f"save_model expects an rnnkit model, got {type(model).__name__}")
    directory = Path(directory)
    cfg = model.to_config()
    tensors, aliases = model_tensors(model)
    meta = {"format": MODEL_FORMAT, "model": type(model).__name__, "aliases": json.dumps(aliases)}
    digest = write_safetensors(directory / WEIGHTS_FILE, tensors, meta)
    info = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "model": type(model).__name__,
        "config": cfg,
        "weights_sha256": digest,
    }
    atomic_write_json(directory / CONFIG_FILE, info)
    return directory


def read_model_info(directory: str | os.PathLike) -> dict[str, Any]:
    """The parsed and checked ``model.json`` of a saved model directory."""
    path = Path(directory) / CONFIG_FILE
    info = _read_json(path)
    if not isinstance(info, dict) or info.get("format") != MODEL_FORMAT:
        raise RnnkitError(f"{path}: not an rnnkit model description (format {MODEL_FORMAT!r} expected)")
    if info.get("version") != MODEL_VERSION:
        raise RnnkitError(
            f"{path}: unsupported version {info.get('version')!r} (this rnnkit reads {MODEL_VERSION})"
        )
    return info


def load_model(directory: str | os.PathLike, expected: type | None = None) -> nn.Module:
    """The model saved in ``directory`` by :func:`save_model` (``expected``: the class it must be)."""
    from rnnkit.models._base import MODEL_REGISTRY

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
    load_weights(model, tensors, json.loads(meta.get("aliases", "{}")), str(directory / WEIGHTS_FILE))
    model.eval()
    return model
