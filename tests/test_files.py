"""rnnkit.files: atomic writes survive failures, checksums catch damage, bad JSON is one clear line; and the
layering it allows (the trainer without the models, no import cycles among models, train and files)."""

from __future__ import annotations

import ast
import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from rnnkit import RnnkitError, files

SRC = Path(__file__).resolve().parents[1] / "src"


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- atomic writes ---------------------------------------------------------------------------------------------
def test_a_full_disk_mid_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    target.write_bytes(b"old content\n")
    real_write = os.write
    calls = []

    def half_then_enospc(fd, data):
        calls.append(len(data))
        if len(calls) == 1:  # the first call writes part of the data, as a nearly full disk does
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "write", half_then_enospc)
    with pytest.raises(RnnkitError, match="No space left on device") as info:
        files.atomic_write_bytes(target, b"x" * 10_000)
    monkeypatch.undo()
    assert str(target) in str(info.value) and "\n" not in str(info.value)
    assert len(calls) == 2  # the short write was continued, then the disk was full
    assert target.read_bytes() == b"old content\n"
    assert _listing(tmp_path) == ["metrics.json"]


def test_a_failing_fsync_or_rename_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "a.bin"
    target.write_bytes(b"before")
    for name in ("fsync", "replace"):

        def boom(*args, **kwargs):
            raise OSError(errno.EIO, os.strerror(errno.EIO))

        monkeypatch.setattr(files.os, name, boom)
        with pytest.raises(RnnkitError, match=f"cannot write {target}"):
            files.atomic_write_bytes(target, b"after")
        monkeypatch.undo()
        assert target.read_bytes() == b"before"
        assert _listing(tmp_path) == ["a.bin"]
    files.atomic_write_bytes(target, b"after")
    assert target.read_bytes() == b"after" and _listing(tmp_path) == ["a.bin"]


def test_an_exception_from_the_producer_writes_nothing(tmp_path):
    class Figure:  # a matplotlib-like figure whose rendering fails half way
        def savefig(self, buf, **kwargs):
            buf.write(b"\x89PNG partial")
            raise RuntimeError("renderer crashed")

    (tmp_path / "curves.png").write_bytes(b"old png")
    with pytest.raises(RuntimeError, match="renderer crashed"):
        files.write_figure(Figure(), tmp_path / "curves.png")
    with pytest.raises(TypeError):
        files.write_json(tmp_path / "new.json", {"x": object()})
    assert _listing(tmp_path) == ["curves.png"]
    assert (tmp_path / "curves.png").read_bytes() == b"old png"


def test_written_files_get_the_permissions_of_an_ordinary_file(tmp_path):
    plain = tmp_path / "plain"
    with open(plain, "w"):  # Python's open(): 0o666 less the umask
        pass
    written = files.atomic_write_text(tmp_path / "sub" / "atomic", "x")
    assert written.read_text() == "x"
    assert written.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_json_round_trip_keeps_unicode_and_nan(tmp_path):
    data = {"mot": "déjà vu", "loss": [1.5, float("nan")], "n": 3}
    path = files.write_json(tmp_path / "d.json", data)
    back = json.loads(path.read_text(encoding="utf-8"))  # the standard library reads it back
    assert back["mot"] == "déjà vu" and back["n"] == 3 and back["loss"][0] == 1.5
    assert back["loss"][1] != back["loss"][1]  # NaN
    assert files.read_json(path)["mot"] == "déjà vu"


@pytest.mark.parametrize(
    "content, fragments",
    [
        (b'{"format": "rnnkit.model", "ver', ["not valid JSON", "line 1"]),
        (b"", ["not valid JSON"]),
        (b'{"a": 1}\xff', ["not UTF-8"]),
    ],
)
def test_bad_json_is_one_line_naming_the_file(tmp_path, content, fragments):
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(RnnkitError) as info:
        files.read_json(path, "run co2")
    message = str(info.value)
    assert message.startswith("run co2: ") and str(path) in message and "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_missing_json_names_the_file(tmp_path):
    with pytest.raises(RnnkitError, match=r"expected the JSON file .*nothing\.json, but it is missing"):
        files.read_json(tmp_path / "nothing.json")
    with pytest.raises(RnnkitError, match="but it is a folder"):
        files.read_json(tmp_path)


