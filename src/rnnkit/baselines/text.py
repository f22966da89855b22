"""TF-IDF word and character n-grams with logistic regression (scikit-learn): the text-classification baseline.

Features are the concatenation of two TF-IDF blocks (sublinear term frequency, L2-normalised rows): word
1-2-grams and character 2-5-grams taken inside word boundaries (``analyzer="char_wb"``). A multinomial
logistic regression with an L2 penalty is fitted on the training texts for every ``C`` in a grid; the ``C``
with the best validation accuracy is kept (ties go to the smaller ``C``, the stronger penalty).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np

from rnnkit._errors import RnnkitError

__all__ = ["TfidfLogisticRegression"]

log = logging.getLogger(__name__)


class TfidfLogisticRegression:
    """Logistic regression on TF-IDF word 1-2-gram and character 2-5-gram features; ``C`` chosen on validation.

    .. math::

        p(y = k \\mid x) = \\operatorname{softmax}(W \\phi(x) + b)_k, \\qquad
        \\min_{W, b}\\; C \\sum_i -\\log p(y_i \\mid x_i) + \\tfrac12 \\lVert W \\rVert^2

    with ``phi(x)`` the two TF-IDF blocks side by side.

    Args:
        c_grid: inverse penalties tried; the best validation accuracy wins.
        word_ngrams, char_ngrams: n-gram ranges of the two blocks (``char_ngrams=None`` drops the character block).
        min_df: drop n-grams seen in fewer training texts.
        max_features: keep at most this many n-grams per block (the most frequent).
        lowercase: lower-case texts first.

    Shape:
        ``predict(texts)`` -> ``(N,)`` class ids; ``predict_proba(texts)`` -> ``(N, num_classes)``.

    Example::

        clf = TfidfLogisticRegression().fit(train_texts, train_labels, val_texts, val_labels)
        clf.predict(test_texts), clf.score(test_texts, test_labels), clf.C, clf.val_scores
    """

    def __init__(
        self,
        c_grid: Sequence[float] = (0.25, 1.0, 4.0, 16.0),
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] | None = (2, 5),
        min_df: int = 2,
        max_features: int | None = 500_000,
        lowercase: bool = True,
    ):
        if not c_grid or min(c_grid) <= 0:
            raise RnnkitError(f"c_grid must hold positive numbers, got {tuple(c_grid)}")
        self.c_grid = tuple(float(c) for c in c_grid)
        self.word_ngrams, self.char_ngrams = tuple(word_ngrams), char_ngrams and tuple(char_ngrams)
        self.min_df, self.max_features, self.lowercase = min_df, max_features, lowercase
        self.C: float | None = None
        self.val_scores: dict[float, float] = {}
        self.num_classes = 0
        self._features = None
        self._model = None

    def _vectorizer(self, min_df: int):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import FeatureUnion

        common = dict(
            sublinear_tf=True, min_df=min_df, max_features=self.max_features, lowercase=self.lowercase
        )
        blocks = [("word", TfidfVectorizer(analyzer="word", ngram_range=self.word_ngrams, **common))]
        if self.char_ngrams:
            blocks.append(
                ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=self.char_ngrams, **common))
            )
        return FeatureUnion(blocks)

    @staticmethod
    def _labels(labels, n: int, what: str) -> np.ndarray:
        y = np.asarray(labels)
        if n == 0 and y.size == 0:
            return np.zeros(0, dtype=np.int64)
        if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) or (n and y.min() < 0):
            raise RnnkitError(
                f"{what} must be {n} class ids 0..K-1 (one per text), got shape {y.shape}, dtype {y.dtype}"
            )
        return y.astype(np.int64)

    def fit(self, texts, labels, val_texts=(), val_labels=(), num_classes: int | None = None):
        """Fit on ``(texts, labels)`` and choose ``C`` by accuracy on ``(val_texts, val_labels)``.

        Without validation texts the middle of ``c_grid`` is used. ``num_classes`` defaults to
        ``max(label) + 1`` over both parts.
        """
        from sklearn.linear_model import LogisticRegression

        texts, val_texts = list(texts), list(val_texts)
        y = self._labels(labels, len(texts), "labels")
        yv = self._labels(val_labels, len(val_texts), "val_labels")
        if len(texts) < 2 or len(np.unique(y)) < 2:
            raise RnnkitError(
                f"need at least 2 training texts of 2 classes, got {len(texts)} of {len(np.unique(y))}"
            )
        self.num_classes = int(num_classes or max(y.max(), yv.max() if len(yv) else 0) + 1)
        min_df = self.min_df if len(texts) >= 10 * self.min_df else 1
        self._features = self._vectorizer(min_df)
        try:
            x = self._features.fit_transform(texts)
        except ValueError as err:  # e.g. every text empty
            raise RnnkitError(f"no n-gram features in the training texts: {err}") from None
        xv = self._features.transform(val_texts) if val_texts else None
        grid = self.c_grid if val_texts else (self.c_grid[len(self.c_grid) // 2],)
        best = None
        self.val_scores = {}
        for c in grid:
            model = LogisticRegression(C=c, max_iter=2000)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence warnings at large C: the score still decides
                model.fit(x, y)
            if xv is not None:
                self.val_scores[c] = float(np.mean(model.predict(xv) == yv))
                log.info("tfidf-lr C=%g: validation accuracy %.4f", c, self.val_scores[c])
            if best is None or (xv is not None and self.val_scores[c] > self.val_scores[best[0]]):
                best = (c, model)
        self.C, self._model = best
        return self

    def _check(self):
        if self._model is None:
            raise RnnkitError("the model is not fitted: call fit(texts, labels, val_texts, val_labels) first")

    def predict_proba(self, texts) -> np.ndarray:
        """Class probabilities, shape ``(N, num_classes)`` (0 for classes absent from training)."""
        self._check()
        p = self._model.predict_proba(self._features.transform(list(texts)))
        out = np.zeros((p.shape[0], self.num_classes))
        out[:, self._model.classes_] = p
        return out

    def predict(self, texts) -> np.ndarray:
        """The most probable class id of each text, shape ``(N,)``."""
        return self.predict_proba(texts).argmax(axis=1)

    def score(self, texts, labels) -> float:
        """Accuracy on ``(texts, labels)``."""
        texts = list(texts)
        y = self._labels(labels, len(texts), "labels")
        return float(np.mean(self.predict(texts) == y))
