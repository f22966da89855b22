"""Time-series data: the built-in series or the user's CSV, the automatic settings, the split in time,
the normalisation and the windows the model reads."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch

from rnnkit._errors import RnnkitError
from rnnkit.apps.timeseries.config import TimeSeriesConfig
from rnnkit.datasets import TimeSeries, load_co2, load_sunspots, read_time_series_csv, split_by_time

__all__ = [
    "APP",
    "PRESETS",
    "Scaler",
    "futures_at",
    "held_out_names",
    "load_series",
    "make_batches",
    "part_sizes",
    "preset_of",
    "resolve",
    "windows_at",
]

APP = "timeseries"

PRESETS = {
    # data: (horizon, season, window, label)
    "co2": (52, 52, 104, "CO2 weekly"),
    "sunspots": (5, 11, 33, "sunspots yearly"),
}


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
        horizon = 8 if season == 4 else (season if 1 < season <= 52 else 10)
        return horizon, season, max(3 * season if season <= 52 else 2 * horizon, 12), data
    return 1, 1, None, ""


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
        ts = TimeSeries(ts.times, ts.values[:, idx], list(cfg.value_columns), ts.missing[:, idx])
    return ts


def resolve(cfg: TimeSeriesConfig, ts: TimeSeries) -> TimeSeriesConfig:
    """The config with the automatic fields (target, horizon, season, window) filled in and checked."""
    horizon, season, window, _ = preset_of(cfg.data)
    horizon = cfg.horizon or horizon
    season = cfg.season or season
    window = cfg.window or window or max(2 * season, 2 * horizon, 12)
    target = cfg.target or ts.columns[0]
    if target not in ts.columns:
        raise RnnkitError(f"--target: expected one of the value columns {ts.columns}, got {target!r}")
    n = len(ts)
    if horizon >= n:
        raise RnnkitError(f"--horizon {horizon} is longer than the series ({n} values)")
    out = replace(
        cfg, horizon=horizon, season=season, window=window, target=target, value_columns=list(ts.columns)
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
    return out


def part_sizes(cfg: TimeSeriesConfig, n: int) -> tuple[int, int, int]:
    """Lengths of the train / validation / test parts of ``n`` steps (:func:`rnnkit.datasets.split_by_time`)."""
    return tuple(len(p) for p in split_by_time(range(n), cfg.val_fraction, cfg.test_fraction))


class Scaler:
    """The normalisation of inputs and targets (see the module docstring); saved as ``scaler.json``."""

    def __init__(self, mode: str, structure: str, target_index: int, center, scale):
        self.mode, self.structure, self.t = mode, structure, target_index
        self.center = np.asarray(center, dtype=np.float64)  # (C,) means (standard) or zeros (level)
        self.scale = np.asarray(scale, dtype=np.float64)  # (C,)

    @classmethod
    def fit(cls, train: np.ndarray, cfg: TimeSeriesConfig, target_index: int) -> Scaler:
        x = np.asarray(train, dtype=np.float64)
        if cfg.normalize == "standard":
            center, scale = x.mean(0), x.std(0)
        else:
            h = min(cfg.horizon, len(x) - 1)
            center, scale = np.zeros(x.shape[1]), (x[h:] - x[:-h]).std(0)
            scale = np.where(scale > 0, scale, x.std(0))
        if not np.all(scale > 0):
            bad = int(np.argmin(scale))
            raise RnnkitError(
                f"column {cfg.value_columns[bad]!r} is constant in the training part; cannot scale it"
            )
        return cls(cfg.normalize, cfg.structure, target_index, center, scale)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "structure": self.structure,
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
        }

    def reference(self, windows: np.ndarray) -> np.ndarray:
        """(n, C) values subtracted from each window's inputs."""
        if self.mode == "standard":
            return np.broadcast_to(self.center, (len(windows), len(self.center)))
        return windows[:, 0] if self.structure == "many-to-many" else windows[:, -1]

    def inputs(self, windows: np.ndarray) -> torch.Tensor:
        """(n, W, C) raw windows -> normalised float32 tensor."""
        ref = self.reference(windows)[:, None, :]
        return torch.tensor((windows - ref) / self.scale, dtype=torch.float32)

    def target_base(self, windows: np.ndarray) -> np.ndarray:
        """(n, W) per-step reference of the target: the current value (level) or the mean (standard)."""
        if self.mode == "standard":
            return np.full(windows.shape[:2], self.center[self.t])
        return windows[:, :, self.t]

    def targets(self, future: np.ndarray, base: np.ndarray) -> torch.Tensor:
        return torch.tensor((future - base[..., None]) / self.scale[self.t], dtype=torch.float32)

    def untarget(self, out: np.ndarray, base: np.ndarray) -> np.ndarray:
        return out * self.scale[self.t] + base[..., None]


def windows_at(values: np.ndarray, origins, window: int) -> np.ndarray:
    """(n, W, C): the ``window`` values before each origin."""
    return np.stack([values[o - window : o] for o in origins])


def futures_at(series: np.ndarray, origins, horizon: int) -> np.ndarray:
    """(n, H): the target values from each origin on."""
    return np.stack([series[o : o + horizon] for o in origins])


def make_batches(values, target, origins, cfg, scaler, all_steps: bool, batch_size: int, order=None):
    """Batches ``{"inputs" (B, W, C), "targets"}``: (B, H) for many-to-one, (B, W, H) for all steps."""
    origins = np.asarray(origins)
    if order is not None:
        origins = origins[np.asarray(order)]
    out = []
    for s in range(0, len(origins), batch_size):
        o = origins[s : s + batch_size]
        w = windows_at(values, o, cfg.window)
        base = scaler.target_base(w)
        if all_steps:
            # step t of the window (series index o - W + t) forecasts the H values after it
            fut = np.stack(
                [[target[p + 1 : p + 1 + cfg.horizon] for p in range(oo - cfg.window, oo)] for oo in o]
            )
            y = scaler.targets(fut, base)
        else:
            y = scaler.targets(futures_at(target, o, cfg.horizon), base[:, -1])
        out.append({"inputs": scaler.inputs(w), "targets": y})
    return out
