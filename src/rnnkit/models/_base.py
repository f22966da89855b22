"""Shared parts of the models: the encoder config, config (de)serialisation, the model base class, input checks.

Every model is ``Model(config)`` where ``config`` is a typed dataclass; ``model.to_config()`` is a JSON-able
dict (with the model's class name under ``"model"``) and ``Model.from_config(d)`` builds the same
architecture from it, so a model can be saved as safetensors + JSON (:mod:`rnnkit.models.io`), never pickled.

Models also speak the trainer's protocol (:mod:`rnnkit.train`): ``model.loss(batch, state=None)`` returns a
:class:`LossOutput`; models whose targets are aligned with their inputs set ``time_keys`` so that the
trainer can cut batches along time for truncated BPTT.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from rnnkit._errors import RnnkitError
from rnnkit.cells import GRUCell, LSTMCell, MinGRU, MinLSTM, RNNCell
from rnnkit.config import config_from_dict, config_to_dict
from rnnkit.layers import Recurrent
from rnnkit.models.io import MODEL_REGISTRY
from rnnkit.train.protocol import LossOutput

__all__ = [
    "EncoderConfig",
    "LossOutput",
    "Model",
    "MODEL_REGISTRY",
    "config_from_dict",
    "config_to_dict",
]

#: cell names accepted by :class:`EncoderConfig`
CELLS = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell, "mingru": MinGRU, "minlstm": MinLSTM}
_CELL_NAMES = {cls: name for name, cls in CELLS.items()}


# -- configs -------------------------------------------------------------------------------------------------
@dataclass
class EncoderConfig:
    """A recurrent layer (:class:`~rnnkit.Recurrent`) as data: which cell, how many layers, which options.

    ``cell_options`` are passed to the cell constructor (e.g. ``{"activation": "relu", "recurrent_init":
    "identity"}`` for an IRNN, ``{"layer_norm": True}``, ``{"forget_bias": 1.0}``); the input size is set by
    the model that owns the encoder.
    """

    cell: str = "lstm"  # rnn | lstm | gru | mingru | minlstm
    hidden_size: int = 128  # H of every layer
    num_layers: int = 1  # stacked layers
    bidirectional: bool = False  # add a reverse direction (encoders only; never an autoregressive decoder)
    merge: str = "concat"  # how the last layer combines directions: concat | sum | mean | mul
    dropout: float = 0.0  # dropout between stacked layers
    recurrent_dropout: float = 0.0  # variational dropout on h inside the recurrence (Gal & Ghahramani 2016)
    zoneout: float = 0.0  # zoneout probability (Krueger et al. 2017)
    learn_initial_state: bool = False  # learn h0 (and c0) instead of zeros
    backend: str = "auto"  # auto | reference | native | scan | fused
    cell_options: dict[str, Any] = field(default_factory=dict)  # extra cell constructor arguments

    def build(self, input_size: int) -> Recurrent:
        """The layer this config describes, with ``input_size`` input features (batch-first)."""
        if self.cell not in CELLS:
            raise RnnkitError(f"unknown cell: expected one of {sorted(CELLS)}, got {self.cell!r}")
        if "input_size" in self.cell_options or "hidden_size" in self.cell_options:
            raise RnnkitError("cell_options must not contain input_size or hidden_size (set by the config)")
        try:
            cell = CELLS[self.cell](input_size, self.hidden_size, **self.cell_options)
        except TypeError as e:
            raise RnnkitError(f"bad cell_options for {self.cell!r}: {e}") from None
        return Recurrent(
            cell,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            merge=self.merge,
            dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
            zoneout=self.zoneout,
            learn_initial_state=self.learn_initial_state,
            batch_first=True,
            backend=self.backend,
        )

    @classmethod
    def from_layer(cls, layer: Recurrent) -> EncoderConfig:
        """Describe an existing layer (its cell options included), e.g. to build a model around it."""
        if not isinstance(layer, Recurrent):
            raise RnnkitError(f"expected an rnnkit Recurrent layer, got {type(layer).__name__}")
        name = _CELL_NAMES.get(type(layer.cell))
        if name is None:
            raise RnnkitError(f"cell {type(layer.cell).__name__} has no config name")
        opts = {k: v for k, v in layer.cell.config().items() if k not in ("input_size", "hidden_size")}
        if callable(opts.get("activation")):
            raise RnnkitError("a cell with a callable activation cannot be described as data")
        if not layer.batch_first:
            raise RnnkitError("models use batch-first layers; got a time-major layer")
        return cls(
            cell=name,
            hidden_size=layer.hidden_size,
            num_layers=layer.num_layers,
            bidirectional=layer.bidirectional,
            merge=layer.merge,
            dropout=layer.dropout,
            recurrent_dropout=layer.recurrent_dropout,
            zoneout=layer.zoneout,
            learn_initial_state=layer.initial_state is not None,
            backend=layer.requested_backend,
            cell_options=opts,
        )


# -- the base class --------------------------------------------------------------------------------------------
class Model(nn.Module):
    """Base of the rnnkit models: a typed config, ``to_config``/``from_config``, save/load and ``loss``."""

    #: the config dataclass of this model
    config_class: ClassVar[type]
    #: the keys of a batch dict, in the order a batch tuple lists them
    batch_keys: ClassVar[tuple[str, ...]] = ("inputs", "targets", "lengths")
    #: batch keys cut along time by truncated BPTT (empty: the model does not support it)
    time_keys: ClassVar[tuple[str, ...]] = ()
    #: the key of per-sequence lengths in a batch
    lengths_key: ClassVar[str] = "lengths"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            MODEL_REGISTRY[cls.__name__] = cls

    def __init__(self, config):
        super().__init__()
        self.config = config_from_dict(self.config_class, config)

    def to_config(self) -> dict[str, Any]:
        """The config as a JSON-able dict, with this model's class name under ``"model"``."""
        return {"model": type(self).__name__, **config_to_dict(self.config)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | Any) -> Model:
        """Build a fresh model from a config dataclass or a dict made by :meth:`to_config`."""
        if isinstance(config, Mapping):
            config = dict(config)
            name = config.pop("model", cls.__name__)
            if name != cls.__name__:
                raise RnnkitError(f"config is for model {name!r}, not {cls.__name__!r}")
        return cls(config)

    def save(self, path) -> None:
        """Save weights (safetensors) and config (JSON) into directory ``path`` (see :mod:`rnnkit.models.io`)."""
        from rnnkit.models.io import save_model

        save_model(self, path)

    @classmethod
    def load(cls, path) -> Model:
        """A model saved with :meth:`save`; it must be of this class (``Model.load`` accepts any)."""
        from rnnkit.models.io import load_model

        return load_model(path, expected=None if cls is Model else cls)

    @property
    def supports_tbptt(self) -> bool:
        """Whether the trainer may cut this model's batches along time (truncated BPTT)."""
        return bool(self.time_keys)

    def loss(self, batch: Any, state: Any = None) -> LossOutput:
        raise NotImplementedError


