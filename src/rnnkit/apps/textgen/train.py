"""Training a language-model run: data, model, the shared trainer (truncated BPTT, validation every N
steps), the report, the run directory."""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from rnnkit.apps._common import (
    EpochBatches,
    build_trainer,
    finish_training,
    save_baseline_net,
    save_run_files,
    setup_torch,
    training_summary,
)
from rnnkit.apps.base import TrainResult
from rnnkit.apps.rundir import RunBuilder
from rnnkit.apps.textgen import report
from rnnkit.apps.textgen.baselines import BASELINE_NAMES, fit_baselines, kneser_ney_ranks, units
from rnnkit.apps.textgen.config import GenerateConfig, TextGenConfig
from rnnkit.apps.textgen.data import (
    APP,
    held_out,
    load_text,
    scored_positions,
    split_text,
    stream_batches,
    stream_count,
    streams,
)
from rnnkit.apps.textgen.mixture import (
    MIX_WEIGHTS,
    NGRAM_FILE,
    NGRAM_INFO,
    NgramMixture,
    choose_suggest_weight,
    choose_weight,
    mix_log2,
    mixture_next_ranks,
)
from rnnkit.apps.textgen.model import build_model, generate, next_word_hits, token_nats
from rnnkit.datasets import AUSTEN_BOOKS, Vocabulary

__all__ = ["DEFAULT_PROMPTS", "WarmupCosine", "train"]

DEFAULT_PROMPTS = ("It is a truth universally acknowledged", "Mr. Darcy", "\n")


class WarmupCosine:
    """The learning-rate factor of a linear warm-up then a cosine decay (for ``LambdaLR``).

    .. math:: f(s) = \\min(1, s / w) \\cdot \\big(r + (1 - r) \\tfrac{1}{2}(1 + \\cos \\pi p)\\big), \\qquad
              p = \\min\\big(1, \\max(s / S, \\; t / T)\\big)

    where ``s`` counts updates, ``w`` is ``warmup``, ``r`` is ``min_ratio``, ``S`` the planned updates and
    ``T`` the time budget (seconds since the first update): the decay ends with the run whichever of the two
    ends it first, so a run cut by its time budget still finishes at the low learning rate.

    Example: ``LambdaLR(opt, WarmupCosine(total=1000, warmup=100))``.
    """

    def __init__(self, total: int, warmup: int = 0, min_ratio: float = 0.05, time_budget: float = 0.0):
        self.total, self.warmup, self.min_ratio, self.time_budget = (
            max(1, total),
            warmup,
            min_ratio,
            time_budget,
        )
        self.start: float | None = None

    def progress(self, step: int) -> float:
        p = step / self.total
        if self.time_budget > 0:
            if self.start is None:
                self.start = time.perf_counter()
            p = max(p, (time.perf_counter() - self.start) / self.time_budget)
        return min(1.0, p)

    def __call__(self, step: int) -> float:
        warm = min(1.0, (step + 1) / self.warmup) if self.warmup else 1.0
        cos = 0.5 * (1 + math.cos(math.pi * self.progress(step)))
        return warm * (self.min_ratio + (1 - self.min_ratio) * cos)


