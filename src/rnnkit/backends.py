"""Backends: the explicit choice of how a :class:`~rnnkit.Recurrent` layer computes its forward pass.

* ``reference`` — the one Python time loop (:func:`rnnkit.loop.run_loop`); runs everything and is the
  specification every other backend is tested against.
* ``native`` — torch's own fused kernels (``torch._VF.lstm/gru/rnn_tanh/rnn_relu``: oneDNN on CPU, cuDNN on
  GPU), fed the layer's own parameters (no copies), for the configurations torch supports.
* ``scan`` — the parallel log-space scan of :class:`~rnnkit.MinGRU` / :class:`~rnnkit.MinLSTM`.
* ``fused`` — rnnkit's compiled engine, registered by :mod:`rnnkit.fused` where it is available.

``resolve(layer, "auto")`` picks the first backend in :func:`auto_order` that supports the layer's
configuration, and says why: on CPU the fused engine comes first for the cells where ``rnnkit bench``
measured it fastest (:data:`FUSED_FIRST_ON_CPU`), elsewhere :data:`AUTO_ORDER` applies. Forcing a backend
that cannot run the configuration is an error. ``with use_backend(name):`` picks the backend of every layer
for the scope of the block (the gradient-flow monitor runs on ``reference`` this way).

A sequence of length 0 keeps its state and has zero outputs in every backend: the loop-based ones mask it
like padding, and around torch's packed kernels (which reject 0) the layer runs only the other sequences.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit._errors import RnnkitError
from rnnkit.cells import GRUCell, LSTMCell, RNNCell, _MinCell
from rnnkit.loop import run_loop, run_scan

__all__ = [
    "Backend",
    "use_backend",
    "register",
    "get",
    "resolve",
    "check_name",
    "names",
    "AUTO_ORDER",
    "auto_order",
]


@dataclass
class Backend:
    """``supports(layer, x) -> (ok, reason)``; ``forward(layer, x (T,B,I), state, lengths, masks) -> (out, state)``.

    ``masks`` is None or a :class:`~rnnkit.layers.RecurrentMasks` the caller drew.

    ``empty_rows``: whether ``forward`` accepts lengths of 0 itself. Where it does not (torch's packed
    kernels), the layer runs only the non-empty sequences and passes the others' state through.
    """

    name: str
    supports: Callable
    forward: Callable
    empty_rows: bool = True


_SCOPED: ContextVar[str | None] = ContextVar("rnnkit_scoped_backend", default=None)


@contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Within the ``with`` block, every :class:`~rnnkit.Recurrent` layer uses backend ``name``.

    The scope overrides each layer's own ``backend=`` argument (and ``"auto"``), for this thread or task
    only, and ends with the block; an impossible choice is the usual error at the first forward call.

    Example::

        >>> with rnnkit.use_backend("reference"):
        ...     y, h = layer(x)          # the Python time loop, whatever layer.requested_backend says
    """
    check_name(name)
    token = _SCOPED.set(name)
    try:
        yield
    finally:
        _SCOPED.reset(token)


_REGISTRY: dict[str, Backend] = {}
#: the order in which ``backend="auto"`` tries backends (off the CPU, and where no measured order applies)
AUTO_ORDER: list[str] = ["native", "scan", "fused", "reference"]
#: the cells for which ``auto`` tries rnnkit's fused engine first on CPU, as measured by ``rnnkit bench``
#: (docs/benchmarks.md): GRU and RNN run 2-10x faster fused than torch's own kernels, MinGRU/MinLSTM 10-100x
#: faster than the log-space scan, and an LSTM trains 10-25% faster than with torch's oneDNN kernel.
FUSED_FIRST_ON_CPU: tuple[type, ...] = (LSTMCell, GRUCell, RNNCell, _MinCell)


def auto_order(layer, x: Tensor | None = None) -> list[str]:
    """The order in which ``auto`` tries backends for ``layer`` (and input ``x``): the measured policy.

    On CPU the fused engine comes first for :data:`FUSED_FIRST_ON_CPU`, with one exception: a forward
    pass without autograd (``torch.no_grad()``, inference) of a plain LSTM, where torch's oneDNN kernel
    measured faster at small sizes. Other devices use :data:`AUTO_ORDER` (the engine is CPU-only).
    """
    device = x.device if x is not None else next(layer.parameters()).device
    cell = layer.cell
    if device.type != "cpu" or not isinstance(cell, FUSED_FIRST_ON_CPU):
        return list(AUTO_ORDER)
    if isinstance(cell, LSTMCell) and not torch.is_grad_enabled():
        return list(AUTO_ORDER)  # native where torch has the kernel, else fused
    return ["fused"] + [n for n in AUTO_ORDER if n != "fused"]


def register(backend: Backend) -> None:
    _REGISTRY[backend.name] = backend


def get(name: str) -> Backend:
    return _REGISTRY[name]


def names() -> list[str]:
    return list(_REGISTRY)


def check_name(name: str) -> None:
    if name != "auto" and name not in _REGISTRY:
        raise RnnkitError(f"unknown backend: expected 'auto' or one of {names()}, got {name!r}")


