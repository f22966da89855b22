"""Time-series data: the built-in series or the user's CSV, the automatic settings, the split in time,
the normalisation and the windows the model reads."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch

from rnnkit._errors import RnnkitError
from rnnkit.apps.timeseries.config import (
    TimeSeriesConfig,
    check_baselines,
    check_es_start,
    default_horizon,
    default_window,
    held_out_window,
    resolve_trend,
    stamp_defaults,
)
from rnnkit.datasets import TimeSeries, load_co2, load_sunspots, read_time_series_csv, split_by_time
from rnnkit.datasets.frequency import infer_frequency, runs_backwards

__all__ = [
    "APP",
    "ES_BELOW",
    "PRESETS",
    "Scaler",
    "futures_at",
    "held_out_names",
    "load_series",
    "make_batches",
    "part_sizes",
    "preset_of",
    "resolve",
    "resolve_noted",
    "series_defaults",
    "windows_at",
]

APP = "timeseries"

PRESETS = {
    # data: (horizon, season, window, label)
    "co2": (52, 52, 104, "CO2 weekly"),
    "sunspots": (5, 11, 33, "sunspots yearly"),
}


ES_BELOW = 250
"""``--normalize auto`` uses ES-RNN smoothing (``es``) for series shorter than this, ``seasonal`` otherwise
(chosen on development series only; see docs/applications.md)."""


def held_out_names() -> list[str]:
    """Names of the held-out series of :mod:`rnnkit.datasets.extra` that ``data`` accepts."""
    from rnnkit.datasets.extra import EXTRA_DATASETS

    return sorted(k for k, d in EXTRA_DATASETS.items() if d.task == "timeseries")


def preset_of(data: str) -> tuple[int, int, int | None, str]:
    """``(horizon, season, window, label)`` of a named series; ``(1, 1, None, "")`` for a user file.

    A held-out series uses its registry's (first) season length, forecasts one season ahead (two for
    quarterly data; one day for the half-hourly ``taylor``) and reads three seasons (at least 12 steps).
    """
    if data in PRESETS:
        return PRESETS[data]
    if data in held_out_names():
        from rnnkit.datasets.extra import EXTRA_DATASETS

        d = EXTRA_DATASETS[data]
        season = d.season[0] if d.season else 1
        horizon = default_horizon(season)
        return horizon, season, held_out_window(season, horizon), data
    return 1, 1, None, ""


def series_defaults(cfg: TimeSeriesConfig, ts: TimeSeries) -> tuple[int, int, str]:
    """``(horizon, season, note)`` of one series: its preset's, else :func:`stamp_defaults` on its time stamps."""
    horizon, season, _, label = preset_of(cfg.data)
    if label or not ts.timed or (cfg.horizon and cfg.season):
        return cfg.horizon or horizon, cfg.season or season, ""
    n_tr, n_val, n_test = part_sizes(cfg, len(ts))

    def feasible(h: int, m: int, w: int) -> bool:
        return n_test >= h and (n_val == 0 or n_val >= h) and n_tr > m and n_tr - w - h + 1 >= 1

    cap = min(n_test, n_val) if n_val else n_test
    return stamp_defaults(cfg, infer_frequency(ts.times), feasible, cap)


def load_series(cfg: TimeSeriesConfig) -> TimeSeries:
    """The configured series (built-in, held-out by name, or a user CSV), restricted to ``value_columns``."""
    if cfg.data == "co2":
        ts = load_co2()
    elif cfg.data == "sunspots":
        ts = load_sunspots()
    elif cfg.data in held_out_names():
        from rnnkit.datasets.extra import load_extra

        ts = load_extra(cfg.data)
    else:
        return read_time_series_csv(cfg.data, cfg.time_column, cfg.value_columns or None)
    if cfg.value_columns:
        unknown = [c for c in cfg.value_columns if c not in ts.columns]
        if unknown:
            raise RnnkitError(f"{cfg.data}: expected value columns from {ts.columns}, got unknown {unknown}")
        idx = [ts.columns.index(c) for c in cfg.value_columns]
        ts = TimeSeries(ts.times, ts.values[:, idx], list(cfg.value_columns), ts.missing[:, idx], ts.timed)
    return ts


def resolve(cfg: TimeSeriesConfig, ts: TimeSeries) -> TimeSeriesConfig:
    """The config with the automatic fields (target, horizon, season, window) filled in and checked."""
    return resolve_noted(cfg, ts)[0]


