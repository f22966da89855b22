"""The forecaster's report: scores at every test origin next to the naive and seasonal naive forecasts, scores
at the comparison origins next to every baseline (:mod:`rnnkit.apps.timeseries.baselines`), the goal, the plots, a sample and the results table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnnkit._errors import RnnkitError
from rnnkit.apps import plots
from rnnkit.apps._common import format_value
from rnnkit.apps.base import ResultRow
from rnnkit.apps.baselines import naive_forecast, seasonal_naive_forecast
from rnnkit.apps.metrics import mae, smape
from rnnkit.apps.timeseries.config import TimeSeriesConfig
from rnnkit.apps.timeseries.data import futures_at, preset_of
from rnnkit.apps.timeseries.model import forecast_at
from rnnkit.datasets import TimeSeries

__all__ = [
    "compare",
    "evaluate_origins",
    "goal_met",
    "goal_of",
    "interval_bounds",
    "interval_offsets",
    "interval_scores",
    "label_of",
    "plot_forecast",
    "result_rows",
    "samples",
    "score",
    "series_scores",
    "summarize",
]


def score(actual: np.ndarray, forecast: np.ndarray, scale: float) -> dict[str, float]:
    return {
        "mae": mae(actual, forecast),
        "smape": smape(actual, forecast),
        "mase": mae(actual, forecast) / scale,
    }


def evaluate_origins(model, scaler, values, target, origins, cfg, scale) -> dict[str, Any]:
    """Scores of the model and both baselines at ``origins`` (all horizon steps)."""
    actual = futures_at(target, origins, cfg.horizon)
    fc = forecast_at(model, scaler, values, origins, cfg.window)
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


def interval_bounds(
    fc: np.ndarray, offsets, kind: str, nonnegative: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the forecast interval around ``fc`` (n, H); clipped at 0 if ``nonnegative``.

    ``offsets`` (2, H) are the lower and upper error quantiles per step (of the log values when ``kind`` is
    ``"ratio"``: the bounds are ``fc * exp(offset)``); an (H,) half-width ``q`` (runs written before the
    interval had two tails) means ``(-q, q)``.
    """
    lower, upper = interval_offsets(offsets)
    if kind == "ratio":
        return fc * np.exp(lower), fc * np.exp(upper)
    return (np.maximum(fc + lower, 0.0) if nonnegative else fc + lower), fc + upper


