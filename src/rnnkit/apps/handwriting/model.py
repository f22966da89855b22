"""The handwriting model: a CRNN (Shi, Bai & Yao 2015) built on :class:`rnnkit.models.CTCRecognizer`.

Three conv blocks turn a line image ``(B, 1, H, W)`` into a sequence of column features ``(B, W/4, F)``:
each block is conv 3x3 -> batch norm -> ReLU -> max-pool, pooling (2, 2), (2, 2) and (2, 1), so the height
shrinks 8 times and the width 4 times (one frame per 4 pixel columns) and ``F = channels[2] * H / 8``.
The :class:`~rnnkit.models.CTCRecognizer` reads the frames with a bidirectional LSTM and is trained with
CTC; it decodes greedily or by prefix beam search.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import app_encoder
from rnnkit.apps.handwriting.data import STRIDE, collate
from rnnkit.models import CTCConfig, CTCRecognizer, LossOutput, Model
from rnnkit.models._base import as_batch, require

__all__ = ["CRNN", "CRNNConfig", "build_model", "decode_lines"]


@dataclass
class CRNNConfig:
    """A conv feature extractor over the height and a CTC recognizer over the width."""

    height: int = 32  # input line height in pixels (a multiple of 8)
    channels: list[int] = field(default_factory=lambda: [16, 32, 64])  # output channels of the 3 conv blocks
    ctc: CTCConfig = field(default_factory=CTCConfig)  # the recurrent recognizer; its input_size is set here


class CRNN(Model):
    """Line images to label sequences: conv blocks -> bidirectional RNN over the width -> CTC.

    Batches: ``{"images" (B, 1, H, W), "widths" (B,) valid pixel columns, "targets" (B, S) labels in
    1..num_labels, "target_lengths" (B,)}``. Frame ``t`` sees pixel columns ``4t .. 4t + 3`` (plus the conv
    context), and a line of ``w`` columns has ``ceil(w / 4)`` frames.

    Shape: images ``(B, 1, H, W)`` with ``H = config.height``, ``W`` a multiple of 4 -> log-probabilities
    ``(B, W / 4, num_labels + 1)``.

    Example::

        >>> model = CRNN(CRNNConfig(height=32, ctc=CTCConfig(num_labels=10)))
        >>> model(torch.zeros(2, 1, 32, 64)).shape
        torch.Size([2, 16, 11])
    """

    config_class = CRNNConfig
    batch_keys = ("images", "targets", "widths", "target_lengths")
    lengths_key = "widths"
    POOLS = ((2, 2), (2, 2), (2, 1))  # (height, width) pooling of the three conv blocks

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        if c.height < 8 or c.height % 8:
            raise RnnkitError(f"height must be a positive multiple of 8, got {c.height}")
        if len(c.channels) != 3:
            raise RnnkitError(f"channels: expected three conv blocks, got {len(c.channels)}")
        blocks, cin = [], 1
        for cout, pool in zip(c.channels, self.POOLS):
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                    nn.BatchNorm2d(cout),
                    nn.ReLU(),
                    nn.MaxPool2d(pool),
                )
            )
            cin = cout
        self.conv = nn.ModuleList(blocks)
        self.config.ctc.input_size = c.channels[2] * (c.height // 8)
        self.config.ctc.vocab_size = 0
        self.ctc = CTCRecognizer(self.config.ctc)

    @property
    def encoder(self):
        """The recurrent encoder, or the time-delay one of the feed-forward counterpart (for reports of its
        size and backend)."""
        return self.ctc.encoder

    def _check(self, images: Tensor) -> Tensor:
        if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 1:
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise RnnkitError(f"images must be a (batch, 1, height, width) tensor, got {got}")
        if images.shape[2] != self.config.height:
            raise RnnkitError(
                f"images must be {self.config.height} pixels high (the model's height), got {images.shape[2]}"
            )
        if images.shape[3] % STRIDE or images.shape[3] == 0:
            raise RnnkitError(f"image width must be a positive multiple of {STRIDE}, got {images.shape[3]}")
        return images.float()

    def features(self, images: Tensor, widths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Column features ``(B, W/4, F)`` and the frame counts ``(B,)``."""
        x = self._check(images)
        B = x.shape[0]
        valid = None if widths is None else torch.as_tensor(widths, device=x.device).long().clamp(min=1)
        for block, (_, pw) in zip(self.conv, self.POOLS):
            if valid is not None:
                # zero everything right of each line, so a line reads the same alone or padded in a batch
                keep = torch.arange(x.shape[-1], device=x.device) < valid[:, None]  # (B, W)
                x = x * keep[:, None, None, :]
            x = block(x)
            if valid is not None:
                valid = (valid + pw - 1) // pw
        _, C, h, T = x.shape  # (B, C, H/8, W/4)
        x = x.permute(0, 3, 1, 2).reshape(B, T, C * h)  # (B, T, F)
        frames = torch.full((B,), T, dtype=torch.long) if valid is None else valid.clamp(max=T).cpu()
        return x, frames

    def forward(self, images: Tensor, widths: Tensor | None = None) -> Tensor:
        """Per-frame log-probabilities ``(B, W/4, num_labels + 1)``; class 0 is the blank."""
        feats, frames = self.features(images, widths)
        return self.ctc(feats, frames)

    def loss(self, batch, state=None) -> LossOutput:
        b = as_batch(batch, self.batch_keys)
        feats, frames = self.features(require(b, "images"), b.get("widths"))
        inner = {"inputs": feats, "lengths": frames, "targets": require(b, "targets")}
        if b.get("target_lengths") is not None:
            inner["target_lengths"] = b["target_lengths"]
        out = self.ctc.loss(inner)
        if not self.training:  # characters, so that the trainer's val_edit_distance / val_chars is the CER
            out.metrics["chars"] = float(torch.as_tensor(inner.get("target_lengths", 0)).sum())
        return out

    @torch.no_grad()
    def log_probs(self, images: Tensor, widths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(log-probabilities (B, T, C), frames (B,))`` in eval mode."""
        was = self.training
        self.eval()
        try:
            feats, frames = self.features(images, widths)
            return self.ctc(feats, frames), frames
        finally:
            self.train(was)

    @torch.no_grad()
    def decode(self, images: Tensor, widths: Tensor | None = None, beam_size: int | None = None):
        """Label sequences: greedy with ``beam_size=1``, else prefix beam search (default: the config's)."""
        was = self.training
        self.eval()
        try:
            feats, frames = self.features(images, widths)
            return self.ctc.decode(feats, frames, beam_size)
        finally:
            self.train(was)


def build_model(cfg, num_labels: int, feedforward: bool = False) -> CRNN:
    """The CRNN of the application config ``cfg`` for an alphabet of ``num_labels`` characters; with
    ``feedforward``, its counterpart without recurrence: ``cfg.ff_layers`` time-delay convolutions as wide as the
    BiLSTM's output (``2 * hidden_size``) in its place."""
    encoder = app_encoder(cfg, bidirectional=True, backend=cfg.backend)
    ff = cfg.time_delay(2 * cfg.hidden_size) if feedforward else {}
    ctc = CTCConfig(
        num_labels=num_labels, encoder=encoder, dropout=cfg.dropout, beam_size=cfg.beam_size, **ff
    )
    return CRNN(CRNNConfig(height=cfg.height, channels=list(cfg.channels), ctc=ctc))


def decode_lines(
    model: CRNN,
    lines,
    alphabet: str,
    beam_size: int | None = None,
    batch_size: int = 64,
    lexicon=None,
    lm=None,
    cfg=None,
):
    """The text of each line image (``(H, W)`` arrays), in order. With a
    :class:`~rnnkit.models.lexicon.Lexicon`, every word is one of its words (prefix beam search
    constrained by it, ``beam_size`` wide, by default ``cfg.lexicon_beam``), ranked with the word LM ``lm``
    when one is given (weights ``cfg.lm_weight``, ``cfg.word_bonus``)."""
    from rnnkit.models.lexicon import lexicon_beam_search

    order = sorted(range(len(lines)), key=lambda i: lines[i].shape[1])  # similar widths: less padding
    texts: dict[int, str] = {}
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        b = collate([lines[i] for i in idx])
        if lexicon is None:
            seqs = model.decode(b["images"], b["widths"], beam_size)
        else:
            lp, frames = model.log_probs(b["images"], b["widths"])
            if beam_size is not None:
                beam = beam_size
            else:
                beam = cfg.lexicon_beam if cfg is not None else model.config.ctc.beam_size
            weights = cfg.search_weights() if cfg is not None else {}
            seqs = [
                lexicon_beam_search(lp[k, : int(frames[k])], lexicon, beam, lm=lm, **weights)[0]
                for k in range(len(idx))
            ]
        for i, seq in zip(idx, seqs):
            texts[i] = "".join(alphabet[k - 1] for k in seq)
    return [texts[i] for i in range(len(lines))]