def _trainer(model, cfg: TextGenConfig, out_dir, total_updates: int, grad_monitor_every: int, epochs: int):
    """The shared trainer with ``cfg.lr_schedule``: a named torch scheduler wins; ``plateau`` is the trainer's
    ReduceLROnPlateau (factor ``lr_decay``), ``constant`` keeps ``lr``, ``cosine`` is :class:`WarmupCosine`.
    ``epochs``: the passes (:func:`training_passes`)."""
    kw = {"grad_monitor_every": grad_monitor_every, "epochs": epochs}
    if cfg.scheduler or cfg.lr_schedule == "plateau":
        return build_trainer(model, cfg, out_dir, **kw)
    if cfg.lr_schedule == "constant":
        return build_trainer(model, cfg, out_dir, lr_decay=1.0, **kw)
    # the shared trainer (training-data record, --resume), with a per-update schedule set on it
    trainer = build_trainer(model, cfg, out_dir, scheduler_interval="step", lr_decay=1.0, **kw)
    # a short run warms up for at most a tenth of its planned updates
    warmup = min(cfg.warmup_steps, total_updates // 10)
    schedule = WarmupCosine(total_updates, warmup, cfg.min_lr_ratio, cfg.time_budget)
    trainer.scheduler = torch.optim.lr_scheduler.LambdaLR(trainer.optimizer, schedule)
    return trainer


MIN_UPDATES = 2000
"""``--epochs 0`` (auto) trains at least this many steps: one pass over a text of about 3.2 million characters
at the defaults (32 streams of 50), more passes over a shorter one. One pass over a 70,000-character text is
about 40 updates, after which the network had barely left the unigram (3.32 bits per character against the
Kneser-Ney n-gram's 1.94)."""


def training_passes(epochs: int, steps_per_pass: int) -> int:
    """Passes over the training text: ``epochs`` when set, else (0, auto) one pass or as many as make
    :data:`MIN_UPDATES` steps."""
    return epochs if epochs > 0 else max(1, math.ceil(MIN_UPDATES / max(steps_per_pass, 1)))


def train(cfg: TextGenConfig, overwrite: bool = False, say=print) -> TrainResult:
    """Train and evaluate the language model and its baselines on the same split; write the run."""
    from rnnkit.train import seed_everything

    t_start = time.perf_counter()
    name = cfg.name or (cfg.data if cfg.data == "austen" else APP)
    setup_torch(cfg.threads)
    with RunBuilder(cfg.runs_dir, name, overwrite) as run:
        text = load_text(cfg)
        train_text, val_text, test_text = split_text(text, cfg)
        vocab = Vocabulary.build([train_text], level=cfg.level, min_freq=cfg.min_freq)
        train_ids = torch.tensor(vocab.encode(train_text))
        val_part, val_ids = held_out(val_text, cfg.eval_tokens, vocab)
        test_part, test_ids = held_out(test_text, cfg.eval_tokens, vocab)
        x, y = streams(train_ids, cfg.batch_size)
        k1, k2 = cfg.tbptt_k1, cfg.tbptt_k2
        # steps of k1 columns (one update each); with k2 > k1 longer steps let the windows overlap
        seg = k1 * (1 if k2 <= k1 else 10)
        steps_per_pass = math.ceil(x.shape[1] / seg)
        passes = training_passes(cfg.epochs, steps_per_pass)
        say(
            f"textgen: {cfg.data}: {len(text):,} characters ({len(train_text):,} train / {len(val_text):,} val / "
            f"{len(test_text):,} test); {len(train_ids):,} training {cfg.level}s, {len(test_ids):,} held-out "
            f"{cfg.level}s scored, vocabulary {len(vocab)}; {cfg.batch_size} streams of {x.shape[1]:,}, "
            f"BPTT k1={k1} k2={k2}; {passes} pass(es) of {steps_per_pass:,} "
            "steps at most"
        )
        seed_everything(cfg.seed)
        model = build_model(cfg, len(vocab))
        untrained_bpc = float(token_nats(model, test_ids[:5001]).mean() / math.log(2))

        vx, vy = streams(val_ids, stream_count(len(val_ids))) if len(val_ids) > 2 else (None, None)
        val = stream_batches(vx, vy, 1000) if vx is not None else None
        total = cfg.max_steps or steps_per_pass * passes
        updates_per_step = 1 if k2 <= k1 else seg // k1
        trainer = _trainer(
            model,
            cfg,
            run.path,
            total * updates_per_step,
            grad_monitor_every=max(1, min(cfg.validate_every or steps_per_pass, total // 10)),
            epochs=passes,
        )
        t_train = time.perf_counter()
        probe = {"inputs": x[:8, :k1], "targets": y[:8, :k1]}
        train_batches = EpochBatches(lambda epoch: stream_batches(x, y, seg), steps_per_pass)
        history = trainer.fit(train_batches, val, probe_batch=probe)
        finish_training(trainer, run.path)
        train_seconds = time.perf_counter() - t_train
        for row in history:
            for key in ("train_loss", "val_loss"):
                if row.get(key) is not None:
                    row[key.replace("loss", "bpc")] = row[key] / math.log(2)

        nats = token_nats(model, test_ids)
        bpc = float(nats.mean() / math.log(2))
        test_units = units(test_part, vocab)
        if cfg.level == "word":  # the scored words: the first eval_tokens + 1 of the test part
            test_units = test_units[: len(test_ids)]
        base = fit_baselines(cfg, vocab, train_text, val_text, test_units, say)
        chars_per_token = _chars_per_token(test_text, vocab)
        key = "bpc" if cfg.level == "char" else "bits_per_word"
        seconds = time.perf_counter() - t_start
        gen = GenerateConfig(length=cfg.sample_length, seed=cfg.seed)
        samples = []
        for i, prompt in enumerate(DEFAULT_PROMPTS[:2] if cfg.data == "austen" else ("\n",)):
            if cfg.sample_length:
                samples.append(prompt + generate(model, vocab, prompt, gen, i))
        metrics: dict[str, Any] = {
            "app": APP,
            "data": cfg.data,
            "books": cfg.books or (list(AUSTEN_BOOKS) if cfg.data == "austen" else []),
            "level": cfg.level,
            "vocabulary_size": len(vocab),
            "split": {"train": len(train_text), "val": len(val_text), "test": len(test_text)},
            "scored_tokens": len(nats),
            "unit": f"bits per {cfg.level}",
            "test": {key: bpc, "nats_per_token": float(nats.mean())},
            "baselines": {k: {"name": BASELINE_NAMES[k], key: v} for k, v in base["bits"].items()},
            "baseline_details": base["details"],
            "untrained": {key: untrained_bpc},
            **report.goal(bpc, base["bits"], cfg.level),
            "chars_per_token": chars_per_token,
            "updates": trainer.state.updates,
            "tokens_trained": trainer.state.updates * k1 * cfg.batch_size,
            "threads": torch.get_num_threads(),
            **training_summary(model, trainer, train_seconds, seconds),
            "samples": samples,
            "history": history,
        }
        if cfg.level == "word":  # the honest conversion: bits per word x words / characters of the test part
            metrics["test"]["bits_per_char_equivalent"] = bpc / chars_per_token
            for v in metrics["baselines"].values():
                v["bits_per_char_equivalent"] = v[key] / chars_per_token
        if "feedforward_model" in base:  # `rnnkit evaluate` scores it again
            save_baseline_net(run, base["feedforward_model"], "lm")
        mixture = None
        if cfg.ngram_mix and "kneser_ney" in base and len(val_ids) > 2:
            mixture, metrics["mixture"] = _fit_mixture(
                cfg, model, vocab, base["kneser_ney"], val_part, val_ids, base["kneser_ney_log2"], nats
            )
            metrics["test"]["mixture"] = metrics["mixture"][key]
            if cfg.level == "word":
                metrics["mixture"]["bits_per_char_equivalent"] = metrics["mixture"][key] / chars_per_token
            digest = mixture.save(run.file(NGRAM_FILE), base["train_units"])
            run.write_json(NGRAM_INFO, {"sha256": digest})
            say(
                f"network + Kneser-Ney mixture: network share {mixture.weight:.2f} chosen on validation; "
                f"{metrics['mixture'][key]:.3f} {metrics['unit']}"
                + (f"; suggestions with share {mixture.suggest_weight:.2f}" if cfg.level == "word" else "")
            )
        if cfg.level == "word":
            metrics["next_word"] = _next_word_scores(
                cfg, model, vocab, test_ids, test_units, bpc, base, mixture, metrics.get("mixture")
            )
            say(
                "next word: top-1 / top-5 accuracy "
                + ", ".join(f"{k} {v['top1']:.3f} / {v['top5']:.3f}" for k, v in metrics["next_word"].items())
            )
        if cfg.level == "char":
            metrics["bpc_by_class"] = report.by_class(nats, test_part, train_text)
        save_run_files(run, model, cfg, APP, metrics)
        vocab.to_json(run.file("vocab.json"))
        run.write_text("samples.txt", "\n\n----\n\n".join(samples) + "\n")
        written = report.write_plots(run, cfg, history, metrics)
        run.commit({"app": APP, "name": name, "data": cfg.data})
    final = run.final
    mixed = metrics.get("mixture", {})
    rows = report.result_rows(cfg, bpc, base["bits"], seconds, mixed.get(key), mixed.get("weight"))
    return TrainResult(final, metrics, rows, samples, [final / p.name for p in written])


def _chars_per_token(text: str, vocab) -> float:
    """Characters of ``text`` per token: 1 for characters, characters / words at word level."""
    return 1.0 if vocab.level == "char" else len(text) / max(1, len(vocab.tokenize(text)))


def _fit_mixture(cfg, model, vocab, lm, val_part, val_ids, kn_test, test_nats) -> tuple[NgramMixture, dict]:
    """The network's share in its mixture with the n-gram ``lm``, chosen on the validation tokens; the
    mixture and its report (the share, every share's validation bits, the test bits from the two models'
    scores of the test tokens, ``kn_test`` log2 and ``test_nats``)."""
    key = "bpc" if cfg.level == "char" else "bits_per_word"
    val_units = units(val_part, vocab)
    if cfg.level == "word":
        val_units = val_units[: len(val_ids)]
    net_val = -token_nats(model, val_ids) / math.log(2)
    kn_val = lm.log2_probs(val_units)[scored_positions(len(val_units))]
    weight, by_weight = choose_weight(net_val, kn_val)
    mixture = NgramMixture(lm, weight, vocab)
    bits = float(-mix_log2(-test_nats / math.log(2), kn_test, weight).mean())
    report_ = {
        "name": "network + Kneser-Ney n-gram, linear interpolation (Mikolov et al. 2011)",
        "weight": weight,
        "ngram_order": lm.order,
        "validation_bits_by_weight": by_weight,
        key: bits,
    }
    if cfg.level == "word":  # next-word suggestions: the share with the most top-5 hits on validation
        ranks = mixture_next_ranks(
            model, mixture, val_ids, val_units, _never(vocab), cfg.next_word_positions, MIX_WEIGHTS
        )
        mixture.suggest_weight, top5 = choose_suggest_weight(ranks)
        report_["suggest_weight"] = mixture.suggest_weight
        report_["validation_top5_by_weight"] = top5
    return mixture, report_


def _never(vocab) -> list[int]:
    """Token ids never offered as a next word: ``<unk>`` (a keyboard cannot offer an unknown word), ``<pad>``."""
    return [vocab.unk_id, vocab.token_to_id(Vocabulary.PAD)]


def _next_word_scores(
    cfg, model, vocab, test_ids, test_units, bits, base, mixture=None, mixture_report=None
) -> dict[str, Any]:
    """Perplexity and top-1 / top-5 next-word accuracy of the model, the Kneser-Ney word n-gram and (when
    given) their mixture.

    Accuracy is counted on the first ``next_word_positions`` scored positions (the same ones for all).
    """
    never = _never(vocab)
    ranks = next_word_hits(model, test_ids, never)[: cfg.next_word_positions]
    out = {
        "rnnkit": {
            "perplexity": 2.0**bits,
            "top1": float((ranks < 1).mean()),
            "top5": float((ranks < 5).mean()),
            "positions": len(ranks),
        }
    }
    lm = base.get("kneser_ney")
    if lm is not None:
        pos = scored_positions(len(test_units))[: cfg.next_word_positions]
        kn = kneser_ney_ranks(lm, test_units, pos)
        out["kneser_ney"] = {
            "perplexity": 2.0 ** base["bits"]["kneser_ney"],
            "top1": float((kn < 1).mean()),
            "top5": float((kn < 5).mean()),
            "positions": len(kn),
        }
    if mixture is not None:
        mix = mixture_next_ranks(
            model, mixture, test_ids, test_units, never, cfg.next_word_positions, [mixture.suggest_weight]
        )[0]
        out["mixture"] = {
            "share": mixture.suggest_weight,
            "perplexity": 2.0 ** mixture_report["bits_per_word"],
            "top1": float((mix < 1).mean()),
            "top5": float((mix < 5).mean()),
            "positions": len(mix),
        }
    return out
