"""The speech models, built from :mod:`rnnkit.models`: the isolated-word classifier and its class
probabilities, and the connected-speech CTC recognizer (:class:`SpeechCTC`) with its streaming reader."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import app_encoder
from rnnkit.apps.speech.config import SpeechConfig
from rnnkit.apps.speech.data import collate
from rnnkit.apps.speech.features import N_MELS
from rnnkit.models import CTCConfig, CTCRecognizer, LossOutput, Model
from rnnkit.models._base import as_batch, require

__all__ = [
    "CTCStream",
    "SpeechCTC",
    "SpeechCTCConfig",
    "build_ctc_model",
    "build_model",
    "labels_to_text",
    "predict_proba",
    "transcribe",
    "mean_log_probs",
    "average_networks",
    "utterance_log_probs",
    "word_models",
    "word_timings",
]


def build_model(cfg: SpeechConfig, num_features: int, num_classes: int):
    """A many-to-one :class:`~rnnkit.models.SequenceClassifier` over feature frames."""
    from rnnkit.models import ClassifierConfig, SequenceClassifier

    encoder = app_encoder(cfg)
    return SequenceClassifier(
        ClassifierConfig(
            num_classes=num_classes,
            input_size=num_features,
            encoder=encoder,
            pooling=cfg.pooling,
            dropout=cfg.dropout,
        )
    )


@torch.no_grad()
def predict_proba(model, seqs: list[np.ndarray], batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, classes) of already normalised sequences."""
    model.eval()
    out = [
        model.predict(**collate(seqs[s : s + batch_size])).numpy() for s in range(0, len(seqs), batch_size)
    ]
    return np.concatenate(out, axis=0)


@dataclass
class SpeechCTCConfig:
    """A convolutional front end with time subsampling and a CTC recognizer over its frames."""

    num_mels: int = 40  # log-mel bands per input frame
    channels: int = 128  # output channels of both conv layers
    kernel: int = 5  # width (in 10 ms frames) of the first conv
    subsample: int = 3  # stride = width of the second conv: one recurrent step per `subsample` frames
    ctc: CTCConfig = field(default_factory=CTCConfig)  # the recurrent recognizer; input_size set here


