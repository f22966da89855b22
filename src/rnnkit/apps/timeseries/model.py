"""The forecaster, built from :mod:`rnnkit.models`, and its forecasts in the data's units."""

from __future__ import annotations

import numpy as np
import torch

from rnnkit.apps._common import app_encoder
from rnnkit.apps.timeseries.config import TimeSeriesConfig
from rnnkit.apps.timeseries.data import Scaler

__all__ = ["Ensemble", "build_model", "forecast_windows", "member_windows"]


def build_model(cfg: TimeSeriesConfig, channels: int):
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
            output_size=cfg.horizon, input_size=channels, encoder=encoder, pooling="last", dropout=cfg.dropout
        )
    )


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
