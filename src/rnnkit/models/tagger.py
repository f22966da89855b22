"""Many-to-many, aligned: one output per input step — :class:`SequenceTagger` and :class:`StreamingPredictor`.

Shape convention (batch first): inputs (B, T) ids or (B, T, I) features, ``lengths`` (B,) -> outputs
(B, T, num_outputs); outputs at padded steps are ignored by the loss.
"""

from __future__ import annotations

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
    no_bidirectional,
    positive,
    require,
    step_mask,
)
from rnnkit.models.classifier import _regression_loss, make_head

__all__ = ["TaggerConfig", "StreamingConfig", "SequenceTagger", "StreamingPredictor"]

TASKS = ("classification", "regression")


@dataclass
class TaggerConfig:
    """A label (or a value vector) for every step of a sequence."""

    task: str = "classification"  # classification (a tag per step) | regression (values per step)
    num_outputs: int = 2  # tags (classification) or values per step (regression)
    vocab_size: int = 0  # > 0: inputs are token ids embedded in embedding_dim; 0: float features
    input_size: int = 0  # features per step when vocab_size == 0
    embedding_dim: int = 64  # embedding size when vocab_size > 0
    encoder: EncoderConfig = field(default_factory=EncoderConfig)  # bidirectional allowed (no TBPTT then)
    head_hidden: int = 0  # a tanh hidden layer of this size before the output; 0 = linear head
    dropout: float = 0.0  # on the embeddings and before the head
    loss: str = "mse"  # regression loss: mse | l1 | huber


@dataclass
class StreamingConfig:
    """A one-to-one streaming predictor: each call maps one input to one output; the state is carried."""

    task: str = "regression"  # regression (values) | classification (a label per input)
    num_outputs: int = 1  # values (regression) or classes (classification) per input
    vocab_size: int = 0  # > 0: inputs are token ids; 0: float features
    input_size: int = 1  # features per input when vocab_size == 0
    embedding_dim: int = 64  # embedding size when vocab_size > 0
    encoder: EncoderConfig = field(default_factory=EncoderConfig)  # must be unidirectional (causal)
    head_hidden: int = 0  # a tanh hidden layer of this size before the output; 0 = linear head
    dropout: float = 0.0  # on the inputs' embeddings and before the head
    loss: str = "mse"  # regression loss: mse | l1 | huber


class _Aligned(Model):
    time_keys = ("inputs", "targets")

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        self._check()
        if c.task not in TASKS:
            raise RnnkitError(f"unknown task: expected one of {TASKS}, got {c.task!r}")
        if c.loss not in ("mse", "l1", "huber"):
            raise RnnkitError(f"unknown loss: expected mse | l1 | huber, got {c.loss!r}")
        positive("num_outputs", c.num_outputs)
        if not 0.0 <= c.dropout < 1.0:
            raise RnnkitError(f"dropout must be in [0, 1), got {c.dropout}")
        self.embed = InputEmbedding(c.vocab_size, c.input_size, c.embedding_dim, c.dropout)
        self.encoder = c.encoder.build(self.embed.size)
        self.head = make_head(self.encoder.output_size, c.num_outputs, c.head_hidden, c.dropout)

    def _check(self) -> None:
        pass

    @property
    def supports_tbptt(self) -> bool:
        return not self.encoder.bidirectional

    def forward(self, inputs: Tensor, state: Any = None, lengths: Tensor | None = None) -> tuple[Tensor, Any]:
        """Inputs (B, T) ids / (B, T, I) features -> ``(outputs (B, T, num_outputs), final_state)``.

        ``state`` continues a previous call (lengths may then be 0 for sequences that have ended).
        """
        x = self.embed(inputs)
        lengths = check_lengths(lengths, x.shape[0], x.shape[1], allow_zero=state is not None)
        out, state = self.encoder(x, state, lengths)
        return self.head(out), state

    def loss(self, batch: Any, state: Any = None) -> LossOutput:
        b = as_batch(batch, self.batch_keys)
        out, state = self(require(b, "inputs"), state, b.get("lengths"))
        B, T = out.shape[0], out.shape[1]
        lengths = b.get("lengths")
        mask = step_mask(None if lengths is None else torch.as_tensor(lengths), B, T, out.device)
        y = require(b, "targets")
        n = int(mask.sum())
        if self.config.task == "classification":
            y = _tag_targets(y, (B, T), self.config.num_outputs, mask)
            if n == 0:
                return LossOutput(out.sum() * 0.0, 0, state, {"accuracy": 0.0})
            logits = out[mask]  # (N, C)
            loss = F.cross_entropy(logits, y[mask])
            correct = float((logits.argmax(-1) == y[mask]).sum())
            return LossOutput(loss, n, state, {"accuracy": correct})
        if not isinstance(y, Tensor) or not y.is_floating_point() or y.shape != out.shape:
            got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
            raise RnnkitError(f"targets must be a float tensor of shape {tuple(out.shape)}, got {got}")
        if n == 0:
            return LossOutput(out.sum() * 0.0, 0, state, {"mse": 0.0, "mae": 0.0})
        pred, tgt = out[mask], y[mask]  # (N, O)
        err = (pred.detach() - tgt).float()
        metrics = {"mse": float(err.pow(2).mean(-1).sum()), "mae": float(err.abs().mean(-1).sum())}
        return LossOutput(_regression_loss(self.config.loss, pred, tgt), n, state, metrics)


