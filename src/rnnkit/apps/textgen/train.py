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
    save_run_files,
    setup_torch,
    training_summary,
)
from rnnkit.apps.base import TrainResult
from rnnkit.apps.baselines import unigram_bits_per_char
from rnnkit.apps.rundir import RunBuilder
from rnnkit.apps.textgen import report
from rnnkit.apps.textgen.config import GenerateConfig, TextGenConfig
from rnnkit.apps.textgen.data import (
    APP,
    EVAL_STREAMS,
    held_out,
    load_text,
    split_text,
    stream_batches,
    streams,
)
from rnnkit.apps.textgen.model import build_model, generate, token_nats
from rnnkit.datasets import AUSTEN_BOOKS, Vocabulary

__all__ = ["DEFAULT_PROMPTS", "train"]

DEFAULT_PROMPTS = ("It is a truth universally acknowledged", "Mr. Darcy", "\n")


def train(cfg: TextGenConfig, overwrite: bool = False, say=print) -> TrainResult:
    """Train and evaluate the language model and the unigram baseline; write the run."""
    from rnnkit.train import seed_everything

    t_start = time.perf_counter()
    name = cfg.name or (cfg.data if cfg.data == "austen" else APP)
    setup_torch(cfg.threads)
    with RunBuilder(cfg.runs_dir, name, overwrite) as run:
        text = load_text(cfg)
        train_text, val_text, test_text = split_text(text, cfg)
        vocab = Vocabulary.build([train_text], level=cfg.level, min_freq=cfg.min_freq)
        train_ids = torch.tensor(vocab.encode(train_text))
        _, val_ids = held_out(val_text, cfg.eval_tokens, vocab)
        test_part, test_ids = held_out(test_text, cfg.eval_tokens, vocab)
        x, y = streams(train_ids, cfg.batch_size)
        k1, k2 = cfg.tbptt_k1, cfg.tbptt_k2
        # steps of k1 columns (one update each); with k2 > k1 longer steps let the windows overlap
        seg = k1 * (1 if k2 <= k1 else 10)
        steps_per_pass = math.ceil(x.shape[1] / seg)
        say(
            f"textgen: {cfg.data}: {len(text):,} {cfg.level}s ({len(train_ids):,} train / {len(val_text):,} val / "
            f"{len(test_text):,} test, scored on {len(test_ids):,}), vocabulary {len(vocab)}; {cfg.batch_size} streams "
            f"of {x.shape[1]:,}, BPTT k1={k1} k2={k2}"
        )
        seed_everything(cfg.seed)
        model = build_model(cfg, len(vocab))
        untrained_bpc = float(token_nats(model, test_ids[:5001]).mean() / math.log(2))

        vx, vy = (
            streams(val_ids, max(1, min(EVAL_STREAMS, (len(val_ids) - 1) // 2)))
            if len(val_ids) > 2
            else (None, None)
        )
        val = stream_batches(vx, vy, 1000) if vx is not None else None
        total = cfg.max_steps or steps_per_pass * cfg.epochs
        trainer = build_trainer(
            model,
            cfg,
            run.path,
            grad_monitor_every=max(1, min(cfg.validate_every or steps_per_pass, total // 10)),
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
        base_bpc = unigram_bits_per_char(train_text, test_part) if cfg.level == "char" else float("nan")
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
            "test": {"bpc": bpc, "nats_per_token": float(nats.mean())},
            "baseline": {"name": "unigram character frequencies", "bpc": base_bpc},
            "untrained": {"bpc": untrained_bpc},
            "goal": f"bpc <= {report.GOAL_BPC}",
            "goal_met": bpc <= report.GOAL_BPC,
            "updates": trainer.state.updates,
            "tokens_trained": trainer.state.updates * k1 * cfg.batch_size,
            **training_summary(model, trainer, train_seconds, seconds),
            "samples": samples,
            "history": history,
        }
        if cfg.level == "char":
            metrics["bpc_by_class"] = report.by_class(nats, test_part, train_text)
        save_run_files(run, model, cfg, APP, metrics)
        vocab.to_json(run.file("vocab.json"))
        run.write_text("samples.txt", "\n\n----\n\n".join(samples) + "\n")
        written = report.write_plots(run, cfg, history, metrics)
        run.commit({"app": APP, "name": name, "data": cfg.data})
    final = run.final
    rows = report.result_rows(cfg, bpc, base_bpc, seconds)
    return TrainResult(final, metrics, rows, samples, [final / p.name for p in written])
