"""Issue 9's defects, each as a test that fails on the old behaviour: --overwrite never deletes a folder that is
not an rnnkit run, a diverging training stops with one line and no run, NaN forecasts never score well."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit._errors import RnnkitError
from rnnkit.apps import metrics
from rnnkit.apps.rundir import RunBuilder
from rnnkit.train import Trainer, TrainerConfig
from test_cli import FAST, NO_ARIMA, assert_no_runs, assert_one_line_error, run_cli, write_series


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path):
    mine = tmp_path / "runs" / "notes"
    mine.mkdir(parents=True)
    (mine / "thesis.txt").write_text("years of work")
    with pytest.raises(RnnkitError, match="is not an rnnkit run"):
        RunBuilder(tmp_path / "runs", "notes", overwrite=True)
    assert (mine / "thesis.txt").read_text() == "years of work"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["notes"]  # no temp folder left


def test_overwrite_replaces_a_run_but_not_a_folder_that_took_its_place(tmp_path):
    with RunBuilder(tmp_path, "r") as run:
        run.write_text("a.txt", "first")
    with RunBuilder(tmp_path, "r", overwrite=True) as run:
        run.write_text("a.txt", "second")
    assert (tmp_path / "r" / "a.txt").read_text() == "second"
    builder = RunBuilder(tmp_path, "r", overwrite=True)
    (tmp_path / "r" / "run.json").unlink()  # the run was swapped for something else while we trained
    with pytest.raises(RnnkitError, match="is not an rnnkit run"):
        builder.commit()
    assert (tmp_path / "r" / "a.txt").read_text() == "second"
    builder.abort()


def test_cli_overwrite_keeps_the_users_folder(tmp_path, capsys):
    series = write_series(tmp_path / "s.csv")
    runs = tmp_path / "runs"
    (runs / "mine").mkdir(parents=True)
    (runs / "mine" / "data.csv").write_text("keep me")
    rc, _, err = run_cli(
        capsys,
        "train",
        "timeseries",
        "--data",
        series,
        "--runs-dir",
        runs,
        "--name",
        "mine",
        "--overwrite",
        *FAST,
    )
    assert_one_line_error(rc, err, "is not an rnnkit run")
    assert (runs / "mine" / "data.csv").read_text() == "keep me"


class _Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)

    def loss(self, batch, state):
        return torch.nn.functional.mse_loss(self.lin(batch["x"]), batch["y"])


def _batches(n=4):
    g = torch.Generator().manual_seed(0)
    return [{"x": torch.randn(8, 3, generator=g), "y": torch.randn(8, 1, generator=g)} for _ in range(n)]


def test_a_diverging_training_stops_with_a_clear_error():
    trainer = Trainer(_Linear(), TrainerConfig(epochs=3, lr=1e30, clip_norm=0.0, progress=False))
    with pytest.raises(RnnkitError, match="training diverged"):
        trainer.fit(_batches())


def test_all_updates_skipped_is_divergence_even_below_max_skips():
    model = _Linear()
    with torch.no_grad():
        model.lin.weight.fill_(float("nan"))  # every loss is NaN: every update is skipped
    trainer = Trainer(model, TrainerConfig(epochs=1, max_skips=1000, progress=False))
    with pytest.raises(RnnkitError, match="all 4 updates .* skipped"):
        trainer.fit(_batches())


def test_cli_divergence_leaves_no_run(tmp_path, capsys):
    series = write_series(tmp_path / "s.csv")
    runs = tmp_path / "runs"
    rc, _, err = run_cli(
        capsys,
        "train",
        "timeseries",
        "--data",
        series,
        "--runs-dir",
        runs,
        "--lr",
        "1e30",
        "--clip-norm",
        "0",
        *FAST,
    )
    assert_one_line_error(rc, err, "training diverged", after_progress=True)
    assert_no_runs(runs)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_forecast_never_scores_well(bad):
    y = np.array([1.0, 2.0, 3.0])
    f = np.array([1.0, bad, 3.0])
    assert math.isnan(metrics.smape(y, f))
    assert math.isnan(metrics.mae(y, f))
    assert math.isnan(metrics.mase(y, f, 1.0))
    assert not metrics.mase(y, f, 1.0) < 0.7  # a goal compared with NaN is never met
    assert metrics.smape(y, y) == 0.0


def test_an_interruption_after_the_networks_finished_keeps_them_for_resume(tmp_path):
    """A signal after every network of an ensemble finished (a forecasting run's baselines: no checkpoint is
    left, only the finished copies) keeps the temporary folder so ``--resume`` reads them back; one with
    nothing to continue from is removed."""
    from rnnkit._signals import Interrupted
    from rnnkit.apps.rundir import FINISHED, find_interrupted

    with pytest.raises(Interrupted):
        with RunBuilder(tmp_path, "done") as run:
            (run.path / FINISHED).mkdir()
            (run.path / FINISHED / "member.json").write_text("{}")
            raise Interrupted()
    left = find_interrupted(tmp_path, "done")
    assert len(left) == 1 and left[0].checkpoint is None and left[0].resumable
    with pytest.raises(Interrupted):
        with RunBuilder(tmp_path, "empty"):
            raise Interrupted()
    assert find_interrupted(tmp_path, "empty") == [] and not list(tmp_path.glob(".empty.*"))


def test_runs_written_elsewhere_are_untouched(tmp_path):
    Path(tmp_path / "x").mkdir()
    with RunBuilder(tmp_path, "y") as run:
        run.write_text("f", "1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x", "y"]


# ------------------------------------------------------------------------------------------------------
# Item 12: predict's options anywhere, files reported as what they are, stdin never named as a temp file
# ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory) -> Path:
    from rnnkit.cli import main

    root = tmp_path_factory.mktemp("forecast")
    series = write_series(root / "s.csv", 120)
    rc = main(["train", "timeseries", "--data", str(series), "--runs-dir", str(root / "runs"), "--name", "f",
               "--epochs", "1", "--no-progress", "--window", "6", *NO_ARIMA])  # fmt: skip
    assert rc == 0
    return root / "runs" / "f"


def test_predict_takes_options_before_between_and_after_the_inputs(forecast_run, capsys):
    values = [str(v) for v in np.linspace(10, 12, 14)]  # a season (12, from the monthly dates) and more
    outputs = []
    for argv in (
        ["predict", forecast_run, "--json", *values],
        ["predict", forecast_run, *values[:3], "--json", *values[3:]],
        ["predict", "--json", forecast_run, *values],
        ["predict", forecast_run, *values, "--json"],
    ):
        rc, out, err = run_cli(capsys, *argv)
        assert rc == 0, err
        outputs.append(json.loads(out))
    assert all(o == outputs[0] for o in outputs)
    assert len(outputs[0]["forecast"]) == outputs[0]["horizon"]
    rc, _, err = run_cli(
        capsys, "predict", forecast_run, *values[:8]
    )  # window 6 is not enough: ES needs a season
    assert_one_line_error(rc, err, "at least 12 recent values", "a whole season of 12", "got 8")


def _loop(tmp_path: Path) -> Path:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    return tmp_path / "a"


@pytest.mark.parametrize(
    "make, what",
    [
        (_loop, "symbolic link loop"),
        (lambda t: t, "directory"),
        (lambda t: (t / "gone").symlink_to(t / "nowhere") or t / "gone", "broken symbolic link"),
        (lambda t: t / "missing.csv", "does not exist"),
    ],
)
def test_predict_file_names_what_the_path_is(forecast_run, tmp_path, capsys, make, what):
    path = make(tmp_path)
    rc, _, err = run_cli(capsys, "predict", forecast_run, "--file", path)
    assert_one_line_error(rc, err, what, str(path))


def test_read_inputs_reports_a_loop_a_directory_and_an_unreadable_file(tmp_path, monkeypatch):
    from rnnkit.apps._common import read_inputs

    with pytest.raises(RnnkitError, match="symbolic link loop"):
        read_inputs([], str(_loop(tmp_path)), "texts")
    with pytest.raises(RnnkitError, match="which is a directory"):
        read_inputs([], str(tmp_path), "texts")
    f = tmp_path / "texts.txt"
    f.write_text("good\n")

    def broken(self):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(Path, "read_bytes", broken)
    with pytest.raises(RnnkitError, match=r"cannot read .*texts\.txt.*Input/output error"):
        read_inputs([], str(f), "texts")


def test_piped_csv_without_header_names_stdin_not_a_temp_file(forecast_run, capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("1.5\n2.5\n3.5\n"))
    rc, _, err = run_cli(capsys, "predict", forecast_run)
    assert_one_line_error(rc, err, "stdin", "'load'")
    assert "tmp" not in err


# ------------------------------------------------------------------------------------------------------
# Item 3: evaluate finds the training data by absolute path and refuses a changed file
# ------------------------------------------------------------------------------------------------------
def test_evaluate_uses_the_stored_path_and_refuses_changed_data(tmp_path, capsys, monkeypatch):
    import hashlib

    work = tmp_path / "work"
    work.mkdir()
    write_series(work / "s.csv", 120)
    monkeypatch.chdir(work)
    rc, _, err = run_cli(capsys, "train", "timeseries", "--data", "s.csv", "--runs-dir", "runs", "--name", "f",
                         "--epochs", "1", "--no-progress", "--window", "6", *NO_ARIMA)  # fmt: skip
    assert rc == 0, err
    run = work / "runs" / "f"
    info = json.loads((run / "data.json").read_text())
    assert info["path"] == str((work / "s.csv").resolve())
    assert info["sha256"] == hashlib.sha256((work / "s.csv").read_bytes()).hexdigest()
    assert "data.json" in json.loads((run / "run.json").read_text())["files"]

    rc, out, err = run_cli(capsys, "evaluate", run, "--json")
    assert rc == 0, err
    here = json.loads(out)
    other = tmp_path / "elsewhere"
    other.mkdir()
    write_series(other / "s.csv", 200)  # a different file under the same relative name
    monkeypatch.chdir(other)
    rc, out, err = run_cli(capsys, "evaluate", run, "--json")
    assert rc == 0, err
    assert json.loads(out) == here  # the stored absolute path, not ./s.csv

    lines = (work / "s.csv").read_text().splitlines()
    stamp, value = lines[60].split(",")
    (work / "s.csv").write_text(
        "\n".join([*lines[:60], f"{stamp},{float(value) + 1:.4f}", *lines[61:]]) + "\n"
    )  # one value changed
    rc, _, err = run_cli(capsys, "evaluate", run)
    assert_one_line_error(rc, err, "changed since it was trained", "sha256", "--data")
    rc, out, err = run_cli(capsys, "evaluate", run, "--data", work / "s.csv", "--json")
    assert rc == 0, err  # an explicit file is scored as asked
    (work / "s.csv").unlink()
    rc, _, err = run_cli(capsys, "evaluate", run)
    assert_one_line_error(rc, err, "no longer there", "--data")


def test_every_application_default_data_is_built_in():
    from rnnkit.apps import APP_NAMES, app_config
    from rnnkit.apps._common import BUILTIN_DATA, data_fingerprint

    for app in APP_NAMES:
        assert app_config(app)().data in BUILTIN_DATA
    assert data_fingerprint("co2") is None


def test_generate_length_is_bounded():
    """Issue 9 item 11: an absurd ``--length`` is refused up front instead of running for ever."""
    from rnnkit.apps.textgen.config import GenerateConfig
    from rnnkit.config import config_from_dict

    with pytest.raises(RnnkitError, match=r"length \(--length\): expected a value <= 1000000"):
        config_from_dict(GenerateConfig, {"length": 100_000_000_000})
    assert config_from_dict(GenerateConfig, {"length": 1_000_000}).length == 1_000_000


def test_a_value_beyond_float32_is_named_not_blamed_on_a_constant_column(tmp_path, capsys):
    """Issue 9 item 4."""
    rows = ["date,y"] + [f"2000-{1 + i // 28:02d}-{1 + i % 28:02d},{(i % 7) * 1.5}" for i in range(120)]
    rows[40] = rows[40].split(",")[0] + ",1e39"
    (tmp_path / "s.csv").write_text("\n".join(rows) + "\n")
    rc, _, err = run_cli(
        capsys, "train", "timeseries", "--data", tmp_path / "s.csv", "--runs-dir", tmp_path / "r", *FAST
    )
    assert_one_line_error(rc, err, "line 41", "column 'y'", "float32's range", "'1e39'")
    assert_no_runs(tmp_path / "r")


@pytest.mark.parametrize(
    "labels, message",
    [
        ([f"id{i}" for i in range(60)], "60 distinct values in 60 rows"),
        (["pos", "neg"] * 29 + ["meh", "meh"], "'meh' (2, first in data row 59)"),
        (["positive", "negative"] * 29 + ["postive", "positive"], "t.csv: label column 'label'"),
        (
            ["positive", "negative"] * 29 + ["postive", "positive"],
            "'postive' (1, first in data row 59; 'positive'?)",
        ),
        (["pos"] * 60, "expected at least 2 classes"),
    ],
)
def test_labels_that_cannot_be_learnt_are_refused(tmp_path, capsys, labels, message):
    """Issue 9 item 6: an id column, or a class too small for train/validation/test, is refused up front."""
    rows = ["text,label"] + [f"words of row {i} here,{y}" for i, y in enumerate(labels)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    rc, _, err = run_cli(
        capsys, "train", "sentiment", "--data", tmp_path / "t.csv", "--runs-dir", tmp_path / "r", *FAST
    )
    assert_one_line_error(rc, err, "label column 'label'", message)
    assert_no_runs(tmp_path / "r")