class SpeechCTC(Model):
    r"""Log-mel frames to characters: two 1-D convolutions over time, a GRU/LSTM, CTC.

    .. math::
        u = \mathrm{ReLU}(W_1 * x), \quad v = \mathrm{ReLU}(W_2 *_{s} u), \quad
        \log p_t(c) = \mathrm{log\,softmax}(\mathrm{head}(\mathrm{RNN}(v))_t)_c

    The convolutions have no padding ("valid"); the second one steps by ``s = subsample`` frames, so a
    recording of ``T`` frames gives ``(T - kernel + 1 - s) // s + 1`` recurrent steps, and step ``j`` sees
    input frames ``j s .. j s + kernel + s - 2`` only — the same whether the frames come at once or in
    chunks (:meth:`stream`).

    Batches: ``{"inputs" (B, T, num_mels), "lengths" (B,), "targets" (B, S) labels in 1..num_labels,
    "target_lengths" (B,)}``.

    Shape: inputs ``(B, T, num_mels)`` -> log-probabilities ``(B, T', num_labels + 1)``, T' as above.

    Example::

        >>> model = SpeechCTC(SpeechCTCConfig(ctc=CTCConfig(num_labels=28)))
        >>> model(torch.zeros(2, 100, 40)).shape
        torch.Size([2, 31, 29])
    """

    config_class = SpeechCTCConfig
    batch_keys = ("inputs", "targets", "lengths", "target_lengths")

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        if c.kernel < 1 or c.subsample < 1 or c.channels < 1 or c.num_mels < 1:
            raise RnnkitError(
                f"kernel, subsample, channels and num_mels must be >= 1, got {c.kernel}, {c.subsample}, "
                f"{c.channels}, {c.num_mels}"
            )
        self.conv1 = nn.Conv1d(c.num_mels, c.channels, c.kernel)
        self.conv2 = nn.Conv1d(c.channels, c.channels, c.subsample, stride=c.subsample)
        self.config.ctc.input_size = c.channels
        self.config.ctc.vocab_size = 0
        self.ctc = CTCRecognizer(self.config.ctc)

    @property
    def encoder(self):
        """The recurrent encoder (for reports of its size and backend)."""
        return self.ctc.encoder

    @property
    def receptive_field(self) -> int:
        """Input frames behind one recurrent step."""
        return self.config.kernel + self.config.subsample - 1

    def steps(self, frames: Tensor) -> Tensor:
        """Recurrent steps of recordings of ``frames`` input frames (0 when too short)."""
        s = self.config.subsample
        return ((frames - self.receptive_field).clamp(min=-s) // s + 1).clamp(min=0)

    def features(self, inputs: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Conv features ``(B, T', channels)`` and the step counts ``(B,)``."""
        if not isinstance(inputs, Tensor) or inputs.dim() != 3 or inputs.shape[2] != self.config.num_mels:
            got = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
            raise RnnkitError(f"inputs must be (batch, frames, {self.config.num_mels}), got {got}")
        B, T = inputs.shape[0], inputs.shape[1]
        if T < self.receptive_field:
            raise RnnkitError(f"inputs need at least {self.receptive_field} frames, got {T}")
        x = inputs.float().transpose(1, 2)  # (B, F, T)
        x = torch.relu(self.conv2(torch.relu(self.conv1(x)))).transpose(1, 2)  # (B, T', C)
        full = torch.full((B,), T, dtype=torch.long)
        frames = full if lengths is None else torch.as_tensor(lengths).long().cpu()
        return x, self.steps(frames).clamp(min=1, max=x.shape[1])

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Per-step log-probabilities ``(B, T', num_labels + 1)``; class 0 is the blank."""
        feats, steps = self.features(inputs, lengths)
        return self.ctc(feats, steps)

    def loss(self, batch, state=None) -> LossOutput:
        b = as_batch(batch, self.batch_keys)
        feats, steps = self.features(require(b, "inputs"), b.get("lengths"))
        inner = {"inputs": feats, "lengths": steps, "targets": require(b, "targets")}
        if b.get("target_lengths") is not None:
            inner["target_lengths"] = b["target_lengths"]
        out = self.ctc.loss(inner)
        if not self.training:  # so that the trainer's val_edit_distance / val_chars is the CER
            out.metrics["chars"] = float(torch.as_tensor(inner.get("target_lengths", 0)).sum())
        return out

    @torch.no_grad()
    def log_probs(self, inputs: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(log-probabilities (B, T', C), steps (B,))`` in eval mode."""
        was = self.training
        self.eval()
        try:
            feats, steps = self.features(inputs, lengths)
            return self.ctc(feats, steps), steps
        finally:
            self.train(was)

    def stream(self) -> CTCStream:
        """A :class:`CTCStream` that takes the frames of one recording chunk by chunk (a unidirectional
        model only: a bidirectional one needs the end of the recording before its first output)."""
        if self.config.ctc.encoder.bidirectional:
            raise RnnkitError("streaming needs a unidirectional model (trained with bidirectional = false)")
        return CTCStream(self)


class CTCStream:
    """Feeds one recording's frames chunk by chunk: ``feed(frames (n, num_mels)) -> new log-probs (k, C)``.

    It keeps the input frames the next recurrent step still needs (fewer than the receptive field) and the
    recurrent state, so the log-probabilities of all chunks, joined, equal the whole recording's.
    """

    def __init__(self, model: SpeechCTC):
        self.model = model
        self._frames = torch.zeros(0, model.config.num_mels)
        self._state = None
        self.log_probs = torch.zeros(0, model.config.ctc.num_labels + 1)

    @torch.no_grad()
    def feed(self, frames) -> Tensor:
        m = self.model
        m.eval()
        self._frames = torch.cat([self._frames, torch.as_tensor(np.asarray(frames), dtype=torch.float32)])
        n = int(m.steps(torch.tensor(len(self._frames))))
        if n == 0:
            return torch.zeros(0, self.log_probs.shape[1])
        used = (n - 1) * m.config.subsample + m.receptive_field
        x = self._frames[:used].T[None]  # (1, F, frames)
        v = torch.relu(m.conv2(torch.relu(m.conv1(x)))).transpose(1, 2)  # (1, n, C)
        self._frames = self._frames[n * m.config.subsample :]
        ctc = m.ctc
        out, self._state = ctc.encoder(ctc.embed(v), self._state)
        lp = ctc.head(out).log_softmax(-1)[0]  # (n, C)
        self.log_probs = torch.cat([self.log_probs, lp])
        return lp


def build_ctc_model(cfg: SpeechConfig, num_labels: int, feedforward: int = 0) -> SpeechCTC:
    """The conv + recurrent + CTC model of the application config ``cfg`` for ``num_labels`` characters; with
    ``feedforward > 0``, its counterpart without recurrence: ``cfg.ff_layers`` time-delay convolutions of
    ``feedforward`` channels (the recurrent encoder's output size) in the recurrent encoder's place."""
    encoder = app_encoder(cfg)
    ff = cfg.time_delay(feedforward) if feedforward else {}
    ctc = CTCConfig(
        num_labels=num_labels, encoder=encoder, dropout=cfg.dropout, beam_size=cfg.beam_size, **ff
    )
    return SpeechCTC(
        SpeechCTCConfig(num_mels=N_MELS, channels=cfg.conv_channels, subsample=cfg.subsample, ctc=ctc)
    )


def labels_to_text(labels: list[int], alphabet: str) -> str:
    """A label sequence as text, spaces squeezed (``alphabet[k - 1]`` is label ``k``)."""
    return " ".join("".join(alphabet[k - 1] for k in labels).split())


@torch.no_grad()
def utterance_log_probs(model, seqs: list[np.ndarray], batch_size: int = 64) -> list[Tensor]:
    """Each normalised frame sequence's log-probabilities ``(steps, C)``, batched by similar length.

    ``model`` is a :class:`SpeechCTC` or a list of them of one architecture (an ensemble): then each step's
    probabilities are the mean of the networks', ``log (1/N) sum_k p_k``.
    """
    if isinstance(model, (list, tuple)):
        return average_networks([utterance_log_probs(m, seqs, batch_size) for m in model])
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    out: dict[int, Tensor] = {}
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        b = collate([seqs[i] for i in idx])
        lp, steps = model.log_probs(b["inputs"], b["lengths"])
        for j, i in enumerate(idx):
            out[i] = lp[j, : int(steps[j])]
    return [out[i] for i in range(len(seqs))]


def mean_log_probs(log_probs: list[Tensor]) -> Tensor:
    """``log`` of the mean of the probabilities of several networks' ``(steps, C)`` log-probabilities."""
    return torch.logsumexp(torch.stack(log_probs), 0) - math.log(len(log_probs))


def average_networks(each: list[list[Tensor]]) -> list[Tensor]:
    """Per utterance, :func:`mean_log_probs` over the networks: ``each[k][i]`` is network ``k``'s
    log-probabilities of utterance ``i``; one network's list comes back as it is."""
    return each[0] if len(each) == 1 else [mean_log_probs(list(per)) for per in zip(*each)]


def transcribe(
    log_probs: list[Tensor], alphabet: str, beam_size: int = 1, lexicon=None, lm=None, cfg=None
) -> list[str]:
    """Texts by best path (``beam_size=1``), CTC prefix beam search, or - with a
    :class:`~rnnkit.models.Lexicon` - a beam search that only spells its words, ranked with the word
    language model ``lm`` (a :class:`~rnnkit.models.WordNgramLM`) when one is given (weights from ``cfg``,
    else :func:`~rnnkit.models.lexicon_beam_search`'s defaults:
    ``lm_weight``, ``word_bonus``)."""
    from rnnkit.models import ctc_greedy_decode, ctc_prefix_beam_search, lexicon_beam_search

    out = []
    weights = cfg.search_weights() if cfg is not None else {}
    for lp in log_probs:
        if lexicon is not None:
            labels = lexicon_beam_search(lp, lexicon, beam_size, lm=lm, **weights)[0]
        elif beam_size == 1:
            labels = ctc_greedy_decode(lp[None])[0]
        else:
            labels = ctc_prefix_beam_search(lp, beam_size)[0]
        out.append(labels_to_text(labels, alphabet))
    return out


def word_models(texts: list[str], alphabet: str, lm_order: int):
    """``(lexicon, lm)`` of the training transcripts: every word they use, and their Kneser-Ney word
    n-gram model of order ``lm_order`` (``None`` for 0)."""
    from rnnkit.models import Lexicon, WordNgramLM

    lexicon = Lexicon((w for t in texts for w in t.split()), alphabet)
    lm = WordNgramLM(texts, order=lm_order) if lm_order > 0 else None
    return lexicon, lm


def word_timings(log_probs: Tensor, alphabet: str, model: SpeechCTC) -> list[dict]:
    """The words of the best path with their start and end times in seconds.

    A recurrent step ``j`` reads 10-ms frames ``j s .. j s + R - 1`` (``s`` = subsample, ``R`` = receptive
    field); a word starts at the first frame of the first step that emits one of its characters and ends
    at the last frame of the step emitting its last character (the emitting steps are where the best path
    leaves the blank for a new label).
    """
    s, R = model.config.subsample, model.receptive_field
    best = log_probs.argmax(-1).tolist()
    space = alphabet.index(" ") + 1 if " " in alphabet else None
    words, cur, start, end, prev = [], "", None, None, 0
    for j, k in enumerate(best):
        if k != prev and k != 0:
            if k == space:
                if cur:
                    words.append((cur, start, end))
                cur, start = "", None
            else:
                cur += alphabet[k - 1]
                start = j if start is None else start
                end = j
        prev = k
    if cur:
        words.append((cur, start, end))
    hop = 0.01
    return [
        {"word": w, "start": round(a * s * hop, 3), "end": round((b * s + R) * hop + 0.015, 3)}
        for w, a, b in words
    ]