def interval_offsets(offsets, horizon: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(lower, upper)`` of (2, H) offsets, or ``(-q, q)`` of an (H,) half-width (older runs).

    With ``horizon``, anything else (another shape, a non-finite number) is a ``ValueError``: how a run's
    stored interval is checked when it is loaded."""
    q = np.asarray(offsets, dtype=np.float64)
    if horizon is not None and (q.shape not in ((2, horizon), (horizon,)) or not np.all(np.isfinite(q))):
        raise ValueError(f"interval offsets: expected (2, {horizon}) finite numbers, got shape {q.shape}")
    return (q[0], q[1]) if q.ndim == 2 else (-q, q)


def _log_ratio(actual, fc):
    """``log(actual / forecast)``, with values at or below 0 taken as a tiny positive number."""
    return np.log(np.maximum(actual, 1e-300)) - np.log(np.maximum(fc, 1e-300))


def _error_quantiles(err: np.ndarray, level: float, tails: str = "symmetric") -> np.ndarray:
    """(2, H) lower and upper offsets from (n, H) signed errors, per horizon step with at least 20 rows, else
    pooled over the steps (too few errors per step).

    ``tails="symmetric"``: ``-+`` the ``level`` quantile of the absolute errors (split conformal prediction's
    usual interval). ``"equal"``: the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the signed
    errors, the central interval that the interval score (MSIS) rewards when the errors are skewed
    (Gneiting & Raftery 2007, sec. 6.2), estimated from one tail's errors each, so it needs more of them.
    """
    rows = err if len(err) >= 20 else err.reshape(-1, 1)
    if tails == "equal":
        q = np.quantile(rows, [(1 - level) / 2, (1 + level) / 2], axis=0)
    else:
        half = np.quantile(np.abs(rows), level, axis=0)
        q = np.stack([-half, half])
    return q if len(err) >= 20 else np.repeat(q, err.shape[1], axis=1)


def interval_scores(model, scaler, values, target, val_origins, test_origins, cfg) -> dict[str, Any]:
    """A forecast interval calibrated on the validation errors, and its coverage of the test values.

    The bounds are the forecast plus the offsets of :func:`_error_quantiles` (``cfg.interval_tails``) of the
    validation errors (of the log values when the target is log-transformed, so the interval is a ratio),
    per horizon step when there are at least 20 validation origins, else pooled over the steps. Empty
    without a validation part.
    """
    if len(val_origins) == 0:
        return {}
    kind = "ratio" if scaler.log[scaler.t] and scaler.nonnegative else "additive"

    def at(origins):
        return forecast_at(model, scaler, values, origins, cfg.window), futures_at(
            target, origins, cfg.horizon
        )

    fc, actual = at(val_origins)
    err = _log_ratio(actual, fc) if kind == "ratio" else actual - fc
    offsets = _error_quantiles(err, cfg.interval, cfg.interval_tails)
    fc, actual = at(test_origins)
    lo, hi = interval_bounds(fc, offsets, kind, scaler.nonnegative)
    return {
        "level": cfg.interval,
        "kind": kind,
        "offsets": offsets.tolist(),
        "val_origins": len(val_origins),
        "coverage": float(np.mean((actual >= lo) & (actual <= hi))),
        "mean_width": float(np.mean(hi - lo)),
    }


def panel_interval(level: float, fc, actual, scales, tails: str = "symmetric") -> dict[str, Any]:
    """The forecast interval of a global model, calibrated on every series' validation horizon.

    Errors are made comparable across series of different sizes in MASE units, ``(actual - forecast) /
    scale`` with the series' MASE denominator (``kind = "scaled"``; runs before 2026-12-02 took log ratios
    for log-transformed series, ``kind = "ratio"``, which tied the width to the level: :func:`panel_bounds`
    still reads them). The lower and upper offsets are :func:`_error_quantiles` (``tails``) of the errors
    over the series, per horizon step with at least 20 series, else pooled over the steps. Returns
    ``{"level", "kind", "offsets", "val_series"}`` (offsets (2, H)); :func:`panel_bounds` turns it into
    bounds.

    Shapes: ``fc``, ``actual`` (S, H); ``scales`` (S,).
    """
    fc, actual = np.asarray(fc, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    err = (actual - fc) / np.asarray(scales, dtype=np.float64)[:, None]
    return {
        "level": level,
        "kind": "scaled",
        "offsets": _error_quantiles(err, level, tails).tolist(),
        "val_series": len(err),
    }


def panel_bounds(
    fc, interval: dict[str, Any], scale: float, nonnegative: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds around one series' (H,) or (n, H) forecast ``fc`` (see :func:`panel_interval`)."""
    offsets = np.asarray(interval["offsets"], dtype=np.float64)
    if interval["kind"] == "ratio":
        return interval_bounds(fc, offsets, "ratio", nonnegative)
    return interval_bounds(fc, offsets * scale, "additive", nonnegative)


def panel_all_bounds(
    forecasts, interval: dict[str, Any], scales, nonnegative
) -> tuple[np.ndarray, np.ndarray]:
    """The bounds of every series' (H,) forecast, stacked: ``(lower, upper)``, each (S, H)."""
    pairs = [
        panel_bounds(np.asarray(f, dtype=np.float64), interval, s, nn)
        for f, s, nn in zip(forecasts, scales, nonnegative)
    ]
    return np.stack([lo for lo, _ in pairs]), np.stack([hi for _, hi in pairs])


def panel_coverage(forecasts, actual, interval: dict[str, Any], scales, nonnegative) -> dict[str, float]:
    """Share of the actual values inside the bounds, the mean width in MASE units (width / scale) and the
    MSIS (see :func:`interval_comparison`)."""
    bounds = panel_all_bounds(forecasts, interval, scales, nonnegative)
    return interval_comparison(actual, {"model": bounds}, scales, interval["level"])["model"]


