"""Many-to-one models: a sequence in, one label (:class:`SequenceClassifier`) or vector (:class:`SequenceRegressor`) out.

Shape convention (batch first): inputs (B, T) token ids or (B, T, I) features, ``lengths`` (B,) in [1, T]
(right padding); outputs (B, C).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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
    step_mask,
    top_hidden,
)
from rnnkit.models.attention import Pooling

__all__ = [
    "ClassifierConfig",
    "ClassifierEnsemble",
    "RegressorConfig",
    "SequenceClassifier",
    "SequenceRegressor",
    "WindowRegressor",
    "WindowRegressorConfig",
]


@dataclass
class ClassifierConfig:
    """A many-to-one classifier: embedding (or features) -> recurrent encoder -> pooling -> head."""

    num_classes: int = 2  # labels are ints in [0, num_classes)
    vocab_size: int = 0  # > 0: inputs are token ids embedded in embedding_dim; 0: float features
    input_size: int = 0  # features per step when vocab_size == 0
    embedding_dim: int = 64  # embedding size when vocab_size > 0
    encoder: EncoderConfig = field(default_factory=EncoderConfig)  # bidirectional is fine here
    pooling: str = "last"  # last | mean | max | attention
    attention_dim: int = 64  # size of the attention-pooling scorer
    head_hidden: int = 0  # a tanh hidden layer of this size before the output; 0 = linear head
    dropout: float = 0.0  # on the embeddings and before the head


@dataclass
class RegressorConfig:
    """A many-to-one regressor; as :class:`ClassifierConfig` with a real-valued output."""

    output_size: int = 1  # values predicted per sequence
    vocab_size: int = 0  # > 0: token-id inputs; 0: float features
    input_size: int = 0  # features per step when vocab_size == 0
    embedding_dim: int = 64  # embedding size when vocab_size > 0
    encoder: EncoderConfig = field(default_factory=EncoderConfig)  # bidirectional is fine here
    pooling: str = "last"  # last | mean | max | attention
    attention_dim: int = 64  # size of the attention-pooling scorer
    head_hidden: int = 0  # a tanh hidden layer of this size before the output; 0 = linear head
    dropout: float = 0.0  # on the embeddings and before the head
    loss: str = "mse"  # mse | l1 | huber


def make_head(in_size: int, out_size: int, hidden: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Dropout(dropout)] if dropout else []
    if hidden:
        layers += [nn.Linear(in_size, hidden), nn.Tanh(), nn.Linear(hidden, out_size)]
    else:
        layers.append(nn.Linear(in_size, out_size))
    return nn.Sequential(*layers)


class _Pooled(Model):
    """Embedding -> encoder -> pooling -> head (shared by the classifier and the regressor)."""

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        out_size = self._out_size()
        if not 0.0 <= c.dropout < 1.0:
            raise RnnkitError(f"dropout must be in [0, 1), got {c.dropout}")
        self.embed = InputEmbedding(c.vocab_size, c.input_size, c.embedding_dim, c.dropout)
        self.encoder = c.encoder.build(self.embed.size)
        self.pool = Pooling(c.pooling, self.encoder.output_size, c.attention_dim)
        self.head = make_head(self.encoder.output_size, out_size, c.head_hidden, c.dropout)

    def encode(self, inputs: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """``(pooled (B, C), attention weights (B, T) or None)``."""
        x = self.embed(inputs)
        B, T = x.shape[0], x.shape[1]
        lengths = check_lengths(lengths, B, T)
        out, state = self.encoder(x, None, lengths)  # (B, T, C)
        return self.pool(out, step_mask(lengths, B, T, x.device), top_hidden(self.encoder, state))

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Inputs (B, T) ids or (B, T, I) features -> (B, out)."""
        pooled, _ = self.encode(inputs, lengths)
        return self.head(pooled)


