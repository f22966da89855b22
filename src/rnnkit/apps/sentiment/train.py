"""Training a sentiment run: data, model, the shared trainer, the report, the run directory."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import (
    EpochBatches,
    build_trainer,
    finish_training,
    per_epoch_generator,
    save_run_files,
    setup_torch,
    training_summary,
)
from rnnkit.apps.base import TrainResult
from rnnkit.apps.rundir import RunBuilder
from rnnkit.apps.sentiment import report
from rnnkit.apps.sentiment.config import SentimentConfig
from rnnkit.apps.sentiment.data import APP, batches, collate, encode, load_texts, split
from rnnkit.apps.sentiment.model import build_model, predict_proba
from rnnkit.datasets import Vocabulary

__all__ = ["train"]


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
        trainer = build_trainer(model, cfg, run.path, grad_monitor_every=max(1, steps_per_epoch // 4))
        t_train = time.perf_counter()
        history = trainer.fit(
            EpochBatches(epoch_batches, steps_per_epoch), val, probe_batch=collate(tr_ids[:32], tr_y[:32])
        )
        finish_training(trainer, run.path)
        train_seconds = time.perf_counter() - t_train

        te_ids, te_y = [ids[i] for i in te], np.array([labels[i] for i in te])
        proba = predict_proba(model, te_ids)
        pred = proba.argmax(1)
        k = len(classes)
        bow, base_pred, base_seconds = report.baseline(cfg, texts, labels, tr, va, te, k)
        scores = report.scores(te_y, pred, k)
        base = report.scores(te_y, base_pred, k)
        majority = int(np.bincount(tr_y, minlength=k).argmax())
        seconds = time.perf_counter() - t_start
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
            "untrained": report.scores(te_y, untrained, k),
            "f1_definition": "F1 of the second class (positive) for 2 classes, macro average otherwise",
            "epochs_run": len(history),
            "best_epoch": report.best_epoch(history),
            **training_summary(model, trainer, train_seconds, seconds),
            "history": history,
        }
        save_run_files(run, model, cfg, APP, metrics)
        vocab.to_json(run.file("vocab.json"))
        run.write_json("labels.json", {"classes": classes, "max_tokens": cfg.max_tokens})
        written = report.write_plots(run, cfg, history, te_y, pred, base_pred, classes)
        samples = report.samples(texts, te, te_y, proba, classes)
        run.commit({"app": APP, "name": name, "data": cfg.data})
    final = run.final
    rows = report.result_rows(cfg, scores, base, seconds)
    return TrainResult(final, metrics, rows, samples, [final / p.name for p in written])
