"""Text generation in ``rnnkit demo``: a character LSTM on Jane Austen vs Kneser-Ney n-grams."""

from __future__ import annotations

from dataclasses import replace

from rnnkit.apps.base import DemoStage
from rnnkit.train.distributed import usable_cores

DATA = "Jane Austen (Debian)"

DEMO_THREADS = min(2, usable_cores())
"""The LSTM's torch threads in ``rnnkit demo`` (unless ``--threads`` is given): two threads trained the
default model at 1.43 times one thread's characters per second on an idle 2-core machine (1.4-1.5 times
the updates in the 140 s), and Austen's held-out bpc went from 1.851 to 1.817 (docs/applications.md). More
threads were not measured."""


def fetch() -> str:
    from rnnkit.datasets import load_austen_books

    return f"{sum(len(b) for b in load_austen_books().values()):,} characters"


def stages(common: dict, scale: str) -> list[DemoStage]:
    from rnnkit.apps.textgen.config import TextGenConfig

    # the n-gram and feed-forward baselines take ~30-60 s of the stage; the LSTM keeps 140 s
    cfg = TextGenConfig(name="demo-austen", epochs=3, time_budget=140, ff_epochs=3, **common)
    if scale == "quick":
        cfg = replace(
            cfg,
            books=["northangerabbey"],
            max_steps=20,
            hidden_size=16,
            eval_tokens=2000,
            validate_every=10,
            sample_length=40,
            time_budget=0,
            ngram_max_order=5,
            ff_epochs=1,
        )
    elif scale == "full":
        cfg = replace(cfg, epochs=20, time_budget=1800)
    return [DemoStage("austen", "text generation: character-level LSTM on Jane Austen, truncated BPTT", cfg)]


def show(results: dict) -> list[str]:
    lines = ["Generated text (temperature 0.8), after the prompt:"]
    for s in results["austen"].samples:
        lines += ["  " + s.replace("\n", "\n  "), ""]
    return lines
