"""Smyl's ES-RNN (M4 2018; Smyl 2020, IJF 36(1)): exponential smoothing learnt together with the network.

Per series, a level and seasonal indices are smoothed over the whole (transformed) series with two learnt
coefficients and learnt initial indices; the network reads each window deseasonalised and relative to the
level at its last step, and forecasts the horizon relative to that level; the forecast is re-seasonalised.
The smoothing runs in torch, so the coefficients and the initial indices get gradients from the forecast
loss like the network's weights.

The recursion, on ``z`` = the log of a positive series (else the series itself), season ``m``::

    l_t     = alpha (z_t - s_t) + (1 - alpha) l_{t-1}          (l_0 = z_0 - s_0)
    s_{t+m} = gamma (z_t - l_t) + (1 - gamma) s_t              (s_0 .. s_{m-1} learnt)

It is Smyl's multiplicative Holt-Winters (``l = alpha y / s + (1 - alpha) l``, ``s = gamma y / l + ...``)
written additively after the log: ratios become differences, so it needs no division by a level that might
approach zero, the same code serves a series that is not positive (``--transform none``), and the
network's inputs and targets (log ratios to the level) are exactly what Smyl fed his network.

:func:`es_smooth_reference` is the recursion as written, one step at a time; :func:`es_smooth` computes
the same numbers one season at a time (within a season the indices are known, so the level is a linear
recurrence solved with one small matrix product) and is tested against it, forward and backward.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.train.protocol import LossOutput

__all__ = [
    "ESForecaster",
    "PanelESForecaster",
    "es_rows",
    "es_smooth",
    "es_smooth_reference",
    "es_window",
    "initial_season",
]

GAIN = 10.0
"""Coefficient logits are ``GAIN * parameter``: Adam moves a parameter by about the learning rate per step,
so the gain lets the two coefficients travel their useful range in the few hundred steps a short series
gives, while the network's weights keep the ordinary step."""

ALPHA_START = 0.3
"""The level's smoothing coefficient at the start of training (and the global model's, season or not)."""
ALPHA_START_NO_SEASON = 0.6
"""One series without a season starts nearer the last value: a short series gives the early-stopped training
only tens of optimiser steps, so the coefficient ends near where it starts, and at 0.3 the level of a
wandering series lags behind it (chosen on 21 development series without a season and confirmed on 17
held-out ones: docs/applications.md, *Series without a season*)."""

_NO_SEASON_BLOCK = 64  # without seasonality the level is one linear recurrence, solved in blocks of this


def es_smooth_reference(
    z: Tensor, alpha: Tensor, gamma: Tensor | None, init_season: Tensor | None
) -> tuple[Tensor, Tensor]:
    """The smoothing recursion step by step (the specification :func:`es_smooth` is tested against).

    Args:
        z: (n,) the transformed series.
        alpha, gamma: 0-d coefficients in (0, 1); ``gamma`` is ignored without ``init_season``.
        init_season: (m,) the seasonal indices ``s_0 .. s_{m-1}``; None for no seasonality (all indices 0).

    Returns: ``level`` (n,) ``l_0 .. l_{n-1}`` and ``season`` (n + m,) ``s_0 .. s_{n+m-1}``.
    """
    n = z.shape[0]
    season = list(init_season) if init_season is not None else [z.new_zeros(())]
    m = len(season)
    level = []
    prev = z[0] - season[0]
    for t in range(n):
        lt = alpha * (z[t] - season[t]) + (1 - alpha) * prev
        level.append(lt)
        if init_season is not None:
            season.append(gamma * (z[t] - lt) + (1 - gamma) * season[t])
        else:
            season.append(season[t])
        prev = lt
    return torch.stack(level), torch.stack(season[: n + m])


