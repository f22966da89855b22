"""rnnkit layers and cells against torch.nn with copied weights: outputs, final states and every gradient.

Tolerances: float32 compares at atol=2e-5, rtol=1e-4 (accumulated rounding over <= 3 layers x 12 steps);
float64 at atol=1e-10, rtol=1e-8.
"""

import random

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

TOL = {torch.float32: dict(atol=2e-5, rtol=1e-4), torch.float64: dict(atol=1e-10, rtol=1e-8)}


def _configs(n=24, seed=1234):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"][i % 4]
        cfg = dict(
            kind=kind,
            input_size=rng.choice([1, 3, 7]),
            hidden_size=rng.choice([4, 9]),
            num_layers=rng.choice([1, 2, 3]),
            bidirectional=rng.random() < 0.5,
            batch_first=rng.random() < 0.5,
            bias=rng.random() < 0.8,
            proj_size=rng.choice([0, 0, 2, 3]) if kind == "LSTM" else 0,
            lengths=rng.random() < 0.5,
            with_state=rng.random() < 0.5,
            dtype=rng.choice([torch.float32, torch.float64]),
        )
        out.append(cfg)
    return out


def _torch_module(cfg):
    args = dict(
        num_layers=cfg["num_layers"],
        bias=cfg["bias"],
        batch_first=cfg["batch_first"],
        bidirectional=cfg["bidirectional"],
    )
    if cfg["kind"] == "LSTM":
        return nn.LSTM(cfg["input_size"], cfg["hidden_size"], proj_size=cfg["proj_size"], **args)
    if cfg["kind"] == "GRU":
        return nn.GRU(cfg["input_size"], cfg["hidden_size"], **args)
    nonlin = cfg["kind"][4:].lower()
    return nn.RNN(cfg["input_size"], cfg["hidden_size"], nonlinearity=nonlin, **args)


def _grads(module, inputs):
    ps = [p for _, p in sorted(module.named_parameters(), key=lambda kv: kv[0])]
    return [t.grad.clone() for t in inputs] + [p.grad.clone() for p in ps]


def _torch_param_grads(tmod, layer):
    """torch's parameter grads, in the order of rnnkit's sorted named_parameters."""
    D = layer.num_directions
    out = {}
    for k, cell in enumerate(layer.cells):
        suffix = f"_l{k // D}" + ("_reverse" if k % D else "")
        for name, _ in cell.named_parameters():
            out[f"cells.{k}.{name}"] = getattr(tmod, name + suffix).grad
    return [out[n] for n, _ in sorted(layer.named_parameters(), key=lambda kv: kv[0])]


@pytest.mark.parametrize("backend", ["reference", "native"])
@pytest.mark.parametrize("cfg", _configs(), ids=lambda c: f"{c['kind']}-L{c['num_layers']}")
def test_layer_matches_torch(cfg, backend):
    dtype = cfg["dtype"]
    tmod = _torch_module(cfg).to(dtype)
    layer = rnnkit.from_torch(tmod, backend=backend)
    B, T = 4, 12
    shape = (B, T, cfg["input_size"]) if cfg["batch_first"] else (T, B, cfg["input_size"])
    x = torch.randn(shape, dtype=dtype)
    lengths = torch.tensor([12, 5, 9, 1]) if cfg["lengths"] else None
    D, L = layer.num_directions, cfg["num_layers"]
    out_size = cfg["proj_size"] or cfg["hidden_size"]
    state = None
    if cfg["with_state"]:
        h0 = torch.randn(L * D, B, out_size, dtype=dtype)
        state = (h0, torch.randn(L * D, B, cfg["hidden_size"], dtype=dtype)) if cfg["kind"] == "LSTM" else h0

    def run_ours():
        xs = x.clone().requires_grad_()
        st = None
        if state is not None:
            st = (
                tuple(s.clone().requires_grad_() for s in state)
                if isinstance(state, tuple)
                else (state.clone().requires_grad_())
            )
        y, fin = layer(xs, st, lengths=lengths)
        return xs, st, y, fin

    def run_torch():
        xs = x.clone().requires_grad_()
        st = None
        if state is not None:
            st = (
                tuple(s.clone().requires_grad_() for s in state)
                if isinstance(state, tuple)
                else (state.clone().requires_grad_())
            )
        inp = xs
        if lengths is not None:
            inp = pack_padded_sequence(xs, lengths, batch_first=cfg["batch_first"], enforce_sorted=False)
        y, fin = tmod(inp, st)
        if lengths is not None:
            y, _ = pad_packed_sequence(y, batch_first=cfg["batch_first"], total_length=T)
        return xs, st, y, fin

    xa, sa, ya, fa = run_ours()
    xb, sb, yb, fb = run_torch()
    tol = TOL[dtype]
    torch.testing.assert_close(ya, yb, **tol)
    fa_t = fa if isinstance(fa, tuple) else (fa,)
    fb_t = fb if isinstance(fb, tuple) else (fb,)
    for a, b in zip(fa_t, fb_t):
        torch.testing.assert_close(a, b, **tol)

    # one scalar loss touching outputs and every final-state tensor
    w = torch.randn_like(ya)
    ws = [torch.randn_like(t) for t in fa_t]
    loss_a = (ya * w).sum() + sum((t * v).sum() for t, v in zip(fa_t, ws))
    loss_b = (yb * w).sum() + sum((t * v).sum() for t, v in zip(fb_t, ws))
    loss_a.backward()
    loss_b.backward()
    torch.testing.assert_close(xa.grad, xb.grad, **tol)
    if state is not None:
        sa_t = sa if isinstance(sa, tuple) else (sa,)
        sb_t = sb if isinstance(sb, tuple) else (sb,)
        for a, b in zip(sa_t, sb_t):
            torch.testing.assert_close(a.grad, b.grad, **tol)
    ours = [p.grad for _, p in sorted(layer.named_parameters(), key=lambda kv: kv[0])]
    for a, b in zip(ours, _torch_param_grads(tmod, layer), strict=True):
        torch.testing.assert_close(a, b, **tol)


