"""What a practitioner would use instead of the CRNN, scored on the same test lines.

* :class:`SegmentAndClassify` — cut the line into connected components (``scipy.ndimage.label``), merge the
  pieces of one digit, split components that are clearly several digits wide, and classify each piece with
  a small CNN trained on the *training* digit images (with the same size and slant jitter as the lines).
* :func:`tesseract_read` — Tesseract's LSTM engine (``tesseract --psm 7``: one text line, digits only),
  the OCR program a user would pick; ``None`` with a logged reason when the program is not installed.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rnnkit.apps.handwriting.data import _glyph

__all__ = ["SegmentAndClassify", "segment_line", "tesseract_available", "tesseract_read"]

log = logging.getLogger("rnnkit.apps.handwriting")


def _to_box(ink: np.ndarray, size: int = 28, inner: int = 20) -> np.ndarray:
    """Ink scaled so its longer side is ``inner`` pixels, centred in a ``size`` x ``size`` frame (as MNIST)."""
    from PIL import Image

    h, w = ink.shape
    f = inner / max(h, w)
    nh, nw = max(1, round(h * f)), max(1, round(w * f))
    small = np.asarray(
        Image.fromarray(ink.astype(np.float32), mode="F").resize((nw, nh), Image.BILINEAR), np.float32
    )
    out = np.zeros((size, size), np.float32)
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = small.clip(0, 1)
    return out


def segment_line(
    line: np.ndarray,
    threshold: float = 0.3,
    merge_overlap: float = 0.5,
    small: float = 0.25,  # the defaults were chosen on validation lines, not on the test lines
    wide: float = 2.0,
) -> list[np.ndarray]:
    """The digit crops of a line, left to right.

    Components are the 8-connected ink above ``threshold``. Two components are one digit when their column
    ranges overlap by more than ``merge_overlap`` of the narrower one (the two strokes of a broken 5 or 4);
    a component with less than ``small`` of the median component's ink joins its nearest neighbour (a
    detached stroke); a component wider than ``wide`` times the typical digit width (the median component
    width) is cut into equal parts, one per expected digit (touching digits).
    """
    from scipy import ndimage

    mask = line > threshold
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3)))
    boxes = []
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        area = int((labels[sl] == k).sum())
        boxes.append([sl[1].start, sl[1].stop, sl[0].start, sl[0].stop, area])
    if not boxes:
        return []
    boxes.sort()

    def join(a, b):
        return [min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]), a[4] + b[4]]

    merged = [boxes[0]]
    for b in boxes[1:]:
        m = merged[-1]
        overlap = min(m[1], b[1]) - max(m[0], b[0])
        if overlap > merge_overlap * min(m[1] - m[0], b[1] - b[0]):
            merged[-1] = join(m, b)
        else:
            merged.append(b)
    typical = float(np.median([b[4] for b in merged]))
    while len(merged) > 1:
        k = min(range(len(merged)), key=lambda i: merged[i][4])
        if merged[k][4] >= small * typical:
            break
        centre = (merged[k][0] + merged[k][1]) / 2
        near = [j for j in (k - 1, k + 1) if 0 <= j < len(merged)]
        j = min(near, key=lambda j: abs((merged[j][0] + merged[j][1]) / 2 - centre))
        merged[min(j, k)] = join(merged[j], merged[k])
        del merged[max(j, k)]
    digit_w = max(4.0, float(np.median([b[1] - b[0] for b in merged])))  # most components are one digit
    crops = []
    for x0, x1, y0, y1, _ in merged:
        parts = max(1, int(round((x1 - x0) / digit_w))) if (x1 - x0) > wide * digit_w else 1
        edges = np.linspace(x0, x1, parts + 1).round().astype(int)
        if parts > 1:  # move each cut to the column with the least ink near it (the classic projection cut)
            ink = (line[y0:y1] * mask[y0:y1]).sum(0)
            reach = max(1, int(0.3 * digit_w))
            for e in range(1, parts):
                lo, hi = max(edges[e] - reach, edges[e - 1] + 1), min(edges[e] + reach, x1 - 1)
                if lo < hi:
                    edges[e] = lo + int(np.argmin(ink[lo:hi]))
        for a, b in zip(edges[:-1], edges[1:]):
            piece = line[y0:y1, a:b] * mask[y0:y1, a:b]
            rows = np.flatnonzero(piece.max(1) > 0)
            if rows.size:
                crops.append(piece[rows[0] : rows[-1] + 1])
    return crops


class _DigitCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 7x7
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(64 * 7 * 7, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        )

    def forward(self, x):
        return self.net(x)


class SegmentAndClassify:
    """Connected-component segmentation + a small CNN digit classifier (the classic OCR pipeline).

    Example::

        >>> base = SegmentAndClassify(epochs=3).fit(images[train], labels[train])
        >>> base.read(lines)          # one string of digits per line
    """

    def __init__(self, epochs: int = 6, batch_size: int = 64, lr: float = 2e-3, seed: int = 0):
        self.epochs, self.batch_size, self.lr, self.seed = epochs, batch_size, lr, seed
        self.model = _DigitCNN()

    def _jitter(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A training digit drawn as in a line (slant, thickness of the resampling), then boxed like a crop."""
        g = _glyph(img, rng.uniform(17, 26), rng.uniform(-0.38, 0.38))
        return _to_box(g)

    def fit(self, images: np.ndarray, labels: np.ndarray) -> SegmentAndClassify:
        gen = torch.Generator().manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        opt = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        y = torch.as_tensor(labels, dtype=torch.long)
        self.model.train()
        for _ in range(self.epochs):
            x = torch.from_numpy(np.stack([self._jitter(im, rng) for im in images]))[:, None]
            order = torch.randperm(len(x), generator=gen)
            for s in range(0, len(x), self.batch_size):
                idx = order[s : s + self.batch_size]
                loss = nn.functional.cross_entropy(self.model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.model.eval()
        return self

    @torch.no_grad()
    def classify(self, crops: list[np.ndarray]) -> list[int]:
        if not crops:
            return []
        x = torch.from_numpy(np.stack([_to_box(c) for c in crops]))[:, None]
        return self.model(x).argmax(1).tolist()

    def read(self, lines: list[np.ndarray], **segment) -> list[str]:
        """The digits of each line: segment (``segment``: options of :func:`segment_line`), then classify."""
        crops = [segment_line(line, **segment) for line in lines]
        flat = self.classify([c for cs in crops for c in cs])
        out, k = [], 0
        for cs in crops:
            out.append("".join(str(d) for d in flat[k : k + len(cs)]))
            k += len(cs)
        return out


def tesseract_available() -> str | None:
    """``None`` when the ``tesseract`` program can be run, else the reason it cannot."""
    if shutil.which("tesseract") is None:
        return "tesseract is not installed (apt-get install -y --no-install-recommends tesseract-ocr)"
    return None


def tesseract_read(
    lines: list[np.ndarray], whitelist: str = "0123456789", scale: int = 2, timeout: float = 1800
) -> list[str] | None:
    """Tesseract's reading of each line (dark ink on white, ``scale`` times larger, a white margin).

    All lines go to one ``tesseract`` process through a list file; its pages come back separated by form
    feeds. Returns ``None`` (and logs why) when Tesseract is not installed or fails.
    """
    from PIL import Image

    reason = tesseract_available()
    if reason:
        log.warning("Tesseract baseline skipped: %s", reason)
        return None
    with tempfile.TemporaryDirectory(prefix="rnnkit-tess-") as tmp:
        paths = []
        for i, line in enumerate(lines):
            h, w = line.shape
            img = Image.fromarray((255 - line * 255).clip(0, 255).astype(np.uint8))
            img = img.resize((w * scale, h * scale), Image.BICUBIC)
            framed = Image.new("L", (w * scale + 40, h * scale + 40), 255)
            framed.paste(img, (20, 20))
            path = Path(tmp) / f"{i:06d}.png"
            framed.save(path)
            paths.append(str(path))
        listing = Path(tmp) / "lines.txt"
        listing.write_text("\n".join(paths) + "\n")
        cmd = [
            "tesseract",
            str(listing),
            "stdout",
            "--psm",
            "7",
            "-c",
            f"tessedit_char_whitelist={whitelist}",
        ]
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("Tesseract baseline skipped: %s", exc)
            return None
    if done.returncode != 0:
        log.warning("Tesseract baseline skipped: exit %d: %s", done.returncode, done.stderr.strip()[-200:])
        return None
    pages = done.stdout.split("\f")
    if len(pages) < len(lines):
        log.warning("Tesseract baseline skipped: %d pages came back for %d lines", len(pages), len(lines))
        return None
    return ["".join(ch for ch in p if ch in whitelist) for p in pages[: len(lines)]]
