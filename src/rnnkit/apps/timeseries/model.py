"""The forecaster, built from :mod:`rnnkit.models`, and its forecasts in the data's units."""

from __future__ import annotations

import numpy as np
import torch

from rnnkit.apps.timeseries.config import TimeSeriesConfig
from rnnkit.apps.timeseries.data import Scaler

__all__ = ["build_model", "forecast_windows"]


def build_model(cfg: TimeSeriesConfig, channels: int):
    from rnnkit.models import EncoderConfig, RegressorConfig, SequenceRegressor, SequenceTagger, TaggerConfig

    encoder = EncoderConfig(
        cell=cfg.cell,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
    )
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


@torch.no_grad()
def forecast_windows(model, scaler: Scaler, windows: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """(n, W, C) raw windows -> (n, H) forecasts in the data's units."""
    model.eval()
    outs = []
    for s in range(0, len(windows), batch_size):
        w = windows[s : s + batch_size]
        out = model(scaler.inputs(w))
        if isinstance(out, tuple):  # the tagger: (outputs (B, W, H), state) -> the last step
            out = out[0][:, -1]
        outs.append(scaler.untarget(out.numpy().astype(np.float64), scaler.target_base(w)[:, -1]))
    return np.concatenate(outs, 0)
