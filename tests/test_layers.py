"""Layer behaviour: padding invariance, streaming, dropout/zoneout, backends, scan == loop, bad input."""

import pytest
import torch

import rnnkit
from rnnkit import functional as RF
from rnnkit.loop import run_loop, run_scan

D64 = torch.float64


def _layers():
    """Layers covering every cell option; all reference-capable, float64 for tight comparisons."""
    return {
        "lstm": lambda: rnnkit.LSTM(3, 5),
        "lstm-peep-ln-clip": lambda: rnnkit.LSTM(3, 5, peephole=True, layer_norm=True, cell_clip=0.7),
        "lstm-proj-bi": lambda: rnnkit.LSTM(3, 5, proj_size=2, bidirectional=True, num_layers=2),
        "gru": lambda: rnnkit.GRU(3, 5, bidirectional=True),
        "gru-cho-ln": lambda: rnnkit.GRU(3, 5, reset_after=False, layer_norm=True, num_layers=2),
        "gru-ln": lambda: rnnkit.GRU(3, 5, layer_norm=True),
        "rnn-sigmoid": lambda: rnnkit.RNN(3, 5, activation="sigmoid", bidirectional=True),
        "rnn-relu-identity": lambda: rnnkit.RNN(3, 5, activation="relu", recurrent_init="identity"),
        "mingru": lambda: rnnkit.Recurrent(rnnkit.MinGRU(3, 5), bidirectional=True),
        "minlstm": lambda: rnnkit.Recurrent(rnnkit.MinLSTM(3, 5), num_layers=2),
    }


LAYERS = _layers()


@pytest.mark.parametrize("name", LAYERS)
def test_padding_never_changes_valid_outputs_or_gradients(name):
    layer = LAYERS[name]().to(D64)
    lengths = [7, 3, 5]
    seqs = [torch.randn(n, 3, dtype=D64) for n in lengths]
    # each sequence alone, no padding
    alone_out, alone_fin, alone_grad = [], [], []
    for s in seqs:
        xs = s.unsqueeze(0).clone().requires_grad_()
        y, fin = layer(xs)
        (y.sin().sum() + sum(f.sum() for f in (fin if isinstance(fin, tuple) else (fin,)))).backward()
        alone_out.append(y[0].detach())
        alone_fin.append(tuple(f[:, 0] for f in (fin if isinstance(fin, tuple) else (fin,))))
        alone_grad.append(xs.grad[0])
    # batched and padded with garbage (which must not leak)
    x = torch.randn(3, 9, 3, dtype=D64) * 100
    for i, s in enumerate(seqs):
        x[i, : len(s)] = s
    x.requires_grad_()
    y, fin = layer(x, lengths=torch.tensor(lengths))
    fins = fin if isinstance(fin, tuple) else (fin,)
    (y.sin().sum() + sum(f.sum() for f in fins)).backward()
    for i, n in enumerate(lengths):
        torch.testing.assert_close(y[i, :n], alone_out[i])
        assert torch.all(y[i, n:] == 0), "outputs at padded steps must be zero"
        for f, fa in zip(fins, alone_fin[i]):
            torch.testing.assert_close(f[:, i], fa)
        torch.testing.assert_close(x.grad[i, :n], alone_grad[i])
        assert torch.all(x.grad[i, n:] == 0)


@pytest.mark.parametrize(
    "name", [n for n in LAYERS if "bi" not in n and n not in ("gru", "rnn-sigmoid", "mingru")]
)
def test_step_equals_sequence_call(name):
    layer = LAYERS[name]().to(D64).eval()
    x = torch.randn(2, 6, 3, dtype=D64)
    y_seq, fin_seq = layer(x)
    state = None
    ys = []
    for t in range(6):
        y, state = layer.step(x[:, t], state)
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys, 1), y_seq)
    for a, b in zip(
        state if isinstance(state, tuple) else (state,), fin_seq if isinstance(fin_seq, tuple) else (fin_seq,)
    ):
        torch.testing.assert_close(a, b)


