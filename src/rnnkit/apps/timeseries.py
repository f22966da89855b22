"""Time-series forecasting: a recurrent network reads ``window`` past steps and forecasts ``horizon`` steps.

Data: weekly Mauna Loa CO2 (``data="co2"``), yearly sunspots (``"sunspots"``) or a user CSV (one time column,
one or more value columns; missing cells interpolated). Inputs may be multivariate (every value column);
one ``target`` column is forecast.

Structures:

* ``many-to-one`` — a :class:`~rnnkit.models.SequenceRegressor` reads the window and outputs the ``horizon``
  next values from its last step;
* ``many-to-many`` — a :class:`~rnnkit.models.SequenceTagger` outputs the ``horizon`` next values at *every*
  step and is trained on all of them; forecasts use the last step.

Normalisation ``level`` (default): the model sees values relative to a reference value of the window, divided
by the typical ``horizon``-step change of the training part; it forecasts changes from the latest value. The
reference is the window's last value for many-to-one and its first value for many-to-many (so no step sees
the future). ``standard``: z-scores with the training part's mean and standard deviation.

Evaluation: the series is cut in time into train / validation / test. Forecasts start at every ``stride``-th
origin of the test part whose whole horizon lies in it (rolling origin; the inputs are the actual values
before the origin); MAE, sMAPE and MASE are averaged over all origins and horizon steps and compared with the
naive (last value) and seasonal naive (same step one season earlier) forecasts at the same origins.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit._errors import RnnkitError
from rnnkit.apps import plots
from rnnkit.apps._common import (
    EpochBatches,
    TimeBudget,
    build_trainer,
    finish_training,
    per_epoch_generator,
    save_run_files,
    setup_torch,
    training_summary,
)
from rnnkit.apps.base import ResultRow, TrainResult, load_run_model, open_app_run
from rnnkit.apps.baselines import naive_forecast, seasonal_naive_forecast
from rnnkit.apps.metrics import mae, mase_scale, smape
from rnnkit.apps.rundir import RunBuilder, read_json
from rnnkit.config import TimeSeriesConfig
from rnnkit.datasets import TimeSeries, load_co2, load_sunspots, read_time_series_csv

__all__ = ["Forecaster", "load", "load_series", "resolve", "train"]

APP = "timeseries"
PRESETS = {
    # data: (horizon, season, window, label)
    "co2": (52, 52, 104, "CO2 weekly"),
    "sunspots": (5, 11, 33, "sunspots yearly"),
}


# ------------------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------------------
def load_series(cfg: TimeSeriesConfig) -> TimeSeries:
    """The configured series (built-in or a user CSV), restricted to ``value_columns`` when given."""
    if cfg.data == "co2":
        ts = load_co2()
    elif cfg.data == "sunspots":
        ts = load_sunspots()
    else:
        return read_time_series_csv(cfg.data, cfg.time_column, cfg.value_columns or None)
    if cfg.value_columns:
        unknown = [c for c in cfg.value_columns if c not in ts.columns]
        if unknown:
            raise RnnkitError(f"{cfg.data}: expected value columns from {ts.columns}, got unknown {unknown}")
        idx = [ts.columns.index(c) for c in cfg.value_columns]
        ts = TimeSeries(ts.times, ts.values[:, idx], list(cfg.value_columns), ts.missing[:, idx])
    return ts


def resolve(cfg: TimeSeriesConfig, ts: TimeSeries) -> TimeSeriesConfig:
    """The config with the automatic fields (target, horizon, season, window) filled in and checked."""
    horizon, season, window, _ = PRESETS.get(cfg.data, (1, 1, None, ""))
    horizon = cfg.horizon or horizon
    season = cfg.season or season
    window = cfg.window or window or max(2 * season, 2 * horizon, 12)
    target = cfg.target or ts.columns[0]
    if target not in ts.columns:
        raise RnnkitError(f"--target: expected one of the value columns {ts.columns}, got {target!r}")
    n = len(ts)
    if horizon >= n:
        raise RnnkitError(f"--horizon {horizon} is longer than the series ({n} values)")
    out = replace(
        cfg, horizon=horizon, season=season, window=window, target=target, value_columns=list(ts.columns)
    )
    n_tr, n_val, n_test = part_sizes(out, n)
    if n_test < horizon:
        raise RnnkitError(
            f"--horizon {horizon} is longer than the test part ({n_test} of {n} values with "
            f"test_fraction {cfg.test_fraction}); lower --horizon or raise --test-fraction"
        )
    if 0 < n_val < horizon:
        raise RnnkitError(
            f"--horizon {horizon} is longer than the validation part ({n_val} of {n} values); lower --horizon, "
            "raise --val-fraction, or set it to 0"
        )
    if n_tr - window - horizon + 1 < 1:
        raise RnnkitError(
            f"the series is too short: {n} values leave {n_tr} for training, fewer than window {window} + "
            f"horizon {horizon}; lower --window or --horizon"
        )
    if n_tr <= season:
        raise RnnkitError(f"--season {season} is not shorter than the training part ({n_tr} values)")
    return out


def part_sizes(cfg: TimeSeriesConfig, n: int) -> tuple[int, int, int]:
    n_test = round(n * cfg.test_fraction)
    n_val = round(n * cfg.val_fraction)
    return n - n_val - n_test, n_val, n_test


class Scaler:
    """The normalisation of inputs and targets (see the module docstring); saved as ``scaler.json``."""

    def __init__(self, mode: str, structure: str, target_index: int, center, scale):
        self.mode, self.structure, self.t = mode, structure, target_index
        self.center = np.asarray(center, dtype=np.float64)  # (C,) means (standard) or zeros (level)
        self.scale = np.asarray(scale, dtype=np.float64)  # (C,)

    @classmethod
    def fit(cls, train: np.ndarray, cfg: TimeSeriesConfig, target_index: int) -> Scaler:
        x = np.asarray(train, dtype=np.float64)
        if cfg.normalize == "standard":
            center, scale = x.mean(0), x.std(0)
        else:
            h = min(cfg.horizon, len(x) - 1)
            center, scale = np.zeros(x.shape[1]), (x[h:] - x[:-h]).std(0)
            scale = np.where(scale > 0, scale, x.std(0))
        if not np.all(scale > 0):
            bad = int(np.argmin(scale))
            raise RnnkitError(
                f"column {cfg.value_columns[bad]!r} is constant in the training part; cannot scale it"
            )
        return cls(cfg.normalize, cfg.structure, target_index, center, scale)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "structure": self.structure,
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
        }

    def reference(self, windows: np.ndarray) -> np.ndarray:
        """(n, C) values subtracted from each window's inputs."""
        if self.mode == "standard":
            return np.broadcast_to(self.center, (len(windows), len(self.center)))
        return windows[:, 0] if self.structure == "many-to-many" else windows[:, -1]

    def inputs(self, windows: np.ndarray) -> torch.Tensor:
        """(n, W, C) raw windows -> normalised float32 tensor."""
        ref = self.reference(windows)[:, None, :]
        return torch.tensor((windows - ref) / self.scale, dtype=torch.float32)

    def target_base(self, windows: np.ndarray) -> np.ndarray:
        """(n, W) per-step reference of the target: the current value (level) or the mean (standard)."""
        if self.mode == "standard":
            return np.full(windows.shape[:2], self.center[self.t])
        return windows[:, :, self.t]

    def targets(self, future: np.ndarray, base: np.ndarray) -> torch.Tensor:
        return torch.tensor((future - base[..., None]) / self.scale[self.t], dtype=torch.float32)

    def untarget(self, out: np.ndarray, base: np.ndarray) -> np.ndarray:
        return out * self.scale[self.t] + base[..., None]


