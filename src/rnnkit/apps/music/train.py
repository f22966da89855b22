"""Training a music run: tunes, model, the shared trainer, the scores next to the baselines, the run files."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
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
from rnnkit.apps.music import report
from rnnkit.apps.music.config import GenerateMusicConfig, MusicConfig
from rnnkit.apps.music.data import APP, load_tunes, split_tunes_by_index
from rnnkit.apps.music.model import (
    bits,
    build_model,
    build_vocab,
    encode_tune,
    sample_tunes,
    tune_batches,
    tune_nats,
)
from rnnkit.apps.rundir import RunBuilder

__all__ = ["score_generation", "train"]

_SAMPLES_WRITTEN = 3  # tunes written to the run as ABC, MIDI and piano roll


def train(cfg: MusicConfig, overwrite: bool = False, say=print) -> TrainResult:
    """Train and evaluate the tune model and its baselines; write the run directory."""
    from rnnkit.train import seed_everything

    t_start = time.perf_counter()
    name = cfg.name or APP
    setup_torch(cfg.threads)
    with RunBuilder(cfg.runs_dir, name, overwrite) as run:
        tunes, skipped = load_tunes(cfg, say)
        train_t, val_t, test_t = split_tunes_by_index(tunes, cfg)
        vocab = build_vocab(train_t)
        enc = {
            k: [encode_tune(t["tokens"], vocab) for t in part]
            for k, part in (("train", train_t), ("val", val_t), ("test", test_t))
        }
        n_tokens = sum(len(e) - 1 for e in enc["train"])
        say(
            f"music: {cfg.data}: {len(tunes):,} tunes ({len(train_t):,} train / {len(val_t):,} val / {len(test_t):,} test; "
            f"{sum(skipped.values()):,} skipped), {n_tokens:,} training tokens, vocabulary {len(vocab)}"
        )
        seed_everything(cfg.seed)
        model = build_model(cfg, len(vocab), vocab.bos_id, vocab.eos_id)
        untrained = bits(tune_nats(model, enc["test"][:200]))
        val = tune_batches(enc["val"], 64) if enc["val"] else None
        per_epoch = math.ceil(len(enc["train"]) / cfg.batch_size)

        def make(epoch: int):
            return tune_batches(
                enc["train"], cfg.batch_size, torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
            )

        trainer = build_trainer(model, cfg, run.path, grad_monitor_every=max(1, per_epoch * cfg.epochs // 10))
        t_train = time.perf_counter()
        history = trainer.fit(EpochBatches(make, per_epoch), val)
        finish_training(trainer, run.path)
        train_seconds = time.perf_counter() - t_train

        nats = tune_nats(model, enc["test"])
        test_bits = bits(nats)
        toks = {
            k: [t["tokens"] for t in part]
            for k, part in (("train", train_t), ("val", val_t), ("test", test_t))
        }
        # a run without validation tunes chooses the n-gram order and stops the feed-forward network on training ones
        val_toks = toks["val"] or toks["train"][:50]
        ngram = report.ngram_bits(toks["train"], val_toks, toks["test"], cfg.ngram_max_order)
        uni = report.unigram_bits(toks["train"], toks["test"])
        ff = ff_lm = None
        if cfg.ff_epochs:
            ff, ff_lm = report.feedforward_bits(
                toks["train"], val_toks, toks["test"], cfg.ff_context, cfg.ff_epochs, cfg.seed
            )
        say(
            f"music: held-out bits/token {test_bits:.3f} (Kneser-Ney {ngram['order']}-gram {ngram['bits']:.3f}, "
            + (f"feed-forward {ff['bits']:.3f}, " if ff else "")
            + f"unigram {uni:.3f})"
        )

        generated = score_generation(model, vocab, cfg, toks["test"], say) if cfg.eval_samples else None
        seconds = time.perf_counter() - t_start
        metrics: dict[str, Any] = {
            "app": APP,
            "data": cfg.data,
            "collections": cfg.collections
            or (["essen", "oneills", "ryans", "airds"] if cfg.data == "folk" else []),
            "transposition": "every tune moved to tonic C in its own mode by a diatonic shift of at most 3 letters"
            + (" (the chorales' keys: music21's key estimate)" if cfg.data == "chorales" else ""),
            "tunes": {"train": len(train_t), "val": len(val_t), "test": len(test_t)},
            "skipped": dict(skipped.most_common()),
            "vocabulary_size": len(vocab),
            "training_tokens": n_tokens,
            "scored_tokens": len(nats),
            "test": {"bits_per_token": test_bits, "nats_per_token": float(nats.mean())},
            "baselines": {"kneser_ney": ngram, "feedforward": ff, "unigram": {"bits": uni}},
            "untrained": {"bits_per_token": untrained},
            "generated": generated,
            **training_summary(model, trainer, train_seconds, seconds),
            "history": history,
        }
        save_run_files(run, model, cfg, APP, metrics)
        vocab.to_json(run.file("vocab.json"))
        if ff_lm is not None:  # `rnnkit evaluate` scores it again
            save_baseline_net(run, ff_lm, "lm")
        # and the n-gram, refitted from the saved stream: evaluate --data needs no training data
        digest = report.save_ngram(
            run.file(report.NGRAM_FILE), toks["train"], ngram["order"], cfg.ngram_max_order
        )
        run.write_json("ngram.json", {"sha256": digest})
        samples = []
        if generated:
            from rnnkit.apps.music.use import write_tunes

            shown = generated.pop("_tunes")[:_SAMPLES_WRITTEN]
            written = write_tunes(shown, run.path / "samples", title="sample")
            for p in written:
                run.file(str(p.relative_to(run.path)))
            samples = [p.read_text(encoding="utf-8") for p in written if p.suffix == ".abc"]
            run.write_json("metrics.json", metrics)
        plots = report.write_plots(run, cfg, history)
        run.commit({"app": APP, "name": name, "data": cfg.data})
    final = run.final
    rows = report.result_rows(cfg, metrics, seconds)
    return TrainResult(final, metrics, rows, samples, [final / p.name for p in plots])


def score_generation(model, vocab, cfg: MusicConfig, test_tunes: list[list[str]], say) -> dict[str, Any]:
    """Sample ``cfg.eval_samples`` tunes with the held-out tunes' meters and keys; validity and histograms."""
    rng = np.random.default_rng(cfg.seed)
    heads = [test_tunes[i][:2] for i in rng.integers(0, len(test_tunes), cfg.eval_samples)]
    out: dict[str, Any] = {}
    for constrained in (True, False):
        gen = GenerateMusicConfig(
            temperature=cfg.eval_temperature,
            constrained=constrained,
            max_length=cfg.eval_max_length,
            seed=cfg.seed,
        )
        tunes = []
        for a in range(0, len(heads), 50):
            tunes += sample_tunes(
                model, vocab, heads[a : a + 50], gen, seed_offset=a + (0 if constrained else 1)
            )
        checks = [
            report.check_tune(t)
            if len(t) < gen.max_length + 2
            else {"valid": False, "music21": False, "abc2midi": None, "problem": "no <eos> within max_length"}
            for t in tunes
        ]
        share = float(np.mean([c["valid"] for c in checks]))
        if constrained:
            a2m = [c["abc2midi"] for c in checks if c["abc2midi"] is not None]
            problems = [c["problem"] for c in checks if c["problem"]]
            half = len(test_tunes) // 2
            out.update(
                {
                    "samples": len(tunes),
                    "temperature": cfg.eval_temperature,
                    "valid_share": share,
                    "music21_share": float(np.mean([c["music21"] for c in checks])),
                    "abc2midi_share": float(np.mean(a2m)) if a2m else None,
                    "problems": problems[:10],
                    "mean_tokens": float(np.mean([len(t) for t in tunes])),
                    "distance_to_held_out": report.histogram_distances(tunes, test_tunes),
                    "held_out_half_vs_half": report.histogram_distances(test_tunes[:half], test_tunes[half:]),
                    "_tunes": tunes,
                }
            )
        else:
            out["unconstrained_valid_share"] = share
            out["unconstrained_distance_to_held_out"] = report.histogram_distances(tunes, test_tunes)
    say(
        f"music: {out['valid_share']:.0%} of {out['samples']} generated tunes valid with the bar grammar, "
        f"{out['unconstrained_valid_share']:.0%} without"
    )
    return out