def interval_comparison(actual, bounds: dict[str, tuple], scale, level: float) -> dict[str, dict[str, float]]:
    """Each forecaster's ``level`` interval on the same test values: ``{name: {"coverage",
    "mean_scaled_width", "msis"}}``.

    ``bounds`` maps a name to ``(lower, upper)`` of the shape of ``actual`` (n, H); ``scale`` is the MASE
    denominator (a number, or one per row), so widths compare across series. A well-calibrated 80 % interval
    covers about 0.8 of the values; of two such intervals the narrower one says more. The mean scaled
    interval score (MSIS, the M4 competition's interval measure; Gneiting & Raftery 2007) weighs both: the
    width plus ``2 / (1 - level)`` times how far each value falls outside, in MASE units; lower is better.
    """
    actual = np.asarray(actual, dtype=np.float64)
    s = np.asarray(scale, dtype=np.float64)
    s = s[:, None] if s.ndim == 1 else s
    penalty = 2.0 / (1.0 - level)
    out = {}
    for name, (lo, hi) in bounds.items():
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        miss = np.maximum(lo - actual, 0.0) + np.maximum(actual - hi, 0.0)
        out[name] = {
            "coverage": float(np.mean((actual >= lo) & (actual <= hi))),
            "mean_scaled_width": float(np.mean((hi - lo) / s)),
            "msis": float(np.mean((hi - lo + penalty * miss) / s)),
        }
    return out


def interval_line(level: float, comparison: dict[str, dict[str, float]]) -> str:
    """One line for the log: every forecaster's coverage of its own interval and its width in MASE units."""
    parts = [
        f"{k} {v['coverage']:.3f} (width {v['mean_scaled_width']:.2f}, MSIS {v['msis']:.2f})"
        for k, v in comparison.items()
    ]
    return f"{round(100 * level)} % interval, coverage of the test values: " + ", ".join(parts)


LONG_SERIES = 400  # series at least this long are "long": the goal is to beat the strongest baseline


def goal_of(cfg: TimeSeriesConfig, n: int) -> tuple[str, str]:
    """``(metric, goal text)``: MASE against the strongest baseline at the comparison origins.

    Within 10 % of it on short series (fewer than ``LONG_SERIES`` values), below it on long ones.
    """
    return "MASE", "< best baseline" if n >= LONG_SERIES else "<= 1.1 x best baseline"


def goal_met(model_mase: float, best_mase: float, n: int) -> bool:
    return model_mase < best_mase if n >= LONG_SERIES else model_mase <= 1.1 * best_mase


def compare(actual: np.ndarray, model_fc: np.ndarray, baseline_fc: dict[str, np.ndarray], scale: float):
    """Scores of the model and every baseline at the comparison origins, and the strongest baseline's name."""
    scores = {name: score(actual, fc, scale) for name, fc in baseline_fc.items()}
    best = min(scores, key=lambda k: scores[k]["mase"])
    return score(actual, model_fc, scale), scores, best


def label_of(cfg: TimeSeriesConfig) -> str:
    return preset_of(cfg.data)[3] or Path(cfg.data).name


def result_rows(cfg: TimeSeriesConfig, model: dict, baselines: dict, best: str, n: int, seconds: float):
    """The results-table line: the model's MASE next to the strongest baseline's (all baselines kept)."""
    metric, goal = goal_of(cfg, n)
    task = f"{label_of(cfg)}, {cfg.horizon}-step"
    return [
        ResultRow(
            task,
            metric,
            model["mase"],
            best,
            baselines[best]["mase"],
            goal,
            goal_met(model["mase"], baselines[best]["mase"], n),
            seconds,
            {k: v["mase"] for k, v in baselines.items()},
        )
    ]


