"""The language model's report: bits per token next to the baselines (the goal judged against the strongest),
bits per character by character class, the plots and the results table."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.apps import plots
from rnnkit.apps.base import ResultRow, mix_task
from rnnkit.apps.textgen.config import TextGenConfig
from rnnkit.apps.textgen.data import scored_positions

__all__ = [
    "CHAR_CLASSES",
    "GOAL_BPC",
    "by_class",
    "char_class",
    "goal",
    "result_rows",
    "strongest",
    "write_plots",
]

GOAL_BPC = 2.0
"""The absolute goal used when no baseline but the unigram was fitted (``baselines = false``)."""

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


def by_class(nats: np.ndarray, test_part: str, train_text: str) -> dict[str, Any]:
    """Model and unigram bits per character for each character class of the scored test text."""
    from collections import Counter

    chars = [test_part[p] for p in scored_positions(len(test_part))]  # in the order token_nats returns them
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


def label_of(cfg: TextGenConfig) -> str:
    return "Austen" if cfg.data == "austen" else Path(cfg.data).name


def write_plots(run, cfg: TextGenConfig, history, metrics) -> list[Path]:
    label = label_of(cfg)
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
    return [p for p in written if p is not None]


def strongest(baselines: dict[str, float]) -> tuple[str, float]:
    """The baseline with the fewest bits per token (the unigram only when no other was fitted)."""
    name = min(baselines, key=baselines.get)
    return name, baselines[name]


def goal(bits: float, baselines: dict[str, float], level: str = "char") -> dict[str, Any]:
    """The goal (fewer bits than the strongest baseline; <= GOAL_BPC when only the unigram of characters ran)
    and whether it is met."""
    name, value = strongest(baselines)
    if name == "unigram" and level == "char":
        return {"goal": f"bits <= {GOAL_BPC}", "goal_met": bits <= GOAL_BPC}
    return {"goal": f"bits < {name} ({value:.4f})", "goal_met": bits < value}


def result_rows(
    cfg: TextGenConfig,
    bits: float,
    baselines: dict[str, float],
    seconds: float,
    mixture: float | None = None,
    network_share: float | None = None,
) -> list[ResultRow]:
    """The network's row; with ``mixture`` (its bits interpolated with the n-gram, the network's weight
    ``network_share``) a second row for that."""
    task = f"text generation ({label_of(cfg)})"
    unit = "bpc" if cfg.level == "char" else "bits/word"
    name, value = strongest(baselines)
    g = goal(bits, baselines, cfg.level)
    rows = [ResultRow(task, unit, bits, name, value, g["goal"], g["goal_met"], seconds, dict(baselines))]
    if mixture is not None:
        g = goal(mixture, baselines, cfg.level)
        rows.append(
            ResultRow(
                mix_task(task, "n-gram", network_share),
                unit,
                mixture,
                name,
                value,
                g["goal"],
                g["goal_met"],
                seconds,
                dict(baselines),
            )
        )
    return rows
