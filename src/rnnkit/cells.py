"""Cell modules: each owns its parameters and calls one pure step function from :mod:`rnnkit.functional`.

A cell processes one time step. Its work is split in two so that a layer can be fast:

* ``project_input(x)`` — the input half of the gate pre-activations for *all* steps at once, one matmul
  (``x`` may be (T, B, I) or (B, I)); layer-norm cells also normalise it here;
* ``step(xp_t, state, rec_mask=None) -> (y_t, new_state)`` — the recurrent half, one step.

``cell(x_t, state=None) -> (y_t, new_state)`` does both for a single step, like ``torch.nn.LSTMCell``
but always returning ``(output, state)``. Parameter names and gate order are PyTorch's.

Initialisation (per weight, documented once here):

* ``weight_ih``, ``weight_hh``, biases: uniform(-1/sqrt(H), 1/sqrt(H)), as ``torch.nn`` does;
* ``recurrent_init="orthogonal"``: ``weight_hh`` gate blocks each a (semi-)orthogonal matrix (Saxe et al. 2014);
* ``recurrent_init="identity"``: ``weight_hh`` = identity per gate block, biases 0 and ``weight_ih`` ~
  N(0, 0.001^2) — the IRNN of Le et al. (2015) when used with ``activation="relu"``;
* ``LSTMCell(forget_bias=1.0)``: the forget-gate slice of ``bias_ih`` is set to ``forget_bias`` and that of
  ``bias_hh`` to 0 (Gers et al. 2000; Jozefowicz et al. 2015). ``forget_bias=None`` keeps torch's uniform init;
* layer-norm gains 1, shifts 0; peephole weights uniform like the biases; ``MinGRU``/``MinLSTM`` use
  ``torch.nn.Linear``'s default init.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit import functional as RF
from rnnkit._errors import RnnkitError

__all__ = ["CellBase", "RNNCell", "LSTMCell", "GRUCell", "MinGRU", "MinLSTM"]

State = Tensor | tuple[Tensor, Tensor]

_RECURRENT_INITS = ("uniform", "orthogonal", "identity")


def check_float(name: str, t: Tensor) -> None:
    """Input validation shared by cells and layers: a floating-point tensor."""
    if not isinstance(t, Tensor):
        raise RnnkitError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise RnnkitError(
            f"{name} must be a floating-point tensor, got dtype {t.dtype} "
            "(integer token ids need an nn.Embedding first)"
        )


def check_cell_input(cell: CellBase, x_t: Tensor, state: State | None) -> None:
    """Validate a single-step cell call: ``x_t`` (B, I) and a matching state."""
    check_float("input", x_t)
    if x_t.dim() != 2:
        raise RnnkitError(f"cell input must be 2-D (batch, input_size), got shape {tuple(x_t.shape)}")
    if x_t.shape[1] != cell.input_size:
        raise RnnkitError(
            f"input.size(-1) must equal input_size: expected {cell.input_size}, got {x_t.shape[1]}"
        )
    if state is None:
        return
    parts = state if isinstance(state, tuple) else (state,)
    want = cell.state_sizes()
    if len(parts) != len(want):
        raise RnnkitError(
            f"state must have {len(want)} tensor(s) for {type(cell).__name__}, got {len(parts)}"
        )
    for p, n in zip(parts, want):
        if tuple(p.shape) != (x_t.shape[0], n):
            raise RnnkitError(f"state shape mismatch: expected {(x_t.shape[0], n)}, got {tuple(p.shape)}")


class CellBase(nn.Module):
    """Common interface of rnnkit cells (see the module docstring)."""

    #: number of gate blocks in ``weight_ih`` (``G`` in ``(G*H, I)``)
    gates: int = 1
    #: whether the state is a pair ``(h, c)`` (LSTM) or one tensor
    paired_state: bool = False
    #: whether ``h`` enters a matmul, so that variational recurrent dropout applies
    has_recurrence_matmul: bool = True

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        if not isinstance(input_size, int) or input_size < 1:
            raise RnnkitError(f"input_size must be a positive int, got {input_size!r}")
        if not isinstance(hidden_size, int) or hidden_size < 1:
            raise RnnkitError(f"hidden_size must be a positive int, got {hidden_size!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias

    # -- configuration ----------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The constructor arguments, enough to build a twin with :meth:`clone`."""
        raise NotImplementedError

    def clone(self, input_size: int | None = None) -> CellBase:
        """A freshly initialised cell with the same options (and optionally another input size)."""
        cfg = self.config()
        if input_size is not None:
            cfg["input_size"] = input_size
        return type(self)(**cfg)

    @property
    def output_size(self) -> int:
        return self.hidden_size

    def state_sizes(self) -> tuple[int, ...]:
        """Feature size of each state tensor: ``(H,)`` or ``(P, H)`` for an LSTM(P)."""
        return (self.hidden_size,)

    def native_mode(self) -> tuple[str | None, str]:
        """``(torch_mode, reason)``: the ``torch.nn.RNNBase`` mode that computes this cell, or None and why not."""
        return None, f"{type(self).__name__} has no torch kernel"

    # -- computation ------------------------------------------------------------------------------------
    def project_input(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def step(self, xp_t: Tensor, state: State, rec_mask: Tensor | None = None) -> tuple[Tensor, State]:
        raise NotImplementedError

    def zeros_state(self, batch_size: int, device=None, dtype=None) -> State:
        p = next(self.parameters())
        device = p.device if device is None else device
        dtype = p.dtype if dtype is None else dtype
        zs = tuple(torch.zeros(batch_size, n, device=device, dtype=dtype) for n in self.state_sizes())
        return zs if self.paired_state else zs[0]

    def forward(self, x_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One step on ``x_t`` (B, I); returns ``(y_t, new_state)``."""
        check_cell_input(self, x_t, state)
        if state is None:
            state = self.zeros_state(x_t.shape[0], x_t.device, x_t.dtype)
        return self.step(self.project_input(x_t), state)

    # -- initialisation helpers -------------------------------------------------------------------------
    def _init_uniform(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _init_recurrent(self, kind: str) -> None:
        weight = self.weight_hh
        blocks = weight.data.split(self.hidden_size, dim=0)
        if kind == "orthogonal":
            for blk in blocks:
                nn.init.orthogonal_(blk)
        elif kind == "identity":
            for blk in blocks:
                blk.copy_(torch.eye(*blk.shape))
            nn.init.normal_(self.weight_ih, 0.0, 0.001)
            for name in ("bias_ih", "bias_hh"):
                b = getattr(self, name, None)
                if b is not None:
                    nn.init.zeros_(b)


def _check_recurrent_init(recurrent_init: str) -> str:
    if recurrent_init not in _RECURRENT_INITS:
        raise RnnkitError(
            f"unknown recurrent_init: expected one of {_RECURRENT_INITS}, got {recurrent_init!r}"
        )
    return recurrent_init


class RNNCell(CellBase):
    r"""Elman RNN cell.

    .. math:: h' = \phi(W_{ih} x + b_{ih} + W_{hh} h + b_{hh}), \quad \phi \in \{\tanh, \mathrm{ReLU}, \sigma\}

    Args:
        input_size: ``I``.  hidden_size: ``H``.  bias: use ``b_ih`` and ``b_hh``.
        activation: ``"tanh"`` (default), ``"relu"``, ``"sigmoid"`` or any elementwise callable.
        recurrent_init: ``"uniform"`` | ``"orthogonal"`` | ``"identity"`` (see :mod:`rnnkit.cells`).

    Shape: ``x_t`` (B, I), state (B, H) -> ``y_t`` (B, H), state (B, H).

    Example::

        >>> cell = RNNCell(4, 8, activation="sigmoid")
        >>> y, h = cell(torch.randn(2, 4))
        >>> y.shape
        torch.Size([2, 8])
    """

    gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        activation: str | Callable[[Tensor], Tensor] = "tanh",
        recurrent_init: str = "uniform",
    ):
        super().__init__(input_size, hidden_size, bias)
        self.activation = activation
        self._act = RF.resolve_activation(activation)
        self.recurrent_init = _check_recurrent_init(recurrent_init)
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(hidden_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self._init_uniform()
        if self.recurrent_init != "uniform":
            self._init_recurrent(self.recurrent_init)

    def config(self) -> dict[str, Any]:
        return dict(
            input_size=self.input_size,
            hidden_size=self.hidden_size,
            bias=self.bias,
            activation=self.activation,
            recurrent_init=self.recurrent_init,
        )

    def native_mode(self) -> tuple[str | None, str]:
        if self.activation in ("tanh", "relu"):
            return f"RNN_{self.activation.upper()}", f"torch has an RNN-{self.activation} kernel"
        return None, f"torch has no kernel for an RNN with activation {self.activation!r}"

    def project_input(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight_ih, self.bias_ih)

    def step(self, xp_t, state, rec_mask=None):
        return RF.rnn_step(xp_t, state, self.weight_hh, self.bias_hh, self._act, rec_mask)


class LSTMCell(CellBase):
    r"""LSTM cell with input, forget and output gates and a cell state (gate order ``i, f, g, o``).

    .. math::
        i, f, o &= \sigma(\cdot),\ g = \tanh(\cdot)\ \text{of}\ W_{ih} x + b_{ih} + W_{hh} h + b_{hh} \\
        c' &= f \odot c + i \odot g, \qquad h' = o \odot \tanh(c')

    plus the options below; :func:`rnnkit.functional.lstm_step` gives the full equations.

    Args:
        input_size: ``I``.  hidden_size: ``H``.  bias: use ``b_ih`` and ``b_hh``.
        proj_size: ``P > 0`` projects ``h`` to ``P`` features with ``weight_hr`` (P, H), as ``torch.nn.LSTM``.
        peephole: connections from the cell to the gates (Gers & Schmidhuber 2000), ``weight_ci/cf/co`` (H,).
        layer_norm: Ba et al. (2016), as haste: LN on the input and on the recurrent pre-activations
            (each over all ``4H``; parameters ``ln_ih_*``, ``ln_hh_*``) and on ``c'`` before the output tanh
            (``ln_c_*``).
        forget_bias: initial forget-gate bias (default 1.0); ``None`` keeps torch's uniform init.
        cell_clip: clamp ``c'`` to ``[-cell_clip, cell_clip]`` (as in Sak et al. 2014); ``None`` = off.
        recurrent_init: ``"uniform"`` | ``"orthogonal"`` | ``"identity"``.

    Shape: ``x_t`` (B, I), state ``(h, c)`` with h (B, P or H), c (B, H) -> ``y_t`` = h'.

    Example::

        >>> cell = LSTMCell(4, 8, layer_norm=True, peephole=True)
        >>> y, (h, c) = cell(torch.randn(2, 4))
        >>> c.shape
        torch.Size([2, 8])
    """

    gates = 4
    paired_state = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        proj_size: int = 0,
        peephole: bool = False,
        layer_norm: bool = False,
        forget_bias: float | None = 1.0,
        cell_clip: float | None = None,
        recurrent_init: str = "uniform",
    ):
        super().__init__(input_size, hidden_size, bias)
        if not isinstance(proj_size, int) or proj_size < 0 or proj_size >= hidden_size and proj_size != 0:
            raise RnnkitError(
                f"proj_size must be an int in [0, hidden_size={hidden_size}), got {proj_size!r}"
            )
        if cell_clip is not None and not cell_clip > 0:
            raise RnnkitError(f"cell_clip must be positive or None, got {cell_clip!r}")
        self.proj_size = proj_size
        self.peephole = peephole
        self.layer_norm = layer_norm
        self.forget_bias = forget_bias
        self.cell_clip = cell_clip
        self.recurrent_init = _check_recurrent_init(recurrent_init)
        H, P = hidden_size, proj_size or hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, P))
        self.bias_ih = nn.Parameter(torch.empty(4 * H)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(4 * H)) if bias else None
        self.weight_hr = nn.Parameter(torch.empty(P, H)) if proj_size else None
        if peephole:
            self.weight_ci = nn.Parameter(torch.empty(H))
            self.weight_cf = nn.Parameter(torch.empty(H))
            self.weight_co = nn.Parameter(torch.empty(H))
        if layer_norm:
            self.ln_ih_weight = nn.Parameter(torch.empty(4 * H))
            self.ln_ih_bias = nn.Parameter(torch.empty(4 * H))
            self.ln_hh_weight = nn.Parameter(torch.empty(4 * H))
            self.ln_hh_bias = nn.Parameter(torch.empty(4 * H))
            self.ln_c_weight = nn.Parameter(torch.empty(H))
            self.ln_c_bias = nn.Parameter(torch.empty(H))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self._init_uniform()
        if self.recurrent_init != "uniform":
            self._init_recurrent(self.recurrent_init)
        if self.layer_norm:
            for name in ("ln_ih", "ln_hh", "ln_c"):
                nn.init.ones_(getattr(self, f"{name}_weight"))
                nn.init.zeros_(getattr(self, f"{name}_bias"))
        if self.forget_bias is not None and self.bias:
            H = self.hidden_size
            with torch.no_grad():
                self.bias_ih[H : 2 * H].fill_(self.forget_bias)
                self.bias_hh[H : 2 * H].zero_()

    def config(self) -> dict[str, Any]:
        return dict(
            input_size=self.input_size,
            hidden_size=self.hidden_size,
            bias=self.bias,
            proj_size=self.proj_size,
            peephole=self.peephole,
            layer_norm=self.layer_norm,
            forget_bias=self.forget_bias,
            cell_clip=self.cell_clip,
            recurrent_init=self.recurrent_init,
        )

    @property
    def output_size(self) -> int:
        return self.proj_size or self.hidden_size

    def state_sizes(self) -> tuple[int, ...]:
        return (self.output_size, self.hidden_size)

    def native_mode(self) -> tuple[str | None, str]:
        extras = [n for n in ("peephole", "layer_norm") if getattr(self, n)]
        if self.cell_clip is not None:
            extras.append("cell_clip")
        if extras:
            return None, f"torch's LSTM kernel has no {', '.join(extras)}"
        return "LSTM", "plain LSTM: torch's fused kernel (oneDNN on CPU, cuDNN on GPU)"

    def project_input(self, x: Tensor) -> Tensor:
        if not self.layer_norm:
            return nn.functional.linear(x, self.weight_ih, self.bias_ih)
        xp = RF.layer_norm(nn.functional.linear(x, self.weight_ih), self.ln_ih_weight, self.ln_ih_bias)
        return xp if self.bias_ih is None else xp + self.bias_ih

    def step(self, xp_t, state, rec_mask=None):
        return RF.lstm_step(
            xp_t,
            state,
            self.weight_hh,
            self.bias_hh,
            weight_hr=self.weight_hr,
            peephole=(self.weight_ci, self.weight_cf, self.weight_co) if self.peephole else None,
            ln_hh=(self.ln_hh_weight, self.ln_hh_bias) if self.layer_norm else None,
            ln_c=(self.ln_c_weight, self.ln_c_bias) if self.layer_norm else None,
            cell_clip=self.cell_clip,
            rec_mask=rec_mask,
        )


class GRUCell(CellBase):
    r"""GRU cell with reset and update gates (gate order ``r, z, n``).

    .. math::
        r = \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}), \quad z = \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\
        n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})), \quad h' = (1 - z) \odot n + z \odot h

    This is the ``reset_after=True`` form of PyTorch and cuDNN. ``reset_after=False`` is the original of
    Cho et al. (2014): ``n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)``. See
    :func:`rnnkit.functional.gru_step` for where layer norm enters.

    Args:
        input_size: ``I``.  hidden_size: ``H``.  bias: use ``b_ih`` and ``b_hh``.
        reset_after: which of the two forms (above).
        layer_norm: LN on the input pre-activations (``ln_ih_*``, 3H) and on the recurrent ones (``ln_hh_*``:
            3H with ``reset_after``; else 2H for ``r, z`` plus ``ln_hn_*`` (H) for ``W_hn (r ⊙ h)``).
        recurrent_init: ``"uniform"`` | ``"orthogonal"`` | ``"identity"``.

    Shape: ``x_t`` (B, I), state (B, H) -> ``y_t`` (B, H), state (B, H).

    Example::

        >>> cell = GRUCell(4, 8, reset_after=False)
        >>> y, h = cell(torch.randn(2, 4))
    """

    gates = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        reset_after: bool = True,
        layer_norm: bool = False,
        recurrent_init: str = "uniform",
    ):
        super().__init__(input_size, hidden_size, bias)
        self.reset_after = reset_after
        self.layer_norm = layer_norm
        self.recurrent_init = _check_recurrent_init(recurrent_init)
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * H, H))
        self.bias_ih = nn.Parameter(torch.empty(3 * H)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(3 * H)) if bias else None
        if layer_norm:
            self.ln_ih_weight = nn.Parameter(torch.empty(3 * H))
            self.ln_ih_bias = nn.Parameter(torch.empty(3 * H))
            n_hh = 3 * H if reset_after else 2 * H
            self.ln_hh_weight = nn.Parameter(torch.empty(n_hh))
            self.ln_hh_bias = nn.Parameter(torch.empty(n_hh))
            if not reset_after:
                self.ln_hn_weight = nn.Parameter(torch.empty(H))
                self.ln_hn_bias = nn.Parameter(torch.empty(H))
        self.reset_parameters()

    def _ln_names(self) -> tuple[str, ...]:
        return ("ln_ih", "ln_hh") if self.reset_after else ("ln_ih", "ln_hh", "ln_hn")

    def reset_parameters(self) -> None:
        self._init_uniform()
        if self.recurrent_init != "uniform":
            self._init_recurrent(self.recurrent_init)
        if self.layer_norm:
            for name in self._ln_names():
                nn.init.ones_(getattr(self, f"{name}_weight"))
                nn.init.zeros_(getattr(self, f"{name}_bias"))

    def config(self) -> dict[str, Any]:
        return dict(
            input_size=self.input_size,
            hidden_size=self.hidden_size,
            bias=self.bias,
            reset_after=self.reset_after,
            layer_norm=self.layer_norm,
            recurrent_init=self.recurrent_init,
        )

    def native_mode(self) -> tuple[str | None, str]:
        if self.layer_norm:
            return None, "torch's GRU kernel has no layer_norm"
        if not self.reset_after:
            return None, "torch's GRU kernel computes only the reset_after=True form"
        return "GRU", "plain GRU: torch's kernel"

    def project_input(self, x: Tensor) -> Tensor:
        if not self.layer_norm:
            return nn.functional.linear(x, self.weight_ih, self.bias_ih)
        xp = RF.layer_norm(nn.functional.linear(x, self.weight_ih), self.ln_ih_weight, self.ln_ih_bias)
        return xp if self.bias_ih is None else xp + self.bias_ih

    def step(self, xp_t, state, rec_mask=None):
        ln = self.layer_norm
        return RF.gru_step(
            xp_t,
            state,
            self.weight_hh,
            self.bias_hh,
            reset_after=self.reset_after,
            ln_hh=(self.ln_hh_weight, self.ln_hh_bias) if ln else None,
            ln_hn=(self.ln_hn_weight, self.ln_hn_bias) if ln and not self.reset_after else None,
            rec_mask=rec_mask,
        )


class _MinCell(CellBase):
    """Shared parts of the parallel-scan cells of Feng et al. (2024): no recurrent weights."""

    has_recurrence_matmul = False

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__(input_size, hidden_size, bias)
        self.weight_ih = nn.Parameter(torch.empty(self.gates * hidden_size, input_size))
        self.bias_ih = nn.Parameter(torch.empty(self.gates * hidden_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # torch.nn.Linear's default: kaiming-uniform weight, bias uniform(+-1/sqrt(fan_in))
        nn.init.kaiming_uniform_(self.weight_ih, a=math.sqrt(5))
        if self.bias_ih is not None:
            bound = 1 / math.sqrt(self.input_size)
            nn.init.uniform_(self.bias_ih, -bound, bound)

    def config(self) -> dict[str, Any]:
        return dict(input_size=self.input_size, hidden_size=self.hidden_size, bias=self.bias)

    def project_input(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight_ih, self.bias_ih)

    def log_coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        """``(log a, log b)`` of the linear recurrence ``h_t = a_t ⊙ h_{t-1} + b_t`` for projections ``xp``."""
        raise NotImplementedError


class MinGRU(_MinCell):
    r"""minGRU of Feng et al. (2024), "Were RNNs All We Needed?" — gates depend on the input only.

    .. math:: z_t = \sigma(W_z x_t + b_z),\ \tilde h_t = g(W_h x_t + b_h),\ h_t = (1 - z_t) h_{t-1} + z_t \tilde h_t

    with ``g(x) = x + 0.5`` for ``x >= 0`` and ``sigmoid(x)`` otherwise (the paper's log-space version).
    Because ``h_t`` is linear in ``h_{t-1}``, a whole sequence is computed by a parallel scan in log space
    (:func:`rnnkit.scan.min_rnn_scan`); the step form here is the reference it is tested against.
    Parameters: ``weight_ih`` (2H, I) = ``[W_z; W_h]``, ``bias_ih`` (2H).

    Example::

        >>> cell = MinGRU(4, 8)
        >>> y, h = cell(torch.randn(2, 4))
    """

    gates = 2

    def step(self, xp_t, state, rec_mask=None):
        return RF.min_gru_step(xp_t, state)

    def log_coefficients(self, xp):
        k_z, k_h = xp.chunk(2, dim=-1)
        log_z = -nn.functional.softplus(-k_z)  # log sigmoid
        log_1mz = -nn.functional.softplus(k_z)  # log (1 - sigmoid)
        return log_1mz, log_z + RF.min_log_g(k_h)


class MinLSTM(_MinCell):
    r"""minLSTM of Feng et al. (2024) with normalised gates.

    .. math::
        f_t = \sigma(W_f x_t + b_f),\ i_t = \sigma(W_i x_t + b_i),\ \tilde h_t = g(W_h x_t + b_h) \\
        h_t = \frac{f_t}{f_t + i_t} h_{t-1} + \frac{i_t}{f_t + i_t} \tilde h_t

    Parameters: ``weight_ih`` (3H, I) = ``[W_f; W_i; W_h]``, ``bias_ih`` (3H).

    Example::

        >>> cell = MinLSTM(4, 8)
        >>> y, h = cell(torch.randn(2, 4))
    """

    gates = 3

    def step(self, xp_t, state, rec_mask=None):
        return RF.min_lstm_step(xp_t, state)

    def log_coefficients(self, xp):
        k_f, k_i, k_h = xp.chunk(3, dim=-1)
        log_f, log_i = RF.min_lstm_log_gates(k_f, k_i)
        return log_f, log_i + RF.min_log_g(k_h)
