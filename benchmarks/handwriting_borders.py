"""Handwriting runs on line images with wide borders, as a scan or a photo gives them, read as they come and cut
to their ink first (the run's ``line_margin``; docs/handwriting.md, *Your own images*).

Each run's own test lines (made again from its config: cut already for a run with ``cut_lines``) are written as
dark ink on white at twice their size,
(i) as they are and (ii) on a white canvas with random borders (top and bottom 0.3-1.5 times the line's height,
left and right 0.1-1.0 times), and read by the run with and without the cut. Prints CER and exact lines.

    PYTHONPATH=src python benchmarks/handwriting_borders.py runs/demo-handwriting [RUN ...] [--lines 300]
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image


def as_scan(line: np.ndarray, rng: np.random.Generator | None) -> Image.Image:
    """A normalised line (bright ink) as dark ink on white at twice the size, on a bordered canvas with ``rng``."""
    ink = Image.fromarray((255 * (1.0 - line)).astype(np.uint8), mode="L")
    ink = ink.resize((2 * ink.width, 2 * ink.height), Image.BILINEAR)
    if rng is None:
        return ink
    h = ink.height
    top, bottom = (int(rng.uniform(0.3, 1.5) * h) for _ in range(2))
    left, right = (int(rng.uniform(0.1, 1.0) * h) for _ in range(2))
    canvas = Image.new("L", (ink.width + left + right, h + top + bottom), 255)
    canvas.paste(ink, (left, top))
    return canvas


def main(argv=None) -> None:
    from rnnkit.apps.handwriting import load
    from rnnkit.apps.handwriting.data import ink_margin
    from rnnkit.apps.handwriting.report import scores
    from rnnkit.apps.handwriting.train import _prepare

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument(
        "--lines", type=int, default=300, help="test lines per run (the first of its first test set)"
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(
        "| run | margin | images | CER as they come | CER cut to the ink | exact as they come | exact cut |"
    )
    print("|---|---|---|---|---|---|---|")
    for path in args.runs:
        reader = load(path)
        _, _, val, tests, *_ = _prepare(reader.config)
        if reader.line_margin is None:  # a run from before line_margin: its validation lines' median
            reader.line_margin = float(np.median([m for m in map(ink_margin, val[0][:500]) if m is not None]))
        margin = reader.line_margin
        lines, texts = next(iter(tests.values()))
        lines, texts = lines[: args.lines], texts[: args.lines]
        rng = np.random.default_rng(args.seed)
        for kind, images in (
            ("the test lines", [as_scan(x, None) for x in lines]),
            ("with borders", [as_scan(x, rng) for x in lines]),
        ):
            row = [
                scores(texts, [r["text"] for r in reader.predict(images, cut=cut)]) for cut in (False, True)
            ]
            print(
                f"| {reader.run.name} | {margin:.3f} | {kind} ({len(images)}) | {row[0]['cer']:.4f} | "
                f"{row[1]['cer']:.4f} | {row[0]['line_accuracy']:.3f} | {row[1]['line_accuracy']:.3f} |"
            )


if __name__ == "__main__":
    main()
