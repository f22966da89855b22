"""The forecaster's report: scores at every test origin next to the naive and seasonal naive forecasts,
the goal, the plots, a sample and the results table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnnkit._errors import RnnkitError
from rnnkit.apps import plots
from rnnkit.apps.base import ResultRow
from rnnkit.apps.baselines import naive_forecast, seasonal_naive_forecast
from rnnkit.apps.metrics import mae, smape
from rnnkit.apps.timeseries.config import TimeSeriesConfig
from rnnkit.apps.timeseries.data import PRESETS, futures_at, windows_at
from rnnkit.apps.timeseries.model import forecast_windows
from rnnkit.datasets import TimeSeries

__all__ = [
    "evaluate_origins",
    "goal_met",
    "goal_of",
    "label_of",
    "plot_forecast",
    "result_rows",
    "samples",
    "score",
]


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


def goal_met(cfg, m, nv, sn) -> bool:
    if cfg.data == "co2":
        return m["mase"] < 0.7
    if cfg.season == 1:
        return m["mae"] < nv["mae"]
    return m["mae"] < nv["mae"] and m["mae"] < sn["mae"]


def label_of(cfg: TimeSeriesConfig) -> str:
    return PRESETS.get(cfg.data, (0, 0, 0, Path(cfg.data).name))[3]


def result_rows(cfg: TimeSeriesConfig, m, nv, sn, seconds: float) -> list[ResultRow]:
    """The results-table line: MASE against seasonal naive (co2), else MAE against the better baseline."""
    metric, goal = goal_of(cfg)
    met = goal_met(cfg, m, nv, sn)
    task = f"{label_of(cfg)}, {cfg.horizon}-step"
    if metric == "MASE":
        return [ResultRow(task, "MASE", m["mase"], "seasonal naive", sn["mase"], goal, met, seconds)]
    best_base, base_name = (
        (nv, "naive") if cfg.season == 1 or nv["mae"] <= sn["mae"] else (sn, "seasonal naive")
    )
    return [ResultRow(task, "MAE", m["mae"], base_name, best_base["mae"], goal, met, seconds)]


def _times_axis(ts: TimeSeries):
    try:
        return ts.as_datetime64()
    except RnnkitError:
        return None


def plot_forecast(cfg, ts, target, origins, test, test_start, path, label):
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


def samples(ts, target, origins, test, cfg) -> list[str]:
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
