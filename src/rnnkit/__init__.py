"""rnnkit: recurrent neural networks on PyTorch — cells, layers, training and applications.

``import rnnkit`` is cheap: it loads neither torch nor numpy. Each public name is imported from its module on
first use (:func:`__getattr__` below), so ``rnnkit --help`` and a Ctrl-C during start-up are handled by the
command line before torch is loaded, while ``rnnkit.LSTM`` and ``from rnnkit import LSTM`` work as usual.
"""

from __future__ import annotations

import importlib

from rnnkit._errors import RnnkitError

__all__ = [
    "RnnkitError",
    "CellBase",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "MinGRU",
    "MinLSTM",
    "Recurrent",
    "RecurrentMasks",
    "use_backend",
    "RNN",
    "LSTM",
    "GRU",
    "zeros_state",
    "detach_state",
    "from_torch",
    "to_torch",
]
__version__ = "0.1.0"

# public name -> the module that defines it (all of them import torch)
_PUBLIC = {
    "use_backend": "rnnkit.backends",
    "CellBase": "rnnkit.cells",
    "GRUCell": "rnnkit.cells",
    "LSTMCell": "rnnkit.cells",
    "MinGRU": "rnnkit.cells",
    "MinLSTM": "rnnkit.cells",
    "RNNCell": "rnnkit.cells",
    "from_torch": "rnnkit.convert",
    "to_torch": "rnnkit.convert",
    "GRU": "rnnkit.layers",
    "LSTM": "rnnkit.layers",
    "RNN": "rnnkit.layers",
    "Recurrent": "rnnkit.layers",
    "RecurrentMasks": "rnnkit.layers",
    "detach_state": "rnnkit.layers",
    "zeros_state": "rnnkit.layers",
}
# sub-modules load on first use too: ``rnnkit.datasets``, ``rnnkit.models``, ... (and those that an eager
# ``import rnnkit`` used to load on the way, so ``import rnnkit; rnnkit.layers`` keeps working)
_LAZY = ("datasets", "models", "train", "experiments", "apps", "fused", "bench", "export")
_LAZY += ("backends", "cells", "convert", "layers", "functional", "loop")


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    if name in _LAZY:
        return importlib.import_module(f"rnnkit.{name}")
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_LAZY))
