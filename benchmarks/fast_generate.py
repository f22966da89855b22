"""Text generation speed: the Python decoding loop vs the compiled step-and-sample loop (rnnkit.models.fastgen).

The model has the demo's size (``rnnkit demo``'s text model: a character LSTM, 64-dim embeddings, 256 hidden
units, one layer) over a 90-character vocabulary; it is untrained, which changes nothing in the time a step
takes. One thread (``torch.set_num_threads(1)``), one run, one process: the two paths alternate repetition by
repetition so that machine noise hits both alike, and medians are reported. Every repetition is timed both by
the wall clock and by this process's CPU time (on a shared machine the CPU time is the steadier of the two).

Reported:

* where the Python path's time per step goes (each piece of one step timed on its own);
* characters per second of one stream, Python vs fast, for greedy, the CLI's default sampling (temperature
  0.8) and temperature + top-k + top-p, with the ratios (issue 13's goal: >= 20,000 chars/s);
* aggregate characters per second of 1, 2, 4, 8 and 16 concurrent streams advanced together by one
  ``StreamBatch`` (each stream with its own generator), against the single-stream loop.

    .venv/bin/python benchmarks/fast_generate.py [--chars 3000] [--reps 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import string
import time

import torch

from rnnkit.apps.textgen.config import GenerateConfig, TextGenConfig
from rnnkit.apps.textgen.model import build_model, generate
from rnnkit.datasets import Vocabulary
from rnnkit.models.decoding import sample_tokens
from rnnkit.models.fastgen import FastGenerator, StreamBatch, fast_support, prompt_state

SETTINGS = {  # name: (temperature, top_k, top_p)
    "greedy": (0.0, 0, 1.0),
    "temperature 0.8 (CLI default)": (0.8, 0, 1.0),
    "temperature 0.8, top-k 20, top-p 0.9": (0.8, 20, 0.9),
}
PROMPT = "It is a truth universally acknowledged"


def _clock(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one call."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def _model():
    cfg = TextGenConfig()  # the demo's defaults: lstm, embedding_dim 64, hidden_size 256, 1 layer
    torch.manual_seed(0)
    vocab = Vocabulary(list(string.printable[:88]), level="char")  # 90 ids with <pad>, <unk>
    return build_model(cfg, len(vocab)).eval(), vocab, cfg


@torch.no_grad()
def python_breakdown(model, reps: int = 2000) -> dict[str, float]:
    """µs per step of each piece of the Python path's step, timed on its own (CPU time)."""
    tok = torch.tensor([5])
    state, _ = prompt_state(model, [5, 6, 7])
    g = torch.Generator().manual_seed(0)
    x = model.embedding(tok)
    y, _ = model.encoder.step(x, state)
    lp = model._logits(y).log_softmax(-1)

    def per_step(fn) -> float:
        for _ in range(50):
            fn()
        c = time.process_time()
        for _ in range(reps):
            fn()
        return (time.process_time() - c) / reps * 1e6

    parts = {
        "embedding lookup": per_step(lambda: model.embedding(tok)),
        "recurrent layer step (input projection, W_hh h, gates, state checks)": per_step(
            lambda: model.encoder.step(x, state)
        ),
        "output layer + log-softmax": per_step(lambda: model._logits(y).log_softmax(-1)),
        "sampling (filter_logits, softmax, torch.multinomial)": per_step(
            lambda: sample_tokens(lp, 0.8, 0, 1.0, g)
        ),
    }
    return parts


def one_stream(model, vocab, chars: int, reps: int) -> dict:
    fast = FastGenerator(model)
    out = {}
    for name, (t, k, p) in SETTINGS.items():
        gen = GenerateConfig(length=chars, temperature=t, top_k=k, top_p=p, seed=1)
        slow_text = generate(model, vocab, PROMPT, gen, backend="python")
        fast_text = generate(model, vocab, PROMPT, gen, fast=fast)
        same = slow_text == fast_text
        times = {"python": [], "fast": []}
        for _ in range(reps):
            times["python"].append(_clock(lambda g=gen: generate(model, vocab, PROMPT, g, backend="python")))
            times["fast"].append(_clock(lambda g=gen: generate(model, vocab, PROMPT, g, fast=fast)))
        row = {"same_text": same}
        for side, ts in times.items():
            wall = statistics.median(w for w, _ in ts)
            cpu = statistics.median(c for _, c in ts)
            row[side] = {
                "chars_per_s_wall": chars / wall,
                "chars_per_s_cpu": chars / cpu,
                "us_per_char_cpu": cpu / chars * 1e6,
            }
        for clock in ("wall", "cpu"):
            key = f"chars_per_s_{clock}"
            row[f"ratio_{clock}"] = row["fast"][key] / row["python"][key]
        out[name] = row
    return out