@pytest.mark.parametrize(
    "tcell",
    [
        lambda: nn.LSTMCell(5, 7),
        lambda: nn.GRUCell(5, 7),
        lambda: nn.RNNCell(5, 7),
        lambda: nn.RNNCell(5, 7, nonlinearity="relu"),
        lambda: nn.GRUCell(5, 7, bias=False),
    ],
)
def test_cell_matches_torch(tcell):
    tc = tcell().double()
    cell = rnnkit.from_torch(tc)
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    h = torch.randn(3, 7, dtype=torch.float64)
    if isinstance(tc, nn.LSTMCell):
        c = torch.randn(3, 7, dtype=torch.float64)
        y, (h1, c1) = cell(x, (h, c))
        th, tcc = tc(x, (h, c))
        torch.testing.assert_close(c1, tcc)
        torch.testing.assert_close(h1, th)
        loss_a, loss_b = (y * 1.5).sum() + c1.sum(), (th * 1.5).sum() + tcc.sum()
    else:
        y, h1 = cell(x, h)
        th = tc(x, h)
        torch.testing.assert_close(y, th)
        loss_a, loss_b = y.pow(2).sum(), th.pow(2).sum()
    (ga,) = torch.autograd.grad(loss_a, x)
    (gb,) = torch.autograd.grad(loss_b, x)
    torch.testing.assert_close(ga, gb)
    back = rnnkit.to_torch(cell)
    for name, p in tc.named_parameters():
        torch.testing.assert_close(getattr(back, name), p, atol=0, rtol=0)


def test_to_torch_round_trip_is_exact():
    layer = rnnkit.LSTM(3, 6, num_layers=2, bidirectional=True, proj_size=4)
    t = layer.to_torch()
    back = rnnkit.from_torch(t)
    for (n1, p1), (n2, p2) in zip(layer.named_parameters(), back.named_parameters(), strict=True):
        assert n1 == n2
        assert torch.equal(p1, p2)
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(layer(x)[0], t(x)[0], atol=1e-6, rtol=1e-5)


def test_packed_sequence_input_gives_packed_output():
    tmod = nn.GRU(3, 5, batch_first=True, bidirectional=True)
    layer = rnnkit.from_torch(tmod)
    x = torch.randn(3, 6, 3)
    lengths = torch.tensor([2, 6, 4])
    pk = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    ya, ha = layer(pk)
    yb, hb = tmod(pk)
    assert isinstance(ya, torch.nn.utils.rnn.PackedSequence)
    pa, la = pad_packed_sequence(ya, batch_first=True)
    pb, lb = pad_packed_sequence(yb, batch_first=True)
    torch.testing.assert_close(pa, pb, atol=1e-6, rtol=1e-5)
    assert torch.equal(la, lb)
    torch.testing.assert_close(ha, hb, atol=1e-6, rtol=1e-5)
