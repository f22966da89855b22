"""Font-line runs scored on a second set of held-out fonts that played no part in any choice.

The ``fonts`` data's three held-out fonts (``HELD_OUT_FONTS``) were looked at while the renderer's
augmentation was chosen (2026-12-01: capitals and word gaps came from their errors), so they are no longer
fresh. This script renders the run's *test texts* in other Debian handwriting fonts, which neither training
nor any choice has used, and scores each run on them next to Tesseract: CER / WER / lines read exactly with
beam search and with the lexicon + word LM, overall and per font. The fonts were named before any run was
scored on them (Domestic Manners, Purisa, Isabella: a marker hand, a pen print hand and a calligraphic hand);
install them with ``apt-get install fonts-dustin fonts-tlwg-purisa-ttf fonts-isabella``.

    PYTHONPATH=src python benchmarks/handwriting_fresh_fonts.py runs/fonts [runs/fonts-s1 ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

FRESH_FONTS = {  # file name: Debian package
    "Domestic_Manners.ttf": "fonts-dustin",
    "Purisa.ttf": "fonts-tlwg-purisa-ttf",
    "Isabella.ttf": "fonts-isabella",
}

BAND = "o"
"""These lines are scaled by the height of the ``o``, not the ``x`` as the training fonts are: Isabella's ``x``
has a tail below the line, which drew its lines at two-thirds of their size (seen in a 30-line smoke test of
the script; the ``o`` and the ``x`` agree within 1-2 pixels on the other two fonts)."""


def find(names) -> list[Path]:
    """The installed font files, in the order of ``names``; a missing one stops with the package to install."""
    found = {p.name: p for p in Path("/usr/share/fonts").rglob("*") if p.name in names}
    missing = [FRESH_FONTS.get(n, n) for n in names if n not in found]
    if missing:
        raise SystemExit(f"missing fonts; install them: apt-get install -y {' '.join(sorted(set(missing)))}")
    return [found[n] for n in names]


def main() -> None:
    import torch

    from rnnkit._errors import RnnkitError
    from rnnkit.apps.handwriting import load
    from rnnkit.apps.handwriting.baselines import tesseract_read
    from rnnkit.apps.handwriting.data import render_text
    from rnnkit.apps.handwriting.report import scores
    from rnnkit.apps.handwriting.train import font_text_parts

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="run folders of `rnnkit train handwriting --data fonts`")
    ap.add_argument("--fonts", nargs="+", default=list(FRESH_FONTS), help="font file names to render in")
    ap.add_argument("--lines", type=int, default=600, help="test lines (each a random test text and font)")
    ap.add_argument("--no-tesseract", action="store_true", help="skip the Tesseract baseline")
    ap.add_argument("--json", help="also write every score to this file")
    args = ap.parse_args()
    if args.lines < 1:
        ap.error(f"--lines: expected at least 1, got {args.lines}")
    torch.set_num_threads(1)
    fonts = find(args.fonts)
    try:
        readers = [load(r) for r in args.runs]
    except RnnkitError as exc:  # not a run, a damaged one, another application's
        raise SystemExit(f"error: {exc}") from None
    cfg = readers[0].config
    if any(r.config.data != "fonts" for r in readers):
        raise SystemExit("expected runs on the built-in fonts data (--data fonts)")
    texts_all = font_text_parts(cfg)[2]  # the run's test texts: never in a training or validation line
    rng = np.random.default_rng([cfg.split_seed, 7])
    lines, texts, names = [], [], []
    for _ in range(args.lines):
        text = texts_all[int(rng.integers(len(texts_all)))]
        font = fonts[int(rng.integers(len(fonts)))]
        lines.append(render_text(text, font, rng, cfg.height, band=BAND))
        texts.append(text)
        names.append(font.name)
    readings = {}
    for path, reader in zip(args.runs, readers):
        readings[f"{Path(path).name}, beam {reader.config.beam_size}"] = [
            o["text"] for o in reader.predict(lines)
        ]
        readings[f"{Path(path).name}, beam + lexicon + LM"] = [
            o["text"] for o in reader.predict(lines, lexicon=True)
        ]
    if not args.no_tesseract:
        alphabet = readers[0].alphabet
        tess = tesseract_read(lines, whitelist="".join(dict.fromkeys(alphabet + alphabet.upper())))
        if tess is not None:
            readings["Tesseract (psm 7, capitals allowed, lower-cased)"] = [t.lower() for t in tess]
    per = sorted(set(names))
    out = {"fonts": [f.name for f in fonts], "lines": args.lines, "scores": {}}
    print("| reader | CER | WER | lines exact | " + " | ".join(f"CER {n}" for n in per) + " |")
    print("|---|---|---|---|" + "---|" * len(per))
    for reader, hyp in readings.items():
        s = scores(texts, hyp)
        by_font = {}
        for n in per:
            idx = [i for i, x in enumerate(names) if x == n]
            by_font[n] = {"lines": len(idx), **scores([texts[i] for i in idx], [hyp[i] for i in idx])}
        out["scores"][reader] = {**s, "per_font": by_font}
        cells = " | ".join(f"{by_font[n]['cer']:.3f}" for n in per)
        print(f"| {reader} | {s['cer']:.3f} | {s['wer']:.3f} | {s['line_accuracy']:.3f} | {cells} |")
    print("lines per font: " + ", ".join(f"{n} {names.count(n)}" for n in per))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
