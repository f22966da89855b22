"""Recurrent layers: stacking, bidirectionality, masking and dropout around one cell type.

``Recurrent(cell, ...)`` runs any rnnkit cell over sequences; ``RNN``, ``LSTM`` and ``GRU`` build it from
``torch.nn``-like arguments. Shape convention: batch first, ``x`` (B, T, I) -> outputs (B, T, D*Y) where
``D`` = 2 if bidirectional and ``Y`` the cell's output size (time-major with ``batch_first=False``). The
final state has torch's layout: ``h_n`` (L*D, B, Y), and for an LSTM ``(h_n, c_n)`` with ``c_n`` (L*D, B, H).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit import backends
from rnnkit._errors import RnnkitError
from rnnkit.cells import CellBase, GRUCell, LSTMCell, RNNCell, State
from rnnkit.loop import advance

__all__ = ["Recurrent", "RNN", "LSTM", "GRU", "zeros_state", "detach_state", "check_cell_input"]

MERGES = ("concat", "sum", "mean", "mul")

LayerState = Tensor | tuple[Tensor, Tensor]


def _state_tuple(state: LayerState) -> tuple[Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


def detach_state(state):
    """Detach a state (tensor, tuple or list of them) from the graph: the cut of truncated BPTT."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    return type(state)(detach_state(s) for s in state)


def zeros_state(layer: Recurrent, batch_size: int, device=None, dtype=None) -> LayerState:
    """A zero initial state for ``layer`` in its public layout (see :class:`Recurrent`)."""
    return layer.zeros_state(batch_size, device, dtype)


def _check_float(name: str, t: Tensor) -> None:
    if not isinstance(t, Tensor):
        raise RnnkitError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise RnnkitError(
            f"{name} must be a floating-point tensor, got dtype {t.dtype} "
            "(integer token ids need an nn.Embedding first)"
        )


def check_cell_input(cell: CellBase, x_t: Tensor, state: State | None) -> None:
    """Validate a single-step cell call: ``x_t`` (B, I) and a matching state."""
    _check_float("input", x_t)
    if x_t.dim() != 2:
        raise RnnkitError(f"cell input must be 2-D (batch, input_size), got shape {tuple(x_t.shape)}")
    if x_t.shape[1] != cell.input_size:
        raise RnnkitError(
            f"input.size(-1) must equal input_size: expected {cell.input_size}, got {x_t.shape[1]}"
        )
    if state is None:
        return
    parts = _state_tuple(state)
    want = cell.state_sizes()
    if len(parts) != len(want):
        raise RnnkitError(
            f"state must have {len(want)} tensor(s) for {type(cell).__name__}, got {len(parts)}"
        )
    for p, n in zip(parts, want):
        if tuple(p.shape) != (x_t.shape[0], n):
            raise RnnkitError(f"state shape mismatch: expected {(x_t.shape[0], n)}, got {tuple(p.shape)}")


class BackendChoice(str):
    """The name of the backend a layer will use (a ``str``), with ``.reason`` saying why."""

    reason: str

    def __new__(cls, name: str, reason: str):
        obj = super().__new__(cls, name)
        obj.reason = reason
        return obj


