"""CLI tests through ``rnnkit.cli.main([...])``: train -> predict / generate / evaluate round trips on small user
data in tmp_path, --config files, and every kind of bad input (one line on stderr, exit 2, no run left behind)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnkit.cli import main

# ------------------------------------------------------------------------------------------------------
# Small user data sets
# ------------------------------------------------------------------------------------------------------
GOOD = ["good", "great", "wonderful", "fine", "lovely"]
BAD = ["bad", "awful", "boring", "poor", "dull"]
FILLER = ["the", "movie", "plot", "was", "a", "really", "film", "acting", "quite"]


def write_reviews(path: Path, n: int = 240, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    rows = ["review,sentiment"]
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        words = list(rng.choice(FILLER, 5)) + [rng.choice(GOOD if label == "pos" else BAD)]
        rows.append(f"{' '.join(rng.permutation(words))},{label}")
    path.write_text("\n".join(rows) + "\n")
    return path


def write_series(path: Path, n: int = 300) -> Path:
    t = np.arange(n)
    y = 10 + 0.02 * t + np.sin(2 * np.pi * t / 12) + 0.05 * np.random.default_rng(0).standard_normal(n)
    lines = ["date,load"] + [f"{2000 + i // 12}-{i % 12 + 1:02d}-01,{v:.4f}" for i, v in enumerate(y)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_text(path: Path) -> Path:
    line = "the cat sat on the mat. the dog sat on the log. "
    path.write_text((line * 120).strip() + "\n")
    return path


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc: int, err: str, *fragments: str, after_progress: bool = False) -> None:
    """Exit 2 and one error line; ``after_progress``: progress lines of a run that got going may precede it."""
    assert rc == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    if after_progress:
        lines = lines[-1:]
    assert len(lines) == 1, err
    assert lines[0].startswith("rnnkit: error: "), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], lines[0]


def assert_no_runs(runs: Path) -> None:
    """No run directory and no half-written temporary folder."""
    assert not runs.exists() or list(runs.iterdir()) == [], list(runs.iterdir())


FAST = ["--epochs", "6", "--patience", "0", "--no-progress"]
# a forecaster's baselines without the seasonal ARIMA grid, which training, predict and evaluate refit (tens of
# seconds a call on a monthly series): for tests about something else; ARIMA and the pool have their own tests
NO_ARIMA = ["--baselines", "naive", "seasonal naive", "ets"]


# ------------------------------------------------------------------------------------------------------
# Round trips
# ------------------------------------------------------------------------------------------------------
def test_sentiment_train_predict_evaluate_round_trip(tmp_path, capsys, monkeypatch):
    data = write_reviews(tmp_path / "reviews.csv")
    runs = tmp_path / "runs"
    rc, out, err = run_cli(
        capsys,
        "train",
        "sentiment",
        "--data",
        data,
        "--text-column",
        "review",
        "--label-column",
        "sentiment",
        "--runs-dir",
        runs,
        "--name",
        "rev",
        "--hidden-size",
        "16",
        "--embedding-dim",
        "16",
        "--min-freq",
        "1",
        "--lr",
        "0.01",
        "--pooling",
        "max",
        *FAST,
    )
    assert rc == 0, err
    assert "accuracy" in out and "logistic regression" in out
    run = runs / "rev"
    for f in (
        "model.safetensors",
        "model.json",
        "vocab.json",
        "config.json",
        "config.toml",
        "metrics.json",
        "run.json",
        "curves.png",
        "confusion.png",
        "grad_flow_heatmap.png",
    ):
        assert (run / f).is_file(), f
    assert sorted(p.name for p in runs.iterdir()) == ["rev"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.9 > metrics["untrained"]["accuracy"]
    assert metrics["classes"] == ["neg", "pos"]

    rc, out, err = run_cli(
        capsys, "predict", run, "a really wonderful film", "the acting was awful", "--json"
    )
    assert rc == 0, err
    preds = json.loads(out)
    assert [p["label"] for p in preds] == ["pos", "neg"]
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-3 for p in preds)

    inputs = tmp_path / "inputs.txt"
    inputs.write_text("lovely plot\n\nboring movie\n")
    rc, out, _ = run_cli(capsys, "predict", run, "--file", inputs, "--json")
    assert rc == 0 and [p["label"] for p in json.loads(out)] == ["pos", "neg"]
    monkeypatch.setattr("sys.stdin", io.StringIO("a great film\n"))
    rc, out, _ = run_cli(capsys, "predict", run)
    assert rc == 0 and out.splitlines()[2].startswith("pos")

    rc, out, err = run_cli(capsys, "evaluate", run, "--json")
    assert rc == 0, err
    assert json.loads(out)["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    other = write_reviews(tmp_path / "other.csv", n=40, seed=5)
    rc, out, err = run_cli(capsys, "evaluate", run, "--data", other, "--json")
    assert rc == 0, err
    assert json.loads(out)["count"] == 40 and json.loads(out)["accuracy"] >= 0.8
    # a table with the run's text column is read by that column (its header and labels are not texts)
    rc, out, err = run_cli(capsys, "predict", run, "--file", other, "--json")
    assert rc == 0, err
    column = [line.rsplit(",", 1)[0] for line in other.read_text().splitlines()[1:]]
    rc, out_args, _ = run_cli(capsys, "predict", run, *column, "--json")
    assert json.loads(out) == json.loads(out_args) and len(json.loads(out)) == 40
    # a test file of one class is scored (training needs two; it was refused)
    lines = other.read_text().splitlines()
    label = lines[1].rsplit(",", 1)[1]
    only = [x for x in lines[1:] if x.rsplit(",", 1)[1] == label]
    (tmp_path / "one.csv").write_text("\n".join([lines[0], *only]) + "\n")
    rc, out, err = run_cli(capsys, "evaluate", run, "--data", tmp_path / "one.csv", "--json")
    assert rc == 0, err
    from rnnkit.apps import load_run

    preds = load_run(run).predict([x.rsplit(",", 1)[0].strip('"') for x in only], mixture=False)
    right = sum(p["label"] == label for p in preds) / len(only)
    assert json.loads(out)["count"] == len(only) and json.loads(out)["accuracy"] == pytest.approx(right)
    # a flag that does not apply is one line, not silently ignored
    rc, _, err = run_cli(capsys, "evaluate", run, "--data", other, "--id-column", "sid")
    assert_one_line_error(rc, err, "--id-column applies to global timeseries runs")
    rc, _, err = run_cli(capsys, "evaluate", run, "--classical")
    assert_one_line_error(rc, err, "--classical applies to global timeseries runs", "is a sentiment run")
    rc, _, err = run_cli(capsys, "evaluate", run, "--text-column", "review")
    assert_one_line_error(rc, err, "--text-column names a column of --data, but no --data was given")

    # --config: the run's own config.toml trains the same run again under another name
    rc, out, err = run_cli(
        capsys, "train", "sentiment", "--config", run / "config.toml", "--name", "rev2", "--json"
    )
    assert rc == 0, err
    again = json.loads(out)
    assert again["test"]["accuracy"] == pytest.approx(metrics["test"]["accuracy"])


def test_timeseries_train_predict_round_trip(tmp_path, capsys, monkeypatch):
    data = write_series(tmp_path / "load.csv")
    runs = tmp_path / "runs"
    rc, out, err = run_cli(
        capsys,
        "train",
        "timeseries",
        "--data",
        data,
        "--horizon",
        "6",
        "--season",
        "12",
        "--window",
        "24",
        "--runs-dir",
        runs,
        "--name",
        "load",
        "--hidden-size",
        "16",
        "--epochs",
        "15",
        "--patience",
        "0",
        *NO_ARIMA,  # the pool is the network and ETS (~90 s less)
        "--no-progress",
        "--json",
    )
    assert rc == 0, err
    m = json.loads(out)
    assert m["test"]["mae"] < m["naive"]["mae"] and m["test"]["mae"] < 0.5 * m["untrained"]["mae"]
    assert set(m["comparison"]["baselines"]) == {"naive", "seasonal naive", "ets"}
    run = runs / "load"
    assert (run / "forecast.png").is_file() and (run / "scaler.json").is_file()

    recent = tmp_path / "recent.csv"
    recent.write_text(
        "\n".join(data.read_text().splitlines()[:1] + data.read_text().splitlines()[-30:]) + "\n"
    )
    rc, out, err = run_cli(capsys, "predict", run, "--file", recent, "--json")
    assert rc == 0, err
    fc = json.loads(out)
    assert [f["time"] for f in fc["forecast"]][:2] == ["2025-01-01", "2025-02-01"]
    assert len(fc["forecast"]) == 6 and fc["last"]["time"] == "2024-12-01"
    # the same values as arguments, and as CSV on stdin
    values = [line.split(",")[1] for line in recent.read_text().splitlines()[1:]]
    rc, out, _ = run_cli(capsys, "predict", run, *values, "--json")
    assert rc == 0
    # the file and the arguments are both read as float64, so the same values give the same forecast
    assert [f["value"] for f in json.loads(out)["forecast"]] == pytest.approx(
        [f["value"] for f in fc["forecast"]], rel=1e-12
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(recent.read_text()))
    rc, out, _ = run_cli(capsys, "predict", run)
    assert rc == 0 and "2025-06-01" in out

    rc, out, err = run_cli(capsys, "evaluate", run, "--json")
    assert rc == 0, err
    assert json.loads(out)["mae"] == pytest.approx(m["test"]["mae"])

    rc, _, err = run_cli(capsys, "predict", run, "1", "2", "3")
    assert_one_line_error(rc, err, "at least 24 recent values to forecast from (window = 24)", "got 3")
    rc, _, err = run_cli(capsys, "predict", run, *values[:-1], "oops")
    assert_one_line_error(rc, err, "expected numbers", "'oops'")
    rc, _, err = run_cli(capsys, "predict", run, recent)  # a CSV given where values go: say how to pass it
    assert_one_line_error(rc, err, "expected numbers", "--file")
    # a time column of step numbers 0, 1, ... is still a time column: the forecast continues it
    steps = tmp_path / "steps.csv"
    steps.write_text("time,load\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    rc, out, err = run_cli(capsys, "predict", run, "--file", steps, "--json")
    assert rc == 0, err
    fc_steps = json.loads(out)
    assert fc_steps["last"]["time"] == str(len(values) - 1)
    assert [f["time"] for f in fc_steps["forecast"]][:2] == [str(len(values)), str(len(values) + 1)]
    # two months left out of the file read like two empty cells, and the forecast says what it filled
    lines = recent.read_text().splitlines()
    (tmp_path / "gap.csv").write_text("\n".join(lines[:10] + lines[12:]) + "\n")
    (tmp_path / "blank.csv").write_text(
        "\n".join(lines[:10] + [x.split(",")[0] + "," for x in lines[10:12]] + lines[12:]) + "\n"
    )
    rc, out, err = run_cli(capsys, "predict", run, "--file", tmp_path / "gap.csv", "--json")
    assert rc == 0, err
    gap = json.loads(out)
    rc, out, _ = run_cli(capsys, "predict", run, "--file", tmp_path / "blank.csv", "--json")
    assert gap["forecast"] == json.loads(out)["forecast"]
    assert gap["filled"] == {"cells": 2, "rows_added": [x.split(",")[0] for x in lines[10:12]]}
    rc, out, _ = run_cli(capsys, "predict", run, "--file", tmp_path / "gap.csv")
    assert (
        "note: 2 missing value(s) filled by linear interpolation, 2 of them in rows the file left out" in out
    )
    # the series is positive, so the run keeps its forecasts >= 0; a negative recent value is refused
    assert json.loads((run / "scaler.json").read_text())["nonnegative"]
    rc, _, err = run_cli(capsys, "predict", run, *values[:-1], "-5")
    assert_one_line_error(rc, err, "expected non-negative values of 'load'", "got -5")
    rc, _, err = run_cli(capsys, "generate", run, "x")
    assert_one_line_error(rc, err, "is a 'timeseries' run", "textgen")


def test_textgen_train_generate_round_trip(tmp_path, capsys, monkeypatch):
    data = write_text(tmp_path / "cats.txt")
    runs = tmp_path / "runs"
    rc, out, err = run_cli(
        capsys,
        "train",
        "textgen",
        "--data",
        data,
        "--runs-dir",
        runs,
        "--name",
        "cats",
        "--hidden-size",
        "48",
        "--embedding-dim",
        "16",
        "--batch-size",
        "8",
        "--k1",
        "20",
        "--k2",
        "30",
        "--lr",
        "0.01",
        "--max-steps",
        "150",
        "--epochs",
        "50",
        "--eval-every",
        "50",
        "--eval-tokens",
        "0",
        "--no-baselines",
        "--no-progress",
        "--json",
    )
    assert rc == 0, err
    m = json.loads(out)
    assert m["test"]["bpc"] < 1.5 < m["untrained"]["bpc"]
    run = runs / "cats"
    assert (run / "bpc_by_class.png").is_file() and (run / "samples.txt").is_file()

    rc, out, err = run_cli(
        capsys, "generate", run, "the cat", "--length", "30", "--temperature", "0", "--json"
    )
    assert rc == 0, err
    result = json.loads(out)["results"][0]
    assert result["prompt"] == "the cat" and len(result["samples"][0]) == 30
    assert " sat on the " in result["samples"][0]  # greedy decoding follows the training text

    args = [
        "generate",
        run,
        "the dog",
        "--length",
        "40",
        "--top-k",
        "5",
        "--top-p",
        "0.9",
        "--temperature",
        "0.8",
        "--num-samples",
        "2",
        "--seed",
        "1",
    ]
    rc, first, _ = run_cli(capsys, *args)
    rc2, second, _ = run_cli(capsys, *args)
    assert rc == rc2 == 0 and first == second and first.startswith("the dog")
    assert first.count("----") == 1

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("the mat\nthe log\n")
    rc, out, _ = run_cli(capsys, "generate", run, "--file", prompts, "--length", "10", "--json")
    assert rc == 0 and [r["prompt"] for r in json.loads(out)["results"]] == ["the mat", "the log"]

    monkeypatch.setattr("sys.stdin", io.StringIO("the log\n"))
    rc, out, _ = run_cli(capsys, "generate", run, "--length", "12", "--temperature", "0")
    assert rc == 0 and out.startswith("the log")

    rc, out, _ = run_cli(capsys, "predict", run, "the cat sat on the mat.", "zq xv kj wq", "--json")
    scores = [r["bits_per_token"] for r in json.loads(out)]
    assert rc == 0 and scores[0] < 1.0 < scores[1]

    rc, _, err = run_cli(capsys, "generate", run, "x", "--top-p", "1.5")
    assert_one_line_error(rc, err, "top_p", "<= 1.0")
    # a music run's flags are refused in one line, and the seed is bounded (it overflowed torch's seed)
    rc, _, err = run_cli(capsys, "generate", run, "x", "--meter", "6/8")
    assert_one_line_error(rc, err, "--meter: for music runs", "text-generation run")
    rc, _, err = run_cli(capsys, "generate", run, "x", "--seed", str(10**16))
    assert_one_line_error(rc, err, "seed (--seed): expected a value <= 2147483647")


@pytest.mark.slow
def test_demo_quick_end_to_end(tmp_path, capsys):
    rc, out, err = run_cli(capsys, "demo", "--quick", "--runs-dir", tmp_path, "--no-progress")
    assert rc == 0, err
    assert "Results on held-out data" in out
    for task in (
        "sentiment (polarity)",
        "CO2 weekly, 52-step",
        "sunspots yearly, 5-step",
        "text generation (Austen)",
        "music (folk tunes)",
        "handwriting (digits)",
    ):
        assert task in out
    assert "Generated text" in out and "Total wall time" in out
    # every application with a demo module trains once: one run per stage, nothing else in the folder
    from rnnkit.commands.demo import demo_modules, demo_stages

    keys = [
        s.key for st in demo_stages(demo_modules(), str(tmp_path), "quick", 1, False).values() for s in st
    ]
    assert {"sentiment", "co2", "sunspots", "austen", "translate"} <= set(keys)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"demo-{k}" for k in keys)


def test_demo_threads_are_each_apps_unless_given(tmp_path):
    """Without --threads the text-generation stage takes its DEMO_THREADS (up to 2) and every other stage
    one thread; --threads N sets every stage."""
    from rnnkit.apps.textgen.demo import DEMO_THREADS
    from rnnkit.commands.demo import demo_modules, demo_stages

    mods = demo_modules()
    own = {
        app: {s.config.threads for s in st}
        for app, st in demo_stages(mods, str(tmp_path), "demo", None, False).items()
    }
    assert own.pop("textgen") == {DEMO_THREADS} and 1 <= DEMO_THREADS <= 2
    assert set().union(*own.values()) == {1}
    given = demo_stages(mods, str(tmp_path), "demo", 3, False)
    assert {s.config.threads for st in given.values() for s in st} == {3}


def test_demo_one_app_and_unknown_app(tmp_path, capsys):
    from rnnkit.commands.demo import demo_modules, demo_stages

    mods = demo_modules(["timeseries"])
    assert list(mods) == ["timeseries"]
    stages = demo_stages(mods, str(tmp_path), "full", 1, False)["timeseries"]
    demo = demo_stages(mods, str(tmp_path), "demo", 1, False)["timeseries"]
    assert [s.key for s in stages] == ["co2", "sunspots"]
    # the fuller scale of `rnnkit demo APP` trains longer than make demo's stage
    assert all(f.config.time_budget > d.config.time_budget for f, d in zip(stages, demo))
    rc, _, err = run_cli(capsys, "demo", "nosuchapp", "--runs-dir", tmp_path)
    assert_one_line_error(rc, err, "unknown application 'nosuchapp'")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------------
# Bad input: one line on stderr, exit 2, nothing half-written
# ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "app, content, extra, fragments",
    [
        ("sentiment", None, [], ["does not exist"]),  # missing file
        (
            "sentiment",
            "review,sentiment\nnice,pos\nbad,neg\n",
            ["--text-column", "text"],
            ["text column 'text'"],
        ),
        ("sentiment", "review,sentiment\nnice,pos\nfine,pos\n", [], ["at least 2 classes", "'pos'"]),
        ("timeseries", "date,load\n", [], ["at least 2 data rows", "got 0"]),  # empty (header only)
        ("timeseries", "", [], ["empty file"]),
        ("timeseries", "date,load\n2020-01-01,3\n", [], ["at least 2 data rows", "got 1"]),  # one row
        (
            "timeseries",
            "date,load\n2020-01-01,3\n2020-01-02,abc\n2020-01-03,4\n",
            [],
            ["expected a number", "'abc'"],
        ),
        (
            "timeseries",
            "date,load\n" + "".join(f"2020-01-{i:02d},{i * 7 % 11}\n" for i in range(1, 21)),
            ["--horizon", "40"],
            ["--horizon 40 is longer than the series (20 values)"],
        ),
        (
            "timeseries",
            "date,load\n" + "".join(f"2020-01-{i:02d},{i * 7 % 11}\n" for i in range(1, 31)),
            ["--horizon", "5"],
            ["longer than the test part"],
        ),
        (
            "timeseries",
            "date,load\n2020-01-01,3\n2020-01-02,4\n",
            ["--value-columns", "power"],
            ["value column 'power'"],
        ),
        ("textgen", b"caf\xe9 au lait\n" * 20, [], ["expected UTF-8", "byte 0xe9"]),  # undecodable text
    ],
)
def test_bad_data_gives_one_line_and_no_run(tmp_path, capsys, app, content, extra, fragments):
    runs = tmp_path / "runs"
    data = tmp_path / ("data.txt" if app == "textgen" else "data.csv")
    if content is not None:
        data.write_bytes(content if isinstance(content, bytes) else content.encode())
    args = ["train", app, "--data", data, "--runs-dir", runs, *extra, "--no-progress"]
    if app == "sentiment":
        args += (
            ["--text-column", "review", "--label-column", "sentiment"] if "--text-column" not in extra else []
        )
    rc, _, err = run_cli(capsys, *args)
    assert_one_line_error(rc, err, *fragments)
    assert_no_runs(runs)


@pytest.mark.parametrize(
    "flags, fragments",
    [
        (["--hidden-size", "0"], ["--hidden-size", ">= 1, got 0"]),
        (["--hidden-size", "abc"], ["--hidden-size", "invalid int value: 'abc'"]),
        (["--lr", "nan"], ["--lr", "invalid float value: 'nan'"]),
        (["--cell", "lstmm"], ["--cell", "expected one of", "'lstmm'"]),
        (["--dropout", "1.5"], ["--dropout", "< 1.0, got 1.5"]),
        (["--name", "../x"], ["run name"]),
        (["--no-such-flag"], ["unrecognized arguments: --no-such-flag"]),
    ],
)
def test_bad_flag_values(tmp_path, capsys, flags, fragments):
    runs = tmp_path / "runs"
    rc, _, err = run_cli(capsys, "train", "sentiment", "--runs-dir", runs, *flags)
    assert_one_line_error(rc, err, *fragments)
    assert_no_runs(runs)


def test_bad_config_files(tmp_path, capsys):
    runs = tmp_path / "runs"
    cases = {
        "hidden_size = 8\nhiden_layers = 2\n": ["unknown key 'hiden_layers'"],
        'hidden_size = "eight"\n': ["hidden_size (--hidden-size): expected an integer, got 'eight'"],
        'app = "textgen"\n': ["the file is for app 'textgen'"],
        "hidden_size = [\n": ["invalid TOML"],
    }
    for i, (text, fragments) in enumerate(cases.items()):
        path = tmp_path / f"c{i}.toml"
        path.write_text(text)
        rc, _, err = run_cli(capsys, "train", "sentiment", "--config", path, "--runs-dir", runs)
        assert_one_line_error(rc, err, *fragments)
    rc, _, err = run_cli(
        capsys, "train", "sentiment", "--config", tmp_path / "missing.toml", "--runs-dir", runs
    )
    assert_one_line_error(rc, err, "missing.toml", "does not exist")
    assert_no_runs(runs)


@pytest.fixture(scope="module")
def small_run_template(tmp_path_factory) -> Path:
    """One tiny trained sentiment run, copied by the tests that damage or replace it."""
    root = tmp_path_factory.mktemp("template")
    data = write_reviews(root / "reviews.csv", n=60)
    rc = main(["train", "sentiment", "--data", str(data), "--text-column", "review", "--label-column", "sentiment",
               "--runs-dir", str(root / "runs"), "--name", "small", "--hidden-size", "8", "--embedding-dim", "8",
               "--epochs", "1", "--no-progress"])  # fmt: skip
    assert rc == 0
    return root


def _small_run(tmp_path: Path, template: Path) -> Path:
    shutil.copy(template / "reviews.csv", tmp_path / "reviews.csv")
    shutil.copytree(template / "runs", tmp_path / "runs")
    return tmp_path / "runs" / "small"


def test_existing_run_is_refused_unless_overwrite(tmp_path, capsys, small_run_template):
    run = _small_run(tmp_path, small_run_template)
    before = (run / "model.safetensors").read_bytes()
    (run / "marker").write_text("old")
    args = [
        "train",
        "sentiment",
        "--data",
        tmp_path / "reviews.csv",
        "--text-column",
        "review",
        "--label-column",
        "sentiment",
        "--runs-dir",
        run.parent,
        "--name",
        "small",
        "--hidden-size",
        "8",
        "--embedding-dim",
        "8",
        "--epochs",
        "1",
        "--no-progress",
    ]
    rc, _, err = run_cli(capsys, *args)
    assert_one_line_error(rc, err, "already exists", "--overwrite")
    assert (run / "marker").exists() and (run / "model.safetensors").read_bytes() == before
    # a failing --overwrite keeps the old run; a successful one replaces it whole
    rc, _, err = run_cli(capsys, *args, "--overwrite", "--text-column", "nope")
    assert_one_line_error(rc, err, "text column 'nope'")
    assert (run / "marker").exists()
    rc, _, err = run_cli(capsys, *args, "--overwrite", "--seed", "1")
    assert rc == 0, err
    assert not (run / "marker").exists() and (run / "model.safetensors").read_bytes() != before
    assert sorted(p.name for p in run.parent.iterdir()) == ["small"]


def test_failure_during_training_leaves_no_run(tmp_path, capsys, monkeypatch):
    import rnnkit.apps.plots as plots
    from rnnkit import RnnkitError

    def broken(*args, **kwargs):
        raise RnnkitError("disk on fire")

    monkeypatch.setattr(plots, "plot_confusion", broken)  # after training, while the run is being written
    data = write_reviews(tmp_path / "reviews.csv", n=60)
    runs = tmp_path / "runs"
    rc, _, err = run_cli(
        capsys,
        "train",
        "sentiment",
        "--data",
        data,
        "--text-column",
        "review",
        "--label-column",
        "sentiment",
        "--runs-dir",
        runs,
        "--hidden-size",
        "8",
        "--embedding-dim",
        "8",
        "--epochs",
        "1",
        "--no-progress",
    )
    assert_one_line_error(rc, err, "disk on fire", after_progress=True)
    assert_no_runs(runs)


@pytest.mark.parametrize(
    "damage, fragments",
    [
        (
            lambda run: (run / "model.safetensors").write_bytes(
                (run / "model.safetensors").read_bytes()[:100]
            ),
            ["cannot load the saved model", "corrupted"],
        ),
        (lambda run: (run / "model.json").write_text("{not json"), ["cannot load the saved model"]),
        (lambda run: (run / "vocab.json").unlink(), ["incomplete", "vocab.json missing"]),
        (
            lambda run: (run / "vocab.json").write_text('{"format": "rnnkit.vocabulary"}'),
            ["damaged vocabulary"],
        ),
        (lambda run: (run / "run.json").write_text("[]"), ["not an rnnkit run manifest"]),
        (lambda run: (run / "config.json").write_text('{"hidden_size": "x"}'), ["damaged", "hidden_size"]),
        (lambda run: shutil.rmtree(run), ["does not exist"]),
    ],
)
def test_damaged_saved_run(tmp_path, capsys, damage, fragments, small_run_template):
    run = _small_run(tmp_path, small_run_template)
    damage(run)
    rc, _, err = run_cli(capsys, "predict", run, "a good film")
    assert_one_line_error(rc, err, *fragments)


def test_predict_needs_input_and_a_run(tmp_path, capsys, monkeypatch, small_run_template):
    run = _small_run(tmp_path, small_run_template)
    monkeypatch.setattr("sys.stdin", io.StringIO("   \n"))
    rc, _, err = run_cli(capsys, "predict", run)
    assert_one_line_error(rc, err, "the input is empty")
    rc, _, err = run_cli(capsys, "predict", run, "--file", tmp_path / "nope.txt")
    assert_one_line_error(rc, err, "--file", "nope.txt")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"tr\xe8s bien\n")
    rc, _, err = run_cli(capsys, "predict", run, "--file", bad)
    assert_one_line_error(rc, err, "expected UTF-8")
    rc, _, err = run_cli(capsys, "predict", tmp_path / "reviews.csv", "x")
    assert_one_line_error(rc, err, "expected a run directory", "is a file")
    # a reader that goes away (`| head`): no error line, the shell's status for a closed pipe
    import subprocess

    many = tmp_path / "many.txt"
    many.write_text("a fine film\n" * 4000)  # more than a pipe holds
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnkit", "predict", str(run), "--file", str(many)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout.readline().split()[0] == b"label"
    proc.stdout.close()
    assert proc.stderr.read() == b"" and proc.wait(timeout=120) == 141
    # another application's flag is refused in one line, not ignored
    for flag in (["--cut"], ["--lexicon"], ["--beam", "3"], ["--next", "2"]):
        rc, _, err = run_cli(capsys, "predict", run, "a fine film", *flag)
        assert_one_line_error(rc, err, f"{flag[0]}: a sentiment run does not take it")


def test_the_command_list_and_a_mistyped_command_need_no_torch():
    """``rnnkit --help`` lists the commands and ``rnnkit trian`` says what it expected without loading torch
    (a command's own flags can need it: ``train`` reads every app's settings); a named command still gets
    every flag."""
    code = (
        "import sys\n"
        "from rnnkit.cli import main\n"
        "codes = [main(['--help']), main(['trian'])]\n"
        "assert codes == [0, 2], codes\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "train" in done.stdout and "invalid choice: 'trian'" in done.stderr
    from rnnkit.cli import build_parser

    args = build_parser(["train", "timeseries", "--horizon", "3"]).parse_args(
        ["train", "timeseries", "--horizon", "3"]
    )
    assert args.app == "timeseries" and args.horizon == 3
