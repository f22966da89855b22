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

Interruptions and resume. While a run is built, ``runs/.<name>.lock`` is locked (released by the system even
when the process is killed), so a second ``rnnkit train`` of the same name stops at once with a clear error.
The temporary folder ``runs/.<name>.XXXXXXXX.tmp`` holds ``build.json`` (process id, host, start time,
application and config) next to the trainer's ``checkpoints/``. A run stopped by Ctrl-C or SIGTERM keeps that
folder when it has a checkpoint or finished ensemble networks; so does one killed outright. A later ``RunBuilder`` of the same name then
refuses to start with a message saying how to go on: ``resume=True`` (``rnnkit train ... --resume``) adopts
the folder and the trainer continues from its latest checkpoint; ``discard_interrupted=True``
(``--discard-interrupted``) deletes it. :func:`interrupted_options` sets both for the applications, which
create their ``RunBuilder`` themselves.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import re
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no name lock
    fcntl = None  # type: ignore[assignment]

from rnnkit import files
from rnnkit._errors import RnnkitError

__all__ = [
    "RUN_FORMAT",
    "RunBuilder",
    "find_interrupted",
    "interrupted_options",
    "open_run",
    "read_json",
    "write_json_atomic",
]

RUN_FORMAT = "rnnkit.run"
RUN_VERSION = 1
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
BUILD_FILE = "build.json"  # in the temporary folder only: who builds it, and with which settings
BUILD_FORMAT = "rnnkit.run-build"


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


@dataclass
class _Options:
    resume: bool = False
    discard: bool = False
    app: str | None = None
    config: dict[str, Any] | None = None
    say: Callable[[str], None] | None = None
    resumed: set[Path] = field(default_factory=set)  # temp folders adopted for a resume


_options = _Options()


