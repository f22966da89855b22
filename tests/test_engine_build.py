"""The compiled engine's cache: keyed by what the binary depends on, built once under a lock, never stale.

These run real processes against a fresh ``RNNKIT_CACHE``: no mocks of the compiler, the lock or torch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import rnnkit
from rnnkit.fused import _build

# one fixed computation through the fused LSTM kernel; each process prints its numbers as JSON
_RUN_ENGINE = """
import json, torch, rnnkit
from rnnkit import fused
ok, reason = fused.load()
torch.manual_seed(0)
layer = rnnkit.LSTM(3, 5, layer_norm=True, backend="fused")
x = torch.randn(2, 6, 3, requires_grad=True)
y, _ = layer(x) if ok else (torch.zeros(1), None)
g = torch.autograd.grad(y.square().sum(), x)[0] if ok else torch.zeros(1)
print(json.dumps({"ok": ok, "reason": reason, "dir": str(fused.cache_dir()),
                  "y": y.flatten().tolist(), "g": g.flatten().tolist()}))
"""


def _env(cache: Path, **extra: str) -> dict[str, str]:
    src = str(Path(rnnkit.__file__).resolve().parents[1])
    env = {**os.environ, "RNNKIT_CACHE": str(cache), "OMP_NUM_THREADS": "1", **extra}
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])
    env.pop("RNNKIT_NO_FUSED", None)
    return env


def _python(code: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(not _build.load()[0], reason="no compiler for the fused engine on this machine")
@pytest.mark.slow
def test_two_processes_building_at_once_do_one_build_and_both_run(tmp_path):
    cache = tmp_path / "cache"
    env = _env(cache)
    folder = Path(_python("from rnnkit.fused import cache_dir; print(cache_dir())", env))
    # an interrupted earlier build left a broken library and no completion mark: it must never be loaded
    folder.mkdir(parents=True)
    tag = folder.name.split("-")[0]
    (folder / f"rnnkit_fused_{tag}.so").write_bytes(b"not a shared library")
    procs = [
        subprocess.Popen([sys.executable, "-c", _RUN_ENGINE], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [json.loads(p.communicate(timeout=900)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    for r in results:
        assert r["ok"], r["reason"]
        assert r["dir"] == str(folder)
    assert results[0]["y"] == results[1]["y"] and results[0]["g"] == results[1]["g"]
    # ninja appends a line per file it made to its log (start, end, mtime, output, hash): one build means
    # each object was compiled once
    log = (folder / ".ninja_log").read_text().splitlines()
    objects = [f[3] for f in (ln.split("\t") for ln in log if not ln.startswith("#")) if f[3].endswith(".o")]
    assert sorted(objects) == sorted(f"{Path(s).stem}.o" for s in _build.SOURCES)
    assert json.loads((folder / "rnnkit-build.json").read_text())["key"].startswith(
        folder.name.split("-")[-1]
    )
    assert [p.name for p in (cache / "torch_extensions").iterdir() if p.is_dir()] == [folder.name]
    # a third process only loads: nothing is compiled again
    third = json.loads(_python(_RUN_ENGINE, env))
    assert third["ok"] and third["y"] == results[0]["y"]
    assert (folder / ".ninja_log").read_text().splitlines() == log


def test_the_cache_folder_follows_the_sources_not_their_location(tmp_path):
    same = tmp_path / "same"
    shutil.copytree(_build._CSRC, same)
    assert _build.cache_dir(same) == _build.cache_dir()  # another checkout of the same sources shares it
    edited = tmp_path / "edited"
    shutil.copytree(_build._CSRC, edited)
    with open(edited / "lstm.cpp", "a") as f:
        f.write("\n// an edit\n")
    assert _build.cache_dir(edited) != _build.cache_dir()
    assert _build.cache_dir(edited).parent == _build.cache_dir().parent
    extra = tmp_path / "extra"
    shutil.copytree(_build._CSRC, extra)
    (extra / "new.h").write_text("#pragma once\n")  # a new header counts too
    assert _build.cache_dir(extra) != _build.cache_dir()


def test_the_cache_folder_follows_flags_compiler_and_cpu_capability(tmp_path, monkeypatch):
    base = _build.cache_dir()
    monkeypatch.setattr(_build, "_BASE_CFLAGS", (*_build._BASE_CFLAGS, "-DRNNKIT_TEST"))
    assert _build.cache_dir() != base
    monkeypatch.undo()
    monkeypatch.setenv("CXX", "clang++-not-installed")
    assert _build.cache_dir() != base
    monkeypatch.undo()
    # the capability torch selects is fixed when a process starts: ask fresh processes
    code = "import torch; from rnnkit.fused import cache_dir; print(torch.backends.cpu.get_cpu_capability(), cache_dir().name)"
    seen = {}
    for forced in ("default", "avx2"):
        capability, name = _python(code, _env(tmp_path, ATEN_CPU_CAPABILITY=forced)).split()
        assert name.startswith({"DEFAULT": "generic-", "AVX2": "avx2-", "AVX512": "avx512-"}[capability])
        seen[capability] = name
    assert seen["DEFAULT"] != base.name or torch.backends.cpu.get_cpu_capability() == "DEFAULT"
    assert len(set(seen.values())) == len(seen)  # each capability its own folder
