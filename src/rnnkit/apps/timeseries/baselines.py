"""The forecaster's baselines on its own split: naive, seasonal naive, ETS / Holt-Winters, seasonal ARIMA
(:mod:`rnnkit.baselines.forecast`, statsmodels) and the feed-forward counterpart (an MLP on the same window).

The model-based baselines are refitted at every *comparison origin*: the first ``count`` non-overlapping
horizons of the test part (origins ``test_start + k * horizon``). At each origin the configuration is chosen
on the validation part plus the test values already seen (everything before the origin that is not training
data), then refitted on all values before the origin (:func:`rnnkit.baselines.forecast.forecast_baselines`).

Seasonal ARIMA with a long season (more than 24 steps, e.g. 52 weeks) takes minutes per fit in statsmodels, so
for such seasons the ARIMA baseline is the standard alternative for long seasonal periods (Hyndman &
Athanasopoulos, *FPP* 12.1, "dynamic harmonic regression"): a non-seasonal ARIMA with Fourier terms of the
season as regressors, orders chosen on the same validation values. The fitted history is capped at the last
``max_history`` values (at least 20 seasons) to keep very long series affordable.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np

from rnnkit.apps.timeseries.config import BASELINE_NAMES
from rnnkit.baselines.forecast import Forecast, forecast_baselines, one_blas_thread

__all__ = [
    "BASELINE_NAMES",
    "classical_forecasts",
    "comparison_origins",
    "forecasts_of",
    "fourier_arima",
    "mlp_forecasts",
    "panel_classical",
]

log = logging.getLogger(__name__)

LONG_SEASON = 24  # longer seasons use Fourier terms in ARIMA instead of seasonal differencing


def comparison_origins(test_start: int, n: int, horizon: int, count: int) -> np.ndarray:
    """Up to ``count`` origins ``test_start + k * horizon`` whose whole horizon lies before ``n``."""
    k = min(count, (n - test_start) // horizon)
    return test_start + horizon * np.arange(max(k, 0))


def _fourier(t: np.ndarray, season: int, pairs: int) -> np.ndarray:
    """(len(t), 2 * pairs): sin and cos of ``2 pi k t / season`` for k = 1..pairs."""
    k = np.arange(1, pairs + 1)
    arg = 2 * np.pi * np.asarray(t, dtype=np.float64)[:, None] * k / season
    return np.concatenate([np.sin(arg), np.cos(arg)], 1)


@one_blas_thread
def fourier_arima(train, val, horizon: int, season: int, pairs: int = 4) -> Forecast:
    """ARIMA with ``pairs`` Fourier pairs of ``season`` as regressors; order chosen by validation MAE.

    Orders: (1,0,0) with a constant, (0,1,1), (1,1,1), (2,1,0), the three differenced ones with a drift where
    it lowers the fit's AICc (as in :func:`rnnkit.baselines.forecast.select_arima`); refitted on
    ``train + val``. Falls back to the last value when no order can be fitted.
    """
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    from rnnkit.baselines.forecast import _arima_trend, _drift_by_aicc, _drift_words

    train, val = np.asarray(train, dtype=np.float64), np.asarray(val, dtype=np.float64)
    pairs = max(1, min(pairs, season // 2))

    def fit_one(y, order, drift: bool):
        x = _fourier(np.arange(len(y)), season, pairs)
        trend = _arima_trend(order, (0, 0, 0, 0), drift)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return SARIMAX(y, exog=x, order=order, trend=trend).fit(disp=False, maxiter=100)

    def fit(y, order):
        if order[1] == 1:
            return _drift_by_aicc(lambda drift: fit_one(y, order, drift))
        return fit_one(y, order, False)

    def name(order, res=None) -> str:
        drift = _drift_words(None if order[1] == 1 else False, res)
        return f"ARIMA{order}{drift} + {pairs} Fourier pairs of {season}"

    def forecast(res, start, h):
        return np.asarray(res.forecast(h, exog=_fourier(np.arange(start, start + h), season, pairs)))

    scores, skipped, best = {}, {}, None
    for cfg in [(1, 0, 0), (0, 1, 1), (1, 1, 1), (2, 1, 0)]:
        label = name(cfg)
        try:
            res = fit(train, cfg)
            if len(val):
                score = float(np.mean(np.abs(forecast(res, len(train), len(val)) - val)))
            else:
                score = float(res.aic)
            if not math.isfinite(score):
                raise FloatingPointError("non-finite score")
        except Exception as err:  # noqa: BLE001 - a failing order is skipped, with its reason
            skipped[label] = f"{type(err).__name__}: {err}"
            continue
        scores[label] = score
        if best is None or score < scores[best[1]]:
            best = (cfg, label)
    history = np.concatenate([train, val])
    if best is not None:
        try:
            res = fit(history, best[0])
            values = forecast(res, len(history), horizon)
            if np.all(np.isfinite(values)):
                if history.min() >= 0:
                    values = np.maximum(values, 0.0)
                criterion = "val_mae" if len(val) else "aic"
                return Forecast("arima", values, name(best[0], res), criterion, scores, skipped)
        except Exception as err:  # noqa: BLE001
            skipped[best[1] + " (refit)"] = f"{type(err).__name__}: {err}"
    return Forecast("arima", np.full(horizon, history[-1]), "naive fallback", "none", scores, skipped)


def classical_forecasts(
    target: np.ndarray,
    n_tr: int,
    origins,
    horizon: int,
    season: int,
    max_history: int = 2000,
    methods=("naive", "seasonal naive", "ets", "arima"),
    level: float | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, list[str]], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Forecasts ``{name: (len(origins), horizon)}`` of naive, seasonal naive, ETS and ARIMA, their configs, and
    (with ``level``) the ETS and ARIMA forecast intervals ``{name: (lower, upper)}`` where every origin has one.

    At origin ``o``: training values ``target[lo:n_tr]`` (the last ``max_history`` of them, at least 20
    seasons), selection values ``target[n_tr:o]``.
    """
    cap = max(max_history, 20 * season)
    out: dict[str, list[np.ndarray]] = {k: [] for k in methods}
    configs: dict[str, list[str]] = {k: [] for k in ("ets", "arima") if k in methods}
    lows: dict[str, list] = {k: [] for k in configs} if level is not None else {}
    highs: dict[str, list] = {k: [] for k in lows}
    long_season = season > LONG_SEASON
    for o in origins:
        train, val = target[max(0, n_tr - cap) : n_tr], target[n_tr:o]
        wanted = ("naive", "seasonal_naive") + tuple(
            k for k in ("ets", "arima") if k in methods and not (k == "arima" and long_season)
        )
        res = forecast_baselines(train, val, horizon, season, methods=wanted, level=level)
        if long_season and "arima" in methods:
            res["arima"] = fourier_arima(train, val, horizon, season)
        res["seasonal naive"] = res.get("seasonal_naive", res["naive"])  # season 1: seasonal naive is naive
        for k in methods:
            out[k].append(res[k].values)
            if k in configs:
                configs[k].append(res[k].config)
            if k in lows:
                lows[k].append(res[k].lower)
                highs[k].append(res[k].upper)
    forecasts = {k: np.stack(v) if v else np.zeros((0, horizon)) for k, v in out.items()}
    bounds = {
        k: (np.stack(lows[k]), np.stack(highs[k]))
        for k in lows
        if lows[k] and all(b is not None for b in lows[k] + highs[k])
    }
    return forecasts, configs, bounds


