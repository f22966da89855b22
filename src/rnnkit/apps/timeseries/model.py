"""The forecaster, built from :mod:`rnnkit.models`, and its forecasts in the data's units."""

from __future__ import annotations

import numpy as np
import torch

from rnnkit.apps._common import app_encoder
from rnnkit.apps.timeseries.config import TimeSeriesConfig
from rnnkit.apps.timeseries.data import Scaler, windows_at
from rnnkit.apps.timeseries.es import ESForecaster, PanelESForecaster, es_rows, initial_season

__all__ = [
    "Ensemble",
    "build_es",
    "build_model",
    "es_history_forecasts",
    "forecast_at",
    "forecast_windows",
    "is_panel_es",
    "member_windows",
]


def build_model(cfg: TimeSeriesConfig, channels: int, loss: str = "mse"):
    """The network: a regressor (many-to-one, trained with ``loss``) or a tagger (many-to-many, squared error)."""
    from rnnkit.models import RegressorConfig, SequenceRegressor, SequenceTagger, TaggerConfig

    encoder = app_encoder(cfg)
    if cfg.structure == "many-to-many":
        return SequenceTagger(
            TaggerConfig(
                task="regression",
                num_outputs=cfg.horizon,
                input_size=channels,
                encoder=encoder,
                dropout=cfg.dropout,
            )
        )
    return SequenceRegressor(
        RegressorConfig(
            output_size=cfg.horizon,
            input_size=channels,
            encoder=encoder,
            pooling="last",
            dropout=cfg.dropout,
            loss=loss,
        )
    )


def es_start(cfg: TimeSeriesConfig) -> dict[str, float]:
    """The ES-RNN's starting coefficients the user set (``--es-alpha``, ``--es-gamma``); the rest keep the
    forecaster's defaults."""
    return {k: v for k, v in (("alpha", cfg.es_alpha), ("gamma", cfg.es_gamma)) if v is not None}


def build_es(
    cfg: TimeSeriesConfig, channels: int, scaler: Scaler, train_target: np.ndarray, window: int, net=None
):
    """An :class:`ESForecaster` around ``net`` (default :func:`build_model`'s network); its starting seasonal
    indices come from the first seasons of the (transformed) training part ``train_target``, whose first values
    it remembers (``head``) to know whether a later series starts where the training one did."""
    y = np.asarray(train_target, dtype=np.float64)
    z = np.log(y) if scaler.log[scaler.t] else y
    m = cfg.season if cfg.season > 1 else 1
    init = initial_season(z, m) if m > 1 else np.zeros(1)
    es = ESForecaster(
        build_model(cfg, channels) if net is None else net, m, cfg.horizon, window, scaler.t, scaler.scale, init,
        level_penalty=cfg.level_penalty, **es_start(cfg),
    )  # fmt: skip
    es.head = [float(v) for v in np.asarray(train_target)[: max(m, 2)]]
    return es


def _es_forecast(es: ESForecaster, scaler: Scaler, values: np.ndarray, origins) -> np.ndarray:
    """(n, H) forecasts in the data's units, smoothing over ``values`` (N, C) from its first row.

    The learnt starting indices belong to the training series' first row; a series that starts elsewhere
    (recent values only) starts from its own first seasons' indices instead."""
    z = scaler.transform(np.asarray(values, dtype=np.float64))
    es.use_series(torch.tensor(z))
    init = None
    head = np.asarray(getattr(es, "head", []))
    y = np.asarray(values)[:, scaler.t]
    if es.init_season is not None and not (len(y) >= len(head) and np.allclose(y[: len(head)], head)):
        init = torch.tensor(initial_season(z[:, scaler.t], es.season), dtype=torch.float32)
    return scaler._untransform_target(es.forecast_log(origins, init))


def is_panel_es(model) -> bool:
    """Whether ``model`` (or an :class:`Ensemble`'s members) is a global ES-RNN (:class:`PanelESForecaster`)."""
    first = model.members[0][0] if isinstance(model, Ensemble) else model
    return isinstance(first, PanelESForecaster)


