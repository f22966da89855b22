"""The handwriting run's report: CER and WER (jiwer) of the CRNN next to the baselines on the same lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnkit.apps.base import ResultRow

__all__ = ["draw_samples", "result_rows", "samples", "scores"]

GOALS = {"handwriting (digits)": 0.03, "handwriting (fonts, held-out fonts)": 0.10}  # the CER goals


def scores(refs: list[str], hyps: list[str]) -> dict[str, float]:
    """Character and word error rates (jiwer) and the share of lines read exactly."""
    import jiwer

    return {
        "cer": float(jiwer.cer(refs, hyps)),
        "wer": float(jiwer.wer(refs, hyps)),
        "line_accuracy": float(np.mean([r == h for r, h in zip(refs, hyps)])),
    }


def result_rows(
    task: str, model: dict[str, float], baselines: dict[str, dict], seconds: float
) -> list[ResultRow]:
    """The CRNN's CER next to the strongest baseline (goal: below it), and the issue's CER goal if any."""
    scored = {name: b["cer"] for name, b in baselines.items() if b is not None}
    rows = []
    if scored:
        best = min(scored, key=scored.get)
        rows.append(
            ResultRow(
                task,
                "CER",
                model["cer"],
                best,
                scored[best],
                "< baseline",
                model["cer"] < scored[best],
                seconds,
                scored,
            )
        )
    if task in GOALS:
        goal = GOALS[task]
        rows.append(
            ResultRow(
                task, "CER", model["cer"], "goal", goal, f"<= {goal}", model["cer"] <= goal, seconds, scored
            )
        )
    return rows


def samples(refs: list[str], hyps: dict[str, list[str]], k: int = 8) -> list[str]:
    """A few test lines: the truth and each reader's text, for people."""
    out = []
    for i in range(min(k, len(refs))):
        parts = "  ".join(f"{name} {h[i]!r}" for name, h in hyps.items())
        out.append(f"true {refs[i]!r}  {parts}")
    return out


def draw_samples(lines, refs, hyps, frame_labels, alphabet: str, path: Path, k: int = 8) -> Path | None:
    """A picture of test lines with the CRNN's reading; each emitted character is drawn under the frame
    where its CTC path first took it (``frame_labels``: the winning class of each frame, per line)."""
    from PIL import Image, ImageDraw

    k = min(k, len(lines))
    if k == 0:
        return None
    scale = 2
    width = max(line.shape[1] for line in lines[:k]) * scale + 8
    row_h = lines[0].shape[0] * scale + 34
    canvas = Image.new("L", (width, row_h * k), 255)
    draw = ImageDraw.Draw(canvas)
    for i in range(k):
        y0 = i * row_h
        img = Image.fromarray((255 - lines[i] * 255).clip(0, 255).astype(np.uint8))
        canvas.paste(img.resize((img.width * scale, img.height * scale)), (4, y0))
        y1 = y0 + lines[i].shape[0] * scale
        best = frame_labels[i]
        for t, c in enumerate(best):
            if c != 0 and (t == 0 or best[t - 1] != c):  # a new label starts at frame t
                x = 4 + (4 * t + 2) * scale  # the centre of the frame's 4 pixel columns
                draw.line([(x, y1), (x, y1 + 3)], fill=0)
                draw.text((x - 3, y1 + 3), alphabet[c - 1], fill=0)
        mark = "correct" if refs[i] == hyps[i] else f"true {refs[i]}"
        draw.text((4, y1 + 17), f"read {hyps[i]}   ({mark})", fill=90)
    canvas.save(path)
    return path
