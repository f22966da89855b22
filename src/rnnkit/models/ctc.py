"""Many-to-many, unaligned without a decoder: :class:`CTCRecognizer` (Graves et al. 2006).

Shape convention: inputs (B, T, I) features (or (B, T) ids), ``lengths`` (B,); per-frame log-probabilities
(B, T, C) with ``C = num_labels + 1`` classes: index 0 is the CTC blank and labels are ``1..num_labels``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit._errors import RnnkitError
from rnnkit.models._base import (
    EncoderConfig,
    InputEmbedding,
    LossOutput,
    Model,
    as_batch,
    check_lengths,
    positive,
    require,
)
from rnnkit.models.classifier import make_head
from rnnkit.models.tdnn import TimeDelayEncoder

__all__ = ["CTCConfig", "CTCRecognizer", "ctc_greedy_decode", "ctc_prefix_beam_search", "edit_distance"]

BLANK = 0
_NEG_INF = float("-inf")


@dataclass
class CTCConfig:
    """A frame-level recognizer trained with CTC: no alignment between input frames and output labels."""

    num_labels: int = 28  # output labels 1..num_labels; 0 is the CTC blank
    vocab_size: int = 0  # > 0: inputs are token ids embedded in embedding_dim; 0: float features
    input_size: int = 13  # features per frame when vocab_size == 0 (e.g. 13 MFCCs)
    embedding_dim: int = 64  # embedding size when vocab_size > 0
    encoder: EncoderConfig = field(
        default_factory=lambda: EncoderConfig(bidirectional=True)
    )  # bidirectional ok
    head_hidden: int = 0  # a tanh hidden layer of this size before the output; 0 = linear head
    dropout: float = 0.0  # on the inputs' embeddings and before the head (and between time-delay layers)
    beam_size: int = 8  # default beam of decode(); 1 = greedy
    # > 0: the feed-forward counterpart, a TimeDelayEncoder of this many convolutions in place of `encoder`
    time_delay_layers: int = 0
    time_delay_width: int = 5  # frames each of its convolutions spans (odd)
    time_delay_size: int = 256  # channels of each of its convolutions


def _logaddexp(a: float, b: float) -> float:
    if a == _NEG_INF:
        return b
    if b == _NEG_INF:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def ctc_greedy_decode(
    log_probs: Tensor, lengths: Tensor | None = None, blank: int = BLANK
) -> list[list[int]]:
    """Best path: the most probable class per frame, repeats collapsed, blanks removed. (B, T, C) -> lists."""
    best = log_probs.argmax(-1).cpu()  # (B, T)
    out = []
    for b in range(best.shape[0]):
        n = best.shape[1] if lengths is None else int(lengths[b])
        seq, prev = [], None
        for k in best[b, :n].tolist():
            if k != prev and k != blank:
                seq.append(k)
            prev = k
        out.append(seq)
    return out


def check_beam_size(beam_size) -> None:
    """A beam search keeps ``beam_size >= 1`` prefixes; anything else is one clear error (a negative width
    would slice the beam from the end and keep nearly every prefix)."""
    if isinstance(beam_size, bool) or not isinstance(beam_size, numbers.Integral) or beam_size < 1:
        raise RnnkitError(f"beam size: expected an integer >= 1, got {beam_size!r}")


def ctc_prefix_beam_search(
    log_probs: Tensor, beam_size: int = 8, blank: int = BLANK, prune: float = -12.0
) -> tuple[list[int], float]:
    """CTC prefix beam search (Hannun et al. 2014) for one sequence ``log_probs`` (T, C), no language model.

    Each prefix keeps the probability of its alignments ending in a blank and in a label, so the many
    alignments of one labelling are summed instead of competing. Classes with ``log p < prune`` at a frame
    are skipped. Returns ``(labels, log p(labels))``.
    """
    check_beam_size(beam_size)
    lp = log_probs.detach().double().cpu()
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, _NEG_INF)}  # prefix -> (log p_b, log p_nb)
    for t in range(lp.shape[0]):
        row = lp[t].tolist()
        cands = [c for c, v in enumerate(row) if c != blank and v >= prune]
        nxt: dict[tuple[int, ...], list[float]] = {}

        def acc(prefix, which, value, nxt=nxt):
            cur = nxt.setdefault(prefix, [_NEG_INF, _NEG_INF])
            cur[which] = _logaddexp(cur[which], value)

        for prefix, (pb, pnb) in beams.items():
            total = _logaddexp(pb, pnb)
            acc(prefix, 0, total + row[blank])
            last = prefix[-1] if prefix else None
            for c in cands:
                if c == last:
                    acc(prefix + (c,), 1, pb + row[c])  # a repeat needs a blank in between
                    acc(prefix, 1, pnb + row[c])  # or it merges into the same label
                else:
                    acc(prefix + (c,), 1, total + row[c])
        ranked = sorted(nxt.items(), key=lambda kv: _logaddexp(*kv[1]), reverse=True)
        beams = {k: (v[0], v[1]) for k, v in ranked[:beam_size]}
    best, (pb, pnb) = max(beams.items(), key=lambda kv: _logaddexp(*kv[1]))
    return list(best), _logaddexp(pb, pnb)


def edit_distance(a: list[int], b: list[int]) -> int:
    """Levenshtein distance between two label sequences."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


