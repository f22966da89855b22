"""Build and load the C++ engine once per machine, cached on disk.

The sources in ``csrc/`` are compiled with :func:`torch.utils.cpp_extension.load` (ninja + the system C++
compiler) into ``$RNNKIT_CACHE/torch_extensions/<tag>`` (default ``~/.cache/rnnkit/...``), where ``<tag>``
names the torch and Python versions and the instruction set the code was compiled for, so a cache shared
between machines never hands one a binary it cannot run. Later processes only load the library.

Where no compiler or ninja is found, or the build fails, :func:`load` logs ONE warning line and returns
``(False, reason)``; the ``fused`` backend then reports itself unavailable with that reason and ``auto``
dispatch uses the other backends. ``RNNKIT_NO_FUSED=1`` turns the engine off.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import sysconfig
import threading
from pathlib import Path

import torch

__all__ = ["load", "cache_dir", "SOURCES"]

_LOG = logging.getLogger("rnnkit.fused")
_CSRC = Path(__file__).resolve().parent / "csrc"
SOURCES = ("common.cpp", "linear.cpp", "lstm.cpp", "gru.cpp", "rnn.cpp", "ops.cpp")
_LOCK = threading.Lock()
_STATE: tuple[bool, str] | None = None


def _isa() -> tuple[str, list[str]]:
    """The instruction-set tag and flags, from the capability torch itself detected at run time.

    AVX-512 (f, vl, dq, bw: what torch requires for its own AVX512 kernels) doubles the GEMM kernel's
    throughput where the cores execute it natively; AVX2+FMA otherwise. Not ``-march=native``: a cached
    binary must run on every machine whose CPU reports the same tag.
    """
    cap = torch.backends.cpu.get_cpu_capability()
    if cap == "AVX512":
        return "avx512", ["-mavx512f", "-mavx512vl", "-mavx512dq", "-mavx512bw", "-mavx2", "-mfma", "-mf16c"]
    if cap == "AVX2":
        return "avx2", ["-mavx2", "-mfma", "-mf16c"]
    return "generic", []


def cache_dir() -> Path:
    """Where the compiled engine lives: ``$RNNKIT_CACHE/torch_extensions/<tag>``."""
    root = Path(os.environ.get("RNNKIT_CACHE") or Path.home() / ".cache" / "rnnkit")
    tag = f"torch{torch.__version__.split('+')[0]}-py{sys.version_info[0]}{sys.version_info[1]}-{_isa()[0]}"
    return root / "torch_extensions" / tag


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
    from torch.utils import cpp_extension

    tag, isa_flags = _isa()
    build_dir = cache_dir()
    build_dir.mkdir(parents=True, exist_ok=True)
    try:
        cpp_extension.load(
            name=f"rnnkit_fused_{tag}",
            sources=[str(_CSRC / s) for s in SOURCES],
            extra_include_paths=[str(_CSRC)],
            extra_cflags=["-O3", "-fopenmp", "-fno-math-errno", "-fno-trapping-math", *isa_flags],
            extra_ldflags=["-fopenmp"],
            build_directory=str(build_dir),
            is_python_module=False,
            verbose=False,
        )
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
