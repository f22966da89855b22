"""The handwriting run's report: CER and WER (jiwer) of the CRNN next to the baselines on the same lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnkit.apps.base import ResultRow

__all__ = ["ctc_align", "draw_samples", "result_rows", "samples", "scores"]

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
    task: str, model: dict[str, float], baselines: dict[str, dict], seconds: float, metric: str = "CER"
) -> list[ResultRow]:
    """The CRNN's CER next to the strongest baseline (goal: below it), and the issue's CER goal if any;
    ``metric`` names the reading (``CER``: the plain beam search)."""
    scored = {name: b["cer"] for name, b in baselines.items() if b is not None}
    rows = []
    if scored:
        best = min(scored, key=scored.get)
        rows.append(
            ResultRow(
                task,
                metric,
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
                task, metric, model["cer"], "goal", goal, f"<= {goal}", model["cer"] <= goal, seconds, scored
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


def ctc_align(log_probs: np.ndarray, labels: list[int], blank: int = 0) -> list[tuple[int, int]]:
    """The CTC alignment of ``labels`` to the frames: for each label, the first and last frame of the most
    probable path (Viterbi over the blank-extended label sequence) that spells exactly ``labels``.

    ``log_probs``: ``(T, C)``. Returns one ``(first, last)`` frame pair per label, in order (none when the
    frames are too few to spell ``labels``).
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    T = lp.shape[0]
    ext = [blank]
    for c in labels:
        ext += [c, blank]
    S = len(ext)
    score = np.full((T, S), -np.inf)
    back = np.zeros((T, S), np.int64)
    score[0, 0] = lp[0, blank]
    if S > 1:
        score[0, 1] = lp[0, ext[1]]
    for t in range(1, T):
        for s in range(S):
            best, arg = score[t - 1, s], s
            if s >= 1 and score[t - 1, s - 1] > best:
                best, arg = score[t - 1, s - 1], s - 1
            # skip the blank between two different labels
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2] and score[t - 1, s - 2] > best:
                best, arg = score[t - 1, s - 2], s - 2
            score[t, s], back[t, s] = best + lp[t, ext[s]], arg
    s = S - 1 if S == 1 or score[T - 1, S - 1] >= score[T - 1, S - 2] else S - 2
    if not np.isfinite(score[T - 1, s]):  # too few frames to spell the labels
        return []
    states = [s]
    for t in range(T - 1, 0, -1):
        s = back[t, s]
        states.append(s)
    states.reverse()
    spans: dict[int, list[int]] = {}
    for t, s in enumerate(states):
        if s % 2 == 1:  # an odd state is label (s - 1) // 2
            spans.setdefault((s - 1) // 2, [t, t])[1] = t
    return [(spans[k][0], spans[k][1]) for k in range(len(labels))]


def draw_samples(lines, refs, hyps, log_probs, alphabet: str, path: Path, k: int = 8) -> Path | None:
    """A picture of test lines with the CRNN's reading drawn over each: every character of the reading
    sits on a coloured band over the pixel columns of the frames its CTC alignment
    (:func:`ctc_align` of the reading) gives it, so misplaced or missing characters are easy to see.
    ``log_probs``: per line, the ``(frames, classes)`` log-probabilities."""
    from PIL import Image, ImageDraw

    k = min(k, len(lines))
    if k == 0:
        return None
    scale = 2
    width = max(line.shape[1] for line in lines[:k]) * scale + 8
    row_h = lines[0].shape[0] * scale + 34
    canvas = Image.new("RGB", (width, row_h * k), (255, 255, 255))
    colours = ((70, 130, 230), (240, 140, 30))
    for i in range(k):
        y0 = i * row_h + 14
        grey = Image.fromarray((255 - lines[i] * 255).clip(0, 255).astype(np.uint8))
        grey = grey.resize((grey.width * scale, grey.height * scale))
        band = Image.new("RGB", grey.size, (255, 255, 255))
        draw = ImageDraw.Draw(band)
        labels = [alphabet.index(c) + 1 for c in hyps[i]]
        spans = ctc_align(log_probs[i], labels)
        marks = []
        for j, (a, b) in enumerate(spans):
            x0, x1 = 4 * a * scale, 4 * (b + 1) * scale - 1
            draw.rectangle([x0, 0, x1, band.height], fill=colours[j % 2])
            marks.append(((x0 + x1) // 2, hyps[i][j], colours[j % 2]))
        # ink stays dark; the band shows through the paper, 35 % strong
        mixed = Image.blend(Image.new("RGB", grey.size, (255, 255, 255)), band, 0.35)
        line_rgb = Image.fromarray(
            (np.asarray(mixed, np.float32) * (np.asarray(grey, np.float32)[..., None] / 255)).astype(np.uint8)
        )
        canvas.paste(line_rgb, (4, y0))
        top = ImageDraw.Draw(canvas)
        for x, ch, colour in marks:
            top.text((4 + x - 3, y0 - 13), ch, fill=tuple(c // 2 for c in colour))
        mark = "correct" if refs[i] == hyps[i] else f"true {refs[i]!r}"
        top.text((4, y0 + grey.height + 2), f"read {hyps[i]!r}   ({mark})", fill=(60, 60, 60))
    canvas.save(path)
    return path
