"""A saved forecasting run, loaded: forecasts from recent values and scores on held-out data."""

from __future__ import annotations

import warnings
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import FEEDFORWARD_DIR, format_value, load_baseline_net, stored_share
from rnnkit.apps.base import load_members, open_app_run
from rnnkit.apps.metrics import mase_scale
from rnnkit.apps.rundir import read_json
from rnnkit.apps.timeseries.baselines import comparison_origins
from rnnkit.apps.timeseries.config import TimeSeriesConfig
from rnnkit.apps.timeseries.data import APP, Scaler, load_series, part_sizes, preset_of, resolve
from rnnkit.apps.timeseries.mixture import (
    PARTNERS,
    classical_after,
    classical_at,
    classical_with_bounds,
    fit_start,
    mix_forecasts,
    pool_bounds,
    pool_memory,
    pools,
)
from rnnkit.apps.timeseries.model import Ensemble, forecast_at
from rnnkit.apps.timeseries.report import (
    evaluate_origins,
    interval_bounds,
    interval_comparison,
    interval_offsets,
)
from rnnkit.datasets import TimeSeries, read_time_series_csv
from rnnkit.datasets.frequency import next_stamps

__all__ = ["Forecaster", "GlobalForecaster", "future_times", "load"]


ES_MEMORY = 100_000
"""The most recent values an ES-RNN run's stream (``rnnkit serve`` sessions) keeps to smooth over."""


def recent_needed(cfg: TimeSeriesConfig, window: int) -> int:
    """The fewest recent values a run forecasts from: its ``window``, and with ES smoothing (``--normalize es``)
    at least one whole season, from which the smoothing's starting seasonal indices are taken."""
    return max(window, cfg.season if cfg.normalize == "es" else 1)


def _why(window: int, need: int) -> str:
    if need > window:
        return f" (a whole season of {need}: the ES smoothing starts from its indices)"
    return f" (window = {need})"