def es_history_forecasts(model, histories, scalers, batch_size: int = 512) -> list[np.ndarray]:
    """(H,) forecasts in each series' units after the end of ``histories[i]`` (raw values from the series'
    start, or any stretch of recent ones), by a :class:`PanelESForecaster` or the median of an ensemble's."""
    members = model.members if isinstance(model, Ensemble) else [(model, model.window)]
    zs = [sc.transform(np.asarray(h, dtype=np.float64)[:, None])[:, 0] for h, sc in zip(histories, scalers)]
    scale = torch.tensor([float(sc.scale[0]) for sc in scalers], dtype=torch.float32)
    per_member = []
    for m, _ in members:
        out = []
        for s in range(0, len(zs), batch_size):
            z, init, origins = es_rows(zs[s : s + batch_size], m.season)
            out.append(m.forecast_log(z, init, origins, scale[s : s + batch_size]))
        logs = np.concatenate(out, 0)
        per_member.append([sc._untransform_target(f) for sc, f in zip(scalers, logs)])
    return list(np.median(np.asarray(per_member), 0))


def forecast_at(model, scaler: Scaler, values: np.ndarray, origins, window: int) -> np.ndarray:
    """(n, H) forecasts in the data's units at ``origins`` of the series ``values`` (N, C).

    A window model reads the ``window`` values before each origin; an :class:`ESForecaster` smooths the
    series from its start; an :class:`Ensemble` takes the median of its members'."""
    if isinstance(model, Ensemble):
        return np.median(
            [forecast_at(m, scaler, values, origins, w) for m, w in model.members], 0
        )  # fmt: skip
    if isinstance(model, ESForecaster):
        return _es_forecast(model, scaler, values, origins)
    return forecast_windows(model, scaler, windows_at(values, np.asarray(origins), window))


def member_windows(cfg: TimeSeriesConfig) -> list[int]:
    """Input length of each ensemble member: ``window`` for even members, two thirds of it for odd ones."""
    short = max(cfg.window * 2 // 3, min(cfg.window, cfg.season), 2)
    return [cfg.window if k % 2 == 0 else short for k in range(cfg.ensemble)]


class Ensemble:
    """Networks that each read the last ``window_k`` values; the forecast is the median of theirs.

    Smyl's ES-RNN (2020) and most M4 winners averaged several models trained with different seeds and input
    lengths; the median is robust to one member that trained badly.

    Args:
        members: ``[(model, window), ...]``.

    Shape: :meth:`forecast` ``(n, W, C)`` windows (``W >= max window``) -> ``(n, H)``.
    """

    def __init__(self, members):
        self.members = list(members)
        self.window = max(w for _, w in self.members)

    def member_forecasts(self, scaler: Scaler, windows: np.ndarray) -> np.ndarray:
        """(K, n, H): every member's forecast in the data's units."""
        return np.stack(
            [forecast_windows(m, scaler, windows[:, windows.shape[1] - w :]) for m, w in self.members]
        )

    def forecast(self, scaler: Scaler, windows: np.ndarray) -> np.ndarray:
        return np.median(self.member_forecasts(scaler, windows), 0)


@torch.no_grad()
def forecast_windows(model, scaler: Scaler, windows: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """(n, W, C) raw windows -> (n, H) forecasts in the data's units (the median for an :class:`Ensemble`)."""
    if isinstance(model, Ensemble):
        return model.forecast(scaler, windows)
    model.eval()
    outs = []
    for s in range(0, len(windows), batch_size):
        w = windows[s : s + batch_size]
        out = model(scaler.inputs(w))
        if isinstance(out, tuple):  # the tagger: (outputs (B, W, H), state) -> the last step
            out = out[0][:, -1]
        outs.append(scaler.decode(w, out.numpy().astype(np.float64)))
    return np.concatenate(outs, 0)
