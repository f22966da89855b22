"""Move weights between rnnkit and ``torch.nn.RNN/LSTM/GRU`` (and their cells), exactly."""

from __future__ import annotations

import torch
from torch import nn

from rnnkit._errors import RnnkitError
from rnnkit.cells import CellBase, GRUCell, LSTMCell, RNNCell
from rnnkit.layers import GRU, LSTM, RNN, Recurrent

__all__ = ["from_torch", "to_torch", "torch_names", "torch_state_dict"]

_TORCH_LAYERS = {nn.LSTM: "LSTM", nn.GRU: "GRU", nn.RNN: "RNN"}
_TORCH_CELLS = {nn.LSTMCell: LSTMCell, nn.GRUCell: GRUCell, nn.RNNCell: RNNCell}


def _param_names(cell: CellBase) -> list[str]:
    names = ["weight_ih", "weight_hh"]
    if cell.bias:
        names += ["bias_ih", "bias_hh"]
    if getattr(cell, "proj_size", 0):
        names.append("weight_hr")
    return names


@torch.no_grad()
def _copy(dst: nn.Parameter, src: torch.Tensor, what: str) -> None:
    if dst.shape != src.shape:
        raise RnnkitError(f"{what}: shape mismatch, expected {tuple(dst.shape)}, got {tuple(src.shape)}")
    dst.copy_(src)


def from_torch(module: nn.Module, batch_first: bool | None = None, **kwargs) -> nn.Module:
    """An rnnkit layer (or cell) with exactly the weights of a ``torch.nn`` RNN/LSTM/GRU (or cell).

    ``batch_first`` defaults to the torch module's own setting, so the result takes the same inputs.
    Extra keyword arguments (``backend=...``, ``recurrent_dropout=...``) go to the rnnkit constructor.

    Example::

        >>> t = torch.nn.LSTM(8, 16, num_layers=2, bidirectional=True)
        >>> layer = from_torch(t)
        >>> x = torch.randn(5, 3, 8)
        >>> torch.allclose(layer(x)[0], t(x)[0], atol=1e-6)
        True
    """
    for tcls, rcls in _TORCH_CELLS.items():
        if type(module) is tcls:
            extra = {"forget_bias": None} if rcls is LSTMCell else {}
            if rcls is RNNCell:
                extra["activation"] = module.nonlinearity
            cell = rcls(module.input_size, module.hidden_size, bias=module.bias, **extra, **kwargs)
            cell = cell.to(module.weight_ih.device, module.weight_ih.dtype)
            for name in _param_names(cell):
                _copy(getattr(cell, name), getattr(module, name), name)
            return cell
    kind = _TORCH_LAYERS.get(type(module))
    if kind is None:
        raise RnnkitError(
            f"from_torch expects torch.nn.RNN/LSTM/GRU or their cells, got {type(module).__name__}"
        )
    args = dict(
        num_layers=module.num_layers,
        bias=module.bias,
        batch_first=module.batch_first if batch_first is None else batch_first,
        dropout=float(module.dropout),
        bidirectional=module.bidirectional,
    )
    if kind == "LSTM":
        layer = LSTM(
            module.input_size,
            module.hidden_size,
            proj_size=module.proj_size,
            forget_bias=None,
            **args,
            **kwargs,
        )
    elif kind == "GRU":
        layer = GRU(module.input_size, module.hidden_size, **args, **kwargs)
    else:
        nonlin = module.nonlinearity
        layer = RNN(module.input_size, module.hidden_size, activation=nonlin, **args, **kwargs)
    layer = layer.to(module.weight_ih_l0.device, module.weight_ih_l0.dtype)
    _transfer(layer, module, to_rnnkit=True)
    return layer


def torch_names(layer: Recurrent) -> dict[str, str]:
    """rnnkit parameter name -> ``torch.nn.RNNBase`` name: ``cells.1.weight_ih`` -> ``weight_ih_l0_reverse``.

    Cell ``k`` is layer ``k // D``, direction ``k % D``; only the parameters torch has are listed.
    """
    D = layer.num_directions
    out = {}
    for k, cell in enumerate(layer.cells):
        suffix = f"_l{k // D}" + ("_reverse" if k % D else "")
        for name in _param_names(cell):
            out[f"cells.{k}.{name}"] = name + suffix
    return out


