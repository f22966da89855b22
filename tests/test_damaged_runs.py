"""Damaged runs, for every application: a missing, truncated, garbled or emptied file of a saved run, or a
weights file whose bytes no longer match the sha256 recorded when it was saved, given to ``rnnkit evaluate``,
``predict``, ``generate`` and ``export``.

Each command that reads the damaged file must stop with exit status 2 and one line that names the file (or
says the run is incomplete or not a run), no traceback, and must leave the run folder as it found it. Which
command reads which file: every command reads ``run.json`` and checks that every file it lists is there;
``export`` then reads only the model (``model.json``, ``model.safetensors``); ``predict`` and ``generate`` read
the model and what turns input into tensors and back (config, vocabularies, labels, scaler); ``evaluate``
also reads ``data.json`` (which file the run was trained on) and the feed-forward counterpart (``feedforward/``).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rnnkit.cli import main
from test_cli import assert_one_line_error, run_cli, write_reviews, write_series, write_text

pytestmark = pytest.mark.slow  # trains one tiny run of each of the seven applications


def _tiny_abc(path: Path) -> Path:
    notes = "CDEFGABcde"
    path.write_text(
        "".join(
            f"X:{i}\nT:t{i}\nM:4/4\nL:1/8\nK:G\n|:GABc {notes[i % 10]}edB|{notes[i * 3 % 10]}cBA GABG:|\n\n"
            for i in range(30)
        )
    )
    return path


def _tiny_npz(path: Path) -> Path:
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(int(rng.integers(8, 20)), 4)).astype(np.float32) for _ in range(30)]
    np.savez(path, X=np.concatenate(seqs), lengths=np.array([len(s) for s in seqs]), y=np.arange(30) % 3)
    return path


def _tiny_lines(folder: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = ["file,text"]
    for k in range(12):
        Image.fromarray((rng.random((32, 64)) * 255).astype(np.uint8)).save(folder / f"l{k}.png")
        rows.append(f"l{k}.png,{k * 7 % 100}")
    (folder / "lines.csv").write_text("\n".join(rows) + "\n")
    return folder / "lines.csv"


SMALL = ["--epochs", "1", "--no-progress", "--hidden-size", "8"]
APPS = {  # app -> (training flags after --data, the inputs of `predict` or None, `generate` or not)
    "sentiment": (lambda t: [write_reviews(t / "r.csv", 60), "--text-column", "review", "--label-column",
                             "sentiment", "--embedding-dim", "8"], lambda t: ["a good film"], False),
    "timeseries": (lambda t: [write_series(t / "s.csv", 120), "--ensemble", "2", "--baselines", "naive", "mlp"],
                   lambda t: ["--file", t / "s.csv"], False),
    "textgen": (lambda t: [write_text(t / "t.txt"), "--no-baselines", "--sample-length", "0"],
                lambda t: ["the cat"], True),
    "speech": (lambda t: [_tiny_npz(t / "f.npz")], lambda t: [t / "f.npz"], False),
    "handwriting": (lambda t: [_tiny_lines(t), "--no-tesseract"], lambda t: [t / "l0.png"], False),
    "translate": (lambda t: [_write_pairs(t / "p.tsv")], lambda t: ["one 3"], False),
    "music": (lambda t: [_tiny_abc(t / "t.abc"), "--eval-samples", "1", "--eval-max-length", "40",
                         "--ngram-max-order", "2"], None, True),
}  # fmt: skip


def _write_pairs(path: Path) -> Path:
    path.write_text("source\ttarget\n" + "".join(f"one {i}\tun {i}\n" for i in range(30)))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``{app: (run folder, data folder)}``, one tiny run of each application."""
    out = {}
    for app, (data, _, _) in APPS.items():
        folder = tmp_path_factory.mktemp(app)
        argv = ["train", app, "--data", *data(folder), "--runs-dir", folder / "runs", "--name", app, *SMALL]
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main([str(a) for a in argv])
        assert rc == 0, err.getvalue()
        out[app] = (folder / "runs" / app, folder)
    return out


