"""Sentiment data: the built-in polarity set or the user's labelled file, encoding, batches and the split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import split_indices
from rnnkit.apps.sentiment.config import SentimentConfig
from rnnkit.datasets import Vocabulary, load_polarity, read_text_classification

__all__ = [
    "APP",
    "POLARITY_CLASSES",
    "batches",
    "chunk",
    "collate",
    "encode",
    "extra_names",
    "load_texts",
    "split",
    "token_limit",
]

APP = "sentiment"

POLARITY_CLASSES = ["negative", "positive"]


# class names of the held-out sets of rnnkit.datasets.extra, by their label count
_EXTRA_CLASSES = {2: ["negative", "positive"], 3: ["negative", "neutral", "positive"]}


def extra_names() -> list[str]:
    """Names of the held-out sentiment sets of :mod:`rnnkit.datasets.extra` that ``data`` accepts."""
    from rnnkit.datasets.extra import EXTRA_DATASETS

    return sorted(name for name, d in EXTRA_DATASETS.items() if d.task == APP)


def load_texts(cfg: SentimentConfig) -> tuple[list[str], list[int], list[str]]:
    """``(texts, class ids, class names)`` of the configured data set."""
    if cfg.data == "polarity":
        pairs = load_polarity()
        return [t for t, _ in pairs], [y for _, y in pairs], list(POLARITY_CLASSES)
    if cfg.data in extra_names():
        from rnnkit.datasets.extra import load_extra

        pairs = load_extra(cfg.data)
        k = max(y for _, y in pairs) + 1
        return [t for t, _ in pairs], [y for _, y in pairs], list(_EXTRA_CLASSES[k])
    texts, labels = read_text_classification(cfg.data, cfg.text_column, cfg.label_column)
    classes = sorted(set(labels))
    check_classes(labels, cfg.label_column, Path(cfg.data).name)
    index = {c: i for i, c in enumerate(classes)}
    return texts, [index[y] for y in labels], classes


MIN_PER_CLASS = 3
"""Examples a class needs at least: one each to train on, to validate on and to test on."""


def check_classes(labels: list, column: str, name: str = "") -> None:
    """Refuse labels that cannot be learnt: an id-like column (about one value per row) or classes too small
    to appear in the training, validation and test parts; a small class's first data row is named, and a
    class it looks like a misspelling of (``postive`` beside ``positive``)."""
    import difflib

    counts: dict = {}
    for y in labels:
        counts[y] = counts.get(y, 0) + 1
    if len(counts) < 2:
        raise RnnkitError(f"label column {column!r}: expected at least 2 classes, got {len(counts)}")
    if len(counts) > len(labels) / 2:
        raise RnnkitError(
            f"label column {column!r}: expected class labels, got {len(counts)} distinct values in {len(labels)} "
            "rows (an id or free-text column?); choose the label column with --label-column"
        )
    small = sorted((n, str(c)) for c, n in counts.items() if n < MIN_PER_CLASS)
    if small:
        large = [str(c) for c, n in counts.items() if n >= MIN_PER_CLASS]
        first = {str(y): i for i, y in reversed(list(enumerate(labels)))}

        def told(n: int, c: str) -> str:
            like = difflib.get_close_matches(c, large, n=1, cutoff=0.75)
            return f"{c!r} ({n}, first in data row {first[c] + 1}" + (f"; {like[0]!r}?)" if like else ")")

        named = ", ".join(told(n, c) for n, c in small[:5]) + (" ..." if len(small) > 5 else "")
        raise RnnkitError(
            f"{name + ': ' if name else ''}label column {column!r}: expected at least {MIN_PER_CLASS} examples per "
            f"class (train, validation and test need one each), got {len(small)} smaller class(es): {named}; "
            "correct, merge or remove them"
        )


def split(cfg: SentimentConfig, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixed seeded ``(train, val, test)`` index split of ``n`` examples (the test part never moves)."""
    return split_indices(n, cfg.val_fraction, cfg.test_fraction, cfg.split_seed)


def encode(vocab: Vocabulary, texts: list[str], max_tokens: int | None = None) -> list[list[int]]:
    """Token ids of each text (cut to ``max_tokens`` when given); a text with no tokens becomes ``[<unk>]``."""
    return [(vocab.encode(t)[:max_tokens] or [vocab.unk_id]) for t in texts]


def token_limit(cfg: SentimentConfig, train_lengths) -> int:
    """Tokens read in one piece: ``cfg.max_tokens``, else the longest training text, at most ``max_tokens_cap``.

    Padding is per batch, so a limit at the longest text costs nothing on short texts; the cap bounds the
    memory and the backpropagation length on long documents (which are then read in pieces, see :func:`chunk`).
    """
    if cfg.max_tokens is not None:
        return cfg.max_tokens
    return max(1, min(cfg.max_tokens_cap, max(train_lengths, default=1)))


def chunk(ids: list[list[int]], limit: int, long_texts: str = "chunks") -> tuple[list[list[int]], list[int]]:
    """Pieces of at most ``limit`` tokens and the index of the text each piece comes from.

    ``long_texts="chunks"``: a text of ``L > limit`` tokens becomes ``ceil(L / limit)`` consecutive pieces
    of nearly equal length (no short last piece), so every token is read. ``"cut"``: only the first
    ``limit`` tokens are kept. A text of at most ``limit`` tokens is one piece either way.
    """
    pieces, owner = [], []
    for i, x in enumerate(ids):
        if len(x) <= limit or long_texts == "cut":
            pieces.append(x[:limit])
            owner.append(i)
            continue
        n = -(-len(x) // limit)
        bounds = [round(j * len(x) / n) for j in range(n + 1)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            pieces.append(x[a:b])
            owner.append(i)
    return pieces, owner


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


def batches(ids, labels, batch_size: int, order=None, collate_fn=None) -> list[dict[str, torch.Tensor]]:
    """The batches of ``ids`` in ``order``, made by ``collate_fn`` (default :func:`collate`)."""
    order = range(len(ids)) if order is None else order
    order, collate_fn = list(order), collate_fn or collate
    return [
        collate_fn(
            [ids[i] for i in order[s : s + batch_size]], [labels[i] for i in order[s : s + batch_size]]
        )
        for s in range(0, len(order), batch_size)
    ]