class CTCRecognizer(Model):
    """Frame-level encoder (any cell, bidirectional allowed) + linear head over ``num_labels + 1`` classes,
    trained with the CTC loss; decoded greedily (best path) or by prefix beam search.

    With ``time_delay_layers > 0`` the encoder is a :class:`~rnnkit.models.tdnn.TimeDelayEncoder` (width-``w``
    convolutions over the frames, no recurrence) and ``encoder`` is not used: the feed-forward counterpart,
    trained and decoded exactly as the recurrent model.

    Batches: ``{"inputs" (B, T, I), "lengths" (B,), "targets" (B, S) labels in 1..num_labels right-padded,
    "target_lengths" (B,)}``. A target longer than its input can be aligned (``S`` plus the number of
    repeated neighbours must not exceed the input length) is a clear error, not an infinite loss.

    Example::

        >>> model = CTCRecognizer(CTCConfig(num_labels=5, input_size=8, encoder=EncoderConfig("lstm", 32,
        ...                       bidirectional=True)))
        >>> log_probs = model(torch.randn(2, 30, 8))          # (2, 30, 6)
        >>> labels = model.decode(torch.randn(2, 30, 8), beam_size=4)   # two lists of labels
    """

    config_class = CTCConfig
    batch_keys = ("inputs", "targets", "lengths", "target_lengths")

    def __init__(self, config: CTCConfig | dict[str, Any]):
        super().__init__(config)
        c = self.config
        positive("num_labels", c.num_labels)
        positive("beam_size", c.beam_size)
        if not 0.0 <= c.dropout < 1.0:
            raise RnnkitError(f"dropout must be in [0, 1), got {c.dropout}")
        self.embed = InputEmbedding(c.vocab_size, c.input_size, c.embedding_dim, c.dropout)
        positive("time_delay_layers", c.time_delay_layers, zero_ok=True)
        if c.time_delay_layers:
            self.encoder = TimeDelayEncoder(
                self.embed.size, c.time_delay_size, c.time_delay_layers, c.time_delay_width, c.dropout
            )
        else:
            self.encoder = c.encoder.build(self.embed.size)
        self.head = make_head(self.encoder.output_size, c.num_labels + 1, c.head_hidden, c.dropout)

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Per-frame log-probabilities (B, T, num_labels + 1); class 0 is the blank."""
        x = self.embed(inputs)
        lengths = check_lengths(lengths, x.shape[0], x.shape[1])
        out, _ = self.encoder(x, None, lengths)
        return self.head(out).log_softmax(-1)

    def loss(self, batch: Any, state: Any = None) -> LossOutput:
        b = as_batch(batch, self.batch_keys)
        inputs = require(b, "inputs")
        log_probs = self(inputs, b.get("lengths"))
        B, T = log_probs.shape[0], log_probs.shape[1]
        lengths = b.get("lengths")
        lengths = (
            torch.full((B,), T, dtype=torch.long) if lengths is None else torch.as_tensor(lengths).long()
        )
        targets, tl = self._check_targets(require(b, "targets"), b.get("target_lengths"), lengths)
        loss = (
            F.ctc_loss(
                log_probs.transpose(0, 1), targets, lengths.cpu(), tl.cpu(), blank=BLANK, reduction="sum"
            )
            / B
        )
        metrics: dict[str, float] = {}
        if not self.training:
            hyps = ctc_greedy_decode(log_probs.detach(), lengths)
            refs = [targets[i, : int(tl[i])].tolist() for i in range(B)]
            metrics["edit_distance"] = float(sum(edit_distance(h, r) for h, r in zip(hyps, refs)))
            metrics["exact_match"] = float(sum(h == r for h, r in zip(hyps, refs)))
        return LossOutput(loss, B, None, metrics)

    def _check_targets(self, targets: Any, target_lengths: Any, lengths: Tensor) -> tuple[Tensor, Tensor]:
        B = lengths.shape[0]
        if not isinstance(targets, Tensor) or targets.is_floating_point() or targets.dim() != 2:
            got = (
                f"{targets.dtype} {tuple(targets.shape)}"
                if isinstance(targets, Tensor)
                else type(targets).__name__
            )
            raise RnnkitError(f"targets must be a 2-D integer tensor (batch, labels), got {got}")
        if targets.shape[0] != B:
            raise RnnkitError(f"targets must have one row per sequence: expected {B}, got {targets.shape[0]}")
        S = targets.shape[1]
        if target_lengths is None:
            tl = torch.full((B,), S, dtype=torch.long)
        else:
            tl = check_lengths(target_lengths, B, S, name="target_lengths")
        n = self.config.num_labels
        for i in range(B):
            row = targets[i, : int(tl[i])]
            if row.numel() and (int(row.min()) < 1 or int(row.max()) > n):
                raise RnnkitError(
                    f"targets out of range: labels must lie in [1, num_labels={n}] (0 is the blank), "
                    f"got min {int(row.min())} and max {int(row.max())} in sequence {i}"
                )
            need = row.numel() + int((row[1:] == row[:-1]).sum()) if row.numel() else 0
            if need > int(lengths[i]):
                raise RnnkitError(
                    f"sequence {i}: a target of {row.numel()} labels needs at least {need} input frames, "
                    f"got {int(lengths[i])}"
                )
        return targets.long(), tl

    @torch.no_grad()
    def decode(
        self, inputs: Tensor, lengths: Tensor | None = None, beam_size: int | None = None
    ) -> list[list[int]]:
        """Label sequences: greedy with ``beam_size=1``, else prefix beam search (default ``config.beam_size``)."""
        beam = self.config.beam_size if beam_size is None else beam_size
        positive("beam_size", beam)
        was_training = self.training
        self.eval()
        try:
            log_probs = self(inputs, lengths)
        finally:
            self.train(was_training)
        if beam == 1:
            return ctc_greedy_decode(log_probs, lengths)
        T = log_probs.shape[1]
        ns = [T] * log_probs.shape[0] if lengths is None else [int(n) for n in lengths]
        return [ctc_prefix_beam_search(log_probs[i, : ns[i]], beam)[0] for i in range(log_probs.shape[0])]
