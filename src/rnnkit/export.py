"""Export rnnkit layers and models to ONNX, with the recurrent state as an explicit input and output.

How a graph is made (torch 2.13 was checked first; see ``docs/export.md``):

* Everything that is not a recurrent layer (embeddings, pooling, heads) goes through torch's TorchScript
  exporter (``torch.onnx.export(..., dynamo=False)``). Each :class:`~rnnkit.Recurrent` layer inside is
  replaced, for the trace, by a placeholder node, which is then swapped for a graph built here.
* A layer whose cell matches one of ONNX's own recurrent operators exactly becomes that operator, one node
  per layer: a plain LSTM (peepholes allowed) -> ``LSTM`` (gates reordered from torch's ``i, f, g, o`` to
  ONNX's ``i, o, f, c``), a ``reset_after`` GRU -> ``GRU`` with ``linear_before_reset=1`` (``r, z, n`` ->
  ``z, r, h``), an RNN with ``tanh``/``relu``/``sigmoid`` -> ``RNN``.
* Every other cell (layer norm, projections, cell clipping, the ``reset_after=False`` GRU, MinGRU, MinLSTM,
  callable activations, zoneout) runs in an ONNX ``Loop`` over time. The loop's body is the cell's own
  ``step`` exported by torch, and the input projection of all steps is the cell's ``project_input``: the
  same functions the reference backend runs, whatever backend trained the layer.

Every exported graph has dynamic batch and time axes, takes ``lengths`` (B,) int64 (padding: outputs are
zero past a sequence's length and its final state is the one at its last valid step; a length of 0 keeps the
given state) and, for layers and language models, the initial state ``h0`` (and ``c0``) in the layer's
layout ``(L*D, B, n)``; the final state comes back as ``h_n`` (and ``c_n``), so a runtime can stream one
chunk per call, carrying the state.

Public: :func:`to_onnx`, :func:`export_run`, :func:`left_out_of_export`, :class:`ClassifierEnsemble`.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from collections.abc import Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit import backends
from rnnkit import functional as RF
from rnnkit._errors import RnnkitError
from rnnkit.cells import CellBase, GRUCell, LSTMCell, RNNCell
from rnnkit.layers import Recurrent
from rnnkit.models.classifier import ClassifierEnsemble  # exported whole by export_run; its home is models

__all__ = [
    "to_onnx",
    "export_run",
    "left_out_of_export",
    "ClassifierEnsemble",
    "OPSET",
    "ONNX_OPS",
    "SEQ2SEQ_PARTS",
]

#: the ONNX opset of exported graphs (17: the first with ``LayerNormalization``)
OPSET = 17
#: values of ``to_onnx(ops=...)``: ``"auto"`` uses ONNX's own LSTM/GRU/RNN where they match, ``"loop"`` never
ONNX_OPS = ("auto", "loop")

#: the graphs a :class:`~rnnkit.models.Seq2Seq` exports to, one file each (``to_onnx(..., part=)``)
SEQ2SEQ_PARTS = ("encoder", "decoder_step")

_DOMAIN = "rnnkit_export"
_INT64_MIN = -(2**63)


def _require_onnx():
    try:
        import onnx
    except ImportError:
        raise RnnkitError("exporting to ONNX needs the onnx package: pip install 'rnnkit[export]'") from None
    return onnx


# -- building ONNX graphs --------------------------------------------------------------------------------------
@dataclass
class _Graph:
    """Nodes and initializers being built; every name made here carries ``prefix``."""

    prefix: str
    nodes: list = field(default_factory=list)
    inits: list = field(default_factory=list)
    count: int = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{self.prefix}{hint}_{self.count}"

    def op(self, op_type: str, inputs: Sequence[str], n_out: int = 1, outputs=None, **attrs) -> Any:
        from onnx import helper

        outs = list(outputs) if outputs is not None else [self.name(op_type) for _ in range(n_out)]
        self.nodes.append(
            helper.make_node(op_type, list(inputs), outs, name=self.name(op_type + "_n"), **attrs)
        )
        return outs[0] if len(outs) == 1 else outs

    def const(self, value, hint: str = "c", dtype=None) -> str:
        import numpy as np
        from onnx import numpy_helper

        arr = value.detach().cpu().numpy() if isinstance(value, Tensor) else np.asarray(value, dtype=dtype)
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.array(arr, order="C"), name))
        return name

    def ints(self, values: Sequence[int]) -> str:
        import numpy as np

        return self.const(np.asarray(values, dtype=np.int64), "ints")


def _onnx_dtype(dtype: torch.dtype) -> int:
    from onnx import TensorProto

    if dtype != torch.float32:
        raise RnnkitError(f"ONNX export needs float32 parameters (call .float() first), got {dtype}")
    return TensorProto.FLOAT


def _static_layer_norm(x: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    # rnnkit.functional.layer_norm with the feature size as a Python int: torch's tracer records
    # ``x.shape[-1:]`` as a computed value, which its LayerNormalization export refuses
    return torch.nn.functional.layer_norm(x, (int(x.shape[-1]),), weight, bias, RF.LN_EPS)


def _logaddexp_symbolic(g, a, b):
    # log(e^a + e^b) = max(a, b) + softplus(-|a - b|): torch's TorchScript exporter has no aten::logaddexp
    return g.op("Add", g.op("Max", a, b), g.op("Softplus", g.op("Neg", g.op("Abs", g.op("Sub", a, b)))))


@contextmanager
def _traceable_cells():
    """Within the block, cells trace into ONNX: layer norm over a static feature size, and ``logaddexp``
    (MinLSTM's gate normalisation) as ONNX operators."""
    if RF.layer_norm is _static_layer_norm:  # already inside (a model's trace exports its cells' steps)
        yield
        return
    original = RF.layer_norm
    RF.layer_norm = _static_layer_norm
    torch.onnx.register_custom_op_symbolic("aten::logaddexp", _logaddexp_symbolic, OPSET)
    try:
        yield
    finally:
        RF.layer_norm = original
        torch.onnx.unregister_custom_op_symbolic("aten::logaddexp", OPSET)


def _torch_graph(module: nn.Module, args: tuple, input_names, output_names, dynamic_axes):
    """A small module exported by torch's TorchScript exporter, as an ``onnx.GraphProto``."""
    import onnx

    buf = io.BytesIO()
    with warnings.catch_warnings(), _traceable_cells():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            buf,
            dynamo=False,
            opset_version=OPSET,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
        )
    return onnx.load_model_from_string(buf.getvalue()).graph


