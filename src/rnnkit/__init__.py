"""rnnkit: recurrent neural networks on PyTorch — cells, layers, training and applications."""

from rnnkit._errors import RnnkitError
from rnnkit.backends import use_backend
from rnnkit.cells import CellBase, GRUCell, LSTMCell, MinGRU, MinLSTM, RNNCell
from rnnkit.convert import from_torch, to_torch
from rnnkit.layers import GRU, LSTM, RNN, Recurrent, RecurrentMasks, detach_state, zeros_state

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

# sub-packages with heavier imports load on first use: ``rnnkit.datasets``, ``rnnkit.models``, ...
_LAZY = ("datasets", "models", "train", "experiments", "apps", "fused", "bench", "export")


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"rnnkit.{name}")
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")
