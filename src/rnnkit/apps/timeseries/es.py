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

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.train.protocol import LossOutput

__all__ = ["ESForecaster", "es_smooth", "es_smooth_reference", "initial_season"]

GAIN = 10.0
"""Coefficient logits are ``GAIN * parameter``: Adam moves a parameter by about the learning rate per step,
so the gain lets the two coefficients travel their useful range in the few hundred steps a short series
gives, while the network's weights keep the ordinary step."""

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
    """:func:`es_smooth_reference`, one season (block of ``L = m`` steps) at a time.

    Within a block the indices ``s_t`` are known (they were set a season earlier), so with
    ``d_t = z_t - s_t`` the level is ``l_{t0+k} = (1-alpha)^{k+1} l_{t0-1} + sum_{j<=k} alpha (1-alpha)^{k-j}
    d_{t0+j}``: one lower-triangular (L, L) product per block instead of L scalar steps.
    """
    n = z.shape[0]
    seasonal = init_season is not None
    m = init_season.shape[0] if seasonal else 1
    L = m if seasonal else _NO_SEASON_BLOCK
    k = torch.arange(L, dtype=z.dtype)
    lag = k[:, None] - k[None, :]  # (L, L)
    log_keep = torch.log1p(-alpha)
    A = torch.where(lag >= 0, alpha * torch.exp(lag.clamp(min=0) * log_keep), torch.zeros((), dtype=z.dtype))
    P = torch.exp((k + 1) * log_keep)  # (L,)
    chunks = [init_season] if seasonal else []
    levels = []
    prev = z[0] - (init_season[0] if seasonal else 0.0)
    for i, t0 in enumerate(range(0, n, L)):
        e = min(t0 + L, n)
        b = e - t0
        zb = z[t0:e]
        s = chunks[i][:b] if seasonal else None
        d = zb - s if seasonal else zb
        lv = A[:b, :b] @ d + P[:b] * prev  # (b,)
        levels.append(lv)
        prev = lv[-1]
        if seasonal:
            chunks.append(gamma * (zb - lv) + (1 - gamma) * s)
    level = torch.cat(levels)
    season = torch.cat(chunks)[: n + m] if seasonal else z.new_zeros(n + 1)
    return level, season


def initial_season(z: np.ndarray, m: int) -> np.ndarray:
    """(m,) starting indices: the mean deviation of each position from its season's mean over the first
    (at most 3) whole seasons, centred (the classical decomposition's starting values)."""
    k = max(1, min(3, len(z) // m))
    seg = np.asarray(z[: k * m], dtype=np.float64).reshape(k, m)
    dev = (seg - seg.mean(1, keepdims=True)).mean(0)
    return dev - dev.mean()


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


class ESForecaster(nn.Module):
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
        alpha, gamma: starting coefficients.
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
        alpha: float = 0.3,
        gamma: float = 0.2,
        level_penalty: float = 0.0,
    ) -> None:
        super().__init__()
        self.net = net
        self.season, self.horizon, self.window, self.t = (
            int(season),
            int(horizon),
            int(window),
            int(target_index),
        )
        self.register_buffer("scale", torch.tensor(np.asarray(scale, dtype=np.float32)))
        self.level_penalty = float(level_penalty)
        self.alpha_p = nn.Parameter(torch.tensor(_logit(alpha) / GAIN))
        seasonal = self.season > 1
        self.gamma_p = nn.Parameter(torch.tensor(_logit(gamma) / GAIN)) if seasonal else None
        init = np.asarray(init_season, dtype=np.float32)
        self.init_season = nn.Parameter(torch.tensor(init)) if seasonal else None
        self.series: Tensor | None = None  # (n, C) transformed values the origins index

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
        W, H, m = self.window, self.horizon, self.season
        steps = torch.arange(W) - W  # window step j = origin + steps
        idx = origins[:, None] + steps  # (B, W)
        lT = level[origins - 1]  # (B,)
        x = (z[idx] - z[origins - 1][:, None, :]) / self.scale  # (B, W, C): other columns vs their last value
        xt = (z[idx, self.t] - season[idx] - lT[:, None]) / self.scale[self.t]  # (B, W)
        x = torch.cat([x[..., : self.t], xt[..., None], x[..., self.t + 1 :]], -1)
        ahead = (torch.arange(H) % m) + 1 if m > 1 else torch.ones(H, dtype=torch.long)  # s_{T+h} known
        base = lT[:, None] + season[origins[:, None] - 1 + ahead]  # (B, H)
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
        """What the trainer's checkpoints record (the network's config and the smoothing's sizes)."""
        return {
            "net": self.net.to_config(),
            "season": self.season,
            "horizon": self.horizon,
            "window": self.window,
            "target_index": self.t,
            "level_penalty": self.level_penalty,
        }

    def save(self, path) -> None:
        """Weights of the network and the smoothing (safetensors) and :meth:`to_config` (JSON), for the
        trainer's checkpoints; a finished run saves the network and :meth:`state` instead."""
        from rnnkit.files import module_tensors, write_json, write_safetensors
        from rnnkit.models.io import CONFIG_FILE, MODEL_FORMAT, MODEL_VERSION, WEIGHTS_FILE

        path = Path(path)
        tensors, aliases = module_tensors(self)
        meta = {"format": MODEL_FORMAT, "model": type(self).__name__, "aliases": json.dumps(aliases)}
        digest = write_safetensors(path / WEIGHTS_FILE, tensors, meta)
        info = {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "model": type(self).__name__,
            "config": self.to_config(),
            "weights_sha256": digest,
        }
        write_json(path / CONFIG_FILE, info)

    def state(self) -> dict[str, Any]:
        """The smoothing parameters for ``es.json``."""
        return {
            "alpha_p": float(self.alpha_p.detach()),
            "gamma_p": None if self.gamma_p is None else float(self.gamma_p.detach()),
            "init_season": None if self.init_season is None else self.init_season.detach().tolist(),
            "alpha": float(self.alpha.detach()),
            "gamma": None if self.gamma is None else float(self.gamma.detach()),
        }

    def load_state(self, d: dict[str, Any]) -> None:
        with torch.no_grad():
            self.alpha_p.fill_(float(d["alpha_p"]))
            if self.gamma_p is not None:
                self.gamma_p.fill_(float(d["gamma_p"]))
                self.init_season.copy_(torch.tensor(d["init_season"], dtype=torch.float32))
