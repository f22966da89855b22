"""Training a handwriting run: data, the CRNN, the shared trainer, the baselines, the report, the run folder.

:func:`train` is the one entry point (the CLI's ``rnnkit train handwriting`` calls it with the config).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.apps import plots
from rnnkit.apps._common import (
    FF_CTC,
    EpochBatches,
    build_trainer,
    fit_feedforward,
    fit_member,
    save_feedforward,
    save_members,
    save_run_files,
    setup_torch,
    split_indices,
    training_summary,
)
from rnnkit.apps.base import TrainResult
from rnnkit.apps.handwriting import baselines, report
from rnnkit.apps.handwriting.config import HandwritingConfig
from rnnkit.apps.handwriting.data import (
    APP,
    DIGITS,
    FONT_ALPHABET,
    HELD_OUT_FONTS,
    batches,
    cached_font_lines,
    collate,
    ctc_room,
    encode,
    find_fonts,
    font_texts,
    ink_margin,
    load_digit_images,
    load_line_images,
    normalize_line,
    render_font_lines,
    render_lines,
    split_digits,
    split_fonts,
)
from rnnkit.apps.handwriting.model import build_model, decode_lines
from rnnkit.apps.rundir import RunBuilder
from rnnkit.models.lexicon import Lexicon, WordNgramLM

__all__ = ["train"]

log = logging.getLogger("rnnkit.apps.handwriting")


def font_text_parts(cfg: HandwritingConfig) -> tuple[list[str], list[str], list[str]]:
    """The training, validation and test texts of the built-in ``fonts`` data under ``cfg``'s split."""
    texts = font_texts()
    tr, va, te = split_indices(len(texts), cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
    return tuple([texts[i] for i in part] for part in (tr, va, te))


def _prepare(cfg: HandwritingConfig):
    """What the run needs from the data: ``(alphabet, train_lines(epoch) -> (lines, texts), val, tests,
    digits for the segmentation baseline or None, info, the training texts)``; ``tests`` maps a name to
    fixed ``(lines, texts)``. ``info["line_margin"]`` is the median blank around the ink of the validation
    lines (:func:`~rnnkit.apps.handwriting.data.ink_margin`); with ``cfg.cuts_lines()`` every line is cut to its
    ink with that margin."""
    alphabet, train_lines, val, tests, digits, info, texts = _lines(cfg)
    margins = [m for m in map(ink_margin, (val[0] or train_lines(0)[0])[:500]) if m is not None]
    margin = info["line_margin"] = round(float(np.median(margins)), 4) if margins else 0.0
    info["cut_lines"] = cfg.cuts_lines()
    if info["cut_lines"]:

        def cut(pair):  # a line cut narrower than its text needs gets its blank back on the right
            lines, texts = pair
            return [
                ctc_room(normalize_line(x, cfg.height, margin=margin), t) for x, t in zip(lines, texts)
            ], texts

        uncut = train_lines
        train_lines = lambda epoch: cut(uncut(epoch))  # noqa: E731
        val, tests = cut(val), {k: cut(v) for k, v in tests.items()}
    return alphabet, train_lines, val, tests, digits, info, texts


def _lines(cfg: HandwritingConfig):
    """:func:`_prepare`'s lines as the data gives them."""
    if cfg.data == "digits":
        images, labels, source = load_digit_images()
        tr, va, te = split_digits(len(images), cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
        kw = {"height": cfg.height, "min_digits": cfg.min_digits, "max_digits": cfg.max_digits}
        rng = np.random.default_rng([cfg.split_seed, 1])
        val = render_lines(images, labels, va, cfg.val_lines, rng, **kw) if len(va) else ([], [])
        rng = np.random.default_rng([cfg.split_seed, 2])
        tests = {"test": render_lines(images, labels, te, cfg.test_lines, rng, **kw)}

        def train_lines(epoch: int):
            rng = np.random.default_rng([cfg.seed, 3, epoch])
            return render_lines(images, labels, tr, cfg.train_lines, rng, **kw)

        info = {
            "digit_images": {
                "train": len(tr),
                "val": len(va),
                "test": len(te),
                "mnist": int((source == 0).sum()),
            },
            "lines": {"train_per_epoch": cfg.train_lines, "val": len(val[0]), "test": cfg.test_lines},
        }
        return DIGITS, train_lines, val, tests, (images[tr], labels[tr]), info, []
    if cfg.data == "fonts":
        seen, held = split_fonts(find_fonts())
        tr_t, va_t, te_t = font_text_parts(cfg)
        # the fixed validation and test lines are rendered once and kept in the data cache
        val = cached_font_lines(va_t, seen, cfg.val_lines, [cfg.split_seed, 1], cfg.height)
        tests = {
            "held-out fonts": cached_font_lines(te_t, held, cfg.test_lines, [cfg.split_seed, 2], cfg.height),
            "training fonts": cached_font_lines(te_t, seen, cfg.test_lines, [cfg.split_seed, 5], cfg.height),
        }

        def train_lines(epoch: int):
            rng = np.random.default_rng([cfg.seed, 3, epoch])
            return render_font_lines(
                tr_t, seen, cfg.train_lines, rng, cfg.height, cfg.case_variety, cfg.word_gaps
            )

        info = {
            "fonts": {"train": [p.name for p in seen], "held_out": list(HELD_OUT_FONTS)},
            "texts": {"train": len(tr_t), "val": len(va_t), "test": len(te_t)},
            "lines": {
                "train_per_epoch": cfg.train_lines,
                "val": cfg.val_lines,
                "test_per_set": cfg.test_lines,
            },
        }
        return FONT_ALPHABET, train_lines, val, tests, None, info, tr_t
    lines, texts = load_line_images(cfg.data, cfg.height)
    tr, va, te = split_indices(len(lines), cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
    alphabet = "".join(sorted(set("".join(texts))))  # every character of the file: one output label each
    tr_pair = ([lines[i] for i in tr], [texts[i] for i in tr])

    def train_lines(epoch: int):
        return tr_pair

    val = ([lines[i] for i in va], [texts[i] for i in va])
    tests = {"test": ([lines[i] for i in te], [texts[i] for i in te])}
    info = {"lines": {"train": len(tr), "val": len(va), "test": len(te)}}
    return alphabet, train_lines, val, tests, None, info, tr_pair[1]


def _read(cfg, model, alphabet, lines, texts, lexicon=None, lm=None) -> tuple[dict, list[str]]:
    """A CTC network's scores on one test set (beam search, with its greedy and lexicon readings inside) and
    its beam-search texts."""
    greedy = decode_lines(model, lines, alphabet, 1)
    beam = decode_lines(model, lines, alphabet, cfg.beam_size)
    out = {**report.scores(texts, beam), "beam_size": cfg.beam_size, "greedy": report.scores(texts, greedy)}
    if lexicon is not None:
        out["lexicon"] = {
            **report.scores(
                texts, decode_lines(model, lines, alphabet, cfg.lexicon_beam, lexicon=lexicon, lm=lm, cfg=cfg)
            ),
            "beam_size": cfg.lexicon_beam,
        }
    return out, beam


def _evaluate(
    cfg, model, alphabet, lines, texts, digit_baseline, lexicon=None, lm=None, feedforward=None
) -> tuple[dict, dict, dict]:
    """CRNN and baseline scores on one test set: ``(crnn scores, baseline scores, readings)``."""
    crnn, beam = _read(cfg, model, alphabet, lines, texts, lexicon, lm)
    readings: dict[str, list[str]] = {"crnn": beam}
    base: dict[str, Any] = {}
    if feedforward is not None:
        t0 = time.perf_counter()
        base[FF_CTC], readings["feed-forward"] = _read(cfg, feedforward, alphabet, lines, texts, lexicon, lm)
        base[FF_CTC]["seconds"] = round(time.perf_counter() - t0, 2)
    if digit_baseline is not None:
        t0 = time.perf_counter()
        readings["segment+cnn"] = digit_baseline.read(lines)
        base["connected components + CNN"] = {
            **report.scores(texts, readings["segment+cnn"]),
            "seconds": round(time.perf_counter() - t0, 2),
        }
    if cfg.tesseract:
        t0 = time.perf_counter()
        # a lower-case alphabet (the font lines): Tesseract may read capitals, which count lower-cased,
        # since several fonts draw every letter as a capital
        fold = alphabet != alphabet.upper() and alphabet == alphabet.lower()
        whitelist = "".join(dict.fromkeys(alphabet + alphabet.upper())) if fold else alphabet
        tess = baselines.tesseract_read(lines, whitelist=whitelist)
        if tess is not None and fold:
            tess = [t.lower() for t in tess]
        if tess is not None:
            readings["tesseract"] = tess
            base["Tesseract LSTM (psm 7)"] = {
                **report.scores(texts, tess),
                "seconds": round(time.perf_counter() - t0, 2),
            }
    return crnn, base, readings


def train(cfg: HandwritingConfig, overwrite: bool = False, say=print) -> TrainResult:
    """Train and evaluate the CRNN and the baselines; write the run ``cfg.runs_dir/cfg.name``."""
    from rnnkit.config import validate_config

    validate_config(cfg)
    t_start = time.perf_counter()
    name = cfg.name or APP
    setup_torch(cfg.threads)
    with RunBuilder(cfg.runs_dir, name, overwrite) as run:
        alphabet, train_lines, val, tests, digits, info, train_texts = _prepare(cfg)
        lexicon = lm = None
        if " " in alphabet and train_texts:  # text with words: also decode with the training texts' words
            lexicon = Lexicon((w for t in train_texts for w in t.split(" ")), alphabet)
            info["lexicon_words"] = len(lexicon)
            if cfg.lm_order > 0:  # ... ranked with their word n-gram model
                lm = WordNgramLM(train_texts, cfg.lm_order)
                info["lm"] = {"order": lm.order, "weight": cfg.lm_weight, "word_bonus": cfg.word_bonus}
        say(f"handwriting ({cfg.data}): alphabet {alphabet!r}, {info}")
        torch.manual_seed(cfg.seed)
        model = build_model(cfg, len(alphabet))
        first = next(iter(tests))
        te_lines, te_texts = tests[first]
        untrained = report.scores(te_texts, decode_lines(model, te_lines, alphabet, 1))

        def epoch_batches(epoch: int):
            lines, texts = train_lines(epoch)
            order = np.random.default_rng([cfg.seed, 4, epoch]).permutation(len(lines))
            return batches(lines, encode(texts, alphabet), cfg.batch_size, order, by_width=True)

        n_train = cfg.train_lines if cfg.data in ("digits", "fonts") else len(train_lines(0)[0])
        val_batches = batches(val[0], encode(val[1], alphabet), 64, by_width=True) if val[0] else None
        steps = -(-n_train // cfg.batch_size)
        tcfg = cfg if val_batches is not None else dataclasses.replace(cfg, monitor="train_loss")
        t_train = time.perf_counter()

        def fit(trainer):
            return trainer.fit(EpochBatches(epoch_batches, steps), val_batches)

        # through fit_member, so that a run resumed while its feed-forward counterpart trains keeps the CRNN
        trainer = fit_member(
            model,
            run.path,
            run.path,
            lambda: build_trainer(model, tcfg, run.path, grad_monitor_every=max(1, steps // 2)),
            fit,
        )
        history = trainer.history
        train_seconds = time.perf_counter() - t_train
        feedforward = None
        if cfg.ff_layers:  # the same conv blocks, batches, trainer and decoders, no recurrence
            torch.manual_seed(cfg.seed)
            feedforward = build_model(cfg, len(alphabet), feedforward=True)
            info["feedforward"] = fit_feedforward(feedforward, tcfg, run.path, fit)
            say(f"handwriting: feed-forward counterpart trained, {info['feedforward']['epochs']} epochs")

        seg = None
        if digits is not None and cfg.segment_baseline:
            t0 = time.perf_counter()
            seg = baselines.SegmentAndClassify(epochs=cfg.baseline_epochs, seed=cfg.seed).fit(*digits)
            info["segment_cnn_fit_seconds"] = round(time.perf_counter() - t0, 2)
        results, readings = {}, {}
        for set_name, (lines, texts) in tests.items():
            crnn, base, read = _evaluate(cfg, model, alphabet, lines, texts, seg, lexicon, lm, feedforward)
            results[set_name] = {"crnn": crnn, "baselines": base}
            readings[set_name] = read
        tess_reason = None
        if not cfg.tesseract:
            tess_reason = "turned off (tesseract = false)"
        elif "Tesseract LSTM (psm 7)" not in results[first]["baselines"]:
            tess_reason = baselines.tesseract_available() or "tesseract failed (see the log)"
        if tess_reason:
            say(f"handwriting: Tesseract baseline skipped: {tess_reason}")

        seconds = time.perf_counter() - t_start
        model_scores = {k: v for k, v in results[first]["crnn"].items() if k not in ("greedy", "lexicon")}
        metrics: dict[str, Any] = {
            "app": APP,
            "data": cfg.data,
            "alphabet": alphabet,
            **info,
            "test": model_scores,
            "test_greedy": results[first]["crnn"]["greedy"],
            "baselines": results[first]["baselines"],
            "test_sets": results,
            "tesseract_skipped": tess_reason,
            "untrained": untrained,
            "epochs_run": len(history),
            **training_summary(model, trainer, train_seconds, seconds),
            "history": history,
        }
        save_run_files(run, model, cfg, APP, metrics)
        save_members(run, [model])  # the CRNN's resume copy goes
        if feedforward is not None:
            save_feedforward(run, feedforward)
        # how much blank its lines have around their ink: the cut of a new image (cut_lines, or --cut) keeps it
        run.write_json(
            "alphabet.json", {"alphabet": alphabet, "height": cfg.height, "line_margin": info["line_margin"]}
        )
        if lexicon is not None:
            # the texts of the built-in fonts data are made again from the config (3 MB); others are kept
            kept = list(train_texts) if lm is not None and cfg.data != "fonts" else []
            run.write_json("lexicon.json", {"words": lexicon.words, "texts": kept})
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
        per_line = [lp[i, : int(frames[i])].numpy() for i in range(k)]
        beam = readings[first]["crnn"]
        pic = report.draw_samples(te_lines, te_texts, beam, per_line, alphabet, run.file("samples.png"))
        written += [pic] if pic is not None else []
        samples = [f"[{n}] {line}" for n in tests for line in report.samples(tests[n][1], readings[n], 4)]
        run.commit({"app": APP, "name": name, "data": cfg.data})
    final = run.final
    rows = []
    for set_name, res in results.items():
        where = cfg.data if cfg.data in ("digits", "fonts") else Path(cfg.data).name
        task = f"handwriting ({where})" if set_name == "test" else f"handwriting ({where}, {set_name})"
        rows += report.result_rows(
            task,
            {k: v for k, v in res["crnn"].items() if k not in ("greedy", "lexicon")},
            res["baselines"],
            seconds,
        )
        if "lexicon" in res["crnn"]:  # the reader that spells only words of the training texts
            base = dict(res["baselines"])
            if FF_CTC in base:  # the counterpart read with the same lexicon + LM
                base[FF_CTC] = base[FF_CTC]["lexicon"]
            rows += report.result_rows(
                task, res["crnn"]["lexicon"], base, seconds, metric="CER, lexicon + LM"
            )
    return TrainResult(final, metrics, rows, samples, [final / p.name for p in written])
