"""Training a speech run: data, model, the shared trainer, the report, the run directory."""

from __future__ import annotations

import time
from typing import Any

import torch

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
from rnnkit.apps.speech import report
from rnnkit.apps.speech.config import SpeechConfig
from rnnkit.apps.speech.data import APP, collate, load_utterances, normalise, spec_augment, split
from rnnkit.apps.speech.model import build_model, predict_proba

__all__ = ["train"]


def train(cfg: SpeechConfig, overwrite: bool = False, say=print) -> TrainResult:
    """Train and evaluate the classifier and the DTW baseline; write the run ``cfg.runs_dir/cfg.name``."""
    from rnnkit.config import validate_config
    from rnnkit.train import seed_everything

    validate_config(cfg)
    t_start = time.perf_counter()
    name = cfg.name or APP
    setup_torch(cfg.threads)
    with RunBuilder(cfg.runs_dir, name, overwrite) as run:
        utts = load_utterances(cfg)
        tr, va, te = split(cfg, utts)
        labels, classes = utts.labels, utts.classes
        feats = [normalise(s) for s in utts.features] if cfg.normalise else utts.features
        say(
            f"speech: {len(utts)} utterances, {len(classes)} classes, {utts.num_features} features per frame, "
            f"{cfg.split} split {len(tr)}/{len(va)}/{len(te)} (train/val/test)"
        )
        seed_everything(cfg.seed)
        model = build_model(cfg, utts.num_features, len(classes))
        untrained = predict_proba(model, [feats[i] for i in te]).argmax(1)

        def epoch_batches(epoch: int) -> list[dict[str, torch.Tensor]]:
            g = per_epoch_generator(cfg.seed, epoch)
            order = tr[torch.randperm(len(tr), generator=g).numpy()]
            out = []
            for s in range(0, len(order), cfg.batch_size):
                idx = order[s : s + cfg.batch_size]
                batch = collate([feats[i] for i in idx], labels[idx])
                batch["inputs"] = spec_augment(batch["inputs"], batch["lengths"], cfg, g)
                out.append(batch)
            return out

        val = [
            collate([feats[i] for i in va[s : s + 256]], labels[va[s : s + 256]])
            for s in range(0, len(va), 256)
        ]
        steps_per_epoch = -(-len(tr) // cfg.batch_size)
        trainer = build_trainer(model, cfg, run.path, grad_monitor_every=max(1, steps_per_epoch // 4))
        t_train = time.perf_counter()
        history = trainer.fit(
            EpochBatches(epoch_batches, steps_per_epoch),
            val or None,
            probe_batch=collate([feats[i] for i in tr[:32]], labels[tr[:32]]),
        )
        finish_training(trainer, run.path)
        train_seconds = time.perf_counter() - t_train

        te_y = labels[te]
        proba = predict_proba(model, [feats[i] for i in te])
        pred = proba.argmax(1)
        k = len(classes)
        scores = report.scores(te_y, pred, k)
        base_pred, base, base_info = None, {}, None
        if cfg.baseline:
            normed = feats if cfg.normalise else [normalise(s) for s in utts.features]
            base_pred, base_info = report.baseline(cfg, utts.features, normed, labels, tr, va, te)
            base = report.scores(te_y, base_pred, k)
        seconds = time.perf_counter() - t_start
        metrics: dict[str, Any] = {
            "app": APP,
            "data": cfg.data,
            "classes": classes,
            "split": {
                "kind": cfg.split,
                "train": len(tr),
                "val": len(va),
                "test": len(te),
                "seed": cfg.split_seed,
                "test_speaker": cfg.test_speaker,
            },
            "test": scores,
            "baseline": {**base_info, **base} if base_info else None,
            "untrained": report.scores(te_y, untrained, k),
            "f1_definition": "macro average of the per-class F1",
            "epochs_run": len(history),
            "best_epoch": report.best_epoch(history),
            **training_summary(model, trainer, train_seconds, seconds),
            "history": history,
        }
        save_run_files(run, model, cfg, APP, metrics)
        run.write_json(
            "labels.json", {"classes": classes, "num_features": utts.num_features, "normalise": cfg.normalise}
        )
        written = report.write_plots(run, cfg, history, te_y, pred, base_pred, classes)
        samples = report.samples(te, te_y, proba, classes)
        run.commit({"app": APP, "name": name, "data": cfg.data})
    final = run.final
    rows = report.result_rows(cfg, scores, base, seconds)
    return TrainResult(final, metrics, rows, samples, [final / p.name for p in written])
