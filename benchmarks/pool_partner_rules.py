"""Which classical partner should one series' network be pooled with? Rules replayed on trained runs.

For each series a run is trained with the defaults (``rnnkit train timeseries``, season and horizon given),
then the pool is rebuilt by each rule from the run's own forecasts, at the run's validation horizons (to
choose) and its comparison origins (to score, MASE):

* ``ets``: ETS, the network's share chosen on validation (the rule until 2026-12-02);
* ``chosen``: ETS or ARIMA, partner and share chosen together on validation (``--pool-with auto``);
* ``comb``: the mean of ETS and ARIMA as the partner, the share chosen on validation;
* and, with no choice on validation, the network, ETS, ARIMA, the mean of ETS and ARIMA, and the mean of all
  three (what ``--pool-with auto`` does since 2026-12-02), and their step-by-step median;
* ``mean of 3, trimmed``: the mean of the members whose validation MASE is at most ``TRIM`` times the best
  member's (only a member far off on validation is left out).

Series: a seeded sample of one collection's longest series (each run as one series, horizon one season:
with 10 % validation and test parts a 144-month series has one validation and one test horizon, the
short-series regime), or named held-out series of :mod:`rnnkit.datasets.extra`.

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pool_partner_rules.py \\
        --collection m3-monthly --count 20 [--seed 0] [--runs-dir /tmp/pool-rules] [--json out.json]
    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pool_partner_rules.py --data nino gold
    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pool_partner_rules.py --csv rates.csv:1:10
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
from pathlib import Path

import numpy as np

from nonseasonal_timeseries import parse_overrides  # the same --set checks
from rnnkit.apps.timeseries import TimeSeriesConfig, load_series, train
from rnnkit.apps.timeseries.baselines import classical_forecasts, comparison_origins
from rnnkit.apps.timeseries.data import part_sizes
from rnnkit.apps.timeseries.mixture import choose_pool, classical_at, mix_forecasts
from rnnkit.apps.timeseries.model import forecast_at
from rnnkit.apps.timeseries.report import interval_bounds, interval_comparison
from rnnkit.apps.timeseries.use import load
from rnnkit.config import config_from_dict

RULES = (
    "network", "ets", "arima", "ets+arima", "mean of 3", "median of 3", "mean of 3, trimmed", "pool: ets",
    "pool: chosen", "pool: comb",
)  # fmt: skip
TRIM = (
    2.0  # "mean of 3, trimmed": members whose validation MASE exceeds TRIM x the best member's are left out
)


def longest_sample(collection: str, count: int, seed: int, exclude_seeds=()):
    """``(panel, indices)``: a seeded sample of ``count`` of a built-in collection's longest series (sorted),
    without those the samples of ``exclude_seeds`` pick."""
    from rnnkit.apps.timeseries.panel import load_panel

    panel = load_panel(TimeSeriesConfig(data=collection))
    lengths = np.array([len(v) for v in panel.values])
    longest = np.flatnonzero(lengths == lengths.max())

    def draw(pool, k):
        return np.random.default_rng(k).choice(pool, min(count, len(pool)), replace=False)

    everything = longest
    for k in exclude_seeds:
        longest = np.setdiff1d(longest, draw(everything, k))
    return panel, np.sort(draw(longest, seed))


def sample_series(
    collection: str, count: int, seed: int, runs_dir: Path, exclude_seeds=()
) -> list[tuple[str, dict]]:
    """``count`` series of a built-in collection, a seeded sample of its longest, as CSV files (without the
    series the samples of ``exclude_seeds`` pick: a sample disjoint from those); returns ``(csv path, config
    overrides)`` for each."""
    from rnnkit.apps.timeseries.panel import PANELS

    panel, pick = longest_sample(collection, count, seed, exclude_seeds)
    season = PANELS[collection][3]
    out = []
    runs_dir.mkdir(parents=True, exist_ok=True)
    for i in pick:
        path = runs_dir / f"{collection}-{panel.ids[i]}.csv"
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["t", "y"])
            w.writerows(zip(range(len(panel.values[i])), panel.values[i].tolist()))
        out.append((str(path), {"season": season, "horizon": season, "time_column": "t"}))
    return out


def replay(run: Path) -> dict:
    """Every rule's MASE at the run's comparison origins, the pools' choices, from the saved run."""
    model = load(run)
    cfg = model.config
    ts = load_series(cfg)
    values = ts.values.astype(np.float64)
    target = values[:, model.columns.index(model.target)]
    n = len(target)
    n_tr, n_val, _ = part_sizes(cfg, n)
    h, m = cfg.horizon, cfg.season
    scale = json.loads((run / "metrics.json").read_text())["mase_scale"]
    val_o = comparison_origins(n_tr, n_tr + n_val, h, cfg.baseline_origins)
    cmp = comparison_origins(n_tr + n_val, n, h, cfg.baseline_origins)
    if not len(val_o) or not len(cmp):
        return {}

    def at(origins):
        return np.stack([target[o : o + h] for o in origins])

    net_val = list(forecast_at(model.model, model.scaler, values, val_o, cfg.window))
    net = list(forecast_at(model.model, model.scaler, values, cmp, cfg.window))
    val = {k: [classical_at(target, o, o, h, m, k) for o in val_o] for k in ("ets", "arima")}
    fc, _, bounds = classical_forecasts(target, n_tr, cmp, h, m, methods=("ets", "arima"), level=cfg.interval)
    test = {k: list(fc[k]) for k in ("ets", "arima")}
    val["comb"] = [(a + b) / 2 for a, b in zip(val["ets"], val["arima"])]
    test["comb"] = [(a + b) / 2 for a, b in zip(test["ets"], test["arima"])]
    actual_val, actual = list(at(val_o)), at(cmp)
    scales = np.full(len(val_o), scale)

    def mase(f):
        return float(np.abs(np.stack(f) - actual).mean() / scale)

    out = {"network": mase(net), "ets": mase(test["ets"]), "arima": mase(test["arima"])}
    out["ets+arima"] = mase(test["comb"])
    out["mean of 3"] = mase([(a + b + c) / 3 for a, b, c in zip(net, test["ets"], test["arima"])])
    out["median of 3"] = mase(
        [np.median([a, b, c], axis=0) for a, b, c in zip(net, test["ets"], test["arima"])]
    )
    members = {
        "network": (net_val, net),
        "ets": (val["ets"], test["ets"]),
        "arima": (val["arima"], test["arima"]),
    }
    val_mase = {
        k: float(np.abs(np.stack(v) - np.stack(actual_val)).mean() / scale) for k, (v, _) in members.items()
    }
    kept = [k for k in members if val_mase[k] <= TRIM * min(val_mase.values())]
    out["mean of 3, trimmed"] = mase([np.mean(fs, axis=0) for fs in zip(*(members[k][1] for k in kept))])
    out["trimmed: kept"] = "+".join(kept)
    for rule, partners in (("ets", ("ets",)), ("chosen", ("ets", "arima")), ("comb", ("comb",))):
        name, share, _ = choose_pool(net_val, {k: val[k] for k in partners}, actual_val, scales)
        out[f"pool: {rule}"] = mase(mix_forecasts(net, test[name], share))
        out[f"choice: {rule}"] = f"{name} {share:.2f}"
    out["val_horizons"] = len(val_o)
    if model.interval is not None and len(bounds) == 2:  # the equal-weight pool's interval, two ways
        mean3 = np.stack([(a + b + c) / 3 for a, b, c in zip(net, test["ets"], test["arima"])])
        kind, nonneg = model.interval_kind, model.scaler.nonnegative
        mine = interval_bounds(np.stack(net), model.interval, kind, nonneg)
        ways = {
            "network's, centred": interval_bounds(mean3, model.interval, kind, nonneg),
            "quantile mean": tuple(
                np.mean([mine[i], bounds["ets"][i], bounds["arima"][i]], axis=0) for i in (0, 1)
            ),
        }
        for k, v in interval_comparison(actual, ways, scale, cfg.interval).items():
            out[f"coverage: {k}"], out[f"msis: {k}"] = v["coverage"], v["msis"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--collection", help="a built-in collection to sample series from (e.g. m3-monthly)")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--exclude-seeds",
        type=int,
        nargs="*",
        default=[],
        help="leave out the series these seeds' samples pick",
    )
    p.add_argument("--data", nargs="*", default=[], help="held-out series of rnnkit.datasets.extra")
    p.add_argument(
        "--csv",
        nargs="*",
        default=[],
        metavar="PATH:SEASON:HORIZON",
        help="CSV files of one series (columns t, y), each with its season and horizon",
    )
    p.add_argument("--set", default="{}", help="config overrides as JSON, e.g. '{\"es_alpha\": 0.5}'")
    p.add_argument("--runs-dir", default="/tmp/pool-rules")
    p.add_argument("--retrain", action="store_true", help="train again where a run exists")
    p.add_argument(
        "--arima-grid",
        metavar="VARIANT",
        help="ARIMA with a variant grid of arima_grid_variants.py (no-drift: without drifts, as before 3 Dec 2026; "
        "val-drift: the drift chosen on validation); replays existing runs with it (their networks unchanged)",
    )
    p.add_argument("--json")
    a = p.parse_args()
    overrides = parse_overrides(p, a.set)  # checked before any series is fetched or trained
    if a.arima_grid:
        from arima_grid_variants import _variant, grid

        try:
            arima_grid = grid(_variant(a.arima_grid))
        except argparse.ArgumentTypeError as err:
            p.error(f"--arima-grid: {err}")
    else:
        arima_grid = contextlib.nullcontext()
    with arima_grid:
        rows = _rows(a, overrides)
    _print_tables(rows)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


