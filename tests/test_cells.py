"""Cells: gradcheck for every option, and the extended cells against equations written out independently."""

import pytest
import torch
from torch.func import functional_call

import rnnkit

D64 = torch.float64

CELL_OPTIONS = {
    "rnn-tanh": lambda: rnnkit.RNNCell(2, 3),
    "rnn-relu": lambda: rnnkit.RNNCell(2, 3, activation="relu"),
    "rnn-sigmoid": lambda: rnnkit.RNNCell(2, 3, activation="sigmoid"),
    "rnn-nobias": lambda: rnnkit.RNNCell(2, 3, bias=False),
    "lstm": lambda: rnnkit.LSTMCell(2, 3),
    "lstm-peephole": lambda: rnnkit.LSTMCell(2, 3, peephole=True),
    "lstm-ln": lambda: rnnkit.LSTMCell(2, 3, layer_norm=True),
    "lstm-proj": lambda: rnnkit.LSTMCell(2, 3, proj_size=2),
    "lstm-clip": lambda: rnnkit.LSTMCell(2, 3, cell_clip=0.3),
    "lstm-all": lambda: rnnkit.LSTMCell(2, 4, peephole=True, layer_norm=True, proj_size=2, cell_clip=2.0),
    "gru": lambda: rnnkit.GRUCell(2, 3),
    "gru-cho": lambda: rnnkit.GRUCell(2, 3, reset_after=False),
    "gru-ln": lambda: rnnkit.GRUCell(2, 3, layer_norm=True),
    "gru-cho-ln": lambda: rnnkit.GRUCell(2, 3, reset_after=False, layer_norm=True),
    "mingru": lambda: rnnkit.MinGRU(2, 3),
    "minlstm": lambda: rnnkit.MinLSTM(2, 3),
}


@pytest.mark.parametrize(
    "layer_kw", [{}, {"bidirectional": True}, {"zoneout": 0.3}, {"recurrent_dropout": 0.3}]
)
@pytest.mark.parametrize("name", CELL_OPTIONS)
def test_gradcheck_every_cell_option(name, layer_kw):
    cell = CELL_OPTIONS[name]()
    if "recurrent_dropout" in layer_kw and not cell.has_recurrence_matmul:
        pytest.skip("no recurrent matmul")
    layer = rnnkit.Recurrent(cell, backend="reference", **layer_kw).to(D64).train()
    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for _, p in layer.named_parameters()]
    x = torch.randn(2, 4, 2, dtype=D64, requires_grad=True)
    lengths = torch.tensor([4, 2])

    def f(x, *ps):
        torch.manual_seed(7)  # the same dropout / zoneout masks on every evaluation
        y, fin = functional_call(layer, dict(zip(names, ps)), (x,), {"lengths": lengths})
        fins = fin if isinstance(fin, tuple) else (fin,)
        return (y, *fins)

    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-5, fast_mode=True)


def _split(w, n):
    return w.detach().chunk(n, 0)


def test_sigmoid_rnn_matches_textbook_equation():
    cell = rnnkit.RNNCell(3, 4, activation="sigmoid").double()
    x, h = torch.randn(2, 3, dtype=D64), torch.randn(2, 4, dtype=D64)
    expect = 1 / (1 + torch.exp(-(x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh)))
    torch.testing.assert_close(cell(x, h)[0], expect.detach())


def _ln(v, g, b):
    mu = v.mean(-1, keepdim=True)
    var = ((v - mu) ** 2).mean(-1, keepdim=True)
    return (v - mu) / torch.sqrt(var + 1e-5) * g + b


