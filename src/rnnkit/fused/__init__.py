"""rnnkit's fused engine: compiled forward and backpropagation through time for every rnnkit cell.

``backend="fused"`` runs a layer through :func:`run_fused`, a per-direction runner with the signature
of :func:`rnnkit.loop.run_loop`. The C++ kernels (``csrc/``) are built on first use and cached in a folder
named by a hash of their sources, the build flags, torch, Python and the CPU capability torch selected
(:func:`cache_dir`; see :mod:`rnnkit.fused._build`); where they cannot be built the backend reports itself
unavailable.
"""

from __future__ import annotations

import torch

from rnnkit.fused._build import cache_dir, load
from rnnkit.fused._engine import run_fused, saved_floats_per_step, supports_cell
from rnnkit.fused._stack import project, stack_forward

__all__ = [
    "available",
    "supports",
    "run_fused",
    "stack_forward",
    "project",
    "saved_floats_per_step",
    "cache_dir",
    "load",
]


def available() -> bool:
    """Whether the compiled engine can run in this process (builds it on the first call)."""
    return load()[0]


def supports(layer, x: torch.Tensor | None = None) -> tuple[bool, str]:
    """``(ok, reason)`` for the ``fused`` backend on ``layer`` (and input ``x`` when given)."""
    ok, reason = supports_cell(layer.cell)
    if not ok:
        return False, reason
    what = reason
    p = next(layer.parameters())
    device = x.device if x is not None else p.device
    if device.type != "cpu":
        return False, f"the fused engine runs on CPU; the layer is on {device}"
    dtype = x.dtype if x is not None else p.dtype
    if dtype not in (torch.float32, torch.float64):
        return False, f"the fused engine computes in float32 or float64, got {dtype}"
    if any(q.dtype != dtype for q in layer.parameters()):
        return False, f"the fused engine needs parameters and input of one dtype ({dtype})"
    ok, reason = load()
    if not ok:
        return False, reason
    return True, f"fused {what}: {reason}"
