"""Training checkpoints: safetensors + JSON only, written atomically, verified before anything is restored.

A checkpoint is a directory ``<root>/ckpt-000007-step-00001234/`` (the 7th checkpoint, at step 1234)::

    model.safetensors, model.json      the model, as :func:`rnnkit.models.save_model` writes it
    trainer.safetensors                optimiser state tensors, RNG states, other state tensors
    trainer.json                       everything else: trainer config and counters, history, optimiser
                                       param groups, scheduler state, and the sha256 of the three files above

It is assembled in a hidden temporary directory and renamed into place in one ``os.replace``; then the
pointer file ``<root>/latest.json`` (and ``best.json``) is replaced atomically. An interrupted save therefore
leaves the previous checkpoint and pointers intact. Loading checks the digests, the model class and config
first, so a truncated or corrupted file, or another model's checkpoint, is a clear
:class:`~rnnkit.RnnkitError` and the model, optimiser and scheduler are left as they were.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from rnnkit._errors import RnnkitError
from rnnkit.files import (
    read_json,
    read_safetensors,
    replace_dir,
    sha256_file,
    temp_dir_beside,
    write_json,
    write_safetensors,
)
from rnnkit.train.state import flatten, unflatten

__all__ = [
    "write_checkpoint",
    "read_checkpoint",
    "resolve_checkpoint",
    "Checkpoint",
    "update_pointer",
    "prune",
]

CKPT_FORMAT = "rnnkit.checkpoint"
CKPT_VERSION = 1
STATE_TENSORS = "trainer.safetensors"
STATE_JSON = "trainer.json"
# the model's own files, as ``model.save(directory)`` (rnnkit.models.save_model) writes them
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "model.json"


@dataclass
class Checkpoint:
    """A verified, decoded checkpoint: the model description, its weights and the trainer state."""

    path: Path
    model_info: dict[str, Any]
    model_tensors: dict[str, Tensor]
    model_aliases: dict[str, str]
    state: dict[str, Any]


def write_checkpoint(root: str | os.PathLike, name: str, model, state: dict[str, Any]) -> Path:
    """Write checkpoint ``root/name`` atomically; ``state`` is any tree :func:`flatten` can store."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    if final.exists():
        raise RnnkitError(f"{final}: a checkpoint of that name exists already; not overwriting it")
    save = getattr(model, "save", None)
    if not callable(save) or not hasattr(model, "to_config"):
        raise RnnkitError(
            f"checkpoints need an rnnkit model (with save() and to_config()), got {type(model).__name__}"
        )
    tmp = temp_dir_beside(final)
    try:
        save(tmp)
        tensors: dict[str, Tensor] = {}
        tree = flatten(state, "state", tensors)
        digest = write_safetensors(tmp / STATE_TENSORS, tensors, {"format": CKPT_FORMAT})
        files = {
            WEIGHTS_FILE: sha256_file(tmp / WEIGHTS_FILE),
            CONFIG_FILE: sha256_file(tmp / CONFIG_FILE),
            STATE_TENSORS: digest,
        }
        write_json(
            tmp / STATE_JSON, {"format": CKPT_FORMAT, "version": CKPT_VERSION, "files": files, "state": tree}
        )
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def update_pointer(
    root: str | os.PathLike, pointer: str, target: Path, extra: dict[str, Any] | None = None
) -> None:
    """Atomically point ``root/<pointer>.json`` at checkpoint directory ``target``."""
    write_json(Path(root) / f"{pointer}.json", {"checkpoint": Path(target).name, **(extra or {})})


def resolve_checkpoint(path: str | os.PathLike, pointer: str = "latest") -> Path:
    """A checkpoint directory from itself, from a checkpoint root (via its pointer) or from a pointer file."""
    path = Path(path)
    if path.is_file() and path.suffix == ".json" and path.name != STATE_JSON:
        root, ptr = path.parent, path
    elif path.is_dir() and (path / STATE_JSON).exists():
        return path
    elif path.is_dir() and (path / f"{pointer}.json").exists():
        root, ptr = path, path / f"{pointer}.json"
    elif path.is_dir() and (path / "checkpoints" / f"{pointer}.json").exists():
        root, ptr = path / "checkpoints", path / "checkpoints" / f"{pointer}.json"
    else:
        raise RnnkitError(f"{path}: no checkpoint there (expected a checkpoint directory or {pointer}.json)")
    name = read_json(ptr, "checkpoint pointer")
    if not isinstance(name, dict) or not isinstance(name.get("checkpoint"), str):
        raise RnnkitError(f'{ptr}: not a valid checkpoint pointer (expected {{"checkpoint": <name>}})')
    name = name["checkpoint"]
    target = root / name
    if not (target / STATE_JSON).exists():
        raise RnnkitError(f"{ptr} points at {target}, which is not a checkpoint")
    return target


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read and verify a checkpoint (digests, formats) without touching any model or optimiser."""
    path = resolve_checkpoint(path)
    sj = path / STATE_JSON
    meta = read_json(sj, "checkpoint")
    if not isinstance(meta, dict) or meta.get("format") != CKPT_FORMAT:
        raise RnnkitError(f"{sj}: not an rnnkit checkpoint")
    if meta.get("version") != CKPT_VERSION:
        raise RnnkitError(f"{sj}: unsupported checkpoint version {meta.get('version')!r}")
    files = meta.get("files", {})
    for fname in (WEIGHTS_FILE, CONFIG_FILE, STATE_TENSORS):
        f = path / fname
        if not f.is_file():
            raise RnnkitError(f"{f}: missing from the checkpoint")
        if files.get(fname) != sha256_file(f):
            raise RnnkitError(
                f"{f}: corrupted or truncated (sha256 differs from the one recorded at save time)"
            )
    info = read_json(path / CONFIG_FILE, "checkpoint")
    if not isinstance(info, dict) or not isinstance(info.get("config"), dict):
        raise RnnkitError(f"{path / CONFIG_FILE}: not an rnnkit model description")
    model_tensors, model_meta = read_safetensors(path / WEIGHTS_FILE)
    state_tensors, _ = read_safetensors(path / STATE_TENSORS)
    state = unflatten(meta["state"], state_tensors)
    aliases = json.loads(model_meta.get("aliases", "{}"))
    return Checkpoint(path, info, model_tensors, aliases, state)


def discard_newer(checkpoint: Path) -> None:
    """Delete the ``ckpt-*`` siblings written after ``checkpoint`` (names sort by step): a run resumed from
    ``checkpoint`` redoes those steps, and a process killed between writing a checkpoint and moving the
    ``latest`` pointer to it leaves one behind under the name the resumed run will write."""
    for p in checkpoint.parent.glob("ckpt-*"):
        if p.is_dir() and p.name > checkpoint.name:
            shutil.rmtree(p, ignore_errors=True)


def prune(root: str | os.PathLike, keep: int, protect: set[str]) -> None:
    """Delete all but the ``keep`` newest ``ckpt-*`` checkpoints, never those named in ``protect``."""
    root = Path(root)
    ckpts = sorted(p for p in root.glob("ckpt-*") if p.is_dir() and (p / STATE_JSON).exists())
    for p in ckpts[: max(len(ckpts) - keep, 0)]:
        if p.name not in protect:
            shutil.rmtree(p, ignore_errors=True)