def windows_at(values: np.ndarray, origins, window: int) -> np.ndarray:
    """(n, W, C): the ``window`` values before each origin."""
    return np.stack([values[o - window : o] for o in origins])


def futures_at(series: np.ndarray, origins, horizon: int) -> np.ndarray:
    """(n, H): the target values from each origin on."""
    return np.stack([series[o : o + horizon] for o in origins])


def make_batches(values, target, origins, cfg, scaler, all_steps: bool, batch_size: int, order=None):
    """Batches ``{"inputs" (B, W, C), "targets"}``: (B, H) for many-to-one, (B, W, H) for all steps."""
    origins = np.asarray(origins)
    if order is not None:
        origins = origins[np.asarray(order)]
    out = []
    for s in range(0, len(origins), batch_size):
        o = origins[s : s + batch_size]
        w = windows_at(values, o, cfg.window)
        base = scaler.target_base(w)
        if all_steps:
            # step t of the window (series index o - W + t) forecasts the H values after it
            fut = np.stack(
                [[target[p + 1 : p + 1 + cfg.horizon] for p in range(oo - cfg.window, oo)] for oo in o]
            )
            y = scaler.targets(fut, base)
        else:
            y = scaler.targets(futures_at(target, o, cfg.horizon), base[:, -1])
        out.append({"inputs": scaler.inputs(w), "targets": y})
    return out