class SequenceClassifier(_Pooled):
    """Many-to-one classification: one label per sequence.

    Args: ``config`` — a :class:`ClassifierConfig` (or its dict).

    Shape: inputs (B, T) ids / (B, T, I) features, lengths (B,) -> logits (B, num_classes).
    Batches for :meth:`loss` / the trainer: ``{"inputs", "targets" (B,) ints, "lengths"}`` or that tuple.

    Example::

        >>> cfg = ClassifierConfig(num_classes=3, vocab_size=100, encoder=EncoderConfig("gru", 32,
        ...                        bidirectional=True), pooling="attention")
        >>> model = SequenceClassifier(cfg)
        >>> logits = model(torch.randint(0, 100, (4, 12)), lengths=torch.tensor([12, 5, 3, 1]))
        >>> logits.shape
        torch.Size([4, 3])
    """

    config_class = ClassifierConfig

    def __init__(self, config: ClassifierConfig | dict[str, Any]):
        super().__init__(config)

    def _out_size(self) -> int:
        positive("num_classes", self.config.num_classes)
        return self.config.num_classes

    def loss(self, batch: Any, state: Any = None) -> LossOutput:
        b = as_batch(batch, self.batch_keys)
        logits = self(require(b, "inputs"), b.get("lengths"))
        y = _class_targets(require(b, "targets"), logits.shape[0], self.config.num_classes)
        loss = F.cross_entropy(logits, y)
        correct = float((logits.argmax(-1) == y).sum())
        return LossOutput(loss, y.shape[0], None, {"accuracy": correct})

    @torch.no_grad()
    def predict(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Class probabilities (B, num_classes)."""
        return self(inputs, lengths).softmax(-1)


class SequenceRegressor(_Pooled):
    """Many-to-one regression: one vector per sequence (e.g. the next values of a series).

    Shape: inputs (B, T[, I]), lengths (B,) -> (B, output_size). Batches: ``{"inputs", "targets"
    (B, output_size) floats, "lengths"}``.

    Example::

        >>> model = SequenceRegressor(RegressorConfig(output_size=2, input_size=3, pooling="mean"))
        >>> model(torch.randn(4, 10, 3)).shape
        torch.Size([4, 2])
    """

    config_class = RegressorConfig

    def __init__(self, config: RegressorConfig | dict[str, Any]):
        super().__init__(config)

    def _out_size(self) -> int:
        positive("output_size", self.config.output_size)
        if self.config.loss not in ("mse", "l1", "huber"):
            raise RnnkitError(f"unknown loss: expected mse | l1 | huber, got {self.config.loss!r}")
        return self.config.output_size

    def loss(self, batch: Any, state: Any = None) -> LossOutput:
        return _regression_output(self, batch)


@dataclass
class WindowRegressorConfig:
    """A feed-forward regressor over a fixed window: the recurrent regressor's counterpart without recurrence."""

    output_size: int = 1  # values predicted per window
    input_size: int = 1  # features per step
    window: int = 8  # steps read: the last `window` of the input
    hidden_size: int = 64  # width of each hidden ReLU layer
    num_layers: int = 2  # hidden layers (0: a linear map of the window)
    dropout: float = 0.0  # before each linear layer after the first
    loss: str = "mse"  # mse | l1 | huber


class WindowRegressor(Model):
    """Feed-forward many-to-one regression over the last ``window`` steps (no recurrence).

    The window is flattened and passed through ``num_layers`` ReLU layers and a linear output:

    .. math::

        u_0 = \\mathrm{vec}(x_{T-w+1..T}),\\quad u_k = \\mathrm{ReLU}(W_k u_{k-1} + b_k),\\quad
        \\hat y = W_o u_L + b_o

    It reads the same inputs as a :class:`SequenceRegressor` and is trained with the same losses, so next to
    one it shows what the recurrence buys (the time-series application's feed-forward counterpart, for one
    series and for a global model; :class:`rnnkit.baselines.MLPForecaster` is a fitted-in-one-call MLP on the
    raw window instead).

    Args: ``config`` — a :class:`WindowRegressorConfig` (or its dict).

    Shape: inputs (B, T, I) with ``T >= window`` (``lengths``, if given, must all be ``T``: it reads the last
    ``window`` steps) -> (B, output_size). Batches as for :class:`SequenceRegressor`.

    Example::

        >>> model = WindowRegressor(WindowRegressorConfig(output_size=4, input_size=1, window=12))
        >>> model(torch.randn(5, 20, 1)).shape
        torch.Size([5, 4])
    """

    config_class = WindowRegressorConfig

    def __init__(self, config: WindowRegressorConfig | dict[str, Any]):
        super().__init__(config)
        c = self.config
        for name in ("output_size", "input_size", "window", "hidden_size"):
            positive(name, getattr(c, name))
        positive("num_layers", c.num_layers, zero_ok=True)
        if not 0.0 <= c.dropout < 1.0:
            raise RnnkitError(f"dropout must be in [0, 1), got {c.dropout}")
        if c.loss not in ("mse", "l1", "huber"):
            raise RnnkitError(f"unknown loss: expected mse | l1 | huber, got {c.loss!r}")
        layers: list[nn.Module] = []
        width = c.window * c.input_size
        for k in range(c.num_layers):
            if k and c.dropout:
                layers.append(nn.Dropout(c.dropout))
            layers += [nn.Linear(width, c.hidden_size), nn.ReLU()]
            width = c.hidden_size
        if c.num_layers and c.dropout:
            layers.append(nn.Dropout(c.dropout))
        layers.append(nn.Linear(width, c.output_size))
        self.net = nn.Sequential(*layers)

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Inputs (B, T, I) -> (B, output_size) from the last ``window`` steps."""
        c = self.config
        if inputs.dim() != 3 or inputs.shape[2] != c.input_size or inputs.shape[1] < c.window:
            raise RnnkitError(
                f"inputs must have shape (batch, T >= {c.window}, {c.input_size}), got {tuple(inputs.shape)}"
            )
        B, T = inputs.shape[0], inputs.shape[1]
        if lengths is not None and bool((check_lengths(lengths, B, T) != T).any()):
            raise RnnkitError(f"a window regressor reads whole windows: every length must be {T}")
        return self.net(inputs[:, T - c.window :].reshape(B, -1))

    def loss(self, batch: Any, state: Any = None) -> LossOutput:
        return _regression_output(self, batch)


def _regression_output(model: Model, batch: Any) -> LossOutput:
    """A regressor's loss (its config's ``loss``) and summed per-row MSE / MAE on ``{"inputs", "targets",
    "lengths"}``."""
    b = as_batch(batch, model.batch_keys)
    pred = model(require(b, "inputs"), b.get("lengths"))
    y = _value_targets(require(b, "targets"), pred.shape)
    loss = _regression_loss(model.config.loss, pred, y)
    err = (pred.detach() - y).float()
    metrics = {"mse": float(err.pow(2).mean(-1).sum()), "mae": float(err.abs().mean(-1).sum())}
    return LossOutput(loss, pred.shape[0], None, metrics)


def _regression_loss(kind: str, pred: Tensor, y: Tensor) -> Tensor:
    if kind == "mse":
        return F.mse_loss(pred, y)
    if kind == "l1":
        return F.l1_loss(pred, y)
    return F.huber_loss(pred, y)


def _class_targets(y: Any, batch: int, num_classes: int) -> Tensor:
    if not isinstance(y, Tensor) or y.is_floating_point():
        raise RnnkitError(
            f"targets must be an integer tensor of class ids, got {getattr(y, 'dtype', type(y))}"
        )
    if y.dim() != 1 or y.shape[0] != batch:
        raise RnnkitError(f"targets must have shape ({batch},), got {tuple(y.shape)}")
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise RnnkitError(
            f"targets out of range: classes must lie in [0, num_classes={num_classes}), "
            f"got min {int(y.min())} and max {int(y.max())}"
        )
    return y.long()


def _value_targets(y: Any, shape: torch.Size) -> Tensor:
    if not isinstance(y, Tensor) or not y.is_floating_point():
        raise RnnkitError(f"targets must be a floating-point tensor, got {getattr(y, 'dtype', type(y))}")
    if y.shape != shape:
        raise RnnkitError(f"targets must have shape {tuple(shape)}, got {tuple(y.shape)}")
    return y


class ClassifierEnsemble(nn.Module):
    """Classifiers of the same shape as one model: the log of their mean class probabilities,

    .. math:: \\log \\bar p = \\operatorname{logsumexp}_k \\log \\operatorname{softmax}(z_k) - \\log K,

    so ``softmax`` of the output is the ensemble's mean probability (what a sentiment run's networks predict
    together, :meth:`predict`), and an argmax picks the same class. Exported as one graph by
    :func:`rnnkit.export.to_onnx` with the members' inputs and ``logits`` as the output.

    Args: ``members`` — :class:`SequenceClassifier` models (or subclasses) with equal configs.

    Shape: the members' inputs -> (B, num_classes).

    Example::

        >>> both = ClassifierEnsemble([net_a, net_b])
        >>> both(tokens, lengths).softmax(-1)  # == (net_a(...).softmax(-1) + net_b(...).softmax(-1)) / 2
    """

    def __init__(self, members):
        super().__init__()
        members = list(members)
        if not members or any(m.config != members[0].config for m in members):
            raise RnnkitError("an ensemble needs one or more classifiers with the same config")
        self.members = nn.ModuleList(members)
        self.config = members[0].config

    def forward(self, inputs, lengths=None, *extra, **named):
        logp = torch.stack([torch.log_softmax(m(inputs, lengths, *extra, **named), -1) for m in self.members])
        return torch.logsumexp(logp, 0) - torch.log(torch.tensor(float(len(self.members)), dtype=logp.dtype))

    @torch.no_grad()
    def predict(self, inputs, lengths=None, *extra, **named) -> Tensor:
        """The members' mean class probabilities (B, num_classes)."""
        return self(inputs, lengths, *extra, **named).softmax(-1)
