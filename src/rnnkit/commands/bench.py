"""``rnnkit bench``: time rnnkit's backends against torch's kernels on this machine.

The benchmark is not part of the library: it is ``benchmarks/fused_engine.py`` of the source checkout, found
next to this package (``src/rnnkit`` -> ``benchmarks/``) and loaded when the command line is built, so that
its flags (the fields of its ``BenchOptions``) show in ``rnnkit bench --help``. An installed rnnkit without
that folder answers with one line saying so.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from rnnkit._errors import RnnkitError

NAME = "bench"
HELP = "benchmark the fused engine, the reference loop and torch.nn kernels; write JSON and markdown"

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "fused_engine.py"
_MODULE = "rnnkit_benchmarks_fused_engine"


def load_benchmark() -> ModuleType | None:
    """The module ``benchmarks/fused_engine.py`` of this checkout, or ``None`` when it is not there."""
    if _MODULE in sys.modules:
        return sys.modules[_MODULE]
    if not SCRIPT.is_file():
        return None
    spec = importlib.util.spec_from_file_location(_MODULE, SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE] = module  # dataclasses and typing look the module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_MODULE]
        raise
    return module


def _missing() -> str:
    return (
        f"rnnkit bench needs a source checkout: expected {SCRIPT}, but this rnnkit is installed without "
        "its benchmarks folder (clone the repository and run `make bench` there)"
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    bench = load_benchmark()
    if bench is not None:
        bench.add_arguments(p)
        return

    def accept_anything(args=None, namespace=None):  # any flags: run() then says what is missing
        namespace = namespace if namespace is not None else argparse.Namespace()
        for key, value in p._defaults.items():
            setattr(namespace, key, value)
        return namespace, []

    p.parse_known_args = accept_anything


def run(args: argparse.Namespace) -> int:
    bench = load_benchmark()
    if bench is None:
        raise RnnkitError(_missing())
    return bench.run_from_args(args)