class Forecaster:
    """A trained time-series run, loaded: ``predict(values)`` and ``evaluate()``.

    With the pool (``pool_share``, ``pool_with``), ``predict`` forecasts ``share * network + (1 - share) *
    partner`` (ETS, ARIMA or, for the default equal-weight pool, their mean, refitted on the values given).
    The equal-weight pool's interval is the mean of the three members' own bounds where ETS and ARIMA both
    have one; otherwise the network's interval is centred on the pool: calibrated on the network's errors at
    every validation origin, it is a little wide for the pool, which errs less, and was better than an
    interval recalibrated for the pool at the few horizons its share was chosen on (those errors are
    optimistic: the share was picked to make them small; docs/applications.md, *The pool's interval*)."""

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
            stored = info.get("interval")  # (2, H) offsets, or an older run's (H,) half-width
            self.interval = None if stored is None else np.stack(interval_offsets(stored, cfg.horizon))
            self.interval_kind = str(info.get("interval_kind"))
            self.pool_share, self.pool_with = _pool(info)
        except (KeyError, TypeError, ValueError):
            raise RnnkitError(f"run {self.run.name}: scaler.json is damaged") from None
        self.windows, self._info = windows, info
        self.model = self._ensemble(self.run, expected, windows, info.get("es"), info)
        # how many of the latest values a forecast depends on: the window, or (ES-RNN, which smooths over
        # everything it is given) up to ES_MEMORY of them
        self.memory = ES_MEMORY if self.scaler.mode == "es" else cfg.window
        if self.pool_share is not None:  # a stream keeps what the partner is fitted on, for the pool
            self.memory = max(self.memory, pool_memory(self.scaler.season))
        if len(self.scaler.scale) != len(self.columns) or cfg.window is None or cfg.horizon is None:
            raise RnnkitError(
                f"run {self.run.name}: scaler.json does not match the run's config (damaged run?)"
            )

    @cached_property
    def feedforward(self) -> Ensemble | None:
        """The run's feed-forward counterpart, which ``evaluate`` scores as the ``mlp`` baseline: the window MLPs
        trained like the networks (runs since 5 Dec 2026; in ``feedforward/``, their smoothing in scaler.json),
        or None (an older run's MLP on the raw window is read by ``evaluate`` itself). Read on first use, so
        ``predict`` and ``serve`` neither need nor check it; a :class:`GlobalForecaster`'s attribute of the same
        name holds its counterpart the same way."""
        from rnnkit.models import WindowRegressor

        ff = self._info.get("feedforward")
        if ff is None:
            return None
        if not isinstance(ff, dict):
            raise RnnkitError(f"run {self.run.name}: scaler.json is damaged (its feed-forward counterpart)")
        folder = self.run / FEEDFORWARD_DIR
        return self._ensemble(folder, WindowRegressor, self.windows, ff.get("es"), self._info)

    def _ensemble(self, folder, expected: type, windows: list[int], states, info: dict) -> Ensemble:
        """The ensemble saved in ``folder`` of the run (the run itself, or its feed-forward counterpart's), each
        network inside its learnt smoothing (``states``, from scaler.json) for an ES-RNN run."""
        members = list(zip(load_members(folder, len(windows), expected, self.run.name), windows))
        if self.scaler.mode == "es":
            members = [(self._es_member(net, w, states, info, k), w) for k, (net, w) in enumerate(members)]
        return Ensemble(members)

    def _es_member(self, net, window: int, states, info: dict, k: int):
        """Member ``k``'s network with its learnt smoothing ``states[k]`` (from scaler.json) around it."""
        from rnnkit.apps.timeseries.es import ESForecaster

        cfg = self.config
        try:
            state = states[k]
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
        need = recent_needed(cfg, cfg.window)
        if len(v) < need:
            raise RnnkitError(
                f"expected at least {need} recent values to forecast from{_why(cfg.window, need)}, got {len(v)}"
            )
        if not np.all(np.isfinite(v)):
            raise RnnkitError("expected finite numbers, got NaN or infinity among the recent values")
        nonneg = self.scaler.nonnegative
        target = v[:, self.columns.index(self.target)]
        if nonneg and np.any(target < 0):
            k = int(np.flatnonzero(target < 0)[0])
            raise RnnkitError(
                f"expected non-negative values of {self.target!r}, as the run was trained on (its forecasts are "
                f"kept >= 0), got {target[k]:g} (recent value {k + 1} of {len(target)})"
            )
        fc = forecast_at(self.model, self.scaler, v, [len(v)], cfg.window)[0]
        bounds = (
            None if self.interval is None else interval_bounds(fc, self.interval, self.interval_kind, nonneg)
        )
        if self.pool_share is not None and pools(len(v), self.scaler.season):  # partner fitted on the values
            y, m = v[:, self.columns.index(self.target)], self.scaler.season
            level = self._partner_level()
            with warnings.catch_warnings():  # statsmodels' warnings on a flat series (log of a zero error)
                warnings.simplefilter("ignore")
                other, each = classical_with_bounds(
                    y, fit_start(len(y), cfg.horizon, m), len(y), cfg.horizon, m, self.pool_with, level
                )
            pooled = mix_forecasts([fc], [other], self.pool_share)[0]
            if bounds is not None:  # the pool's interval as the report scored it (see the class docstring)
                names = self.pool_with.split("+")
                bounds = pool_bounds(
                    {"with": self.pool_with, "share": self.pool_share}, bounds, dict(zip(names, each or [])),
                    pooled, {"offsets": self.interval, "kind": self.interval_kind}, nonneg,
                )  # fmt: skip
            fc = pooled
        if bounds is not None:
            lo, hi = bounds
        else:
            lo = hi = [None] * len(fc)
        return forecast_result(self.target, times, float(v[-1, self.columns.index(self.target)]), fc, lo, hi)

    def _partner_level(self) -> float | None:
        """The interval level the partners are fitted with: the run's, where the pool's interval is made of
        theirs (several partners, see :func:`~rnnkit.apps.timeseries.mixture.pool_bounds`), else None."""
        return self.config.interval if self.interval is not None and "+" in self.pool_with else None

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
        scale = mase_scale(target[:n_tr], cfg.season)
        res = evaluate_origins(self.model, self.scaler, values, target, origins, cfg, scale)
        out = {
            "data": f"{where} ({n_test} steps, {len(origins)} origins, horizon {cfg.horizon})",
            **{f"{k}": v for k, v in res["model"].items()},
            **{f"naive_{k}": v for k, v in res["naive"].items()},
            **{f"seasonal_naive_{k}": v for k, v in res["seasonal_naive"].items()},
        }
        counterpart = self.feedforward
        if counterpart is not None:  # the counterpart at every test origin, as the report scores it
            ff = evaluate_origins(counterpart, self.scaler, values, target, origins, cfg, scale)["model"]
            out.update({f"mlp_{k}": v for k, v in ff.items()})
        cmp = comparison_origins(n_tr + n_val, len(ts), cfg.horizon, cfg.baseline_origins)
        if len(
            cmp
        ):  # the baselines and the pool as the report fits and scores them: at the comparison origins
            out.update(self._at_comparison_origins(values, target, n_tr, cmp, scale, counterpart))
        return out

    def _at_comparison_origins(
        self, values: np.ndarray, target: np.ndarray, n_tr: int, cmp, scale: float, counterpart
    ):
        """MASE at the comparison origins of the network, of every baseline of the run's report (the classical
        ones fitted again on ``target`` by the report's rule, once, and shared with the pool; the feed-forward
        counterpart read back from the run) and of the pool with its interval's coverage, as the report
        scores them."""
        from rnnkit.apps.timeseries.baselines import classical_forecasts, forecasts_of
        from rnnkit.apps.timeseries.data import futures_at
        from rnnkit.apps.timeseries.report import compare, score
        from rnnkit.baselines import MLPForecaster

        cfg = self.config
        pool = self.pool_share is not None
        partners = self.pool_with.split("+") if pool else []
        classical = tuple(dict.fromkeys([*(b for b in cfg.baselines if b != "mlp"), *partners]))
        fc: dict[str, np.ndarray] = {}
        bounds: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if classical:
            level = self._partner_level() if pool else None
            fc, _, bounds = classical_forecasts(
                target, n_tr, cmp, cfg.horizon, cfg.season, methods=classical, level=level
            )
        # the counterpart: window MLPs like the networks' (runs since 5 Dec 2026), or an MLP on the raw window
        if counterpart is not None:
            fc["mlp"] = forecast_at(counterpart, self.scaler, values, cmp, cfg.window)
        mlp = None if counterpart is not None else load_baseline_net(self.run, MLPForecaster, "mlp")
        if mlp is not None:
            if (mlp.window, mlp.horizon) != (cfg.window, cfg.horizon):
                raise RnnkitError(f"run {self.run.name}: its feed-forward counterpart does not match the run")
            fc["mlp"] = forecasts_of(mlp, target, cmp)
        actual = futures_at(target, cmp, cfg.horizon)
        net = forecast_at(self.model, self.scaler, values, cmp, cfg.window)
        model, scores, _ = compare(actual, net, fc, scale) if fc else (score(actual, net, scale), {}, None)
        out: dict[str, Any] = {
            "comparison_origins": len(cmp),
            "model_mase_at_comparison_origins": model["mase"],
        }
        out.update(
            {f"{k.replace(' ', '_')}_mase_at_comparison_origins": v["mase"] for k, v in scores.items()}
        )
        if not pool:
            return out
        partner = np.mean([fc[m] for m in partners], axis=0)  # the report's partner: their mean forecast
        pooled = np.stack(mix_forecasts(list(net), list(partner), self.pool_share))
        out.update(
            pool_share=self.pool_share,
            pool_with=self.pool_with,
            mixture_mase_at_comparison_origins=score(actual, pooled, scale)["mase"],
        )
        if self.interval is not None:  # the pool's interval, as the report scores it
            nonneg = self.scaler.nonnegative
            theirs = {m: bounds[m] for m in partners} if all(m in bounds for m in partners) else {}
            mixed = pool_bounds(
                {"with": self.pool_with, "share": self.pool_share},
                interval_bounds(net, self.interval, self.interval_kind, nonneg), theirs, pooled,
                {"offsets": self.interval, "kind": self.interval_kind}, nonneg,
            )  # fmt: skip
            cover = interval_comparison(actual, {"mixture": mixed}, scale, cfg.interval)["mixture"][
                "coverage"
            ]
            out[f"mixture_interval_{round(100 * cfg.interval)}_coverage_at_comparison_origins"] = cover
        return out


