"""Training a sentiment run: data, model, the shared trainer, the report, the run directory."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import (
    EpochBatches,
    build_trainer,
    fit_member,
    member_finished,
    per_epoch_generator,
    save_baseline_net,
    save_members,
    save_run_files,
    setup_torch,
    training_summary,
)
from rnnkit.apps.base import TrainResult
from rnnkit.apps.rundir import RunBuilder, member_dir
from rnnkit.apps.sentiment import report
from rnnkit.apps.sentiment.config import SentimentConfig
from rnnkit.apps.sentiment.data import APP, batches, chunk, collate, encode, load_texts, split, token_limit
from rnnkit.apps.sentiment.mixture import TFIDF_FILE, choose_share, mix_proba
from rnnkit.apps.sentiment.model import build_model, predict_proba, pretrain_lm, uses_subwords
from rnnkit.apps.sentiment.subword import Subwords
from rnnkit.datasets import Vocabulary

__all__ = ["train"]


class _StopOnceLearnt:
    """Early stopping that cannot stop before the model has learnt something.

    Asked after every step by the trainer (``stop_when``); it looks at the validation rows only. It stops
    once (a) at least ``min_epochs`` epochs are done, (b) some validation accuracy has beaten the majority
    class, and (c) the best validation accuracy since that first win is ``patience`` validations old.
    Counting patience only after (b) keeps a slow start (a plateau at the majority class) from ending the run.
    """

    def __init__(self, patience: int, min_epochs: int, majority: float):
        self.patience, self.min_epochs, self.majority = patience, min_epochs, majority
        self.seen = 0

    def __call__(self, trainer) -> str | bool:
        history = trainer.state.history
        if not self.patience or len(history) == self.seen:
            return False
        self.seen = len(history)
        if trainer.state.epoch < self.min_epochs:
            return False
        accs = [r.get("val_accuracy", float("nan")) for r in history]
        first = next((i for i, a in enumerate(accs) if a > self.majority), None)
        if first is None:
            return False
        after = accs[first:]
        best = after.index(max(after))
        return "early_stopping" if len(after) - 1 - best >= self.patience else False


def lr_schedule(cfg: SentimentConfig, steps_per_epoch: int) -> dict[str, Any]:
    """The trainer settings of ``cfg.lr_schedule`` (nothing when constant or when a scheduler is named).

    ``onecycle``: torch's OneCycleLR over ``epochs * steps_per_epoch`` updates (a short warm-up to ``lr``,
    then cosine annealing to ``lr / 1e4``); ``cosine``: CosineAnnealingLR from ``lr`` to 0 over the same.
    A time budget may end the run before the schedule does.
    """
    if cfg.lr_schedule == "constant" or cfg.scheduler:
        return {}
    total = max(1, cfg.epochs * steps_per_epoch)
    if cfg.lr_schedule == "onecycle":
        opts = {"max_lr": cfg.lr, "total_steps": total + 1, "pct_start": 0.1}
        return {"scheduler": "onecyclelr", "scheduler_options": opts, "scheduler_interval": "step"}
    return {
        "scheduler": "cosineannealinglr",
        "scheduler_options": {"T_max": total},
        "scheduler_interval": "step",
    }


def fused_adam(cfg: SentimentConfig) -> dict[str, Any]:
    """``cfg.optimizer_options``, plus ``fused=True`` for Adam/AdamW on the CPU when the user set neither
    ``fused`` nor ``foreach``: one kernel over all parameters, about 5x faster an update than the default
    with the 2 M-parameter n-gram table (the same algorithm; rounding may differ)."""
    opts = dict(cfg.optimizer_options)
    if (
        cfg.optimizer.lower() in ("adam", "adamw")
        and cfg.device == "cpu"
        and not {"fused", "foreach"} & set(opts)
    ):
        opts["fused"] = True
    return opts


def train(cfg: SentimentConfig, overwrite: bool = False, say=print) -> TrainResult:
    """Train and evaluate the classifier and the baselines; write the run ``cfg.runs_dir/cfg.name``."""
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
        sub = (
            Subwords(vocab, cfg.subword_buckets, cfg.ngram_min, cfg.ngram_max) if uses_subwords(cfg) else None
        )
        ids = sub.encode(texts) if sub else encode(vocab, texts)  # extra (unseen) words: ids >= len(vocab)
        collate_fn = sub.collate if sub else collate
        limit = token_limit(cfg, [len(ids[i]) for i in tr])
        longer = {
            part: int(sum(len(ids[i]) > limit for i in idx))
            for part, idx in zip(("train", "val", "test"), (tr, va, te))
        }
        lengths = np.array([len(x) for x in ids])
        say(
            f"sentiment: {len(texts)} texts, {len(classes)} classes, split {len(tr)}/{len(va)}/{len(te)} "
            f"(train/val/test), vocabulary {len(vocab)} {cfg.level}s; limit {limit} tokens: "
            f"{sum(longer.values())} texts are longer and "
            + ("are read in pieces" if cfg.long_texts == "chunks" else "are CUT to it")
        )
        k = len(classes)
        te_ids, te_y = [ids[i] for i in te], np.array([labels[i] for i in te])
        tr_ids, owner = chunk([ids[i] for i in tr], limit, cfg.long_texts)
        tr_y = [labels[tr[j]] for j in owner]
        va_ids, va_owner = chunk([ids[i] for i in va], limit, cfg.long_texts)
        va_y = [labels[va[j]] for j in va_owner]
        val = batches(va_ids, va_y, 256, None, collate_fn) if len(va) else None
        majority_val = float(np.bincount(va_y, minlength=k).max() / len(va_y)) if len(va) else 1.0
        steps_per_epoch = -(-len(tr_ids) // cfg.batch_size)
        changes: dict[str, Any] = {
            "early_stopping": 0,
            **lr_schedule(cfg, steps_per_epoch),
            "optimizer_options": fused_adam(cfg),
            # the time budget is the whole ensemble's: each member gets an equal share
            "time_budget": cfg.time_budget / cfg.ensemble if cfg.time_budget else cfg.time_budget,
        }
        if len(va):
            changes.update(monitor="val_accuracy", monitor_mode="max")
        probe = collate_fn(tr_ids[:32], tr_y[:32])
        va_whole = [ids[i] for i in va]  # the validation texts, whole (each network's val predictions)
        va_true = np.array([labels[i] for i in va])
        predict = lambda m, x: predict_proba(  # noqa: E731
            m, x, limit=limit, long_texts=cfg.long_texts, collate_fn=collate_fn
        )

        members, member_proba, member_val, member_epochs, pretrain = [], [], [], [], None
        member_stops: list[str | None] = []
        t_train = time.perf_counter()
        for member in range(cfg.ensemble):
            seed = cfg.seed + member
            seed_everything(seed)
            model = build_model(cfg, len(vocab), len(classes))
            if member == 0:
                untrained = predict(model, te_ids).argmax(1)
            out_dir = member_dir(run.path, member)
            # a network that a resumed run holds finished is read back, not pretrained again
            if cfg.pretrain_epochs and not member_finished(out_dir, run.path):
                info = pretrain_lm(model, tr_ids, cfg, cfg.pretrain_time, say, collate_fn)
                pretrain = pretrain or info

            def epoch_batches(epoch: int, seed=seed):
                order = torch.randperm(len(tr_ids), generator=per_epoch_generator(seed, epoch)).tolist()
                return batches(tr_ids, tr_y, cfg.batch_size, order, collate_fn)

            out_dir.mkdir(parents=True, exist_ok=True)

            def make_trainer(model=model, seed=seed, out_dir=out_dir):
                t = build_trainer(
                    model,
                    replace(cfg, **changes, seed=seed),
                    out_dir,
                    grad_monitor_every=max(1, steps_per_epoch // 4),
                )
                t.stop_when = _StopOnceLearnt(
                    cfg.early_stopping if len(va) else 0, cfg.min_epochs, majority_val
                )
                return t

            done = fit_member(
                model,
                out_dir,
                run.path,
                make_trainer,
                lambda t, eb=epoch_batches: t.fit(EpochBatches(eb, steps_per_epoch), val, probe_batch=probe),
            )
            if member == 0:
                history, trainer = done.history, done
            members.append(model)
            member_epochs.append(done.state.epoch)
            member_stops.append(done.state.stop_reason)
            member_proba.append(predict(model, te_ids))
            member_val.append(predict(model, va_whole) if len(va) else None)
            if cfg.ensemble > 1:
                say(f"ensemble member {member + 1}/{cfg.ensemble}: {done.state.epoch} epochs")
        train_seconds = time.perf_counter() - t_train

        proba = np.mean(member_proba, 0)  # the ensemble's class probabilities: the members' mean
        pred = proba.argmax(1)
        base = report.baselines(cfg, texts, labels, tr, va, te, k)
        scores = report.scores(te_y, pred, k)
        base_scores = {key: report.scores(te_y, b["pred"], k) for key, b in base.items()}
        best = report.strongest(base_scores)
        tfidf_model = base["tfidf"]["model"]
        mixture, mix_test = None, None
        if cfg.tfidf_mix and len(va):
            share, losses, accs = choose_share(
                np.mean(member_val, 0), tfidf_model.predict_proba([texts[i] for i in va]), va_true
            )
            mix_test = mix_proba(proba, base["tfidf"]["proba"], share)
            mixture = {
                "share": share,
                "chosen_by": "validation log loss",
                "val_log_loss": losses,
                "val_accuracy": accs,
                "test": report.scores(te_y, mix_test.argmax(1), k),
            }
            say(f"mixture with TF-IDF: the networks' share {share} (chosen on validation)")
        majority = int(np.bincount([labels[i] for i in tr], minlength=k).argmax())
        seconds = time.perf_counter() - t_start
        bow = base["bow"]["model"]
        metrics: dict[str, Any] = {
            "app": APP,
            "data": cfg.data,
            "classes": classes,
            "split": {"train": len(tr), "val": len(va), "test": len(te), "seed": cfg.split_seed},
            "vocabulary_size": len(vocab),
            "subwords": {
                "buckets": cfg.subword_buckets,
                "ngrams": [cfg.ngram_min, cfg.ngram_max],
                "words_outside_vocabulary": sub.extra_words,
            }
            if sub
            else None,
            "lengths": {
                "tokens_median": float(np.median(lengths)),
                "tokens_p95": float(np.percentile(lengths, 95)),
                "tokens_max": int(lengths.max()),
                "limit": limit,
                "limit_from": "max_tokens" if cfg.max_tokens is not None else "longest training text, capped",
                "longer_than_limit": longer,
                "long_texts": cfg.long_texts,
                "cut": sum(longer.values()) if cfg.long_texts == "cut" else 0,
                "training_pieces": len(tr_ids),
            },
            "test": scores,
            "baselines": {
                key: {
                    "name": report.BASELINE_NAMES[key],
                    "seconds": round(b["seconds"], 2),
                    **base_scores[key],
                }
                for key, b in base.items()
            },
            "strongest_baseline": best,
            "baseline": {
                "name": "bag-of-words logistic regression",
                "ngrams": cfg.baseline_ngrams,
                "features": len(bow.features),
                "l2": bow.l2,
                "seconds": round(base["bow"]["seconds"], 2),
                **base_scores["bow"],
            },
            "tfidf": {"C": tfidf_model.C, "val_accuracy": tfidf_model.val_scores},
            "mixture": mixture,
            "majority_class": {"name": classes[majority], "accuracy": float((te_y == majority).mean())},
            "untrained": report.scores(te_y, untrained, k),
            "f1_definition": "F1 of the second class (positive) for 2 classes, macro average otherwise",
            "pretraining": pretrain,
            "ensemble": {
                "members": cfg.ensemble,
                "epochs_run": member_epochs,
                "stop_reasons": member_stops,  # each network's (the top-level stop_reason is the first's)
                "member_test_accuracy": [float((p.argmax(1) == te_y).mean()) for p in member_proba],
                **(
                    {
                        "val_accuracy": float((np.mean(member_val, 0).argmax(1) == va_true).mean()),
                        "member_val_accuracy": [float((p.argmax(1) == va_true).mean()) for p in member_val],
                    }
                    if len(va)
                    else {}
                ),
            },
            "epochs_run": trainer.state.epoch,
            "validations": len(history),
            "best_epoch": report.best_epoch(history),
            "stop_reason": trainer.state.stop_reason,
            **training_summary(members[0], trainer, train_seconds, seconds, members),
            "history": history,
        }
        save_run_files(run, members[0], cfg, APP, metrics)
        save_members(run, members)
        vocab.to_json(run.file("vocab.json"))
        info = {
            "classes": classes,
            "max_tokens": limit,
            "long_texts": cfg.long_texts,
            "members": cfg.ensemble,
        }
        if mixture is not None:
            info["tfidf_sha256"] = tfidf_model.save(run.file(TFIDF_FILE))  # checked when read back
            info["tfidf_share"] = mixture["share"]
        run.write_json("labels.json", info)
        save_baseline_net(run, base["mlp"]["model"], "mlp")  # `rnnkit evaluate` scores it again
        written = report.write_plots(
            run, cfg, history, te_y, pred, base[best]["pred"], classes, report.BASELINE_NAMES[best]
        )
        samples = report.samples(texts, te, te_y, proba if mix_test is None else mix_test, classes)
        run.commit({"app": APP, "name": name, "data": cfg.data})
    final = run.final
    rows = report.result_rows(
        cfg, scores, base_scores, seconds, mixture and mixture["test"], mixture and mixture["share"]
    )
    return TrainResult(final, metrics, rows, samples, [final / p.name for p in written])
