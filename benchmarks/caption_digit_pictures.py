"""A captioning run on digit strings reading pictures drawn unlike its strings: dark digits on white with wide
borders, as a scan or a photo gives them, read as they come, drawn again like the run's strings, and as the run
decides by default (docs/caption.md, *Your own pictures of digits*).

The run's test strings (or validation strings, ``--part val``) are made again from its config at the canvas's own
shape (28 rows, not squeezed to the run's size) and saved as PNG files (i) as they are drawn (light ink on black)
and (ii) as dark ink on white at twice the size on a white canvas with random borders (the handwriting benchmark's
``as_scan``). Each file is read by :meth:`Captioner.read_images` with ``cut`` False, None (the default) and True,
and captioned with the run's beam. Prints BLEU-4, chrF and exact match.

    PYTHONPATH=src python benchmarks/caption_digit_pictures.py runs/demo-caption-digits [--part val]
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


def main(argv=None) -> None:
    from rnnkit.apps.caption import load, report
    from rnnkit.apps.caption.data import DIGIT_ROWS, _canvas_width, load_data, split

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--part", choices=("test", "val"), default="test")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    cap = load(args.run)
    if cap.digit_slots is None:
        raise SystemExit(f"{args.run}: expected a run trained on digit strings, got data {cap.config.data!r}")
    cfg = cap.config
    natural = dataclasses.replace(cfg, image_height=DIGIT_ROWS, image_width=_canvas_width(cfg.max_digits))
    data = load_data(natural)
    _, val, test = split(natural, data)
    part = test if args.part == "test" else val
    refs = [data.refs[i] for i in part]
    rng = np.random.default_rng(args.seed)
    print(f"| {cap.run.name}, {args.part} strings ({len(part)}) | read | BLEU-4 | chrF | exact % |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for kind, draw in (
            ("as the run draws them", lambda x: Image.fromarray(x)),
            ("dark on white, 2x, borders", lambda x: as_scan(x[:, :, 0] / 255.0, rng)),
        ):
            paths = []
            for k, i in enumerate(part):
                paths.append(str(Path(tmp) / f"{kind[:4]}{k}.png"))
                draw(data.images[i]).save(paths[-1])
            for cut, how in ((False, "as they come"), (None, "default"), (True, "drawn again")):
                images = cap.read_images(paths, cut=cut)
                hyps = [r["caption"] for r in cap.caption(images, beam=cfg.beam)]
                s = report.scores(hyps, refs)
                print(
                    f"| {kind} | {how} | {s['bleu']:.2f} | {s['chrf']:.2f} | {s['exact_match']:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