def _inline(g: _Graph, sub, inputs: dict[str, str], outputs: dict[str, str], nodes: list) -> None:
    """Copy graph ``sub``'s nodes into ``nodes`` (and its initializers into ``g``), renaming every value:
    ``sub``'s inputs and outputs to the names given, the rest under ``g``'s prefix."""
    from onnx import NodeProto

    tag = g.name("sub") + "/"
    rename = dict(inputs)
    rename.update(outputs)

    def new(n: str) -> str:
        if not n:
            return n
        return rename.setdefault(n, tag + n)

    for init in sub.initializer:
        t = type(init)()
        t.CopyFrom(init)
        t.name = new(init.name)
        g.inits.append(t)
    for node in sub.node:
        if any(a.type in (5, 10) for a in node.attribute):  # GRAPH / GRAPHS: none expected in a cell
            raise RnnkitError(f"cannot inline an exported {node.op_type} node with subgraphs")
        m = NodeProto()
        m.CopyFrom(node)
        m.name = tag + node.name
        m.input[:] = [new(n) for n in node.input]
        m.output[:] = [new(n) for n in node.output]
        nodes.append(m)


class _Project(nn.Module):
    def __init__(self, cell: CellBase):
        super().__init__()
        self.cell = cell

    def forward(self, x):
        return self.cell.project_input(x)


class _Step(nn.Module):
    def __init__(self, cell: CellBase):
        super().__init__()
        self.cell = cell

    def forward(self, xp_t, *state):
        _, new = self.cell.step(xp_t, tuple(state) if self.cell.paired_state else state[0])
        return new


def _onnx_op_for(cell: CellBase, zoneout: float) -> str | None:
    """The ONNX operator that computes ``cell`` exactly, or None (then a Loop)."""
    if zoneout:
        return None
    if type(cell) is LSTMCell:
        if cell.layer_norm or cell.proj_size or cell.cell_clip is not None:
            return None
        return "LSTM"
    if type(cell) is GRUCell:
        return "GRU" if cell.reset_after and not cell.layer_norm else None
    if type(cell) is RNNCell:
        return "RNN" if cell.activation in ("tanh", "relu", "sigmoid") else None
    return None


_GATE_ORDER = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}  # torch's blocks in ONNX's order


def _reorder(w: Tensor, order: list[int]) -> Tensor:
    return torch.cat([blk for blk in (w.chunk(len(order), 0)[i] for i in order)], 0)


def _onnx_op_layer(g, op, cells, x, seq_lens, h0, c0):
    """One layer (both directions) as one ONNX LSTM/GRU/RNN node. ``x`` (T, B, I); returns (y (T,B,D*H), h, c)."""
    D = len(cells)
    order = _GATE_ORDER[op]
    W = torch.stack([_reorder(c.weight_ih, order) for c in cells])
    R = torch.stack([_reorder(c.weight_hh, order) for c in cells])
    cell = cells[0]
    H = cell.hidden_size
    inputs = [x, g.const(W, "W"), g.const(R, "R")]
    if cell.bias:
        B = torch.stack([torch.cat([_reorder(c.bias_ih, order), _reorder(c.bias_hh, order)]) for c in cells])
        inputs.append(g.const(B, "B"))
    else:
        inputs.append("")
    inputs += [seq_lens or "", h0]
    attrs = dict(hidden_size=H, direction="bidirectional" if D == 2 else "forward")
    if op == "LSTM":
        inputs.append(c0)
        if cell.peephole:
            P = torch.stack([torch.cat([c.weight_ci, c.weight_co, c.weight_cf]) for c in cells])
            inputs.append(g.const(P, "P"))
    if op == "GRU":
        attrs["linear_before_reset"] = 1
    if op == "RNN":
        attrs["activations"] = [cell.activation.capitalize()] * D
    n_out = 3 if op == "LSTM" else 2
    outs = g.op(op, inputs, n_out=n_out, **attrs)
    y = outs[0]  # (T, D, B, H)
    y = g.op("Transpose", [y], perm=[0, 2, 1, 3])  # (T, B, D, H)
    y = g.op("Reshape", [y, g.ints([0, 0, D * H])])  # (T, B, D*H)
    return y, outs[1], outs[2] if op == "LSTM" else None


