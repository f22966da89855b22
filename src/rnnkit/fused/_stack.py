"""Layers and directions around the fused runner, with the input projection on the engine's GEMM.

:func:`stack_forward` is :meth:`rnnkit.Recurrent.stack_forward` with one change: the input projection of
each cell (``cell.project_input``, one GEMM over all steps) is computed by :func:`project`, which runs the
same formula on the engine's packed GEMM in float32. On CPUs where torch's BLAS is slow for this skinny
product (input size K = 32 .. 256) that is 2-3x faster, forward and backward; the numbers are in
``docs/benchmarks.md``. Everything else (masks, dropout, state layout) calls the layer's own methods.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from rnnkit import functional as RF
from rnnkit.cells import GRUCell, LSTMCell, RNNCell, _MinCell
from rnnkit.fused._engine import _needs_graph, _ops, run_fused

__all__ = ["project", "stack_forward"]

# the projections whose formula project() reproduces; a cell class that overrides project_input keeps its own
_KNOWN_PROJECTIONS = {
    RNNCell.project_input,
    LSTMCell.project_input,
    GRUCell.project_input,
    _MinCell.project_input,
}


class _LinearFunction(torch.autograd.Function):
    """``x W^T + b`` for x (N, K) in float32 on the engine's GEMM."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        return _ops().linear_forward(x, w, b)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        nx, nw, nb = ctx.needs_input_grad
        dx, dw, db = _ops().linear_backward(dy, x, w, nx, nw, nb and ctx.has_bias)
        return (dx if nx else None), (dw if nw else None), (db if nb and ctx.has_bias else None)


def _linear(x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    if not _needs_graph(x, w, b):
        return _ops().linear_forward(x, w, b)
    return _LinearFunction.apply(x, w, b)


def project(cell, x: Tensor) -> Tensor:
    """``cell.project_input(x)`` for x (T, B, I), with the GEMM on the engine in float32."""
    if x.dtype != torch.float32 or type(cell).project_input not in _KNOWN_PROJECTIONS:
        return cell.project_input(x)
    T, B, I = x.shape
    ln = bool(getattr(cell, "layer_norm", False))
    y = _linear(x.reshape(T * B, I), cell.weight_ih, None if ln else cell.bias_ih)  # (T*B, G*H)
    if ln:  # as LSTMCell / GRUCell: LN(W_ih x) + b_ih, with b_ih folded into the LN shift (one pass)
        shift = cell.ln_ih_bias if cell.bias_ih is None else cell.ln_ih_bias + cell.bias_ih
        y = RF.layer_norm(y, cell.ln_ih_weight, shift)
    return y.view(T, B, -1)


def stack_forward(layer, xt: Tensor, state, lengths: Tensor | None, masks=None):
    """:meth:`rnnkit.Recurrent.stack_forward` with :func:`run_fused` and :func:`project`. Time-major."""
    return layer.stack_forward(run_fused, xt, state, lengths, project=project, masks=masks)
