"""Would a stronger ARIMA grid make the practitioner's baseline (and the pool's partner) better? Classical only.

At the forecaster's own comparison origins (same split, same selection on validation MAE, same refit), the
current grid of :func:`rnnkit.baselines.forecast.select_arima` against variants of it:

* ``no-drift``: the grid without drifts (as before 3 Dec 2026, but with the check that leaves out models too
  large for the series); to measure what the drift buys;
* ``val-drift``: the drift as a candidate of its own, chosen or not on validation like an order (the rule of
  3 Dec 2026 before the drift was decided by the AICc of the two fits, as the grid now does);
* ``log``: adds every candidate again on the log of a strictly positive series (forecast exponentiated);
* ``d2``: adds ``(0,2,1)`` and ``(0,2,2)`` without a season.

Groups: the development groups of ``nonseasonal_timeseries.py`` (``short-dev``, ``long-dev``), ``m3mK`` (20 of
the longest M3 monthly series, seeded sample K as in ``pool_partner_rules.py``), ``m3m-drawK`` (the same
without the series of samples 0..K-1: ``pool_partner_rules.py``'s ``--seed K --exclude-seeds 0 .. K-1``), ``textbook-GROUP``
(``textbook_timeseries.py``'s held-out groups, without the series that has gaps), ``global-COLLECTION`` (a
built-in collection split as a global run splits it: one test horizon at each series' end, validation before
it; the run's own sample of the larger ones). Prints one JSON row per
series (MASE of ETS, ARIMA and each variant, with the variant's chosen configuration at the first origin)
and per variant the geometric mean of its MASE over the current ARIMA's (on how many series better / worse),
over ETS's and over min(ETS, ARIMA).

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/arima_grid_variants.py short-dev no-drift log+d2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import rnnkit.baselines.forecast as F
from rnnkit.apps.metrics import mase_scale
from rnnkit.apps.timeseries import TimeSeriesConfig
from rnnkit.apps.timeseries.baselines import classical_forecasts, comparison_origins
from rnnkit.apps.timeseries.data import part_sizes

PARTS = ("no-drift", "val-drift", "log", "d2")


class _LogFit:
    """A model fitted on ``log y``: its forecasts exponentiated (the median of a log-normal forecast)."""

    def __init__(self, res):
        self.res, self.aic = res, res.aic

    def forecast(self, h):
        return np.exp(np.asarray(self.res.forecast(h)))


@contextlib.contextmanager
def grid(variant: str):
    """``select_arima`` with the candidates of ``variant`` (``no-drift``, ``log+d2``, ...) while inside."""
    parts = set(variant.split("+"))
    base_candidates, base_name, base_fit = F._arima_candidates, F._arima_name, F._fit_arima

    def candidates(y, season):
        out = []
        for c in base_candidates(y, season):  # drift None: decided by AICc when fitted (the default grid)
            if c[2] is None and "no-drift" in parts:
                c = (*c[:2], False)
            elif c[2] is None and "val-drift" in parts:
                out.append((*c[:2], False, False))
                c = (*c[:2], True)
                if not F._arima_fits(len(y), c):
                    continue
            out.append((*c, False))
        if "val-drift" in parts:  # plain models first, so a tie keeps the model without a drift (as it did)
            out.sort(key=lambda c: c[2] is True)
        if "d2" in parts:
            out += [((0, 2, q), (0, 0, 0, 0), False, False) for q in (1, 2)]
        if "log" in parts and np.all(y > 0):
            out += [(*c[:3], True) for c in out]
        return out

    def fit(y, cfg):
        return _LogFit(base_fit(np.log(y), cfg[:3])) if cfg[3] else base_fit(y, cfg[:3])

    def name(cfg, res=None):
        return base_name(cfg[:3], res.res if isinstance(res, _LogFit) else res) + (" log" if cfg[3] else "")

    saved = F._arima_candidates, F._fit_arima, F._arima_name
    F._arima_candidates, F._fit_arima, F._arima_name = candidates, fit, name
    try:
        yield
    finally:
        F._arima_candidates, F._fit_arima, F._arima_name = saved


def _single(name: str, values, season: int, h: int):
    """One series as the single-series forecaster splits it: ``(name, y, season, h, n_tr, origins, scale)``."""
    y = np.asarray(values, dtype=np.float64)
    cfg = TimeSeriesConfig(season=season, horizon=h)
    n_tr, n_val, _ = part_sizes(cfg, len(y))
    cmp = comparison_origins(n_tr + n_val, len(y), h, cfg.baseline_origins)
    return name, y, season, h, n_tr, cmp, mase_scale(y[:n_tr], season)


def series(group: str, max_series: int = 0) -> list[tuple]:
    """``(name, values, season, horizon, train size, origins, MASE scale)`` of every series of a group."""
    import nonseasonal_timeseries as N

    if group in N.GROUPS:
        return [_single(n, v, 1, h) for n, v, h in N.series(group) if v is not None]
    if group.startswith("textbook-"):
        import textbook_timeseries as T

        return [_single(n, v, s, h) for n, _, v, s, h in T.series(group[9:]) if None not in v]
    if group.startswith("global-"):  # as a global run splits them: one test horizon at each series' end
        from rnnkit.apps.timeseries.panel import (
            load_panel,
            mase_scales,
            resolve_global,
            sample_series,
            series_split,
        )

        cfg = TimeSeriesConfig(data=group[7:], max_series=max_series)
        panel = sample_series(load_panel(cfg), cfg.max_series, cfg.seed)
        cfg = resolve_global(cfg, panel)
        splits = [series_split(len(y), cfg) for y in panel.values]
        scales = mase_scales(cfg, panel, splits)
        return [
            (sid, y, cfg.season, cfg.horizon, sp.train, [sp.test_origin], sc)
            for sid, y, sp, sc in zip(panel.ids, panel.values, splits, scales)
        ]
    from pool_partner_rules import longest_sample

    if group.startswith("m3m-draw"):  # pool_partner_rules' draw K: seed K, without the series of draws 0..K-1
        k = int(group[8:])
        panel, pick = longest_sample("m3-monthly", 20, k, range(k))
    else:
        panel, pick = longest_sample("m3-monthly", 20, int(group[3:]))
    return [_single(f"m3m-{panel.ids[i]}", panel.values[i], 12, 12) for i in pick]


def _group(text: str) -> str:
    import nonseasonal_timeseries as N
    import textbook_timeseries as T
    from rnnkit.apps.timeseries.panel import PANELS

    ok = (
        text in N.GROUPS
        or (text.startswith("m3m") and text[3:].isdigit())
        or (text.startswith("m3m-draw") and text[8:].isdigit())
        or (text.startswith("textbook-") and text[9:] in T.GROUPS)
        or (text.startswith("global-") and text[7:] in PANELS)
    )
    if not ok:
        raise argparse.ArgumentTypeError(
            f"expected one of {N.GROUPS}, m3mK, m3m-drawK, textbook-{{{','.join(T.GROUPS)}}} or "
            f"global-{{{','.join(PANELS)}}}, got {text!r}"
        )
    return text


def _variant(text: str) -> str:
    if not text or not set(text.split("+")) <= set(PARTS):
        raise argparse.ArgumentTypeError(f"expected parts of {PARTS} joined by '+', got {text!r}")
    return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("group", type=_group)
    p.add_argument("variants", nargs="+", type=_variant)
    p.add_argument(
        "--max-series", type=int, default=0, help="global-COLLECTION: a seeded sample of at most this many"
    )
    a = p.parse_args()
    if a.max_series < 0:
        p.error(f"--max-series: expected 0 (all) or more, got {a.max_series}")
    rows = []
    for name, y, season, h, n_tr, cmp, scale in series(a.group, a.max_series):
        actual = np.stack([y[o : o + h] for o in cmp])
        fc, _, _ = classical_forecasts(y, n_tr, cmp, h, season, methods=("ets", "arima"))
        row = {"data": name, **{k: float(np.abs(fc[k] - actual).mean() / scale) for k in ("ets", "arima")}}
        for v in a.variants:
            with grid(v):
                fc, conf, _ = classical_forecasts(y, n_tr, cmp, h, season, methods=("arima",))
            row[v] = float(np.abs(fc["arima"] - actual).mean() / scale)
            row[v + "_cfg"] = conf["arima"][0]
        rows.append(row)
        print(json.dumps(row), flush=True)
    arima, ets = (np.array([r[k] for r in rows]) for k in ("arima", "ets"))
    for k in ["arima", *a.variants]:
        x = np.array([r[k] for r in rows])
        geo = {
            name: math.exp(np.mean(np.log(x / ref)))
            for name, ref in (("arima", arima), ("ets", ets), ("best", np.minimum(ets, arima)))
        }
        print(f"{a.group} {k}: mean MASE {x.mean():.3f} (ETS {ets.mean():.3f}); geometric mean of MASE over the current ARIMA's {geo['arima']:.3f} (better on "
              f"{int((x < arima - 1e-9).sum())}, worse on {int((x > arima + 1e-9).sum())} of {len(x)}), over "
              f"ETS's {geo['ets']:.3f}, over min(ETS, ARIMA) {geo['best']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