def resolve_noted(cfg: TimeSeriesConfig, ts: TimeSeries) -> tuple[TimeSeriesConfig, str]:
    """:func:`resolve`, and what was inferred from the time stamps (:func:`series_defaults`' note, "" if nothing)."""
    if ts.timed and runs_backwards(ts.times):
        raise RnnkitError(
            f"{cfg.data}: expected time stamps oldest first, got them newest first ({ts.times[0]} .. {ts.times[-1]}); "
            "sort the rows by time"
        )
    horizon, season, note = series_defaults(cfg, ts)
    window = cfg.window or preset_of(cfg.data)[2] or default_window(season, horizon)
    target = cfg.target or ts.columns[0]
    if target not in ts.columns:
        raise RnnkitError(f"--target: expected one of the value columns {ts.columns}, got {target!r}")
    if cfg.target is None:
        _refuse_time_index(ts, target)
    check_baselines(cfg)
    normalize = cfg.normalize
    if normalize == "auto":
        normalize = "es" if len(ts) < ES_BELOW and cfg.structure == "many-to-one" else "seasonal"
        normalize = "level" if normalize == "seasonal" and cfg.structure == "many-to-many" else normalize
    check_es_start(cfg, normalize, season)
    if normalize == "es" and cfg.structure == "many-to-many":
        raise RnnkitError("--normalize es forecasts from the last step only; use --structure many-to-one")
    if normalize == "seasonal" and cfg.structure == "many-to-many":
        raise RnnkitError(
            "--normalize seasonal fits each window's profile on the whole window, which the earlier steps of "
            "many-to-many training would see ahead of time; use --normalize level or standard with many-to-many"
        )
    n = len(ts)
    if horizon >= n:
        raise RnnkitError(f"--horizon {horizon} is longer than the series ({n} values)")
    out = replace(
        cfg,
        horizon=horizon,
        season=season,
        window=window,
        target=target,
        value_columns=list(ts.columns),
        normalize=normalize,
        trend=resolve_trend(cfg.trend, season, window),
    )
    n_tr, n_val, n_test = part_sizes(out, n)
    if n_test < horizon:
        raise RnnkitError(
            f"--horizon {horizon} is longer than the test part ({n_test} of {n} values with "
            f"test_fraction {cfg.test_fraction}); lower --horizon or raise --test-fraction"
        )
    if 0 < n_val < horizon:
        raise RnnkitError(
            f"--horizon {horizon} is longer than the validation part ({n_val} of {n} values); lower --horizon, "
            "raise --val-fraction, or set it to 0"
        )
    if n_tr - window - horizon + 1 < 1:
        raise RnnkitError(
            f"the series is too short: {n} values leave {n_tr} for training, fewer than window {window} + "
            f"horizon {horizon}; lower --window or --horizon"
        )
    if n_tr <= season:
        raise RnnkitError(f"--season {season} is not shorter than the training part ({n_tr} values)")
    return out, note


def _refuse_time_index(ts: TimeSeries, target: str) -> None:
    """Refuse an automatically chosen target that counts like a clock (a time column that was not detected).

    A column that rises or falls in exactly equal steps (0, 1, 2, ... or 1990, 1991, ...) is a time index,
    not a series worth forecasting: its "forecast" would score perfectly and mean nothing.
    """
    y = ts.values[:, ts.columns.index(target)].astype(np.float64)
    if len(y) < 3 or ts.missing[:, ts.columns.index(target)].any():
        return
    d = np.diff(y)
    if d[0] != 0 and np.all(d == d[0]):
        raise RnnkitError(
            f"column {target!r} looks like a time index, not a series (it changes by exactly {d[0]:g} every "
            f"row); name it with --time-column {target}, or pick the series to forecast with --target"
        )


def part_sizes(cfg: TimeSeriesConfig, n: int) -> tuple[int, int, int]:
    """Lengths of the train / validation / test parts of ``n`` steps (:func:`rnnkit.datasets.split_by_time`)."""
    return tuple(len(p) for p in split_by_time(range(n), cfg.val_fraction, cfg.test_fraction))


