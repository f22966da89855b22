"""The speech model, built from :mod:`rnnkit.models`, and its class probabilities."""

from __future__ import annotations

import numpy as np
import torch

from rnnkit.apps._common import app_encoder
from rnnkit.apps.speech.config import SpeechConfig
from rnnkit.apps.speech.data import collate

__all__ = ["build_model", "predict_proba"]


def build_model(cfg: SpeechConfig, num_features: int, num_classes: int):
    """A many-to-one :class:`~rnnkit.models.SequenceClassifier` over feature frames."""
    from rnnkit.models import ClassifierConfig, SequenceClassifier

    encoder = app_encoder(cfg)
    return SequenceClassifier(
        ClassifierConfig(
            num_classes=num_classes,
            input_size=num_features,
            encoder=encoder,
            pooling=cfg.pooling,
            dropout=cfg.dropout,
        )
    )


@torch.no_grad()
def predict_proba(model, seqs: list[np.ndarray], batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, classes) of already normalised sequences."""
    model.eval()
    out = [
        model.predict(**collate(seqs[s : s + batch_size])).numpy() for s in range(0, len(seqs), batch_size)
    ]
    return np.concatenate(out, axis=0)
