"""The fused engine (rnnkit.fused) against its slow twin, the reference loop, and against torch.nn.

Runner-level checks call :func:`rnnkit.fused.run_fused` and :func:`rnnkit.loop.run_loop` with the same
masks (padding, recurrent dropout, zoneout) in float64, where the two must agree to rounding; layer-level
checks go through ``Recurrent`` (and the engine's own input projection) in float32 with the masks drawn
from the same seed. ``gradcheck`` runs through the hand-written backward in float64.
"""

from __future__ import annotations

import copy
import logging
import math
import types

import pytest
import torch
from torch import nn

import rnnkit
from rnnkit import backends, fused
from rnnkit.loop import run_loop

pytestmark = pytest.mark.usefixtures("fused_engine")  # skips the module where no compiler is found


def _accumulation_terms(T, B, input_size, hidden, layers=1, directions=1):
    """How many rounded products feed one output or gradient entry, at most.

    A weight's gradient sums over all ``T * B`` (step, row) pairs; each summand comes from backpropagation
    through dot products of length ``input + hidden`` (a deeper layer's input is ``directions * hidden``
    wide), repeated once per layer. Outputs and state are shorter sums of the same kind.
    """
    width = max(input_size, directions * hidden) + hidden
    return T * B * width * layers


def assert_close_up_to_rounding(got, want, n_terms):
    """``got`` and ``want`` compute the same function in the same dtype, summing in different orders.

    Rounding in a sum of ``n`` terms grows like ``sqrt(n) * eps`` times the magnitude of the terms in the
    typical (probabilistic) analysis (Higham and Mary, SIAM J. Sci. Comput. 2019); two implementations
    each make that error, and layer norm over few features and the gates' derivatives amplify it a few
    times. So the bound is normwise: ``|got - want| <= 8 * eps * sqrt(n) * max(1, max|want|)``, the same
    on every CPU build (AVX-512, AVX2 or the generic one), with the factor 8 about 4x above the worst case
    measured on any of the three.
    """
    eps = torch.finfo(want.dtype).eps
    atol = 8 * eps * math.sqrt(n_terms) * max(1.0, want.detach().abs().max().item())
    torch.testing.assert_close(got, want, rtol=0, atol=atol)


def _cell_factories():
    lstm = rnnkit.LSTMCell
    gru = rnnkit.GRUCell
    rnn = rnnkit.RNNCell
    return {
        "lstm": lambda: lstm(4, 6),
        "lstm-nobias": lambda: lstm(4, 6, bias=False),
        "lstm-peephole": lambda: lstm(4, 6, peephole=True),
        "lstm-ln": lambda: lstm(4, 6, layer_norm=True),
        "lstm-proj": lambda: lstm(4, 6, proj_size=3),
        "lstm-clip": lambda: lstm(4, 6, cell_clip=0.4),
        "lstm-all": lambda: lstm(4, 6, peephole=True, layer_norm=True, proj_size=3, cell_clip=0.4),
        "gru": lambda: gru(4, 6),
        "gru-nobias": lambda: gru(4, 6, bias=False),
        "gru-ln": lambda: gru(4, 6, layer_norm=True),
        "gru-before": lambda: gru(4, 6, reset_after=False),
        "gru-before-ln": lambda: gru(4, 6, reset_after=False, layer_norm=True),
        "rnn-tanh": lambda: rnn(4, 6),
        "rnn-relu": lambda: rnn(4, 6, activation="relu"),
        "rnn-sigmoid": lambda: rnn(4, 6, activation="sigmoid", bias=False),
        "mingru": lambda: rnnkit.MinGRU(4, 6),
        "minlstm": lambda: rnnkit.MinLSTM(4, 6),
    }


CELLS = _cell_factories()
OPTIONS = {
    "plain": {},
    "lengths": {"lengths": True},
    "reverse-lengths": {"lengths": True, "reverse": True},
    "recdrop-zoneout": {"rec_mask": True, "zoneout": "train", "lengths": True},
    "zoneout-eval-reverse": {"zoneout": "eval", "reverse": True, "lengths": True},
}