def test_peephole_layernorm_lstm_matches_written_out_equations():
    cell = rnnkit.LSTMCell(3, 4, peephole=True, layer_norm=True, cell_clip=0.9).double()
    with torch.no_grad():  # make every parameter matter
        for p in cell.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    x, h, c = torch.randn(2, 3, dtype=D64), torch.randn(2, 4, dtype=D64), torch.randn(2, 4, dtype=D64)
    P = {n: p.detach() for n, p in cell.named_parameters()}
    a = _ln(x @ P["weight_ih"].T, P["ln_ih_weight"], P["ln_ih_bias"]) + P["bias_ih"]
    a = a + _ln(h @ P["weight_hh"].T, P["ln_hh_weight"], P["ln_hh_bias"]) + P["bias_hh"]
    ai, af, ag, ao = a[:, :4], a[:, 4:8], a[:, 8:12], a[:, 12:]
    i = torch.sigmoid(ai + P["weight_ci"] * c)
    f = torch.sigmoid(af + P["weight_cf"] * c)
    c_new = torch.clamp(f * c + i * torch.tanh(ag), -0.9, 0.9)
    o = torch.sigmoid(ao + P["weight_co"] * c_new)
    h_new = o * torch.tanh(_ln(c_new, P["ln_c_weight"], P["ln_c_bias"]))
    y, (h1, c1) = cell(x, (h, c))
    torch.testing.assert_close(c1, c_new)
    torch.testing.assert_close(h1, h_new)


def test_cho_gru_matches_written_out_equations():
    cell = rnnkit.GRUCell(3, 4, reset_after=False).double()
    x, h = torch.randn(2, 3, dtype=D64), torch.randn(2, 4, dtype=D64)
    Wr, Wz, Wn = _split(cell.weight_ih, 3)
    Ur, Uz, Un = _split(cell.weight_hh, 3)
    br, bz, bn = _split(cell.bias_ih, 3)
    cr, cz, cn = _split(cell.bias_hh, 3)
    r = torch.sigmoid(x @ Wr.T + br + h @ Ur.T + cr)
    z = torch.sigmoid(x @ Wz.T + bz + h @ Uz.T + cz)
    n = torch.tanh(x @ Wn.T + bn + (r * h) @ Un.T + cn)
    torch.testing.assert_close(cell(x, h)[0], (1 - z) * n + z * h)
    # and it differs from the reset_after form with the same weights
    after = rnnkit.GRUCell(3, 4).double()
    after.load_state_dict(cell.state_dict())
    assert not torch.allclose(after(x, h)[0], cell(x, h)[0])


def test_min_gru_and_min_lstm_match_the_paper():
    g = rnnkit.MinGRU(3, 4).double()
    x, h = torch.randn(2, 3, dtype=D64), torch.rand(2, 4, dtype=D64)
    Wz, Wh = _split(g.weight_ih, 2)
    bz, bh = _split(g.bias_ih, 2)
    kh = x @ Wh.T + bh
    htilde = torch.where(kh >= 0, kh + 0.5, torch.sigmoid(kh))
    z = torch.sigmoid(x @ Wz.T + bz)
    torch.testing.assert_close(g(x, h)[0], (1 - z) * h + z * htilde)
    m = rnnkit.MinLSTM(3, 4).double()
    Wf, Wi, Wh = _split(m.weight_ih, 3)
    bf, bi, bh = _split(m.bias_ih, 3)
    f, i = torch.sigmoid(x @ Wf.T + bf), torch.sigmoid(x @ Wi.T + bi)
    kh = x @ Wh.T + bh
    htilde = torch.where(kh >= 0, kh + 0.5, torch.sigmoid(kh))
    torch.testing.assert_close(m(x, h)[0], f / (f + i) * h + i / (f + i) * htilde)


def test_cell_bad_input():
    cell = rnnkit.LSTMCell(3, 4)
    with pytest.raises(rnnkit.RnnkitError, match="expected 3, got 5"):
        cell(torch.randn(2, 5))
    with pytest.raises(rnnkit.RnnkitError, match=r"expected \(2, 4\), got \(2, 5\)"):
        cell(torch.randn(2, 3), (torch.zeros(2, 5), torch.zeros(2, 4)))
    with pytest.raises(rnnkit.RnnkitError, match="2 tensor"):
        cell(torch.randn(2, 3), torch.zeros(2, 4))
