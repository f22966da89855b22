"""Text generation: a character-level (or word-level) recurrent language model trained with truncated BPTT.

Data: Jane Austen's six novels (``data="austen"``, about 4 million characters; ``books`` picks some) or a
user's UTF-8 text file. The text is cut in order: the first part trains, then validation, then the held-out
test part (the end of the text). The vocabulary comes from the training part; unseen characters map to
``<unk>``.

Training reads ``batch_size`` parallel streams of the training text, ``k1`` steps per update, carrying the
LSTM state from update to update (truncated BPTT, Williams & Peng's BPTT(k2; k1) with ``k2 >= k1`` steps of
backpropagation). The held-out score is bits per character (bpc): the mean negative log2-probability of
each next character, on the first ``eval_tokens`` characters of the test part, read as 16 streams with the
state carried. The baseline is a character-frequency (unigram) model of the training text.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit._errors import RnnkitError
from rnnkit.apps import plots
from rnnkit.apps._common import (
    EpochBatches,
    TimeBudget,
    build_trainer,
    finish_training,
    save_run_files,
    setup_torch,
    training_summary,
)
from rnnkit.apps.base import ResultRow, TrainResult, load_run_model, open_app_run
from rnnkit.apps.baselines import unigram_bits_per_char
from rnnkit.apps.rundir import RunBuilder
from rnnkit.config import GenerateConfig, TextGenConfig
from rnnkit.datasets import AUSTEN_BOOKS, Vocabulary, load_austen, read_text_file

__all__ = ["TextGenerator", "load", "load_text", "train"]

APP = "textgen"
GOAL_BPC = 2.0
EVAL_STREAMS = 16
DEFAULT_PROMPTS = ("It is a truth universally acknowledged", "Mr. Darcy", "\n")


def load_text(cfg: TextGenConfig) -> str:
    if cfg.data == "austen":
        unknown = [b for b in cfg.books if b not in AUSTEN_BOOKS]
        if unknown:
            raise RnnkitError(f"--books: expected names from {list(AUSTEN_BOOKS)}, got {unknown}")
        return load_austen(cfg.books or None)
    return read_text_file(cfg.data)


def split_text(text: str, cfg: TextGenConfig) -> tuple[str, str, str]:
    n = len(text)
    n_test = round(n * cfg.test_fraction)
    n_val = round(n * cfg.val_fraction)
    n_train = n - n_val - n_test
    if n_train < 2 or (cfg.test_fraction > 0 and n_test < 2) or (cfg.val_fraction > 0 and n_val < 2):
        raise RnnkitError(
            f"the text is too short to split: {n} characters give {n_train}/{n_val}/{n_test} "
            "train/validation/test characters; each part needs at least 2"
        )
    return text[:n_train], text[n_train : n_train + n_val], text[n_train + n_val :]


def streams(ids: torch.Tensor, num: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` of shape (num, L): ``ids`` cut into ``num`` contiguous streams."""
    m = len(ids) - 1
    length = m // num
    if length < 1:
        raise RnnkitError(f"the text is too short for {num} parallel streams ({len(ids)} tokens)")
    x = ids[: num * length].view(num, length)
    y = ids[1 : num * length + 1].view(num, length)
    return x, y


def stream_batches(
    x: torch.Tensor, y: torch.Tensor, seg: int, start: int = 0, stop: int | None = None
) -> list[dict]:
    stop = x.shape[1] if stop is None else stop
    return [
        {"inputs": x[:, a : min(a + seg, stop)], "targets": y[:, a : min(a + seg, stop)]}
        for a in range(start, stop, seg)
    ]


def build_model(cfg: TextGenConfig, vocab_size: int):
    from rnnkit.models import EncoderConfig, LanguageModel, LanguageModelConfig

    # with tie_weights and embedding_dim != hidden_size the model inserts a projection H -> E before the output
    encoder = EncoderConfig(
        cell=cfg.cell,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
    )
    return LanguageModel(
        LanguageModelConfig(
            vocab_size=vocab_size,
            embedding_dim=cfg.embedding_dim,
            encoder=encoder,
            tie_embeddings=cfg.tie_weights,
            dropout=cfg.dropout,
        )
    )


