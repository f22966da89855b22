"""Text-generation data: the built-in novels or the user's text, the split in order, and the parallel
streams that truncated BPTT reads."""

from __future__ import annotations

import numpy as np
import torch

from rnnkit._errors import RnnkitError
from rnnkit.apps.textgen.config import TextGenConfig
from rnnkit.datasets import AUSTEN_BOOKS, Vocabulary, load_austen, read_text_file, split_by_time

__all__ = [
    "APP",
    "EVAL_STREAMS",
    "HELD_OUT_TEXTS",
    "held_out",
    "load_text",
    "scored_positions",
    "split_text",
    "stream_batches",
    "stream_count",
    "streams",
]

APP = "textgen"

EVAL_STREAMS = 16


def _held_out_names() -> tuple[str, ...]:
    from rnnkit.datasets.extra import EXTRA_DATASETS

    return tuple(sorted(n for n, d in EXTRA_DATASETS.items() if d.task == APP))


HELD_OUT_TEXTS = _held_out_names()
"""Names ``--data`` accepts for the held-out texts of :mod:`rnnkit.datasets.extra` (defaults are not tuned on them)."""


def load_text(cfg: TextGenConfig) -> str:
    if cfg.data == "austen":
        unknown = [b for b in cfg.books if b not in AUSTEN_BOOKS]
        if unknown:
            raise RnnkitError(f"--books: expected names from {list(AUSTEN_BOOKS)}, got {unknown}")
        return load_austen(cfg.books or None)
    if cfg.books:
        raise RnnkitError(f"--books picks Austen novels: expected --data austen, got --data {cfg.data}")
    if cfg.data in HELD_OUT_TEXTS:
        from rnnkit.datasets.extra import load_extra

        return load_extra(cfg.data)
    return read_text_file(cfg.data)


def split_text(text: str, cfg: TextGenConfig) -> tuple[str, str, str]:
    """``(train, validation, test)`` text, cut in order (:func:`rnnkit.datasets.split_by_time`)."""
    try:
        parts = split_by_time(text, cfg.val_fraction, cfg.test_fraction)
    except RnnkitError:
        parts = ("", "", "")
    sizes = [len(p) for p in parts]
    fractions = (1.0, cfg.val_fraction, cfg.test_fraction)
    if any(n < 2 and f > 0 for n, f in zip(sizes, fractions)):
        n = len(text)
        n_test = round(n * cfg.test_fraction)
        n_val = round(n * cfg.val_fraction)
        raise RnnkitError(
            f"the text is too short to split: {n} characters give {n - n_val - n_test}/{n_val}/{n_test} "
            "train/validation/test characters; each part needs at least 2"
        )
    return parts


def streams(ids: torch.Tensor, num: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` of shape (num, L): ``ids`` cut into ``num`` contiguous streams."""
    m = len(ids) - 1
    length = m // num
    if length < 1:
        raise RnnkitError(f"the text is too short for {num} parallel streams ({len(ids)} tokens)")
    x = ids[: num * length].view(num, length)
    y = ids[1 : num * length + 1].view(num, length)
    return x, y


MIN_STREAM = 500
"""Tokens a held-out stream reads at least: each stream starts from a zero state, which costs its first tokens,
while the n-gram scored next to it sees the text before them."""


def stream_count(n: int, num_streams: int = EVAL_STREAMS) -> int:
    """How many parallel streams a held-out text of ``n`` tokens is read as: ``num_streams``, fewer for a
    short text (each stream at least :data:`MIN_STREAM` tokens; one for a text shorter than twice that)."""
    return max(1, min(num_streams, (n - 1) // MIN_STREAM))


def scored_positions(n: int, num_streams: int = EVAL_STREAMS) -> np.ndarray:
    """Positions (in a held-out text of ``n`` tokens) of the tokens :func:`token_nats` scores, in its order.

    The text is read as ``num`` parallel streams of ``length`` tokens; each stream's first token is read but
    not scored.
    """
    num = stream_count(n, num_streams)
    length = (n - 1) // num
    return (np.arange(num)[:, None] * length + 1 + np.arange(length)[None, :]).reshape(-1)


def stream_batches(
    x: torch.Tensor, y: torch.Tensor, seg: int, start: int = 0, stop: int | None = None
) -> list[dict]:
    stop = x.shape[1] if stop is None else stop
    return [
        {"inputs": x[:, a : min(a + seg, stop)], "targets": y[:, a : min(a + seg, stop)]}
        for a in range(start, stop, seg)
    ]


def held_out(text: str, limit: int, vocab: Vocabulary) -> tuple[str, torch.Tensor]:
    """The first ``limit + 1`` tokens of a held-out part (``limit`` = 0: all): its text and its ids."""
    if limit and vocab.level == "char":
        text = text[: limit + 1]  # characters are tokens: keep the text in step with the ids
    ids = vocab.encode(text)
    return text, torch.tensor(ids[: limit + 1] if limit else ids, dtype=torch.long)