def _times_axis(ts: TimeSeries):
    """The plot's x values: dates where the times are ISO dates a plot can show (years 1-9999), else the times as
    numbers (a column of step numbers ``0, 1, ...`` would otherwise read as the years 0, 1, ...), else None
    (positions)."""
    try:
        dates = ts.as_datetime64()
        years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
        if years.min() >= 1 and years.max() <= 9999 and not _all_small_integers(ts.times):
            return dates
    except RnnkitError:
        pass
    try:
        return np.array(ts.times, dtype=np.float64)
    except ValueError:
        return None


def _all_small_integers(times) -> bool:
    """Times written as integers of at most three digits: step numbers, not years."""
    return all(t.lstrip("-").isdigit() and len(t.lstrip("-")) <= 3 for t in map(str, times))


def plot_forecast(cfg, ts, target, origins, test, test_start, path, label, pool=None):
    """forecast.png: the network's forecasts at every ``H``-th test origin, naive's (and seasonal naive's) at
    the first, and with ``pool = (mixture, comparison origins, pooled (n, H))`` the pool's at the comparison
    origins (what ``predict`` forecasts), its MASE in the title."""
    H = cfg.horizon
    picks = [i for i in range(0, len(origins), max(H // cfg.stride, 1))]
    forecasts = [(int(origins[i]), test["forecasts"][i]) for i in picks]
    baselines = {name: (int(origins[0]), fc[0]) for name, fc in test["baselines"].items()}
    if cfg.season == 1:
        baselines.pop("seasonal naive")
    m = test["model"]
    who = "network, every origin: " if pool is not None else ""
    title = (
        f"{label}: {H}-step forecasts on the held-out part\n({who}MAE {m['mae']:.3g}, MASE {m['mase']:.3g}; "
        f"naive MASE {test['naive']['mase']:.3g}, seasonal naive {test['seasonal_naive']['mase']:.3g})"
    )
    lines = None
    if pool is not None:
        mixture, cmp, pooled = pool
        members = " + ".join(["network"] + [p.upper() for p in mixture["with"].split("+")])
        lines = (f"rnnkit forecast: {members}", [(int(o), np.asarray(f)) for o, f in zip(cmp, pooled)])
        title += f"\n{lines[0]}: MASE {mixture['test']['mase']:.3g} at {len(cmp)} comparison origin(s)"
    history = max(3 * max(cfg.season, H), cfg.window)
    return plots.plot_forecast(
        _times_axis(ts), target, test_start, forecasts, baselines, path, title, cfg.target, history, lines
    )


def samples(ts, target, origins, test, cfg) -> list[str]:
    i = 0
    o = int(origins[i])
    fc = test["forecasts"][i]
    steps = sorted({0, cfg.horizon // 4, cfg.horizon // 2, cfg.horizon - 1})
    lines = [f"forecast made at {ts.times[o - 1]} (last value {format_value(target[o - 1])}):"]
    for h in steps:
        fc_h, actual, snaive = (
            format_value(v) for v in (fc[h], target[o + h], test["baselines"]["seasonal naive"][i][h])
        )
        lines.append(
            f"  +{h + 1:<3} {ts.times[o + h]:>12}  forecast {fc_h:>9}   actual {actual:>9}   seasonal naive {snaive:>9}"
        )
    return lines


# ---------------------------------------------------------------------------------------------------------
# a global model over many series
# ---------------------------------------------------------------------------------------------------------
def series_scores(actual, forecasts, scales) -> dict[str, list[float]]:
    """Per-series ``{"mase": [...], "smape": [...], "mae": [...]}`` of (H,) forecasts against (H,) actuals."""
    rows = [score(a, f, s) for a, f, s in zip(actual, forecasts, scales)]
    return {k: [r[k] for r in rows] for k in ("mase", "smape", "mae")}


def summarize(per_series: dict[str, list[float]]) -> dict[str, float]:
    """Mean and median over the series of MASE and sMAPE (the M competitions report the mean)."""
    out = {"series": len(per_series["mase"])}
    for k in ("mase", "smape"):
        v = np.asarray(per_series[k], dtype=np.float64)
        out[f"{k}_mean"] = float(v.mean())
        out[f"{k}_median"] = float(np.median(v))
    out["mase"] = out["mase_mean"]  # the number the results table and the goal read
    return out
