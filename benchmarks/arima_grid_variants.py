"""Would a stronger ARIMA grid make the practitioner's baseline (and the pool's partner) better? Classical only.

At the forecaster's own comparison origins (same split, same selection on validation MAE, same refit), the
current grid of :func:`rnnkit.baselines.forecast.select_arima` against variants that add:

* ``drift``: the same orders with a constant where ``d + D == 1`` (a drift, as auto.arima allows);
* ``log``: every candidate again on the log of a strictly positive series (forecast exponentiated);
* ``d2``: ``(0,2,1)`` and ``(0,2,2)`` without a season.

Groups: the development groups of ``nonseasonal_timeseries.py`` (``short-dev``, ``long-dev``), ``m3mK`` (20 of
the longest M3 monthly series, seeded sample K as in ``pool_partner_rules.py``), ``textbook-GROUP``
(``textbook_timeseries.py``'s held-out groups, without the series that has gaps). Prints one JSON row per
series (MASE of ETS, ARIMA and each variant, with the variant's chosen configuration at the first origin)
and per variant the geometric mean of MASE / min(ETS, ARIMA).

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/arima_grid_variants.py short-dev drift drift+log
"""

import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import rnnkit.baselines.forecast as F
from rnnkit.apps.metrics import mase_scale
from rnnkit.apps.timeseries import TimeSeriesConfig
from rnnkit.apps.timeseries.baselines import classical_forecasts, comparison_origins
from rnnkit.apps.timeseries.data import part_sizes

orig_cands, orig_fit, orig_name = F._arima_candidates, F._fit_arima, F._arima_name


class LogRes:
    def __init__(s, r):
        s.r = r

    def forecast(s, h):
        return np.exp(np.asarray(s.r.forecast(h)))

    aic = property(lambda s: s.r.aic)


def make(variant):
    def cands(y, season):
        base = [(o, so, False, False) for o, so in orig_cands(y, season)]
        out = list(base)
        if "drift" in variant:
            out += [(o, so, True, False) for o, so, _, _ in base if o[1] + so[1] == 1]
        if "d2" in variant:
            out += [((0, 2, 1), (0, 0, 0, 0), False, False), ((0, 2, 2), (0, 0, 0, 0), False, False)]
        if "log" in variant and np.all(y > 0):
            out += [(o, so, d, True) for o, so, d, _ in out]
        return out

    def fit(y, cfg):
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        o, so, drift, lg = cfg
        trend = "c" if (o[1] == 0 and so[1] == 0) or drift else None
        z = np.log(y) if lg else y
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = SARIMAX(z, order=o, seasonal_order=so, trend=trend).fit(disp=False, maxiter=200)
        return LogRes(r) if lg else r

    def name(cfg):
        return orig_name(cfg[:2]) + (" drift" if cfg[2] else "") + (" log" if cfg[3] else "")

    return cands, fit, name


def series(group):
    import nonseasonal_timeseries as N

    if group in N.GROUPS:
        return [(n, v, 1, h) for n, v, h in N.series(group) if v is not None]
    if group.startswith("textbook-"):
        import textbook_timeseries as T

        return [(n, v, s, h) for n, t, v, s, h in T.series(group[9:]) if None not in v]
    if group.startswith("m3m"):
        from rnnkit.apps.timeseries.panel import load_panel

        panel = load_panel(TimeSeriesConfig(data="m3-monthly"))
        lengths = np.array([len(v) for v in panel.values])
        longest = np.flatnonzero(lengths == lengths.max())
        pick = np.sort(np.random.default_rng(int(group[3:])).choice(longest, 20, replace=False))
        return [(f"m3m-{panel.ids[i]}", panel.values[i].tolist(), 12, 12) for i in pick]
    raise SystemExit(group)


group, variants = sys.argv[1], sys.argv[2:]
rows = []
for name, values, season, h in series(group):
    y = np.asarray(values, dtype=np.float64)
    cfg = TimeSeriesConfig(season=season, horizon=h)
    n = len(y)
    n_tr, n_val, _ = part_sizes(cfg, n)
    cmp = comparison_origins(n_tr + n_val, n, h, cfg.baseline_origins)
    scale = mase_scale(y[:n_tr], season)
    actual = np.stack([y[o : o + h] for o in cmp])
    row = {"data": name}
    F._arima_candidates, F._fit_arima, F._arima_name = orig_cands, orig_fit, orig_name
    fc, conf, _ = classical_forecasts(y, n_tr, cmp, h, season, methods=("ets", "arima"))
    row["ets"] = float(np.abs(fc["ets"] - actual).mean() / scale)
    row["arima"] = float(np.abs(fc["arima"] - actual).mean() / scale)
    for v in variants:
        F._arima_candidates, F._fit_arima, F._arima_name = make(v)
        fc, conf, _ = classical_forecasts(y, n_tr, cmp, h, season, methods=("arima",))
        row[v] = float(np.abs(fc["arima"] - actual).mean() / scale)
        row[v + "_cfg"] = conf["arima"][0]
    rows.append(row)
    print(json.dumps(row), flush=True)
best = np.array([min(r["ets"], r["arima"]) for r in rows])
for k in ["arima"] + variants:
    x = np.array([r[k] for r in rows])
    print(
        f"{group} {k}: geo vs min(ets,arima_old) {math.exp(np.mean(np.log(x / best))):.3f}; geo vs ets {math.exp(np.mean(np.log(x / np.array([r['ets'] for r in rows])))):.3f}; mean {x.mean():.3f}"
    )
