"""The sentiment run's report: held-out scores next to the bag-of-words baseline, plots and the results table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.apps import plots
from rnnkit.apps.base import ResultRow
from rnnkit.apps.baselines import BagOfWordsLogisticRegression
from rnnkit.apps.metrics import accuracy, confusion_matrix, f1_score
from rnnkit.apps.sentiment.config import SentimentConfig

__all__ = ["baseline", "best_epoch", "result_rows", "samples", "scores", "write_plots"]


def scores(labels, pred, num_classes: int) -> dict[str, float]:
    """Accuracy and F1 (of the positive class for 2 classes, macro otherwise)."""
    return {"accuracy": accuracy(labels, pred), "f1": f1_score(labels, pred, num_classes)}


def baseline(cfg: SentimentConfig, texts, labels, tr, va, te, num_classes: int):
    """The bag-of-words logistic regression fitted on the same train part: ``(model, test predictions, s)``."""
    t0 = time.perf_counter()
    bow = BagOfWordsLogisticRegression(ngrams=cfg.baseline_ngrams)
    bow.fit(
        [texts[i] for i in tr],
        [labels[i] for i in tr],
        [texts[i] for i in va],
        [labels[i] for i in va],
        num_classes=num_classes,
    )
    pred = bow.predict([texts[i] for i in te])
    return bow, pred, time.perf_counter() - t0


def short_name(data: str) -> str:
    return data if data in ("polarity",) else Path(data).name


def best_epoch(history: list[dict[str, Any]]) -> int | None:
    """The epoch whose weights were kept: the lowest validation loss (the first on ties)."""
    vals = [(r["val_loss"], r["epoch"]) for r in history if r.get("val_loss") is not None]
    return min(vals)[1] if vals else None


def write_plots(run, cfg: SentimentConfig, history, te_y, pred, base_pred, classes) -> list[Path]:
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
                "BoW baseline": confusion_matrix(te_y, base_pred, k),
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


def result_rows(cfg: SentimentConfig, model_scores, base_scores, seconds: float) -> list[ResultRow]:
    task = f"sentiment ({short_name(cfg.data)})"
    return [
        ResultRow(
            task,
            label,
            model_scores[key],
            "BoW logistic regression",
            base_scores[key],
            ">= baseline",
            model_scores[key] >= base_scores[key],
            seconds,
        )
        for key, label in (("accuracy", "accuracy"), ("f1", "F1"))
    ]
