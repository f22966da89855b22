"""The sentiment model, built from :mod:`rnnkit.models`, and its class probabilities."""

from __future__ import annotations

import numpy as np
import torch

from rnnkit.apps.sentiment.config import SentimentConfig
from rnnkit.apps.sentiment.data import collate

__all__ = ["build_model", "predict_proba"]


def build_model(cfg: SentimentConfig, vocab_size: int, num_classes: int):
    from rnnkit.models import ClassifierConfig, EncoderConfig, SequenceClassifier

    encoder = EncoderConfig(
        cell=cfg.cell,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        bidirectional=cfg.bidirectional,
        dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
    )
    return SequenceClassifier(
        ClassifierConfig(
            num_classes=num_classes,
            vocab_size=vocab_size,
            embedding_dim=cfg.embedding_dim,
            encoder=encoder,
            pooling=cfg.pooling,
            dropout=cfg.dropout,
        )
    )


@torch.no_grad()
def predict_proba(model, ids: list[list[int]], batch_size: int = 256) -> np.ndarray:
    model.eval()
    out = [model.predict(**collate(ids[s : s + batch_size])).numpy() for s in range(0, len(ids), batch_size)]
    return np.concatenate(out, axis=0)