def es_smooth(
    z: Tensor, alpha: Tensor, gamma: Tensor | None, init_season: Tensor | None
) -> tuple[Tensor, Tensor]:
    """:func:`es_smooth_reference`, one season (block of ``L = m`` steps) at a time, for one series or a batch.

    Within a block the indices ``s_t`` are known (they were set a season earlier), so with
    ``d_t = z_t - s_t`` the level is ``l_{t0+k} = (1-alpha)^{k+1} l_{t0-1} + sum_{j<=k} alpha (1-alpha)^{k-j}
    d_{t0+j}``: one lower-triangular (L, L) product per block instead of L scalar steps.

    Shapes: ``z`` (n,) or (B, n) (B series of one length; a series that ends earlier may be padded at the
    end: the recursion never looks ahead); ``alpha``, ``gamma`` 0-d, or (B,) for one per series;
    ``init_season`` (m,) or (B, m). Returns ``level`` (..., n) and ``season`` (..., n + m).
    """
    one = z.dim() == 1
    if one:
        z = z[None]
        init_season = None if init_season is None else init_season[None]
    n = z.shape[-1]
    seasonal = init_season is not None
    m = init_season.shape[-1] if seasonal else 1
    L = m if seasonal else _NO_SEASON_BLOCK
    k = torch.arange(L, dtype=z.dtype)
    lag = k[:, None] - k[None, :]  # (L, L)
    a = alpha.reshape(-1, 1, 1)  # (1 or B, 1, 1)
    log_keep = torch.log1p(-a)
    A = torch.where(lag >= 0, a * torch.exp(lag.clamp(min=0) * log_keep), torch.zeros((), dtype=z.dtype))
    P = torch.exp((k + 1) * log_keep[:, 0])  # (1 or B, L)
    g = gamma.reshape(-1, 1) if seasonal else None
    chunks = [init_season] if seasonal else []
    levels = []
    prev = z[:, 0] - (init_season[:, 0] if seasonal else 0.0)  # (B,)
    for i, t0 in enumerate(range(0, n, L)):
        e = min(t0 + L, n)
        b = e - t0
        zb = z[:, t0:e]
        s = chunks[i][:, :b] if seasonal else None
        d = zb - s if seasonal else zb
        lv = (A[:, :b, :b] @ d[..., None])[..., 0] + P[:, :b] * prev[:, None]  # (B, b)
        levels.append(lv)
        prev = lv[:, -1]
        if seasonal:
            chunks.append(g * (zb - lv) + (1 - g) * s)
    level = torch.cat(levels, -1)
    season = torch.cat(chunks, -1)[:, : n + m] if seasonal else z.new_zeros(z.shape[0], n + 1)
    return (level[0], season[0]) if one else (level, season)