def _loop_direction(g, cell, xp, state, mask, T, reverse, zoneout, dtype):
    """One cell over time in an ONNX Loop: ``xp`` (T, B, G*H) -> (y (T, B, Y), final state parts)."""
    from onnx import TensorProto, helper

    n_parts = len(cell.state_sizes())
    body = _Graph(g.name("body") + "/")
    it, cond_in = body.name("iter"), body.name("cond")
    olds = [body.name("s") for _ in range(n_parts)]
    if reverse:
        t = body.op("Sub", [_scalar_last(g, T), it])  # T - 1 - iter
    else:
        t = it
    xp_t = body.op("Gather", [xp, t], axis=0)  # (B, G*H)
    # the cell's step, exported by torch and inlined
    args = [torch.zeros(2, cell.gates * cell.hidden_size, dtype=dtype)] + [
        torch.zeros(2, n, dtype=dtype) for n in cell.state_sizes()
    ]
    in_names = ["xp_t"] + [f"s{i}" for i in range(n_parts)]
    out_names = [f"new{i}" for i in range(n_parts)]
    sub = _torch_graph(
        _Step(cell),
        tuple(args),
        in_names,
        out_names,
        {n: {0: "batch"} for n in in_names + out_names},
    )
    news = [body.name("new") for _ in range(n_parts)]
    _inline(body, sub, dict(zip(in_names, [xp_t, *olds])), dict(zip(out_names, news)), body.nodes)
    if zoneout:
        p = body.const(torch.tensor(zoneout, dtype=dtype), "zoneout")
        news = [body.op("Add", [n, body.op("Mul", [p, body.op("Sub", [o, n])])]) for o, n in zip(olds, news)]
    if mask is not None:
        m_t = body.op("Gather", [mask, t], axis=0)  # (B, 1) bool
        news = [body.op("Where", [m_t, n, o]) for o, n in zip(olds, news)]
        y = body.op("Mul", [news[0], body.op("Cast", [m_t], to=_onnx_dtype(dtype))])
    else:
        y = body.op("Identity", [news[0]])
    cond_out = body.op("Identity", [cond_in])
    finals = [body.op("Identity", [n]) for n in news]
    elem = _onnx_dtype(dtype)
    graph = helper.make_graph(
        body.nodes,
        g.name("loop_body"),
        [
            helper.make_tensor_value_info(it, TensorProto.INT64, []),
            helper.make_tensor_value_info(cond_in, TensorProto.BOOL, []),
        ]
        + [helper.make_tensor_value_info(o, elem, None) for o in olds],
        [helper.make_tensor_value_info(cond_out, TensorProto.BOOL, [])]
        + [helper.make_tensor_value_info(f, elem, None) for f in finals]
        + [helper.make_tensor_value_info(y, elem, None)],
    )
    g.inits.extend(body.inits)  # weights live in the outer graph; the body reads them by name
    outs = g.op("Loop", [T, "", *state], n_out=n_parts + 1, body=graph)
    final, ys = outs[:n_parts], outs[n_parts]  # ys (T, B, Y) in iteration order
    if reverse:
        ys = g.op("Slice", [ys, g.ints([-1]), g.ints([_INT64_MIN]), g.ints([0]), g.ints([-1])])
    return ys, final


def _scalar_last(g, T):
    """``T - 1`` as an int64 scalar (T is an int64 scalar)."""
    return g.op("Sub", [T, g.const(torch.tensor(1, dtype=torch.int64), "one")])


