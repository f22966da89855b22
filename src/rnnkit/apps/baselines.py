"""Honest baselines the applications are compared with, trained on exactly the same splits.

* :class:`BagOfWordsLogisticRegression` — binary bag-of-words (optionally n-grams) features and a
  softmax/logistic regression with L2 penalty, fitted full-batch with L-BFGS in torch; the penalty is
  picked on the validation split.
* :func:`naive_forecast`, :func:`seasonal_naive_forecast` — the last value, or the value one season
  earlier, repeated over the horizon.
* :func:`unigram_bits_per_char` — a character-frequency model (add-one smoothing) of the training text.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch

from rnnkit._errors import RnnkitError
from rnnkit.datasets import tokenize_words

__all__ = [
    "BagOfWordsLogisticRegression",
    "naive_forecast",
    "seasonal_naive_forecast",
    "unigram_bits_per_char",
]


def _ngrams(tokens: list[str], n: int) -> list[str]:
    out = list(tokens)
    for k in range(2, n + 1):
        out += [" ".join(tokens[i : i + k]) for i in range(len(tokens) - k + 1)]
    return out


class BagOfWordsLogisticRegression:
    """Logistic regression on binary bag-of-words features (``tokenize_words``, lower-case).

    Args:
        ngrams: 1 for words only, 2 adds word bigrams, ...
        min_freq: keep features seen in at least this many training texts.
        l2_grid: L2 penalties tried (sum of squared weights times the penalty, added to the mean loss);
            the one with the best validation accuracy wins (the first on ties; the middle one when there
            is no validation data).

    Example::

        bow = BagOfWordsLogisticRegression().fit(train_texts, train_labels, val_texts, val_labels)
        predicted = bow.predict(test_texts)            # np.ndarray of class ids
    """

    def __init__(self, ngrams: int = 1, min_freq: int = 1, l2_grid: Sequence[float] = (1e-4, 1e-3, 1e-2)):
        if ngrams < 1 or min_freq < 1 or not l2_grid:
            raise RnnkitError(f"expected ngrams >= 1, min_freq >= 1 and l2 values, got {ngrams}, {min_freq}")
        self.ngrams, self.min_freq, self.l2_grid = ngrams, min_freq, tuple(l2_grid)
        self.features: dict[str, int] = {}
        self.weight: torch.Tensor | None = None
        self.bias: torch.Tensor | None = None
        self.l2: float | None = None

    def _matrix(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Binary features as ``(ids, offsets)`` for ``embedding_bag``: ``X @ W`` without a dense X."""
        ids: list[int] = []
        offsets: list[int] = []
        for text in texts:
            offsets.append(len(ids))
            ids += sorted(
                {self.features[g] for g in _ngrams(tokenize_words(text), self.ngrams) if g in self.features}
            )
        return torch.tensor(ids, dtype=torch.long), torch.tensor(offsets, dtype=torch.long)

    @staticmethod
    def _logits(x: tuple[torch.Tensor, torch.Tensor], w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.embedding_bag(x[0], w, x[1], mode="sum") + b  # (N, K)

    def fit(self, texts, labels, val_texts, val_labels, num_classes: int | None = None):
        """Fit on ``(texts, labels)`` (labels: class ids 0..K-1), choose the L2 penalty on the validation set."""
        doc_freq: Counter[str] = Counter()
        for text in texts:
            doc_freq.update(set(_ngrams(tokenize_words(text), self.ngrams)))
        kept = sorted(g for g, c in doc_freq.items() if c >= self.min_freq)
        self.features = {g: i for i, g in enumerate(kept)}
        x, xv = self._matrix(texts), self._matrix(val_texts)
        y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        yv = np.asarray(val_labels)
        k = int(num_classes or int(y.max()) + 1)
        grid = self.l2_grid if len(val_texts) else self.l2_grid[len(self.l2_grid) // 2 :][:1]
        best = None
        for l2 in grid:
            w, b = self._fit_one(x, y, len(self.features), k, l2)
            acc = float((self._logits(xv, w, b).argmax(1).numpy() == yv).mean()) if len(val_texts) else 0.0
            if best is None or acc > best[0]:
                best = (acc, l2, w, b)
        _, self.l2, self.weight, self.bias = best
        return self

    @staticmethod
    def _fit_one(
        x: tuple[torch.Tensor, torch.Tensor], y: torch.Tensor, num_features: int, k: int, l2: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        w = torch.zeros(num_features, k, requires_grad=True)
        b = torch.zeros(k, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=200, history_size=20, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = (
                torch.nn.functional.cross_entropy(BagOfWordsLogisticRegression._logits(x, w, b), y)
                + l2 * (w * w).sum()
            )
            loss.backward()
            return loss

        opt.step(closure)
        return w.detach(), b.detach()

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(N, K) class probabilities."""
        if self.weight is None:
            raise RnnkitError("the baseline is not fitted yet: call fit() first")
        return torch.softmax(self._logits(self._matrix(texts), self.weight, self.bias), dim=1).numpy()

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """(N,) predicted class ids."""
        return self.predict_proba(texts).argmax(1)


def naive_forecast(history: np.ndarray, horizon: int) -> np.ndarray:
    """The last value of ``history`` (N,) repeated ``horizon`` times."""
    h = np.asarray(history, dtype=np.float64)
    if len(h) < 1:
        raise RnnkitError("the naive forecast needs at least one past value")
    return np.full(horizon, h[-1])


def seasonal_naive_forecast(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """``f[h] = history[N - season + (h mod season)]``: the last full season repeated (h = 0..horizon-1)."""
    h = np.asarray(history, dtype=np.float64)
    if len(h) < season:
        raise RnnkitError(f"the seasonal naive forecast needs {season} past values, got {len(h)}")
    n = len(h)
    return np.array([h[n - season + (i % season)] for i in range(horizon)])


def unigram_bits_per_char(train_text: str, test_text: str) -> float:
    """Bits per character of a character-frequency model of ``train_text`` (add-one smoothed) on ``test_text``.

    Characters never seen in training share the one extra "unknown" slot.
    """
    if not test_text:
        raise RnnkitError("expected a non-empty held-out text")
    counts = Counter(train_text)
    total = len(train_text) + len(counts) + 1
    nats = 0.0
    for ch, n in Counter(test_text).items():
        nats -= n * math.log((counts.get(ch, 0) + 1) / total)
    return nats / len(test_text) / math.log(2)