def _rows(a: argparse.Namespace, overrides: dict) -> list[dict]:
    """Train (where no run exists, with ``--set``'s ``overrides``) and replay every series the command line
    names."""
    runs_dir = Path(a.runs_dir)
    jobs = [(d, {}) for d in a.data]
    for spec in a.csv:
        path, season, horizon = spec.rsplit(":", 2)
        jobs.append((path, {"season": int(season), "horizon": int(horizon), "time_column": "t"}))
    if a.collection:
        jobs += sample_series(a.collection, a.count, a.seed, runs_dir, a.exclude_seeds)
    rows = []
    for data, extra in jobs:
        name = Path(data).stem
        run = runs_dir / name
        if a.retrain or not (run / "metrics.json").exists():
            cfg = config_from_dict(
                TimeSeriesConfig,
                {"data": data, "name": name, "runs_dir": str(runs_dir), "threads": 1, "progress": False,
                 **extra, **overrides},
            )  # fmt: skip
            train(cfg, overwrite=True, say=lambda s: None)
        r = replay(run)
        if r:
            rows.append({"data": name, **r})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def _print_tables(rows: list[dict]) -> None:
    print("\n| series | val horizons | " + " | ".join(RULES) + " | chosen | comb |")
    print("|---|---|" + "---|" * (len(RULES) + 2))
    for r in rows:
        cells = " | ".join(f"{r[k]:.3f}" for k in RULES)
        print(
            f"| {r['data']} | {r['val_horizons']} | {cells} | {r['choice: chosen']} | {r['choice: comb']} |"
        )
    if rows:
        means = " | ".join(f"{np.mean([r[k] for r in rows]):.3f}" for k in RULES)
        print(f"| **mean of {len(rows)}** | | {means} | | |")
        medians = " | ".join(f"{np.median([r[k] for r in rows]):.3f}" for k in RULES)
        print(f"| **median** | | {medians} | | |")
        met = " | ".join(str(sum(r[k] <= 1.1 * min(r["ets"], r["arima"]) for r in rows)) for k in RULES)
        print(f"| **within 10 % of min(ETS, ARIMA)** | | {met} | | |")
        below = " | ".join(str(sum(r[k] < min(r["ets"], r["arima"]) for r in rows)) for k in RULES)
        print(f"| **below min(ETS, ARIMA)** (the long-series goal) | | {below} | | |")
        for k in RULES[4:]:
            if k == "pool: ets":
                continue
            wins = sum(r[k] < r["pool: ets"] - 1e-12 for r in rows)
            losses = sum(r[k] > r["pool: ets"] + 1e-12 for r in rows)
            print(f"{k}: better than 'pool: ets' on {wins}, worse on {losses} of {len(rows)}")
    for k in ("network's, centred", "quantile mean"):
        got = [r for r in rows if f"msis: {k}" in r]
        if got:
            cover, msis = (np.mean([r[f"{x}: {k}"] for r in got]) for x in ("coverage", "msis"))
            print(f"the pool's 80 % interval, {k}: coverage {cover:.3f}, MSIS {msis:.2f} ({len(got)} series)")


if __name__ == "__main__":
    main()