# -- input checks and helpers ----------------------------------------------------------------------------------
def positive(name: str, value: Any, zero_ok: bool = False) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and (value >= 0 if zero_ok else value >= 1)
    if not ok:
        raise RnnkitError(f"{name} must be a {'non-negative' if zero_ok else 'positive'} int, got {value!r}")


def check_batch_size(x: Tensor, name: str = "input") -> int:
    if x.shape[0] == 0:
        raise RnnkitError(f"empty batch: {name} has shape {tuple(x.shape)}")
    return x.shape[0]


def check_tokens(x: Any, vocab_size: int, name: str = "tokens", dims: int = 2) -> Tensor:
    """``x`` must be an integer tensor of rank ``dims`` with ids in ``[0, vocab_size)``."""
    if not isinstance(x, Tensor):
        raise RnnkitError(f"{name} must be a torch.Tensor of token ids, got {type(x).__name__}")
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise RnnkitError(f"{name} must hold integer token ids, got dtype {x.dtype}")
    if x.dim() != dims:
        shape = "(batch, time)" if dims == 2 else "(batch,)"
        raise RnnkitError(f"{name} must be {dims}-D {shape}, got shape {tuple(x.shape)}")
    check_batch_size(x, name)
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= vocab_size):
        raise RnnkitError(
            f"{name} out of range: ids must lie in [0, vocab_size={vocab_size}), "
            f"got min {int(x.min())} and max {int(x.max())}"
        )
    return x.long()


def check_features(x: Any, size: int, name: str = "inputs", dims: int = 3) -> Tensor:
    if not isinstance(x, Tensor):
        raise RnnkitError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise RnnkitError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() != dims:
        raise RnnkitError(f"{name} must be {dims}-D, got shape {tuple(x.shape)}")
    check_batch_size(x, name)
    if x.shape[-1] != size:
        raise RnnkitError(f"{name}.size(-1) must equal input_size: expected {size}, got {x.shape[-1]}")
    return x


def check_lengths(
    lengths: Any, batch: int, T: int, allow_zero: bool = False, name: str = "lengths"
) -> Tensor:
    """Per-sequence lengths: 1-D ints, one per sequence, in ``[1, T]`` (``[0, T]`` when continuing a state)."""
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths)
    if lengths.is_floating_point() or lengths.dim() != 1:
        raise RnnkitError(
            f"{name} must be a 1-D integer tensor, got dtype {lengths.dtype} shape {tuple(lengths.shape)}"
        )
    if lengths.numel() != batch:
        raise RnnkitError(f"{name} must have one entry per sequence: expected {batch}, got {lengths.numel()}")
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo < (0 if allow_zero else 1) or hi > T:
        low = 0 if allow_zero else 1
        raise RnnkitError(f"{name} must lie in [{low}, T={T}], got min {lo} and max {hi}")
    return lengths.to(torch.int64)


