"""Faults with real processes: kill -9 and SIGTERM during training then --resume, a full disk during the final
save, two trainings of one name at once, Ctrl-C during start-up.

The resumed run is compared with a run that was never stopped, tensor by tensor with ``torch.equal``: the
trainer's resume must reproduce the uninterrupted run bitwise (one thread, a fixed seed).
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import rnnkit
from rnnkit._errors import RnnkitError
from rnnkit.apps.rundir import RunBuilder, find_interrupted
from test_cli import NO_ARIMA, assert_one_line_error, run_cli, write_series, write_text

SRC = str(Path(rnnkit.__file__).resolve().parents[1])
# 6 epochs of 4 steps; a checkpoint every 2 steps gives the kill something to resume from early on
TRAIN = ["--epochs", "6", "--patience", "0", "--no-progress", "--threads", "1", "--checkpoint-every", "2"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _start(tmp_path: Path, *argv) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "rnnkit.cli", *map(str, argv)]
    return subprocess.Popen(
        cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


# textgen trains differently: truncated BPTT over parallel streams of text, the recurrent state carried from one
# update to the next, so a checkpoint must hold that state too; 2 epochs of about 60 small updates
TEXTGEN = [
    "--epochs",
    "2",
    "--batch-size",
    "4",
    "--tbptt-k1",
    "20",
    "--tbptt-k2",
    "20",
    "--hidden-size",
    "16",
]
TEXTGEN += ["--embedding-dim", "8", "--no-baselines", "--sample-length", "0", "--checkpoint-every", "5"]
TEXTGEN += ["--patience", "0", "--no-progress", "--threads", "1"]
TEXTGEN += ["--lr-schedule", "cosine"]  # the warm-up + cosine schedule's position must come back too


def _train_args(data: Path, runs: Path, name: str, app: str = "timeseries") -> list[str]:
    flags = TEXTGEN if app == "textgen" else TRAIN
    return ["train", app, "--data", data, "--runs-dir", runs, "--name", name, *flags]


def _wait_for(predicate, proc: subprocess.Popen, seconds: float = 50.0) -> None:
    t0 = time.monotonic()
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended first ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() - t0 > seconds:
            proc.kill()
            raise AssertionError("timed out waiting for the training to get going")
        time.sleep(0.02)


def _checkpointed(runs: Path, name: str):
    return lambda: any(runs.glob(f".{name}.*.tmp/checkpoints/latest.json"))


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def _reference(tmp: Path, data: Path, app: str):
    """An uninterrupted run, started in the background so that the fault tests overlap with it."""
    runs = tmp / "runs"
    proc = _start(tmp, *_train_args(data, runs, "whole", app))

    def finished() -> Path:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        return runs / "whole"

    return data, finished, app


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    return _reference(tmp, write_series(tmp / "s.csv", 220), "timeseries")


@pytest.fixture(scope="module")
def textgen_reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref-textgen")
    return _reference(tmp, write_text(tmp / "t.txt"), "textgen")


def _interrupt_and_resume(tmp_path: Path, reference, sig: int) -> tuple[subprocess.CompletedProcess, str]:
    series, finished, app = reference
    runs = tmp_path / "runs"
    proc = _start(tmp_path, *_train_args(series, runs, "r", app))
    _wait_for(_checkpointed(runs, "r"), proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    left = find_interrupted(runs, "r")
    assert len(left) == 1 and left[0].checkpoint is not None, (proc.returncode, err)
    assert not (runs / "r").exists()
    resumed = subprocess.run(
        [sys.executable, "-m", "rnnkit.cli", "train", app, "--runs-dir", str(runs), "--resume"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming the interrupted run 'r'" in resumed.stderr
    _assert_same_weights(runs / "r", finished())
    assert sorted(p.name for p in runs.iterdir()) == ["r"]  # no temp folder, no lock file left
    return proc, err


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_uninterrupted_weights(tmp_path, reference):
    proc, _ = _interrupt_and_resume(tmp_path, reference, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_uninterrupted_weights_of_truncated_bptt(tmp_path, textgen_reference):
    """The same for textgen: the state carried between truncated-BPTT updates comes back from the checkpoint."""
    proc, _ = _interrupt_and_resume(tmp_path, textgen_reference, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_sigterm_checkpoints_exits_143_and_says_how_to_resume(tmp_path, reference):
    proc, err = _interrupt_and_resume(tmp_path, reference, signal.SIGTERM)
    assert proc.returncode == 143, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("rnnkit: interrupted by SIGTERM after step "), err
    assert "--resume" in last and "--discard-interrupted" in last
    assert "Traceback" not in err


@pytest.mark.slow
def test_an_ensemble_killed_in_its_third_network_resumes_after_the_finished_ones(tmp_path):
    """Sentiment trains three networks; killed while the third is checkpointing, the run resumes with the two
    finished networks read back and the third from its checkpoint, and every network equals the uninterrupted
    run's. (Before, the finished networks' checkpoints were gone, so there was nothing to resume from.)"""
    rng = random.Random(0)
    rows = ["text,label"]
    for i in range(600):
        good = i % 2
        words = [
            rng.choice(["good", "great", "fine"] if good else ["bad", "awful", "dull"]) for _ in range(3)
        ]
        words += [rng.choice(["film", "movie", "plot", "cast"]) for _ in range(5)]
        rng.shuffle(words)
        rows.append(" ".join(words) + ("," + ("pos" if good else "neg")))
    data = tmp_path / "d.csv"
    data.write_text("\n".join(rows) + "\n")
    runs = tmp_path / "runs"
    args = ["train", "sentiment", "--data", data, "--runs-dir", runs, "--epochs", "8", "--min-epochs", "8"]
    args += ["--early-stopping", "0", "--no-progress", "--threads", "1", "--checkpoint-every", "5"]
    args += ["--hidden-size", "16", "--embedding-dim", "16"]
    whole = _start(tmp_path, *args, "--name", "whole")
    proc = _start(tmp_path, *args, "--name", "r")
    _wait_for(lambda: any(runs.glob(".r.*.tmp/members/2/checkpoints/latest.json")), proc, 120)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    left = find_interrupted(runs, "r")
    assert len(left) == 1 and left[0].checkpoint is None and left[0].resumable
    resumed = subprocess.run(
        [sys.executable, "-m", "rnnkit.cli", *map(str, args), "--name", "r", "--resume"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "from its finished networks" in resumed.stderr
    assert whole.wait(timeout=300) == 0
    for sub in ("", "members/1", "members/2"):
        _assert_same_weights(runs / "r" / sub, runs / "whole" / sub)
    assert not list((runs / "r").rglob("finished"))  # the resume copies do not stay in the run


def test_a_run_killed_while_its_feed_forward_counterpart_trains_resumes_without_training_the_network_again(
    tmp_path,
):
    """translate trains the network, then its feed-forward counterpart; killed while the counterpart is
    checkpointing, the run resumes with the finished network read back and the counterpart from its checkpoint,
    and both equal the uninterrupted run's."""
    runs = tmp_path / "runs"
    args = ["train", "translate", "--data", "num2words", "--target-lang", "fr", "--max-number", "300"]
    args += ["--hidden-size", "16", "--embedding-dim", "16", "--attention-dim", "16", "--epochs", "6"]
    args += [
        "--early-stopping",
        "0",
        "--eval-sentences",
        "10",
        "--beam",
        "2",
        "--no-progress",
        "--threads",
        "1",
    ]
    args += ["--checkpoint-every", "3", "--runs-dir", runs]
    whole = _start(tmp_path, *args, "--name", "whole")
    proc = _start(tmp_path, *args, "--name", "r")
    _wait_for(lambda: any(runs.glob(".r.*.tmp/feedforward/checkpoints/latest.json")), proc, 300)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    resumed = subprocess.run(
        [sys.executable, "-m", "rnnkit.cli", *map(str, args), "--name", "r", "--resume"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "from its finished networks" in resumed.stderr  # the network is read back, not trained again
    assert whole.wait(timeout=300) == 0
    for sub in ("", "feedforward"):
        _assert_same_weights(runs / "r" / sub, runs / "whole" / sub)
    history = json.loads((runs / "r" / "history.json").read_text())
    assert len(history) == 6  # the network's epochs, read back, not trained again
    assert not list((runs / "r").rglob("finished"))


@pytest.mark.slow
def test_two_trainings_of_one_name_one_wins(tmp_path):
    series = write_series(tmp_path / "s.csv", 200)
    runs = tmp_path / "runs"
    first = _start(tmp_path, *_train_args(series, runs, "same"))
    _wait_for(lambda: (runs / ".same.lock").exists() and any(runs.glob(".same.*.tmp")), first)
    second = subprocess.run(
        [sys.executable, "-m", "rnnkit.cli", *map(str, _train_args(series, runs, "same"))],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_one_line_error(second.returncode, second.stderr, "is being trained right now by process")
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert sorted(p.name for p in runs.iterdir()) == ["same"]


def test_a_full_disk_during_the_final_save_keeps_the_previous_run(tmp_path, capsys, monkeypatch):
    import rnnkit.apps.timeseries.train  # noqa: F401  (the package's `train` is the function)
    from rnnkit import files

    ts_train = sys.modules["rnnkit.apps.timeseries.train"]

    series = write_series(tmp_path / "s.csv", 200)
    runs = tmp_path / "runs"
    argv = ["train", "timeseries", "--data", series, "--runs-dir", runs, "--name", "r", "--epochs", "1"]
    argv += NO_ARIMA
    rc, _, err = run_cli(capsys, *argv, "--no-progress")
    assert rc == 0, err
    before = {str(p.relative_to(runs)): p.read_bytes() for p in (runs / "r").rglob("*") if p.is_file()}

    full = {"now": False}
    real_write_all, real_save = files._write_all, ts_train.save_run_files

    def write_all(fd, data):
        if full["now"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write_all(fd, data)

    def save_run_files(*args, **kwargs):
        full["now"] = True  # the disk fills up just as the finished run is written
        return real_save(*args, **kwargs)

    monkeypatch.setattr(files, "_write_all", write_all)
    monkeypatch.setattr(ts_train, "save_run_files", save_run_files)
    rc, _, err = run_cli(capsys, *argv, "--no-progress", "--overwrite", "--seed", "3")
    assert_one_line_error(rc, err, "No space left on device", "cannot write", after_progress=True)
    assert {
        str(p.relative_to(runs)): p.read_bytes() for p in (runs / "r").rglob("*") if p.is_file()
    } == before
    assert sorted(p.name for p in runs.iterdir()) == ["r"]


def test_the_name_lock_refuses_a_second_builder_and_is_released(tmp_path):
    first = RunBuilder(tmp_path, "x")
    with pytest.raises(RnnkitError, match="is being trained right now by process"):
        RunBuilder(tmp_path, "x")
    first.abort()
    with RunBuilder(tmp_path, "x") as run:
        run.write_text("a.txt", "ok")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def _left_behind(tmp_path: Path, name: str, pid: int, checkpoint: bool) -> Path:
    """A temporary folder as a killed process leaves it."""
    run = RunBuilder(tmp_path, name)
    info = json.loads((run.path / "build.json").read_text())
    info["pid"] = pid
    (run.path / "build.json").write_text(json.dumps(info))
    if checkpoint:
        (run.path / "checkpoints" / "ckpt-000001-step-00000007").mkdir(parents=True)
        (run.path / "checkpoints" / "latest.json").write_text('{"checkpoint": "ckpt-000001-step-00000007"}')
    run._release()  # the process is gone: its lock went with it
    return run.path


def test_an_interrupted_run_is_reported_and_can_be_discarded(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    path = _left_behind(tmp_path, "r", int(dead.stdout), checkpoint=True)
    assert [r.path for r in find_interrupted(tmp_path)] == [path]
    with pytest.raises(
        RnnkitError, match=r"interrupted run 'r' exists .*step 7.*--resume.*--discard-interrupted"
    ):
        RunBuilder(tmp_path, "r")
    assert path.is_dir()
    with RunBuilder(tmp_path, "r", discard_interrupted=True) as run:
        run.write_text("a.txt", "fresh")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_a_folder_without_checkpoint_is_cleaned_up_and_a_live_one_is_left_alone(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    _left_behind(tmp_path, "r", int(dead.stdout), checkpoint=False)
    with RunBuilder(tmp_path, "r") as run:  # nothing to resume: the stale folder just goes
        run.write_text("a.txt", "fresh")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]
    live = RunBuilder(tmp_path, "s")  # still being built (its lock is held): not an interrupted run
    assert find_interrupted(tmp_path) == []
    live.abort()


def test_resume_without_an_interrupted_run_is_one_line(tmp_path, capsys):
    rc, _, err = run_cli(capsys, "train", "timeseries", "--runs-dir", tmp_path / "runs", "--resume")
    assert_one_line_error(rc, err, "--resume: no interrupted run of timeseries")
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


def test_ctrl_c_during_start_up_is_one_line(tmp_path, capsys, monkeypatch):
    import rnnkit.apps as apps

    def interrupted(name):
        raise KeyboardInterrupt

    monkeypatch.setattr(apps, "app_config", interrupted)
    rc, out, err = run_cli(capsys, "train", "timeseries", "--runs-dir", tmp_path)
    assert rc == 130
    assert err.strip() == "rnnkit: interrupted by Ctrl-C (SIGINT)"
    assert list(tmp_path.iterdir()) == []


def test_a_resume_refuses_training_data_that_changed(tmp_path):
    from types import SimpleNamespace

    from rnnkit.apps._common import _record_training_data

    data = write_series(tmp_path / "s.csv", 50)
    run = tmp_path / "run"
    run.mkdir()
    _record_training_data(SimpleNamespace(data=str(data)), run)  # the first start
    _record_training_data(SimpleNamespace(data=str(data)), run)  # a resume with the same file is fine
    data.write_text(data.read_text().replace("2000-01-01", "1999-12-01"))
    with pytest.raises(RnnkitError, match="changed since the run was interrupted"):
        _record_training_data(SimpleNamespace(data=str(data)), run)
