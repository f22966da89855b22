"""Classical forecasting baselines for one series: naive, seasonal naive, ETS (Holt-Winters) and seasonal ARIMA.

Every method is ``fit on a history -> forecast h steps``. The model-based ones choose their configuration on
the validation part: each candidate is fitted on ``train`` and forecasts ``len(val)`` steps, the one with the
lowest mean absolute validation error wins, and it is refitted on ``train + val`` to forecast the test
horizon. (When there is no validation part, ETS falls back to the AICc and ARIMA to the AIC of the fit on
``train``.) A candidate that fails to fit or forecasts non-finite values is skipped and the reason logged.
Forecasts of a series that is never negative in its history are clipped at 0.

References: Hyndman, Koehler, Snyder & Grose (2002) and Hyndman & Athanasopoulos, *Forecasting: Principles and
Practice* (ETS); Box & Jenkins (seasonal ARIMA); both fitted with statsmodels.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from rnnkit._errors import RnnkitError

__all__ = [
    "Forecast",
    "arima_forecast",
    "ets_forecast",
    "forecast_baselines",
    "naive",
    "seasonal_naive",
    "select_arima",
    "select_ets",
]

log = logging.getLogger(__name__)


@dataclass
class Forecast:
    """One baseline's test forecast and how its configuration was chosen.

    Attributes:
        name: ``"naive"``, ``"seasonal_naive"``, ``"ets"`` or ``"arima"``.
        values: the forecast, shape ``(horizon,)``.
        config: the chosen configuration in words (``"trend=add damped, seasonal=mul"``).
        criterion: what chose it: ``"val_mae"``, ``"aicc"``, ``"aic"`` or ``"none"``.
        scores: the criterion for every candidate that could be fitted.
        skipped: ``{candidate: reason}`` for the candidates that could not.
        lower, upper: the model's own forecast interval, shape ``(horizon,)``, when one was asked for (``level``)
            and the method has one: ARIMA's from the state-space forecast variance, ETS's from 1,000 simulated
            futures (statsmodels, fixed seed); None otherwise.
    """

    name: str
    values: np.ndarray
    config: str = ""
    criterion: str = "none"
    scores: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None


def one_blas_thread(fit):
    """Run ``fit`` (a statsmodels fitting function) with NumPy's and SciPy's BLAS on one thread.

    statsmodels' state-space fits multiply matrices of a few rows, where BLAS threads buy nothing; on a busy
    machine their spinning workers made ARIMA fits 16-32 times slower (measured 2026-12-04: 4 quarterly series
    67 s with OpenBLAS's default threads, 2.0 s with one, beside two busy training processes on 2 cores)."""
    import functools

    @functools.wraps(fit)
    def one_thread(*args, **kwargs):
        try:
            # SciPy's own OpenBLAS is loaded with the first fit's imports; the limits reach only what is loaded
            import scipy.linalg  # noqa: F401
            from threadpoolctl import threadpool_limits
        except ImportError:  # without it the fits are right, only slower on a busy machine
            return fit(*args, **kwargs)
        with threadpool_limits(limits=1):
            return fit(*args, **kwargs)

    return one_thread


def _series(x, name: str = "history") -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise RnnkitError(f"{name} must be one series, shape (T,) or (T, 1); got shape {a.shape}")
    if len(a) == 0 or not np.all(np.isfinite(a)):
        raise RnnkitError(f"{name} must be non-empty and finite; got {len(a)} values")
    return a


def _check_h(horizon: int) -> None:
    if not isinstance(horizon, int | np.integer) or horizon < 1:
        raise RnnkitError(f"horizon must be a positive integer, got {horizon!r}")


def _clip(values: np.ndarray, history: np.ndarray) -> np.ndarray:
    return np.maximum(values, 0.0) if history.min() >= 0 else values


def naive(history, horizon: int) -> np.ndarray:
    """The last value repeated ``horizon`` times."""
    y = _series(history)
    _check_h(horizon)
    return np.full(horizon, y[-1])


def seasonal_naive(history, horizon: int, season: int) -> np.ndarray:
    """The value one season earlier: ``y_hat[T + i] = y[T + i - season * (1 + i // season)]``."""
    y = _series(history)
    _check_h(horizon)
    if season < 1 or len(y) < season:
        raise RnnkitError(
            f"seasonal naive needs 1 <= season <= len(history); got season {season}, {len(y)} values"
        )
    last = y[-season:]
    return np.array([last[i % season] for i in range(horizon)])


# ----------------------------------------------------------------------------- ETS
def _ets_candidates(y: np.ndarray, season: int) -> list[tuple[str | None, bool, str | None]]:
    positive = y.min() > 0
    seasonal = [None]
    if season > 1 and len(y) >= 2 * season + 2:
        seasonal += ["add"] + (["mul"] if positive else [])
    out = []
    for s in seasonal:
        out += [(None, False, s), ("add", False, s), ("add", True, s)]
    return out


def _ets_name(cfg: tuple[str | None, bool, str | None]) -> str:
    trend, damped, seasonal = cfg
    return f"trend={trend or 'none'}{' damped' if damped else ''}, seasonal={seasonal or 'none'}"


def _fit_ets(y: np.ndarray, season: int, cfg):
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    trend, damped, seasonal = cfg
    if seasonal == "mul" and y.min() <= 0:
        raise RnnkitError("multiplicative seasonality needs strictly positive data")
    model = ExponentialSmoothing(
        y,
        trend=trend,
        damped_trend=damped,
        seasonal=seasonal,
        seasonal_periods=season if seasonal else None,
        initialization_method="estimated",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(optimized=True)


def _ets_bounds(res, horizon: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Holt-Winters has no closed-form interval in statsmodels: quantiles of 1,000 simulated futures (additive
    errors drawn from the fit's residual variance, a fixed seed)."""
    import inspect

    seed = "rng" if "rng" in inspect.signature(res.simulate).parameters else "random_state"  # 0.15 renamed it
    kwargs = {seed: np.random.default_rng(0)}
    sims = np.asarray(res.simulate(horizon, repetitions=1000, error="add", anchor="end", **kwargs))
    lo, hi = np.quantile(sims.reshape(horizon, -1), [(1 - level) / 2, (1 + level) / 2], axis=1)
    return lo, hi


def ets_forecast(
    history, horizon: int, season: int = 1, trend=None, damped: bool = False, seasonal=None
) -> np.ndarray:
    """Holt-Winters exponential smoothing (statsmodels) fitted on ``history``; forecast ``horizon`` steps.

    Args:
        trend, seasonal: ``None``, ``"add"`` or ``"mul"`` (multiplicative needs positive data).
        damped: damp the trend (Gardner & McKenzie 1985).
        season: the seasonal period (used when ``seasonal`` is set).
    """
    y = _series(history)
    _check_h(horizon)
    fc = np.asarray(_fit_ets(y, season, (trend, damped, seasonal)).forecast(horizon), dtype=np.float64)
    return _clip(fc, y)


# ----------------------------------------------------------------------------- ARIMA
def _arima_candidates(
    y: np.ndarray, season: int
) -> list[tuple[tuple[int, int, int], tuple[int, int, int, int], bool]]:
    orders = [(1, 0, 0), (0, 1, 1), (1, 1, 0), (1, 1, 1), (2, 1, 0)]
    if season > 1 and len(y) >= 3 * season:
        seasonal = [(0, 1, 1, season), (1, 1, 0, season)]
    else:
        seasonal = [(0, 0, 0, 0)]
    # Where one difference is taken in all (d + D = 1), a drift is allowed, as auto.arima allows it (Hyndman &
    # Khandakar 2008): a trending series is forecast to go on trending. Whether a model has one is decided as
    # auto.arima decides it, by the AICc of the two fits (drift None: see _fit_arima); only the order competes
    # on validation, where one short horizon would choose a drift on noise.
    grid = [(o, s, None if o[1] + s[1] == 1 else False) for s in seasonal for o in orders]
    return [cfg for cfg in grid if _arima_fits(len(y), cfg)]


def _arima_fits(n: int, cfg) -> bool:
    """Whether ``n`` values leave the model more observations (after differencing) than parameters + 1, the
    condition under which its AICc is defined (auto.arima leaves out the models that break it). A model fitted
    on fewer is not identified: on 3 values ARIMA(2,1,0) with drift forecast 1e19 (an 11-year tourism series)."""
    (p, d, q), (sp, sd, sq, m), drift = cfg  # drift None (decided by AICc): the model without one must fit
    constant = _arima_trend((p, d, q), (sp, sd, sq, m), bool(drift)) == "c"
    params = p + q + sp + sq + constant + 1  # + the variance
    return n - d - sd * m - params - 1 > 0


def _arima_name(cfg, res=None) -> str:
    """The model in words; with drift None (decided by AICc) and its fit ``res``, the model it chose."""
    (p, d, q), (sp, sd, sq, m), drift = cfg
    return f"ARIMA({p},{d},{q})" + (f"({sp},{sd},{sq})[{m}]" if m else "") + _drift_words(drift, res)


def _drift_words(drift: bool | None, res=None) -> str:
    """``" with drift"``, ``""``, or for a drift decided by AICc (None) ``", drift by AICc"`` until its fit
    ``res`` tells which it took (a differenced model's constant is its drift)."""
    if drift is None and res is not None:
        drift = res.model.trend == "c"
    return " with drift" if drift else ", drift by AICc" if drift is None else ""


def _drift_by_aicc(fit, drift_fits: bool = True):
    """``fit(False)``, or ``fit(True)`` (the same model with a drift) where its AICc is lower, as auto.arima
    chooses (Hyndman & Khandakar 2008). ``drift_fits``: whether the data leave room for the drift's parameter;
    a drift fit that fails or has no finite AICc leaves the plain one."""
    plain = fit(False)
    if not drift_fits:
        return plain
    try:
        drifted = fit(True)
    except Exception as err:  # noqa: BLE001 - the plain fit stands
        log.info("the drift fit failed, the model without one is kept: %s", err)
        return plain
    better = math.isfinite(drifted.aicc) and (drifted.aicc < plain.aicc or not math.isfinite(plain.aicc))
    return drifted if better else plain


def _arima_trend(order, seasonal_order, drift: bool) -> str | None:
    """SARIMAX's trend: a constant where nothing is differenced (the mean) or, with ``drift``, where one
    difference is taken (then the constant is the mean step: a drift); otherwise differencing carries the level."""
    differences = order[1] + seasonal_order[1]
    if differences == 0 or (drift and differences == 1):
        return "c"
    if drift:
        raise RnnkitError(f"a drift needs d + D = 1, got d={order[1]}, D={seasonal_order[1]}")
    return None


def _fit_arima(y: np.ndarray, cfg):
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    order, seasonal_order, drift = cfg
    if drift is None:  # decided by AICc
        return _drift_by_aicc(
            lambda d: _fit_arima(y, (order, seasonal_order, d)),
            _arima_fits(len(y), (order, seasonal_order, True)),
        )
    trend = _arima_trend(order, seasonal_order, drift)
    model = SARIMAX(y, order=order, seasonal_order=seasonal_order, trend=trend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(disp=False, maxiter=200)


def _arima_bounds(res, horizon: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    """ARIMA's interval: the Gaussian forecast distribution of the state-space model."""
    ci = np.asarray(res.get_forecast(horizon).conf_int(alpha=1 - level), dtype=np.float64)
    return ci[:, 0], ci[:, 1]


def arima_forecast(
    history, horizon: int, order=(0, 1, 1), seasonal_order=(0, 0, 0, 0), drift: bool = False
) -> np.ndarray:
    """Seasonal ARIMA (statsmodels ``SARIMAX``, maximum likelihood) fitted on ``history``; forecast ``horizon`` steps.

    ``order = (p, d, q)``, ``seasonal_order = (P, D, Q, m)``; ``(0, 1, 1)(0, 1, 1)[12]`` is the "airline" model.
    An undifferenced model (d = D = 0) has a constant (the mean); ``drift`` adds one to a model with
    d + D = 1, the mean step per period (``ARIMA(0,1,0)`` with drift is the random walk with drift).

    Example::

        >>> arima_forecast([1.0, 2.1, 2.9, 4.2, 5.0, 5.9, 7.1, 8.0], 2, order=(0, 1, 0), drift=True).round(1)
        array([ 9., 10.])
    """
    y = _series(history)
    _check_h(horizon)
    cfg = (tuple(order), tuple(seasonal_order), bool(drift))
    fc = np.asarray(_fit_arima(y, cfg).forecast(horizon), dtype=np.float64)
    return _clip(fc, y)


# ----------------------------------------------------------------------------- selection
def _select(
    name, train, val, horizon, candidates, fit, describe, info_name, level=None, bounds=None, fitted=None
) -> Forecast:
    """Each candidate fitted on ``train`` and scored on ``val`` (``info_name`` of the fit without one); the best
    refitted on ``train + val``. ``fitted(cfg, res)``, when given, names the refitted model (a choice made
    while fitting, like ARIMA's drift); otherwise ``describe(cfg)``."""
    train = _series(train, "train")
    val = _series(val, "val") if len(np.atleast_1d(val)) else np.zeros(0)
    _check_h(horizon)
    scores: dict[str, float] = {}
    skipped: dict[str, str] = {}
    best = None
    for cfg in candidates:
        label = describe(cfg)
        try:
            res = fit(train, cfg)
            if len(val):
                fc = _clip(np.asarray(res.forecast(len(val)), dtype=np.float64), train)
                if not np.all(np.isfinite(fc)):
                    raise FloatingPointError("non-finite forecast")
                score = float(np.mean(np.abs(fc - val)))
            else:
                score = float(getattr(res, info_name))
            if not math.isfinite(score):
                raise FloatingPointError(f"non-finite {info_name}")
        except Exception as err:  # noqa: BLE001 - any failing configuration is skipped, with its reason
            skipped[label] = f"{type(err).__name__}: {err}"
            log.info("%s %s skipped: %s", name, label, skipped[label])
            continue
        scores[label] = score
        if best is None or score < scores[describe(best)]:
            best = cfg
    history = np.concatenate([train, val])
    if best is not None:
        try:
            res = fit(history, best)
            values = _clip(np.asarray(res.forecast(horizon), dtype=np.float64), history)
            if not np.all(np.isfinite(values)):
                raise FloatingPointError("non-finite forecast")
            label = fitted(best, res) if fitted is not None else describe(best)
            out = Forecast(name, values, label, "val_mae" if len(val) else info_name, scores, skipped)
            if level is not None and bounds is not None:
                _add_bounds(out, res, history, level, bounds)
            return out
        except Exception as err:  # noqa: BLE001
            skipped[describe(best) + " (refit on train+val)"] = f"{type(err).__name__}: {err}"
            log.warning("%s %s failed on train+val: %s", name, describe(best), err)
    if not candidates:  # too short for every model: expected on short series, so not a warning
        log.info(
            "%s: %d training values are too few for any configuration; the naive forecast", name, len(train)
        )
    else:
        log.warning("%s: no configuration could be fitted; falling back to the naive forecast", name)
    return Forecast(name, naive(history, horizon), "naive fallback", "none", scores, skipped)


def _add_bounds(out: Forecast, res, history: np.ndarray, level: float, bounds) -> None:
    """Set ``out.lower/upper`` from the fitted model; an interval that cannot be computed is left out (and
    logged), the point forecast is kept."""
    try:
        lo, hi = bounds(res, len(out.values), level)
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise FloatingPointError("non-finite interval")
    except Exception as err:  # noqa: BLE001 - the interval is optional; the forecast stands
        log.info("%s %s: no interval: %s", out.name, out.config, err)
        return
    out.lower, out.upper = _clip(np.asarray(lo, dtype=np.float64), history), _clip(np.asarray(hi), history)


@one_blas_thread
def select_ets(train, val, horizon: int, season: int = 1, level: float | None = None) -> Forecast:
    """ETS / Holt-Winters: trend none/additive/damped x seasonality none/additive/multiplicative, chosen on ``val``.

    Multiplicative seasonality is tried only on strictly positive data, seasonal forms only with at least two
    full seasons (+2) of training data. Chosen by validation MAE (AICc when ``val`` is empty), then refitted on
    ``train + val`` for the ``horizon`` steps that follow ``val``; with ``level`` (e.g. 0.8) also its interval.
    """
    y = _series(train, "train")
    return _select(
        "ets",
        y,
        val,
        horizon,
        _ets_candidates(y, season),
        lambda h, c: _fit_ets(h, season, c),
        _ets_name,
        "aicc",
        level,
        _ets_bounds,
    )


@one_blas_thread
def select_arima(train, val, horizon: int, season: int = 1, level: float | None = None) -> Forecast:
    """Seasonal ARIMA over a small grid, chosen by validation MAE (AIC when ``val`` is empty), refitted on train+val.

    Grid: ``(p, d, q)`` in (1,0,0) [with a constant], (0,1,1), (1,1,0), (1,1,1), (2,1,0), times seasonal
    ``(P, D, Q)`` in (0,1,1), (1,1,0) when ``season > 1`` and ``train`` holds three seasons, else none; and
    a drift for every model with one difference in all (d + D = 1) where it lowers the AICc of the fit (as
    auto.arima, Hyndman & Khandakar 2008; only the orders compete on validation). A model is left out where
    ``train`` is too short for its parameters (see ``_arima_fits``); with none left the forecast is naive.
    With ``level`` (e.g. 0.8) also its interval.
    """
    y = _series(train, "train")
    return _select(
        "arima",
        y,
        val,
        horizon,
        _arima_candidates(y, season),
        _fit_arima,
        _arima_name,
        "aic",
        level,
        _arima_bounds,
        _arima_name,
    )


def forecast_baselines(
    train,
    val,
    horizon: int,
    season: int = 1,
    methods=("naive", "seasonal_naive", "ets", "arima"),
    level: float | None = None,
) -> dict[str, Forecast]:
    """All baselines' forecasts of the ``horizon`` steps after ``train + val``, as ``{name: Forecast}``.

    Args:
        train, val: consecutive parts of one series (``val`` may be empty); shape ``(T,)`` or ``(T, 1)``.
        horizon: steps to forecast after the end of ``val`` (the test part).
        season: the seasonal period (12 for monthly data, 52 for weekly, 1 for none).
        methods: which baselines to run.
        level: also the ETS and ARIMA forecast intervals of this coverage (``Forecast.lower/upper``).

    Example::

        out = forecast_baselines(y[:-36], y[-36:-12], horizon=12, season=12)
        mae = {k: np.abs(f.values - y[-12:]).mean() for k, f in out.items()}
    """
    unknown = set(methods) - {"naive", "seasonal_naive", "ets", "arima"}
    if unknown:
        raise RnnkitError(f"unknown baselines {sorted(unknown)}; expected naive, seasonal_naive, ets, arima")
    train = _series(train, "train")
    val = _series(val, "val") if len(np.atleast_1d(val)) else np.zeros(0)
    history = np.concatenate([train, val])
    out: dict[str, Forecast] = {}
    if "naive" in methods:
        out["naive"] = Forecast("naive", naive(history, horizon))
    if "seasonal_naive" in methods and season > 1 and len(history) >= season:
        out["seasonal_naive"] = Forecast(
            "seasonal_naive", seasonal_naive(history, horizon, season), f"season={season}"
        )
    if "ets" in methods:
        out["ets"] = select_ets(train, val, horizon, season, level)
    if "arima" in methods:
        out["arima"] = select_arima(train, val, horizon, season, level)
    return out
