"""Recurrent layers: stacking, bidirectionality, masking and dropout around one cell type.

``Recurrent(cell, ...)`` runs any rnnkit cell over sequences; ``RNN``, ``LSTM`` and ``GRU`` build it from
``torch.nn``-like arguments. Shape convention: batch first, ``x`` (B, T, I) -> outputs (B, T, D*Y) where
``D`` = 2 if bidirectional and ``Y`` the cell's output size (time-major with ``batch_first=False``). The
final state has torch's layout: ``h_n`` (L*D, B, Y), and for an LSTM ``(h_n, c_n)`` with ``c_n`` (L*D, B, H).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit import backends
from rnnkit._errors import RnnkitError
from rnnkit.cells import CellBase, GRUCell, LSTMCell, RNNCell, State, check_cell_input
from rnnkit.cells import check_float as _check_float
from rnnkit.loop import run_loop

__all__ = [
    "Recurrent",
    "RecurrentMasks",
    "RNN",
    "LSTM",
    "GRU",
    "zeros_state",
    "detach_state",
    "check_cell_input",
]

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


@dataclass(frozen=True)
class RecurrentMasks:
    r"""The random masks of one pass of a :class:`Recurrent` layer over ``steps`` time steps.

    Drawn by :meth:`Recurrent.sample_masks` and passed to ``forward(..., masks=)`` or, one step at a time,
    to ``step(..., masks=masks.at(t))``: the same masks give the same numbers both ways, and a decoder
    that runs through ``step()`` gets variational (per-sequence) recurrent dropout.

    Fields, one entry per cell ``k = layer * D + direction`` unless said otherwise:

    * ``recurrent``: the (B, n) recurrent-dropout mask, already scaled by ``1 / (1 - p)``, or None;
    * ``zoneout``: per state tensor a (steps, B, n) 0/1 tensor (1 keeps the old value; training) or the
      rate as a float (evaluation: the expectation), or None without zoneout;
    * ``dropout``: one entry per gap between layers (``L - 1``): the (steps, B, D*Y) scaled mask of the
      dropout on a layer's outputs, or None.

    Example::

        >>> layer = LSTM(4, 8, recurrent_dropout=0.25, zoneout=0.1).train()
        >>> masks = layer.sample_masks(2, steps=5)
        >>> x = torch.randn(2, 5, 4)
        >>> y, _ = layer(x, masks=masks)
        >>> state = None
        >>> for t in range(5):
        ...     y_t, state = layer.step(x[:, t], state, masks=masks.at(t))   # y_t == y[:, t]
    """

    recurrent: tuple[Tensor | None, ...]
    zoneout: tuple[list[Tensor | float] | None, ...]
    dropout: tuple[Tensor | None, ...]
    steps: int

    def at(self, t: int) -> RecurrentMasks:
        """The masks of step ``t`` alone (``steps == 1``), for :meth:`Recurrent.step`."""
        if not -self.steps <= t < self.steps:
            raise RnnkitError(f"step index out of range: expected 0 <= t < {self.steps}, got {t}")
        t = t % self.steps
        zo = tuple(
            None if z is None else [e[t : t + 1] if isinstance(e, Tensor) else e for e in z]
            for z in self.zoneout
        )
        drop = tuple(None if m is None else m[t : t + 1] for m in self.dropout)
        return RecurrentMasks(self.recurrent, zo, drop, 1)

    def rows(self, index: Tensor) -> RecurrentMasks:
        """The masks of the sequences ``index`` (a 1-D index into the batch)."""
        rec = tuple(None if m is None else m.index_select(0, index.to(m.device)) for m in self.recurrent)
        zo = tuple(
            None
            if z is None
            else [e.index_select(1, index.to(e.device)) if isinstance(e, Tensor) else e for e in z]
            for z in self.zoneout
        )
        drop = tuple(None if m is None else m.index_select(1, index.to(m.device)) for m in self.dropout)
        return RecurrentMasks(rec, zo, drop, self.steps)

    def batch_size(self) -> int | None:
        for m in self.recurrent:
            if m is not None:
                return m.shape[0]
        for m in self.dropout:
            if m is not None:
                return m.shape[1]
        for z in self.zoneout:
            for e in z or ():
                if isinstance(e, Tensor):
                    return e.shape[1]
        return None

    def has_tensors(self) -> bool:
        return self.batch_size() is not None


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
            says which one runs and why; forcing an impossible one is an error. :func:`rnnkit.use_backend`
            overrides it for the scope of a ``with`` block.

    ``load_state_dict`` also takes a ``torch.nn.RNN/LSTM/GRU`` state dict (torch's names, e.g.
    ``weight_hh_l1_reverse``); :meth:`torch_state_dict` exports under those names. Random masks of a pass
    come from :meth:`sample_masks` and can be given to ``forward``/``step`` (:class:`RecurrentMasks`);
    :meth:`observe` calls back after every step of the time loop.

    Shape:
        x (B, T, I) or a ``PackedSequence``; ``lengths`` (B,) ints in ``[0, T]``; state as the final state.
        Returns ``(outputs, final_state)``: outputs (B, T, D*Y) — zero at padded steps — and the final state
        ``h_n`` (L*D, B, Y) or ``(h_n, c_n)``, each sequence's state at its own last valid step. A length
        of 0 means "no new steps in this chunk": that sequence keeps its given state and has zero outputs.

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
        self._observer: Callable | None = None  # set by observe(); see there

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

    # -- masks ----------------------------------------------------------------------------------------
    def sample_masks(self, batch_size: int, steps: int = 1, device=None, dtype=None) -> RecurrentMasks:
        """Draw the random masks of one pass over ``steps`` steps of ``batch_size`` sequences.

        In training mode: one recurrent-dropout mask per sequence, zoneout and inter-layer dropout masks per
        step; in eval mode no random masks (the zoneout rates, for the expectation). Pass the result to
        ``forward(..., masks=)`` or ``step(..., masks=masks.at(t))`` (see :class:`RecurrentMasks`).
        Device and dtype default to the parameters'.
        """
        p = next(self.parameters())
        device = p.device if device is None else device
        dtype = p.dtype if dtype is None else dtype
        B, T, train = batch_size, steps, self.training
        sizes = self.cell.state_sizes()
        rec, zos = [], []
        for _ in self.cells:
            m = None
            if self.recurrent_dropout and train:
                keep = 1.0 - self.recurrent_dropout
                m = torch.empty(B, sizes[0], device=device, dtype=dtype).bernoulli_(keep).div_(keep)
            rec.append(m)
            zo = None
            if self.zoneout:
                if train:
                    zo = [
                        torch.empty(T, B, n, device=device, dtype=dtype).bernoulli_(self.zoneout)
                        for n in sizes
                    ]
                else:
                    zo = [self.zoneout] * len(sizes)
            zos.append(zo)
        drops = []
        width = self.cell.output_size * self.num_directions
        for _ in range(self.num_layers - 1):
            m = None
            if self.dropout and train:
                keep = 1.0 - self.dropout
                m = torch.empty(T, B, width, device=device, dtype=dtype).bernoulli_(keep).div_(keep)
            drops.append(m)
        return RecurrentMasks(tuple(rec), tuple(zos), tuple(drops), T)

    def _check_masks(self, masks: RecurrentMasks, B: int, T: int) -> None:
        if not isinstance(masks, RecurrentMasks):
            raise RnnkitError(f"masks must come from layer.sample_masks(), got {type(masks).__name__}")
        if len(masks.recurrent) != len(self.cells) or len(masks.dropout) != self.num_layers - 1:
            raise RnnkitError(
                f"masks were drawn for another layer: expected {len(self.cells)} cell(s) and "
                f"{self.num_layers - 1} layer gap(s), got {len(masks.recurrent)} and {len(masks.dropout)}"
            )
        if masks.has_tensors():
            if masks.steps != T:
                raise RnnkitError(
                    f"masks must cover the input's steps: expected {T}, got {masks.steps} "
                    "(step() takes one step's masks: masks.at(t))"
                )
            if masks.batch_size() != B:
                raise RnnkitError(f"masks batch size mismatch: expected {B}, got {masks.batch_size()}")

    # -- observing the time loop ------------------------------------------------------------------------
    @contextmanager
    def observe(self, fn: Callable[[int, int, State], None]) -> Iterator[None]:
        """Within the block, call ``fn(k, t, state)`` after every step of every cell ``k`` (``layer * D +
        direction``) with the step index ``t`` and the new per-cell state (see :func:`rnnkit.loop.run_loop`).

        Observing needs the reference backend (the Python loop); pick it with :func:`rnnkit.use_backend`.

        Example::

            >>> hs = []
            >>> with rnnkit.use_backend("reference"), layer.observe(lambda k, t, s: hs.append(s[0])):
            ...     y, state = layer(x)
        """
        if self._observer is not None:
            raise RnnkitError("this layer is already being observed; observers do not nest")
        self._observer = fn
        try:
            yield
        finally:
            self._observer = None

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
            # torch.export traces without values (rnnkit.export): the range is checked where values exist
            lo, hi = (0, T) if torch.compiler.is_compiling() else (int(lengths.min()), int(lengths.max()))
            if lo < 0 or hi > T:
                raise RnnkitError(f"lengths must lie in [0, T={T}], got min {lo} and max {hi}")
        return B, T

    def forward(
        self,
        x: Tensor | PackedSequence,
        state: LayerState | None = None,
        lengths: Tensor | None = None,
        masks: RecurrentMasks | None = None,
    ) -> tuple[Tensor | PackedSequence, LayerState]:
        """Run the layer; see the class docstring for shapes. Returns ``(outputs, final_state)``.

        ``masks`` (from :meth:`sample_masks`) replaces the masks this call would draw itself.
        """
        packed = isinstance(x, PackedSequence)
        if packed:
            if lengths is not None:
                raise RnnkitError("pass lengths or a PackedSequence, not both")
            # a PackedSequence is time-major by nature; it is unpacked to this layer's layout. Like
            # torch.nn.LSTM, a given state is in the caller's order, which unpacking restores.
            x, lengths = pad_packed_sequence(x, batch_first=self.batch_first)
        B, T = self._check_forward(x, state, lengths)
        xt = x if not self.batch_first else x.transpose(0, 1)  # (T, B, I)
        if lengths is not None:
            lengths = torch.as_tensor(lengths).to(device="cpu", dtype=torch.int64)
            if not torch.compiler.is_compiling() and int(lengths.min()) == T:
                lengths = None  # nothing is padded
        if masks is not None:
            self._check_masks(masks, B, T)
        if state is None:
            state = self.start_state(B, x)
        name, _ = backends.resolve(self, self.requested_backend, x)
        if self._observer is not None and name != "reference":
            raise RnnkitError(
                f"observing the time loop needs the reference backend, this call would use {name!r} "
                "(wrap it in rnnkit.use_backend('reference'))"
            )
        backend = backends.get(name)
        if lengths is not None and not backend.empty_rows and int(lengths.min()) == 0:
            out, final = self._forward_nonempty(backend, xt, state, lengths, masks)
        else:
            out, final = backend.forward(self, xt, state, lengths, masks)
        if self.bidirectional and self.merge != "concat":
            fwd, bwd = out.chunk(2, dim=-1)
            out = {"sum": fwd + bwd, "mean": (fwd + bwd) * 0.5, "mul": fwd * bwd}[self.merge]
        if self.batch_first:
            out = out.transpose(0, 1)
        if packed:
            full = torch.full((B,), T) if lengths is None else lengths
            out = pack_padded_sequence(out, full, batch_first=self.batch_first, enforce_sorted=False)
        return out, final

    def _forward_nonempty(self, backend, xt: Tensor, state: LayerState, lengths: Tensor, masks):
        """For a backend without lengths of 0: run the non-empty sequences, pass the others' state through."""
        T, B = xt.shape[0], xt.shape[1]
        keep = (lengths > 0).nonzero().squeeze(1)  # (B',) on the CPU
        parts = _state_tuple(state)
        width = self.cell.output_size * self.num_directions
        if keep.numel() == 0:
            return xt.new_zeros(T, B, width), state
        idx = keep.to(xt.device)
        sub = tuple(p.index_select(1, idx) for p in parts)
        out, final = backend.forward(
            self,
            xt.index_select(1, idx),
            sub if self.cell.paired_state else sub[0],
            lengths[keep],
            None if masks is None else masks.rows(keep),
        )
        out = out.new_zeros(T, B, out.shape[-1]).index_copy(1, idx, out)  # (T, B, D*Y), zero rows stay 0
        merged = tuple(p.index_copy(1, idx, f) for p, f in zip(parts, _state_tuple(final)))
        return out, merged if self.cell.paired_state else merged[0]

    def stack_forward(
        self,
        runner: Callable,
        xt: Tensor,
        state: LayerState,
        lengths: Tensor | None,
        project: Callable | None = None,
        masks: RecurrentMasks | None = None,
    ) -> tuple[Tensor, LayerState]:
        """Layers and directions around a per-direction runner (see :mod:`rnnkit.loop`). Time-major.

        The one layer loop: every backend but ``native`` and :meth:`step` run through it. ``project(cell,
        x)`` replaces ``cell.project_input(x)`` where a backend computes the same input projection faster
        (the fused engine's GEMM); ``masks`` default to fresh ones from :meth:`sample_masks`.
        """
        T, B = xt.shape[0], xt.shape[1]
        mask = None
        if lengths is not None:
            steps = torch.arange(T, device=xt.device).unsqueeze(1)  # (T, 1)
            mask = (steps < lengths.to(xt.device).unsqueeze(0)).unsqueeze(-1)  # (T, B, 1)
        states = self.split_state(state)
        if masks is None:
            masks = self.sample_masks(B, T, xt.device, xt.dtype)
        observer = self._observer
        finals = []
        inp = xt
        D = self.num_directions
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                k = layer * D + d
                cell = self.cells[k]
                # (T, B, G*H): one matmul for all steps
                xp = cell.project_input(inp) if project is None else project(cell, inp)
                args = (cell, xp, states[k], mask, d == 1, masks.recurrent[k], masks.zoneout[k])
                if observer is None:
                    y, s = runner(*args)
                else:
                    y, s = runner(*args, observer=partial(observer, k))
                outs.append(y)
                finals.append(s)
            inp = outs[0] if D == 1 else torch.cat(outs, dim=-1)  # (T, B, D*Y)
            if layer < self.num_layers - 1 and masks.dropout[layer] is not None:
                inp = inp * masks.dropout[layer]
        return inp, self.join_state(finals)

    # -- streaming --------------------------------------------------------------------------------------
    def step(
        self, x_t: Tensor, state: LayerState | None = None, masks: RecurrentMasks | None = None
    ) -> tuple[Tensor, LayerState]:
        """One time step for streaming: ``x_t`` (B, I) -> ``(y_t (B, Y), state)``, same numbers as forward.

        ``masks`` are one step's masks (``layer.sample_masks(B, steps=T).at(t)``); without them a training-mode
        call draws fresh ones, so that recurrent dropout would change at every step. Pass the masks of the
        sequence to get ``forward``'s variational dropout. A bidirectional layer needs the future and cannot
        stream.
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
        if masks is not None:
            self._check_masks(masks, B, 1)
        out, final = self.stack_forward(run_loop, x_t.unsqueeze(0), state, None, masks=masks)  # (1, B, Y)
        return out[0], final

    # -- torch interop ----------------------------------------------------------------------------------
    def to_torch(self) -> nn.Module:
        """A ``torch.nn.RNN/LSTM/GRU`` with exactly these weights (see :func:`rnnkit.to_torch`)."""
        from rnnkit.convert import to_torch

        return to_torch(self)

    def torch_state_dict(self) -> dict[str, Tensor]:
        """The parameters under ``torch.nn``'s names (``weight_ih_l0_reverse``, ...), for
        ``torch.nn.LSTM(...).load_state_dict``; see :func:`rnnkit.convert.torch_state_dict`."""
        from rnnkit.convert import torch_state_dict

        return torch_state_dict(self)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # accept a torch.nn.RNN/LSTM/GRU state dict as it is: its keys are renamed to ours before loading
        from rnnkit.convert import rename_torch_keys

        rename_torch_keys(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


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