def _panel_interval(stored: dict | None, horizon: int) -> dict[str, Any] | None:
    """A global run's interval from scaler.json, its offsets checked (an older run's (H,) half-width read as
    symmetric offsets); None when there is none. Damage raises ``KeyError``/``TypeError``/``ValueError``."""
    if stored is None:
        return None
    if not isinstance(stored, dict):
        raise ValueError(f"expected an interval object, got {stored!r}")
    offsets = stored.get("offsets", stored.get("half_width"))
    return {
        "level": float(stored["level"]),
        "kind": str(stored["kind"]),
        "offsets": np.stack(interval_offsets(offsets, horizon)).tolist(),
    }


def _pool(info: dict) -> tuple[float | None, str | None]:
    """The network's share of the pool and its partner from scaler.json ((None, None): a run without a pool,
    or an older one; a run of 2 Dec 2026 kept ``ets_share``, its partner ETS). Damage raises ``ValueError``."""
    if "pool_share" not in info:
        share = stored_share(info.get("ets_share"))
        return share, None if share is None else "ets"
    share, partner = stored_share(info["pool_share"]), info.get("pool_with")
    if share is not None and not (isinstance(partner, str) and set(partner.split("+")) <= set(PARTNERS)):
        raise ValueError(f"expected the pool's partner among {PARTNERS} or their mean, got {partner!r}")
    return share, None if share is None else partner