@torch.no_grad()
def token_nats(model, ids: torch.Tensor, num_streams: int = EVAL_STREAMS, chunk: int = 1000) -> np.ndarray:
    """Negative log-likelihood (nats) of every predicted token of ``ids``, read as parallel streams.

    Returns a flat array in text order (the ``len(ids) - 1`` tokens after the first, cut to a multiple of
    the number of streams).
    """
    model.eval()
    num = max(1, min(num_streams, (len(ids) - 1) // 2))
    x, y = streams(ids, num)
    state = None
    out = []
    for a in range(0, x.shape[1], chunk):
        logits, state = model(x[:, a : a + chunk], state)
        nll = F.cross_entropy(logits.transpose(1, 2), y[:, a : a + chunk], reduction="none")  # (B, T)
        out.append(nll)
    return torch.cat(out, 1).reshape(-1).double().numpy()


CHAR_CLASSES = ("lower-case letter", "capital letter", "space", "newline", "punctuation", "digit/other")


def char_class(ch: str) -> str:
    if ch.islower():
        return CHAR_CLASSES[0]
    if ch.isupper():
        return CHAR_CLASSES[1]
    if ch == " ":
        return CHAR_CLASSES[2]
    if ch == "\n":
        return CHAR_CLASSES[3]
    if not ch.isalnum() and not ch.isspace():
        return CHAR_CLASSES[4]
    return CHAR_CLASSES[5]


def generate(model, vocab: Vocabulary, prompt: str, gen: GenerateConfig, sample: int = 0) -> str:
    """Continue ``prompt`` with ``gen.length`` tokens (sampling with temperature / top-k / top-p)."""
    from rnnkit.models import DecodingConfig

    ids = vocab.encode(prompt) if prompt else []
    if not ids:
        ids = vocab.encode("\n") or [vocab.unk_id]
    strategy = "greedy" if gen.temperature == 0 else "sample"
    config = DecodingConfig(
        strategy=strategy,
        max_length=gen.length,
        temperature=gen.temperature or 1.0,
        top_k=gen.top_k,
        top_p=gen.top_p,
    )
    g = torch.Generator().manual_seed(gen.seed * 7919 + sample)
    out = model.generate(torch.tensor([ids]), config, generator=g)
    text = vocab.decode(out.to_lists()[0])
    return " " + text if vocab.level == "word" and prompt.strip() and text else text


# ------------------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------------------
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
        _, val_ids = _held_out(val_text, cfg.eval_tokens, vocab)
        test_part, test_ids = _held_out(test_text, cfg.eval_tokens, vocab)
        x, y = streams(train_ids, cfg.batch_size)
        # batches of k1 steps (one update each); with k2 > k1 longer batches let the windows overlap
        per_batch = 1 if cfg.k2 <= cfg.k1 else 10
        seg = cfg.k1 * per_batch
        eval_every = cfg.eval_every or math.ceil(x.shape[1] / seg)
        cols = eval_every * seg  # columns of the streams per (virtual) epoch, between two validations
        chunks_per_pass = math.ceil(x.shape[1] / cols)
        total_epochs = cfg.epochs * chunks_per_pass
        say(
            f"textgen: {cfg.data}: {len(text):,} {cfg.level}s ({len(train_ids):,} train / {len(val_text):,} val / "
            f"{len(test_text):,} test, scored on {len(test_ids):,}), vocabulary {len(vocab)}; {cfg.batch_size} streams "
            f"of {x.shape[1]:,}, BPTT k1={cfg.k1} k2={cfg.k2}"
        )
        seed_everything(cfg.seed)
        model = build_model(cfg, len(vocab))
        untrained_bpc = float(token_nats(model, test_ids[:5001]).mean() / math.log(2))

        budget = TimeBudget(cfg.time_budget)

        def epoch_batches(epoch: int):
            start = (epoch % chunks_per_pass) * cols
            return stream_batches(x, y, seg, start, min(start + cols, x.shape[1]))

        # batches per (virtual) epoch, on average: a pass over the streams may end with a shorter one
        train_batches = EpochBatches(
            epoch_batches, round(math.ceil(x.shape[1] / seg) / chunks_per_pass), budget
        )

        vx, vy = (
            streams(val_ids, max(1, min(EVAL_STREAMS, (len(val_ids) - 1) // 2)))
            if len(val_ids) > 2
            else (None, None)
        )
        val = stream_batches(vx, vy, 1000) if vx is not None else None
        max_batches = math.ceil(cfg.max_steps / per_batch) if cfg.max_steps else 0
        trainer = build_trainer(
            model,
            _with_epochs(cfg, total_epochs),
            run.path,
            monitor="val_loss",
            mode="min",
            grad_monitor_every=max(1, min(eval_every, (max_batches or eval_every * total_epochs) // 10)),
            tbptt_k1=cfg.k1,
            tbptt_k2=cfg.k2,
            stateful=True,
            max_steps=max_batches,
        )
        budget.trainer = trainer
        t_train = time.perf_counter()
        probe = {"inputs": x[:8, : cfg.k1], "targets": y[:8, : cfg.k1]}
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
            "goal": f"bpc <= {GOAL_BPC}",
            "goal_met": bpc <= GOAL_BPC,
            "updates": trainer.state.updates,
            "tokens_trained": trainer.state.updates * cfg.k1 * cfg.batch_size,
            **training_summary(model, budget, train_seconds, seconds),
            "samples": samples,
            "history": history,
        }
        if cfg.level == "char":
            metrics["bpc_by_class"] = _by_class(nats, test_part, train_text)
        save_run_files(run, model, cfg, APP, metrics)
        vocab.to_json(run.file("vocab.json"))
        run.write_text("samples.txt", "\n\n----\n\n".join(samples) + "\n")
        label = "Austen" if cfg.data == "austen" else Path(cfg.data).name
        written = [
            plots.plot_curves(
                history,
                run.file("curves.png"),
                "step",
                f"{label}: bits per {cfg.level} (train: running mean; validation: held-out)",
                left=["train_bpc", "val_bpc"],
                left_label=f"bits per {cfg.level}",
            )
        ]
        if cfg.level == "char":
            by = metrics["bpc_by_class"]
            written.append(
                plots.plot_bits_by_class(
                    {"rnnkit LSTM": by["model"], "unigram baseline": by["unigram"]},
                    by["counts"],
                    run.file("bpc_by_class.png"),
                    f"{label}, held-out text: bits per character by character class",
                )
            )
        run.commit({"app": APP, "name": name, "data": cfg.data})
    final = run.final
    task = f"text generation ({'Austen' if cfg.data == 'austen' else Path(cfg.data).name})"
    unit = "bpc" if cfg.level == "char" else "bits/word"
    rows = [ResultRow(task, unit, bpc, "unigram", base_bpc, f"<= {GOAL_BPC}", bpc <= GOAL_BPC, seconds)]
    return TrainResult(final, metrics, rows, samples, [final / p.name for p in written if p is not None])


def _with_epochs(cfg: TextGenConfig, epochs: int) -> TextGenConfig:
    from dataclasses import replace

    return replace(cfg, epochs=epochs)


def _held_out(text: str, limit: int, vocab: Vocabulary) -> tuple[str, torch.Tensor]:
    """The first ``limit + 1`` tokens of a held-out part (``limit`` = 0: all): its text and its ids."""
    if limit and vocab.level == "char":
        text = text[: limit + 1]  # characters are tokens: keep the text in step with the ids
    ids = vocab.encode(text)
    return text, torch.tensor(ids[: limit + 1] if limit else ids, dtype=torch.long)


def _by_class(nats: np.ndarray, test_part: str, train_text: str) -> dict[str, Any]:
    """Model and unigram bits per character for each character class of the scored test text."""
    from collections import Counter

    num = max(1, min(EVAL_STREAMS, (len(test_part) - 1) // 2))
    length = (len(test_part) - 1) // num
    # the scored targets are characters 1..L of each stream, in the order token_nats returns them
    chars = [test_part[b * length + 1 + t] for b in range(num) for t in range(length)]
    counts = Counter(train_text)
    total = len(train_text) + len(counts) + 1
    model_sum: dict[str, float] = {}
    uni_sum: dict[str, float] = {}
    n: dict[str, int] = {c: 0 for c in CHAR_CLASSES}
    for ch, v in zip(chars, nats):
        k = char_class(ch)
        n[k] += 1
        model_sum[k] = model_sum.get(k, 0.0) + float(v)
        uni_sum[k] = uni_sum.get(k, 0.0) - math.log((counts.get(ch, 0) + 1) / total)
    ln2 = math.log(2)
    return {
        "counts": {k: n[k] for k in CHAR_CLASSES if n[k]},
        "model": {k: model_sum[k] / n[k] / ln2 for k in CHAR_CLASSES if n[k]},
        "unigram": {k: uni_sum[k] / n[k] / ln2 for k in CHAR_CLASSES if n[k]},
    }


# ------------------------------------------------------------------------------------------------------------
# A saved run
# ------------------------------------------------------------------------------------------------------------
class TextGenerator:
    """A trained language-model run, loaded: ``generate(prompt)``, ``score(texts)`` and ``evaluate()``."""

    def __init__(self, path):
        from rnnkit.models import LanguageModel

        self.run, self.manifest, self.config = open_app_run(path, APP)
        self.model = load_run_model(self.run, LanguageModel)
        try:
            self.vocab = Vocabulary.from_json(self.run / "vocab.json")
        except RnnkitError as exc:
            raise RnnkitError(f"run {self.run.name}: damaged vocabulary: {exc}") from None
        if len(self.vocab) != self.model.config.vocab_size:
            raise RnnkitError(f"run {self.run.name}: vocab.json does not match the model (damaged run?)")

    def generate(self, prompt: str, gen: GenerateConfig) -> list[str]:
        """``gen.num_samples`` continuations of ``prompt`` (the prompt itself not included)."""
        return [generate(self.model, self.vocab, prompt, gen, i) for i in range(gen.num_samples)]

    def score(self, texts: list[str]) -> list[dict[str, Any]]:
        """Bits per token of each text under the model (every token after the first)."""
        out = []
        for text in texts:
            ids = self.vocab.encode(text)
            if len(ids) < 2:
                raise RnnkitError(f"expected texts of at least 2 {self.vocab.level}s to score, got {text!r}")
            with torch.no_grad():
                self.model.eval()
                logits, _ = self.model(torch.tensor([ids[:-1]]))
                nll = F.cross_entropy(logits[0], torch.tensor(ids[1:]), reduction="sum")
            unk = sum(1 for i in ids if i == self.vocab.unk_id)
            out.append(
                {
                    "text": text,
                    "bits_per_token": float(nll) / (len(ids) - 1) / math.log(2),
                    "tokens": len(ids),
                    "unknown": unk,
                }
            )
        return out

    def evaluate(self, data: str | None = None) -> dict[str, Any]:
        """Bits per token on the run's held-out test part, or on a whole text file."""
        cfg = self.config
        if data is None:
            _, _, test_text = split_text(load_text(cfg), cfg)
            _, ids = _held_out(test_text, cfg.eval_tokens, self.vocab)
            where = f"held-out test part of {cfg.data}"
        else:
            _, ids = _held_out(read_text_file(data), 0, self.vocab)
            where = Path(data).name
        if len(ids) < 3:
            raise RnnkitError(f"{where}: expected at least 3 {self.vocab.level}s to score, got {len(ids)}")
        nats = token_nats(self.model, ids)
        key = "bpc" if self.vocab.level == "char" else "bits_per_word"
        return {"data": f"{where} ({len(nats):,} tokens scored)", key: float(nats.mean() / math.log(2))}


def load(path) -> TextGenerator:
    return TextGenerator(path)