def _masks(cell, T, B, dtype, lengths=False, rec_mask=False, zoneout=None, gen=None):
    mask = None
    if lengths:
        lens = torch.tensor([T, 2, T - 1, 1][:B])
        mask = (torch.arange(T).unsqueeze(1) < lens.unsqueeze(0)).unsqueeze(-1)  # (T, B, 1)
    rm = None
    if rec_mask and cell.has_recurrence_matmul:
        rm = (torch.rand(B, cell.state_sizes()[0], generator=gen) > 0.3).to(dtype) / 0.7
    zo = None
    if zoneout == "train":
        zo = [(torch.rand(T, B, n, generator=gen) < 0.3).to(dtype) for n in cell.state_sizes()]
    elif zoneout == "eval":
        zo = [0.3] * len(cell.state_sizes())
    return mask, rm, zo


def _run(runner, cell, x, state, masks, reverse):
    """Outputs, final state and the gradients of a fixed loss w.r.t. parameters, x and the initial state."""
    cell.zero_grad()
    mask, rm, zo = masks
    xp = cell.project_input(x)
    y, final = runner(cell, xp, state if cell.paired_state else state[0], mask, reverse, rm, zo)
    finals = final if isinstance(final, tuple) else (final,)
    weights = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)
    loss = (y * weights).sum() + sum((f * f).sum() for f in finals)
    grads = torch.autograd.grad(loss, [*cell.parameters(), x, *state])
    return [y, *finals, *grads]


@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("name", list(CELLS))
def test_runner_matches_reference_float64(name, option):
    opts = dict(OPTIONS[option])
    reverse = opts.pop("reverse", False)
    torch.manual_seed(1)
    cell = CELLS[name]().double()
    T, B = 5, 4
    gen = torch.Generator().manual_seed(2)
    masks = _masks(cell, T, B, torch.float64, gen=gen, **opts)
    x = torch.randn(T, B, cell.input_size, dtype=torch.float64, requires_grad=True)
    state = tuple(torch.randn(B, n, dtype=torch.float64, requires_grad=True) for n in cell.state_sizes())
    ref = _run(run_loop, cell, x, state, masks, reverse)
    got = _run(fused.run_fused, cell, x, state, masks, reverse)
    assert len(ref) == len(got)
    n = _accumulation_terms(T, B, cell.input_size, cell.hidden_size)
    for a, b in zip(got, ref):
        assert_close_up_to_rounding(a, b, n)


@pytest.mark.parametrize("name", ["lstm-all", "gru-ln", "gru-before-ln", "rnn-sigmoid", "mingru", "minlstm"])
def test_inference_path_matches_training_path(name):
    """Without autograd the kernels save nothing; the numbers must not change."""
    cell = CELLS[name]()
    x = torch.randn(7, 3, 4)
    masks = _masks(cell, 7, 3, torch.float32, lengths=True, rec_mask=True, zoneout="train")
    state = cell.zeros_state(3)
    y1, s1 = fused.run_fused(cell, cell.project_input(x), state, masks[0], True, *masks[1:])
    with torch.no_grad():
        y2, s2 = fused.run_fused(cell, cell.project_input(x), state, masks[0], True, *masks[1:])
    torch.testing.assert_close(y1.detach(), y2, rtol=0, atol=0)
    for a, b in zip(s1 if isinstance(s1, tuple) else (s1,), s2 if isinstance(s2, tuple) else (s2,)):
        torch.testing.assert_close(a.detach(), b, rtol=0, atol=0)