def _recurrent_graph(
    g: _Graph,
    layer: Recurrent,
    x: str,
    lengths: str | None,
    state: list[str] | None,
    outputs: list[str],
    ops: str,
) -> None:
    """The nodes of ``layer`` reading ``x``, ``lengths`` (B,) int64 or None and the state parts (or None:
    the layer's start state), writing ``outputs`` = [y, h_n(, c_n)]."""
    cell0 = layer.cell
    p = next(layer.parameters())
    dtype = p.dtype
    D, L = layer.num_directions, layer.num_layers
    n_parts = len(cell0.state_sizes())
    xt = g.op("Transpose", [x], perm=[1, 0, 2]) if layer.batch_first else x  # (T, B, I)
    shape = g.op("Shape", [xt])
    T = g.op("Gather", [shape, g.const(torch.tensor(0, dtype=torch.int64), "zero")], axis=0)  # scalar
    Bv = g.op("Slice", [shape, g.ints([1]), g.ints([2]), g.ints([0])])  # (1,)
    if state is None:
        # the start state: the learned one, else zeros, expanded to the batch
        if layer.initial_state is not None:
            parts = [prm.detach().unsqueeze(1) for prm in layer.initial_state]
        else:
            parts = [torch.zeros(L * D, 1, n, dtype=dtype) for n in cell0.state_sizes()]
        state = []
        for prt, n in zip(parts, cell0.state_sizes()):
            target = g.op("Concat", [g.ints([L * D]), Bv, g.ints([n])], axis=0)
            state.append(g.op("Expand", [g.const(prt, "start"), target]))
    mask = seq_lens = None
    if lengths is not None:
        steps = g.op(
            "Range",
            [
                g.const(torch.tensor(0, dtype=torch.int64), "zero"),
                T,
                g.const(torch.tensor(1, dtype=torch.int64), "one"),
            ],
        )  # (T,)
        valid = g.op(
            "Less", [g.op("Unsqueeze", [steps, g.ints([1])]), g.op("Unsqueeze", [lengths, g.ints([0])])]
        )  # (T, B)
        mask = g.op("Unsqueeze", [valid, g.ints([2])])  # (T, B, 1)
        seq_lens = g.op("Cast", [lengths], to=6)  # int32, for ONNX's own operators
    finals: list[list[str]] = [[] for _ in range(n_parts)]
    inp = xt
    for layer_i in range(L):
        cells = [layer.cells[layer_i * D + d] for d in range(D)]
        ks = list(range(layer_i * D, (layer_i + 1) * D))
        sl = [
            g.op("Slice", [s, g.ints([ks[0]]), g.ints([ks[-1] + 1]), g.ints([0])]) for s in state
        ]  # (D,B,n)
        op = _onnx_op_for(cells[0], layer.zoneout) if ops == "auto" else None
        if op is not None:
            y, h, c = _onnx_op_layer(g, op, cells, inp, seq_lens, sl[0], sl[1] if n_parts == 2 else None)
            if lengths is not None:
                # onnxruntime leaves the final state of a length-0 sequence at zero; rnnkit keeps the given one
                started = g.op(
                    "Unsqueeze",
                    [g.op("Greater", [lengths, g.const(torch.tensor(0), "zero")]), g.ints([0, 2])],
                )  # (1, B, 1)
                h = g.op("Where", [started, h, sl[0]])
                c = None if c is None else g.op("Where", [started, c, sl[1]])
            finals[0].append(h)
            if c is not None:
                finals[1].append(c)
            inp = y
            continue
        ys = []
        for d, cell in enumerate(cells):
            sub = _torch_graph(
                _Project(cell),
                (torch.zeros(2, 2, cell.input_size, dtype=dtype),),
                ["x"],
                ["xp"],
                {"x": {0: "time", 1: "batch"}, "xp": {0: "time", 1: "batch"}},
            )
            xp = g.name("xp")
            _inline(g, sub, {"x": inp}, {"xp": xp}, g.nodes)
            idx = g.const(torch.tensor(d, dtype=torch.int64), "dir")
            s_d = [g.op("Gather", [s, idx], axis=0) for s in sl]  # (B, n)
            y, fin = _loop_direction(g, cell, xp, s_d, mask, T, d == 1, layer.zoneout, dtype)
            ys.append(y)
            for i, f in enumerate(fin):
                finals[i].append(g.op("Unsqueeze", [f, g.ints([0])]))
        inp = ys[0] if D == 1 else g.op("Concat", ys, axis=-1)  # (T, B, D*Y)
    out = inp
    if D == 2 and layer.merge != "concat":
        fwd, bwd = g.op("Split", [out, g.ints([cell0.output_size] * 2)], n_out=2, axis=-1)
        if layer.merge == "sum":
            out = g.op("Add", [fwd, bwd])
        elif layer.merge == "mean":
            out = g.op("Mul", [g.op("Add", [fwd, bwd]), g.const(torch.tensor(0.5, dtype=dtype), "half")])
        else:
            out = g.op("Mul", [fwd, bwd])
    if layer.batch_first:
        g.op("Transpose", [out], outputs=[outputs[0]], perm=[1, 0, 2])
    else:
        g.op("Identity", [out], outputs=[outputs[0]])
    for i in range(n_parts):
        g.op("Concat", finals[i], outputs=[outputs[1 + i]], axis=0)  # (L*D, B, n)


# -- tracing models with placeholders for their recurrent layers -------------------------------------------
#: the layers being traced, by key (set by :func:`_placeholders`; torch's trace cannot carry a module)
_ACTIVE: dict[str, Recurrent] = {}


class _Placeholder(torch.autograd.Function):
    """Stands for one recurrent layer in torch's trace: computes it (reference backend) and exports as one
    ``rnnkit_export::Recurrent`` node that :func:`_substitute` replaces."""

    @staticmethod
    def forward(ctx, key, has_lengths, has_state, x, *rest):
        layer = _ACTIVE[key]
        lengths = rest[0] if has_lengths else None
        state = rest[1 if has_lengths else 0 :] if has_state else None
        if state is not None:
            state = tuple(state) if layer.cell.paired_state else state[0]
        tracing = torch._C._get_tracing_state()
        torch._C._set_tracing_state(None)  # the layer's own ops stay out of the trace
        try:
            with backends.use_backend("reference"), torch.no_grad():
                out, final = Recurrent.forward(layer, x, state, lengths)
        finally:
            torch._C._set_tracing_state(tracing)
        return (out, *final) if isinstance(final, tuple) else (out, final)

    @staticmethod
    def symbolic(g, key, has_lengths, has_state, x, *rest):
        n_out = 1 + len(_ACTIVE[key].cell.state_sizes())
        outs = g.op(
            f"{_DOMAIN}::Recurrent",
            x,
            *rest,
            key_s=key,
            has_lengths_i=int(has_lengths),
            has_state_i=int(has_state),
            outputs=n_out,
        )
        for o in outs:  # rank and dtype for torch's shape inference (the graph replaces this node)
            o.setType(x.type().with_sizes([None, None, None]))
        return outs


