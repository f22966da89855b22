"""A saved sentiment run, loaded: predictions and scores on new or held-out texts."""

from __future__ import annotations

import threading
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import load_baseline_net, stored_share
from rnnkit.apps.base import load_run_model, open_app_run
from rnnkit.apps.metrics import accuracy, f1_score
from rnnkit.apps.rundir import member_dir, read_json
from rnnkit.apps.sentiment.data import APP, collate, encode, load_texts, split
from rnnkit.apps.sentiment.mixture import TFIDF_FILE, mix_proba
from rnnkit.apps.sentiment.model import SentimentNet, predict_proba
from rnnkit.apps.sentiment.subword import Subwords
from rnnkit.datasets import Vocabulary, read_text_classification

__all__ = ["SentimentPredictor", "load"]


class SentimentPredictor:
    """A trained sentiment run, loaded: ``predict(texts)`` and ``evaluate()``."""

    def __init__(self, path):
        from rnnkit.models import ClassifierEnsemble, SequenceClassifier
        from rnnkit.models.io import read_model_info

        self.run, self.manifest, self.config = open_app_run(path, APP)
        # runs of older versions hold a plain SequenceClassifier (words only, one pooling)
        try:
            saved = read_model_info(self.run).get("model")
        except RnnkitError:
            saved = None  # damaged: load_run_model below says how, naming the run
        self.model = load_run_model(
            self.run, SequenceClassifier if saved == "SequenceClassifier" else SentimentNet
        )
        self.vocab = _load_vocab(self.run)
        self._subwords = None  # the n-gram rows of the vocabulary, made on first use
        self._lock = threading.Lock()
        if len(self.vocab) != self.model.config.vocab_size:
            raise RnnkitError(f"run {self.run.name}: vocab.json does not match the model (damaged run?)")
        info = read_json(self.run / "labels.json", f"run {self.run.name}")
        if not isinstance(info, dict) or not isinstance(info.get("classes"), list):
            raise RnnkitError(f"run {self.run.name}: labels.json is damaged (no 'classes' list)")
        self.classes = [str(c) for c in info["classes"]]
        if len(self.classes) != self.model.config.num_classes:
            raise RnnkitError(
                f"run {self.run.name}: labels.json does not match the model's number of classes"
            )
        # runs of older versions cut every text to max_tokens (no "long_texts" key)
        self.max_tokens = int(info.get("max_tokens") or self.config.max_tokens or self.config.max_tokens_cap)
        self.long_texts = str(info.get("long_texts", "cut"))
        if self.long_texts not in ("chunks", "cut"):
            raise RnnkitError(f"run {self.run.name}: labels.json is damaged (long_texts {self.long_texts!r})")
        count = info.get("members", 1)  # runs of older versions: one network
        if not isinstance(count, int) or count < 1:
            raise RnnkitError(f"run {self.run.name}: labels.json is damaged (members {count!r})")
        # the ensemble's other networks (the first is self.model), each the same shape as the first
        self.members = [self.model] + [
            load_run_model(member_dir(self.run, k), SentimentNet) for k in range(1, count)
        ]
        if any(m.config != self.model.config for m in self.members):
            raise RnnkitError(f"run {self.run.name}: the ensemble's networks differ in shape (damaged run?)")
        # what predicts: the networks' mean probabilities, as one model (the one rnnkit export writes)
        self.ensemble = ClassifierEnsemble(self.members) if count > 1 else self.model
        try:  # runs without the TF-IDF mixture: none
            self.tfidf_share: float | None = stored_share(info.get("tfidf_share"))
        except ValueError as exc:
            raise RnnkitError(f"run {self.run.name}: labels.json is damaged (tfidf_share: {exc})") from None
        self._tfidf_sha256 = info.get("tfidf_sha256")
        self._tfidf = None  # the TF-IDF model of the mixture, read on first use

    @property
    def tfidf(self):
        """The run's TF-IDF model (:class:`rnnkit.baselines.TfidfLogisticRegression`) that the mixture uses,
        read on first use; None for a run without the mixture (``--no-tfidf-mix``, or older runs)."""
        if self.tfidf_share is None:
            return None
        with self._lock:
            if self._tfidf is None:
                from rnnkit.baselines import TfidfLogisticRegression

                self._tfidf = TfidfLogisticRegression.load(self.run / TFIDF_FILE, self._tfidf_sha256)
                if self._tfidf.num_classes != len(self.classes):
                    raise RnnkitError(f"run {self.run.name}: {TFIDF_FILE} does not match the run's classes")
            return self._tfidf

    def proba(self, texts: list[str], mixture: bool = True) -> np.ndarray:
        """Class probabilities ``(N, K)``: the networks' mixed with the TF-IDF model's at the run's share
        (:mod:`rnnkit.apps.sentiment.mixture`) where the run has the mixture, unless ``mixture=False``."""
        net = self._proba(texts)
        if not mixture or self.tfidf is None:
            return net
        return mix_proba(net, self.tfidf.predict_proba(texts), self.tfidf_share)

    def _proba(self, texts: list[str]):
        c = self.model.config
        if not getattr(c, "subword_buckets", 0):
            ids = encode(self.vocab, texts)
            return self._predict(ids, collate)
        with self._lock:  # one table of extra words at a time (a server calls from several threads)
            if self._subwords is None:
                self._subwords = Subwords(self.vocab, c.subword_buckets, c.ngram_min, c.ngram_max)
            sub = self._subwords
            sub.forget_extra()  # the words outside the vocabulary seen by a server do not pile up
            return self._predict(sub.encode(texts), sub.collate)

    def _predict(self, ids: list[list[int]], collate_fn):
        """The ensemble's class probabilities (one network: its own)."""
        return predict_proba(
            self.ensemble, ids, limit=self.max_tokens, long_texts=self.long_texts, collate_fn=collate_fn
        )

    def predict(self, texts: list[str], mixture: bool = True) -> list[dict[str, Any]]:
        """For each text: ``{"text", "label", "probability", "probabilities": {class: p}}``, from the
        mixture with TF-IDF where the run has one (``mixture=False``: the networks alone)."""
        proba = self.proba(texts, mixture)
        out = []
        for text, p in zip(texts, proba):
            j = int(p.argmax())
            out.append(
                {
                    "text": text,
                    "label": self.classes[j],
                    "probability": round(float(p[j]), 4),
                    "probabilities": {c: round(float(v), 4) for c, v in zip(self.classes, p)},
                }
            )
        return out

    def evaluate(
        self, data: str | None = None, text_column: str | None = None, label_column: str | None = None
    ):
        """Accuracy and F1 on the run's held-out test split, or on all rows of a labelled file: the networks'
        and, where the run has them, the mixture's with TF-IDF (``mixture_accuracy``, ``mixture_f1``,
        ``tfidf_share``), the TF-IDF model's alone (``tfidf_accuracy``, ``tfidf_f1``) and the feed-forward
        counterpart's (``feedforward_accuracy``, ``feedforward_f1``)."""
        if data is None:
            texts, labels, classes = load_texts(self.config)
            if classes != self.classes:
                raise RnnkitError(
                    f"the data set {self.config.data!r} changed since the run: its classes differ"
                )
            _, _, te = split(self.config, len(texts))
            texts, labels = [texts[i] for i in te], [labels[i] for i in te]
            where = f"held-out test split of {self.config.data} ({len(te)} texts)"
        else:
            texts, names = read_text_classification(  # a file of one class is a fair test (accuracy, F1)
                data, text_column or self.config.text_column, label_column or self.config.label_column,
                min_classes=1,
            )  # fmt: skip
            unknown = sorted(set(names) - set(self.classes))
            if unknown:
                raise RnnkitError(
                    f"{Path(data).name}: labels {unknown[:5]} are not among the run's classes {self.classes}"
                )
            labels = [self.classes.index(y) for y in names]
            where = f"{Path(data).name} ({len(texts)} texts)"
        net = self._proba(texts)
        pred = net.argmax(1)
        k = len(self.classes)
        out = {
            "data": where,
            "accuracy": accuracy(labels, pred),
            "f1": f1_score(labels, pred, k),
            "count": len(texts),
        }
        if self.tfidf is not None:
            tfidf = self.tfidf.predict_proba(texts)
            mixed = mix_proba(net, tfidf, self.tfidf_share).argmax(1)
            out.update(
                mixture_accuracy=accuracy(labels, mixed),
                mixture_f1=f1_score(labels, mixed, k),
                tfidf_share=self.tfidf_share,
                tfidf_accuracy=accuracy(labels, tfidf.argmax(1)),
                tfidf_f1=f1_score(labels, tfidf.argmax(1), k),
            )
        if self.feedforward is not None:
            ff = self.feedforward.predict(texts)
            out.update(feedforward_accuracy=accuracy(labels, ff), feedforward_f1=f1_score(labels, ff, k))
        return out

    @cached_property
    def feedforward(self):
        """The run's feed-forward counterpart (:class:`rnnkit.baselines.MLPTextClassifier` on pooled word
        embeddings), or None for a run saved before 4 Dec 2026."""
        from rnnkit.baselines import MLPTextClassifier

        ff = load_baseline_net(self.run, MLPTextClassifier, "mlp")
        if ff is not None and ff.num_classes != len(self.classes):
            raise RnnkitError(
                f"run {self.run.name}: its feed-forward counterpart does not match the run's classes"
            )
        return ff


def _load_vocab(run: Path) -> Vocabulary:
    try:
        return Vocabulary.from_json(run / "vocab.json")
    except RnnkitError as exc:
        raise RnnkitError(f"run {run.name}: damaged vocabulary: {exc}") from None


def load(path) -> SentimentPredictor:
    """The saved run at ``path``, ready to ``predict`` and ``evaluate``."""
    return SentimentPredictor(path)
