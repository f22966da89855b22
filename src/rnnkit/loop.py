"""The one time loop, and the parallel scan that replaces it for linear recurrences.

Everything is time-major here: ``xp`` (T, B, G*H) holds the input projections of all steps, ``mask``
(T, B, 1) is True at valid steps. A direction *runner* has the signature::

    runner(cell, xp, state, mask, reverse, rec_mask, zoneout) -> (outputs (T, B, Y), final_state)

Only :func:`run_loop` also takes ``observer`` (a per-step callback; see its docstring).

``reference`` (:func:`run_loop`) is the specification; every other runner is tested against it.

Masking rules, shared by every runner:

* at a padded step (``mask`` False) the state is carried unchanged and the output is zero, so the final
  state is each sequence's state at its own last valid step; a sequence of length 0 (no valid step)
  keeps its initial state and has only zero outputs;
* run in reverse, a sequence's state is untouched until its own last valid step — the reverse direction
  starts there, not at the padding;
* ``zoneout`` (Krueger et al. 2017) is one entry per state tensor: a (T, B, n) 0/1 tensor in training
  (1 keeps the previous value) or the rate as a float in evaluation (the expectation
  ``p * old + (1 - p) * new``);
* ``rec_mask`` (B, n) is the variational recurrent-dropout mask (Gal & Ghahramani 2016), the same at every
  step of the sequence.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from rnnkit.cells import CellBase, State

__all__ = ["run_loop", "advance", "run_scan", "linear_scan"]

Zoneout = list[Tensor | float] | None


def _as_tuple(state: State) -> tuple[Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


def advance(
    cell: CellBase,
    xp_t: Tensor,
    state: State,
    rec_mask: Tensor | None = None,
    zoneout_t: list[Tensor | float] | None = None,
    mask_t: Tensor | None = None,
) -> State:
    """One step of the loop: the cell, then zoneout, then the padding mask. Returns the new state."""
    _, new = cell.step(xp_t, state, rec_mask)
    if zoneout_t is None and mask_t is None:
        return new
    olds, news = _as_tuple(state), _as_tuple(new)
    out = []
    for i, (old, nw) in enumerate(zip(olds, news)):
        if zoneout_t is not None:
            z = zoneout_t[i]
            nw = nw + z * (old - nw)  # z * old + (1 - z) * new
        if mask_t is not None:
            nw = torch.where(mask_t, nw, old)
        out.append(nw)
    return tuple(out) if cell.paired_state else out[0]


def run_loop(
    cell: CellBase,
    xp: Tensor,
    state: State,
    mask: Tensor | None = None,
    reverse: bool = False,
    rec_mask: Tensor | None = None,
    zoneout: Zoneout = None,
    observer: Callable[[int, State], None] | None = None,
) -> tuple[Tensor, State]:
    """The reference time loop over ``xp.unbind(0)`` (unbinding, not indexing, keeps backward cheap).

    ``observer(t, state)``, when given, is called after every step with the step index and the new state
    (after zoneout and the padding mask: the state the next step consumes). It sees the autograd graph, so
    it may keep the tensors, e.g. to ask for ``dL/dh_t`` later (:mod:`rnnkit.train.monitor` does).
    """
    steps = xp.unbind(0)
    T = len(steps)
    masks = mask.unbind(0) if mask is not None else None
    zo_steps = None
    if zoneout is not None:
        zo_steps = [z.unbind(0) if isinstance(z, Tensor) else [z] * T for z in zoneout]
    outputs: list[Tensor] = [None] * T  # type: ignore[list-item]
    for t in range(T - 1, -1, -1) if reverse else range(T):
        state = advance(
            cell,
            steps[t],
            state,
            rec_mask,
            [z[t] for z in zo_steps] if zo_steps is not None else None,
            masks[t] if masks is not None else None,
        )
        if observer is not None:
            observer(t, state)
        y = _as_tuple(state)[0]
        outputs[t] = y if masks is None else y * masks[t]
    return torch.stack(outputs), state


SCAN_CHUNK = 8


def linear_scan(log_a: Tensor, log_b: Tensor, h0: Tensor, chunk: int = SCAN_CHUNK) -> Tensor:
    r"""All states of ``h_t = a_t h_{t-1} + b_t`` for ``a, b > 0`` given in log space, along dim 0.

    With :math:`A_t = \prod_{j \le t} a_j`, :math:`h_t = A_t h_0 + A_t \sum_{k \le t} b_k / A_k`; the sum is a
    ``logcumsumexp`` (Heinsen 2023), O(T) work and O(log T) depth. In float32 the rounding of ``log A_t``
    grows with ``|log A_t|``, so the scan runs within chunks of ``chunk`` steps (bounding ``|log A|``) and
    carries the state from chunk to chunk in a short loop of ``T / chunk`` elementwise steps. ``h0`` may have
    any sign: it is carried outside the logarithm.
    """
    T = log_a.shape[0]
    n = -(-T // chunk)
    pad = n * chunk - T
    if pad:  # identity steps: a = 1, b = 0
        log_a = torch.cat([log_a, log_a.new_zeros((pad, *log_a.shape[1:]))])
        log_b = torch.cat([log_b, log_b.new_full((pad, *log_b.shape[1:]), torch.finfo(log_b.dtype).min / 4)])
    log_a = log_a.reshape(n, chunk, *log_a.shape[1:])  # (n, C, B, H)
    log_b = log_b.reshape(n, chunk, *log_b.shape[1:])
    log_A = torch.cumsum(log_a, dim=1)
    A = torch.exp(log_A)
    local = torch.exp(log_A + torch.logcumsumexp(log_b - log_A, dim=1))  # chunk scans from a zero state
    carries = []
    carry = h0
    for k in range(n):  # state entering each chunk
        carries.append(carry)
        carry = local[k, -1] + A[k, -1] * carry
    h = local + A * torch.stack(carries).unsqueeze(1)
    return h.reshape(n * chunk, *h.shape[2:])[:T]


def run_scan(
    cell: CellBase,
    xp: Tensor,
    state: Tensor,
    mask: Tensor | None = None,
    reverse: bool = False,
    rec_mask: Tensor | None = None,
    zoneout: Zoneout = None,
) -> tuple[Tensor, Tensor]:
    """Runner for :class:`~rnnkit.MinGRU` / :class:`~rnnkit.MinLSTM`: the parallel log-space scan."""
    log_a, log_b = cell.log_coefficients(xp)
    if mask is not None:
        # padded steps are the identity h_t = h_{t-1}: a = 1, b = 0 (a very negative finite log keeps
        # logcumsumexp's backward free of inf - inf)
        log_a = log_a.masked_fill(~mask, 0.0)
        log_b = log_b.masked_fill(~mask, torch.finfo(log_b.dtype).min / 4)
    if reverse:
        log_a, log_b = log_a.flip(0), log_b.flip(0)
    h = linear_scan(log_a, log_b, state)
    if reverse:
        h = h.flip(0)
    final = h[0] if reverse else h[-1]
    return (h if mask is None else h * mask), final
