"""Pure step functions: one time step of each cell as a function of its parameters.

Every function here takes the *input projection* of the current step, ``xp_t`` (B, G*H), already computed
for all steps at once by the cell's ``project_input`` (one matmul over the whole sequence), the previous
state and the parameters, and returns ``(y_t, new_state)``. The time loop in :mod:`rnnkit.loop` is the only
place that iterates over time; fused and native backends are tested against these functions.

Shapes: ``B`` batch, ``H`` hidden size, ``P`` projection size (LSTM only; ``P = H`` without projection).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "rnn_step",
    "lstm_step",
    "gru_step",
    "min_gru_step",
    "min_lstm_step",
    "min_g",
    "min_log_g",
    "min_lstm_log_gates",
    "layer_norm",
    "resolve_activation",
]

LN_EPS = 1e-5


def layer_norm(x: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    """Layer normalisation over the last dimension (Ba et al. 2016), eps = 1e-5."""
    return F.layer_norm(x, x.shape[-1:], weight, bias, LN_EPS)


_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
}


def resolve_activation(activation: str | Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """Map ``"tanh" | "relu" | "sigmoid"`` or a callable to a function."""
    from rnnkit._errors import RnnkitError

    if callable(activation):
        return activation
    if activation not in _ACTIVATIONS:
        raise RnnkitError(
            f"unknown activation: expected one of {sorted(_ACTIVATIONS)} or a callable, got {activation!r}"
        )
    return _ACTIVATIONS[activation]


def rnn_step(
    xp_t: Tensor,
    h: Tensor,
    weight_hh: Tensor,
    bias_hh: Tensor | None = None,
    activation: Callable[[Tensor], Tensor] = torch.tanh,
    rec_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Elman RNN step: ``h' = act(xp_t + W_hh (h * m) + b_hh)`` where ``xp_t = W_ih x_t + b_ih``.

    ``rec_mask`` (B, H) is the variational recurrent-dropout mask (already scaled by 1/(1-p)).
    """
    h_in = h if rec_mask is None else h * rec_mask
    pre = xp_t if bias_hh is None else xp_t + bias_hh
    h_new = activation(torch.addmm(pre, h_in, weight_hh.t()))
    return h_new, h_new