@contextmanager
def _placeholders(module: nn.Module):
    """Within the block, every Recurrent layer in ``module`` runs as a :class:`_Placeholder`."""
    layers: dict[str, Recurrent] = {}
    for name, sub in module.named_modules():
        if isinstance(sub, Recurrent):
            key = name or "layer"
            layers[key] = sub

            def fwd(x, state=None, lengths=None, masks=None, _layer=sub, _key=key):
                rest = []
                if lengths is not None:
                    rest.append(torch.as_tensor(lengths).to(torch.int64))
                if state is not None:
                    rest.extend(state if isinstance(state, tuple) else (state,))
                outs = _Placeholder.apply(_key, lengths is not None, state is not None, x, *rest)
                return outs[0], (tuple(outs[1:]) if _layer.cell.paired_state else outs[1])

            sub.forward = fwd
    _ACTIVE.update(layers)
    try:
        yield layers
    finally:
        for key, sub in layers.items():
            del sub.forward
            _ACTIVE.pop(key, None)


def _substitute(model_proto, layers: dict[str, Recurrent], ops: str) -> None:
    """Replace every placeholder node by the graph of its layer."""
    graph = model_proto.graph
    new_nodes = []
    for i, node in enumerate(graph.node):
        if node.domain != _DOMAIN:
            new_nodes.append(node)
            continue
        attrs = {a.name: a for a in node.attribute}
        key = attrs["key"].s.decode()
        has_len, has_state = attrs["has_lengths"].i, attrs["has_state"].i
        ins = list(node.input)
        x, rest = ins[0], ins[1:]
        lengths = rest[0] if has_len else None
        state = rest[1 if has_len else 0 :] if has_state else None
        g = _Graph(f"{key}/{i}/")  # a layer called twice becomes two subgraphs
        _recurrent_graph(g, layers[key], x, lengths, state, list(node.output), ops)
        new_nodes.extend(g.nodes)
        graph.initializer.extend(g.inits)
    del graph.node[:]
    graph.node.extend(new_nodes)
    keep = [o for o in model_proto.opset_import if o.domain != _DOMAIN]
    del model_proto.opset_import[:]
    model_proto.opset_import.extend(keep)


# -- what gets exported ----------------------------------------------------------------------------------------
class _LayerIO(nn.Module):
    def __init__(self, layer: Recurrent):
        super().__init__()
        self.layer = layer

    def forward(self, x, lengths, *state):
        st = tuple(state) if self.layer.cell.paired_state else state[0]
        y, final = self.layer(x, st, lengths)
        return (y, *final) if isinstance(final, tuple) else (y, final)


class _LMIO(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tokens, lengths, *state):
        paired = self.model.encoder.cell.paired_state
        logits, final = self.model(tokens, tuple(state) if paired else state[0], lengths)
        return (logits, *final) if isinstance(final, tuple) else (logits, final)


class _PooledIO(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs, lengths, *extra):
        return self.model(inputs, lengths, *extra)


def _seq2seq_names(model) -> tuple[list[str], list[str]]:
    """The tensors an encoder hands to the decoder, and the decoder state's parts."""
    kind = model.config.attention
    carried = ["memory", "mask"] if kind != "none" else []
    if kind != "none":
        carried.append("keys")
    if (
        getattr(model, "copy_gate", None) is not None
    ):  # copy attention: each source token's target id and share
        carried += ["copy_ids", "copy_share"]
    parts = ["h", "c"][: len(model.decoder.cell.state_sizes())]
    if kind in ("dot", "general"):
        parts.append("feed")
    return carried, parts


class _Seq2SeqEncoderIO(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, src, src_lengths):
        st = self.model.encode(src, src_lengths)
        carried, parts = _seq2seq_names(self.model)
        rnn = _as_parts(st["rnn"])
        return (*(st[k] for k in carried), *rnn, *(st[k] for k in parts[len(rnn) :]))


class _Seq2SeqStepIO(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, prev, *tensors):
        carried, parts = _seq2seq_names(self.model)
        st = dict(zip(carried + parts, tensors))
        n = len(self.model.decoder.cell.state_sizes())
        rnn = tuple(st.pop(k) for k in parts[:n])
        st["rnn"] = rnn if n == 2 else rnn[0]
        logits, st, weights = self.model._step(prev, st)
        outs = (logits, *_as_parts(st["rnn"]), *(st[k] for k in parts[n:]))
        return outs if weights is None else (*outs, weights)