class Scaler:
    """The transform and normalisation of inputs and targets (see the package docstring); saved as ``scaler.json``.

    Per column, values are first transformed (``log`` where the column is strictly positive in the training
    part and ``transform`` allows it), then normalised by ``mode``:

    * ``standard``: ``(z - mean) / std`` of the training part;
    * ``level``: ``(z - z_ref) / s`` with ``z_ref`` the window's last (many-to-one) or first value;
    * ``seasonal``: each window is split into a straight line and a seasonal profile fitted on its last
      ``K = W // m`` whole seasons (``m`` = season; the profile is the mean residual at each position of the
      season, centred), the profile is removed from the inputs and re-applied to the forecast, and the level
      is the line's value at the window's last step: ``x_t = (z_t - p_t - level) / s``, forecast
      ``z_{T+h} = level + s * out_h + p_{T+h}`` (``+ h * slope`` of the line with ``trend="line"``).
    * ``es``: only the transform and the scales ``s``; the level and the seasonal indices are smoothed over
      the whole series by :class:`~rnnkit.apps.timeseries.es.ESForecaster`, which also normalises.

    ``s`` is the standard deviation of the ``horizon``-step changes of the transformed training part. Forecasts
    of a target that is never negative in the training part are clipped at 0.
    """

    def __init__(
        self, mode, structure, target_index, center, scale, season=1, log=None, nonnegative=False, trend=False
    ) -> None:
        self.mode, self.structure, self.t = mode, structure, target_index
        self.center = np.asarray(center, dtype=np.float64)  # (C,) means (standard) or zeros
        self.scale = np.asarray(scale, dtype=np.float64)  # (C,)
        self.season = int(season)
        self.log = np.zeros(len(self.scale), bool) if log is None else np.asarray(log, dtype=bool)  # (C,)
        self.nonnegative = bool(nonnegative)
        self.trend = bool(trend)

    @classmethod
    def fit(cls, train: np.ndarray, cfg: TimeSeriesConfig, target_index: int) -> Scaler:
        x = np.asarray(train, dtype=np.float64)
        positive = x.min(0) > 0
        if cfg.transform == "log" and not positive[target_index]:
            raise RnnkitError(
                f"--transform log: expected a strictly positive target, but {cfg.target!r} reaches "
                f"{x[:, target_index].min():g} in the training part; use --transform auto or none"
            )
        log = positive if cfg.transform != "none" else np.zeros(x.shape[1], bool)
        z = np.where(log, np.log(np.where(log, x, 1.0)), x)
        if cfg.normalize == "standard":
            center, scale = z.mean(0), z.std(0)
        else:
            h = min(cfg.horizon, len(z) - 1)
            center, scale = np.zeros(z.shape[1]), (z[h:] - z[:-h]).std(0)
            scale = np.where(scale > 0, scale, z.std(0))
        if not np.all(scale > 0):
            bad = int(np.argmin(scale))
            raise RnnkitError(
                f"column {cfg.value_columns[bad]!r} is constant in the training part; cannot scale it"
            )
        nonneg = bool(x[:, target_index].min() >= 0)
        trend = cfg.trend == "line"
        return cls(cfg.normalize, cfg.structure, target_index, center, scale, cfg.season, log, nonneg, trend)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "structure": self.structure,
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
            "season": self.season,
            "log": self.log.tolist(),
            "nonnegative": self.nonnegative,
            "trend": self.trend,
        }

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.where(self.log, np.log(np.where(self.log, np.maximum(x, 1e-300), 1.0)), x)

    def _untransform_target(self, z: np.ndarray) -> np.ndarray:
        y = np.exp(np.minimum(z, 700.0)) if self.log[self.t] else z
        return np.maximum(y, 0.0) if self.nonnegative else y

    def _decompose(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
        """Seasonal profile ``(n, m, C)``, level ``(n, C)``, the offset of the fitted part in the window and
        the line's slope ``(n, C)``."""
        n, w, c = z.shape
        m = self.season if 1 < self.season <= w else 1
        k = w // m
        seg = z[:, w - k * m :]  # (n, L, C): the last K whole seasons
        tc = np.arange(k * m, dtype=np.float64) - (k * m - 1) / 2
        if m == 1:
            slope = (tc[None, :, None] * (seg - seg.mean(1, keepdims=True))).sum(1) / max(
                (tc**2).sum(), 1e-12
            )
            return np.zeros((n, 1, c)), z[:, -1], w - k * m, slope
        # least squares of the K seasons on one mean per position of the season and a common slope (the
        # slope only with two seasons or more); the design matrix is the same for every window
        x = np.eye(m)[np.arange(k * m) % m]  # (L, m)
        if k >= 2:
            x = np.concatenate([x, tc[:, None]], 1)  # (L, m + 1)
        coef = np.einsum("pl,nlc->npc", np.linalg.pinv(x), seg)  # (n, m [+ 1], C)
        slope = coef[:, m] if k >= 2 else np.zeros((n, c))
        means = coef[:, :m]
        profile = means - means.mean(1, keepdims=True)  # (n, m, C) by position in the season
        level = means.mean(1) + slope * tc[-1]
        return profile, level, w - k * m, slope

    def _profile_at(self, profile: np.ndarray, offset: int, positions) -> np.ndarray:
        """The profile at window positions (``W - 1 + h`` for the h-th future step): ``(n, len, C)``."""
        m = profile.shape[1]
        return profile[:, (np.asarray(positions) - offset) % m]

    def reference(self, windows: np.ndarray) -> np.ndarray:
        """(n, C) values subtracted from each window's (transformed) inputs (standard and level modes)."""
        if self.mode == "standard":
            return np.broadcast_to(self.center, (len(windows), len(self.center)))
        z = self.transform(windows)
        return z[:, 0] if self.structure == "many-to-many" else z[:, -1]

    def inputs(self, windows: np.ndarray) -> torch.Tensor:
        """(n, W, C) raw windows -> normalised float32 tensor."""
        z = self.transform(windows)
        if self.mode == "seasonal":
            profile, level, off, _ = self._decompose(z)
            ds = z - self._profile_at(profile, off, np.arange(z.shape[1]))
            return torch.tensor((ds - level[:, None]) / self.scale, dtype=torch.float32)
        ref = self.reference(windows)[:, None, :]
        return torch.tensor((z - ref) / self.scale, dtype=torch.float32)

    def target_base(self, windows: np.ndarray) -> np.ndarray:
        """(n, W) per-step reference of the transformed target: the current value (level) or the mean."""
        if self.mode == "standard":
            return np.full(windows.shape[:2], self.center[self.t])
        return self.transform(windows)[:, :, self.t]

    def targets(self, future: np.ndarray, base: np.ndarray) -> torch.Tensor:
        """Targets of every step (many-to-many): ``(n, W, H)`` from raw futures and :meth:`target_base`."""
        zf = np.log(np.maximum(future, 1e-300)) if self.log[self.t] else future
        return torch.tensor((zf - base[..., None]) / self.scale[self.t], dtype=torch.float32)

    def _future_base(self, windows: np.ndarray, horizon: int) -> np.ndarray:
        """(n, H) what a zero network output forecasts, in transformed units."""
        if self.mode != "seasonal":
            return np.repeat(self.target_base(windows)[:, -1:], horizon, 1)
        z = self.transform(windows)
        profile, level, off, slope = self._decompose(z)
        w = z.shape[1]
        steps = np.arange(1, horizon + 1)
        seas = self._profile_at(profile, off, w - 1 + steps)[..., self.t]
        line = slope[:, self.t, None] * steps if self.trend else 0.0
        return level[:, self.t, None] + line + seas

    def encode_future(self, windows: np.ndarray, future: np.ndarray) -> torch.Tensor:
        """(n, H) raw future target values -> the many-to-one model's targets."""
        zf = np.log(np.maximum(future, 1e-300)) if self.log[self.t] else future
        base = self._future_base(windows, future.shape[1])
        return torch.tensor((zf - base) / self.scale[self.t], dtype=torch.float32)

    def decode(self, windows: np.ndarray, out: np.ndarray) -> np.ndarray:
        """(n, H) network outputs -> forecasts in the data's units."""
        base = self._future_base(windows, out.shape[1])
        return self._untransform_target(out * self.scale[self.t] + base)


def windows_at(values: np.ndarray, origins, window: int) -> np.ndarray:
    """(n, W, C): the ``window`` values before each origin."""
    return np.stack([values[o - window : o] for o in origins])


def futures_at(series: np.ndarray, origins, horizon: int) -> np.ndarray:
    """(n, H): the target values from each origin on."""
    return np.stack([series[o : o + horizon] for o in origins])


def make_batches(
    values, target, origins, cfg, scaler, all_steps: bool, batch_size: int, order=None, window=None
):
    """Batches ``{"inputs" (B, W, C), "targets"}``: (B, H) for many-to-one, (B, W, H) for all steps.

    ``window``: the input length (default ``cfg.window``; ensemble members read different lengths)."""
    window = window or cfg.window
    origins = np.asarray(origins)
    if order is not None:
        origins = origins[np.asarray(order)]
    out = []
    for s in range(0, len(origins), batch_size):
        o = origins[s : s + batch_size]
        w = windows_at(values, o, window)
        if all_steps:
            base = scaler.target_base(w)
            # step t of the window (series index o - W + t) forecasts the H values after it
            fut = np.stack(
                [[target[p + 1 : p + 1 + cfg.horizon] for p in range(oo - window, oo)] for oo in o]
            )
            y = scaler.targets(fut, base)
        else:
            y = scaler.encode_future(w, futures_at(target, o, cfg.horizon))
        out.append({"inputs": scaler.inputs(w), "targets": y})
    return out