def test_carried_state_equals_one_long_call():
    layer = rnnkit.GRU(3, 5, num_layers=2).double()
    x = torch.randn(2, 10, 3, dtype=D64)
    y_all, h_all = layer(x)
    y1, h = layer(x[:, :4])
    y2, h = layer(x[:, 4:], rnnkit.detach_state(h))
    torch.testing.assert_close(torch.cat([y1, y2], 1), y_all)
    torch.testing.assert_close(h, h_all)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-11)])
@pytest.mark.parametrize("cell_cls", [rnnkit.MinGRU, rnnkit.MinLSTM])
@pytest.mark.parametrize("reverse", [False, True])
def test_min_scan_equals_step_loop(cell_cls, reverse, dtype, tol):
    cell = cell_cls(4, 6).to(dtype)
    T, B = 50, 3
    xp = cell.project_input(torch.randn(T, B, 4, dtype=dtype))
    h0 = torch.randn(B, 6, dtype=dtype)  # any sign: h0 is carried outside the logarithm
    mask = (torch.arange(T).unsqueeze(1) < torch.tensor([50, 17, 1]).unsqueeze(0)).unsqueeze(-1)
    xp_a = xp.detach().clone().requires_grad_()
    xp_b = xp.detach().clone().requires_grad_()
    ya, fa = run_scan(cell, xp_a, h0, mask, reverse)
    yb, fb = run_loop(cell, xp_b, h0, mask, reverse)
    torch.testing.assert_close(ya, yb, atol=tol, rtol=tol)
    torch.testing.assert_close(fa, fb, atol=tol, rtol=tol)
    w = torch.randn_like(ya)
    (ya * w).sum().backward()
    (yb * w).sum().backward()
    assert torch.isfinite(xp_a.grad).all()
    torch.testing.assert_close(xp_a.grad, xp_b.grad, atol=tol, rtol=tol)


def test_min_layers_scan_backend_matches_reference():
    layer = rnnkit.Recurrent(rnnkit.MinGRU(3, 4), num_layers=2, bidirectional=True, backend="scan")
    assert layer.backend == "scan"
    x = torch.randn(2, 8, 3)
    y1, h1 = layer(x, lengths=torch.tensor([8, 5]))
    layer.requested_backend = "reference"
    y2, h2 = layer(x, lengths=torch.tensor([8, 5]))
    torch.testing.assert_close(y1, y2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h1, h2, atol=1e-5, rtol=1e-5)


