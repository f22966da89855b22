"""The forecaster's defaults on held-out series it was not tuned on, next to the practitioner's baselines.

Trains ``rnnkit train timeseries --data NAME`` with the default settings (only ``time_budget``, ``threads`` and
the run folder set) on held-out series of :mod:`rnnkit.datasets.extra` and prints the Markdown table of
docs/applications.md: MASE at the comparison origins (the first non-overlapping horizons of the test part)
for the recurrent ensemble, ETS / Holt-Winters, seasonal ARIMA, the MLP on the same window and seasonal naive.

For the short series (one comparison origin each) it also prints MASE over every rolling test origin of
the network, ETS, ARIMA and seasonal naive (refitted at each origin): the less noisy view.

Last, every 80 % interval at the comparison origins, coverage (MSIS): the network's, the pool's (the
network's interval centred on the pooled forecast), ETS's and ARIMA's own.

Goal (issue 14): within 10 % of the better of ETS / ARIMA on short seasonal series, better than both on
long ones.

    .venv/bin/python benchmarks/generalise_timeseries.py [--data airpassengers wineind woolyrnq gas taylor]
        [--time-budget 120] [--runs-dir /tmp/generalise-ts] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from rnnkit._machine import machine_line
from rnnkit.apps.timeseries import TimeSeriesConfig, train
from rnnkit.apps.timeseries.report import LONG_SERIES

DEFAULT_DATA = ["airpassengers", "wineind", "woolyrnq", "gas", "taylor"]


def run_one(name: str, budget: float, runs_dir: str, threads: int) -> dict:
    cfg = TimeSeriesConfig(
        data=name, name=f"gen-{name}", runs_dir=runs_dir, time_budget=budget, threads=threads, progress=False
    )
    t0 = time.perf_counter()
    res = train(cfg, overwrite=True, say=lambda s: None)
    m = res.metrics
    c = m["comparison"]
    b = {k: v["mase"] for k, v in c["baselines"].items()}
    n = sum(m["split"].values())
    best_classic = min(b["ets"], b["arima"])
    long = n >= LONG_SERIES
    rolling = _all_origins(name, m) if not long else {}
    ok = (lambda v: v < best_classic) if long else (lambda v: v <= 1.1 * best_classic)  # noqa: E731
    mix = m.get("mixture") or {}
    return {
        "data": name,
        "n": n,
        "horizon": m["horizon"],
        "season": m["season"],
        "origins": len(c["origins"]),
        "test_origins": m["test_origins"],
        "rnnkit": c["model"]["mase"],
        **b,
        "rnnkit_all_origins": m["test"]["mase"],
        "normalize": m.get("normalize"),
        **rolling,
        "coverage": m.get("interval", {}).get("coverage"),
        "long": long,
        "goal": "< min(ETS, ARIMA)" if long else "<= 1.1 x min(ETS, ARIMA)",
        "met": ok(c["model"]["mase"]),
        "mixture": mix.get("test", {}).get("mase"),
        "share": mix.get("share"),
        "partner": mix.get("with"),
        "mixture_met": ok(mix["test"]["mase"]) if mix else None,
        "interval_comparison": c.get("interval", {}),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _all_origins(name: str, m: dict) -> dict:
    """MASE of ETS, ARIMA and seasonal naive at every test origin (stride 1, as the network's
    ``rnnkit_all_origins``): a short series has one comparison origin, so this is the less noisy view."""
    from rnnkit.apps.timeseries import load_series
    from rnnkit.apps.timeseries.baselines import classical_forecasts
    from rnnkit.apps.timeseries.report import score

    ts = load_series(TimeSeriesConfig(data=name))
    y = ts.values[:, ts.columns.index(m["target"])].astype(float)
    n_tr, n_val = m["split"]["train"], m["split"]["val"]
    h = m["horizon"]
    origins = np.arange(n_tr + n_val, len(y) - h + 1)
    fc, _, _ = classical_forecasts(
        y, n_tr, origins, h, m["season"], methods=["seasonal naive", "ets", "arima"]
    )
    actual = np.stack([y[o : o + h] for o in origins])
    return {f"{k}_all_origins": score(actual, v, m["mase_scale"])["mase"] for k, v in fc.items()}


def rolling_table(rows: list[dict]) -> str:
    """MASE over every test origin of the short series (network vs ETS, ARIMA, seasonal naive)."""
    head = "| series (test origins) | rnnkit | ETS | ARIMA | seasonal naive |\n|---|---|---|---|---|\n"
    lines = [
        f"| {r['data']} ({r['test_origins']}) | {r['rnnkit_all_origins']:.3f} | {r['ets_all_origins']:.3f} "
        f"| {r['arima_all_origins']:.3f} | {r['seasonal naive_all_origins']:.3f} |"
        for r in rows
        if "ets_all_origins" in r
    ]
    return head + "\n".join(lines) if lines else ""


def interval_table(rows: list[dict]) -> str:
    """Each 80 % interval at the comparison origins: coverage (MSIS) of the network's, the pool's (the
    network's, centred on the pooled forecast), ETS's and ARIMA's."""
    names = ["model", "mixture", "ets", "arima"]
    head = "| series | network | pool | ETS | ARIMA |\n|---|---|---|---|---|\n"
    lines = []
    for r in rows:
        ci = r.get("interval_comparison") or {}
        cells = [f"{ci[k]['coverage']:.2f} ({ci[k]['msis']:.2f})" if k in ci else "-" for k in names]
        lines.append(f"| {r['data']} | " + " | ".join(cells) + " |")
    return head + "\n".join(lines)


def table(rows: list[dict]) -> str:
    head = (
        "| series (n, h, season) | rnnkit | ETS | ARIMA | MLP | seasonal naive | naive | 80% interval coverage "
        "| goal | met | pool (partner, share) | met |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        cov = "-" if r["coverage"] is None else f"{r['coverage']:.2f}"
        mix = (
            "- | -"
            if r.get("mixture") is None
            else f"{r['mixture']:.3f} ({r['partner'].upper()} {r['share']:.2f}) | {'yes' if r['mixture_met'] else 'no'}"
        )
        lines.append(
            f"| {r['data']} ({r['n']}, {r['horizon']}, {r['season']}) | {r['rnnkit']:.3f} | {r['ets']:.3f} "
            f"| {r['arima']:.3f} | {r['mlp']:.3f} | {r['seasonal naive']:.3f} | {r['naive']:.3f} | {cov} "
            f"| {r['goal']} | {'yes' if r['met'] else 'no'} | {mix} |"
        )
    return head + "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=DEFAULT_DATA)
    p.add_argument(
        "--time-budget", type=float, default=120.0, help="training seconds per series (all members)"
    )
    p.add_argument("--runs-dir", default="/tmp/generalise-timeseries")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="also write the rows as JSON")
    args = p.parse_args()
    rows = []
    for name in args.data:
        rows.append(run_one(name, args.time_budget, args.runs_dir, args.threads))
        print(json.dumps(rows[-1]), flush=True)
    print(table(rows))
    print(rolling_table(rows))
    print(interval_table(rows))
    print(machine_line())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