def _as_parts(state) -> tuple[Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


@dataclass
class _Plan:
    wrapper: nn.Module
    args: tuple
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]]
    placeholders: bool = True  # False: the graph has no recurrent layer's forward (a decoder step)


def _state_io(layer: Recurrent, B: int, dtype) -> tuple[list[Tensor], list[str], list[str]]:
    n = layer.num_layers * layer.num_directions
    sizes = layer.cell.state_sizes()
    names = ["h0", "c0"][: len(sizes)]
    outs = ["h_n", "c_n"][: len(sizes)]
    return [torch.zeros(n, B, s, dtype=dtype) for s in sizes], names, outs


def _plan(module: nn.Module, part: str | None) -> _Plan:
    from rnnkit.models import LanguageModel, Seq2Seq, SequenceClassifier, SequenceRegressor

    B, T = 2, 3
    if isinstance(module, Seq2Seq):
        if part not in SEQ2SEQ_PARTS:
            raise RnnkitError(
                f"a Seq2Seq model exports in parts: expected part in {SEQ2SEQ_PARTS}, got {part!r}"
            )
        return _seq2seq_plan(module, part, B, T)
    if part is not None:
        raise RnnkitError(f"part= is for Seq2Seq models only, got part={part!r} for {type(module).__name__}")
    if isinstance(module, Recurrent):
        dtype = next(module.parameters()).dtype
        x = torch.zeros(B, T, module.input_size, dtype=dtype)
        if not module.batch_first:
            x = x.transpose(0, 1)
        states, s_in, s_out = _state_io(module, B, dtype)
        bt = {0: "batch", 1: "time"} if module.batch_first else {0: "time", 1: "batch"}
        axes = {"input": bt, "lengths": {0: "batch"}, "output": bt}
        axes.update({n: {1: "batch"} for n in s_in + s_out})
        return _Plan(
            _LayerIO(module),
            (x, torch.full((B,), T), *states),
            ["input", "lengths", *s_in],
            ["output", *s_out],
            axes,
        )
    if isinstance(module, LanguageModel):
        states, s_in, s_out = _state_io(module.encoder, B, next(module.parameters()).dtype)
        axes = {"tokens": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "logits": {0: "batch", 1: "time"}}
        axes.update({n: {1: "batch"} for n in s_in + s_out})
        return _Plan(
            _LMIO(module),
            (torch.zeros(B, T, dtype=torch.int64), torch.full((B,), T), *states),
            ["tokens", "lengths", *s_in],
            ["logits", *s_out],
            axes,
        )
    if isinstance(module, (SequenceClassifier, SequenceRegressor, ClassifierEnsemble)):
        c = module.config
        if c.vocab_size:
            inputs = torch.zeros(B, T, dtype=torch.int64)
        else:
            inputs = torch.zeros(B, T, c.input_size, dtype=next(module.parameters()).dtype)
        out = "output" if isinstance(module, SequenceRegressor) else "logits"
        axes = {"inputs": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, out: {0: "batch"}}
        if getattr(c, "subword_buckets", 0):  # a third input: each word's hashed n-gram rows + 1 (0 = none)
            subwords = torch.ones(B, T, 2, dtype=torch.int64)
            axes["subwords"] = {0: "batch", 1: "time", 2: "ngrams"}
            return _Plan(
                _PooledIO(module),
                (inputs, torch.full((B,), T), subwords),
                ["inputs", "lengths", "subwords"],
                [out],
                axes,
            )
        return _Plan(_PooledIO(module), (inputs, torch.full((B,), T)), ["inputs", "lengths"], [out], axes)
    raise RnnkitError(
        "to_onnx exports an rnnkit Recurrent layer (RNN/LSTM/GRU/Recurrent), a LanguageModel, a "
        f"SequenceClassifier, a SequenceRegressor or a Seq2Seq, got {type(module).__name__}"
    )


def _seq2seq_plan(model, part: str, B: int, S: int) -> _Plan:
    c = model.config
    src = (
        torch.zeros(B, S, dtype=torch.int64)
        if c.src_vocab_size
        else torch.zeros(B, S, c.src_input_size, dtype=next(model.parameters()).dtype)
    )
    with torch.no_grad():
        st = model.eval().encode(src, torch.full((B,), S))
    carried, parts = _seq2seq_names(model)
    examples = dict(zip(carried, (st[k] for k in carried)))
    rnn = _as_parts(st["rnn"])
    examples.update(zip(parts, (*rnn, *(st[k] for k in parts[len(rnn) :]))))
    axes: dict[str, dict[int, str]] = {"memory": {0: "batch", 1: "source"}, "mask": {0: "batch", 1: "source"}}
    axes["keys"] = axes["copy_ids"] = axes["copy_share"] = axes["memory"]
    for k in parts:
        axes[k] = {0: "batch"} if k == "feed" else {1: "batch"}
    if part == "encoder":
        axes.update({"src": {0: "batch", 1: "source"}, "src_lengths": {0: "batch"}})
        return _Plan(
            _Seq2SeqEncoderIO(model),
            (src, torch.full((B,), S)),
            ["src", "src_lengths"],
            carried + parts,
            {k: v for k, v in axes.items() if k in ["src", "src_lengths", *carried, *parts]},
        )
    outs = ["logits"] + [f"{k}_out" for k in parts] + (["attention"] if carried else [])
    axes.update({f"{k}_out": axes[k] for k in parts})
    axes.update({"prev": {0: "batch"}, "logits": {0: "batch"}, "attention": {0: "batch", 1: "source"}})
    names = ["prev", *carried, *parts]
    return _Plan(
        _Seq2SeqStepIO(model),
        (torch.zeros(B, dtype=torch.int64), *(examples[k] for k in carried + parts)),
        names,
        outs,
        {k: v for k, v in axes.items() if k in names + outs},
        placeholders=False,  # the decoder runs through Recurrent.step: one traced step, no time loop
    )


