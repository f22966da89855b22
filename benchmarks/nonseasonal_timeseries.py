"""The forecaster's defaults on series without a season, next to ETS, ARIMA and naive (docs/applications.md,
*Series without a season*).

Four groups, all read from registry packages (checksummed, cached like rnnkit.datasets.extra):

* ``short-dev`` (21, chosen on): the 14 annual Nelson-Plosser US series (Debian ``r-cran-tseries``), six
  quarterly ``macrodata`` columns (tbilrate, unemp, infl, realgdp, cpi, m1) and the Nile (both statsmodels);
* ``short-held-out`` (17): the 12 longest M3 "other" series (104 values), the four quarterly ``USeconomic``
  series (Debian ``r-cran-tseries``) and ``heartrate``;
* ``long-dev`` (4): monthly 1- and 10-year Treasury rates (``tcm``), the Beveridge wheat price index
  (``bev``), the last 2,000 days of the daily 1-year rate (``tcmd``);
* ``long-held-out`` (5): monthly 3- and 5-year rates, the last 2,000 days of the daily 10-year rate, the
  Campito tree rings (``camp``) and ``gold``.

Horizon 6 for annual series below 130 values, 8 for quarterly ones and M3 other, else 10; season 1. Each
series is trained with the defaults (``--set`` adds overrides, e.g. ``'{"trend": "line"}'``), and the
table gives MASE at the comparison origins for the network, the default pool, ETS, ARIMA and naive, and
the network's MASE over every rolling test origin divided by naive's; per group the geometric mean of
MASE / min(ETS, ARIMA) and how many series are within 10 % of it, what ETS alone and ARIMA alone score on that
measure (min(ETS, ARIMA) picks per series after the fact), and the network and pool over the classical model
better on the whole group.

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nonseasonal_timeseries.py \\
        [--groups short-dev long-held-out ...] [--set '{"trend": "line"}'] [--runs-dir /tmp/nonseasonal] \\
        [--json rows.json]
    ... benchmarks/nonseasonal_timeseries.py --replay rows.json     # the tables again, no training
    ... benchmarks/nonseasonal_timeseries.py --cut 8 --json cut8.json   # each series without its last 8 values
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np

from rnnkit._errors import RnnkitError
from rnnkit._machine import machine_line
from rnnkit.apps.timeseries import TimeSeriesConfig, train
from rnnkit.config import config_from_dict, settings_from_json
from rnnkit.datasets._cache import Member, Source, ensure
from rnnkit.datasets._rdata import read_rda

_TS = "usr/lib/R/site-library/tseries/data"
TSERIES = Source(
    key="bench-r-tseries",
    kind="deb",
    spec="r-cran-tseries",
    members=tuple(
        Member(f"{_TS}/{name}.rda", f"{name}.rda", sha)
        for name, sha in (
            ("NelPlo", "e65cf26861a4d9d5cc1bafde5a1b53dfef7d1c3f75ef8b43a9873158c332c694"),
            ("USeconomic", "1f763f410b05f2f043c5658c349efa9e7f94961a3ddb9e88d5d27b3ed6d5dbd8"),
            ("bev", "22f42ca9fd9480dd1fa17225096c8f2eb4c47b1b8b3c4bd7d5c8d74c3ffb4493"),
            ("camp", "fba85085fcb8599c2a4b0fc577f60d8dd216d11fd17277e75df6142d935e23fb"),
            ("tcm", "008fc272bd349c638203f898b18fc8a0351d50bf04dcedc456178936b5b20997"),
            ("tcmd", "69181dc3cc94a981ecc32a786101982f3d2cca1496e03bfcb524a6fbfc8142dd"),
        )
    ),
)
NELPLO = ["cpi", "ip", "gnp.nom", "vel", "emp", "int.rate", "nom.wages", "gnp.def", "money.stock", "gnp.real",
          "stock.prices", "gnp.capita", "real.wages", "unemp"]  # fmt: skip
MACRO = ["tbilrate", "unemp", "infl", "realgdp", "cpi", "m1"]
GROUPS = ("short-dev", "short-held-out", "long-dev", "long-held-out")


def _rda(name: str) -> dict:
    return read_rda(ensure(TSERIES)[f"{name}.rda"].read_bytes())


def _clean(values, name: str) -> list[float]:
    """An R column without its leading and trailing missing values (the series' own span); a gap inside it is
    an error, not something to close silently."""
    known = [v is not None and not math.isnan(v) for v in values]
    first, last = known.index(True), len(known) - known[::-1].index(True)
    if not all(known[first:last]):
        raise ValueError(f"{name}: expected no missing values inside the series")
    return [float(v) for v in values[first:last]]


def _statsmodels_csv(name: str) -> list[dict]:
    import statsmodels.datasets as sd

    text = (Path(sd.__file__).parent / name / f"{name}.csv").read_text()
    return list(csv.DictReader(text.splitlines()))


def series(group: str) -> list[tuple[str, list[float] | None, int]]:
    """``(name, values, horizon)``; values None for a held-out series of rnnkit.datasets.extra (by name)."""
    if group == "short-dev":
        o = _rda("NelPlo")
        out = [(f"nelplo-{k}", _clean(o[k], k), 6) for k in NELPLO]
        macro = _statsmodels_csv("macrodata")
        out += [(f"macro-{k}", [float(r[k]) for r in macro], 8) for k in MACRO]
        return out + [("nile", [float(r["volume"]) for r in _statsmodels_csv("nile")], 10)]
    if group == "short-held-out":
        from rnnkit.apps.timeseries.panel import load_panel

        panel = load_panel(TimeSeriesConfig(data="m3-other"))
        out = [(f"m3-other-{i}", v.tolist(), 8) for i, v in zip(panel.ids, panel.values) if len(v) == 104]
        o = _rda("USeconomic")
        return (
            out
            + [(f"useconomic-{k}", _clean(o[k], k), 8) for k in ("GNP", "M1", "rs", "rl")]
            + [("heartrate", None, 10)]
        )
    tcm, tcmd = _rda("tcm"), _rda("tcmd")
    if group == "long-dev":
        return [("tcm1y", _clean(tcm["tcm1y"], "tcm1y"), 10), ("tcm10y", _clean(tcm["tcm10y"], "tcm10y"), 10),
                ("bev", _clean(_rda("bev")["bev"], "bev"), 10), ("tcm1yd-last2000", _clean(tcmd["tcm1yd"], "tcm1yd")[-2000:], 10)]  # fmt: skip
    if group == "long-held-out":
        return [("tcm3y", _clean(tcm["tcm3y"], "tcm3y"), 10), ("tcm5y", _clean(tcm["tcm5y"], "tcm5y"), 10),
                ("camp", _clean(_rda("camp")["camp"], "camp"), 10), ("tcm10yd-last2000", _clean(tcmd["tcm10yd"], "tcm10yd")[-2000:], 10),
                ("gold", None, 10)]  # fmt: skip
    raise ValueError(f"expected a group from {GROUPS}, got {group!r}")


def run_one(name, values, horizon, overrides, runs_dir: Path, threads: int) -> dict:
    if values is None:
        kw = {"data": name}
    else:
        path = runs_dir / f"{name}.csv"
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["t", "y"])
            w.writerows(enumerate(values))
        kw = {"data": str(path), "time_column": "t", "season": 1, "horizon": horizon}
    cfg = config_from_dict(
        TimeSeriesConfig,
        {"name": name, "runs_dir": str(runs_dir), "threads": threads, "progress": False, **kw, **overrides},
    )
    return {"data": name, **scores(train(cfg, overwrite=True, say=lambda s: None).metrics)}


def scores(m: dict) -> dict:
    """A run's row from its metrics: MASE at the comparison origins (network, default pool, ETS, ARIMA, naive, the
    feed-forward counterpart) and the network's MASE over every rolling test origin divided by naive's."""
    c = m["comparison"]
    b = {k: v["mase"] for k, v in c["baselines"].items()}
    pool = (m.get("mixture") or {}).get("test", {}).get("mase", float("nan"))
    return {"n": sum(m["split"].values()), "h": m["horizon"], "m": m["season"], "normalize": m["normalize"],
            "network": c["model"]["mase"], "pool": pool, "ets": b["ets"], "arima": b["arima"], "naive": b["naive"],
            "mlp": b.get("mlp", float("nan")),
            "all_origins_vs_naive": m["test"]["mase"] / m["naive"]["mase"]}  # fmt: skip


ROW_KEYS = {"group", "data", "network", "pool", "ets", "arima", "naive", "all_origins_vs_naive"}
"""What every row of a run (:func:`scores` plus its group and series) holds: what ``--replay`` needs."""


def _gmean(x: np.ndarray) -> float:
    return math.exp(np.log(x).mean())


def print_tables(rows: list[dict], groups, shape: str = "n, h") -> None:
    """The per-series table (``shape``: the fields named in brackets after each series) and, per group, the
    geometric mean of MASE / min(ETS, ARIMA) of the network and the pool, with the series within 10 % of it
    and below it, ETS's and ARIMA's own on that measure, the network's and pool's over the better of the two
    on the group, and the network's all-origin ratio to naive."""
    print(
        f"\n| group | series ({shape}) | network | pool | ETS | ARIMA | naive | MLP | network / naive, all origins |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        dims = ", ".join(str(r[k.strip()]) for k in shape.split(","))
        print(f"| {r['group']} | {r['data']} ({dims}) | {r['network']:.3f} | {r['pool']:.3f} | "
              f"{r['ets']:.3f} | {r['arima']:.3f} | {r['naive']:.3f} | {r.get('mlp', float('nan')):.3f} | "
              f"{r['all_origins_vs_naive']:.3f} |")  # fmt: skip
    for group in groups:
        got = [r for r in rows if r["group"] == group]
        best = np.array([min(r["ets"], r["arima"]) for r in got])
        # the feed-forward counterpart (rows recorded before it was kept have none)
        for k in ("network", "pool", "mlp")[
            : 3 if all(np.isfinite(r.get("mlp", np.nan)) for r in got) else 2
        ]:
            ratio = np.array([r[k] for r in got]) / best
            print(f"{group}, {k}: geometric mean of MASE / min(ETS, ARIMA) {_gmean(ratio):.3f}, "
                  f"within 10 % on {int((ratio <= 1.1).sum())} of {len(got)}, below on {int((ratio < 1).sum())}")  # fmt: skip
        # the yardsticks: min(ETS, ARIMA) picks the better model per series after seeing its test values, an
        # oracle no practitioner has; each classical model alone against it, and the network and the pool
        # against the classical model that is better over the whole group (the "best of ETS / ARIMA")
        own = {k: _gmean(np.array([r[k] for r in got]) / best) for k in ("ets", "arima")}
        method = min(own, key=own.get)
        net, pool = (_gmean(np.array([r[k] / r[method] for r in got])) for k in ("network", "pool"))
        print(
            f"{group}: ETS alone {own['ets']:.3f}, ARIMA alone {own['arima']:.3f} over min(ETS, ARIMA); over "
            f"{method.upper()}, the better model on the group: network {net:.3f}, pool {pool:.3f}"
        )
        allo = np.array([r["all_origins_vs_naive"] for r in got])
        print(f"{group}: network / naive over all origins, geometric mean {_gmean(allo):.3f}")


SCRIPT_KEYS = ("data", "name", "runs_dir", "threads", "progress")
"""What the benchmarks set for every series themselves (the series, ``--runs-dir``, ``--threads``): not
``--set``'s."""


def parse_overrides(p: argparse.ArgumentParser, text: str) -> dict:
    """``--set``'s JSON text as a dict of :class:`TimeSeriesConfig` settings, checked at argument-parsing
    time by the app's own rules (unknown keys, types, bounds, the baselines), or one ``p.error`` line saying
    what was expected and what came. The dict is returned as given (a ``null`` stays None: automatic)."""
    try:  # the config's own check covers the baselines and the pool
        overrides = settings_from_json(TimeSeriesConfig, text, reserved=SCRIPT_KEYS)
    except RnnkitError as e:
        p.error(str(e))
    return overrides


def run_benchmark(doc: str, groups, series_of, run, runs_dir: str, shape: str = "n, h", cut=None) -> None:
    """The command line both timeseries benchmarks share: ``--groups`` of ``groups``, ``--set`` overrides,
    ``--runs-dir``, ``--threads``, ``--json``, ``--replay``, ``--cut``; ``run(item, overrides, runs_dir,
    threads)`` trains each item of ``series_of(group)`` (``cut(item, n)``: the item without its last ``n``
    values) and returns its row; then :func:`print_tables`."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--groups", nargs="*", default=list(groups), choices=list(groups))
    p.add_argument("--set", default="{}", help='config overrides as JSON, e.g. \'{"trend": "line"}\'')
    p.add_argument("--runs-dir", default=runs_dir)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="write the rows to this file")
    p.add_argument("--replay", metavar="JSON", help="print the tables of --json's rows; train nothing")
    p.add_argument(
        "--cut",
        type=int,
        default=0,
        metavar="N",
        help="run each series without its last N values: the same defaults judged at an earlier origin",
    )
    a = p.parse_args()
    if a.replay:
        try:
            rows = json.loads(Path(a.replay).read_text())
            if not all(isinstance(r, dict) and ROW_KEYS <= r.keys() for r in rows):
                raise ValueError
        except (OSError, ValueError, TypeError):
            p.error(f"--replay: expected a file of rows written by --json, got {a.replay!r}")
        print_tables(rows, [g for g in a.groups if any(r["group"] == g for r in rows)], shape)
        return
    if a.cut < 0:
        p.error(f"--cut: expected 0 or more values to leave off, got {a.cut}")
    overrides = parse_overrides(p, a.set)
    out = Path(a.runs_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for group in a.groups:
        for item in series_of(group):
            try:
                row = run(cut(item, a.cut) if a.cut else item, overrides, out, a.threads)
            except RnnkitError as e:
                if not a.cut:
                    raise
                print(f"left out {item[0]} (--cut {a.cut}): {e}", flush=True)  # too short once cut
                continue
            rows.append({"group": group, **row, **({"cut": a.cut} if a.cut else {})})
            print(json.dumps(rows[-1]), flush=True)
    print_tables(rows, [g for g in a.groups if any(r["group"] == g for r in rows)], shape)
    print(machine_line())
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


def _cut(item, n: int):
    """``(name, values, horizon)`` without the last ``n`` values (a named series read from the registry first)."""
    name, values, horizon = item
    if values is None:
        from rnnkit.apps.timeseries.data import load_series

        values = load_series(TimeSeriesConfig(data=name)).values[:, 0].tolist()
    return name, values[:-n], horizon


def main() -> None:
    run_benchmark(
        __doc__, GROUPS, series, lambda item, *rest: run_one(*item, *rest), "/tmp/nonseasonal", cut=_cut
    )


if __name__ == "__main__":
    main()