def build_model(cfg: TimeSeriesConfig, channels: int):
    from rnnkit.models import EncoderConfig, RegressorConfig, SequenceRegressor, SequenceTagger, TaggerConfig

    encoder = EncoderConfig(
        cell=cfg.cell,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
    )
    if cfg.structure == "many-to-many":
        return SequenceTagger(
            TaggerConfig(
                task="regression",
                num_outputs=cfg.horizon,
                input_size=channels,
                encoder=encoder,
                dropout=cfg.dropout,
            )
        )
    return SequenceRegressor(
        RegressorConfig(
            output_size=cfg.horizon, input_size=channels, encoder=encoder, pooling="last", dropout=cfg.dropout
        )
    )


@torch.no_grad()
def forecast_windows(model, scaler: Scaler, windows: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """(n, W, C) raw windows -> (n, H) forecasts in the data's units."""
    model.eval()
    outs = []
    for s in range(0, len(windows), batch_size):
        w = windows[s : s + batch_size]
        out = model(scaler.inputs(w))
        if isinstance(out, tuple):  # the tagger: (outputs (B, W, H), state) -> the last step
            out = out[0][:, -1]
        outs.append(scaler.untarget(out.numpy().astype(np.float64), scaler.target_base(w)[:, -1]))
    return np.concatenate(outs, 0)


def score(actual: np.ndarray, forecast: np.ndarray, scale: float) -> dict[str, float]:
    return {
        "mae": mae(actual, forecast),
        "smape": smape(actual, forecast),
        "mase": mae(actual, forecast) / scale,
    }


def evaluate_origins(model, scaler, values, target, origins, cfg, scale) -> dict[str, Any]:
    """Scores of the model and both baselines at ``origins`` (all horizon steps)."""
    w = windows_at(values, origins, cfg.window)
    actual = futures_at(target, origins, cfg.horizon)
    fc = forecast_windows(model, scaler, w)
    naive = np.stack([naive_forecast(target[:o], cfg.horizon) for o in origins])
    snaive = np.stack([seasonal_naive_forecast(target[:o], cfg.horizon, cfg.season) for o in origins])
    return {
        "origins": len(origins),
        "model": score(actual, fc, scale),
        "naive": score(actual, naive, scale),
        "seasonal_naive": score(actual, snaive, scale),
        "mae_by_step": np.abs(actual - fc).mean(0).tolist(),
        "forecasts": fc,
        "baselines": {"naive": naive, "seasonal naive": snaive},
    }


def goal_of(cfg: TimeSeriesConfig) -> tuple[str, str]:
    """``(metric, goal text)`` for the results table."""
    if cfg.data == "co2":
        return "MASE", "< 0.7"
    return "MAE", "< naive" if cfg.season == 1 else "< both baselines"


# ------------------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------------------
def train(cfg: TimeSeriesConfig, overwrite: bool = False, say=print) -> TrainResult:
    """Train and evaluate a forecaster and the baselines; write the run ``cfg.runs_dir/cfg.name``."""
    from rnnkit.train import seed_everything

    t_start = time.perf_counter()
    name = cfg.name or (cfg.data if cfg.data in PRESETS else APP)
    setup_torch(cfg.threads)
    with RunBuilder(cfg.runs_dir, name, overwrite) as run:
        ts = load_series(cfg)
        cfg = resolve(cfg, ts)
        n = len(ts)
        n_tr, n_val, n_test = part_sizes(cfg, n)
        values = ts.values.astype(np.float64)
        t_idx = ts.columns.index(cfg.target)
        target = values[:, t_idx]
        scaler = Scaler.fit(values[:n_tr], cfg, t_idx)
        scale = mase_scale(target[:n_tr], cfg.season)
        all_steps = cfg.structure == "many-to-many"
        train_origins = np.arange(
            cfg.window, n_tr - cfg.horizon + 1, max(1, cfg.window // 4) if all_steps else 1
        )
        val_origins = np.arange(n_tr, n_tr + n_val - cfg.horizon + 1, cfg.stride)
        test_origins = np.arange(n_tr + n_val, n - cfg.horizon + 1, cfg.stride)
        say(
            f"timeseries: {cfg.data}: {n} steps x {len(ts.columns)} column(s) {ts.columns}, target {cfg.target!r}; "
            f"split {n_tr}/{n_val}/{n_test}; window {cfg.window}, horizon {cfg.horizon}, season {cfg.season}; "
            f"{len(train_origins)} training windows, {len(test_origins)} test origins"
        )
        seed_everything(cfg.seed)
        model = build_model(cfg, len(ts.columns))
        untrained = evaluate_origins(model, scaler, values, target, test_origins, cfg, scale)["model"]

        budget = TimeBudget(cfg.time_budget)

        def epoch_batches(epoch: int):
            order = torch.randperm(len(train_origins), generator=per_epoch_generator(cfg.seed, epoch)).numpy()
            return make_batches(values, target, train_origins, cfg, scaler, all_steps, cfg.batch_size, order)

        val = (
            make_batches(values, target, val_origins, cfg, scaler, all_steps, 512)
            if len(val_origins)
            else None
        )
        steps_per_epoch = -(-len(train_origins) // cfg.batch_size)
        train_batches = EpochBatches(epoch_batches, steps_per_epoch, budget)
        trainer = build_trainer(
            model,
            cfg,
            run.path,
            monitor="val_mae",
            mode="min",
            grad_monitor_every=max(1, steps_per_epoch * max(cfg.epochs, 1) // 12),
        )
        budget.trainer = trainer
        t_train = time.perf_counter()
        probe = make_batches(values, target, train_origins[:32], cfg, scaler, all_steps, 32)[0]
        history = trainer.fit(train_batches, val, probe_batch=probe)
        finish_training(trainer, run.path)
        train_seconds = time.perf_counter() - t_train

        test = evaluate_origins(model, scaler, values, target, test_origins, cfg, scale)
        seconds = time.perf_counter() - t_start
        metric, goal = goal_of(cfg)
        m, nv, sn = test["model"], test["naive"], test["seasonal_naive"]
        met = _goal_met(cfg, m, nv, sn)
        metrics: dict[str, Any] = {
            "app": APP,
            "data": cfg.data,
            "columns": ts.columns,
            "target": cfg.target,
            "structure": cfg.structure,
            "window": cfg.window,
            "horizon": cfg.horizon,
            "season": cfg.season,
            "split": {"train": n_tr, "val": n_val, "test": n_test},
            "test_origins": len(test_origins),
            "mase_scale": scale,
            "test": m,
            "naive": nv,
            "seasonal_naive": sn,
            "untrained": untrained,
            "mae_by_step": test["mae_by_step"],
            "goal": f"{metric} {goal}",
            "goal_met": met,
            "epochs_run": len(history),
            **training_summary(model, budget, train_seconds, seconds),
            "history": history,
        }
        save_run_files(run, model, cfg, APP, metrics)
        run.write_json(
            "scaler.json",
            {
                **scaler.to_dict(),
                "columns": ts.columns,
                "target": cfg.target,
                "window": cfg.window,
                "horizon": cfg.horizon,
                "times": ts.times[-3:],
            },
        )
        label = PRESETS.get(cfg.data, (0, 0, 0, Path(cfg.data).name))[3]
        written = [
            plots.plot_curves(
                history,
                run.file("curves.png"),
                "epoch",
                f"{label}: training curves (normalised units)",
                left=["train_loss", "val_loss"],
                right=["train_mae", "val_mae"],
                left_label="loss (MSE)",
                right_label="MAE",
            ),
            _plot(cfg, ts, target, test_origins, test, n_tr + n_val, run.file("forecast.png"), label),
        ]
        samples = _samples(ts, target, test_origins, test, cfg)
        run.commit({"app": APP, "name": name, "data": cfg.data})
    final = run.final
    label = PRESETS.get(cfg.data, (0, 0, 0, Path(cfg.data).name))[3]
    task = f"{label}, {cfg.horizon}-step"
    if metric == "MASE":
        rows = [ResultRow(task, "MASE", m["mase"], "seasonal naive", sn["mase"], goal, met, seconds)]
    else:
        best_base, base_name = (
            (nv, "naive") if cfg.season == 1 or nv["mae"] <= sn["mae"] else (sn, "seasonal naive")
        )
        rows = [ResultRow(task, "MAE", m["mae"], base_name, best_base["mae"], goal, met, seconds)]
    return TrainResult(final, metrics, rows, samples, [final / p.name for p in written if p is not None])


def _goal_met(cfg, m, nv, sn) -> bool:
    if cfg.data == "co2":
        return m["mase"] < 0.7
    if cfg.season == 1:
        return m["mae"] < nv["mae"]
    return m["mae"] < nv["mae"] and m["mae"] < sn["mae"]


def _times_axis(ts: TimeSeries):
    try:
        return ts.as_datetime64()
    except RnnkitError:
        return None


def _plot(cfg, ts, target, origins, test, test_start, path, label):
    H = cfg.horizon
    picks = [i for i in range(0, len(origins), max(H // cfg.stride, 1))]
    forecasts = [(int(origins[i]), test["forecasts"][i]) for i in picks]
    baselines = {name: (int(origins[0]), fc[0]) for name, fc in test["baselines"].items()}
    if cfg.season == 1:
        baselines.pop("seasonal naive")
    m = test["model"]
    title = (
        f"{label}: {H}-step forecasts on the held-out part\n(MAE {m['mae']:.3g}, MASE {m['mase']:.3g}; "
        f"naive MASE {test['naive']['mase']:.3g}, seasonal naive {test['seasonal_naive']['mase']:.3g})"
    )
    history = max(3 * max(cfg.season, H), cfg.window)
    return plots.plot_forecast(
        _times_axis(ts), target, test_start, forecasts, baselines, path, title, cfg.target, history
    )


def _samples(ts, target, origins, test, cfg) -> list[str]:
    i = 0
    o = int(origins[i])
    fc = test["forecasts"][i]
    steps = sorted({0, cfg.horizon // 4, cfg.horizon // 2, cfg.horizon - 1})
    lines = [f"forecast made at {ts.times[o - 1]} (last value {target[o - 1]:.4g}):"]
    for h in steps:
        lines.append(
            f"  +{h + 1:<3} {ts.times[o + h]:>12}  forecast {fc[h]:9.4g}   actual {target[o + h]:9.4g}   "
            f"seasonal naive {test['baselines']['seasonal naive'][i][h]:9.4g}"
        )
    return lines


# ------------------------------------------------------------------------------------------------------------
# A saved run
# ------------------------------------------------------------------------------------------------------------
class Forecaster:
    """A trained time-series run, loaded: ``predict(values)`` and ``evaluate()``."""

    def __init__(self, path):
        from rnnkit.models import SequenceRegressor, SequenceTagger

        self.run, self.manifest, self.config = open_app_run(path, APP)
        cfg = self.config
        expected = SequenceTagger if cfg.structure == "many-to-many" else SequenceRegressor
        self.model = load_run_model(self.run, expected)
        info = read_json(self.run / "scaler.json", f"run {self.run.name}")
        try:
            self.columns = [str(c) for c in info["columns"]]
            self.target = str(info["target"])
            self.scaler = Scaler(
                info["mode"],
                info["structure"],
                self.columns.index(self.target),
                info["center"],
                info["scale"],
            )
            self.last_times = [str(t) for t in info.get("times", [])]
        except (KeyError, TypeError, ValueError):
            raise RnnkitError(f"run {self.run.name}: scaler.json is damaged") from None
        if len(self.scaler.scale) != len(self.columns) or cfg.window is None or cfg.horizon is None:
            raise RnnkitError(
                f"run {self.run.name}: scaler.json does not match the run's config (damaged run?)"
            )

    def read_recent(self, path: str) -> TimeSeries:
        """A CSV of recent values with the run's value columns (a time column is optional)."""
        return read_time_series_csv(
            path, self.config.time_column if self.config.data not in PRESETS else None, self.columns
        )

    def predict(self, values: np.ndarray, times: list[str] | None = None) -> dict[str, Any]:
        """Forecast the ``horizon`` steps after the last row of ``values`` (N >= window, C columns)."""
        cfg = self.config
        v = np.asarray(values, dtype=np.float64)
        if v.ndim == 1:
            v = v[:, None]
        if v.shape[1] != len(self.columns):
            raise RnnkitError(
                f"expected {len(self.columns)} value column(s) {self.columns}, got {v.shape[1]}"
            )
        if len(v) < cfg.window:
            raise RnnkitError(
                f"expected at least window = {cfg.window} recent values to forecast from, got {len(v)}"
            )
        if not np.all(np.isfinite(v)):
            raise RnnkitError("expected finite numbers, got NaN or infinity among the recent values")
        fc = forecast_windows(self.model, self.scaler, v[None, -cfg.window :])[0]
        steps = future_times(times, cfg.horizon) if times else [f"+{h + 1}" for h in range(cfg.horizon)]
        return {
            "target": self.target,
            "horizon": cfg.horizon,
            "last": {
                "time": times[-1] if times else None,
                "value": float(v[-1, self.columns.index(self.target)]),
            },
            "forecast": [
                {"step": h + 1, "time": t, "value": float(x)} for h, (t, x) in enumerate(zip(steps, fc))
            ],
        }

    def evaluate(self, data: str | None = None) -> dict[str, Any]:
        """Scores on the run's held-out test part, or on the test part of another CSV with the same columns."""
        cfg = self.config
        if data is None:
            ts = load_series(cfg)
            where = f"held-out test part of {cfg.data}"
        else:
            ts = read_time_series_csv(data, None, self.columns)
            where = Path(data).name
        other = resolve(replace(cfg, data=cfg.data if data is None else str(data)), ts)
        n_tr, n_val, n_test = part_sizes(other, len(ts))
        values = ts.values.astype(np.float64)
        target = values[:, self.columns.index(self.target)]
        origins = np.arange(n_tr + n_val, len(ts) - cfg.horizon + 1, cfg.stride)
        res = evaluate_origins(
            self.model, self.scaler, values, target, origins, cfg, mase_scale(target[:n_tr], cfg.season)
        )
        return {
            "data": f"{where} ({n_test} steps, {len(origins)} origins, horizon {cfg.horizon})",
            **{f"{k}": v for k, v in res["model"].items()},
            **{f"naive_{k}": v for k, v in res["naive"].items()},
            **{f"seasonal_naive_{k}": v for k, v in res["seasonal_naive"].items()},
        }


def future_times(times: list[str], horizon: int) -> list[str]:
    """Time stamps of the ``horizon`` steps after ``times`` when they are evenly spaced.

    Integers (years, indices) step by their last difference; ISO dates step by a constant number of days,
    months (same day of the month) or years. Otherwise the steps are named ``+1``, ``+2``, ...
    """
    last = [t.strip() for t in times[-4:]]
    if all(len(t) == 8 and t.isdigit() for t in last):  # YYYYMMDD
        iso = future_times([f"{t[:4]}-{t[4:6]}-{t[6:]}" for t in last], horizon)
        return [t.replace("-", "") for t in iso]
    if len(last) >= 2:
        try:
            nums = [int(t) for t in last]
            steps = set(np.diff(nums).tolist())
            if len(steps) == 1 and nums[-1] != nums[-2]:
                return [str(nums[-1] + (nums[-1] - nums[-2]) * (h + 1)) for h in range(horizon)]
        except ValueError:
            pass
        try:
            days = np.array(last, dtype="datetime64[D]")
            for unit in ("D", "M", "Y"):
                coarse = days.astype(f"datetime64[{unit}]")
                offsets = days - coarse.astype("datetime64[D]")  # day within the month / year
                diffs = set(np.diff(coarse).astype(np.int64).tolist())
                if len(diffs) == 1 and len(set(offsets.tolist())) == 1 and 0 not in diffs:
                    step = coarse[-1] - coarse[-2]
                    future = [
                        (coarse[-1] + step * (h + 1)).astype("datetime64[D]") + offsets[-1]
                        for h in range(horizon)
                    ]
                    return [_like(last[-1], f) for f in future]
        except (ValueError, TypeError):
            pass
    return [f"+{h + 1}" for h in range(horizon)]


def _like(example: str, day: np.datetime64) -> str:
    """``day`` written with the precision of ``example`` (``2001``, ``2001-05`` or ``2001-05-17``)."""
    text = str(day)
    return text[: len(example)] if len(example) in (4, 7) else text


def load(path) -> Forecaster:
    return Forecaster(path)
