"""A saved captioning run, loaded: ``caption(images, beam=N)`` with n-best lists, scores and attention.

``rnnkit predict RUN image.png ... [--beam N] [--n-best K] [--json]`` goes through
:meth:`Captioner.predict_inputs`; ``rnnkit evaluate RUN [--data captions.csv]`` through
:meth:`Captioner.evaluate`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import beam_and_n_best
from rnnkit.apps.base import load_feedforward, load_run_model, open_app_run
from rnnkit.apps.caption.data import APP, WordVocab, read_image
from rnnkit.apps.caption.model import ImageCaptioner, caption_ids
from rnnkit.apps.rundir import read_json

__all__ = ["Captioner", "load"]


class Captioner:
    """A trained captioning run: ``caption(images, beam=1, n_best=1)`` and ``caption_files(paths)``.

    Example::

        cap = load("runs/caption")
        cap.caption_files(["smile.png"], beam=3, n_best=2)
        # [{'image': 'smile.png', 'caption': 'grinning face', 'score': -0.04,
        #   'n_best': [{'caption': 'grinning face', 'score': -0.04}, {'caption': 'beaming face', ...}]}]
    """

    def __init__(self, path):
        self.run, self.manifest, self.config = open_app_run(path, APP)
        self.model = load_run_model(self.run, ImageCaptioner)
        info = read_json(self.run / "caption.json", f"run {self.run.name}")
        if not isinstance(info, dict) or not isinstance(info.get("words"), list):
            raise RnnkitError(f"run {self.run.name}: caption.json is damaged (no 'words')")
        self.vocab = WordVocab(info["words"][len(WordVocab.SPECIALS) :])
        self.max_words = int(info.get("max_words", self.config.max_words))
        # a digits run reads a picture drawn differently from its strings by drawing it again their way
        data = info.get("data", self.config.data)
        self.digit_slots = self.config.max_digits if data == "digits" else None
        self.emoji = data == "emoji"  # and an emoji run frames a picture like its emoji pictures
        if len(self.vocab) != self.model.config.seq2seq.tgt_vocab_size:
            raise RnnkitError(f"run {self.run.name}: the word list does not match the model (damaged run?)")

    @property
    def image_size(self) -> tuple[int, int]:
        return self.model.config.image_height, self.model.config.image_width

    def caption(
        self, images: np.ndarray, beam: int = 1, n_best: int = 1, attention: bool = False
    ) -> list[dict[str, Any]]:
        """Per image (uint8 (N, H, W, 3) at the run's size) ``{"caption", "score", "n_best"}`` (and
        ``"attention"`` (words, h, w) for the best caption when asked)."""
        if not isinstance(beam, int) or beam < 1:
            raise RnnkitError(f"beam must be a positive int, got {beam!r}")
        if not isinstance(n_best, int) or not 1 <= n_best <= beam:
            raise RnnkitError(f"n_best must be an int in [1, beam={beam}], got {n_best!r}")
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1:] != (*self.image_size, 3) or images.dtype != np.uint8:
            raise RnnkitError(
                f"expected uint8 images of shape (N, {self.image_size[0]}, {self.image_size[1]}, 3), got "
                f"{images.dtype} {images.shape}"
            )
        results = caption_ids(
            self.model,
            images,
            beam=beam,
            length_penalty=self.config.length_penalty,
            max_length=self.max_words + 1,
            attention=attention,
        )
        out = []
        for r in results:
            hyps = [
                {"caption": self.vocab.decode(t), "score": round(s, 4)} for t, s in r["hypotheses"][:n_best]
            ]
            entry = {**hyps[0], "n_best": hyps}
            if attention and "attention" in r:
                entry["attention"] = r["attention"]
            out.append(entry)
        return out

    def read_image(self, path, name: str | None = None, cut: bool | None = None) -> np.ndarray:
        """An image file at the run's size (:func:`~rnnkit.apps.caption.data.read_image`). A digits run first
        draws a picture unlike its strings (dark digits on paper, wide borders) again like them, and
        ``cut=True`` / ``False`` always / never does; an emoji run frames every picture like its emoji (cut to
        the picture's content, on a white square) unless ``cut=False``."""
        return read_image(path, self.image_size, name, self.digit_slots, self._cut(cut), self.emoji)

    def _cut(self, cut: bool | None) -> bool | None:
        if cut is not None and self.digit_slots is None and not self.emoji:
            raise RnnkitError(
                f"cut: only runs trained on digit strings or emoji cut pictures to their content; run "
                f"{self.run.name} was trained on {self.config.data!r}"
            )
        return cut

    def read_images(self, paths: list[str], cut: bool | None = None) -> np.ndarray:
        """Image files scaled to the run's size (:meth:`read_image`); a missing, non-image or undecodable file is
        one error."""
        if not paths:
            raise RnnkitError("expected image files to caption, got none")
        return np.stack([self.read_image(p, cut=cut) for p in paths])

    def caption_files(
        self, paths: list[str], beam: int = 1, n_best: int = 1, cut: bool | None = None
    ) -> list[dict[str, Any]]:
        """:meth:`caption` of image files (read by :meth:`read_image`); each result starts with ``"image"``
        (the path as given)."""
        results = self.caption(self.read_images(list(paths), cut), beam=beam, n_best=n_best)
        return [{"image": str(p), **r} for p, r in zip(paths, results)]

    def predict_inputs(
        self, inputs: list[str], beam: int | None = None, n_best: int | None = None, cut: bool | None = None
    ) -> list[dict[str, Any]]:
        """``rnnkit predict RUN image.png ... [--beam N] [--n-best K] [--cut]``: :meth:`caption_files` of the
        inputs.

        ``beam`` defaults to the run's (``config.beam``, the width its scores were measured with; wider when
        ``n_best`` asks for more) and ``n_best`` to 1.
        """
        beam, n_best = beam_and_n_best(beam, n_best, self.config.beam)
        return self.caption_files(list(inputs), beam=beam, n_best=n_best, cut=cut)

    def evaluate(self, data: str | None = None, cut: bool | None = None) -> dict[str, Any]:
        """BLEU-4, chrF and exact match (greedy and beam ``config.beam``) on the run's held-out test images
        (as in training), or on every image of a CSV ``file,caption`` (the run's column names; read as
        :meth:`read_image` reads, with ``cut``); a run with a feed-forward counterpart scores it too (keys
        ending in `` (feed-forward)``)."""
        import dataclasses

        from rnnkit.apps.caption import report
        from rnnkit.apps.caption.data import load_data, split

        cfg = self.config
        if data is None:
            d = load_data(cfg)
            _, _, te = split(cfg, d)
            te = list(te[: cfg.eval_images] if cfg.eval_images else te)
            where = f"held-out test images of {d.name} ({len(te)} images)"
        else:
            # the pictures scaled to the run's own size (a CSV's default size is for training on it)
            h, w = self.image_size
            cfg = dataclasses.replace(cfg, data=str(data), image_height=h, image_width=w)
            d = load_data(cfg, self.digit_slots, self._cut(cut), self.emoji)
            te = list(range(len(d)))
            where = f"{Path(data).name} ({len(te)} images)"
        images, refs = d.images[te], [d.refs[i] for i in te]
        if images.shape[1:3] != self.image_size:
            raise RnnkitError(f"{where}: images are {images.shape[1:3]}, the run reads {self.image_size}")
        out: dict[str, Any] = {"data": where}
        feedforward = load_feedforward(self.run, self.config, ImageCaptioner)
        for model, who in ((self.model, ""), (feedforward, " (feed-forward)")):
            if model is None:
                continue
            for name, beam in (("greedy", 1), (f"beam{cfg.beam}", cfg.beam)):
                results = caption_ids(
                    model, images, beam=beam, length_penalty=cfg.length_penalty, max_length=self.max_words + 1
                )
                hyps = [self.vocab.decode(r["hypotheses"][0][0]) for r in results]
                out.update({f"{k}_{name}{who}": v for k, v in report.scores(hyps, refs).items()})
        return out


def load(path) -> Captioner:
    """The saved captioning run at ``path``, ready to ``caption``."""
    return Captioner(path)
