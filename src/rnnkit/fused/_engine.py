"""The fused runners: ``torch.autograd.Function`` wrappers around the C++ forward and BPTT kernels.

Each runner has the signature and semantics of :func:`rnnkit.loop.run_loop` (see :mod:`rnnkit.loop`), so
that :meth:`rnnkit.Recurrent.stack_forward` stacks layers and directions around it. The input projection
``xp`` (T, B, G*H) is computed outside (one GEMM, :func:`rnnkit.fused.project`, differentiated by autograd);
the functions here return its gradient together with those of the recurrent weights, biases, layer-norm
parameters, peepholes and initial state. Masks (padding, recurrent dropout, zoneout) are constants.

The backward pass is written out by hand and is not itself differentiable: asking for a second derivative
raises ``RuntimeError`` (``once_differentiable``); use ``backend="reference"`` for double backward.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from rnnkit._errors import RnnkitError
from rnnkit.cells import GRUCell, LSTMCell, MinGRU, RNNCell, _MinCell
from rnnkit.fused._build import load

__all__ = ["run_fused", "supports_cell", "saved_floats_per_step"]


def _ops():
    ok, reason = load()
    if not ok:
        raise RnnkitError(f"the fused engine is unavailable: {reason}")
    return torch.ops.rnnkit_fused


def _mask_u8(mask: Tensor | None) -> Tensor | None:
    """(T, B, 1) bool -> (T, B) uint8, no copy."""
    if mask is None:
        return None
    return mask.reshape(mask.shape[0], mask.shape[1]).contiguous().view(torch.uint8)


def _zoneout_entry(zoneout, k: int) -> tuple[Tensor | None, float]:
    """One state's zoneout as (tensor or None, rate)."""
    if zoneout is None:
        return None, 0.0
    z = zoneout[k]
    if isinstance(z, Tensor):
        return z, 0.0
    return None, float(z)


def _empty_to_none(t: Tensor, wanted: bool) -> Tensor | None:
    return t if wanted else None


# -- LSTM --------------------------------------------------------------------------------------------------
class _LSTMFunction(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, cfg, xp, h0, c0, w_hh, b_hh, w_hr, w_ci, w_cf, w_co, lnw, lnb, lncw, lncb, mask, rm, zh, zc
    ):
        clip, zh_rate, zc_rate, reverse = cfg
        y, h_n, c_n, hs, cs, gates, xhat, rstd = _ops().lstm_forward(
            xp, h0, c0, w_hh, b_hh, w_hr, w_ci, w_cf, w_co, lnw, lnb, lncw, lncb,
            clip, mask, rm, zh, zh_rate, zc, zc_rate, reverse, True,
        )  # fmt: skip
        ctx.cfg = cfg
        ctx.save_for_backward(
            h0, c0, w_hh, b_hh, w_hr, w_ci, w_cf, w_co, lnw, lnb, lncw, lncb, mask, rm, zh, zc,
            hs, cs, gates, xhat, rstd,
        )  # fmt: skip
        return y, h_n, c_n

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, dh_n, dc_n):
        clip, zh_rate, zc_rate, reverse = ctx.cfg
        (h0, c0, w_hh, b_hh, w_hr, w_ci, w_cf, w_co, lnw, lnb, lncw, lncb, mask, rm, zh, zc,
         hs, cs, gates, xhat, rstd) = ctx.saved_tensors  # fmt: skip
        g = _ops().lstm_backward(
            dy, dh_n, dc_n, h0, c0, w_hh, b_hh, w_hr, w_ci, w_cf, w_co, lnw, lnb, lncw, lncb,
            clip, mask, rm, zh, zh_rate, zc, zc_rate, reverse, hs, cs, gates, xhat, rstd,
        )  # fmt: skip
        dxp, dh0, dc0, dw_hh, db_hh, dw_hr, dpi, dpf, dpo, dlnw, dlnb, dlncw, dlncb = g
        peep, ln = w_ci is not None, lnw is not None
        return (
            None, dxp, dh0, dc0, dw_hh,
            _empty_to_none(db_hh, b_hh is not None), _empty_to_none(dw_hr, w_hr is not None),
            _empty_to_none(dpi, peep), _empty_to_none(dpf, peep), _empty_to_none(dpo, peep),
            _empty_to_none(dlnw, ln), _empty_to_none(dlnb, ln),
            _empty_to_none(dlncw, ln), _empty_to_none(dlncb, ln),
            None, None, None, None,
        )  # fmt: skip


