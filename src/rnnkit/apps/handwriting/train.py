"""Training a handwriting run: data, the CRNN, the shared trainer, the baselines, the report, the run folder.

:func:`train` is the one entry point (the CLI's ``rnnkit train handwriting`` calls it with the config).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import numpy as np
import torch

from rnnkit.apps import plots
from rnnkit.apps._common import finish_training, setup_torch, split_indices
from rnnkit.apps.base import TrainResult
from rnnkit.apps.handwriting import baselines, report
from rnnkit.apps.handwriting.config import HandwritingConfig
from rnnkit.apps.handwriting.data import (
    APP,
    DIGITS,
    batches,
    collate,
    encode,
    load_digit_images,
    load_line_images,
    render_lines,
    split_digits,
)
from rnnkit.apps.handwriting.model import build_model, decode_lines
from rnnkit.apps.rundir import RunBuilder

__all__ = ["train"]

log = logging.getLogger("rnnkit.apps.handwriting")


class _EpochLines:
    """The trainer's training data: ``make(epoch)`` -> that epoch's batches; ``len()`` batches per epoch."""

    def __init__(self, make, n: int):
        self.make, self.n = make, n

    def __len__(self) -> int:
        return self.n

    def __call__(self, epoch: int):
        return self.make(epoch)


def _prepare(cfg: HandwritingConfig):
    """Everything the run needs from the data: alphabet, fixed val/test lines, the epoch maker, baseline data."""
    if cfg.data == "digits":
        images, labels, source = load_digit_images()
        tr, va, te = split_digits(len(images), cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
        kw = {"height": cfg.height, "min_digits": cfg.min_digits, "max_digits": cfg.max_digits}
        rng = np.random.default_rng([cfg.split_seed, 1])
        val = render_lines(images, labels, va, cfg.val_lines, rng, **kw) if len(va) else ([], [])
        test = render_lines(
            images, labels, te, cfg.test_lines, np.random.default_rng([cfg.split_seed, 2]), **kw
        )

        def train_lines(epoch: int):
            return render_lines(
                images, labels, tr, cfg.train_lines, np.random.default_rng([cfg.seed, 3, epoch]), **kw
            )

        info = {
            "digit_images": {
                "train": len(tr),
                "val": len(va),
                "test": len(te),
                "mnist": int((source == 0).sum()),
            },
            "lines": {"train_per_epoch": cfg.train_lines, "val": len(val[0]), "test": len(test[0])},
        }
        return DIGITS, train_lines, val, test, (images[tr], labels[tr]), info
    lines, texts = load_line_images(cfg.data, cfg.height)
    tr, va, te = split_indices(len(lines), cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
    alphabet = "".join(sorted(set("".join(texts))))  # every character of the file: one output label each
    tr_pair = ([lines[i] for i in tr], [texts[i] for i in tr])

    def train_lines(epoch: int):
        return tr_pair

    val = ([lines[i] for i in va], [texts[i] for i in va])
    test = ([lines[i] for i in te], [texts[i] for i in te])
    info = {"lines": {"train": len(tr), "val": len(va), "test": len(te)}}
    return alphabet, train_lines, val, test, None, info


def _trainer_config(cfg: HandwritingConfig):
    from rnnkit.train import TrainerConfig

    names = {f.name for f in dataclasses.fields(TrainerConfig)}
    return TrainerConfig(**{k: getattr(cfg, k) for k in names})


def train(cfg: HandwritingConfig, overwrite: bool = False, say=print) -> TrainResult:
    """Train and evaluate the CRNN and the baselines; write the run ``cfg.runs_dir/cfg.name``."""
    from rnnkit.train import Reporter, Trainer

    cfg.check()
    t_start = time.perf_counter()
    name = cfg.name or APP
    setup_torch(cfg.threads)
    with RunBuilder(cfg.runs_dir, name, overwrite) as run:
        alphabet, train_lines, val, test, digits, info = _prepare(cfg)
        say(f"handwriting ({cfg.data}): alphabet {alphabet!r}, {info}")
        torch.manual_seed(cfg.seed)
        model = build_model(cfg, len(alphabet))
        te_lines, te_texts = test
        untrained = report.scores(te_texts, decode_lines(model, te_lines, alphabet, 1))

        def epoch_batches(epoch: int):
            lines, texts = train_lines(epoch)
            order = np.random.default_rng([cfg.seed, 4, epoch]).permutation(len(lines))
            return batches(lines, encode(texts, alphabet), cfg.batch_size, order, by_width=True)

        n_train = len(train_lines(0)[0]) if cfg.data != "digits" else cfg.train_lines
        val_batches = batches(val[0], encode(val[1], alphabet), 64, by_width=True) if val[0] else None
        tcfg = _trainer_config(cfg)
        if val_batches is None:
            tcfg.monitor = "train_loss"
        reporter = Reporter(run.path, progress=cfg.progress, log_every=tcfg.log_every)
        trainer = Trainer(model, tcfg, reporter=reporter)
        t_train = time.perf_counter()
        history = trainer.fit(_EpochLines(epoch_batches, -(-n_train // cfg.batch_size)), val_batches)
        finish_training(trainer, run.path)
        train_seconds = time.perf_counter() - t_train

        greedy = decode_lines(model, te_lines, alphabet, 1)
        beam = decode_lines(model, te_lines, alphabet, cfg.beam_size)
        model_scores = report.scores(te_texts, beam)
        readings: dict[str, list[str]] = {"crnn": beam}
        base_scores: dict[str, Any] = {}
        if digits is not None:
            t0 = time.perf_counter()
            seg = baselines.SegmentAndClassify(epochs=cfg.baseline_epochs, seed=cfg.seed).fit(*digits)
            readings["segment+cnn"] = seg.read(te_lines)
            base_scores["connected components + CNN"] = {
                **report.scores(te_texts, readings["segment+cnn"]),
                "seconds": round(time.perf_counter() - t0, 2),
            }
        tess = None
        if cfg.tesseract:
            t0 = time.perf_counter()
            tess = baselines.tesseract_read(te_lines, whitelist=alphabet)
            if tess is not None:
                readings["tesseract"] = tess
                base_scores["Tesseract LSTM (psm 7)"] = {
                    **report.scores(te_texts, tess),
                    "seconds": round(time.perf_counter() - t0, 2),
                }
        tess_reason = (
            None if tess is not None else (baselines.tesseract_available() or "failed or turned off")
        )
        if tess is None:
            say(f"handwriting: Tesseract baseline skipped: {tess_reason}")

        seconds = time.perf_counter() - t_start
        metrics: dict[str, Any] = {
            "app": APP,
            "data": cfg.data,
            "alphabet": alphabet,
            **info,
            "test": {**model_scores, "beam_size": cfg.beam_size},
            "test_greedy": report.scores(te_texts, greedy),
            "baselines": base_scores,
            "tesseract_skipped": tess_reason,
            "untrained": untrained,
            "epochs_run": len(history),
            "train_seconds": round(train_seconds, 2),
            "seconds": round(seconds, 2),
            "parameters": sum(p.numel() for p in model.parameters()),
            "backend": str(model.encoder.backend),
            "history": history,
        }
        model.save(run.path)
        run.file("model.safetensors")
        run.file("model.json")
        run.write_json("config.json", dataclasses.asdict(cfg))
        run.write_json("alphabet.json", {"alphabet": alphabet, "height": cfg.height})
        run.write_json("metrics.json", metrics)
        for f in ("metrics.csv", "history.json"):
            if (run.path / f).exists():
                run.file(f)
        written = []
        curves = plots.plot_curves(
            history,
            run.file("curves.png"),
            "epoch",
            f"handwriting ({cfg.data}): training curves",
            left=["train_loss", "val_loss"],
        )
        written += [curves] if curves is not None else []
        k = min(8, len(te_lines))
        b = collate(te_lines[:k])
        lp, frames = model.log_probs(b["images"], b["widths"])
        frame_labels = [lp[i, : int(frames[i])].argmax(-1).tolist() for i in range(k)]
        pic = report.draw_samples(te_lines, te_texts, beam, frame_labels, alphabet, run.file("samples.png"))
        written += [pic] if pic is not None else []
        samples = report.samples(te_texts, readings)
        run.commit({"app": APP, "name": name, "data": cfg.data})
    final = run.final
    task = f"handwriting ({'digits' if cfg.data == 'digits' else cfg.data})"
    rows = report.result_rows(task, model_scores, base_scores, seconds)
    return TrainResult(final, metrics, rows, samples, [final / p.name for p in written])
