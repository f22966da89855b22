"""Seeding, RNG state capture, and the JSON + tensors encoding of optimiser/scheduler/RNG state.

``flatten(obj)`` turns a nested state (dicts with int keys, tuples, tensors, numpy arrays — what
``optimizer.state_dict()``, ``scheduler.state_dict()`` and the RNG getters return) into a JSON-able tree plus
a flat ``{name: tensor}`` dict for safetensors; ``unflatten`` inverts it exactly (bit for bit). No pickle.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rnnkit._errors import RnnkitError

__all__ = ["seed_everything", "get_rng_state", "set_rng_state", "flatten", "unflatten"]


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA).

    ``deterministic=True`` also asks torch for deterministic kernels (``torch.use_deterministic_algorithms``),
    which matters on GPUs; CPU training in rnnkit is deterministic for a fixed seed without it.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise RnnkitError(f"seed must be an int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=False)


def get_rng_state() -> dict[str, Any]:
    """Every RNG a training step may draw from: torch CPU (and CUDA), NumPy's global one, Python's."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def flatten(obj: Any, prefix: str, tensors: dict[str, Tensor]) -> Any:
    """JSON-able tree of ``obj``; tensors go into ``tensors`` under dotted names starting with ``prefix``."""
    if isinstance(obj, Tensor):
        tensors[prefix] = obj.detach().cpu()
        return {"__tensor__": prefix}
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: flatten(v, f"{prefix}.{k}", tensors) for k, v in obj.items()}
        items = []
        for i, (k, v) in enumerate(obj.items()):
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise RnnkitError(f"cannot store a state key of type {type(k).__name__} at {prefix}")
            items.append([k, flatten(v, f"{prefix}.{i}", tensors)])
        return {"__items__": items}
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise RnnkitError(f"cannot store a value of type {type(obj).__name__} at {prefix} (only data, no pickle)")


def unflatten(tree: Any, tensors: dict[str, Tensor]) -> Any:
    """Inverse of :func:`flatten`."""
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            name = tree["__tensor__"]
            if name not in tensors:
                raise RnnkitError(f"checkpoint state refers to a missing tensor {name!r}")
            return tensors[name]
        if "__ndarray__" in tree:
            return np.asarray(tree["__ndarray__"], dtype=tree["dtype"])
        if "__items__" in tree:
            return {k: unflatten(v, tensors) for k, v in tree["__items__"]}
        if "__tuple__" in tree:
            return tuple(unflatten(v, tensors) for v in tree["__tuple__"])
        return {k: unflatten(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unflatten(v, tensors) for v in tree]
    return tree
