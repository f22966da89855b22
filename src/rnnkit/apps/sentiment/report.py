"""The sentiment run's report: held-out scores next to the bag-of-words baseline, plots and the results table."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.apps import plots
from rnnkit.apps.base import ResultRow, mix_task
from rnnkit.apps.baselines import BagOfWordsLogisticRegression
from rnnkit.apps.metrics import accuracy, confusion_matrix, f1_score
from rnnkit.apps.sentiment.config import SentimentConfig

__all__ = [
    "BASELINE_NAMES",
    "baselines",
    "strongest",
    "best_epoch",
    "result_rows",
    "samples",
    "scores",
    "write_plots",
]


def scores(labels, pred, num_classes: int) -> dict[str, float]:
    """Accuracy and F1 (of the positive class for 2 classes, macro otherwise)."""
    return {"accuracy": accuracy(labels, pred), "f1": f1_score(labels, pred, num_classes)}


BASELINE_NAMES = {
    "tfidf": "TF-IDF word+char n-gram logistic regression",
    "bow": "bag-of-words logistic regression",
    "mlp": "feed-forward MLP on pooled embeddings",
}
"""The baselines of every report, by key: what a practitioner would use, and the model without recurrence."""


def _make_baseline(key: str, cfg: SentimentConfig):
    from rnnkit.baselines import MLPTextClassifier, TfidfLogisticRegression

    if key == "tfidf":
        return TfidfLogisticRegression()
    if key == "bow":
        return BagOfWordsLogisticRegression(ngrams=cfg.baseline_ngrams)
    # the same word tokens as the recurrent model, read in full, pooled instead of read in order
    return MLPTextClassifier(embed=cfg.embedding_dim, hidden=cfg.hidden_size, seed=cfg.seed)


def baselines(cfg: SentimentConfig, texts, labels, tr, va, te, num_classes: int) -> dict[str, dict[str, Any]]:
    """Every baseline fitted on the same train part (settings chosen on the same validation part).

    Returns ``{key: {"model", "proba" (test, (N, K)), "pred" (test, (N,)), "seconds"}}`` for the keys of ``BASELINE_NAMES``.
    """
    part = lambda idx: ([texts[i] for i in idx], [labels[i] for i in idx])  # noqa: E731
    (xt, yt), (xv, yv), (xe, _) = part(tr), part(va), part(te)
    out = {}
    for key in BASELINE_NAMES:
        t0 = time.perf_counter()
        model = _make_baseline(key, cfg)
        model.fit(xt, yt, xv, yv, num_classes=num_classes)
        proba = np.asarray(model.predict_proba(xe))
        out[key] = {
            "model": model,
            "proba": proba,
            "pred": proba.argmax(1),
            "seconds": time.perf_counter() - t0,
        }
    return out


def strongest(base_scores: dict[str, dict[str, float]], metric: str = "accuracy") -> str:
    """The key of the baseline with the best test ``metric`` (the first of ``BASELINE_NAMES`` on ties)."""
    return max(BASELINE_NAMES, key=lambda k: base_scores[k][metric])


def short_name(data: str) -> str:
    return data if data in ("polarity",) else Path(data).name


def best_epoch(history: list[dict[str, Any]]) -> int | None:
    """The epoch whose weights were kept: the best validation accuracy (the first on ties)."""
    vals = [
        (-r["val_accuracy"], i, r["epoch"])
        for i, r in enumerate(history)
        if r.get("val_accuracy") is not None
    ]
    return min(vals)[2] if vals else None


def write_plots(run, cfg: SentimentConfig, history, te_y, pred, base_pred, classes, base_name) -> list[Path]:
    k = len(classes)
    written = [
        plots.plot_curves(
            history,
            run.file("curves.png"),
            "epoch",
            f"sentiment ({short_name(cfg.data)}): training curves",
            left=["train_loss", "val_loss"],
            right=["train_accuracy", "val_accuracy"],
            right_label="accuracy",
        ),
        plots.plot_confusion(
            {
                "rnnkit": confusion_matrix(te_y, pred, k),
                base_name: confusion_matrix(te_y, base_pred, k),
            },
            classes,
            run.file("confusion.png"),
            f"held-out test set ({len(te_y)} texts)",
        ),
    ]
    return [p for p in written if p is not None]


def samples(texts, te, te_y, proba: np.ndarray, classes) -> list[str]:
    """A few held-out texts with the predicted and the true class, for people."""
    pred = proba.argmax(1)
    out = []
    for j in range(min(5, len(te))):
        text = texts[te[j]]
        short = text if len(text) <= 90 else text[:87] + "..."
        out.append(f"{classes[pred[j]]:>9} ({proba[j].max():.2f})  true {classes[te_y[j]]:<9} {short}")
    return out


def result_rows(
    cfg: SentimentConfig, model_scores, base_scores, seconds: float, mixture_scores=None, network_share=None
) -> list[ResultRow]:
    """Accuracy and F1 next to the strongest baseline of each (``met``: at least as good); with
    ``mixture_scores`` (the networks mixed with TF-IDF, the networks' share ``network_share``) the same two rows
    for the mixture."""
    task = f"sentiment ({short_name(cfg.data)})"
    rows = []
    mix = mix_task(task, "TF-IDF", network_share)
    pairs = [(task, model_scores)] + ([(mix, mixture_scores)] if mixture_scores else [])
    for (name, got), (key, label) in itertools.product(pairs, (("accuracy", "accuracy"), ("f1", "F1"))):
        best = strongest(base_scores, key)
        rows.append(
            ResultRow(
                name,
                label,
                got[key],
                BASELINE_NAMES[best],
                base_scores[best][key],
                ">= strongest baseline",
                got[key] >= base_scores[best][key],
                seconds,
                {BASELINE_NAMES[b]: base_scores[b][key] for b in BASELINE_NAMES},
            )
        )
    return rows
