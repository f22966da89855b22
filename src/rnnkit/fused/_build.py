"""Build and load the C++ engine once per set of sources, cached on disk.

The sources in ``csrc/`` are compiled with :func:`torch.utils.cpp_extension.load` (ninja + the system C++
compiler) into ``$RNNKIT_CACHE/torch_extensions/<tag>`` (default ``~/.cache/rnnkit/...``). ``<tag>`` reads
``<isa>-torch<version>-py<XY>-<key>``, where ``<key>`` is a SHA-256 over everything the binary depends on:

* the bytes of every file in ``csrc/`` (so two checkouts or versions of rnnkit never share a binary built
  from other sources, and an edited source never loads the old binary),
* the compiler flags and the compiler's identity (``$CXX`` and its ``--version`` line),
* the full torch version and the Python implementation and version,
* the CPU capability torch selected for its own kernels (``AVX512``, ``AVX2`` or ``DEFAULT``; it follows
  ``ATEN_CPU_CAPABILITY``), which picks the instruction-set flags. Not ``-march=native``: a cached binary
  must run on every machine whose CPU reports the same capability.

The build is serialised by an exclusive file lock next to the folder (``<tag>.lock``): when several
processes start at once, one compiles and the others wait, then load the finished library. A folder is
marked complete (``rnnkit-build.json``, written last) only after a successful build and load; a folder
without that mark (an interrupted build) is emptied and rebuilt before anything in it is loaded.

Where no compiler or ninja is found, or the build fails, :func:`load` logs ONE warning line and returns
``(False, reason)``; the ``fused`` backend then reports itself unavailable with that reason and ``auto``
dispatch uses the other backends. ``RNNKIT_NO_FUSED=1`` turns the engine off.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

import torch

__all__ = ["load", "cache_dir", "build_key", "SOURCES"]

_LOG = logging.getLogger("rnnkit.fused")
_CSRC = Path(__file__).resolve().parent / "csrc"
SOURCES = ("common.cpp", "linear.cpp", "lstm.cpp", "gru.cpp", "rnn.cpp", "ops.cpp", "fastgen.cpp")
_BASE_CFLAGS = ("-O3", "-fopenmp", "-fno-math-errno", "-fno-trapping-math")
_LDFLAGS = ("-fopenmp",)
_DONE = "rnnkit-build.json"  # written last: its presence means the folder holds a complete build
_LOCK_WAIT_S = 1800.0  # how long a process waits for another one's build before giving up
_LOCK = threading.Lock()
_STATE: tuple[bool, str] | None = None


def _isa() -> tuple[str, list[str]]:
    """The instruction-set tag and flags, from the capability torch itself selected at run time.

    AVX-512 (f, vl, dq, bw: what torch requires for its own AVX512 kernels) doubles the GEMM kernel's
    throughput where the cores execute it natively; AVX2+FMA otherwise; no extra flags for ``DEFAULT``
    (what ARM and older x86 machines, or ``ATEN_CPU_CAPABILITY=default``, get).
    """
    cap = torch.backends.cpu.get_cpu_capability()
    if cap == "AVX512":
        return "avx512", ["-mavx512f", "-mavx512vl", "-mavx512dq", "-mavx512bw", "-mavx2", "-mfma", "-mf16c"]
    if cap == "AVX2":
        return "avx2", ["-mavx2", "-mfma", "-mf16c"]
    return "generic", []


@functools.lru_cache(maxsize=8)
def _compiler_id(compiler: str) -> str:
    """``$CXX`` and the first line of its ``--version``; the name alone where it cannot be run."""
    try:
        out = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return compiler
    return f"{compiler}: {next(iter(out.splitlines()), '')}"


def _key_inputs(csrc: Path) -> dict:
    tag, isa_flags = _isa()
    return {
        "sources": {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(csrc.iterdir()) if p.is_file()
        },
        "cflags": [*_BASE_CFLAGS, *isa_flags],
        "ldflags": list(_LDFLAGS),
        "compiler": _compiler_id(os.environ.get("CXX", "c++")),
        "torch": torch.__version__,
        # the headers compiled against: two installs of one version still get separate folders, so their
        # differing include paths never make ninja rebuild one folder back and forth
        "torch_dir": str(Path(torch.__file__).resolve().parent),
        "python_include": sysconfig.get_paths()["include"],
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": f"{sys.platform}-{platform.machine()}",
        "cpu_capability": tag,
    }


def build_key(csrc: Path | None = None) -> str:
    """The hex SHA-256 naming a build of the sources in ``csrc`` (default: the package's own ``csrc/``)."""
    blob = json.dumps(_key_inputs(Path(csrc) if csrc else _CSRC), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def cache_dir(csrc: Path | None = None) -> Path:
    """Where the compiled engine lives: ``$RNNKIT_CACHE/torch_extensions/<isa>-torch<v>-py<XY>-<key>``."""
    return _folder(build_key(csrc))


def _folder(key: str) -> Path:
    root = Path(os.environ.get("RNNKIT_CACHE", "").strip() or Path.home() / ".cache" / "rnnkit")
    py = f"py{sys.version_info[0]}{sys.version_info[1]}"
    return root / "torch_extensions" / f"{_isa()[0]}-torch{torch.__version__.split('+')[0]}-{py}-{key[:16]}"


def _find_ninja() -> str | None:
    found = shutil.which("ninja")
    if found:
        return found
    # `pip install ninja` puts it next to the interpreter, which need not be on PATH
    for d in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        cand = d / "ninja"
        if cand.exists():
            os.environ["PATH"] = f"{d}{os.pathsep}{os.environ.get('PATH', '')}"
            return str(cand)
    return None


class _FileLock:
    """An exclusive ``flock`` on ``path``, held by this process only; released by the kernel if it dies."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> _FileLock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return self
        except BlockingIOError:
            pass
        _LOG.info("rnnkit: another process is building the fused engine; waiting for it (%s)", self.path)
        deadline = time.monotonic() + _LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise TimeoutError(
                        f"waited {_LOCK_WAIT_S:.0f} s for another process's build (lock {self.path})"
                    ) from None
                time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        assert self.fd is not None
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _compile_and_load(build_dir: Path, tag: str, inputs: dict, key: str) -> None:
    """Under the lock: empty an incomplete folder, build (ninja skips what is up to date), load, mark done."""
    from torch.utils import cpp_extension

    done = build_dir / _DONE
    src = build_dir / "src"
    if build_dir.exists() and not done.exists():
        shutil.rmtree(build_dir)  # an interrupted build: nothing in it is trusted
    if not done.exists():
        # compile a copy held in the folder, so every checkout with these sources writes the same
        # build.ninja (the same paths) and finds the build up to date instead of redoing it
        shutil.copytree(_CSRC, src, ignore=shutil.ignore_patterns("__pycache__"))
        if build_key(src) != key:
            shutil.rmtree(build_dir)
            raise RuntimeError(f"the engine's sources in {_CSRC} changed while being copied; try again")
    # torch's own lock file, left behind if a builder was killed; the flock above makes it redundant
    (build_dir / "lock").unlink(missing_ok=True)
    cpp_extension.load(
        name=f"rnnkit_fused_{tag}",
        sources=[str(src / s) for s in SOURCES],
        extra_include_paths=[str(src)],
        extra_cflags=list(inputs["cflags"]),  # copies: torch appends its own flags to these lists
        extra_ldflags=list(inputs["ldflags"]),
        build_directory=str(build_dir),
        is_python_module=False,
        verbose=False,
    )
    if not done.exists():
        from rnnkit.files import atomic_write_text

        atomic_write_text(done, json.dumps({"key": key, **inputs}, indent=1, sort_keys=True))


def _build() -> tuple[bool, str]:
    if os.environ.get("RNNKIT_NO_FUSED", "") not in ("", "0"):
        return False, "the fused engine is turned off (RNNKIT_NO_FUSED is set)"
    if sys.platform == "win32":
        return False, "the fused engine is built for Linux and macOS only"
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        return False, f"no C++ compiler found (looked for {compiler!r}; set CXX)"
    if _find_ninja() is None:
        return False, "ninja is not installed (pip install ninja)"
    missing = [s for s in SOURCES if not (_CSRC / s).exists()]
    if missing:
        return False, f"the engine's sources are missing from the installed package: {missing}"
    tag = _isa()[0]
    key = build_key()
    build_dir = _folder(key)
    try:
        build_dir.parent.mkdir(parents=True, exist_ok=True)
        with _FileLock(build_dir.parent / f"{build_dir.name}.lock"):
            _compile_and_load(build_dir, tag, _key_inputs(_CSRC), key)
    except Exception as e:  # any build or load failure turns the engine off, with its reason
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        return False, f"building the fused engine failed: {first[:300]} (build directory {build_dir})"
    info = torch.ops.rnnkit_fused.info()
    return True, f"compiled engine ({tag} build; float32 GEMM: packed kernel, float64: {info})"


def load() -> tuple[bool, str]:
    """``(available, reason)``; builds or loads the engine on the first call of the process."""
    global _STATE
    if _STATE is not None:
        return _STATE
    with _LOCK:
        if _STATE is None:
            ok, reason = _build()
            if not ok:
                _LOG.warning("rnnkit: fused engine unavailable, using the other backends: %s", reason)
            _STATE = (ok, reason)
    return _STATE