class Recurrent(nn.Module):
    r"""Run a cell over sequences: layers, directions, variable lengths, dropout, zoneout, carried state.

    Layer ``l`` direction ``d`` is cell ``cells[l * D + d]``; the first is ``cell`` itself and the others
    are fresh twins (:meth:`CellBase.clone`). Between layers the two directions are concatenated (as in
    ``torch.nn``); ``merge`` combines them in the last layer's outputs only.

    Args:
        cell: an rnnkit cell for layer 0, forward direction.
        num_layers: ``L`` stacked layers.
        bidirectional: add a reverse direction (future context), ``D = 2``.
        merge: ``"concat"`` (default; ``2Y`` features) | ``"sum"`` | ``"mean"`` | ``"mul"`` (``Y`` features).
        dropout: dropout on the outputs of every layer but the last (as ``torch.nn.LSTM``).
        recurrent_dropout: variational dropout on ``h`` where it enters the recurrent matmul; one mask per
            sequence, reused at every step (Gal & Ghahramani 2016). Identity in eval mode.
        zoneout: probability of keeping each state unit's previous value (Krueger et al. 2017); in eval mode
            the expectation ``p * old + (1 - p) * new`` is used.
        learn_initial_state: learn ``h0`` (and ``c0``) as parameters instead of zeros.
        batch_first: ``(B, T, I)`` input and output (default); ``False`` for time-major ``(T, B, I)``.
        backend: ``"auto"`` (default), ``"reference"``, ``"native"``, ``"scan"`` or ``"fused"``. ``layer.backend``
            says which one runs and why; forcing an impossible one is an error.

    Shape:
        x (B, T, I) or a ``PackedSequence``; ``lengths`` (B,) ints in ``[1, T]``; state as the final state.
        Returns ``(outputs, final_state)``: outputs (B, T, D*Y) — zero at padded steps — and the final state
        ``h_n`` (L*D, B, Y) or ``(h_n, c_n)``, each sequence's state at its own last valid step.

    Example::

        >>> layer = Recurrent(LSTMCell(8, 16, layer_norm=True), num_layers=2, bidirectional=True)
        >>> y, (h, c) = layer(torch.randn(4, 10, 8), lengths=torch.tensor([10, 7, 3, 1]))
        >>> y.shape, h.shape
        (torch.Size([4, 10, 32]), torch.Size([4, 4, 16]))
    """

    def __init__(
        self,
        cell: CellBase,
        num_layers: int = 1,
        bidirectional: bool = False,
        merge: str = "concat",
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        learn_initial_state: bool = False,
        batch_first: bool = True,
        backend: str = "auto",
    ):
        super().__init__()
        if not isinstance(cell, CellBase):
            raise RnnkitError(
                f"cell must be an rnnkit cell (RNNCell, LSTMCell, ...), got {type(cell).__name__}"
            )
        if not isinstance(num_layers, int) or num_layers < 1:
            raise RnnkitError(f"num_layers must be a positive int, got {num_layers!r}")
        if merge not in MERGES:
            raise RnnkitError(f"unknown merge: expected one of {MERGES}, got {merge!r}")
        for name, p in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout), ("zoneout", zoneout)):
            if not 0.0 <= float(p) < 1.0:
                raise RnnkitError(f"{name} must be in [0, 1), got {p!r}")
        if recurrent_dropout and not cell.has_recurrence_matmul:
            raise RnnkitError(f"recurrent_dropout needs a recurrent matmul; {type(cell).__name__} has none")
        backends.check_name(backend)
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        self.merge = merge
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.zoneout = float(zoneout)
        self.batch_first = batch_first
        self.requested_backend = backend
        cells = []
        for layer in range(num_layers):
            in_size = cell.input_size if layer == 0 else cell.output_size * self.num_directions
            for d in range(self.num_directions):
                cells.append(cell if layer == 0 and d == 0 else cell.clone(input_size=in_size))
        self.cells = nn.ModuleList(cells)
        self.initial_state = None
        if learn_initial_state:
            n = num_layers * self.num_directions
            self.initial_state = nn.ParameterList(
                [nn.Parameter(torch.zeros(n, size)) for size in cell.state_sizes()]
            )
        # a layer built by torch.nn-like constructors records its arguments for serialisation
        self.build_args: dict[str, Any] | None = None

    # -- introspection ----------------------------------------------------------------------------------
    @property
    def cell(self) -> CellBase:
        return self.cells[0]

    @property
    def input_size(self) -> int:
        return self.cell.input_size

    @property
    def hidden_size(self) -> int:
        return self.cell.hidden_size

    @property
    def output_size(self) -> int:
        """Features of the outputs: ``D*Y`` with ``merge="concat"``, else ``Y``."""
        y = self.cell.output_size
        return y * self.num_directions if self.merge == "concat" else y

    @property
    def backend(self) -> BackendChoice:
        """The backend the next forward call will use, with ``.reason``."""
        name, reason = backends.resolve(self, self.requested_backend)
        return BackendChoice(name, reason)

    def extra_repr(self) -> str:
        parts = [f"num_layers={self.num_layers}", f"bidirectional={self.bidirectional}"]
        for name in ("dropout", "recurrent_dropout", "zoneout"):
            if getattr(self, name):
                parts.append(f"{name}={getattr(self, name)}")
        if self.merge != "concat":
            parts.append(f"merge={self.merge!r}")
        parts.append(f"backend={self.requested_backend!r}")
        return ", ".join(parts)

    # -- state ------------------------------------------------------------------------------------------
    def zeros_state(self, batch_size: int, device=None, dtype=None) -> LayerState:
        p = next(self.parameters())
        device = p.device if device is None else device
        dtype = p.dtype if dtype is None else dtype
        n = self.num_layers * self.num_directions
        zs = tuple(torch.zeros(n, batch_size, s, device=device, dtype=dtype) for s in self.cell.state_sizes())
        return zs if self.cell.paired_state else zs[0]

    def start_state(self, batch: int, like: Tensor) -> LayerState:
        """The state a call starts from when none is given: the learned one, else zeros (``like``'s device/dtype)."""
        if self.initial_state is None:
            return self.zeros_state(batch, like.device, like.dtype)
        parts = tuple(p.unsqueeze(1).expand(-1, batch, -1) for p in self.initial_state)
        return parts if self.cell.paired_state else parts[0]

    def split_state(self, state: LayerState) -> list[State]:
        """Public layout (L*D, B, n) -> one state per cell."""
        parts = _state_tuple(state)
        out = []
        for k in range(len(self.cells)):
            per = tuple(p[k] for p in parts)
            out.append(per if self.cell.paired_state else per[0])
        return out

    def join_state(self, states: list[State]) -> LayerState:
        """One state per cell -> public layout (L*D, B, n)."""
        parts = tuple(torch.stack(ps) for ps in zip(*(_state_tuple(s) for s in states)))
        return parts if self.cell.paired_state else parts[0]

    # -- masks ------------------------------------------------------------------------------------------
    def sample_masks(
        self, T: int, batch: int, device, dtype
    ) -> list[tuple[Tensor | None, list[Tensor | float] | None]]:
        """Per cell: ``(rec_mask (B, n) or None, zoneout entries or None)`` for this call."""
        out = []
        train = self.training
        for _ in self.cells:
            rec = None
            if self.recurrent_dropout and train:
                keep = 1.0 - self.recurrent_dropout
                n = self.cell.state_sizes()[0]
                rec = torch.empty(batch, n, device=device, dtype=dtype).bernoulli_(keep).div_(keep)
            zo = None
            if self.zoneout:
                if train:
                    zo = [
                        torch.empty(T, batch, n, device=device, dtype=dtype).bernoulli_(self.zoneout)
                        for n in self.cell.state_sizes()
                    ]
                else:
                    zo = [self.zoneout] * len(self.cell.state_sizes())
            out.append((rec, zo))
        return out

    # -- forward ----------------------------------------------------------------------------------------
    def _check_forward(self, x: Tensor, state, lengths) -> tuple[int, int]:
        _check_float("input", x)
        if x.dim() != 3:
            layout = "(batch, time, features)" if self.batch_first else "(time, batch, features)"
            raise RnnkitError(f"input must be 3-D {layout}, got shape {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise RnnkitError(
                f"input.size(-1) must equal input_size: expected {self.input_size}, got {x.shape[-1]}"
            )
        p = self.cell.weight_ih
        if x.dtype != p.dtype or x.device != p.device:
            raise RnnkitError(
                f"input must match the layer's parameters: expected {p.dtype} on {p.device}, "
                f"got {x.dtype} on {x.device} (use layer.to(...))"
            )
        B, T = (x.shape[0], x.shape[1]) if self.batch_first else (x.shape[1], x.shape[0])
        if T < 1 or B < 1:
            raise RnnkitError(
                f"input must have at least one step and one sequence, got shape {tuple(x.shape)}"
            )
        if state is not None:
            parts = _state_tuple(state)
            sizes = self.cell.state_sizes()
            if len(parts) != len(sizes):
                raise RnnkitError(
                    f"state must be {'a pair (h, c)' if self.cell.paired_state else 'one tensor'}, "
                    f"got {len(parts)} tensor(s)"
                )
            n = self.num_layers * self.num_directions
            for name, p, s in zip(("h", "c"), parts, sizes):
                if not isinstance(p, Tensor) or tuple(p.shape) != (n, B, s):
                    got = tuple(p.shape) if isinstance(p, Tensor) else type(p).__name__
                    raise RnnkitError(f"state {name} shape mismatch: expected {(n, B, s)}, got {got}")
        if lengths is not None:
            if not isinstance(lengths, Tensor):
                lengths = torch.as_tensor(lengths)
            if lengths.is_floating_point() or lengths.dim() != 1:
                raise RnnkitError(
                    f"lengths must be a 1-D integer tensor, got dtype {lengths.dtype} shape {tuple(lengths.shape)}"
                )
            if lengths.numel() != B:
                raise RnnkitError(
                    f"lengths must have one entry per sequence: expected {B}, got {lengths.numel()}"
                )
            lo, hi = int(lengths.min()), int(lengths.max())
            if lo < 1 or hi > T:
                raise RnnkitError(f"lengths must lie in [1, T={T}], got min {lo} and max {hi}")
        return B, T

    def forward(
        self, x: Tensor | PackedSequence, state: LayerState | None = None, lengths: Tensor | None = None
    ) -> tuple[Tensor | PackedSequence, LayerState]:
        """Run the layer; see the class docstring for shapes. Returns ``(outputs, final_state)``."""
        packed = isinstance(x, PackedSequence)
        if packed:
            if lengths is not None:
                raise RnnkitError("pass lengths or a PackedSequence, not both")
            # like torch.nn.LSTM, a given state is in the caller's order, which unpacking restores
            x, lengths = pad_packed_sequence(x, batch_first=self.batch_first)
        B, T = self._check_forward(x, state, lengths)
        xt = x if not self.batch_first else x.transpose(0, 1)  # (T, B, I)
        if lengths is not None:
            lengths = torch.as_tensor(lengths).to(device="cpu", dtype=torch.int64)
            if int(lengths.min()) == T:
                lengths = None  # nothing is padded
        if state is None:
            state = self.start_state(B, x)
        name, _ = backends.resolve(self, self.requested_backend, x)
        out, final = backends.get(name).forward(self, xt, state, lengths)
        if self.bidirectional and self.merge != "concat":
            fwd, bwd = out.chunk(2, dim=-1)
            out = {"sum": fwd + bwd, "mean": (fwd + bwd) * 0.5, "mul": fwd * bwd}[self.merge]
        if self.batch_first:
            out = out.transpose(0, 1)
        if packed:
            full = torch.full((B,), T) if lengths is None else lengths
            out = pack_padded_sequence(out, full, batch_first=self.batch_first, enforce_sorted=False)
        return out, final

    def stack_forward(
        self,
        runner: Callable,
        xt: Tensor,
        state: LayerState,
        lengths: Tensor | None,
        project: Callable | None = None,
    ) -> tuple[Tensor, LayerState]:
        """Layers and directions around a per-direction runner (see :mod:`rnnkit.loop`). Time-major.

        ``project(cell, x)`` replaces ``cell.project_input(x)`` where a backend computes the same input
        projection faster (the fused engine's GEMM).
        """
        T, B = xt.shape[0], xt.shape[1]
        mask = None
        if lengths is not None:
            steps = torch.arange(T, device=xt.device).unsqueeze(1)  # (T, 1)
            mask = (steps < lengths.to(xt.device).unsqueeze(0)).unsqueeze(-1)  # (T, B, 1)
        states = self.split_state(state)
        masks = self.sample_masks(T, B, xt.device, xt.dtype)
        finals = []
        inp = xt
        D = self.num_directions
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                k = layer * D + d
                cell = self.cells[k]
                rec_mask, zo = masks[k]
                # (T, B, G*H): one matmul for all steps
                xp = cell.project_input(inp) if project is None else project(cell, inp)
                y, s = runner(cell, xp, states[k], mask, d == 1, rec_mask, zo)
                outs.append(y)
                finals.append(s)
            inp = outs[0] if D == 1 else torch.cat(outs, dim=-1)
            if self.dropout and layer < self.num_layers - 1:
                inp = F.dropout(inp, self.dropout, self.training)
        return inp, self.join_state(finals)

    # -- streaming --------------------------------------------------------------------------------------
    def step(self, x_t: Tensor, state: LayerState | None = None) -> tuple[Tensor, LayerState]:
        """One time step for streaming: ``x_t`` (B, I) -> ``(y_t (B, Y), state)``, same numbers as forward.

        In training mode the recurrent-dropout and zoneout masks are drawn afresh on every call. A
        bidirectional layer needs the future and cannot stream.
        """
        if self.bidirectional:
            raise RnnkitError("step() needs a unidirectional layer: the reverse direction needs the future")
        _check_float("input", x_t)
        if x_t.dim() != 2 or x_t.shape[1] != self.input_size:
            raise RnnkitError(
                f"step input must be (batch, input_size={self.input_size}), got shape {tuple(x_t.shape)}"
            )
        B = x_t.shape[0]
        if state is None:
            state = self.start_state(B, x_t)
        else:
            self._check_forward(x_t.unsqueeze(1 if self.batch_first else 0), state, None)
        states = self.split_state(state)
        masks = self.sample_masks(1, B, x_t.device, x_t.dtype)
        inp = x_t
        finals = []
        for k, cell in enumerate(self.cells):
            rec_mask, zo = masks[k]
            zo_t = None if zo is None else [z[0] if isinstance(z, Tensor) else z for z in zo]
            s = advance(cell, cell.project_input(inp), states[k], rec_mask, zo_t)
            finals.append(s)
            inp = _state_tuple(s)[0]
            if self.dropout and k < len(self.cells) - 1:
                inp = F.dropout(inp, self.dropout, self.training)
        return inp, self.join_state(finals)

    # -- torch interop ----------------------------------------------------------------------------------
    def to_torch(self) -> nn.Module:
        """A ``torch.nn.RNN/LSTM/GRU`` with exactly these weights (see :func:`rnnkit.to_torch`)."""
        from rnnkit.convert import to_torch

        return to_torch(self)


