"""A saved handwriting run, loaded: read new line images, or score the run's held-out test lines again."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit._errors import RnnkitError
from rnnkit.apps.base import load_app_config, load_feedforward, load_run_model
from rnnkit.apps.handwriting import report
from rnnkit.apps.handwriting.config import HandwritingConfig
from rnnkit.apps.handwriting.data import APP, normalize_line, read_image
from rnnkit.apps.handwriting.model import CRNN, decode_lines
from rnnkit.apps.rundir import open_run, read_json
from rnnkit.models.lexicon import Lexicon, WordNgramLM

__all__ = ["HandwritingReader", "load"]


class HandwritingReader:
    """A trained handwriting run: ``predict(images)`` reads lines; ``evaluate()`` re-scores its test lines.

    Example::

        >>> reader = load("runs/handwriting")
        >>> reader.predict(["line1.png", "line2.png"])
        [{'image': 'line1.png', 'text': '20481'}, {'image': 'line2.png', 'text': '7'}]
    """

    def __init__(self, path):
        self.run, self.manifest = open_run(path, APP)
        self.config: HandwritingConfig = load_app_config(self.run, self.manifest)
        self.model: CRNN = load_run_model(self.run, CRNN)
        info = read_json(self.run / "alphabet.json", f"run {self.run.name}")
        if not isinstance(info, dict) or not isinstance(info.get("alphabet"), str):
            raise RnnkitError(f"run {self.run.name}: alphabet.json is damaged (no 'alphabet' string)")
        self.alphabet = info["alphabet"]
        if len(self.alphabet) != self.model.config.ctc.num_labels:
            raise RnnkitError(f"run {self.run.name}: alphabet.json does not match the model's labels")
        self.height = self.model.config.height
        # the blank around the ink of its lines (runs since 2026-12-05): what a cut to the ink keeps (cut_lines)
        self.line_margin = info.get("line_margin")
        if self.line_margin is not None and (
            not isinstance(self.line_margin, (int, float)) or not 0 <= self.line_margin < 100
        ):
            raise RnnkitError(
                f"run {self.run.name}: alphabet.json is damaged (line_margin {self.line_margin!r})"
            )
        self.lexicon = None  # the training texts' words, for runs on text (lexicon.json)
        self.lm = None  # and their word n-gram model
        if (self.run / "lexicon.json").is_file():
            words = read_json(self.run / "lexicon.json", f"run {self.run.name}")
            if not isinstance(words, dict) or not isinstance(words.get("words"), list):
                raise RnnkitError(f"run {self.run.name}: lexicon.json is damaged (no 'words' list)")
            self.lexicon = Lexicon([str(w) for w in words["words"]], self.alphabet)
            texts = words.get("texts") or []
            if not isinstance(texts, list):
                raise RnnkitError(f"run {self.run.name}: lexicon.json is damaged ('texts' is not a list)")
            if self.config.lm_order > 0 and "texts" in words:  # the texts' word LM (runs since 2026-12-01)
                if not texts and self.config.data == "fonts":
                    from rnnkit.apps.handwriting.train import font_text_parts

                    texts = font_text_parts(self.config)[0]
                if texts:
                    self.lm = WordNgramLM([str(t) for t in texts], self.config.lm_order)

    def _margin(self, cut: bool | None) -> float | None:
        """The margin a new image is cut to its ink with (None: read as it comes); ``cut`` None: the run's way."""
        if not (self.config.cuts_lines() if cut is None else cut):
            return None
        if self.line_margin is None:
            raise RnnkitError(
                f"run {self.run.name} cannot cut images to their ink: it was saved before runs kept the blank "
                "their lines have around the ink (no line_margin in alphabet.json)"
            )
        return float(self.line_margin)

    def _line(self, image: Any, k: int, margin: float | None) -> tuple[str, np.ndarray]:
        if isinstance(image, (str, os.PathLike)):
            return str(image), read_image(Path(image), self.height, margin)
        name = f"image {k}"
        if isinstance(image, np.ndarray) or hasattr(image, "convert"):
            return name, normalize_line(image, self.height, name, margin)
        raise RnnkitError(
            f"{name}: expected a file path, a PIL image or a 2-D array, got {type(image).__name__}"
        )

    def predict(
        self, images, beam_size: int | None = None, lexicon: bool = False, cut: bool | None = None
    ) -> list[dict[str, str]]:
        """The text of each line image (paths, PIL images or ``(H, W)`` arrays; dark ink on light is fine).

        Every image is read and checked before any is recognised, so one bad file fails the whole call.
        ``lexicon=True`` spells only words of the training texts (runs on text data; see ``lexicon.json``),
        ranked with their word n-gram LM (runs that kept the texts, ``lm_order > 0``). ``cut=True`` cuts each
        image to its ink first, keeping the blank the run's lines have around theirs (a scan or photo with
        wide borders); the default is the run's own way (``cut_lines``).
        """
        if lexicon and self.lexicon is None:
            raise RnnkitError(f"run {self.run.name} has no lexicon (only runs on text with spaces have one)")
        single = isinstance(images, (str, os.PathLike)) or not hasattr(images, "__len__")
        if single or (isinstance(images, np.ndarray) and images.ndim == 2):  # one image, not a list of them
            images = [images]
        margin = self._margin(cut)
        named = [self._line(im, k, margin) for k, im in enumerate(images)]
        if not named:
            return []
        texts = decode_lines(
            self.model,
            [x for _, x in named],
            self.alphabet,
            beam_size,
            lexicon=self.lexicon if lexicon else None,
            lm=self.lm,
            cfg=self.config,
        )
        return [{"image": name, "text": text} for (name, _), text in zip(named, texts)]

    def predict_inputs(
        self,
        inputs: list[str],
        beam: int | None = None,
        lexicon: bool | None = None,
        cut: bool | None = None,
    ) -> list[dict[str, str]]:
        """``rnnkit predict RUN line.png ... [--beam N] [--lexicon] [--cut]``: :meth:`predict` on the image
        files."""
        return self.predict(list(inputs), beam_size=beam, lexicon=bool(lexicon), cut=cut)

    @functools.cached_property
    def feedforward(self) -> CRNN | None:
        """The run's feed-forward counterpart (read when first asked for), or None for a run without one."""
        return load_feedforward(self.run, self.config, CRNN)

    def evaluate(self, data: str | None = None, beam_size: int | None = None) -> dict[str, Any]:
        """CER / WER / line accuracy on the run's held-out test sets (made again from its config), or on
        every line of ``data``, a CSV ``file,text`` of line images (``rnnkit evaluate RUN --data lines.csv``);
        for a run with a feed-forward counterpart, its scores too.

        A text with a character the model cannot write is one clear error: its score would be meaningless.
        """
        from rnnkit.apps.handwriting.data import load_line_images

        if data is not None:
            lines, texts = load_line_images(str(data), self.height, self._margin(None))
            known = set(self.alphabet)
            for k, text in enumerate(texts, start=2):
                bad = sorted(set(text) - known)
                if bad:
                    raise RnnkitError(
                        f"{Path(data).name} line {k}: text {text!r} has characters {bad} outside the model's "
                        f"alphabet {self.alphabet!r}"
                    )
            return {
                "data": f"{Path(data).name} ({len(lines)} lines)",
                **self._scores(lines, texts, beam_size, ""),
            }
        from rnnkit.apps.handwriting.train import _prepare

        alphabet, _, _, tests, _, _, _ = _prepare(self.config)
        if alphabet != self.alphabet:
            raise RnnkitError(f"the data {self.config.data!r} changed since the run: its alphabet differs")
        out: dict[str, Any] = {"data": f"held-out test lines of {self.config.data}"}
        for name, (lines, texts) in tests.items():
            out.update(self._scores(lines, texts, beam_size, name if len(tests) > 1 else ""))
        return out

    def _scores(self, lines, texts, beam_size: int | None, part: str) -> dict[str, Any]:
        """The count and scores of the network on one test set and, for a run with one, of its feed-forward
        counterpart (keys ``"cer"``, ``"cer (part)"``, ``"cer (feed-forward)"``, ``"cer (part, feed-forward)"``)."""
        out: dict[str, Any] = {}
        for model, who in ((self.model, ""), (self.feedforward, "feed-forward")):
            if model is None:
                continue
            scores = report.scores(texts, decode_lines(model, lines, self.alphabet, beam_size))
            scores = {"count": len(lines), **scores} if not who else scores
            tag = ", ".join(t for t in (part, who) if t)
            out.update({f"{k} ({tag})" if tag else k: v for k, v in scores.items()})
        return out


def load(path) -> HandwritingReader:
    """The saved run at ``path``, ready to ``predict`` and ``evaluate``."""
    return HandwritingReader(path)
