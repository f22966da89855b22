"""Ctrl-C and SIGTERM at any moment of a command's start-up, with real processes.

``rnnkit.cli.main`` puts its signal handlers in before it imports any command, and ``import rnnkit`` loads
nothing heavy, so a signal during the seconds spent importing torch must still end in one line on stderr and
exit status 130 (SIGINT) or 143 (SIGTERM), never a ``KeyboardInterrupt`` traceback or a death by signal.

The signal is sent at several delays after the process has begun to import torch (its native library appears
in ``/proc/PID/maps``), which puts most of them inside ``import torch`` (about a second); a delay past the end
of the command is fine too (exit 0, no traceback).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rnnkit
from test_cli import write_series

SRC = str(Path(rnnkit.__file__).resolve().parents[1])

pytestmark = pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/PID/maps (Linux)")


def test_import_rnnkit_loads_neither_torch_nor_numpy():
    code = (
        "import sys, rnnkit, rnnkit.cli, rnnkit._signals; "
        "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_public_names_still_load_on_use():
    import torch

    assert set(rnnkit.__all__) <= set(dir(rnnkit))
    assert {"datasets", "models", "apps"} <= set(dir(rnnkit))
    ns: dict = {}
    exec("from rnnkit import *", ns)
    assert set(rnnkit.__all__) <= set(ns)
    from rnnkit import LSTM

    assert LSTM is rnnkit.LSTM
    ref = torch.nn.LSTM(3, 4, batch_first=True)
    layer = rnnkit.from_torch(ref)  # rnnkit.LSTM with torch's weights
    assert isinstance(layer, rnnkit.LSTM)
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(layer(x)[0], ref(x)[0])
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        rnnkit.Nope  # noqa: B018


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _loading_torch(pid: int) -> bool:
    """Whether the process has begun to import torch (its native library is mapped)."""
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def _signal_during_start_up(tmp_path: Path, argv: list[str], sig: int, delay: float) -> tuple[int, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnkit.cli", *argv],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    t0 = time.monotonic()
    while not _loading_torch(proc.pid) and proc.poll() is None:
        if time.monotonic() - t0 > 60:
            proc.kill()
            raise AssertionError("the command never began to import torch")
        time.sleep(0.002)
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


DELAYS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5]  # 0.2-0.3 s: often inside numpy's import


@pytest.mark.parametrize(
    "sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
@pytest.mark.parametrize("delay", DELAYS)
def test_a_signal_while_train_starts_is_one_line(tmp_path, sig, code, delay):
    series = write_series(tmp_path / "s.csv", 120)
    argv = ["train", "timeseries", "--data", str(series), "--runs-dir", "runs", "--name", "run"]
    argv += ["--epochs", "1", "--no-progress"]
    rc, err = _signal_during_start_up(tmp_path, argv, sig, delay)
    assert "Traceback" not in err, err
    assert rc in (code, 0), (rc, err)
    if rc == code:
        name = {130: "Ctrl-C (SIGINT)", 143: "SIGTERM"}[code]
        assert err.strip().splitlines()[-1].startswith(f"rnnkit: interrupted by {name}"), err
    runs = tmp_path / "runs"
    left = sorted(p.name for p in runs.iterdir()) if runs.exists() else []
    if rc == 0:
        assert left == ["run"], left
    else:  # nothing half-made: no run, no lock; a hidden folder only when it holds a checkpoint to resume
        assert not any(n == "run" or n.endswith(".lock") for n in left), left
        for n in left:
            assert (runs / n / "checkpoints" / "latest.json").exists(), left


@pytest.mark.parametrize(
    "sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
@pytest.mark.parametrize("delay", [0.0, 0.1, 0.4])
def test_a_signal_during_help_is_one_line(tmp_path, sig, code, delay):
    rc, err = _signal_during_start_up(tmp_path, ["--help"], sig, delay)
    assert "Traceback" not in err, err
    assert rc in (code, 0), (rc, err)
    if rc == code:
        assert len(err.strip().splitlines()) == 1 and err.startswith("rnnkit: interrupted by"), err
