"""Sentiment analysis (many-to-one): a bidirectional GRU/LSTM text classifier and a bag-of-words baseline.

Data: Pang & Lee's sentence polarity (``data="polarity"``, 4,000 movie-review sentences) or the user's
CSV/TSV/JSONL file (``text_column``, ``label_column``; any number of classes). A fixed seeded shuffle cuts
train / validation / test; the baseline (binary bag-of-words logistic regression, L2 penalty picked on the
validation part) is trained on the same train part and scored on the same test part.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit._errors import RnnkitError
from rnnkit.apps import plots
from rnnkit.apps._common import (
    EpochBatches,
    TimeBudget,
    build_trainer,
    finish_training,
    per_epoch_generator,
    save_run_files,
    setup_torch,
    split_indices,
    training_summary,
)
from rnnkit.apps.base import ResultRow, TrainResult, load_run_model, open_app_run
from rnnkit.apps.baselines import BagOfWordsLogisticRegression
from rnnkit.apps.metrics import accuracy, confusion_matrix, f1_score
from rnnkit.apps.rundir import RunBuilder, read_json
from rnnkit.config import SentimentConfig
from rnnkit.datasets import Vocabulary, load_polarity, read_text_classification

__all__ = ["SentimentPredictor", "load", "load_texts", "train"]

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
def predict_proba(model, ids: list[list[int]], batch_size: int = 256) -> np.ndarray:
    model.eval()
    out = [model.predict(**collate(ids[s : s + batch_size])).numpy() for s in range(0, len(ids), batch_size)]
    return np.concatenate(out, axis=0)


def train(cfg: SentimentConfig, overwrite: bool = False, say=print) -> TrainResult:
    """Train and evaluate the classifier and the baseline; write the run ``cfg.runs_dir/cfg.name``."""
    from rnnkit.train import seed_everything

    t_start = time.perf_counter()
    name = cfg.name or APP
    setup_torch(cfg.threads)
    with RunBuilder(cfg.runs_dir, name, overwrite) as run:
        texts, labels, classes = load_texts(cfg)
        tr, va, te = split(cfg, len(texts))
        tr_labels = sorted({labels[i] for i in tr})
        if len(tr_labels) < 2:
            raise RnnkitError(
                f"the training split has only one class ({classes[tr_labels[0]]!r}); need at least 2"
            )
        vocab = Vocabulary.build(
            [texts[i] for i in tr], level=cfg.level, min_freq=cfg.min_freq, max_size=cfg.max_vocab
        )
        ids = encode(vocab, texts, cfg.max_tokens)
        say(
            f"sentiment: {len(texts)} texts, {len(classes)} classes, split {len(tr)}/{len(va)}/{len(te)} "
            f"(train/val/test), vocabulary {len(vocab)} {cfg.level}s"
        )
        seed_everything(cfg.seed)
        model = build_model(cfg, len(vocab), len(classes))
        untrained = predict_proba(model, [ids[i] for i in te]).argmax(1)
        tr_ids, tr_y = [ids[i] for i in tr], [labels[i] for i in tr]

        def epoch_batches(epoch: int):
            order = torch.randperm(len(tr_ids), generator=per_epoch_generator(cfg.seed, epoch)).tolist()
            return batches(tr_ids, tr_y, cfg.batch_size, order)

        val = batches([ids[i] for i in va], [labels[i] for i in va], 256) if len(va) else None
        steps_per_epoch = -(-len(tr) // cfg.batch_size)
        budget = TimeBudget(cfg.time_budget)
        train_batches = EpochBatches(epoch_batches, steps_per_epoch, budget)
        trainer = build_trainer(
            model,
            cfg,
            run.path,
            monitor="val_loss",
            mode="min",
            grad_monitor_every=max(1, steps_per_epoch // 4),
        )
        budget.trainer = trainer
        t_train = time.perf_counter()
        history = trainer.fit(train_batches, val, probe_batch=collate(tr_ids[:32], tr_y[:32]))
        finish_training(trainer, run.path)
        train_seconds = time.perf_counter() - t_train

        te_ids, te_y = [ids[i] for i in te], np.array([labels[i] for i in te])
        proba = predict_proba(model, te_ids)
        pred = proba.argmax(1)
        k = len(classes)
        t_base = time.perf_counter()
        bow = BagOfWordsLogisticRegression(ngrams=cfg.baseline_ngrams)
        bow.fit([texts[i] for i in tr], tr_y, [texts[i] for i in va], [labels[i] for i in va], num_classes=k)
        base_pred = bow.predict([texts[i] for i in te])
        base_seconds = time.perf_counter() - t_base

        scores = {"accuracy": accuracy(te_y, pred), "f1": f1_score(te_y, pred, k)}
        base = {"accuracy": accuracy(te_y, base_pred), "f1": f1_score(te_y, base_pred, k)}
        untrained_scores = {"accuracy": accuracy(te_y, untrained), "f1": f1_score(te_y, untrained, k)}
        majority = int(np.bincount(tr_y, minlength=k).argmax())
        seconds = time.perf_counter() - t_start
        best_epoch = _best_epoch(history)
        metrics: dict[str, Any] = {
            "app": APP,
            "data": cfg.data,
            "classes": classes,
            "split": {"train": len(tr), "val": len(va), "test": len(te), "seed": cfg.split_seed},
            "vocabulary_size": len(vocab),
            "test": scores,
            "baseline": {
                "name": "bag-of-words logistic regression",
                "ngrams": cfg.baseline_ngrams,
                "features": len(bow.features),
                "l2": bow.l2,
                "seconds": round(base_seconds, 2),
                **base,
            },
            "majority_class": {"name": classes[majority], "accuracy": float((te_y == majority).mean())},
            "untrained": untrained_scores,
            "f1_definition": "F1 of the second class (positive) for 2 classes, macro average otherwise",
            "epochs_run": len(history),
            "best_epoch": best_epoch,
            **training_summary(model, budget, train_seconds, seconds),
            "history": history,
        }
        save_run_files(run, model, cfg, APP, metrics)
        vocab.to_json(run.file("vocab.json"))
        run.write_json("labels.json", {"classes": classes, "max_tokens": cfg.max_tokens})
        written = [
            plots.plot_curves(
                history,
                run.file("curves.png"),
                "epoch",
                f"sentiment ({_short(cfg.data)}): training curves",
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
                f"held-out test set ({len(te)} texts)",
            ),
        ]
        samples = []
        for j in range(min(5, len(te))):
            text = texts[te[j]]
            short = text if len(text) <= 90 else text[:87] + "..."
            samples.append(
                f"{classes[pred[j]]:>9} ({proba[j].max():.2f})  true {classes[te_y[j]]:<9} {short}"
            )
        run.commit({"app": APP, "name": name, "data": cfg.data})
    final = run.final
    rows = [
        ResultRow(
            f"sentiment ({_short(cfg.data)})",
            "accuracy",
            scores["accuracy"],
            "BoW logistic regression",
            base["accuracy"],
            ">= baseline",
            scores["accuracy"] >= base["accuracy"],
            seconds,
        ),
        ResultRow(
            f"sentiment ({_short(cfg.data)})",
            "F1",
            scores["f1"],
            "BoW logistic regression",
            base["f1"],
            ">= baseline",
            scores["f1"] >= base["f1"],
            seconds,
        ),
    ]
    return TrainResult(final, metrics, rows, samples, [final / p.name for p in written if p is not None])


def _short(data: str) -> str:
    return data if data in ("polarity",) else Path(data).name


def _best_epoch(history: list[dict[str, Any]]) -> int | None:
    """The epoch whose weights were kept: the lowest validation loss (the first on ties)."""
    vals = [(r["val_loss"], r["epoch"]) for r in history if r.get("val_loss") is not None]
    return min(vals)[1] if vals else None


class SentimentPredictor:
    """A trained sentiment run, loaded: ``predict(texts)`` and ``evaluate()``."""

    def __init__(self, path):
        from rnnkit.models import SequenceClassifier

        self.run, self.manifest, self.config = open_app_run(path, APP)
        self.model = load_run_model(self.run, SequenceClassifier)
        self.vocab = _load_vocab(self.run)
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
        self.max_tokens = int(info.get("max_tokens", self.config.max_tokens))

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        """For each text: ``{"text", "label", "probability", "probabilities": {class: p}}``."""
        proba = predict_proba(self.model, encode(self.vocab, texts, self.max_tokens))
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
        """Accuracy and F1 on the run's held-out test split, or on all rows of a labelled file."""
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
            texts, names = read_text_classification(
                data, text_column or self.config.text_column, label_column or self.config.label_column
            )
            unknown = sorted(set(names) - set(self.classes))
            if unknown:
                raise RnnkitError(
                    f"{Path(data).name}: labels {unknown[:5]} are not among the run's classes {self.classes}"
                )
            labels = [self.classes.index(y) for y in names]
            where = f"{Path(data).name} ({len(texts)} texts)"
        proba = predict_proba(self.model, encode(self.vocab, texts, self.max_tokens))
        pred = proba.argmax(1)
        k = len(self.classes)
        return {
            "data": where,
            "accuracy": accuracy(labels, pred),
            "f1": f1_score(labels, pred, k),
            "count": len(texts),
        }


def _load_vocab(run: Path) -> Vocabulary:
    try:
        return Vocabulary.from_json(run / "vocab.json")
    except RnnkitError as exc:
        raise RnnkitError(f"run {run.name}: damaged vocabulary: {exc}") from None


def load(path) -> SentimentPredictor:
    return SentimentPredictor(path)
