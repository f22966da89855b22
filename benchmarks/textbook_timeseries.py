"""The forecaster's defaults on the textbook series of R's ``datasets`` package, as a new user would run them:
one CSV each, with its own time stamps, next to ETS, ARIMA and naive (docs/applications.md, *Textbook series*).

The series were picked before any run and no setting was chosen on them (held out). They ship in Debian's
``r-base-core`` (``usr/lib/R/library/datasets/data/Rdata.rdb``, R's lazy-load format, read by
:mod:`rnnkit.datasets._rdata`; checksummed and cached like :mod:`rnnkit.datasets.extra`). Three groups:

* ``seasonal``: monthly ``nottem`` (Nottingham air temperatures, 240) and ``UKDriverDeaths`` (192), horizon 12;
  quarterly ``UKgas`` (108), ``JohnsonJohnson`` (84), ``austres`` (89) and ``presidents`` (120, with gaps the
  CSV leaves empty), horizon 8;
* ``nonseasonal``: annual ``LakeHuron`` (98), ``lynx`` (114), ``nhtemp`` (60), ``discoveries`` (100), horizon 6;
  ``WWWusage`` (100) and ``BJsales`` (150), step-numbered, horizon 10;
* ``long``: ``treering`` (7,980 annual ring widths) and the four ``EuStockMarkets`` closes (1,860 trading days),
  horizon 10, season 1.

Monthly and quarterly series get ISO dates, annual ones years, the rest step numbers, in a column named
``time`` that the app detects by itself. The table gives MASE at the comparison origins for the network, the
default pool, ETS, ARIMA and naive, and the network's MASE over every rolling test origin divided by naive's;
per group the geometric mean of MASE / min(ETS, ARIMA) and how many series are within 10 % of it.

``--set '{"season": null, "horizon": null}'`` leaves the season, horizon and window of a dated series to what the
app reads from its time stamps (monthly: 12 / 12 / 24; quarterly: 4 / 8 / 16; annual: 1 / 6 / 12), as a new user
running the CSV without those flags gets them; a step-numbered series keeps its group's season and horizon. (The
10 dated series reproduce the rows of the run with the groups' settings exactly.)

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/textbook_timeseries.py \\
        [--groups seasonal nonseasonal long] [--set '{"ensemble": 3}'] [--runs-dir /tmp/textbook]
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from nonseasonal_timeseries import run_benchmark, scores  # the same rows and tables
from rnnkit.apps.timeseries import TimeSeriesConfig, train
from rnnkit.config import config_from_dict
from rnnkit.datasets import infer_frequency
from rnnkit.datasets._cache import Member, Source, ensure
from rnnkit.datasets._rdata import read_lazyload_db

_DATA = "usr/lib/R/library/datasets/data"
R_DATASETS = Source(
    key="bench-r-datasets",
    kind="deb",
    spec="r-base-core",
    members=(
        Member(
            f"{_DATA}/Rdata.rdb",
            "Rdata.rdb",
            "e74c3db8d7ab7cab86924f3fafc52a73abbac7342dcac6b7e54a8ca763b39307",
        ),
        Member(
            f"{_DATA}/Rdata.rdx",
            "Rdata.rdx",
            "f9822fcdb84c2594155a2eec3ab6a073131ff1010bf2e6aba0a79808daea3f00",
        ),
    ),
)


def _same(names: str, season: int, horizon: int) -> list[tuple[str, int, int]]:
    return [(n, season, horizon) for n in names.split()]


GROUPS = {  # group: [(R object[:column], season, horizon)]
    "seasonal": _same("nottem UKDriverDeaths", 12, 12)
    + _same("UKgas JohnsonJohnson austres presidents", 4, 8),
    "nonseasonal": _same("LakeHuron lynx nhtemp discoveries", 1, 6) + _same("WWWusage BJsales", 1, 10),
    "long": _same(
        "treering EuStockMarkets:DAX EuStockMarkets:SMI EuStockMarkets:CAC EuStockMarkets:FTSE", 1, 10
    ),
}


def _times(tsp, n: int) -> list[str]:
    """Time stamps from R's ``tsp`` (start, end, frequency): ISO dates for monthly and quarterly series, years
    for annual ones from a year after 1, step numbers otherwise (BJsales' and WWWusage's start of 1, treering's
    -6000, EuStockMarkets' trading days)."""
    start, _, freq = (float(v) for v in tsp)
    if freq in (4.0, 12.0):
        first = round(start * freq)
        months = [(first + i) * (12 // int(freq)) for i in range(n)]
        return [f"{m // 12:04d}-{m % 12 + 1:02d}-01" for m in months]
    if freq == 1.0 and start > 1:
        return [str(int(start) + i) for i in range(n)]
    return [str(i) for i in range(n)]


def series(group: str) -> list[tuple[str, list[str], list[float | None], int, int]]:
    """``(name, times, values (None = missing), season, horizon)`` of a group."""
    folder = ensure(R_DATASETS)
    names = sorted({spec.split(":")[0] for spec, _, _ in GROUPS[group]})
    objects = read_lazyload_db(
        folder["Rdata.rdx"].read_bytes(), folder["Rdata.rdb"].read_bytes(), names=names
    )  # fmt: skip
    out = []
    for spec, season, horizon in GROUPS[group]:
        name, _, column = spec.partition(":")
        obj = objects[name]
        values = [None if v is None or math.isnan(v) else float(v) for v in obj]  # R's NA: missing
        if column:  # a matrix, stored by column
            rows = obj.attributes["dim"][0]
            j = obj.attributes["dimnames"][1].index(column)
            values = values[j * rows : (j + 1) * rows]
        label = f"{name}-{column}" if column else name
        out.append((label, _times(obj.attributes["tsp"], len(values)), values, season, horizon))
    return out


def run_one(name, times, values, season, horizon, overrides, runs_dir: Path, threads: int) -> dict:
    path = runs_dir / f"{name}.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time", name])
        w.writerows((t, "" if v is None else repr(v)) for t, v in zip(times, values))
    given = {"season": season, "horizon": horizon}
    settings = {**given, **overrides}
    for key in given:  # null: the app's own, from the time stamps, where they name a frequency
        if settings[key] is None and infer_frequency(times) is None:
            settings[key] = given[key]
    cfg = config_from_dict(
        TimeSeriesConfig,
        {"data": str(path), "name": name, "runs_dir": str(runs_dir), "threads": threads, "progress": False,
         **settings},
    )  # fmt: skip
    return {"data": name, **scores(train(cfg, overwrite=True, say=lambda s: None).metrics)}


def main() -> None:
    run_benchmark(
        __doc__, GROUPS, series, lambda item, *rest: run_one(*item, *rest), "/tmp/textbook", "n, m, h",
        cut=lambda item, n: (item[0], item[1][:-n], item[2][:-n], *item[3:]),
    )  # fmt: skip


if __name__ == "__main__":
    main()