_LAYER_DEFAULTS = dict(
    num_layers=1,
    bias=True,
    batch_first=True,
    dropout=0.0,
    bidirectional=False,
    merge="concat",
    recurrent_dropout=0.0,
    zoneout=0.0,
    learn_initial_state=False,
    backend="auto",
)


def _split_kwargs(kwargs: dict[str, Any], cell_keys: tuple[str, ...], cls: str) -> tuple[dict, dict]:
    layer_kw = dict(_LAYER_DEFAULTS)
    cell_kw = {}
    for k, v in kwargs.items():
        if k in layer_kw:
            layer_kw[k] = v
        elif k in cell_keys:
            cell_kw[k] = v
        else:
            raise RnnkitError(f"{cls}() got an unknown argument {k!r}")
    cell_kw["bias"] = layer_kw.pop("bias")
    return layer_kw, cell_kw


class RNN(Recurrent):
    """Elman RNN layer with ``torch.nn.RNN``'s arguments plus rnnkit's (see :class:`Recurrent`).

    Extra cell arguments: ``activation`` (``"tanh"`` | ``"relu"`` | ``"sigmoid"`` | callable; ``nonlinearity``
    is accepted as torch's name for it) and ``recurrent_init``.

    Example::

        >>> rnn = RNN(8, 16, num_layers=2, activation="sigmoid")
        >>> y, h_n = rnn(torch.randn(4, 10, 8))
    """

    def __init__(self, input_size: int, hidden_size: int, **kwargs):
        if "nonlinearity" in kwargs:
            kwargs["activation"] = kwargs.pop("nonlinearity")
        layer_kw, cell_kw = _split_kwargs(kwargs, ("activation", "recurrent_init"), "RNN")
        super().__init__(RNNCell(input_size, hidden_size, **cell_kw), **layer_kw)
        self.build_args = dict(input_size=input_size, hidden_size=hidden_size, **kwargs)