def test_min_lstm_gates_are_normalised():
    k_f, k_i = torch.randn(100) * 10, torch.randn(100) * 10
    log_f, log_i = RF.min_lstm_log_gates(k_f, k_i)
    f, i = torch.sigmoid(k_f.double()), torch.sigmoid(k_i.double())
    torch.testing.assert_close(log_f.exp().double(), f / (f + i), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close((log_f.exp() + log_i.exp()), torch.ones(100))


# -- dropout and zoneout ---------------------------------------------------------------------------------------
def test_eval_mode_is_deterministic_with_dropout_and_zoneout():
    layer = rnnkit.LSTM(3, 6, num_layers=2, dropout=0.3, recurrent_dropout=0.4, zoneout=0.2).eval()
    x = torch.randn(2, 7, 3)
    y1, _ = layer(x)
    y2, _ = layer(x)
    assert torch.equal(y1, y2)
    layer.train()
    y3, _ = layer(x)
    assert not torch.allclose(y1, y3), "train mode must actually drop"


def test_recurrent_dropout_mask_is_constant_over_time():
    # identity RNN: h_t = (h_{t-1} * m) @ I, so a unit survives to step t iff its mask is 1 at every step;
    # with one mask per sequence the set of live units never changes after the first step.
    cell = rnnkit.RNNCell(1, 64, bias=False, activation=lambda v: v)
    with torch.no_grad():
        cell.weight_ih.zero_()
        cell.weight_hh.copy_(torch.eye(64))
    layer = rnnkit.Recurrent(cell, recurrent_dropout=0.5).train()
    h0 = torch.ones(1, 32, 64)
    y, _ = layer(torch.zeros(32, 12, 1), h0)
    alive = y != 0
    assert 0.3 < alive[:, 0].float().mean() < 0.7
    assert torch.equal(alive[:, 0], alive[:, -1])
    torch.testing.assert_close(y[:, -1][alive[:, -1]], torch.full((int(alive[:, -1].sum()),), 2.0**12))


def test_zoneout_training_keeps_or_updates_each_unit():
    layer = rnnkit.RNN(3, 16, zoneout=0.3).double().train()
    cell = layer.cell
    x = torch.randn(8, 20, 3, dtype=D64)
    y, _ = layer(x)
    h_prev = torch.zeros(8, 16, dtype=D64)
    kept = 0
    for t in range(20):
        new, _ = cell.step(cell.project_input(x[:, t]), h_prev)
        is_old = torch.isclose(y[:, t], h_prev)
        is_new = torch.isclose(y[:, t], new)
        assert torch.all(is_old | is_new)
        kept += (is_old & ~is_new).sum().item()
        h_prev = y[:, t]
    assert 0.2 < kept / (8 * 20 * 16) < 0.4


def test_zoneout_eval_uses_the_expectation():
    layer = rnnkit.GRU(3, 4, zoneout=0.25).double().eval()
    x = torch.randn(2, 5, 3, dtype=D64)
    y, _ = layer(x)
    h = torch.zeros(2, 4, dtype=D64)
    for t in range(5):
        new, _ = layer.cell(x[:, t], h)
        h = 0.25 * h + 0.75 * new
        torch.testing.assert_close(y[:, t], h)


# -- backends ----------------------------------------------------------------------------------------------
def test_backend_reports_choice_and_reason():
    from rnnkit import backends

    fused_ok = backends.get("fused").supports(rnnkit.GRU(3, 4), None)[0]
    with torch.no_grad():  # inference of a plain LSTM: torch's oneDNN kernel (measured policy)
        assert rnnkit.LSTM(3, 4).backend == "native"
    ln = rnnkit.LSTM(3, 4, layer_norm=True)
    assert ln.backend == ("fused" if fused_ok else "reference")
    if not fused_ok:
        assert "layer_norm" in ln.backend.reason
    assert ln.backend.reason.startswith("auto: ")
    rd = rnnkit.GRU(3, 4, recurrent_dropout=0.2, backend="native")
    with pytest.raises(rnnkit.RnnkitError, match="recurrent dropout"):
        rd(torch.randn(1, 2, 3))
    rd.eval()
    assert rd.backend == "native"  # recurrent dropout is the identity in eval mode


def test_forcing_an_impossible_backend_is_a_clear_error():
    layer = rnnkit.RNN(3, 4, activation="sigmoid", backend="native")
    with pytest.raises(rnnkit.RnnkitError, match="backend 'native' cannot run this layer: .*sigmoid"):
        layer(torch.randn(1, 2, 3))
    with pytest.raises(rnnkit.RnnkitError, match="unknown backend"):
        rnnkit.LSTM(3, 4, backend="cudnn")


@pytest.mark.parametrize("merge", ["sum", "mean", "mul", "concat"])
def test_merge_modes(merge):
    layer = rnnkit.LSTM(3, 4, bidirectional=True, merge=merge)
    x = torch.randn(2, 5, 3)
    y, _ = layer(x)
    layer.merge = "concat"
    yc, _ = layer(x)
    f, b = yc[..., :4], yc[..., 4:]
    expect = {"sum": f + b, "mean": (f + b) / 2, "mul": f * b, "concat": yc}[merge]
    torch.testing.assert_close(y, expect)


def test_learned_initial_state_receives_gradients():
    layer = rnnkit.LSTM(3, 4, num_layers=2, learn_initial_state=True)
    y, _ = layer(torch.randn(2, 5, 3))
    y.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.initial_state)