def step_mask(lengths: Tensor | None, B: int, T: int, device) -> Tensor:
    """(B, T) bool, True at valid steps."""
    if lengths is None:
        return torch.ones(B, T, dtype=torch.bool, device=device)
    return torch.arange(T, device=device).unsqueeze(0) < lengths.to(device).unsqueeze(1)


def smoothed_cross_entropy(
    logits: Tensor, targets: Tensor, smoothing: float = 0.0
) -> tuple[Tensor, float, float]:
    r"""Label-smoothed cross-entropy and its unsmoothed parts, from one ``log_softmax``.

    With :math:`\ell = \log\operatorname{softmax}(z)` over :math:`V` classes and smoothing :math:`\varepsilon`,
    the loss of a row with target :math:`y` is :math:`-(1-\varepsilon)\,\ell_y - \varepsilon\,\tfrac1V\sum_c
    \ell_c` (the target distribution :math:`(1-\varepsilon)\,\mathbf 1_y + \varepsilon/V`), as
    ``F.cross_entropy(logits, targets, label_smoothing=smoothing)`` computes it.

    Args:
        logits: (N, V) scores.
        targets: (N,) class ids.
        smoothing: :math:`\varepsilon \in [0, 1)`.

    Returns:
        ``(loss, nll, correct)``: the mean smoothed loss (a tensor with its graph), and, as floats, the summed
        unsmoothed negative log-likelihood :math:`-\sum \ell_y` and the number of rows whose argmax is the target.

    Example::

        >>> z, y = torch.randn(5, 7), torch.randint(0, 7, (5,))
        >>> loss, nll, correct = smoothed_cross_entropy(z, y, 0.1)
        >>> torch.allclose(loss, torch.nn.functional.cross_entropy(z, y, label_smoothing=0.1))
        True
    """
    logp = logits.log_softmax(-1)
    nll_rows = -logp.gather(1, targets.unsqueeze(1)).squeeze(1)  # (N,)
    loss = nll_rows.mean()
    if smoothing:
        loss = (1.0 - smoothing) * loss - smoothing * logp.mean()
    with torch.no_grad():
        nll = float(nll_rows.sum())
        correct = float((logits.argmax(-1) == targets).sum())
    return loss, nll, correct


def top_hidden(layer: Recurrent, state: Any) -> Tensor:
    """The last layer's final ``h`` of each direction, merged like the outputs: (B, output_size)."""
    h = state[0] if isinstance(state, tuple) else state  # (L*D, B, Y)
    D = layer.num_directions
    top = h[-D:]
    if D == 1:
        return top[0]
    merge = layer.merge
    if merge == "concat":
        return torch.cat([top[0], top[1]], dim=-1)
    return {"sum": top[0] + top[1], "mean": (top[0] + top[1]) * 0.5, "mul": top[0] * top[1]}[merge]


def as_batch(batch: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """Accept a dict or a tuple/list in the order ``names`` (trailing entries optional)."""
    if isinstance(batch, Mapping):
        unknown = sorted(set(batch) - set(names))
        if unknown:
            raise RnnkitError(f"unknown batch key(s) {unknown}; expected some of {list(names)}")
        return dict(batch)
    if isinstance(batch, (tuple, list)):
        if len(batch) > len(names):
            raise RnnkitError(
                f"a batch tuple has at most {len(names)} entries {list(names)}, got {len(batch)}"
            )
        return dict(zip(names, batch))
    raise RnnkitError(f"a batch must be a dict or a tuple, got {type(batch).__name__}")


def require(batch: dict[str, Any], key: str) -> Any:
    if batch.get(key) is None:
        raise RnnkitError(f"batch is missing {key!r}")
    return batch[key]


class InputEmbedding(nn.Module):
    """Token ids through an embedding (``vocab_size > 0``) or float features checked and passed through."""

    def __init__(self, vocab_size: int, input_size: int, embedding_dim: int, dropout: float = 0.0):
        super().__init__()
        self.vocab_size = vocab_size
        if vocab_size:
            positive("embedding_dim", embedding_dim)
            self.embedding = nn.Embedding(vocab_size, embedding_dim)
            self.size = embedding_dim
        else:
            positive("input_size", input_size)
            self.embedding = None
            self.size = input_size
        self.dropout = nn.Dropout(dropout) if dropout else None

    def forward(self, x: Tensor, name: str = "inputs") -> Tensor:
        if self.embedding is not None:
            x = self.embedding(check_tokens(x, self.vocab_size, name))  # (B, T, E)
        else:
            x = check_features(x, self.size, name)
        return x if self.dropout is None else self.dropout(x)


def no_bidirectional(cfg: EncoderConfig, what: str) -> None:
    if cfg.bidirectional:
        raise RnnkitError(
            f"{what} cannot be bidirectional: it runs step by step and the reverse direction needs the future"
        )