class LSTM(Recurrent):
    """LSTM layer with ``torch.nn.LSTM``'s arguments plus rnnkit's (see :class:`Recurrent`, :class:`LSTMCell`).

    Extra cell arguments: ``proj_size``, ``peephole``, ``layer_norm``, ``forget_bias`` (default 1.0),
    ``cell_clip``, ``recurrent_init``.

    Example::

        >>> lstm = LSTM(8, 16, bidirectional=True, layer_norm=True, zoneout=0.1)
        >>> y, (h_n, c_n) = lstm(torch.randn(4, 10, 8))
    """

    def __init__(self, input_size: int, hidden_size: int, **kwargs):
        keys = ("proj_size", "peephole", "layer_norm", "forget_bias", "cell_clip", "recurrent_init")
        layer_kw, cell_kw = _split_kwargs(kwargs, keys, "LSTM")
        super().__init__(LSTMCell(input_size, hidden_size, **cell_kw), **layer_kw)
        self.build_args = dict(input_size=input_size, hidden_size=hidden_size, **kwargs)


class GRU(Recurrent):
    """GRU layer with ``torch.nn.GRU``'s arguments plus rnnkit's (see :class:`Recurrent`, :class:`GRUCell`).

    Extra cell arguments: ``reset_after`` (default True, torch's form), ``layer_norm``, ``recurrent_init``.

    Example::

        >>> gru = GRU(8, 16, num_layers=2, reset_after=False)
        >>> y, h_n = gru(torch.randn(4, 10, 8))
    """

    def __init__(self, input_size: int, hidden_size: int, **kwargs):
        layer_kw, cell_kw = _split_kwargs(kwargs, ("reset_after", "layer_norm", "recurrent_init"), "GRU")
        super().__init__(GRUCell(input_size, hidden_size, **cell_kw), **layer_kw)
        self.build_args = dict(input_size=input_size, hidden_size=hidden_size, **kwargs)