# -- safetensors and checksums ---------------------------------------------------------------------------------
def test_safetensors_digest_matches_hashlib_and_catches_damage(tmp_path):
    torch.manual_seed(0)
    tensors = {"w": torch.randn(4, 3), "steps": torch.arange(5)}
    path = tmp_path / "t.safetensors"
    digest = files.write_safetensors(path, tensors, {"format": "test"})
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest() == files.sha256_file(path)
    back, meta = files.read_safetensors(path, digest)
    assert meta == {"format": "test"}
    for k, v in tensors.items():
        assert torch.equal(back[k], v)
    good = path.read_bytes()
    flipped = bytearray(good)
    flipped[-1] ^= 0x01  # one bit of the last tensor
    path.write_bytes(bytes(flipped))
    with pytest.raises(RnnkitError, match="corrupted .*sha256"):
        files.read_safetensors(path, digest)
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(RnnkitError, match="not a readable safetensors file"):
        files.read_safetensors(path)  # no digest: the format check still refuses a truncated file
    with pytest.raises(RnnkitError, match="no such file"):
        files.read_safetensors(tmp_path / "absent.safetensors")


def test_tied_weights_are_stored_once_and_restored_tied(tmp_path):
    torch.manual_seed(0)
    src = nn.Sequential(nn.Embedding(7, 5), nn.Linear(5, 7))
    src[1].weight = src[0].weight  # tied input and output embeddings
    tensors, aliases = files.module_tensors(src)
    assert aliases == {"1.weight": "0.weight"}
    digest = files.write_safetensors(tmp_path / "m.safetensors", tensors, {})
    dst = nn.Sequential(nn.Embedding(7, 5), nn.Linear(5, 7))
    dst[1].weight = dst[0].weight
    loaded, _ = files.read_safetensors(tmp_path / "m.safetensors", digest)
    files.load_module_tensors(dst, loaded, aliases)
    for (name, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items()):
        assert torch.equal(a, b), name
    assert dst[1].weight.data_ptr() == dst[0].weight.data_ptr()
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    bad = dict(loaded, **{"1.bias": torch.zeros(3)})
    with pytest.raises(RnnkitError, match=r"1\.bias has shape \(3,\), the model expects \(7,\)"):
        files.load_module_tensors(dst, bad, aliases)
    for k, v in dst.state_dict().items():  # all or nothing
        assert torch.equal(v, before[k])


# -- atomic folders --------------------------------------------------------------------------------------------
def test_replace_dir_swaps_whole_folders_and_puts_the_old_one_back_on_failure(tmp_path, monkeypatch):
    final = tmp_path / "run"
    final.mkdir()
    (final / "old.txt").write_text("old")
    new = files.temp_dir_beside(final)
    assert new.parent == tmp_path and new.name.startswith(".run.")
    (new / "new.txt").write_text("new")
    with pytest.raises(FileExistsError):
        files.replace_dir(new, final)
    real_replace = os.replace

    def fail_on_the_second_rename(src, dst):
        if Path(src) == new:
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", fail_on_the_second_rename)
    with pytest.raises(OSError):
        files.replace_dir(new, final, overwrite=True)
    monkeypatch.undo()
    assert _listing(final) == ["old.txt"]
    files.replace_dir(new, final, overwrite=True)
    assert _listing(final) == ["new.txt"] and _listing(tmp_path) == ["run"]


# -- layering --------------------------------------------------------------------------------------------------
def test_the_trainer_does_not_import_the_models():
    code = "import sys, rnnkit.train; print(sorted(m for m in sys.modules if m.startswith('rnnkit.models')))"
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"
    from rnnkit.models import LossOutput
    from rnnkit.train.protocol import LossOutput as TrainLossOutput

    assert LossOutput is TrainLossOutput  # still importable where users found it


def _import_graph() -> dict[str, set[str]]:
    """Module -> rnnkit modules it imports anywhere in its source (function-level imports included)."""
    paths = {}
    for p in (SRC / "rnnkit").rglob("*.py"):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph: dict[str, set[str]] = {}
    for mod, p in paths.items():
        package = mod.split(".") if p.name == "__init__.py" else mod.split(".")[:-1]
        deps = set()
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base for a in node.names]
            else:
                continue
            deps.update(n for n in names if n in paths and n != mod)
        graph[mod] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_import_cycles_through_files_models_or_train():
    graph = _import_graph()
    assert "rnnkit.models.io" in graph["rnnkit.models._base"]  # the graph does see function-level imports
    layered = ("rnnkit.files", "rnnkit.models", "rnnkit.train", "rnnkit._dataclasses")
    bad = [sorted(c) for c in _cycles(graph) if any(m.startswith(layered) for m in c)]
    assert bad == []
    assert not any(d.startswith("rnnkit.models") for d in graph["rnnkit.train.trainer"])
    assert not any(d.startswith("rnnkit.models") for d in graph["rnnkit.train.checkpoint"])