def panel_classical(values, splits, horizon: int, season: int, methods, level: float | None = None):
    """The baselines ``methods`` fitted on each series of a global run as :func:`classical_forecasts` fits one
    (form chosen on the validation horizon, refitted on everything before the test part): ``({name: [(H,)
    forecast of each series]}, {name: [(lower, upper) of each series that has one]}, {name: {form: series that
    chose it}})``. ``splits[i]`` (:class:`~rnnkit.apps.timeseries.panel.SeriesSplit`) cuts ``values[i]``."""
    fcs: dict[str, list[np.ndarray]] = {b: [] for b in methods}
    bounds: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    configs: dict[str, dict[str, int]] = {}
    for y, sp in zip(values, splits):
        fc, conf, each = classical_forecasts(
            y, sp.train, [sp.test_origin], horizon, season, methods=methods, level=level
        )
        for b in methods:
            fcs[b].append(fc[b][0])
        for b, (lo, hi) in each.items():
            bounds.setdefault(b, []).append((lo[0], hi[0]))
        for b, names in conf.items():
            for c in names:
                configs.setdefault(b, {})[c] = configs.get(b, {}).get(c, 0) + 1
    return fcs, bounds, configs


def mlp_forecasts(target: np.ndarray, n_tr: int, n_val: int, origins, window: int, horizon: int, seed: int):
    """A many-to-many run's feed-forward counterpart (a many-to-one run's are window MLPs trained like its
    networks): :class:`rnnkit.baselines.MLPForecaster` on the same ``window`` of raw values, trained on the
    training part (early stopping on the validation part); ``((len(origins), horizon) forecasts, the fitted
    forecaster)``."""
    from rnnkit.baselines import MLPForecaster

    mlp = MLPForecaster(window=window, horizon=horizon, seed=seed)
    mlp.fit(target[:n_tr], target[n_tr : n_tr + n_val])
    return forecasts_of(mlp, target, origins), mlp


def forecasts_of(mlp, target: np.ndarray, origins) -> np.ndarray:
    """A fitted :class:`~rnnkit.baselines.MLPForecaster`'s ``(len(origins), horizon)`` forecasts from each origin."""
    return np.stack([mlp.predict(target[:o]) for o in origins])