@pytest.mark.parametrize(
    "name",
    ["lstm-all", "lstm-proj", "gru-ln", "gru-before-ln", "rnn-sigmoid", "rnn-relu", "mingru", "minlstm"],
)
def test_gradcheck_float64(name):
    torch.manual_seed(3)
    cell = CELLS[name]().double()
    T, B = 4, 2
    masks = _masks(cell, T, B, torch.float64, lengths=True, rec_mask=True, zoneout="train")
    params = [
        p for p in cell.parameters() if p is not cell.weight_ih and p is not getattr(cell, "bias_ih", None)
    ]
    xp = torch.randn(T, B, cell.gates * cell.hidden_size, dtype=torch.float64, requires_grad=True)
    state = [torch.randn(B, n, dtype=torch.float64, requires_grad=True) for n in cell.state_sizes()]
    names = [n for n, p in cell.named_parameters() if any(p is q for q in params)]

    def f(xp_, *rest):
        st = rest[: len(state)]
        ps = rest[len(state) :]
        with torch.no_grad():
            for n, p in zip(names, ps):
                getattr(cell, n).data = p.data
        # route the parameters through the function so gradcheck perturbs them
        originals = {n: getattr(cell, n) for n in names}
        try:
            for n, p in zip(names, ps):
                delattr(cell, n)
                setattr(cell, n, p)
            y, fin = fused.run_fused(
                cell, xp_, tuple(st) if cell.paired_state else st[0], masks[0], False, *masks[1:]
            )
        finally:
            for n in names:
                delattr(cell, n)
                cell.register_parameter(n, originals[n])
        fin = fin if isinstance(fin, tuple) else (fin,)
        return (y, *fin)

    inputs = (xp, *state, *[p.detach().clone().requires_grad_() for p in params])
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_double_backward_is_refused():
    cell = rnnkit.LSTMCell(3, 4, layer_norm=True).double()
    xp = torch.randn(5, 2, 16, dtype=torch.float64, requires_grad=True)
    y, _ = fused.run_fused(cell, xp, cell.zeros_state(2))
    (g,) = torch.autograd.grad(y.pow(2).sum(), xp, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice|once_differentiable"):
        g.sum().backward()


# -- layers: lengths, bidirectional, multi-layer, dropout masks -----------------------------------------------
LAYERS = {
    "lstm-ln-peep-bi-2l": lambda: rnnkit.LSTM(
        5,
        8,
        num_layers=2,
        bidirectional=True,
        layer_norm=True,
        peephole=True,
        recurrent_dropout=0.3,
        zoneout=0.2,
        dropout=0.1,
    ),
    "lstm-proj-clip-bi-2l": lambda: rnnkit.LSTM(
        5, 8, proj_size=3, num_layers=2, bidirectional=True, cell_clip=0.5
    ),
    "gru-before-ln-bi-2l": lambda: rnnkit.GRU(
        5,
        8,
        num_layers=2,
        bidirectional=True,
        reset_after=False,
        layer_norm=True,
        recurrent_dropout=0.2,
        zoneout=0.1,
    ),
    "gru-nobias-bi-learned-h0": lambda: rnnkit.GRU(
        5, 8, bidirectional=True, bias=False, merge="sum", learn_initial_state=True
    ),
    "rnn-relu-3l-zoneout": lambda: rnnkit.RNN(5, 8, num_layers=3, activation="relu", zoneout=0.3),
    "mingru-bi-2l": lambda: rnnkit.Recurrent(rnnkit.MinGRU(5, 8), bidirectional=True, num_layers=2),
    "minlstm-zoneout": lambda: rnnkit.Recurrent(rnnkit.MinLSTM(5, 8), zoneout=0.2),
}


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_fused_matches_reference(name, train):
    torch.manual_seed(0)
    ref = LAYERS[name]()
    ref.requested_backend = "reference"
    fus = copy.deepcopy(ref)
    fus.requested_backend = "fused"
    assert fus.backend == "fused"
    x = torch.randn(4, 7, 5, requires_grad=True)
    lengths = torch.tensor([7, 3, 5, 1])
    out = []
    for m in (ref, fus):
        m.train(train)
        torch.manual_seed(5)  # the same dropout and zoneout masks for both
        y, s = m(x, lengths=lengths)
        s = s if isinstance(s, tuple) else (s,)
        loss = (y * torch.cos(torch.arange(y.numel(), dtype=y.dtype)).view_as(y)).sum() + sum(
            (t**2).sum() for t in s
        )
        out.append([y, *s, *torch.autograd.grad(loss, [x, *m.parameters()])])
    n = _accumulation_terms(7, 4, 5, 8, ref.num_layers, ref.num_directions)
    for a, b in zip(out[1], out[0]):
        assert_close_up_to_rounding(a, b, n)


@pytest.mark.parametrize(
    "make",
    [
        lambda: rnnkit.LSTM(16, 128, layer_norm=True, peephole=True, recurrent_dropout=0.2),
        lambda: rnnkit.GRU(16, 128, reset_after=False, layer_norm=True),
        lambda: rnnkit.RNN(16, 256, activation="sigmoid"),
    ],
)
def test_multithreaded_paths_match_reference(make):
    """Sizes large enough for the kernels' parallel paths (rows, GEMM tiles, per-thread sums)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(0)
        ref = make()
        ref.requested_backend = "reference"
        fus = copy.deepcopy(ref)
        fus.requested_backend = "fused"
        x = torch.randn(64, 3, 16)
        out = []
        for m in (ref, fus):
            torch.manual_seed(1)
            y, _ = m(x)
            out.append([y, *torch.autograd.grad(y.square().sum(), list(m.parameters()))])
        n = _accumulation_terms(64, 3, 16, ref.hidden_size)
        for a, b in zip(out[1], out[0]):
            assert_close_up_to_rounding(a, b, n)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"])
def test_fused_matches_torch_nn(kind):
    torch.manual_seed(4)
    if kind == "LSTM":
        ref = nn.LSTM(6, 10, num_layers=2, bidirectional=True, batch_first=True)
    elif kind == "GRU":
        ref = nn.GRU(6, 10, num_layers=2, bidirectional=True, batch_first=True)
    else:
        ref = nn.RNN(6, 10, num_layers=2, nonlinearity=kind[4:].lower(), batch_first=True)
    ours = rnnkit.from_torch(ref)
    ours.requested_backend = "fused"
    x = torch.randn(3, 9, 6, requires_grad=True)
    y_ref, s_ref = ref(x)
    y, s = ours(x)
    terms = _accumulation_terms(9, 3, 6, 10, 2, 2 if ref.bidirectional else 1)
    assert_close_up_to_rounding(y, y_ref, terms)
    s, s_ref = (s, s_ref) if isinstance(s, tuple) else ((s,), (s_ref,))
    for a, b in zip(s, s_ref):
        assert_close_up_to_rounding(a, b, terms)
    g_ref = torch.autograd.grad(y_ref.pow(2).sum(), [x, *ref.parameters()])
    g = torch.autograd.grad(y.pow(2).sum(), [x, *ours.parameters()])
    # same parameter order: rnnkit.from_torch keeps torch's names layer by layer
    names_ref = [n for n, _ in ref.named_parameters()]
    by_name = dict(zip([n for n, _ in ours.named_parameters()], g[1:]))
    assert_close_up_to_rounding(g[0], g_ref[0], terms)
    ours_params = dict(ours.named_parameters())
    for n, gr in zip(names_ref, g_ref[1:]):
        layer, direction = int(n.split("_l")[1][0]), 1 if n.endswith("_reverse") else 0
        k = layer * (2 if ref.bidirectional else 1) + direction
        pname = n.split("_l")[0]
        key = (
            f"cells.{k}.{pname}"
            if k
            else next(q for q in (f"cells.0.{pname}", f"cell.{pname}") if q in ours_params)
        )
        assert_close_up_to_rounding(by_name[key], gr, terms)


# -- dispatch --------------------------------------------------------------------------------------------------
def test_dispatch_reports_backend_and_policy():
    assert rnnkit.LSTM(3, 4, layer_norm=True).backend == "fused"
    assert rnnkit.LSTM(3, 4, peephole=True, recurrent_dropout=0.2).backend == "fused"
    assert rnnkit.GRU(3, 4).backend == "fused"  # measured faster than torch's GRU on CPU
    assert rnnkit.RNN(3, 4).backend == "fused"
    assert rnnkit.Recurrent(rnnkit.MinGRU(3, 4)).backend == "fused"
    assert rnnkit.LSTM(3, 4).backend == "fused"  # trains faster than torch's oneDNN LSTM
    with torch.no_grad():  # ... which is the faster one for inference
        assert rnnkit.LSTM(3, 4).backend == "native"
        assert rnnkit.GRU(3, 4).backend == "fused"
    choice = rnnkit.LSTM(3, 4, layer_norm=True).backend
    assert "fused" in choice.reason and "layer_norm" in choice.reason
    assert rnnkit.LSTM(3, 4, backend="reference").backend == "reference"


def test_forcing_fused_on_unsupported_config_is_a_clear_error():
    layer = rnnkit.RNN(3, 4, activation=torch.tanh, backend="fused")
    with pytest.raises(rnnkit.RnnkitError, match="backend 'fused' cannot run this layer.*callable"):
        layer(torch.randn(2, 5, 3))
    half = rnnkit.GRU(3, 4, backend="fused").to(torch.bfloat16)
    with pytest.raises(rnnkit.RnnkitError, match="float32 or float64"):
        half(torch.randn(2, 5, 3, dtype=torch.bfloat16))


@pytest.mark.parametrize(
    "make, expected",
    [(lambda: rnnkit.GRU(3, 4), "native"), (lambda: rnnkit.LSTM(3, 4, layer_norm=True), "reference")],
)
def test_non_cpu_tensors_dispatch_to_native_or_reference(make, expected):
    """A CUDA input must never reach the CPU engine: faked by an input that reports a CUDA device."""
    layer = make()
    fake_cuda_input = types.SimpleNamespace(device=torch.device("cuda", 0), dtype=torch.float32)
    name, reason = backends.resolve(layer, "auto", fake_cuda_input)
    assert name == expected
    assert backends.auto_order(layer, fake_cuda_input)[0] == "native"
    if expected == "reference":
        assert "not fused: the fused engine runs on CPU" in reason
    with pytest.raises(rnnkit.RnnkitError, match="runs on CPU"):
        backends.resolve(layer, "fused", fake_cuda_input)


def test_unavailable_engine_falls_back_with_its_reason(monkeypatch, caplog):
    from rnnkit.fused import _build

    monkeypatch.setattr(_build, "_STATE", None)
    monkeypatch.setattr(
        _build, "_build", lambda: (False, "no C++ compiler found (looked for 'c++'; set CXX)")
    )
    with caplog.at_level(logging.WARNING, logger="rnnkit.fused"):
        layer = rnnkit.LSTM(3, 4, layer_norm=True)
        choice = layer.backend
        layer.backend  # noqa: B018 - a second look must not log again
    assert choice == "reference"
    assert "no C++ compiler found" in choice.reason
    assert len([r for r in caplog.records if r.name == "rnnkit.fused"]) == 1
    with pytest.raises(rnnkit.RnnkitError, match="no C\\+\\+ compiler"):
        rnnkit.GRU(3, 4, backend="fused")(torch.randn(1, 2, 3))


def test_the_engine_is_built_for_the_cpu_capability_torch_selected(fused_engine):
    """Under ``ATEN_CPU_CAPABILITY=avx2`` or ``default`` (the Makefile runs this file under each), the
    engine in use must be that build, not the machine's native one."""
    tag = {"AVX512": "avx512", "AVX2": "avx2"}.get(torch.backends.cpu.get_cpu_capability(), "generic")
    assert f"({tag} build;" in fused_engine
    assert fused.cache_dir().name.startswith(f"{tag}-")


def test_build_refuses_when_turned_off(monkeypatch):
    from rnnkit.fused import _build

    monkeypatch.setenv("RNNKIT_NO_FUSED", "1")
    ok, reason = _build._build()
    assert not ok and "RNNKIT_NO_FUSED" in reason


def _saved_bytes(fn):
    """Bytes of tensor storage autograd holds for backward after ``fn()``, counted by its saved-tensor hooks
    (each storage once, however many saved views share it)."""
    held = {}

    def pack(t):
        st = t.untyped_storage()
        held[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(held.values()), out


@pytest.mark.parametrize(
    "make, cudnn_floats",
    [
        # cuDNN's training reserve per step and row: LSTM the four gates, c and h; GRU r, z, n, W_hn h, h
        (lambda: rnnkit.LSTMCell(8, 64), 6 * 64),
        (lambda: rnnkit.GRUCell(8, 64), 5 * 64),
        (lambda: rnnkit.RNNCell(8, 64), 64),
        (lambda: rnnkit.LSTMCell(8, 64, layer_norm=True, peephole=True), None),
        (lambda: rnnkit.GRUCell(8, 64, reset_after=False, layer_norm=True), None),
        (lambda: rnnkit.MinGRU(8, 64), None),
    ],
)
def test_memory_saved_for_backward_is_measured_and_below_the_reference_loop(make, cudnn_floats):
    """What autograd really keeps per step, measured from the saved tensors over two sequence lengths (the
    difference cancels the weights and the initial state), against ``saved_floats_per_step``, cuDNN's
    reserve size and the reference loop's memory for the same run (never more)."""
    cell = make()
    B = 3

    def per_step(runner):
        sizes = []
        for T in (10, 30):
            xp = torch.randn(T, B, cell.gates * cell.hidden_size, requires_grad=True)
            state = cell.zeros_state(B)
            nbytes, _ = _saved_bytes(lambda xp=xp, state=state: runner(cell, xp, state))
            sizes.append(nbytes)
        return (sizes[1] - sizes[0]) / (20 * B * 4)  # floats per step and row

    fused_floats = per_step(fused.run_fused)
    assert fused_floats == fused.saved_floats_per_step(cell)
    if cudnn_floats is not None:
        assert fused_floats <= cudnn_floats
    assert fused_floats <= per_step(run_loop)  # never more than the loop (an RNN step: h in both)


# -- rnnkit bench: its FLOP counts (the timings themselves live in benchmarks/, not in unit tests) -------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: rnnkit.LSTM(8, 16),
        lambda: rnnkit.LSTM(8, 16, proj_size=5),
        lambda: rnnkit.GRU(8, 16),
        lambda: rnnkit.RNN(8, 16),
        lambda: rnnkit.Recurrent(rnnkit.MinGRU(8, 16)),
    ],
)
def test_bench_matmul_flops_match_torch_flop_counter(make):
    """``rnnkit bench`` turns times into GFLOP/s with ``benchmarks/fused_engine.py``'s ``matmul_flops``; torch's own FLOP
    counter on the reference loop (whose products are torch matmuls) is the outside count."""
    from torch.utils.flop_counter import FlopCounterMode

    from rnnkit.commands.bench import load_benchmark

    bench = load_benchmark()

    layer = make()
    layer.requested_backend = "reference"
    T, B = 5, 3
    x = torch.randn(B, T, 8)
    with FlopCounterMode(display=False) as fwd:
        layer(x)
    with FlopCounterMode(display=False) as fwd_bwd:
        y, _ = layer(x)
        y.sum().backward()
    want = bench.matmul_flops(layer, T, B)
    assert fwd.get_total_flops() == want["fwd"]
    # the bench counts T recurrent input gradients; autograd skips the one into the initial state (zeros,
    # no grad), one step's B x P x G product: under 1/T of the recurrent work
    cell = layer.cell
    skipped = 2 * B * cell.output_size * cell.gates * cell.hidden_size if cell.has_recurrence_matmul else 0
    assert fwd_bwd.get_total_flops() + skipped == want["fwd_bwd"]


def test_bench_reports_what_the_policy_says(tmp_path):
    """The bench's dispatch notes come from the layers themselves, not from text written by hand."""
    from rnnkit.commands.bench import load_benchmark

    bench = load_benchmark()
    cfg = bench.BenchConfig(cells=("lstm",), shapes=((4, 2, 3, 4),), rounds=1, min_gru_lengths=())
    r = bench.run(cfg)["results"][0]
    layer = rnnkit.LSTM(3, 4)
    assert (r["default_backend"], r["default_reason"]) == (layer.backend, layer.backend.reason)
    with torch.no_grad():
        assert (r["default_backend_forward"], r["default_reason_forward"]) == (
            layer.backend,
            layer.backend.reason,
        )


def test_bench_without_its_benchmarks_folder_is_one_line(tmp_path, monkeypatch, capsys):
    import sys

    from rnnkit.cli import main
    from rnnkit.commands import bench as command

    monkeypatch.setattr(command, "SCRIPT", tmp_path / "benchmarks" / "fused_engine.py")
    monkeypatch.delitem(sys.modules, command._MODULE, raising=False)
    assert main(["bench", "--quick"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs a source checkout" in err and "fused_engine.py" in err