def _tag_targets(y: Any, shape: tuple[int, int], num: int, mask: Tensor) -> Tensor:
    if not isinstance(y, Tensor) or y.is_floating_point():
        raise RnnkitError(f"targets must be an integer tensor of tags, got {getattr(y, 'dtype', type(y))}")
    if tuple(y.shape) != shape:
        raise RnnkitError(f"targets must have shape {shape}, got {tuple(y.shape)}")
    valid = y[mask]
    if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= num):
        raise RnnkitError(
            f"targets out of range: tags must lie in [0, num_outputs={num}), "
            f"got min {int(valid.min())} and max {int(valid.max())}"
        )
    return y.long()


class SequenceTagger(_Aligned):
    """Many-to-many, aligned: a tag (or value vector) for every input step.

    Shape: inputs (B, T) ids / (B, T, I) features -> ``(outputs (B, T, num_outputs), state)``.
    Batches: ``{"inputs", "targets" (B, T) ints or (B, T, num_outputs) floats, "lengths"}``. With a
    unidirectional encoder the trainer may use truncated BPTT (the state is carried across chunks).

    Example::

        >>> tagger = SequenceTagger(TaggerConfig(num_outputs=5, vocab_size=50,
        ...                                      encoder=EncoderConfig("lstm", 32, bidirectional=True)))
        >>> out, _ = tagger(torch.randint(0, 50, (2, 7)))
        >>> out.shape
        torch.Size([2, 7, 5])
    """

    config_class = TaggerConfig

    def __init__(self, config: TaggerConfig | dict[str, Any]):
        super().__init__(config)


class StreamingPredictor(_Aligned):
    """One-to-one with carried state: each call maps the current input to one output (a live sensor's next
    value from its current reading), the recurrent state remembering everything seen before.

    Train it on whole sequences like a tagger (``forward``/``loss``, truncated BPTT allowed); use it one input
    at a time with :meth:`step` (explicit state) or :meth:`predict` (the model keeps the stream's state until
    :meth:`reset`). The encoder must be unidirectional.

    Shape: ``step(x_t (B, I) or (B,) ids, state) -> (y_t (B, num_outputs), state)``.

    Example::

        >>> model = StreamingPredictor(StreamingConfig(input_size=1, encoder=EncoderConfig("gru", 16)))
        >>> for reading in [0.1, 0.3, 0.2]:
        ...     y = model.predict(torch.tensor([[reading]]))     # (1, 1), state carried between calls
        >>> model.reset()
    """

    config_class = StreamingConfig

    def __init__(self, config: StreamingConfig | dict[str, Any]):
        super().__init__(config)
        self._stream_state: Any = None

    def _check(self) -> None:
        no_bidirectional(self.config.encoder, "a streaming predictor's encoder")

    def step(self, x_t: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """One input per sequence -> ``(output (B, num_outputs), new state)``; same numbers as ``forward``."""
        if self.config.vocab_size:
            x = self.embed(x_t.unsqueeze(1) if isinstance(x_t, Tensor) else x_t, "x_t")[:, 0]  # (B, E)
        else:
            if isinstance(x_t, Tensor) and x_t.dim() == 2:
                x = self.embed(x_t.unsqueeze(1), "x_t")[:, 0]  # (B, I)
            else:
                got = tuple(x_t.shape) if isinstance(x_t, Tensor) else type(x_t).__name__
                raise RnnkitError(f"x_t must be (batch, input_size={self.config.input_size}), got {got}")
        y, state = self.encoder.step(x, state)
        return self.head(y), state

    @torch.no_grad()
    def predict(self, x_t: Tensor) -> Tensor:
        """:meth:`step` with the state kept inside the model between calls (see :meth:`reset`)."""
        state = self._stream_state
        if state is not None:
            h = state[0] if isinstance(state, tuple) else state
            if h.shape[1] != x_t.shape[0]:
                raise RnnkitError(
                    f"the stream has {h.shape[1]} sequences but x_t has {x_t.shape[0]}; call reset() first"
                )
        y, self._stream_state = self.step(x_t, state)
        return y

    def reset(self) -> None:
        """Forget the stream's state: the next :meth:`predict` starts a new stream."""
        self._stream_state = None