def forecast_result(target: str, times: list[str] | None, last: float, fc, lo, hi) -> dict[str, Any]:
    """What ``predict`` returns: the last value and, for each step after it, its time stamp (see
    :func:`future_times`; ``+1``, ``+2``, ... without times), the forecast and the interval (None without one)."""
    steps = future_times(times, len(fc)) if times else [f"+{h + 1}" for h in range(len(fc))]
    return {
        "target": target,
        "horizon": len(fc),
        "last": {"time": times[-1] if times else None, "value": last},
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


def future_times(times: list[str], horizon: int) -> list[str]:
    """Time stamps of the ``horizon`` steps after ``times`` when they are evenly spaced.

    Integers (years, indices) step by their last difference; compact dates (``20010517``) and every way of
    writing dates :func:`~rnnkit.datasets.frequency.next_stamps` reads continue at their regular step, written as
    the input writes them (``2001-05-17``, ``2000-06-05T00:30``, ``1959 Q4``, ``Dec 1949``, month ends, trading
    days). Otherwise the steps are named ``+1``, ``+2``, ...
    """
    last = [t.strip() for t in times[-4:]]
    compact = all(len(t) == 8 and t.isdigit() for t in last)  # YYYYMMDD: dates, not step numbers
    if len(last) >= 2 and not compact:
        try:
            nums = [int(t) for t in last]
            if len(set(np.diff(nums).tolist())) == 1 and nums[-1] != nums[-2]:
                return [str(nums[-1] + (nums[-1] - nums[-2]) * (h + 1)) for h in range(horizon)]
        except ValueError:
            pass
    if compact:
        iso = next_stamps([f"{t[:4]}-{t[4:6]}-{t[6:]}" for t in (s.strip() for s in times)], horizon)
        if iso is not None:
            return [t.replace("-", "") for t in iso]
    return next_stamps(times, horizon) or [f"+{h + 1}" for h in range(horizon)]


def load(path) -> Forecaster | GlobalForecaster:
    """The saved run at ``path``, ready to ``predict`` and ``evaluate`` (a :class:`GlobalForecaster` for a run
    over many series)."""
    from rnnkit.apps.rundir import open_run

    run, _ = open_run(path, APP)
    if (run / "scaler.json").is_file():
        info = read_json(run / "scaler.json", f"run {run.name}")
        if isinstance(info, dict) and info.get("kind") == "global":
            return GlobalForecaster(path)
    return Forecaster(path)


class GlobalForecaster:
    """A saved global run (one network over many series), loaded.

    * ``predict_inputs(["Q1", "Q2*"])`` (``rnnkit predict RUN Q1 'Q2*'``): the ``horizon`` values after the end
      of each named series of the run's data (names may be shell-style patterns; ``'*'`` is every series),
      each normalised by the scaler fitted on its training part;
    * ``predict(values)`` (``rnnkit serve``): a forecast for a series the run has not seen, normalised by a
      scaler fitted on the given values;
    * ``evaluate(data=None)``: every series' test part (its last ``horizon`` values) of the run's data or of
      another long-format file with the same columns, mean and median MASE / sMAPE next to the naive and
      seasonal naive forecasts.

    With the pool (``pool_share``, ``pool_with``) the forecasts are the pool's, and the interval is the network's centred
    on them (see :class:`Forecaster`). A hybrid run (the default since 4 Dec 2026) forecasts with the median over
    the recurrent networks and the feed-forward counterpart's window MLPs (``model``; the networks alone:
    ``network``, the MLPs alone: ``feedforward``).

    Args:
        path: a run written by ``rnnkit train timeseries --id-column ...`` (or ``--data tourism-quarterly``).

    Example::

        model = load("runs/tourism-quarterly")            # a GlobalForecaster
        model.predict_inputs(["Q1"])[0]["steps"]           # [{"step": 1, "time": "139", "value": ...}, ...]
        model.evaluate()["mase_mean"]
    """

    def __init__(self, path):
        from rnnkit.models import SequenceRegressor

        self.run, self.manifest, self.config = open_app_run(path, APP)
        cfg = self.config
        info = read_json(self.run / "scaler.json", f"run {self.run.name}")
        try:
            self.columns = [str(c) for c in info["columns"]]
            self.target = str(info["target"])
            windows = [int(w) for w in info["windows"]]
            self.mode, self.season, self.trend = str(info["mode"]), int(info["season"]), bool(info["trend"])
            self.scalers = {
                str(s["id"]): Scaler(
                    self.mode,
                    "many-to-one",
                    0,
                    s["center"],
                    s["scale"],
                    self.season,
                    s["log"],
                    bool(s["nonnegative"]),
                    self.trend,
                )
                for s in info["series"]
            }
            # runs of older versions have no interval and no per-series MASE scale
            self.mase_scales = {str(s["id"]): s.get("mase_scale") for s in info["series"]}
            self.interval = _panel_interval(info.get("interval"), cfg.horizon)
            self.pool_share, self.pool_with = _pool(info)
        except (KeyError, TypeError, ValueError):
            raise RnnkitError(f"run {self.run.name}: scaler.json is damaged") from None
        if cfg.window is None or cfg.horizon is None or len(self.columns) != 1:
            raise RnnkitError(
                f"run {self.run.name}: scaler.json does not match the run's config (damaged run?)"
            )
        self.model = self._ensemble(self.run, SequenceRegressor, windows, info)
        # the feed-forward counterpart (runs since 4 Dec 2026 with the mlp baseline): scored by evaluate
        self.feedforward = None
        if info.get("feedforward") is not None:
            from rnnkit.models import WindowRegressor

            self.feedforward = self._ensemble(
                self.run / FEEDFORWARD_DIR, WindowRegressor, windows, info["feedforward"]
            )
        # the networks alone; a hybrid run forecasts with the median over both ensembles' members
        self.network = self.model
        if cfg.hybrid:  # (a run saved before the setting existed reads False: TimeSeriesConfig.added_since)
            if self.feedforward is None:
                raise RnnkitError(
                    f"run {self.run.name}: a hybrid run whose scaler.json lacks its feed-forward counterpart "
                    "(damaged run?)"
                )
            self.model = Ensemble(self.network.members + self.feedforward.members)
        # a new series' scale is fitted on the values given: a stream (rnnkit serve) keeps a few windows of
        # them (an ES-RNN smooths over all it is given: up to ES_MEMORY)
        self.memory = ES_MEMORY if self.mode == "es" else 4 * (self.model.window + cfg.horizon)
        if self.pool_share is not None:  # a stream keeps what the partner is fitted on, for the pool
            self.memory = max(self.memory, pool_memory(self.season))

    def _ensemble(self, folder, expected: type, windows: list[int], info) -> Ensemble:
        """The ensemble saved in ``folder`` of the run (the run itself, or its feed-forward counterpart's), each
        network inside its learnt smoothing coefficients ``info["es"]`` for an ES-RNN run."""
        nets = load_members(folder, len(windows), expected, self.run.name)
        if self.mode == "es":
            from rnnkit.apps.timeseries.es import PanelESForecaster

            try:
                states = [info["es"][k] for k in range(len(nets))]
                nets = [
                    PanelESForecaster(net, self.season, self.config.horizon, w)
                    for net, w in zip(nets, windows)
                ]
                for net, state in zip(nets, states):
                    net.load_state(state)
            except (KeyError, IndexError, TypeError, ValueError):
                raise RnnkitError(
                    f"run {self.run.name}: scaler.json lacks its ES coefficients (damaged run?)"
                ) from None
        return Ensemble(list(zip(nets, windows)))

    def _panel(self, data: str | None = None, id_column: str | None = None):
        from rnnkit.apps.timeseries.panel import PANELS, load_panel

        if data is None:
            data = self._training_file() or self.config.data
        id_column = id_column or self.config.id_column
        if id_column is None and str(data) not in PANELS:
            raise RnnkitError(
                f"run {self.run.name} was trained on the built-in collection {self.config.data!r}; to score it "
                f"on {Path(data).name}, a long-format file, name its series column with --id-column"
            )
        return load_panel(replace(self.config, data=str(data), id_column=id_column))

    def _training_file(self) -> str | None:
        """The user file the run was trained on (by its absolute path), once checked unchanged; None if built in."""
        from rnnkit.apps._common import DATA_FILE
        from rnnkit.files import sha256_file

        if not (self.run / DATA_FILE).is_file():
            return None
        info = read_json(self.run / DATA_FILE, f"run {self.run.name}")
        path = Path(info.get("path", "")) if isinstance(info, dict) else Path()
        if not path.is_file():
            raise RnnkitError(f"run {self.run.name} was trained on {str(path)!r}, which is no longer there")
        if sha256_file(path) != info.get("sha256"):
            raise RnnkitError(
                f"the training data of run {self.run.name} changed since it was trained ({str(path)!r}: sha256 "
                "differs), so its series are not the ones the run's scalers were fitted on"
            )
        return str(path)

    def predict_inputs(self, inputs: list[str]) -> list[dict[str, Any]]:
        """Forecasts after the end of the run's series named (or matched) by ``inputs``, one dict per series."""
        from fnmatch import fnmatchcase

        panel = self._panel()
        where = {sid: i for i, sid in enumerate(panel.ids)}
        picked: list[str] = []
        for pattern in inputs:
            found = (
                [sid for sid in panel.ids if fnmatchcase(sid, pattern)]
                if any(c in pattern for c in "*?[")
                else ([pattern] if pattern in where else [])
            )
            if not found:
                near = ", ".join(panel.ids[:5]) + (", ..." if len(panel) > 5 else "")
                raise RnnkitError(
                    f"expected the name of a series of {self.config.data} ({near}), got {pattern!r}"
                )
            picked += [sid for sid in found if sid not in picked]
        out = []
        for sid in picked:
            y = panel.values[where[sid]]
            scaler = self.scalers.get(sid) or self._fit_scaler(y)
            res = self._forecast(y, scaler, panel.times[where[sid]], self.mase_scales.get(sid))
            out.append(
                {
                    "series": sid,
                    "last time": res["last"]["time"],
                    "last value": res["last"]["value"],
                    "forecast": " ".join(format_value(f["value"]) for f in res["forecast"]),
                    "steps": res["forecast"],
                }
            )
        return out

    def _fit_scaler(self, y: np.ndarray) -> Scaler:
        cfg = replace(self.config, normalize=self.mode)
        return Scaler.fit(np.asarray(y, dtype=np.float64)[:, None], cfg, 0)

    def _forecast(
        self, y: np.ndarray, scaler: Scaler, times: list[str] | None, scale: float | None = None
    ) -> dict[str, Any]:
        """The forecast after ``y``; with the run's interval, bounds too (``scale``: the series' MASE
        denominator, else that of ``y``)."""
        from rnnkit.apps.timeseries.panel import series_forecasts
        from rnnkit.apps.timeseries.report import panel_bounds

        fc = series_forecasts(self.model, [y], [scaler], self.model.window)[0]
        if self.pool_share is not None and pools(len(y), self.season):  # the partner refitted on y
            other = classical_after(y, self.config.horizon, self.season, self.pool_with)
            fc = mix_forecasts([fc], [other], self.pool_share)[0]
        lo = hi = [None] * len(fc)
        if self.interval is not None:  # around the pool too (see the class docstring)
            if scale is None:
                try:
                    scale = mase_scale(y, self.season)
                except RnnkitError:  # a constant series: no scale to size the interval with
                    scale = None
            if scale is not None:
                lo, hi = panel_bounds(fc, self.interval, scale, scaler.nonnegative)
        return forecast_result(self.target, times, float(y[-1]), fc, lo, hi)

    def predict(self, values: np.ndarray, times: list[str] | None = None) -> dict[str, Any]:
        """Forecast the ``horizon`` steps after ``values`` (N,) or (N, 1) of a series the run need not know; N >= window."""
        cfg = self.config
        v = np.asarray(values, dtype=np.float64)
        if v.ndim == 2 and v.shape[1] == 1:
            v = v[:, 0]
        if v.ndim != 1:
            raise RnnkitError(
                f"expected one value column {self.columns}, got shape {tuple(np.shape(values))}"
            )
        window = max(self.model.window, cfg.window)
        need = recent_needed(cfg, window)
        if len(v) < need:
            raise RnnkitError(
                f"expected at least {need} recent values of a series{_why(window, need)} (its scale is fitted on them; "
                f"more give a steadier scale), got {len(v)}"
            )
        if not np.all(np.isfinite(v)):
            raise RnnkitError("expected finite numbers, got NaN or infinity among the recent values")
        return self._forecast(v, self._fit_scaler(v), times)

    def read_recent(self, path: str) -> TimeSeries:
        return read_time_series_csv(path, None, self.columns)

    def evaluate(
        self, data: str | None = None, id_column: str | None = None, classical: bool = False
    ) -> dict[str, Any]:
        """Mean and median MASE / sMAPE over the test parts of every series (see the class docstring);
        ``id_column``: the series-name column of ``data`` (default: the run's own). ``classical``: ETS and
        ARIMA (those among the run's baselines) are fitted again on every series by the report's rule, as
        slow as the report's baselines were (keys ``ets_...``, ``arima_...``)."""
        from rnnkit.apps.baselines import naive_forecast, seasonal_naive_forecast
        from rnnkit.apps.timeseries.baselines import panel_classical
        from rnnkit.apps.timeseries.panel import (
            mase_scales,
            panel_forecasts,
            resolve_global,
            sample_series,
            series_split,
        )
        from rnnkit.apps.timeseries.report import panel_coverage, series_scores, summarize

        cfg = self.config
        panel = self._panel(data, id_column)
        if data is None:  # the series the run was scored on: the same seeded sample
            panel = sample_series(panel, cfg.max_series, cfg.seed)
        checked = resolve_global(replace(cfg, data=cfg.data if data is None else str(data)), panel)
        splits = [series_split(len(y), checked) for y in panel.values]
        scalers = [
            self.scalers[sid] if data is None and sid in self.scalers else self._fit_scaler(y[: sp.train])
            for sid, y, sp in zip(panel.ids, panel.values, splits)
        ]
        origins = [sp.test_origin for sp in splits]
        actual = [y[o : o + cfg.horizon] for y, o in zip(panel.values, origins)]
        scales = mase_scales(checked, panel, splits)
        forecasts = panel_forecasts(self.model, cfg, panel, scalers, origins)
        res = {"model": summarize(series_scores(actual, forecasts, scales))}
        fitted = {}
        if classical:
            methods = [b for b in cfg.baselines if b in ("ets", "arima")]
            fitted = panel_classical(panel.values, splits, cfg.horizon, cfg.season, methods)[0]
            res.update({b: summarize(series_scores(actual, fc, scales)) for b, fc in fitted.items()})
        if self.pool_share is not None:  # the partner at each test origin as the report fitted it, pooled
            parts = self.pool_with.split("+")
            if all(p in fitted for p in parts):  # fitted just above: not again
                other = list(np.mean([fitted[p] for p in parts], axis=0))
            else:
                other = [
                    classical_at(y, sp.train, sp.test_origin, cfg.horizon, cfg.season, self.pool_with)
                    for y, sp in zip(panel.values, splits)
                ]
            pooled = mix_forecasts(forecasts, other, self.pool_share)
            res["mixture"] = summarize(series_scores(actual, pooled, scales))
        if self.network is not self.model:
            res["network"] = summarize(
                series_scores(actual, panel_forecasts(self.network, cfg, panel, scalers, origins), scales)
            )
        if self.feedforward is not None:
            res["mlp"] = summarize(
                series_scores(actual, panel_forecasts(self.feedforward, cfg, panel, scalers, origins), scales)
            )
        nonneg = [s.nonnegative for s in scalers]
        res["naive"] = summarize(
            series_scores(
                actual, [naive_forecast(y[:o], cfg.horizon) for y, o in zip(panel.values, origins)], scales
            )
        )
        res["seasonal_naive"] = summarize(
            series_scores(
                actual,
                [
                    seasonal_naive_forecast(y[:o], cfg.horizon, cfg.season)
                    for y, o in zip(panel.values, origins)
                ],
                scales,
            )
        )
        where = f"test parts of {cfg.data}" if data is None else Path(data).name
        out: dict[str, Any] = {
            "data": f"{where} ({len(panel)} series, the last {cfg.horizon} values of each)"
        }
        if self.pool_share is not None:
            out.update(pool_share=self.pool_share, pool_with=self.pool_with)
        for name, r in res.items():
            prefix = "" if name == "model" else f"{name}_"
            out.update(
                {f"{prefix}{k}": r[k] for k in ("mase_mean", "mase_median", "smape_mean", "smape_median")}
            )
        if self.interval is not None:
            cover = panel_coverage(forecasts, actual, self.interval, scales, nonneg)
            out[f"interval_{round(100 * self.interval['level'])}_coverage"] = cover["coverage"]
        if self.pool_share is not None and self.interval is not None:  # centred on the pool
            cover = panel_coverage(pooled, actual, self.interval, scales, nonneg)
            out[f"mixture_interval_{round(100 * self.interval['level'])}_coverage"] = cover["coverage"]
        return out