def lstm_step(
    xp_t: Tensor,
    state: tuple[Tensor, Tensor],
    weight_hh: Tensor,
    bias_hh: Tensor | None = None,
    *,
    weight_hr: Tensor | None = None,
    peephole: tuple[Tensor, Tensor, Tensor] | None = None,
    ln_hh: tuple[Tensor, Tensor] | None = None,
    ln_c: tuple[Tensor, Tensor] | None = None,
    cell_clip: float | None = None,
    rec_mask: Tensor | None = None,
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    r"""LSTM step, PyTorch gate order ``i, f, g, o``.

    .. math::
        a &= xp_t + \mathrm{LN}_{hh}(W_{hh} (h \odot m)) + b_{hh} \\
        i &= \sigma(a_i + p_i \odot c), \quad f = \sigma(a_f + p_f \odot c), \quad g = \tanh(a_g) \\
        c' &= \mathrm{clip}(f \odot c + i \odot g) \\
        o &= \sigma(a_o + p_o \odot c') \\
        h' &= W_{hr}\,(o \odot \tanh(\mathrm{LN}_c(c')))

    Peepholes (Gers & Schmidhuber 2000) ``p_i, p_f`` look at the previous cell, ``p_o`` at the new one.
    Layer norm follows Ba et al. (2016) as haste's LayerNormLSTM does: the input and recurrent
    pre-activations are normalised separately (the input one inside ``xp_t``), and the cell is normalised
    before the output ``tanh``. Terms whose option is off are dropped. ``weight_hr`` (P, H) is the
    projection of LSTMP (Sak et al. 2014, as ``torch.nn.LSTM(proj_size=P)``).
    """
    h, c = state
    h_in = h if rec_mask is None else h * rec_mask
    rec = torch.mm(h_in, weight_hh.t())  # (B, 4H)
    if ln_hh is not None:
        rec = layer_norm(rec, *ln_hh)
    gates = xp_t + rec if bias_hh is None else xp_t + rec + bias_hh
    i, f, g, o = gates.chunk(4, dim=1)
    if peephole is not None:
        p_i, p_f, p_o = peephole
        i = i + p_i * c
        f = f + p_f * c
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    if cell_clip is not None:
        c_new = c_new.clamp(-cell_clip, cell_clip)
    if peephole is not None:
        o = o + peephole[2] * c_new
    c_out = c_new if ln_c is None else layer_norm(c_new, *ln_c)
    h_new = torch.sigmoid(o) * torch.tanh(c_out)
    if weight_hr is not None:
        h_new = torch.mm(h_new, weight_hr.t())
    return h_new, (h_new, c_new)


def gru_step(
    xp_t: Tensor,
    h: Tensor,
    weight_hh: Tensor,
    bias_hh: Tensor | None = None,
    *,
    reset_after: bool = True,
    ln_hh: tuple[Tensor, Tensor] | None = None,
    ln_hn: tuple[Tensor, Tensor] | None = None,
    rec_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    r"""GRU step, PyTorch gate order ``r, z, n``; ``xp_t = LN_{ih}(W_{ih} x_t) + b_{ih}`` (B, 3H).

    ``reset_after=True`` (PyTorch / cuDNN form, also haste's)::

        a_h = LN_hh(W_hh h) + b_hh
        r = σ(xp_r + a_hr),  z = σ(xp_z + a_hz),  n = tanh(xp_n + r ⊙ a_hn)
        h' = (1 - z) ⊙ n + z ⊙ h

    ``reset_after=False`` (Cho et al. 2014): the reset gate acts on the state before the matmul::

        r, z as above from LN_hh(W_hr h, W_hz h) + b_hr, b_hz   (2H, normalised together)
        n = tanh(xp_n + LN_hn(W_hn (r ⊙ h)) + b_hn)              (H, normalised on its own)

    ``rec_mask`` (variational recurrent dropout) multiplies ``h`` wherever it enters a matmul.
    """
    hidden = h.shape[1]
    h_in = h if rec_mask is None else h * rec_mask
    x_r, x_z, x_n = xp_t.chunk(3, dim=1)
    if reset_after:
        rec = torch.mm(h_in, weight_hh.t())  # (B, 3H)
        if ln_hh is not None:
            rec = layer_norm(rec, *ln_hh)
        if bias_hh is not None:
            rec = rec + bias_hh
        h_r, h_z, h_n = rec.chunk(3, dim=1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
    else:
        rec = torch.mm(h_in, weight_hh[: 2 * hidden].t())  # (B, 2H)
        if ln_hh is not None:
            rec = layer_norm(rec, *ln_hh)
        if bias_hh is not None:
            rec = rec + bias_hh[: 2 * hidden]
        h_r, h_z = rec.chunk(2, dim=1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        rec_n = torch.mm(r * h_in, weight_hh[2 * hidden :].t())  # (B, H)
        if ln_hn is not None:
            rec_n = layer_norm(rec_n, *ln_hn)
        if bias_hh is not None:
            rec_n = rec_n + bias_hh[2 * hidden :]
        n = torch.tanh(x_n + rec_n)
    h_new = n + z * (h - n)  # == (1 - z) * n + z * h
    return h_new, h_new


def min_g(x: Tensor) -> Tensor:
    """The positive activation of Feng et al. (2024): ``x + 0.5`` for ``x >= 0``, ``sigmoid(x)`` otherwise."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def min_log_g(x: Tensor) -> Tensor:
    """``log g(x)``, computed without underflow for very negative ``x``."""
    return torch.where(x >= 0, torch.log(torch.relu(x) + 0.5), -F.softplus(-x))


def min_gru_step(xp_t: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
    r"""minGRU step (Feng et al. 2024), ``xp_t = [k_z, k_h]`` = ``W x_t + b`` (B, 2H).

    .. math:: z = \sigma(k_z), \quad \tilde h = g(k_h), \quad h' = (1 - z) \odot h + z \odot \tilde h
    """
    k_z, k_h = xp_t.chunk(2, dim=1)
    z = torch.sigmoid(k_z)
    h_new = (1 - z) * h + z * min_g(k_h)
    return h_new, h_new


def min_lstm_log_gates(k_f: Tensor, k_i: Tensor) -> tuple[Tensor, Tensor]:
    """``log f'`` and ``log i'`` of minLSTM's normalised gates, computed stably in log space."""
    log_f = -F.softplus(-k_f)  # log sigmoid(k_f)
    log_i = -F.softplus(-k_i)
    log_sum = torch.logaddexp(log_f, log_i)
    return log_f - log_sum, log_i - log_sum


def min_lstm_step(xp_t: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
    r"""minLSTM step (Feng et al. 2024), ``xp_t = [k_f, k_i, k_h]`` (B, 3H), normalised gates.

    .. math::
        f = \sigma(k_f),\ i = \sigma(k_i),\ f' = f / (f + i),\ i' = i / (f + i),\
        h' = f' \odot h + i' \odot g(k_h)
    """
    k_f, k_i, k_h = xp_t.chunk(3, dim=1)
    log_f, log_i = min_lstm_log_gates(k_f, k_i)
    f_n, i_n = log_f.exp(), log_i.exp()
    h_new = f_n * h + i_n * min_g(k_h)
    return h_new, h_new
