"""Sentiment data: the built-in polarity set or the user's labelled file, encoding, batches and the split."""

from __future__ import annotations

import numpy as np
import torch

from rnnkit.apps._common import split_indices
from rnnkit.apps.sentiment.config import SentimentConfig
from rnnkit.datasets import Vocabulary, load_polarity, read_text_classification

__all__ = ["APP", "POLARITY_CLASSES", "batches", "collate", "encode", "load_texts", "split"]

APP = "sentiment"

POLARITY_CLASSES = ["negative", "positive"]


def load_texts(cfg: SentimentConfig) -> tuple[list[str], list[int], list[str]]:
    """``(texts, class ids, class names)`` of the configured data set."""
    if cfg.data == "polarity":
        pairs = load_polarity()
        return [t for t, _ in pairs], [y for _, y in pairs], list(POLARITY_CLASSES)
    texts, labels = read_text_classification(cfg.data, cfg.text_column, cfg.label_column)
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    return texts, [index[y] for y in labels], classes


def split(cfg: SentimentConfig, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixed seeded ``(train, val, test)`` index split of ``n`` examples (the test part never moves)."""
    return split_indices(n, cfg.val_fraction, cfg.test_fraction, cfg.split_seed)


def encode(vocab: Vocabulary, texts: list[str], max_tokens: int) -> list[list[int]]:
    """Token ids of each text, cut to ``max_tokens``; a text with no tokens becomes ``[<unk>]``."""
    return [(vocab.encode(t)[:max_tokens] or [vocab.unk_id]) for t in texts]


def collate(ids: list[list[int]], labels: list[int] | None = None) -> dict[str, torch.Tensor]:
    """Right-padded batch: inputs (B, T), lengths (B,), targets (B,)."""
    lengths = torch.tensor([len(x) for x in ids])
    inputs = torch.zeros(len(ids), int(lengths.max()), dtype=torch.long)
    for i, x in enumerate(ids):
        inputs[i, : len(x)] = torch.tensor(x)
    batch = {"inputs": inputs, "lengths": lengths}
    if labels is not None:
        batch["targets"] = torch.tensor(labels, dtype=torch.long)
    return batch


def batches(ids, labels, batch_size: int, order=None) -> list[dict[str, torch.Tensor]]:
    order = range(len(ids)) if order is None else order
    order = list(order)
    return [
        collate([ids[i] for i in order[s : s + batch_size]], [labels[i] for i in order[s : s + batch_size]])
        for s in range(0, len(order), batch_size)
    ]
