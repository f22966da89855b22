"""The sentiment model, built from :mod:`rnnkit.models`, and its class probabilities."""

from __future__ import annotations

import numpy as np
import torch

from rnnkit.apps.sentiment.config import SentimentConfig
from rnnkit.apps.sentiment.data import chunk, collate

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
def predict_proba(
    model, ids: list[list[int]], batch_size: int = 256, limit: int | None = None, long_texts: str = "chunks"
) -> np.ndarray:
    """Class probabilities ``(N, K)`` of token-id lists.

    With ``limit``, a longer text is read in pieces (:func:`~rnnkit.apps.sentiment.data.chunk`) and its
    probabilities are the mean of its pieces' probabilities.
    """
    model.eval()
    pieces, owner = chunk(ids, limit, long_texts) if limit is not None else (ids, list(range(len(ids))))
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))  # similar lengths: little padding
    proba = np.zeros((len(pieces), model.config.num_classes))
    for s in range(0, len(order), batch_size):
        part = order[s : s + batch_size]
        proba[part] = model.predict(**collate([pieces[i] for i in part])).numpy()
    out = np.zeros((len(ids), proba.shape[1]))
    np.add.at(out, np.asarray(owner, dtype=np.int64), proba)
    return out / np.bincount(owner, minlength=len(ids))[:, None]