def to_onnx(
    module: nn.Module,
    path: str | os.PathLike,
    *,
    ops: str = "auto",
    check: bool = True,
    metadata: dict[str, str] | None = None,
    part: str | None = None,
) -> Path:
    """Export an rnnkit layer or model to an ONNX file at ``path`` (written atomically); returns the path.

    Args:
        module: a :class:`~rnnkit.Recurrent` layer (``RNN``/``LSTM``/``GRU`` or any cell), a
            :class:`~rnnkit.models.LanguageModel`, :class:`~rnnkit.models.SequenceClassifier`,
            :class:`~rnnkit.models.SequenceRegressor` or :class:`~rnnkit.models.Seq2Seq` (``part=``). Exported in evaluation mode (dropout off, zoneout as
            its expectation); the module's own mode is left as it was.
        path: the ``.onnx`` file to write.
        ops: ``"auto"`` — ONNX's own LSTM/GRU/RNN operators for the cells they compute exactly, a Loop for
            the others; ``"loop"`` — a Loop for every cell.
        check: run ``onnx.checker`` on the result.
        metadata: extra ``key: value`` strings for the model's ``metadata_props``.
        part: for a :class:`~rnnkit.models.Seq2Seq` only: ``"encoder"`` or ``"decoder_step"``.

    Inputs and outputs of the graph (batch ``B`` and time ``T`` dynamic):

    * layer: ``input`` (B, T, I), ``lengths`` (B,) int64, ``h0`` (L*D, B, Y)[, ``c0`` (L*D, B, H)] ->
      ``output`` (B, T, D*Y), ``h_n``[, ``c_n``] (time-major for ``batch_first=False``);
    * language model: ``tokens`` (B, T) int64, ``lengths``, ``h0``[, ``c0``] -> ``logits`` (B, T, V),
      ``h_n``[, ``c_n``];
    * classifier / regressor: ``inputs`` (B, T) int64 or (B, T, I), ``lengths`` -> ``logits`` /
      ``output`` (B, C);
    * Seq2Seq ``encoder``: ``src``, ``src_lengths`` -> what the decoder reads (``memory`` (B, S, E),
      ``mask`` (B, S) bool, ``keys``; none without attention) and its first state (``h``[, ``c``][, ``feed``]);
      ``decoder_step``: ``prev`` (B,) int64 and those -> ``logits`` (B, V), ``h_out``[, ``c_out``][,
      ``feed_out``][, ``attention`` (B, S)]: feed ``*_out`` back as the next step's inputs.

    Example::

        >>> lstm = rnnkit.LSTM(8, 16, num_layers=2, layer_norm=True)
        >>> to_onnx(lstm, "lstm.onnx")
        >>> import onnxruntime as ort, numpy as np
        >>> sess = ort.InferenceSession("lstm.onnx")
        >>> y, h, c = sess.run(None, {"input": x, "lengths": np.full(4, 10), "h0": h0, "c0": c0})
    """
    onnx = _require_onnx()
    if ops not in ONNX_OPS:
        raise RnnkitError(f"unknown ops: expected one of {ONNX_OPS}, got {ops!r}")
    path = Path(path)
    if path.is_dir():
        raise RnnkitError(f"expected a file path for the ONNX model, got the directory {str(path)!r}")
    plan = _plan(module, part)
    for prm in module.parameters():
        _onnx_dtype(prm.dtype)
    was_training = module.training
    module.eval()
    try:
        with ExitStack() as stack, torch.no_grad():
            layers = stack.enter_context(_placeholders(plan.wrapper)) if plan.placeholders else {}
            stack.enter_context(_traceable_cells())
            buf = io.BytesIO()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    plan.wrapper,
                    plan.args,
                    buf,
                    dynamo=False,
                    opset_version=OPSET,
                    input_names=plan.input_names,
                    output_names=plan.output_names,
                    dynamic_axes=plan.dynamic_axes,
                    custom_opsets={_DOMAIN: 1} if layers else None,
                    do_constant_folding=True,
                )
            proto = onnx.load_model_from_string(buf.getvalue())
            _substitute(proto, layers, ops)
    finally:
        module.train(was_training)
    from rnnkit import __version__

    proto.producer_name, proto.producer_version = "rnnkit", __version__
    meta = {"rnnkit.model": type(module).__name__, **(metadata or {})}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = str(key), str(value)
    if check:
        onnx.checker.check_model(proto)
    from rnnkit.files import atomic_write_bytes

    return atomic_write_bytes(path, proto.SerializeToString())  # a failed write: one line naming the file