def _needs_graph(*tensors) -> bool:
    """Whether autograd will differentiate through the call (else the kernels save nothing)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _run_lstm(cell: LSTMCell, xp, state, mask, reverse, rec_mask, zoneout):
    h0, c0 = state
    zh, zh_rate = _zoneout_entry(zoneout, 0)
    zc, zc_rate = _zoneout_entry(zoneout, 1)
    peep = (cell.weight_ci, cell.weight_cf, cell.weight_co) if cell.peephole else (None, None, None)
    ln = (
        (cell.ln_hh_weight, cell.ln_hh_bias, cell.ln_c_weight, cell.ln_c_bias)
        if cell.layer_norm
        else (None,) * 4
    )
    params = (cell.weight_hh, cell.bias_hh, cell.weight_hr, *peep, *ln)
    mask = _mask_u8(mask)
    cfg = (float(cell.cell_clip or 0.0), zh_rate, zc_rate, bool(reverse))
    if not _needs_graph(xp, h0, c0, *params):
        y, h_n, c_n = _ops().lstm_forward(
            xp, h0, c0, *params, cfg[0], mask, rec_mask, zh, zh_rate, zc, zc_rate, cfg[3], False
        )[:3]
        return y, (h_n, c_n)
    y, h_n, c_n = _LSTMFunction.apply(cfg, xp, h0, c0, *params, mask, rec_mask, zh, zc)
    return y, (h_n, c_n)


# -- GRU ---------------------------------------------------------------------------------------------------
class _GRUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cfg, xp, h0, w_hh, b_hh, lnw, lnb, lnnw, lnnb, mask, rm, zo):
        reset_after, zo_rate, reverse = cfg
        y, h_n, hs, gates, xhat, rstd = _ops().gru_forward(
            xp, h0, w_hh, b_hh, lnw, lnb, lnnw, lnnb, reset_after, mask, rm, zo, zo_rate, reverse, True
        )
        ctx.cfg = cfg
        ctx.save_for_backward(h0, w_hh, b_hh, lnw, lnb, lnnw, lnnb, mask, rm, zo, hs, gates, xhat, rstd)
        return y, h_n

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, dh_n):
        reset_after, zo_rate, reverse = ctx.cfg
        h0, w_hh, b_hh, lnw, lnb, lnnw, lnnb, mask, rm, zo, hs, gates, xhat, rstd = ctx.saved_tensors
        dxp, dh0, dw_hh, db_hh, dlnw, dlnb, dlnnw, dlnnb = _ops().gru_backward(
            dy, dh_n, h0, w_hh, b_hh, lnw, lnb, lnnw, lnnb, reset_after, mask, rm, zo, zo_rate, reverse,
            hs, gates, xhat, rstd,
        )  # fmt: skip
        ln = lnw is not None
        return (
            None, dxp, dh0, dw_hh, _empty_to_none(db_hh, b_hh is not None),
            _empty_to_none(dlnw, ln), _empty_to_none(dlnb, ln),
            _empty_to_none(dlnnw, lnnw is not None), _empty_to_none(dlnnb, lnnw is not None),
            None, None, None,
        )  # fmt: skip


def _run_gru(cell: GRUCell, xp, state, mask, reverse, rec_mask, zoneout):
    zo, zo_rate = _zoneout_entry(zoneout, 0)
    if cell.layer_norm:
        ln = (cell.ln_hh_weight, cell.ln_hh_bias)
        lnn = (None, None) if cell.reset_after else (cell.ln_hn_weight, cell.ln_hn_bias)
    else:
        ln, lnn = (None, None), (None, None)
    params = (cell.weight_hh, cell.bias_hh, *ln, *lnn)
    mask = _mask_u8(mask)
    if not _needs_graph(xp, state, *params):
        ra = bool(cell.reset_after)
        return tuple(
            _ops().gru_forward(xp, state, *params, ra, mask, rec_mask, zo, zo_rate, bool(reverse), False)[:2]
        )
    cfg = (bool(cell.reset_after), zo_rate, bool(reverse))
    return _GRUFunction.apply(cfg, xp, state, *params, mask, rec_mask, zo)


# -- RNN ---------------------------------------------------------------------------------------------------
_RNN_ACTS = {"tanh": 0, "relu": 1, "sigmoid": 2}


class _RNNFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cfg, xp, h0, w_hh, b_hh, mask, rm, zo):
        act, zo_rate, reverse = cfg
        y, h_n, hs, acts = _ops().rnn_forward(xp, h0, w_hh, b_hh, act, mask, rm, zo, zo_rate, reverse, True)
        ctx.cfg = cfg
        ctx.has_bias = b_hh is not None
        ctx.save_for_backward(h0, w_hh, mask, rm, zo, hs, acts)
        return y, h_n

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, dh_n):
        act, zo_rate, reverse = ctx.cfg
        h0, w_hh, mask, rm, zo, hs, acts = ctx.saved_tensors
        dxp, dh0, dw_hh, db_hh = _ops().rnn_backward(
            dy, dh_n, h0, w_hh, ctx.has_bias, act, mask, rm, zo, zo_rate, reverse, hs, acts
        )
        return None, dxp, dh0, dw_hh, _empty_to_none(db_hh, ctx.has_bias), None, None, None


def _run_rnn(cell: RNNCell, xp, state, mask, reverse, rec_mask, zoneout):
    zo, zo_rate = _zoneout_entry(zoneout, 0)
    act = _RNN_ACTS[cell.activation]
    mask = _mask_u8(mask)
    if not _needs_graph(xp, state, cell.weight_hh, cell.bias_hh):
        out = _ops().rnn_forward(
            xp, state, cell.weight_hh, cell.bias_hh, act, mask, rec_mask, zo, zo_rate, bool(reverse), False
        )
        return out[0], out[1]
    cfg = (act, zo_rate, bool(reverse))
    return _RNNFunction.apply(cfg, xp, state, cell.weight_hh, cell.bias_hh, mask, rec_mask, zo)


# -- MinGRU / MinLSTM: the linear recurrence ---------------------------------------------------------------
class _MinFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cfg, xp, h0, mask, zo):
        kind, zo_rate, reverse = cfg
        y, h_n, hs = _ops().min_forward(xp, h0, kind, mask, zo, zo_rate, reverse)
        ctx.cfg = cfg
        ctx.save_for_backward(xp, h0, mask, zo, hs)
        return y, h_n

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, dh_n):
        kind, zo_rate, reverse = ctx.cfg
        xp, h0, mask, zo, hs = ctx.saved_tensors
        dxp, dh0 = _ops().min_backward(dy, dh_n, xp, h0, kind, mask, zo, zo_rate, reverse, hs)
        return None, dxp, dh0, None, None


def _run_min(cell: _MinCell, xp, state, mask, reverse, rec_mask, zoneout):
    zo, zo_rate = _zoneout_entry(zoneout, 0)
    kind = 0 if isinstance(cell, MinGRU) else 1
    mask = _mask_u8(mask)
    if not _needs_graph(xp, state):
        out = _ops().min_forward(xp, state, kind, mask, zo, zo_rate, bool(reverse))
        return out[0], out[1]
    return _MinFunction.apply((kind, zo_rate, bool(reverse)), xp, state, mask, zo)


# -- dispatch ----------------------------------------------------------------------------------------------
def supports_cell(cell) -> tuple[bool, str]:
    """Whether the engine has kernels for this cell, and a short description of them."""
    if isinstance(cell, LSTMCell):
        opts = [n for n in ("peephole", "layer_norm") if getattr(cell, n)]
        if cell.proj_size:
            opts.append("proj_size")
        if cell.cell_clip is not None:
            opts.append("cell_clip")
        return True, "LSTM" + (f" ({', '.join(opts)})" if opts else "")
    if isinstance(cell, GRUCell):
        opts = [f"reset_after={cell.reset_after}"] + (["layer_norm"] if cell.layer_norm else [])
        return True, f"GRU ({', '.join(opts)})"
    if isinstance(cell, RNNCell):
        if not isinstance(cell.activation, str) or cell.activation not in _RNN_ACTS:
            return (
                False,
                "the fused engine has kernels for the activations tanh, relu and sigmoid, not a callable",
            )
        return True, f"RNN ({cell.activation})"
    if isinstance(cell, _MinCell):
        return True, f"{type(cell).__name__} (sequential linear scan)"
    return False, f"the fused engine has no kernel for {type(cell).__name__}"


def run_fused(cell, xp, state, mask=None, reverse=False, rec_mask=None, zoneout=None):
    """Runner with :func:`rnnkit.loop.run_loop`'s signature, computed by the fused kernels."""
    if isinstance(cell, LSTMCell):
        return _run_lstm(cell, xp, state, mask, reverse, rec_mask, zoneout)
    if isinstance(cell, GRUCell):
        return _run_gru(cell, xp, state, mask, reverse, rec_mask, zoneout)
    if isinstance(cell, RNNCell):
        return _run_rnn(cell, xp, state, mask, reverse, rec_mask, zoneout)
    if isinstance(cell, _MinCell):
        return _run_min(cell, xp, state, mask, reverse, rec_mask, zoneout)
    raise TypeError(f"the fused engine has no kernel for {type(cell).__name__}")


def saved_floats_per_step(cell, zoneout: bool = False) -> int:
    """Floats saved for backward per time step and batch row (see each kernel's header comment).

    Counts what the fused function keeps between forward and backward beyond the weights, the initial
    state and the masks: the states and what the gates' derivatives need. MinGRU/MinLSTM keep their input
    projection ``xp`` (2H or 3H), from which backward recomputes the gates.
    """
    H = cell.hidden_size
    if isinstance(cell, LSTMCell):
        n = 4 * H + H + cell.output_size  # i, f, g, o; c; h
        return n + (4 * H + 1 if cell.layer_norm else 0)  # normalised W_hh h and 1/std
    if isinstance(cell, GRUCell):
        n = (4 * H if cell.reset_after else 3 * H) + H  # r, z, n (and W_hn h + b_hn); h
        return n + (3 * H + 2 if cell.layer_norm else 0)
    if isinstance(cell, RNNCell):
        return H + (H if zoneout else 0)  # h (and the activation when zoneout mixes it)
    if isinstance(cell, _MinCell):
        return H + cell.gates * H  # h; xp
    raise TypeError(f"the fused engine has no kernel for {type(cell).__name__}")
