"""TF-IDF word and character n-grams with logistic regression (scikit-learn): the text-classification baseline.

Features are the concatenation of two TF-IDF blocks (sublinear term frequency, L2-normalised rows): word
1-2-grams and character 2-5-grams taken inside word boundaries (``analyzer="char_wb"``). A multinomial
logistic regression with an L2 penalty is fitted on the training texts for every ``C`` in a grid; the ``C``
with the best validation accuracy is kept (ties go to the smaller ``C``, the stronger penalty).

A fitted model is saved as safetensors (:meth:`TfidfLogisticRegression.save`: the n-gram lists, their
inverse document frequencies and the regression's weights; no pickle) and read back exactly.
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
        self._blocks: list = []  # the fitted TfidfVectorizer of each block (word, then char)
        self._model = None  # scikit-learn's fitted regression (None for a model read from a file)
        # the regression's weights: coef (1 or K, F), intercept (1 or K,), class ids
        self._coef = self._intercept = self._classes = None

    def _block_specs(self) -> list[tuple[str, tuple[int, int]]]:
        specs = [("word", self.word_ngrams)]
        if self.char_ngrams:
            specs.append(("char_wb", self.char_ngrams))
        return specs

    def _vectorizers(self, min_df: int, vocabularies=None) -> list:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return [
            TfidfVectorizer(
                analyzer=analyzer,
                ngram_range=ngrams,
                sublinear_tf=True,
                min_df=min_df,
                max_features=self.max_features,
                lowercase=self.lowercase,
                vocabulary=None if vocabularies is None else vocabularies[j],
            )
            for j, (analyzer, ngrams) in enumerate(self._block_specs())
        ]

    def features(self, texts):
        """The TF-IDF rows of ``texts``: a sparse ``(N, F)`` matrix, the blocks side by side."""
        self._check()
        return self._transform(texts)

    def _transform(self, texts):
        import scipy.sparse as sp

        texts = list(texts)
        return sp.hstack([b.transform(texts) for b in self._blocks], format="csr")

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
        import scipy.sparse as sp

        self._blocks = self._vectorizers(min_df)
        try:
            x = sp.hstack([b.fit_transform(texts) for b in self._blocks], format="csr")
        except ValueError as err:  # e.g. every text empty
            raise RnnkitError(f"no n-gram features in the training texts: {err}") from None
        xv = self._transform(val_texts) if val_texts else None
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
        self._coef, self._intercept = self._model.coef_, self._model.intercept_
        self._classes = self._model.classes_
        return self

    def _check(self):
        if not self._blocks or self._coef is None:
            raise RnnkitError("the model is not fitted: call fit(texts, labels, val_texts, val_labels) first")

    def predict_proba(self, texts) -> np.ndarray:
        """Class probabilities, shape ``(N, num_classes)`` (0 for classes absent from training).

        Computed from the weights (a sigmoid for two classes, a softmax otherwise: scikit-learn's
        ``predict_proba``), so a model read from a file predicts as the fitted one did.
        """
        z = np.asarray(self.features(texts) @ self._coef.T) + self._intercept  # (N, 1 or K)
        if self._coef.shape[0] == 1:
            p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
            p = np.stack([1.0 - p1, p1], axis=1)
        else:
            z = z - z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
        out = np.zeros((p.shape[0], self.num_classes))
        out[:, self._classes] = p
        return out

    def predict(self, texts) -> np.ndarray:
        """The most probable class id of each text, shape ``(N,)``."""
        return self.predict_proba(texts).argmax(axis=1)

    def score(self, texts, labels) -> float:
        """Accuracy on ``(texts, labels)``."""
        texts = list(texts)
        y = self._labels(labels, len(texts), "labels")
        return float(np.mean(self.predict(texts) == y))

    # ----------------------------------------------------------------- saving
    def save(self, path) -> str:
        """Write the fitted model to ``path`` (safetensors: each block's n-grams as UTF-8 bytes with their
        offsets, its inverse document frequencies, the regression's weights; settings in the metadata).
        Returns the file's sha256."""
        import json

        import torch

        from rnnkit.files import write_safetensors

        self._check()
        tensors = {
            "coef": torch.from_numpy(np.ascontiguousarray(self._coef, dtype=np.float64)),
            "intercept": torch.from_numpy(np.ascontiguousarray(self._intercept, dtype=np.float64)),
            "classes": torch.from_numpy(np.asarray(self._classes, dtype=np.int64)),
        }
        for j, block in enumerate(self._blocks):
            terms = sorted(block.vocabulary_, key=block.vocabulary_.get)
            encoded = [t.encode("utf-8") for t in terms]
            offsets = np.cumsum([0] + [len(e) for e in encoded], dtype=np.int64)
            tensors[f"terms{j}"] = torch.from_numpy(
                np.frombuffer(b"".join(encoded) or b"\0", np.uint8).copy()
            )
            tensors[f"offsets{j}"] = torch.from_numpy(offsets)
            tensors[f"idf{j}"] = torch.from_numpy(np.asarray(block.idf_, dtype=np.float64))
        meta = {
            "model": "TfidfLogisticRegression",
            "word_ngrams": json.dumps(list(self.word_ngrams)),
            "char_ngrams": json.dumps(list(self.char_ngrams) if self.char_ngrams else None),
            "lowercase": json.dumps(self.lowercase),
            "num_classes": str(self.num_classes),
            "C": repr(self.C),
        }
        return write_safetensors(path, tensors, meta)

    @classmethod
    def load(cls, path, sha256: str | None = None) -> TfidfLogisticRegression:
        """The model written by :meth:`save`; a damaged file is one :class:`~rnnkit.RnnkitError`."""
        import json

        from rnnkit.files import read_safetensors

        tensors, meta = read_safetensors(path, sha256)
        try:
            if meta.get("model") != "TfidfLogisticRegression":
                raise ValueError(f"not a TF-IDF model ({meta.get('model')!r})")
            char = json.loads(meta["char_ngrams"])
            clf = cls(
                c_grid=(float(meta["C"]),),
                word_ngrams=tuple(json.loads(meta["word_ngrams"])),
                char_ngrams=tuple(char) if char else None,
                lowercase=bool(json.loads(meta["lowercase"])),
            )
            clf.C, clf.num_classes = float(meta["C"]), int(meta["num_classes"])
            clf._coef = tensors["coef"].numpy()
            clf._intercept = tensors["intercept"].numpy()
            clf._classes = tensors["classes"].numpy()
            vocabularies, idfs = [], []
            for j in range(len(clf._block_specs())):
                raw, offsets = tensors[f"terms{j}"].numpy().tobytes(), tensors[f"offsets{j}"].numpy()
                if (
                    len(offsets) < 2
                    or offsets[0] != 0
                    or np.any(np.diff(offsets) < 0)
                    or offsets[-1] > len(raw)
                ):
                    raise ValueError(f"block {j}: bad n-gram offsets")
                vocabularies.append(
                    [raw[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
                )
                idfs.append(tensors[f"idf{j}"].numpy())
            features = sum(len(v) for v in vocabularies)
            k = clf._coef.shape[0]
            if (
                clf._coef.shape != (k, features)
                or clf._intercept.shape != (k,)
                or not ((k == 1 and len(clf._classes) == 2) or (k > 2 and len(clf._classes) == k))
            ):
                raise ValueError(f"weights of shape {tuple(clf._coef.shape)} do not fit {features} n-grams")
            if clf._classes.min() < 0 or clf._classes.max() >= clf.num_classes:
                raise ValueError("class ids outside 0..num_classes-1")
            clf._blocks = clf._vectorizers(1, vocabularies)
            for block, idf, terms in zip(clf._blocks, idfs, vocabularies):
                if idf.shape != (len(terms),):
                    raise ValueError("inverse document frequencies do not fit the n-grams")
                block.idf_ = idf
        except (KeyError, ValueError, UnicodeDecodeError, TypeError, json.JSONDecodeError) as exc:
            raise RnnkitError(f"{path}: damaged TF-IDF model file: {exc}") from None
        return clf