def batched(model, steps: int, reps: int, sizes=(1, 2, 4, 8, 16)) -> dict:
    out = {}
    t, k, p = SETTINGS["temperature 0.8 (CLI default)"]
    for n in sizes:
        batch = StreamBatch(model)
        for i in range(n):
            batch.add([5 + i, 6, 7], t, k, p, torch.Generator().manual_seed(i))
        for _ in range(20):
            batch.step()

        def run(batch=batch):
            for _ in range(steps):
                batch.step()

        ts = [_clock(run) for _ in range(reps)]
        wall = statistics.median(w for w, _ in ts)
        cpu = statistics.median(c for _, c in ts)
        out[n] = {
            "aggregate_chars_per_s_wall": n * steps / wall,
            "aggregate_chars_per_s_cpu": n * steps / cpu,
            "us_per_step_cpu": cpu / steps * 1e6,
        }
    base = out[sizes[0]]["aggregate_chars_per_s_cpu"]
    for n in sizes:
        out[n]["vs_1_stream_cpu"] = out[n]["aggregate_chars_per_s_cpu"] / base
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=3000, help="characters per timed generation")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, vocab, cfg = _model()
    ok, reason = fast_support(model)
    if not ok:
        raise SystemExit(f"the fast loop is not available here: {reason}")
    c = time.process_time()
    FastGenerator(model)
    setup_ms = (time.process_time() - c) * 1e3
    print(f"model: {cfg.cell} E={cfg.embedding_dim} H={cfg.hidden_size} V={len(vocab)}; fast loop: {reason}")
    print(f"FastGenerator set-up (table of input projections, packed weights): {setup_ms:.1f} ms CPU")

    single = one_stream(model, vocab, args.chars, args.reps)
    parts = python_breakdown(model)
    whole = single["temperature 0.8 (CLI default)"]["python"]["us_per_char_cpu"]
    parts[
        "the rest: the decoding loop's bookkeeping per step (score gather, token where/cat, done checks)"
    ] = whole - sum(parts.values())
    print(
        f"\nPython path at the CLI default: {whole:.1f} µs per step (CPU time), by piece (each timed on its own):"
    )
    for name, us in parts.items():
        print(f"  {us:7.1f}  {name}")

    print(
        f"\none stream, {args.chars} chars, median of {args.reps} (chars/s; CPU time, wall clock in brackets):"
    )
    print(f"  {'settings':40s} {'python':>16s} {'fast':>18s} {'ratio':>14s}  same text")
    for name, r in single.items():
        py, fa = r["python"], r["fast"]
        print(
            f"  {name:40s} {py['chars_per_s_cpu']:7.0f} ({py['chars_per_s_wall']:6.0f})"
            f" {fa['chars_per_s_cpu']:8.0f} ({fa['chars_per_s_wall']:7.0f})"
            f" {r['ratio_cpu']:6.1f}x ({r['ratio_wall']:4.1f}x)  {r['same_text']}"
        )

    multi = batched(model, max(100, args.chars // 10), args.reps)
    print("\nconcurrent streams in one StreamBatch (temperature 0.8, one generator each):")
    print(f"  {'streams':>7s} {'chars/s (CPU)':>14s} {'(wall)':>9s} {'µs/step':>8s} {'vs 1':>6s}")
    for n, r in multi.items():
        print(
            f"  {n:7d} {r['aggregate_chars_per_s_cpu']:14.0f} {r['aggregate_chars_per_s_wall']:9.0f}"
            f" {r['us_per_step_cpu']:8.1f} {r['vs_1_stream_cpu']:5.1f}x"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"setup_ms": setup_ms, "python_breakdown_us": parts, "one_stream": single, "batched": multi},
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