@contextlib.contextmanager
def interrupted_options(
    resume: bool = False,
    discard: bool = False,
    app: str | None = None,
    config: dict[str, Any] | None = None,
    say: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Within the block, a :class:`RunBuilder` resumes (or discards) an interrupted run of its name.

    ``app`` and ``config`` are recorded in the temporary folder (a resume starts from that config); ``say``
    prints the resume message.
    """
    global _options
    previous = _options
    _options = _Options(resume, discard, app, config, say)
    try:
        yield
    finally:
        _options = previous


FINISHED = "finished"
"""Folder of an ensemble network's folder (:func:`member_dir`) that holds the network's weights and summary once
it has finished, until the run is written: what ``--resume`` reads back (:func:`rnnkit.apps._common.fit_member`)."""


def member_dir(run: Path, k: int) -> Path:
    """Folder of network ``k`` of an ensemble run: the run itself for the first, ``members/k`` for the others."""
    return run if k == 0 else run / "members" / str(k)


def member_done(folder: Path) -> bool:
    """Whether the ensemble network of ``folder`` (a :func:`member_dir`) was kept finished (``FINISHED``)."""
    return (Path(folder) / FINISHED / "member.json").is_file()


def resuming(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a run folder adopted by ``--resume``, or a folder in one (an ensemble member's)."""
    path = Path(path)
    return any(p in _options.resumed for p in (path, *path.parents))


@dataclass
class InterruptedRun:
    """A temporary run folder left by a process that is gone (killed, stopped by a signal, or crashed)."""

    path: Path
    info: dict[str, Any]  # build.json: pid, host, started, app, config

    @property
    def checkpoint(self) -> str | None:
        """Name of the latest checkpoint, or None when the run stopped before its first one."""
        try:
            ptr = files.read_json(self.path / "checkpoints" / "latest.json", "checkpoint pointer")
        except RnnkitError:
            return None
        name = ptr.get("checkpoint") if isinstance(ptr, dict) else None
        return name if isinstance(name, str) and (self.path / "checkpoints" / name).is_dir() else None

    @property
    def resumable(self) -> bool:
        """Whether ``--resume`` has something to continue from: a checkpoint, or finished or checkpointed
        networks of an ensemble (``finished/`` and ``members/K/checkpoints``)."""
        if self.checkpoint is not None or member_done(self.path):
            return True
        members = self.path / "members"
        return members.is_dir() and any(
            member_done(m) or (m / "checkpoints" / "latest.json").is_file() for m in members.iterdir()
        )

    @property
    def step(self) -> int | None:
        m = re.search(r"-step-(\d+)$", self.checkpoint or "")
        return int(m.group(1)) if m else None

    def describe(self) -> str:
        who = f"process {self.info.get('pid', '?')} on {self.info.get('host', '?')}"
        where = f"checkpointed at step {self.step}" if self.checkpoint else "with finished networks"
        return f"{self.path.name}, {self.info.get('app') or 'a'} run by {who}, {where}"


def find_interrupted(
    runs_dir: str | os.PathLike, name: str | None = None, *, locked: bool = False
) -> list[InterruptedRun]:
    """The interrupted runs under ``runs_dir`` (of run ``name`` only, when given), oldest first.

    Only folders that carry this version's ``build.json`` count (older ones are left alone). A folder whose
    process still runs is not interrupted; ``locked=True`` says the caller holds the name's lock, which
    already proves that no process builds it.
    """
    pattern = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")
    found = []
    try:
        entries = list(Path(runs_dir).iterdir())
    except OSError:
        return []
    for p in entries:
        m = pattern.match(p.name)
        if not m or (name is not None and m.group("name") != name) or not p.is_dir() or p.is_symlink():
            continue
        try:
            info = files.read_json(p / BUILD_FILE, "run build")
        except RnnkitError:
            continue
        if (
            isinstance(info, dict)
            and info.get("format") == BUILD_FORMAT
            and info.get("name") == m.group("name")
        ):
            if locked or not _alive(info):
                found.append(InterruptedRun(p, info))
    return sorted(found, key=lambda r: str(r.info.get("started", "")))


def _alive(info: dict[str, Any]) -> bool:
    """Whether a process still builds the folder of ``build.json``: its name is locked (and, on this host,
    its process exists; a locked name alone could be a new training that has just started)."""
    pid = info.get("pid")
    same_host = info.get("host") == socket.gethostname()
    # kill(pid, 0) only probes on POSIX (on Windows it would end the process)
    if os.name == "posix" and same_host and isinstance(pid, int) and pid != os.getpid():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:  # exists, owned by someone else
            pass
    return _name_locked(Path(info.get("runs_dir", ".")), str(info.get("name")))


def _name_locked(runs_dir: Path, name: str) -> bool:
    if fcntl is None:  # no locks (Windows): a folder whose process cannot be probed counts as interrupted
        return False
    try:
        fd = os.open(runs_dir / f".{name}.lock", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


class _NameLock:
    """An exclusive lock on ``runs_dir/.<name>.lock``: one process builds a run of a given name at a time."""

    def __init__(self, final: Path):
        self.path = final.parent / f".{final.name}.lock"
        self.fd: int | None = None
        if fcntl is None:
            return
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                try:
                    owner = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
                finally:
                    os.close(fd)
                raise RnnkitError(
                    f"run {final.name!r} is being trained right now by {owner}; wait for it to finish or "
                    "choose another --name"
                ) from None
            except OSError:  # a file system without locks: go on unlocked
                os.close(fd)
                return
            # the previous holder may have removed the file between our open and our lock: lock the new one
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self.fd)
        self.fd = None


class RunBuilder:
    """Builds ``runs_dir/name`` atomically (see the module docstring).

    Args:
        runs_dir: parent folder (created if missing).
        name: the run's folder name.
        overwrite: replace an existing run (only when the new one is complete); otherwise an existing
            folder is an error, raised by the constructor before any work is done.
        resume: continue the interrupted run of this name (default: as :func:`interrupted_options` says).
        discard_interrupted: delete interrupted runs of this name and start afresh (default: likewise).

    An interrupted run of the same name that is neither resumed nor discarded is an error; so is a name that
    another process is building right now.
    """

    def __init__(
        self,
        runs_dir: str | os.PathLike,
        name: str,
        overwrite: bool = False,
        *,
        resume: bool | None = None,
        discard_interrupted: bool | None = None,
    ):
        self.final = Path(runs_dir) / check_run_name(name)
        self.overwrite = overwrite
        self.files: list[str] = []
        self.committed = False
        self.resumed_from: InterruptedRun | None = None
        opts = _options
        resume = opts.resume if resume is None else resume
        discard = opts.discard if discard_interrupted is None else discard_interrupted
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
            self.final.parent.mkdir(parents=True, exist_ok=True)
            self._lock = _NameLock(self.final)
        except OSError as exc:
            raise RnnkitError(
                f"cannot create a run under {str(self.final.parent)!r}: {exc.strerror or exc}"
            ) from None
        try:
            self.path = self._start(resume, discard, opts)
        except BaseException:
            self._lock.release()
            raise

    def _start(self, resume: bool, discard: bool, opts: _Options) -> Path:
        name = self.final.name
        left = find_interrupted(self.final.parent, name, locked=self._lock.fd is not None)
        if resume:
            usable = [r for r in left if r.resumable]
            if not usable:
                raise RnnkitError(
                    f"--resume: no interrupted run {name!r} with a checkpoint under {str(self.final.parent)!r}"
                )
            run = usable[-1]
            if opts.app and run.info.get("app") not in (None, opts.app):
                raise RnnkitError(
                    f"--resume: the interrupted run {name!r} is a {run.info.get('app')} run, not {opts.app}"
                )
            self.resumed_from = run
            _options.resumed.add(run.path)
            self._write_build(run.path, opts, run.info)
            if opts.say:
                where = f"its checkpoint at step {run.step}" if run.checkpoint else "its finished networks"
                opts.say(f"resuming the interrupted run {name!r} from {where}")
            return run.path
        resumable = [r for r in left if r.resumable]
        if resumable and not discard:
            raise RnnkitError(
                f"an interrupted run {name!r} exists ({resumable[-1].describe()}): continue it with --resume, "
                "or delete it and start afresh with --discard-interrupted"
            )
        for r in left:  # discarded, or stopped before its first checkpoint: nothing to resume
            shutil.rmtree(r.path, ignore_errors=True)
        try:
            path = files.temp_dir_beside(self.final)
        except OSError as exc:
            raise RnnkitError(
                f"cannot create a run under {str(self.final.parent)!r}: {exc.strerror or exc}"
            ) from None
        try:
            self._write_build(path, opts, {})
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return path

    def _write_build(self, path: Path, opts: _Options, previous: dict[str, Any]) -> None:
        info = {
            "format": BUILD_FORMAT,
            "name": self.final.name,
            "runs_dir": str(self.final.parent.resolve()),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": previous.get("started") or datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "app": opts.app if opts.app else previous.get("app"),
            "config": opts.config if opts.config is not None else previous.get("config"),
            "resumes": int(previous.get("resumes", -1)) + 1,
        }
        write_json_atomic(path / BUILD_FILE, info)

    def __enter__(self) -> RunBuilder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        elif issubclass(exc_type, KeyboardInterrupt) and self.resumable:
            self.keep(exc)
        else:
            self.abort()

    @property
    def resumable(self) -> bool:
        """Whether the folder being built holds what ``--resume`` can continue from: a checkpoint, or finished or
        checkpointed networks of an ensemble (:attr:`InterruptedRun.resumable`; an interruption after every
        network finished, e.g. in a forecasting run's baselines, keeps them too)."""
        return not self.committed and InterruptedRun(self.path, {}).resumable

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

    def keep(self, exc: BaseException | None = None) -> None:
        """Leave the temporary folder for a later resume (after an interruption); tell ``exc`` how to go on."""
        self._release()
        if exc is not None:
            app = _options.app or "APP"
            exc.hint = (  # type: ignore[attr-defined]
                f"the unfinished run is kept in {str(self.path)!r}; continue it with "
                f"'rnnkit train {app} --name {self.final.name} --runs-dir {str(self.final.parent)!r} --resume' "
                "or delete it with --discard-interrupted"
            )

    def abort(self) -> None:
        """Remove the temporary folder (nothing under the final name is touched)."""
        shutil.rmtree(self.path, ignore_errors=True)
        self._release()

    def _release(self) -> None:
        _options.resumed.discard(self.path)
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.release()

    def commit(self, info: dict[str, Any] | None = None) -> Path:
        """Write ``run.json`` and rename the finished folder into place; returns the final path."""
        if self.committed:
            return self.final
        from rnnkit import __version__

        manifest = {"format": RUN_FORMAT, "version": RUN_VERSION, "rnnkit": __version__, **(info or {})}
        manifest["files"] = sorted(f for f in self.files if (self.path / f).exists())
        try:
            write_json_atomic(self.path / "run.json", manifest)
            (self.path / BUILD_FILE).unlink(missing_ok=True)
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
                f"cannot write the finished run {str(self.final)!r}: {exc.strerror or exc}"
            ) from None
        except BaseException:
            self.abort()
            raise
        self.committed = True
        self._release()
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
