"""Every file rnnkit writes or reads back: atomic writes, safetensors with a recorded sha256, JSON.

One module so that models, runs, checkpoints, plots, the data cache and the benchmarks follow the same rules:

* **Nothing half-written under a final name.** A file is written to a hidden temporary name in the same
  folder, flushed and ``fsync``-ed, then moved into place with one ``os.replace`` (atomic on POSIX and
  Windows within a file system). A failure at any point (an exception, a full disk) removes the temporary
  file and leaves the previous file, if any, untouched. Folders are built the same way: in a hidden temporary
  folder beside the final one (:func:`temp_dir_beside`), renamed into place at the end (:func:`replace_dir`).
* **Tensors only as safetensors, settings only as JSON.** Never pickle. :func:`write_safetensors` returns the
  file's sha256, which the caller records (in a JSON file) and hands back to :func:`read_safetensors`, so a
  truncated or altered file is refused before a single weight is used.
* **Bad files are one clear line.** A missing, unreadable, non-UTF-8 or non-JSON file is an
  :class:`~rnnkit.RnnkitError` naming the file, never a traceback.

Example::

    digest = write_safetensors(d / "model.safetensors", tensors, {"format": "mine"})
    write_json(d / "model.json", {"weights_sha256": digest})
    tensors, meta = read_safetensors(d / "model.safetensors", read_json(d / "model.json")["weights_sha256"])
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit._errors import RnnkitError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "write_json",
    "read_json",
    "write_figure",
    "sha256_file",
    "write_safetensors",
    "read_safetensors",
    "module_tensors",
    "load_module_tensors",
    "temp_dir_beside",
    "replace_dir",
]

PathLike = str | os.PathLike


# -- atomic files ----------------------------------------------------------------------------------------------
def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)  # may write less than asked (signals, pipes): loop until done
        view = view[n:]


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable where the platform allows opening a folder (POSIX)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that ``path`` holds either its old content or all of ``data``.

    The parent folder is created if needed. The file gets the usual permissions (``0o666`` less the umask).
    An ``OSError`` (a full disk, no permission) becomes an :class:`~rnnkit.RnnkitError` naming ``path``;
    the temporary file is removed whatever goes wrong. Returns ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never write into a file someone else holds; mode 0o666 lets the umask decide (unlike mkstemp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise RnnkitError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise RnnkitError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: PathLike, text: str) -> Path:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: PathLike, data: Any) -> Path:
    """Atomically write ``data`` as UTF-8 JSON (indented, non-ASCII kept, one final newline).

    ``data`` is written as it is: Python's ``NaN``/``Infinity`` literals are kept so a checkpoint reads back
    what it stored; files meant for other programs convert them first (as run directories do).
    """
    return atomic_write_text(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def read_json(path: PathLike, what: str = "") -> Any:
    """The parsed JSON file ``path``; a missing, unreadable or invalid file is a one-line RnnkitError.

    ``what`` (e.g. ``"run co2"``) starts the message, to say which object the file belongs to.
    """
    path = Path(path)
    where = f"{what}: " if what else ""
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "missing"
        raise RnnkitError(f"{where}expected the JSON file {path}, but it is {kind}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RnnkitError(f"{where}{path} is damaged (not valid JSON: it is not UTF-8 text)") from None
    except OSError as exc:
        raise RnnkitError(f"{where}cannot read {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RnnkitError(
            f"{where}{path} is damaged (not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}; "
            "truncated or corrupted?)"
        ) from None


def write_figure(fig: Any, path: PathLike, dpi: int = 110) -> Path:
    """Atomically save a matplotlib figure as PNG (rendered in memory first, then written in one go)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())


# -- checksums and safetensors ---------------------------------------------------------------------------------
def sha256_file(path: PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_safetensors(path: PathLike, tensors: dict[str, Tensor], metadata: dict[str, str]) -> str:
    """Atomically write ``tensors`` (as contiguous CPU copies) with string ``metadata``; returns the sha256.

    Record the returned digest next to the file and pass it to :func:`read_safetensors`.
    """
    from safetensors.torch import save

    data = save({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, metadata=metadata)
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def read_safetensors(path: PathLike, sha256: str | None = None) -> tuple[dict[str, Tensor], dict[str, str]]:
    """``(tensors, metadata)`` of a safetensors file, on the CPU.

    With ``sha256`` the file's digest is checked first. A missing, truncated or altered file is an
    :class:`~rnnkit.RnnkitError` naming it.
    """
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
    except Exception as e:  # safetensors raises its own error types for bad headers and short files
        raise RnnkitError(f"{path}: not a readable safetensors file (truncated or corrupted?): {e}") from None
    return tensors, metadata


def module_tensors(module: nn.Module) -> tuple[dict[str, Tensor], dict[str, str]]:
    """A module's state dict with shared (tied) tensors stored once: ``(tensors, aliases name -> stored name)``.

    safetensors refuses two names for one storage; :func:`load_module_tensors` takes both parts back.
    """
    tensors: dict[str, Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[int, int, tuple[int, ...]], str] = {}
    for name, t in module.state_dict(keep_vars=False).items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if key in seen and t.numel():
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = t
    return tensors, aliases


def load_module_tensors(
    module: nn.Module, tensors: dict[str, Tensor], aliases: dict[str, str] | None = None, where: str = ""
) -> None:
    """Copy ``tensors`` into ``module`` after checking every name, shape and kind first (all or nothing)."""
    expected, exp_aliases = module_tensors(module)
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


# -- atomic folders --------------------------------------------------------------------------------------------
def temp_dir_beside(final: PathLike) -> Path:
    """A new hidden, empty folder next to ``final`` (same file system, so :func:`replace_dir` is one rename)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))


def replace_dir(tmp: PathLike, final: PathLike, overwrite: bool = False) -> Path:
    """Move the finished folder ``tmp`` to ``final`` in one rename.

    An existing ``final`` is a ``FileExistsError`` unless ``overwrite``; then it is moved aside first, put
    back if the rename fails, and deleted only once the new folder is in place. ``tmp`` is left for the
    caller to remove when this raises.
    """
    tmp, final = Path(tmp), Path(final)
    if not final.exists():
        os.replace(tmp, final)
        return final
    if not overwrite:
        raise FileExistsError(17, "already exists", str(final))
    aside = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
    try:
        os.replace(final, aside / "previous")
        try:
            os.replace(tmp, final)
        except BaseException:
            if not final.exists():
                os.replace(aside / "previous", final)  # put the previous folder back
            raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)
    return final
