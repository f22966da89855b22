"""A captioning run reading pictures unlike the ones it learnt from, as a user has them, read as they come and
as the run reads them by default (docs/caption.md, *Your own pictures*).

Digit-string runs: the run's test strings (or validation strings, ``--part val``) are made again from its config
at the canvas's own shape (28 rows, not squeezed to the run's size) and saved as PNG files (i) as they are drawn
(light ink on black) and (ii) as dark ink on white at twice the size on a white canvas with random borders (the
handwriting benchmark's ``as_scan``); each is read with ``cut`` False, None (the default) and True.

Emoji runs: the run's test pictures at four times their size (Lanczos) (i) as they are and (ii) with 20-200 px of
white margin on each side; each is read with ``cut`` False (scaled as it comes) and None (framed, the default).

Every picture goes through :meth:`Captioner.read_images` and is captioned with the run's beam. Prints BLEU-4, chrF
and exact match.

    PYTHONPATH=src python benchmarks/caption_pictures.py runs/demo-caption-digits [--part val]
    PYTHONPATH=src python benchmarks/caption_pictures.py runs/demo-caption-emoji
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from handwriting_borders import as_scan  # noqa: E402


def _digit_pictures(cap, part: str, rng) -> tuple[list, list, list]:
    from rnnkit.apps.caption.data import DIGIT_ROWS, _canvas_width, load_data, split

    cfg = cap.config
    natural = dataclasses.replace(cfg, image_height=DIGIT_ROWS, image_width=_canvas_width(cfg.max_digits))
    data = load_data(natural)
    _, val, test = split(natural, data)
    chosen = test if part == "test" else val
    kinds = [
        ("as the run draws them", [Image.fromarray(data.images[i]) for i in chosen]),
        ("dark on white, 2x, borders", [as_scan(data.images[i][:, :, 0] / 255.0, rng) for i in chosen]),
    ]
    return kinds, [data.refs[i] for i in chosen], [(False, "as they come"), (None, "default"), (True, "cut")]


def _emoji_pictures(cap, part: str, rng) -> tuple[list, list, list]:
    from rnnkit.apps.caption.data import load_data, split

    data = load_data(cap.config)
    _, val, test = split(cap.config, data)
    chosen = test if part == "test" else val
    big = [Image.fromarray(data.images[i]).resize((128, 128), Image.LANCZOS) for i in chosen]
    wide = []
    for b in big:
        left, top, right, bottom = (int(v) for v in rng.integers(20, 200, 4))
        w = Image.new("RGB", (128 + left + right, 128 + top + bottom), (255, 255, 255))
        w.paste(b, (left, top))
        wide.append(w)
    kinds = [("4x", big), ("4x, white margins", wide)]
    return kinds, [data.refs[i] for i in chosen], [(False, "as they come"), (None, "framed (default)")]


def main(argv=None) -> None:
    from rnnkit.apps.caption import load, report

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--part", choices=("test", "val"), default="test")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    cap = load(args.run)
    rng = np.random.default_rng(args.seed)
    if cap.digit_slots is not None:
        kinds, refs, reads = _digit_pictures(cap, args.part, rng)
    elif cap.emoji:
        kinds, refs, reads = _emoji_pictures(cap, args.part, rng)
    else:
        raise SystemExit(
            f"{args.run}: expected a run trained on digit strings or emoji, got {cap.config.data!r}"
        )
    print(f"| {cap.run.name}, {args.part} part ({len(refs)}) | read | BLEU-4 | chrF | exact % |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for k, (kind, pictures) in enumerate(kinds):
            paths = []
            for i, picture in enumerate(pictures):
                paths.append(str(Path(tmp) / f"{k}-{i}.png"))
                picture.save(paths[-1])
            for cut, how in reads:
                images = cap.read_images(paths, cut=cut)
                hyps = [r["caption"] for r in cap.caption(images, beam=cap.config.beam)]
                s = report.scores(hyps, refs)
                print(
                    f"| {kind} | {how} | {s['bleu']:.2f} | {s['chrf']:.2f} | {s['exact_match']:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
