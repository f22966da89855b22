"""The captioning model: a small CNN trained from scratch, a recurrent grid encoder and an attention decoder.

:class:`ImageCaptioner` reuses :class:`rnnkit.models.Seq2Seq` for everything after the CNN: the grid of CNN
features, read in row-major order, is Seq2Seq's source sequence (float features), so the decoder, its
attention, teacher forcing and the greedy / beam-search decoding (:mod:`rnnkit.models.decoding`) are the
translation model's. :func:`caption_ids` decodes a batch of images into n-best lists with attention maps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit._errors import RnnkitError
from rnnkit.apps.caption.config import CaptionConfig, image_size
from rnnkit.apps.caption.data import BOS, EOS, PAD, as_tensor
from rnnkit.models import EncoderConfig, LossOutput, Model, Seq2Seq, Seq2SeqConfig
from rnnkit.models._base import smoothed_cross_entropy, step_mask

__all__ = ["CaptionerConfig", "ImageCaptioner", "build_model", "caption_ids"]


@dataclass
class CaptionerConfig:
    """A CNN over ``(3, image_height, image_width)`` images and a :class:`Seq2Seq` over its feature grid."""

    image_height: int = 32  # input images are scaled to this size
    image_width: int = 32
    channels: int = 64  # channels of the last CNN block; block i of n has channels / 2**(n-1-i)
    conv_blocks: int = 3  # each block: a 3x3 convolution, batch norm, ReLU, 2x2 max pooling
    label_smoothing: float = 0.0  # training loss: share of each target's probability spread evenly
    seq2seq: Seq2SeqConfig = field(
        default_factory=lambda: Seq2SeqConfig(src_vocab_size=0, src_input_size=64)
    )  # src_input_size must equal channels


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class ImageCaptioner(Model):
    r"""Image captioning with attention over a CNN feature grid (after Xu et al. 2015, Show, Attend and Tell).

    The CNN maps an image (3, H, W) to a grid :math:`a \in \mathbb{R}^{h \times w \times C}` with
    :math:`h = H / 2^n`, :math:`w = W / 2^n`. Its cells, read row by row, are the source sequence of a
    :class:`~rnnkit.models.Seq2Seq`: a bidirectional recurrent layer runs over them (it tells each cell
    where it lies, as the row encoder of Deng et al. 2017 does), the decoder's initial state is
    :math:`\tanh(W h_{enc})`, and at every word the decoder attends over the :math:`h w` cells
    (:math:`\alpha_t`, additive or Luong's general score) and predicts :math:`p(y_t \mid y_{<t}, a)`. The
    attention weights, reshaped to (h, w), show where the model looked for each word.

    Args:
        config: a :class:`CaptionerConfig` (or its dict).

    Shape: images (B, 3, H, W) float; tgt (B, T) word ids ending in ``eos_id``; logits (B, T, V);
    attention (B, T, h * w).

    Example::

        >>> cfg = CaptionerConfig(16, 16, channels=8, conv_blocks=2,
        ...                       seq2seq=Seq2SeqConfig(src_vocab_size=0, src_input_size=8, tgt_vocab_size=12,
        ...                                             encoder=EncoderConfig("gru", 8, bidirectional=True),
        ...                                             decoder=EncoderConfig("gru", 16)))
        >>> model = ImageCaptioner(cfg)
        >>> out = model.generate(torch.zeros(2, 3, 16, 16), strategy="beam", beam_size=2, max_length=5)
        >>> out.extras.shape[-1]    # attention over the 4 x 4 grid
        16
    """

    config_class = CaptionerConfig
    batch_keys = ("images", "tgt", "tgt_lengths")

    def __init__(self, config: CaptionerConfig | dict[str, Any]):
        super().__init__(config)
        c = self.config
        if c.seq2seq.src_vocab_size != 0 or c.seq2seq.src_input_size != c.channels:
            raise RnnkitError(
                "the Seq2Seq of an ImageCaptioner reads CNN features: expected src_vocab_size 0 and "
                f"src_input_size {c.channels}, got {c.seq2seq.src_vocab_size} and {c.seq2seq.src_input_size}"
            )
        if min(c.image_height, c.image_width) < 2**c.conv_blocks:
            raise RnnkitError(
                f"images of {c.image_height}x{c.image_width} are too small for {c.conv_blocks} CNN blocks "
                f"(each halves the size): expected at least {2**c.conv_blocks} pixels a side"
            )
        widths = [max(4, c.channels // 2 ** (c.conv_blocks - 1 - i)) for i in range(c.conv_blocks)]
        widths[-1] = c.channels
        self.cnn = nn.Sequential(*[_block(a, b) for a, b in zip([3, *widths[:-1]], widths)])
        self.seq2seq = Seq2Seq(c.seq2seq)

    @property
    def encoder(self):
        """The recurrent layer over the grid (``encoder.backend`` names its backend)."""
        return self.seq2seq.encoder

    @property
    def grid(self) -> tuple[int, int]:
        """``(h, w)``: the attention grid of an image of the configured size."""
        n = 2**self.config.conv_blocks
        return self.config.image_height // n, self.config.image_width // n

    def features(self, images: Tensor) -> Tensor:
        """Images (B, 3, H, W) -> grid cells (B, h * w, C), row by row."""
        c = self.config
        if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3:
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise RnnkitError(f"images must be a (batch, 3, height, width) tensor, got {got}")
        if tuple(images.shape[2:]) != (c.image_height, c.image_width):
            raise RnnkitError(
                f"images must be {c.image_height}x{c.image_width}, got {images.shape[2]}x{images.shape[3]}"
            )
        g = self.cnn(images.float())  # (B, C, h, w)
        return g.flatten(2).transpose(1, 2)  # (B, h*w, C)

    def forward(self, images: Tensor, tgt_in: Tensor) -> tuple[Tensor, Tensor | None]:
        """Decoder inputs ``tgt_in`` (B, T) (``[bos] + tgt[:-1]``) -> ``(logits (B, T, V), attention)``."""
        return self.seq2seq(self.features(images), tgt_in)

    def loss(self, batch: Any, state: Any = None) -> LossOutput:
        """Cross-entropy over the caption words (label-smoothed by ``config.label_smoothing``); metrics:
        ``nll`` (unsmoothed, summed) and ``accuracy`` (summed)."""
        tgt = batch["tgt"]
        B, T = tgt.shape
        bos = torch.full((B, 1), self.config.seq2seq.bos_id, dtype=torch.long, device=tgt.device)
        logits, _ = self(batch["images"], torch.cat([bos, tgt[:, :-1]], 1))  # (B, T, V)
        mask = step_mask(batch["tgt_lengths"], B, T, logits.device)
        lg, y = logits[mask], tgt[mask]  # (N, V), (N,)
        loss, nll, correct = smoothed_cross_entropy(lg, y, self.config.label_smoothing)
        return LossOutput(loss, int(y.numel()), None, {"nll": nll, "accuracy": correct})

    def generate(self, images: Tensor, **decoding):
        """Greedy or beam-search captions (:meth:`Seq2Seq.generate`'s options); ``extras``: attention."""
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                return self.seq2seq.generate(self.features(images), None, **decoding)
        finally:
            self.train(was)


def build_model(cfg: CaptionConfig, vocab_size: int, feedforward: bool = False) -> ImageCaptioner:
    """The :class:`ImageCaptioner` ``cfg`` describes, for a caption vocabulary of ``vocab_size`` words; with
    ``feedforward``, its counterpart without recurrence (the same CNN; ``cfg.ff_layers`` time-delay convolutions
    over the grid cells, ``hidden_size`` wide, and a decoder that sees its last ``cfg.ff_context`` words)."""
    h, w = image_size(cfg)
    ff = cfg.feedforward_seq2seq(cfg.hidden_size) if feedforward else {}
    return ImageCaptioner(
        CaptionerConfig(
            image_height=h,
            image_width=w,
            channels=cfg.channels,
            conv_blocks=cfg.conv_blocks,
            label_smoothing=cfg.label_smoothing,
            seq2seq=Seq2SeqConfig(
                src_vocab_size=0,
                src_input_size=cfg.channels,
                tgt_vocab_size=vocab_size,
                embedding_dim=cfg.embedding_dim,
                encoder=EncoderConfig(cfg.cell, cfg.hidden_size // 2, bidirectional=True),
                decoder=EncoderConfig(cfg.cell, cfg.hidden_size),
                attention=cfg.attention,
                attention_dim=cfg.attention_dim,
                dropout=cfg.dropout,
                bos_id=BOS,
                eos_id=EOS,
                pad_id=PAD,
                **ff,
            ),
        )
    )


@torch.no_grad()
def caption_ids(
    model: ImageCaptioner,
    images: np.ndarray,
    beam: int = 1,
    length_penalty: float = 1.0,
    max_length: int = 25,
    batch_size: int = 64,
    attention: bool = False,
) -> list[dict]:
    """Caption uint8 images (N, H, W, 3); per image ``{"hypotheses": [(ids, score), ...], "attention"}``.

    ``beam = 1`` decodes greedily; ``beam > 1`` runs batched beam search and keeps its n-best list (best
    first). A score is the summed log-probability of the words and the end token divided by
    ``length ** length_penalty``. ``attention`` adds the best caption's weights as an array (words, h, w).
    """
    model.eval()
    h, w = model.grid
    out: list[dict] = []
    for a in range(0, len(images), batch_size):
        x = as_tensor(images[a : a + batch_size])
        if beam > 1:
            res = model.generate(
                x, strategy="beam", beam_size=beam, length_penalty=length_penalty, max_length=max_length
            )
            hyps = res.hypotheses
        else:
            res = model.generate(x, strategy="greedy", max_length=max_length)
            steps = (res.lengths + res.finished.long()).clamp(min=1).float()
            norm = res.scores / steps**length_penalty if length_penalty else res.scores
            hyps = [[(toks, float(s))] for toks, s in zip(res.to_lists(), norm)]
        for k in range(x.shape[0]):
            entry: dict[str, Any] = {"hypotheses": [(list(t), float(s)) for t, s in hyps[k]]}
            if attention and res.extras is not None:
                n = int(res.lengths[k])
                entry["attention"] = res.extras[k, :n].reshape(n, h, w).cpu().numpy()
            out.append(entry)
    return out
