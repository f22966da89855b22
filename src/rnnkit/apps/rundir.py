"""Run directories: ``runs/<name>/`` built in a hidden temporary folder next to it and renamed at the end.

A run directory holds everything needed to use a trained model again (see ``docs/applications.md``)::

    runs/<name>/
        run.json              what the run is: application, rnnkit version, file list
        config.json           the application config (config.toml: the same, for --config)
        model.safetensors     weights;  model.json: the model's architecture config
        vocab.json            the vocabulary (text applications); scaler.json (time series)
        metrics.json          held-out scores, baselines, timings, training history
        history.csv           per-epoch / per-evaluation training log
        curves.png, gradient_flow.png, <task plot>.png

:class:`RunBuilder` is the writer. Nothing appears under the final name until :meth:`RunBuilder.commit`
renames the finished folder into place, so an error or an interruption never leaves a half-written run::

    with RunBuilder("runs", "co2", overwrite=False) as run:   # refuses an existing runs/co2 at once
        run.write_json("metrics.json", metrics)
        ...
    # leaving the block normally commits; an exception removes the temporary folder

:func:`open_run` checks a finished run before a command uses it.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

from rnnkit import files
from rnnkit._errors import RnnkitError

__all__ = ["RUN_FORMAT", "RunBuilder", "open_run", "read_json", "write_json_atomic"]

RUN_FORMAT = "rnnkit.run"
RUN_VERSION = 1
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _jsonable(value: Any) -> Any:
    """NaN and infinities become None (JSON has no such numbers); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON for other programs to read (NaN and infinities as ``null``), atomically."""
    files.write_json(path, _jsonable(data))


read_json = files.read_json


def check_run_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise RnnkitError(
            f"expected a run name of letters, digits, '.', '_' or '-' (not starting with '.' or '-'), got {name!r}"
        )
    return name


class RunBuilder:
    """Builds ``runs_dir/name`` atomically (see the module docstring).

    Args:
        runs_dir: parent folder (created if missing).
        name: the run's folder name.
        overwrite: replace an existing run (only when the new one is complete); otherwise an existing
            folder is an error, raised by the constructor before any work is done.
    """

    def __init__(self, runs_dir: str | os.PathLike, name: str, overwrite: bool = False):
        self.final = Path(runs_dir) / check_run_name(name)
        self.overwrite = overwrite
        if self.final.exists() and not overwrite:
            raise RnnkitError(
                f"run directory {str(self.final)!r} already exists; pass --overwrite to replace it"
            )
        if self.final.exists() and not self.final.is_dir():
            raise RnnkitError(
                f"{str(self.final)!r} exists and is not a directory; remove it or choose another name"
            )
        if self.final.exists():
            _check_replaceable(self.final)
        try:
            self.path = files.temp_dir_beside(self.final)
        except OSError as exc:
            raise RnnkitError(
                f"cannot create a run under {str(self.final.parent)!r}: {exc.strerror or exc}"
            ) from None
        self.files: list[str] = []
        self.committed = False

    def __enter__(self) -> RunBuilder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def file(self, name: str) -> Path:
        """Path of a file inside the run being built (recorded in ``run.json``)."""
        if name not in self.files:
            self.files.append(name)
        return self.path / name

    def write_json(self, name: str, data: Any) -> Path:
        path = self.file(name)
        write_json_atomic(path, data)
        return path

    def write_text(self, name: str, text: str) -> Path:
        return files.atomic_write_text(self.file(name), text)

    def abort(self) -> None:
        """Remove the temporary folder (nothing under the final name is touched)."""
        shutil.rmtree(self.path, ignore_errors=True)

    def commit(self, info: dict[str, Any] | None = None) -> Path:
        """Write ``run.json`` and rename the finished folder into place; returns the final path."""
        if self.committed:
            return self.final
        from rnnkit import __version__

        manifest = {"format": RUN_FORMAT, "version": RUN_VERSION, "rnnkit": __version__, **(info or {})}
        manifest["files"] = sorted(f for f in self.files if (self.path / f).exists())
        write_json_atomic(self.path / "run.json", manifest)
        try:
            if self.final.exists() and self.overwrite:
                _check_replaceable(self.final)  # it may have changed while we trained
            files.replace_dir(self.path, self.final, overwrite=self.overwrite)
        except FileExistsError:  # appeared while we were training
            self.abort()
            raise RnnkitError(
                f"run directory {str(self.final)!r} appeared meanwhile; pass --overwrite"
            ) from None
        except OSError as exc:
            self.abort()
            raise RnnkitError(
                f"cannot move the finished run into {str(self.final)!r}: {exc.strerror or exc}"
            ) from None
        except BaseException:
            self.abort()
            raise
        self.committed = True
        return self.final


def _is_run(path: Path) -> bool:
    try:
        manifest = files.read_json(path / "run.json", "run")
    except RnnkitError:
        return False
    return isinstance(manifest, dict) and manifest.get("format") == RUN_FORMAT


def _check_replaceable(path: Path) -> None:
    """``--overwrite`` replaces only an rnnkit run: a folder of anything else is never deleted."""
    if path.is_symlink() or not _is_run(path):
        raise RnnkitError(
            f"{str(path)!r} is not an rnnkit run (no valid run.json), so --overwrite will not replace it; "
            "move it away or choose another --name"
        )


def open_run(path: str | os.PathLike, expect_app: str | tuple[str, ...] | None = None) -> tuple[Path, dict]:
    """Check that ``path`` is a finished run (``run.json`` and its files present); returns ``(path, manifest)``.

    ``expect_app`` restricts the application (``"textgen"``, or a tuple of names).
    """
    p = Path(path)
    if not p.exists():
        raise RnnkitError(f"expected a run directory, got {str(p)!r} which does not exist")
    if not p.is_dir():
        raise RnnkitError(f"expected a run directory, got {str(p)!r} which is a file")
    manifest = read_json(p / "run.json", f"run {p.name}")
    if not isinstance(manifest, dict) or manifest.get("format") != RUN_FORMAT:
        raise RnnkitError(f"run {p.name}: run.json is not an rnnkit run manifest")
    if manifest.get("version") != RUN_VERSION:
        raise RnnkitError(
            f"run {p.name}: expected run format version {RUN_VERSION}, got {manifest.get('version')!r}"
        )
    missing = [f for f in manifest.get("files", []) if not (p / f).is_file()]
    if missing:
        raise RnnkitError(f"run {p.name} is incomplete: {', '.join(missing)} missing")
    app = manifest.get("app")
    wanted = (expect_app,) if isinstance(expect_app, str) else expect_app
    if wanted and app not in wanted:
        raise RnnkitError(f"run {p.name} is a {app!r} run; this command needs a {' or '.join(wanted)} run")
    return p, manifest