def _reads(app: str, command: str, name: str) -> bool:
    """Whether ``command`` reads the run file ``name`` (see the module docstring)."""
    if name.startswith("feedforward/"):  # the feed-forward counterpart: evaluate scores it beside the network
        return command == "evaluate"
    if app == "music" and name.startswith("ngram."):  # music's n-gram baseline: evaluate only
        return command == "evaluate"
    model = name in ("run.json", "model.json", "model.safetensors")
    if command == "export":  # a CRNN has no ONNX export: after run.json, that is refused first
        return name == "run.json" if app == "handwriting" else model
    if command == "evaluate":
        return True
    return name != "data.json"


def _flip_last_byte(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[-1] ^= 0x01  # inside the tensor data: the header still parses, only the checksum tells
    p.write_bytes(bytes(data))


DAMAGES = {
    "missing": lambda p: p.unlink(),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "garbled": lambda p: p.write_bytes(p.read_bytes()[:8] + bytes(b ^ 0x5A for b in p.read_bytes()[8:40]) + p.read_bytes()[40:]),
    "emptied": lambda p: p.write_bytes(b""),
    "checksum": _flip_last_byte,
}  # fmt: skip


def _files(run: Path) -> list[str]:
    """The run's own files that a command may read: run.json, the model, config, data and vocabularies."""
    listed = json.loads((run / "run.json").read_text())["files"]
    skip = ("metrics.json", "history.json", "grad_flow.json")
    return ["run.json"] + [
        n for n in listed if n.endswith((".json", ".safetensors", ".spm")) and n not in skip
    ]


def _cases():
    for app in APPS:
        commands = (
            ["evaluate", "export"]
            + (["predict"] if APPS[app][1] else [])
            + (["generate"] if APPS[app][2] else [])
        )
        for command in commands:
            for damage in DAMAGES:
                if (app, command, damage) == ("handwriting", "export", "checksum"):
                    continue  # it reads no weights
                yield pytest.param(app, command, damage, id=f"{app}-{command}-{damage}")


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("app, command, damage", list(_cases()))
def test_a_damaged_run_is_one_line(tmp_path, capsys, trained, app, command, damage):
    source, data = trained[app]
    names = [n for n in _files(source) if _reads(app, command, n)]
    if damage == "checksum":
        names = [n for n in names if n.endswith(".safetensors")]
    assert names
    extra = {
        "predict": APPS[app][1](data) if APPS[app][1] else [],
        # music writes tunes: into tmp_path (not the working folder), and none may appear there
        "generate": ["--out", tmp_path / "tunes"]
        if app == "music"
        else ["--length", "20"],  # tunes: no --length
        "export": ["--out", tmp_path / "out.onnx"],
        "evaluate": [],
    }[command]
    for name in names:
        run = tmp_path / app
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(source, run)
        DAMAGES[damage](run / name)
        before = _tree(run)
        rc, out, err = run_cli(capsys, command, run, *extra)
        fragment = Path(name).name
        if damage == "missing" and name != "run.json":
            fragment = "is incomplete"
        assert_one_line_error(rc, err)
        line = err.strip()
        assert fragment in line or "damaged" in line or "not an rnnkit run" in line, (name, line)
        assert _tree(run) == before, name
        assert not (tmp_path / "out.onnx").exists() and not (tmp_path / "tunes").exists()


@pytest.mark.parametrize("app", list(APPS))
def test_an_intact_run_works_with_every_command(tmp_path, capsys, trained, app):
    """The control of the damage tests: the same commands on the undamaged run succeed (a command that fails
    on every run would pass them)."""
    source, data = trained[app]
    run = tmp_path / app
    shutil.copytree(source, run)
    commands = [["evaluate"], ["evaluate", "--json"]]
    if APPS[app][1]:
        commands.append(["predict", *APPS[app][1](data)])
    if APPS[app][2]:  # music writes files: into tmp_path, not the working folder
        commands.append(
            ["generate", *(["--out", tmp_path / "tunes"] if app == "music" else ["--length", "20"])]
        )
    if app != "handwriting":  # a CRNN has no ONNX export
        commands.append(["export", "--out", tmp_path / "out.onnx"])
    for command in commands:
        rc, out, err = run_cli(capsys, command[0], run, *command[1:])
        assert rc == 0 and out.strip(), (command, err)
    if app != "handwriting":  # one file, or an encoder and a decoder step beside it (translate)
        assert list(tmp_path.glob("out*.onnx"))