def test_time_major_equals_batch_first():
    a = rnnkit.GRU(3, 4, layer_norm=True)
    b = rnnkit.GRU(3, 4, layer_norm=True, batch_first=False)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 6, 3)
    torch.testing.assert_close(a(x)[0], b(x.transpose(0, 1))[0].transpose(0, 1))


# -- initialisation -----------------------------------------------------------------------------------------
def test_initialisers():
    lstm = rnnkit.LSTMCell(3, 8)
    assert torch.all(lstm.bias_ih[8:16] == 1.0) and torch.all(lstm.bias_hh[8:16] == 0.0)
    orth = rnnkit.GRUCell(3, 8, recurrent_init="orthogonal")
    for blk in orth.weight_hh.detach().split(8):
        torch.testing.assert_close(blk @ blk.t(), torch.eye(8), atol=1e-5, rtol=0)
    irnn = rnnkit.RNNCell(3, 8, activation="relu", recurrent_init="identity")
    assert torch.equal(irnn.weight_hh.detach(), torch.eye(8))
    assert torch.all(irnn.bias_hh == 0) and irnn.weight_ih.abs().max() < 0.01
    w = rnnkit.RNNCell(3, 64).weight_hh.detach()
    assert w.abs().max() <= 1 / 64**0.5 and w.abs().max() > 0.9 / 64**0.5  # torch's uniform(+-1/sqrt(H))


# -- bad input ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda l: l(torch.randn(2, 5, 7)), "expected 3, got 7"),
        (lambda l: l(torch.randn(5, 3)), "must be 3-D"),
        (lambda l: l(torch.randint(0, 3, (2, 5, 3))), "floating-point"),
        (lambda l: l(torch.randn(2, 5, 3), torch.zeros(1, 2, 4)), "state must be a pair"),
        (
            lambda l: l(torch.randn(2, 5, 3), (torch.zeros(1, 3, 4), torch.zeros(1, 3, 4))),
            r"expected \(1, 2, 4\)",
        ),
        (lambda l: l(torch.randn(2, 5, 3), lengths=torch.tensor([6, 2])), r"\[0, T=5\]"),
        (lambda l: l(torch.randn(2, 5, 3), lengths=torch.tensor([-1, 2])), r"\[0, T=5\]"),
        (lambda l: l(torch.randn(2, 5, 3), lengths=torch.tensor([3, 2, 1])), "expected 2, got 3"),
        (lambda l: l(torch.randn(2, 5, 3), lengths=torch.tensor([3.0, 2.0])), "integer"),
        (lambda l: l(torch.randn(2, 5, 3).double()), "expected torch.float32"),
        (lambda l: l.step(torch.randn(2, 5)), "input_size=3"),
    ],
)
def test_bad_input_gives_clear_errors(call, match):
    layer = rnnkit.LSTM(3, 4)
    with pytest.raises(rnnkit.RnnkitError, match=match):
        call(layer)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: rnnkit.RNN(3, 4, activation="softsign"), "unknown activation"),
        (lambda: rnnkit.LSTM(3, 4, bidirectional=True, merge="max"), "unknown merge"),
        (lambda: rnnkit.LSTM(3, 4, dropout=1.5), "dropout must be in"),
        (lambda: rnnkit.LSTM(3, 4, proj_size=4), "proj_size"),
        (lambda: rnnkit.GRU(3, 4, peephole=True), "unknown argument 'peephole'"),
        (lambda: rnnkit.Recurrent(rnnkit.MinGRU(3, 4), recurrent_dropout=0.1), "recurrent matmul"),
        (lambda: rnnkit.LSTM(0, 4), "input_size"),
        (lambda: rnnkit.RNNCell(3, 4, recurrent_init="xavier"), "recurrent_init"),
    ],
)
def test_bad_construction_gives_clear_errors(make, match):
    with pytest.raises(rnnkit.RnnkitError, match=match):
        make()


def test_bidirectional_layer_refuses_to_stream():
    with pytest.raises(rnnkit.RnnkitError, match="needs the future"):
        rnnkit.GRU(3, 4, bidirectional=True).step(torch.randn(1, 3))
