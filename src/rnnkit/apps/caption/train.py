"""Training a captioning run: data, words, model, the shared trainer, the baselines, the report, the run."""

from __future__ import annotations

import time
from typing import Any

import torch

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import (
    EpochBatches,
    build_trainer,
    fit_feedforward,
    fit_member,
    per_epoch_generator,
    save_feedforward,
    save_members,
    save_run_files,
    setup_torch,
    training_summary,
)
from rnnkit.apps.base import TrainResult
from rnnkit.apps.caption import report
from rnnkit.apps.caption.config import CaptionConfig, image_size
from rnnkit.apps.caption.data import APP, WordVocab, batches, collate, load_data, split
from rnnkit.apps.caption.model import build_model, caption_ids
from rnnkit.apps.rundir import RunBuilder

__all__ = ["train"]


def _split_name(cfg: CaptionConfig) -> str:
    if cfg.data == "digits":
        return "by digit image"
    if cfg.data == "emoji":
        return cfg.split
    return "random"


def train(cfg: CaptionConfig, overwrite: bool = False, say=print) -> TrainResult:
    """Train and evaluate the captioner and its baselines; write the run ``cfg.runs_dir/cfg.name``."""
    from rnnkit.config import validate_config
    from rnnkit.train import seed_everything

    validate_config(cfg)
    t_start = time.perf_counter()
    name = cfg.name or APP
    setup_torch(cfg.threads)
    with RunBuilder(cfg.runs_dir, name, overwrite) as run:
        data = load_data(cfg)
        tr, va, te = split(cfg, data)
        if len(tr) == 0 or len(te) == 0:
            raise RnnkitError(f"{data.name}: the split left {len(tr)} training and {len(te)} test images")
        vocab = WordVocab.build([c for i in tr for c in data.refs[i]], cfg.min_count)
        te_eval = list(te[: cfg.eval_images] if cfg.eval_images else te)
        refs = [data.refs[i] for i in te_eval]
        te_images = data.images[te_eval]
        h, w = image_size(cfg)
        say(
            f"caption: {data.name}, {len(data)} images {h}x{w}, split {len(tr)}/{len(va)}/{len(te)} "
            f"(train/val/test, {_split_name(cfg)}), {len(vocab)} words"
        )
        seed_everything(cfg.seed)
        model = build_model(cfg, len(vocab))
        decode = {"length_penalty": cfg.length_penalty, "max_length": cfg.max_words + 1}

        def captions(results: list[dict]) -> list[str]:
            return [vocab.decode(r["hypotheses"][0][0]) for r in results]

        untrained = report.scores(captions(caption_ids(model, te_images, **decode)), refs)
        tr_pairs = [(i, vocab.encode(c)) for i in tr for c in data.refs[i]]
        va_pairs = [(i, vocab.encode(c)) for i in va for c in data.refs[i]]

        def epoch_batches(epoch: int):
            gen = per_epoch_generator(cfg.seed, epoch)
            order = torch.randperm(len(tr_pairs), generator=gen).tolist()
            return batches(data.images, tr_pairs, cfg.batch_size, order, gen if cfg.augment else None)

        val = batches(data.images, va_pairs, 128) if va_pairs else None
        steps_per_epoch = -(-len(tr_pairs) // cfg.batch_size)
        t_train = time.perf_counter()
        probe = collate(data.images[[i for i, _ in tr_pairs[:32]]], [t for _, t in tr_pairs[:32]])
        # through fit_member, so that a run resumed while its feed-forward counterpart trains keeps the network
        trainer = fit_member(
            model,
            run.path,
            run.path,
            lambda: build_trainer(model, cfg, run.path, grad_monitor_every=max(1, steps_per_epoch // 4)),
            lambda t: t.fit(EpochBatches(epoch_batches, steps_per_epoch), val, probe_batch=probe),
        )
        history = trainer.history
        train_seconds = time.perf_counter() - t_train
        feedforward = None
        if cfg.ff_layers:  # the same CNN, batches, loss, trainer settings and decoding, no recurrence
            seed_everything(cfg.seed)
            feedforward = build_model(cfg, len(vocab), feedforward=True)
            ff_info = fit_feedforward(
                feedforward, cfg, run.path, lambda t: t.fit(EpochBatches(epoch_batches, steps_per_epoch), val)
            )
            say(f"caption: feed-forward counterpart trained, {ff_info['epochs']} epochs")

        t_eval = time.perf_counter()
        greedy = caption_ids(model, te_images, beam=1, attention=True, **decode)
        beam = caption_ids(model, te_images, beam=cfg.beam, **decode)
        outputs = {"greedy": captions(greedy), f"beam {cfg.beam}": captions(beam)}
        model_scores = {"greedy": report.scores(outputs["greedy"], refs)}
        model_scores["beam"] = report.scores(outputs[f"beam {cfg.beam}"], refs)
        eval_seconds = time.perf_counter() - t_eval

        t_base = time.perf_counter()
        tr_images, tr_refs = data.images[tr], [data.refs[i] for i in tr]
        nn_pixels = report.nearest_neighbour(tr_images, tr_refs, te_images)
        nn_cnn = report.nearest_neighbour(tr_images, tr_refs, te_images, model)
        base = {
            "nn_pixels": {"name": "nearest neighbour (pixels)", **report.scores(nn_pixels, refs)},
            "nn_cnn": {"name": "nearest neighbour (CNN features)", **report.scores(nn_cnn, refs)},
            "untrained": {"name": "untrained model", **untrained},
        }
        if feedforward is not None:
            ff_out = captions(caption_ids(feedforward, te_images, beam=cfg.beam, **decode))
            ff_greedy = report.scores(captions(caption_ids(feedforward, te_images, beam=1, **decode)), refs)
            base["feedforward"] = {
                "name": report.FEEDFORWARD,
                **report.scores(ff_out, refs),
                "greedy": ff_greedy,
                **ff_info,
            }
        base_seconds = time.perf_counter() - t_base
        seconds = time.perf_counter() - t_start
        metrics: dict[str, Any] = {
            "app": APP,
            "data": data.name,
            "split": {
                "kind": _split_name(cfg),
                "train": len(tr),
                "val": len(va),
                "test": len(te),
                "scored": len(te_eval),
                "seed": cfg.split_seed,
                "training_pairs": len(tr_pairs),
            },
            "image_size": [h, w],
            "vocabulary": len(vocab),
            "test": {**model_scores, "beam_size": cfg.beam, "length_penalty": cfg.length_penalty},
            "baselines": base,
            "eval_seconds": round(eval_seconds, 2),
            "baseline_seconds": round(base_seconds, 2),
            "epochs_run": len(history),
            "stop_reason": trainer.state.stop_reason,
            **training_summary(model, trainer, train_seconds, seconds),
            "history": history,
        }
        save_run_files(run, model, cfg, APP, metrics)
        save_members(run, [model])  # the network's resume copy goes
        if feedforward is not None:
            save_feedforward(run, feedforward)
        run.write_json("caption.json", {"words": vocab.words, "data": data.name, "max_words": cfg.max_words})
        items = [
            (te_images[j], vocab.decode(g["hypotheses"][0][0]).split(), g["attention"], refs[j][0])
            for j, g in list(enumerate(greedy))[:: max(1, len(greedy) // 6)][:6]
            if g["hypotheses"][0][0] and "attention" in g
        ]
        written = report.write_plots(run, data.name, history, items)
        others = {"NN pixels": nn_pixels, "NN CNN": nn_cnn} | (
            {"feed-forward": ff_out} if feedforward else {}
        )
        samples = report.samples(refs, {**outputs, **others}, k=5)
        run.commit({"app": APP, "name": name, "data": data.name})
    final = run.final
    rows = report.result_rows(data.name, _split_name(cfg), model_scores, base, seconds)
    return TrainResult(final, metrics, rows, samples, [final / p.name for p in written])