def export_run(run_dir: str | os.PathLike, out_path: str | os.PathLike, *, ops: str = "auto") -> list[Path]:
    """Export the model of a saved run (``runs/<name>``) to ONNX at ``out_path``; returns the files written.

    The run's application and name, and the files that turn raw data into the graph's inputs
    (``vocab.json``, ``scaler.json``), are stored in the model's ``metadata_props`` (``rnnkit.app``,
    ``rnnkit.vocab.json``, ...). A :class:`~rnnkit.models.Seq2Seq` run gives two files,
    ``<stem>.encoder.onnx`` and ``<stem>.decoder_step.onnx`` next to ``out_path``.
    """
    from rnnkit.apps import APP_NAMES, app_module
    from rnnkit.apps.base import load_run_model
    from rnnkit.apps.rundir import open_run
    from rnnkit.models import Seq2Seq, SequenceClassifier

    run, manifest = open_run(run_dir)
    if manifest.get("app") in APP_NAMES:  # the application's own model classes (sentiment's SentimentNet)
        app_module(manifest["app"])  # are known once its module is imported: a fresh `rnnkit export` had not
    model = load_run_model(run, None)
    count = _ensemble_size(run)
    if count > 1 and isinstance(model, SequenceClassifier):  # the whole ensemble: its mean probabilities
        from rnnkit.apps.rundir import member_dir

        others = [load_run_model(member_dir(run, k), type(model), run.name) for k in range(1, count)]
        model = ClassifierEnsemble([model, *others])
    meta = {"rnnkit.app": str(manifest.get("app")), "rnnkit.run": run.name}
    # what turns raw data into the graph's inputs travels with it: the vocabulary, the series' scaler
    for name in ("vocab.json", "scaler.json"):
        if (run / name).is_file():
            meta[f"rnnkit.{name}"] = (run / name).read_text(encoding="utf-8")
    c = getattr(model, "config", None)
    if getattr(c, "subword_buckets", 0):  # how the 'subwords' input is made from a word (sentiment)
        meta["rnnkit.subwords"] = json.dumps(
            {
                "buckets": c.subword_buckets,
                "ngram_min": c.ngram_min,
                "ngram_max": c.ngram_max,
                "row": "1 + zlib.crc32(ngram.encode('utf-8')) % buckets, n-grams of '<' + word + '>'",
            }
        )
    left_out = left_out_of_export(run, ensemble_in_graph=isinstance(model, ClassifierEnsemble))
    if left_out:  # what the run's own predictions use beside the graph
        meta["rnnkit.left_out"] = json.dumps(left_out)
    out = Path(out_path)
    if not isinstance(model, Seq2Seq):
        return [to_onnx(model, out, ops=ops, metadata=meta)]
    stem = out.name[: -len(".onnx")] if out.name.endswith(".onnx") else out.name
    return [
        to_onnx(model, out.with_name(f"{stem}.{part}.onnx"), ops=ops, metadata=meta, part=part)
        for part in SEQ2SEQ_PARTS
    ]


def _ensemble_size(run: Path) -> int:
    """How many networks a run's ensemble has: the run's own and one per folder of ``members/``."""
    members = run / "members"
    return 1 + (sum(1 for p in members.iterdir() if p.is_dir()) if members.is_dir() else 0)


def left_out_of_export(run_dir: str | os.PathLike, ensemble_in_graph: bool = False) -> list[str]:
    """What a saved run's own predictions (``rnnkit predict``, ``serve``) use that :func:`export_run`'s graph
    leaves out: the other networks of an ensemble (unless ``ensemble_in_graph``: a classifier's ensemble is
    exported whole, :class:`ClassifierEnsemble`), a forecaster's ES smoothing and its hybrid's window MLPs, a pool
    or mixture with another model. Empty for a run the graph holds whole; the list is stored in the graph's
    metadata (``rnnkit.left_out``), which ``rnnkit export`` prints."""
    run = Path(run_dir)

    def read(name: str) -> dict:
        try:
            data = json.loads((run / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    out = []
    n = _ensemble_size(run)
    if n > 1 and not ensemble_in_graph:
        out.append(f"the other {n - 1} networks of its ensemble of {n} (it predicts with all of them)")
    scaler, metrics = read("scaler.json"), read("metrics.json")
    if scaler.get("mode") == "es":
        out.append(
            "the exponential smoothing (level and seasonal indices) its networks read and forecast through"
        )
    if metrics.get("hybrid"):
        out.append("the window MLPs of feedforward/, whose forecasts its hybrid median also takes")
    mixture = metrics.get("mixture")
    if isinstance(mixture, dict):
        partner = mixture.get("with")
        other = {"sentiment": "TF-IDF model", "textgen": "Kneser-Ney n-gram"}.get(read("run.json").get("app"))
        what = (
            f"pool with {str(partner).upper()}"
            if partner
            else f"mixture with the run's {other or 'baseline model'}"
        )
        out.append(f"the {what} that `rnnkit predict` answers with")
    return out