def resolve(layer, requested: str, x: Tensor | None = None) -> tuple[str, str]:
    """``(backend name, reason)`` for ``layer`` in its current mode (training or eval).

    Inside :func:`use_backend` the scoped name replaces ``requested``.
    """
    scoped = _SCOPED.get()
    how = "requested"
    if scoped is not None:
        requested, how = scoped, "use_backend scope"
    check_name(requested)
    if requested != "auto":
        ok, reason = _REGISTRY[requested].supports(layer, x)
        if not ok:
            scope = " (chosen by use_backend)" if scoped is not None else ""
            raise RnnkitError(f"backend {requested!r} cannot run this layer: {reason}{scope}")
        return requested, f"{how}; {reason}"
    refusals = []
    for name in auto_order(layer, x):
        ok, reason = _REGISTRY[name].supports(layer, x)
        if ok:
            why = f"auto: {reason}"
            if refusals:
                why += " (" + "; ".join(refusals) + ")"
            return name, why
        refusals.append(f"not {name}: {reason}")
    raise AssertionError("the reference backend supports every layer")


# -- reference ---------------------------------------------------------------------------------------------
def _reference_forward(layer, xt, state, lengths, masks=None):
    return layer.stack_forward(run_loop, xt, state, lengths, masks=masks)


register(
    Backend(
        "reference",
        lambda layer, x: (True, "the Python time loop runs every configuration"),
        _reference_forward,
    )
)


# -- scan --------------------------------------------------------------------------------------------------
def _scan_supports(layer, x):
    if not isinstance(layer.cell, _MinCell):
        return False, f"{type(layer.cell).__name__} is not a linear recurrence"
    if layer.zoneout:
        return False, "zoneout is not part of the scan"
    return True, f"{type(layer.cell).__name__}: parallel log-space scan"


register(
    Backend(
        "scan",
        _scan_supports,
        lambda layer, xt, state, lengths, masks=None: layer.stack_forward(
            run_scan, xt, state, lengths, masks=masks
        ),
    )
)


# -- native ------------------------------------------------------------------------------------------------
_NATIVE_FNS = {
    "LSTM": torch._VF.lstm,
    "GRU": torch._VF.gru,
    "RNN_TANH": torch._VF.rnn_tanh,
    "RNN_RELU": torch._VF.rnn_relu,
}


def _native_supports(layer, x):
    mode, reason = layer.cell.native_mode()
    if mode is None:
        return False, reason
    if layer.zoneout:
        return False, "torch's kernels have no zoneout"
    if layer.recurrent_dropout and layer.training:
        return False, "torch's kernels have no recurrent dropout (training mode)"
    return True, reason


def flat_weights(layer) -> list[Tensor]:
    """The layer's parameters in ``torch.nn.RNNBase``'s order (references, not copies)."""
    out = []
    for cell in layer.cells:
        out += [cell.weight_ih, cell.weight_hh]
        if cell.bias:
            out += [cell.bias_ih, cell.bias_hh]
        if getattr(cell, "proj_size", 0):
            out.append(cell.weight_hr)
    return out


def _native_forward(layer, xt, state, lengths, masks=None):
    if masks is not None and masks.has_tensors():
        raise RnnkitError(
            "torch's kernels draw their own dropout and cannot take given masks; "
            "use backend='reference' or 'fused' with masks="
        )
    mode = layer.cell.native_mode()[0]
    fn = _NATIVE_FNS[mode]
    weights = flat_weights(layer)
    args = (weights, layer.cell.bias, layer.num_layers, layer.dropout, layer.training, layer.bidirectional)
    if mode == "LSTM":
        hx = (state[0].contiguous(), state[1].contiguous())
    else:
        hx = state.contiguous()
    if mode == "LSTM" and layer.cell.proj_size and xt.device.type == "cpu":
        # torch warns once that oneDNN has no LSTMP and falls back to its own loop; that is expected here
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
            return _native_call(fn, xt, hx, args, lengths, mode)
    return _native_call(fn, xt, hx, args, lengths, mode)


def _native_call(fn, xt, hx, args, lengths, mode):
    if lengths is None:
        res = fn(xt, hx, *args, False)
        out, final = res[0], (res[1], res[2]) if mode == "LSTM" else res[1]
        return out, final
    T = xt.shape[0]
    packed = pack_padded_sequence(xt, lengths, enforce_sorted=False)
    order, unorder = packed.sorted_indices, packed.unsorted_indices
    if mode == "LSTM":
        hx = (hx[0].index_select(1, order), hx[1].index_select(1, order))
    else:
        hx = hx.index_select(1, order)
    res = fn(packed.data, packed.batch_sizes, hx, *args)
    out, _ = pad_packed_sequence(PackedSequence(res[0], packed.batch_sizes, order, unorder), total_length=T)
    if mode == "LSTM":
        final = (res[1].index_select(1, unorder), res[2].index_select(1, unorder))
    else:
        final = res[1].index_select(1, unorder)
    return out, final


register(Backend("native", _native_supports, _native_forward, empty_rows=False))


# -- fused -------------------------------------------------------------------------------------------------
# rnnkit's compiled engine (rnnkit.fused); imported on first use, which builds it or loads it from the cache.
def _fused_supports(layer, x):
    from rnnkit import fused

    return fused.supports(layer, x)


def _fused_forward(layer, xt, state, lengths, masks=None):
    from rnnkit.fused import stack_forward

    return stack_forward(layer, xt, state, lengths, masks)


register(Backend("fused", _fused_supports, _fused_forward))
