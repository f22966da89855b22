"""A saved forecasting run, loaded: forecasts from recent values and scores on held-out data."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit._errors import RnnkitError
from rnnkit.apps.base import load_run_model, open_app_run
from rnnkit.apps.metrics import mase_scale
from rnnkit.apps.rundir import read_json
from rnnkit.apps.timeseries.data import APP, Scaler, load_series, part_sizes, preset_of, resolve
from rnnkit.apps.timeseries.model import Ensemble, forecast_at
from rnnkit.apps.timeseries.report import evaluate_origins, interval_bounds
from rnnkit.datasets import TimeSeries, read_time_series_csv

__all__ = ["Forecaster", "future_times", "load"]


ES_MEMORY = 100_000
"""The most recent values an ES-RNN run's stream (``rnnkit serve`` sessions) keeps to smooth over."""


class Forecaster:
    """A trained time-series run, loaded: ``predict(values)`` and ``evaluate()``."""

    def __init__(self, path):
        from rnnkit.models import SequenceRegressor, SequenceTagger

        self.run, self.manifest, self.config = open_app_run(path, APP)
        cfg = self.config
        expected = SequenceTagger if cfg.structure == "many-to-many" else SequenceRegressor
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
                int(info.get("season", 1)),
                info.get("log"),
                bool(info.get("nonnegative", False)),
                bool(info.get("trend", False)),
            )
            self.last_times = [str(t) for t in info.get("times", [])]
            windows = [int(w) for w in info.get("windows", [cfg.window])]
            self.interval = info.get("interval")
            self.interval_kind = str(info.get("interval_kind"))
        except (KeyError, TypeError, ValueError):
            raise RnnkitError(f"run {self.run.name}: scaler.json is damaged") from None
        members = [
            (load_run_model(self.run if k == 0 else self.run / "members" / str(k), expected), w)
            for k, w in enumerate(windows)
        ]
        if self.scaler.mode == "es":
            members = [(self._es_member(net, w, info, k), w) for k, (net, w) in enumerate(members)]
        self.model = Ensemble(members)
        # how many of the latest values a forecast depends on: the window, or (ES-RNN, which smooths over
        # everything it is given) up to ES_MEMORY of them
        self.memory = ES_MEMORY if self.scaler.mode == "es" else cfg.window
        if len(self.scaler.scale) != len(self.columns) or cfg.window is None or cfg.horizon is None:
            raise RnnkitError(
                f"run {self.run.name}: scaler.json does not match the run's config (damaged run?)"
            )

    def _es_member(self, net, window: int, info: dict, k: int):
        """Member ``k``'s network with its learnt smoothing (``es`` in scaler.json) around it."""
        from rnnkit.apps.timeseries.es import ESForecaster

        cfg = self.config
        try:
            state = info["es"][k]
            m = len(state["init_season"]) if state.get("init_season") else 1
            es = ESForecaster(net, m, cfg.horizon, window, self.scaler.t, self.scaler.scale, np.zeros(m))
            es.load_state(state)
            es.head = [float(v) for v in info["es_head"]]
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError):
            raise RnnkitError(f"run {self.run.name}: scaler.json is damaged (its ES smoothing)") from None
        return es

    def read_recent(self, path: str) -> TimeSeries:
        """A CSV of recent values with the run's value columns (a time column is optional)."""
        return read_time_series_csv(
            path, self.config.time_column if not preset_of(self.config.data)[3] else None, self.columns
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
        fc = forecast_at(self.model, self.scaler, v, [len(v)], cfg.window)[0]
        if self.interval:
            lo, hi = interval_bounds(fc[None], self.interval, self.interval_kind, self.scaler.nonnegative)
            lo, hi = lo[0], hi[0]
        else:
            lo = hi = [None] * len(fc)
        steps = future_times(times, cfg.horizon) if times else [f"+{h + 1}" for h in range(cfg.horizon)]
        return {
            "target": self.target,
            "horizon": cfg.horizon,
            "last": {
                "time": times[-1] if times else None,
                "value": float(v[-1, self.columns.index(self.target)]),
            },
            "forecast": [
                {
                    "step": h + 1,
                    "time": t,
                    "value": float(x),
                    "low": None if a is None else float(a),
                    "high": None if b is None else float(b),
                }
                for h, (t, x, a, b) in enumerate(zip(steps, fc, lo, hi))
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
    """The saved run at ``path``, ready to ``predict`` and ``evaluate``."""
    return Forecaster(path)