def _transfer(layer: Recurrent, module: nn.Module, to_rnnkit: bool) -> None:
    for ours_name, theirs_name in torch_names(layer).items():
        ours, theirs = layer.get_parameter(ours_name), getattr(module, theirs_name)
        if to_rnnkit:
            _copy(ours, theirs, theirs_name)
        else:
            _copy(theirs, ours, theirs_name)


def rename_torch_keys(layer: Recurrent, state_dict: dict, prefix: str = "") -> None:
    """In place: keys under ``torch.nn``'s names (``prefix + "weight_ih_l0"``) get rnnkit's names."""
    if prefix + "weight_ih_l0" not in state_dict:
        return
    for ours, theirs in torch_names(layer).items():
        if prefix + theirs in state_dict:
            state_dict[prefix + ours] = state_dict.pop(prefix + theirs)


def _torch_problems(obj: Recurrent) -> list[str]:
    mode, reason = obj.cell.native_mode()
    problems = [] if mode is not None else [reason]
    if obj.recurrent_dropout:
        problems.append("torch has no recurrent dropout")
    if obj.zoneout:
        problems.append("torch has no zoneout")
    if obj.merge != "concat":
        problems.append(f"torch concatenates directions, this layer merges by {obj.merge!r}")
    if obj.initial_state is not None:
        problems.append("torch has no learned initial state")
    return problems


def torch_state_dict(layer: Recurrent) -> dict[str, torch.Tensor]:
    """``layer``'s parameters under ``torch.nn.RNN/LSTM/GRU``'s names, in torch's order (detached tensors).

    ``torch.nn.LSTM(...).load_state_dict(torch_state_dict(layer))`` then computes what ``layer`` does. Only
    configurations torch can compute export (see :func:`to_torch`).
    """
    problems = _torch_problems(layer)
    if problems:
        raise RnnkitError("torch_state_dict: " + "; ".join(problems))
    return {theirs: layer.get_parameter(ours).detach() for ours, theirs in torch_names(layer).items()}


def to_torch(obj: nn.Module) -> nn.Module:
    """A ``torch.nn`` RNN/LSTM/GRU (or cell) with exactly the weights of an rnnkit layer (or cell).

    Only configurations torch can compute convert: plain cells (RNN tanh/relu, LSTM with optional
    ``proj_size``, GRU with ``reset_after=True``), no recurrent dropout or zoneout, ``merge="concat"``,
    no learned initial state. Anything else is a clear error naming what torch lacks.
    """
    if isinstance(obj, CellBase):
        mode, reason = obj.native_mode()
        if mode is None or (isinstance(obj, LSTMCell) and obj.proj_size):
            raise RnnkitError(f"to_torch: {reason if mode is None else 'torch.nn.LSTMCell has no proj_size'}")
        if isinstance(obj, LSTMCell):
            t = nn.LSTMCell(obj.input_size, obj.hidden_size, bias=obj.bias)
        elif isinstance(obj, GRUCell):
            t = nn.GRUCell(obj.input_size, obj.hidden_size, bias=obj.bias)
        else:
            t = nn.RNNCell(obj.input_size, obj.hidden_size, bias=obj.bias, nonlinearity=obj.activation)
        for name in _param_names(obj):
            _copy(getattr(t, name), getattr(obj, name), name)
        return t.to(obj.weight_ih.device, obj.weight_ih.dtype)
    if not isinstance(obj, Recurrent):
        raise RnnkitError(f"to_torch expects an rnnkit layer or cell, got {type(obj).__name__}")
    mode = obj.cell.native_mode()[0]
    problems = _torch_problems(obj)
    if problems:
        raise RnnkitError("to_torch: " + "; ".join(problems))
    cell = obj.cell
    args = dict(
        num_layers=obj.num_layers,
        bias=cell.bias,
        batch_first=obj.batch_first,
        dropout=obj.dropout,
        bidirectional=obj.bidirectional,
    )
    if mode == "LSTM":
        t = nn.LSTM(cell.input_size, cell.hidden_size, proj_size=cell.proj_size, **args)
    elif mode == "GRU":
        t = nn.GRU(cell.input_size, cell.hidden_size, **args)
    else:
        t = nn.RNN(cell.input_size, cell.hidden_size, nonlinearity=mode[4:].lower(), **args)
    t = t.to(cell.weight_ih.device, cell.weight_ih.dtype)
    _transfer(obj, t, to_rnnkit=False)
    return t
