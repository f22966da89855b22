"""Handwriting recognition (many-to-many, unaligned): a CRNN read with CTC, next to Tesseract.

Data: real handwritten digits (MNIST 5k and UCI, split by digit image first) joined into lines of 1-12
digits (``data="digits"``), or the user's CSV ``file,text`` of line images. The baselines are scored on
the same test lines: connected-component segmentation + a small CNN digit classifier, and Tesseract.

Like every application, it has the same parts in the same files: ``config`` (:class:`HandwritingConfig`),
``data`` (the built-in lines, the user's images, the split), ``model`` (:class:`CRNN` on
:class:`rnnkit.models.CTCRecognizer`), ``train`` (the shared trainer), ``report`` (CER / WER next to the
baselines; ``baselines`` holds them) and ``use`` (a saved run: ``load(run).predict(images)``).
"""

from rnnkit.apps.handwriting.config import HandwritingConfig
from rnnkit.apps.handwriting.data import APP, load_digit_images, load_line_images, render_lines, split_digits
from rnnkit.apps.handwriting.model import CRNN, CRNNConfig, build_model, decode_lines
from rnnkit.apps.handwriting.train import train
from rnnkit.apps.handwriting.use import HandwritingReader, load

__all__ = [
    "APP",
    "CRNN",
    "CRNNConfig",
    "HandwritingConfig",
    "HandwritingReader",
    "build_model",
    "decode_lines",
    "load",
    "load_digit_images",
    "load_line_images",
    "render_lines",
    "split_digits",
    "train",
]