def initial_season(z: np.ndarray, m: int) -> np.ndarray:
    """(m,) starting indices: the mean deviation of each position from its season's mean over the first
    (at most 3) whole seasons, centred (the classical decomposition's starting values)."""
    k = max(1, min(3, len(z) // m))
    seg = np.asarray(z[: k * m], dtype=np.float64).reshape(k, m)
    dev = (seg - seg.mean(1, keepdims=True)).mean(0)
    return dev - dev.mean()


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def es_window(
    zt: Tensor, level: Tensor, season: Tensor, origins: Tensor, window: int, horizon: int, m: int
) -> tuple[Tensor, Tensor]:
    """The network's view of a smoothed series at ``origins`` and the bases its outputs are added to.

    Args:
        zt: (B, n) the transformed target, one row per origin (rows may repeat one series).
        level, season: (B, n') and (B, n' + m) from :func:`es_smooth` over the first ``n' >= max(origins)``
            values of each row (``m = 1`` without seasonality: ``season`` is zeros).
        origins: (B,) the first forecast step of each row; the window is the ``window`` steps before it.

    Returns: ``x`` (B, W) = ``z_j - s_j - l_T`` over the window (unscaled) and ``base`` (B, H) =
    ``l_T + s_{T+h}``, the latest index of each future step's season position (``T = origin - 1``).
    """
    idx = origins[:, None] + torch.arange(window) - window  # (B, W)
    lT = level.gather(1, (origins - 1)[:, None])  # (B, 1)
    x = zt.gather(1, idx) - season.gather(1, idx) - lT
    ahead = (torch.arange(horizon) % m) + 1 if m > 1 else torch.ones(horizon, dtype=torch.long)
    base = lT + season.gather(1, origins[:, None] - 1 + ahead)  # s_{T+h}: set at most m steps earlier
    return x, base


class _Smoothed(nn.Module):
    """What both ES forecasters share: the network, the two learnt coefficients, saving for checkpoints."""

    def _init_coefficients(self, net: nn.Module, seasonal: bool, alpha: float, gamma: float) -> None:
        self.net = net
        self.alpha_p = nn.Parameter(torch.tensor(_logit(alpha) / GAIN))
        self.gamma_p = nn.Parameter(torch.tensor(_logit(gamma) / GAIN)) if seasonal else None

    @property
    def encoder(self) -> nn.Module:
        """The network's encoder (the run's summary names its backend)."""
        return self.net.encoder

    @property
    def alpha(self) -> Tensor:
        return torch.sigmoid(GAIN * self.alpha_p)

    @property
    def gamma(self) -> Tensor | None:
        return None if self.gamma_p is None else torch.sigmoid(GAIN * self.gamma_p)

    def to_config(self) -> dict[str, Any]:
        """What the trainer's checkpoints record (the network's config and the smoothing's sizes)."""
        return {
            "net": self.net.to_config(),
            "season": self.season,
            "horizon": self.horizon,
            "window": self.window,
        }

    def save(self, path) -> None:
        """Weights of the network and the smoothing (safetensors) and :meth:`to_config` (JSON), for the
        trainer's checkpoints; a finished run saves the network and :meth:`state` instead."""
        from rnnkit.models.io import write_model_files

        write_model_files(self, path)

    def _coefficients(self) -> dict[str, Any]:
        return {
            "alpha_p": float(self.alpha_p.detach()),
            "gamma_p": None if self.gamma_p is None else float(self.gamma_p.detach()),
            "alpha": float(self.alpha.detach()),
            "gamma": None if self.gamma is None else float(self.gamma.detach()),
        }

    def _load_coefficients(self, d: dict[str, Any]) -> None:
        with torch.no_grad():
            self.alpha_p.fill_(float(d["alpha_p"]))
            if self.gamma_p is not None:
                self.gamma_p.fill_(float(d["gamma_p"]))


class ESForecaster(_Smoothed):
    """A network with Smyl's per-series exponential smoothing in front of it (see the module docstring).

    With ``l`` the level at the origin's last step ``T`` and ``r`` = the target's scale (typical
    ``horizon``-step change), the network reads ``x_j = (z_j - s_j - l_T) / r`` for the window's steps
    (other columns: ``(z_j - z_T) / r_c``) and outputs ``o_h``; the forecast is
    ``z_{T+h} = l_T + s_{T+h} + r o_h`` (for ``h > m`` the latest index of the same season position).

    Args:
        net: a :class:`~rnnkit.models.SequenceRegressor` with ``output_size = horizon``.
        season: ``m`` (1: no seasonality, only a level).
        horizon, window: forecast steps and the window the network reads.
        target_index: the target's column.
        scale: (C,) per-column scales ``r``.
        init_season: (m,) starting indices (:func:`initial_season`), learnt from there.
        alpha, gamma: starting coefficients (``alpha`` default: :data:`ALPHA_START`, or
            :data:`ALPHA_START_NO_SEASON` when ``season`` is 1).
        level_penalty: Smyl's penalty on the level's wiggliness, ``lambda * mean((d2 l)^2) / r^2``.

    Shape: :meth:`outputs` origins (B,) -> network outputs (B, H) and bases ``l_T + s_{T+h}`` (B, H).
    The series the origins index is given with :meth:`use_series` (not saved with the weights).

    Example::

        >>> from rnnkit.models import RegressorConfig, SequenceRegressor
        >>> net = SequenceRegressor(RegressorConfig(output_size=4, input_size=1))
        >>> es = ESForecaster(net, 4, 4, 8, 0, [0.1], np.zeros(4))
        >>> es.use_series(torch.randn(40, 1))
        >>> es.outputs(torch.tensor([20, 30]))[0].shape
        torch.Size([2, 4])
    """

    def __init__(
        self,
        net: nn.Module,
        season: int,
        horizon: int,
        window: int,
        target_index: int,
        scale,
        init_season,
        alpha: float | None = None,
        gamma: float = 0.2,
        level_penalty: float = 0.0,
    ) -> None:
        super().__init__()
        self.season, self.horizon, self.window, self.t = (
            int(season),
            int(horizon),
            int(window),
            int(target_index),
        )
        self.register_buffer("scale", torch.tensor(np.asarray(scale, dtype=np.float32)))
        self.level_penalty = float(level_penalty)
        seasonal = self.season > 1
        if alpha is None:
            alpha = ALPHA_START if seasonal else ALPHA_START_NO_SEASON
        self._init_coefficients(net, seasonal, alpha, gamma)
        init = np.asarray(init_season, dtype=np.float32)
        self.init_season = nn.Parameter(torch.tensor(init)) if seasonal else None
        self.series: Tensor | None = None  # (n, C) transformed values the origins index

    def use_series(self, z: Tensor) -> None:
        """(n, C) transformed values; origins index into them."""
        self.series = torch.as_tensor(z, dtype=torch.float32)

    def smooth(self, end: int, init_season: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Level (end,) and indices (end + m,) over the first ``end`` values of the target."""
        init = self.init_season if init_season is None else init_season
        return es_smooth(self.series[:end, self.t], self.alpha, self.gamma, init)

    def outputs(self, origins: Tensor, init_season: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Network outputs (B, H), bases ``l_T + s_{T+h}`` (B, H) and the level (end,) for ``origins``."""
        end = int(origins.max())
        level, season = self.smooth(end, init_season)
        z = self.series
        B = origins.shape[0]
        xt, base = es_window(
            z[:, self.t].expand(B, -1), level.expand(B, -1), season.expand(B, -1), origins,
            self.window, self.horizon, self.season,
        )  # fmt: skip
        idx = origins[:, None] + torch.arange(self.window) - self.window  # (B, W)
        x = (z[idx] - z[origins - 1][:, None, :]) / self.scale  # (B, W, C): other columns vs their last value
        xt = xt / self.scale[self.t]
        x = torch.cat([x[..., : self.t], xt[..., None], x[..., self.t + 1 :]], -1)
        return self.net(x), base, level

    def loss(self, batch: dict[str, Any], state: Any = None) -> LossOutput:
        """Absolute error of the log forecast in units of the scale (Smyl's pinball loss at the median),
        plus the optional level-wiggliness penalty. ``batch``: ``{"origins" (B,), "future" (B, H)}``."""
        out, base, level = self.outputs(batch["origins"])
        r = self.scale[self.t]
        err = (batch["future"] - base) / r - out  # (B, H)
        loss = err.abs().mean()
        if self.level_penalty > 0 and level.shape[0] > 2:
            loss = loss + self.level_penalty * ((level[2:] - 2 * level[1:-1] + level[:-2]) / r).pow(2).mean()
        e = err.detach()
        n = out.shape[0]
        return LossOutput(
            loss, n, None, {"mae": float(e.abs().mean(-1).sum()), "mse": float(e.pow(2).mean(-1).sum())}
        )

    @torch.no_grad()
    def forecast_log(self, origins, init_season: Tensor | None = None) -> np.ndarray:
        """(B, H) forecasts of the transformed target at ``origins``."""
        self.eval()
        o = torch.as_tensor(np.asarray(origins), dtype=torch.long)
        out, base, _ = self.outputs(o, init_season)
        return (base + self.scale[self.t] * out).double().numpy()

    def to_config(self) -> dict[str, Any]:
        return {**super().to_config(), "target_index": self.t, "level_penalty": self.level_penalty}

    def state(self) -> dict[str, Any]:
        """The smoothing parameters for ``es.json``."""
        return {
            **self._coefficients(),
            "init_season": None if self.init_season is None else self.init_season.detach().tolist(),
        }

    def load_state(self, d: dict[str, Any]) -> None:
        self._load_coefficients(d)
        if self.init_season is not None:
            with torch.no_grad():
                self.init_season.copy_(torch.tensor(d["init_season"], dtype=torch.float32))


class PanelESForecaster(_Smoothed):
    """The ES-RNN of a global model: one network and one pair of coefficients for many series.

    Each row of a batch is a series (rows may repeat one) with its own origin and scale ``r``; the level and
    the indices are smoothed over the row's values from its first one with the shared ``alpha`` and ``gamma``
    (learnt), starting from indices computed from the row's own first seasons (:func:`initial_season`, not
    learnt: a series the run has never seen is read exactly like a training one). The network reads
    ``x_j = (z_j - s_j - l_T) / r`` over the window and the forecast is ``z_{T+h} = l_T + s_{T+h} + r o_h``,
    as in :class:`ESForecaster`. Smyl (2020) learnt the coefficients and indices per series; shared ones are
    what a network that must also forecast unseen series can carry.

    Args:
        net: a :class:`~rnnkit.models.SequenceRegressor` with ``input_size = 1`` and ``output_size = horizon``.
        season, horizon, window: ``m`` (1: only a level), forecast steps, the window the network reads.
        alpha, gamma: starting coefficients.

    Shape: :meth:`outputs` rows ``z`` (B, n) (right-padded), ``init`` (B, m) or None, ``origins`` (B,) with
    ``window <= origin <= n``, ``scale`` (B,) -> network outputs (B, H) and bases (B, H).

    Example::

        >>> from rnnkit.models import RegressorConfig, SequenceRegressor
        >>> net = SequenceRegressor(RegressorConfig(output_size=4, input_size=1))
        >>> es = PanelESForecaster(net, 4, 4, 8)
        >>> z = torch.randn(3, 40).cumsum(1)
        >>> init = torch.tensor(np.stack([initial_season(r.numpy(), 4) for r in z]), dtype=torch.float32)
        >>> es.outputs(z, init, torch.tensor([20, 30, 40]), torch.ones(3))[0].shape
        torch.Size([3, 4])
    """

    def __init__(
        self,
        net: nn.Module,
        season: int,
        horizon: int,
        window: int,
        alpha: float = ALPHA_START,
        gamma: float = 0.2,
    ) -> None:
        super().__init__()
        self.season, self.horizon, self.window = int(season), int(horizon), int(window)
        self._init_coefficients(net, self.season > 1, alpha, gamma)

    def outputs(
        self, z: Tensor, init: Tensor | None, origins: Tensor, scale: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Network outputs (B, H) and bases ``l_T + s_{T+h}`` (B, H) (see the class docstring)."""
        end = int(origins.max())
        seasonal = self.season > 1
        level, season = es_smooth(z[:, :end], self.alpha, self.gamma, init if seasonal else None)
        x, base = es_window(z, level, season, origins, self.window, self.horizon, self.season)
        return self.net((x / scale[:, None])[..., None]), base

    def loss(self, batch: dict[str, Any], state: Any = None) -> LossOutput:
        """Absolute error of the log forecast in units of each row's scale (Smyl's pinball loss at the median).
        ``batch``: ``{"z" (B, n), "init" (B, m) or None, "origins" (B,), "scale" (B,), "future" (B, H)}``."""
        out, base = self.outputs(batch["z"], batch["init"], batch["origins"], batch["scale"])
        err = (batch["future"] - base) / batch["scale"][:, None] - out
        e = err.detach()
        return LossOutput(
            err.abs().mean(),
            out.shape[0],
            None,
            {"mae": float(e.abs().mean(-1).sum()), "mse": float(e.pow(2).mean(-1).sum())},
        )

    @torch.no_grad()
    def forecast_log(self, z: Tensor, init: Tensor | None, origins: Tensor, scale: Tensor) -> np.ndarray:
        """(B, H) forecasts of the transformed values after ``origins``."""
        self.eval()
        out, base = self.outputs(z, init, origins, scale)
        return (base + scale[:, None] * out).double().numpy()

    def state(self) -> dict[str, Any]:
        """The learnt coefficients (``es`` in the run's scaler.json)."""
        return self._coefficients()

    def load_state(self, d: dict[str, Any]) -> None:
        self._load_coefficients(d)


def es_rows(histories, m: int) -> tuple[Tensor, Tensor | None, Tensor]:
    """``(z (B, n), init (B, m) or None, origins (B,))`` for :meth:`PanelESForecaster.forecast_log`: the
    transformed histories right-padded with zeros, each row's starting indices from its own first seasons,
    and its length as the origin (the forecast follows the end of each history)."""
    part = [np.asarray(h, dtype=np.float64) for h in histories]
    z = np.zeros((len(part), max(len(h) for h in part)))
    for i, h in enumerate(part):
        z[i, : len(h)] = h
    init = (
        torch.tensor(np.stack([initial_season(h, m) for h in part]), dtype=torch.float32) if m > 1 else None
    )
    return torch.tensor(z, dtype=torch.float32), init, torch.tensor([len(h) for h in part], dtype=torch.long)
