"""The core API the models build on: lengths of 0, per-sequence masks for step(), the loop observer and
scoped backends, torch state-dict names and PackedSequence input. Outside references: torch.nn layers and
cells with copied weights, and hand-written loops.

Tolerances: float64 throughout, atol=1e-10, rtol=1e-8 (as tests/test_parity.py).
"""

import ast
import copy
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit
from rnnkit.loop import run_loop

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

TOL = dict(atol=1e-10, rtol=1e-8)
D64 = torch.float64


def _fused_ok() -> bool:
    return rnnkit.fused.available()


def _backends_for(kind: str) -> list[str]:
    names = ["reference", "native"] if kind != "mingru" else ["reference", "scan"]
    if _fused_ok():
        names.append("fused")
    return names


def _torch_layer(kind, **kw):
    return {"lstm": nn.LSTM, "gru": nn.GRU}[kind](**kw).to(D64)


# -- lengths of 0 ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("backend", ["reference", "native", "fused"])
@pytest.mark.parametrize("lengths", [[5, 0, 3, 0, 1], [0, 0, 0]])
def test_zero_lengths_keep_the_state_forward_and_backward_vs_torch(kind, backend, lengths):
    if backend == "fused" and not _fused_ok():
        pytest.skip("the fused engine is unavailable here")
    torch.manual_seed(1)
    B, T, I, H = len(lengths), 6, 3, 4
    ref = _torch_layer(kind, input_size=I, hidden_size=H, num_layers=2, bidirectional=True, batch_first=True)
    layer = rnnkit.from_torch(ref, backend=backend)
    lengths = torch.tensor(lengths)
    x = torch.randn(B, T, I, dtype=D64)
    n = 4  # L * D
    parts = [torch.randn(n, B, H, dtype=D64, requires_grad=True) for _ in range(2 if kind == "lstm" else 1)]
    state = tuple(parts) if kind == "lstm" else parts[0]
    out, final = layer(x, state, lengths)
    finals = final if isinstance(final, tuple) else (final,)
    # outside reference: torch on the non-empty sequences alone; the others keep their state, zero outputs
    keep = (lengths > 0).nonzero().squeeze(1)
    empty = (lengths == 0).nonzero().squeeze(1)
    assert torch.equal(out[empty], torch.zeros_like(out[empty]))
    for p, f in zip(parts, finals):
        torch.testing.assert_close(f[:, empty], p[:, empty], atol=0, rtol=0)
    if keep.numel():
        sub_state = tuple(p[:, keep] for p in parts)
        packed = pack_padded_sequence(x[keep], lengths[keep], batch_first=True, enforce_sorted=False)
        t_out, t_final = ref(packed, sub_state if kind == "lstm" else sub_state[0])
        t_out, _ = pad_packed_sequence(t_out, batch_first=True, total_length=T)
        torch.testing.assert_close(out[keep], t_out, **TOL)
        t_finals = t_final if isinstance(t_final, tuple) else (t_final,)
        for f, tf in zip(finals, t_finals):
            torch.testing.assert_close(f[:, keep], tf, **TOL)
    # backward: an empty sequence's final state is its initial state, so dL/dstate0 = dL/dfinal there
    w_out = torch.randn_like(out)
    w_fin = [torch.randn_like(f) for f in finals]
    loss = (out * w_out).sum() + sum((f * w).sum() for f, w in zip(finals, w_fin))
    grads = torch.autograd.grad(loss, parts + list(layer.parameters()), allow_unused=True)
    for g, w in zip(grads[: len(parts)], w_fin):
        torch.testing.assert_close(g[:, empty], w[:, empty], atol=0, rtol=0)
    if keep.numel():
        sub = [p.detach()[:, keep].requires_grad_() for p in parts]
        packed = pack_padded_sequence(x[keep], lengths[keep], batch_first=True, enforce_sorted=False)
        t_out, t_final = ref(packed, tuple(sub) if kind == "lstm" else sub[0])
        t_out, _ = pad_packed_sequence(t_out, batch_first=True, total_length=T)
        t_finals = t_final if isinstance(t_final, tuple) else (t_final,)
        t_loss = (t_out * w_out[keep]).sum() + sum((f * w[:, keep]).sum() for f, w in zip(t_finals, w_fin))
        t_grads = torch.autograd.grad(t_loss, sub + list(ref.parameters()))
        for g, tg in zip(grads[: len(parts)], t_grads[: len(parts)]):
            torch.testing.assert_close(g[:, keep], tg, **TOL)
        for g, tg in zip(grads[len(parts) :], t_grads[len(parts) :]):
            torch.testing.assert_close(g, tg, **TOL)
    else:  # nothing ran: the weights get no gradient
        assert all(g is None or not g.any() for g in grads[len(parts) :])


@pytest.mark.parametrize("cell_cls", [rnnkit.MinGRU, rnnkit.MinLSTM])
def test_zero_lengths_in_every_backend_of_the_min_cells_match_the_reference(cell_cls):
    torch.manual_seed(2)
    layer = rnnkit.Recurrent(cell_cls(3, 5), num_layers=2, bidirectional=True).to(D64)
    x = torch.randn(4, 7, 3, dtype=D64)
    lengths = torch.tensor([7, 0, 2, 0])
    h0 = torch.randn(4, 4, 5, dtype=D64)
    results = {}
    for name in ["reference", "scan"] + (["fused"] if _fused_ok() else []):
        layer.requested_backend = name
        s = h0.clone().requires_grad_()
        out, h = layer(x, s, lengths)
        g = torch.autograd.grad((out * 1.5).sum() + (h * h).sum(), [s, *layer.parameters()])
        results[name] = (out, h, g)
    # the reference itself: empty rows carry h0 and output zeros; the others as run on their own
    out, h, g = results["reference"]
    torch.testing.assert_close(h[:, [1, 3]], h0[:, [1, 3]], atol=0, rtol=0)
    assert not out[[1, 3]].any()
    layer.requested_backend = "reference"
    alone, h_alone = layer(x[[0, 2]], h0[:, [0, 2]], lengths[[0, 2]])
    torch.testing.assert_close(out[[0, 2]], alone, **TOL)
    torch.testing.assert_close(h[:, [0, 2]], h_alone, **TOL)
    for name, (o, hh, gg) in results.items():
        torch.testing.assert_close(o, out, **TOL, msg=name)
        torch.testing.assert_close(hh, h, **TOL, msg=name)
        for a, b in zip(gg, g):
            torch.testing.assert_close(a, b, **TOL, msg=name)


def test_truncated_bptt_chunk_past_the_end_of_a_sequence_continues_its_state():
    """The case the models used to work around: the second chunk lies past the end of sequence 1."""
    torch.manual_seed(3)
    ref = nn.GRU(2, 3, batch_first=True).to(D64)
    layer = rnnkit.from_torch(ref)
    x = torch.randn(2, 8, 2, dtype=D64)
    lengths = torch.tensor([8, 3])
    whole, h_whole = layer(x, lengths=lengths)
    _, h = layer(x[:, :4], lengths=lengths.clamp(max=4))
    second, h2 = layer(x[:, 4:], h, lengths=(lengths - 4).clamp(min=0))
    torch.testing.assert_close(second, whole[:, 4:], **TOL)
    torch.testing.assert_close(h2, h_whole, **TOL)


# -- masks that last a sequence ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("option", ["recurrent_dropout", "zoneout"])
def test_training_step_equals_forward_with_the_same_masks(kind, option):
    torch.manual_seed(4)
    cls = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU}[kind]
    layer = cls(3, 6, num_layers=2, dropout=0.3, **{option: 0.4}).to(D64).train()
    B, T = 3, 7
    x = torch.randn(B, T, 3, dtype=D64)
    masks = layer.sample_masks(B, steps=T)
    names = ["reference"] + (["fused"] if _fused_ok() else [])
    for name in names:
        layer.requested_backend = name
        y, final = layer(x, masks=masks)
        state, ys = None, []
        for t in range(T):
            y_t, state = layer.step(x[:, t], state, masks=masks.at(t))
            ys.append(y_t)
        torch.testing.assert_close(torch.stack(ys, 1), y, **TOL, msg=name)
        for a, b in zip(state if kind == "lstm" else (state,), final if kind == "lstm" else (final,)):
            torch.testing.assert_close(a, b, **TOL, msg=name)
    # and the same seed draws the same masks, so forward and step agree without passing them around
    torch.manual_seed(9)
    y_seed, _ = layer(x, masks=layer.sample_masks(B, steps=T))
    torch.manual_seed(9)
    m2 = layer.sample_masks(B, steps=T)
    state, ys = None, []
    for t in range(T):
        y_t, state = layer.step(x[:, t], state, masks=m2.at(t))
        ys.append(y_t)
    torch.testing.assert_close(torch.stack(ys, 1), y_seed, **TOL)


@pytest.mark.parametrize("option", ["recurrent_dropout", "zoneout"])
def test_masked_forward_matches_a_hand_written_loop_over_torch_cells(option):
    """Outside reference: torch.nn.LSTMCell, the recurrent mask on h where it enters W_hh, zoneout mixing."""
    torch.manual_seed(5)
    layer = rnnkit.LSTM(3, 4, backend="reference", **{option: 0.5}).to(D64).train()
    cell = nn.LSTMCell(3, 4).to(D64)
    with torch.no_grad():
        for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, n).copy_(getattr(layer.cell, n))
    B, T = 2, 6
    x = torch.randn(B, T, 3, dtype=D64)
    masks = layer.sample_masks(B, steps=T)
    y, (h_n, c_n) = layer(x, masks=masks)
    h = torch.zeros(B, 4, dtype=D64)
    c = torch.zeros(B, 4, dtype=D64)
    rec, zo = masks.recurrent[0], masks.zoneout[0]
    for t in range(T):
        h_in = h if rec is None else h * rec  # one mask for the whole sequence
        h_new, c_new = cell(x[:, t], (h_in, c))
        if zo is not None:
            h_new = zo[0][t] * h + (1 - zo[0][t]) * h_new
            c_new = zo[1][t] * c + (1 - zo[1][t]) * c_new
        h, c = h_new, c_new
        torch.testing.assert_close(y[:, t], h, **TOL)
    torch.testing.assert_close(h_n[0], h, **TOL)
    torch.testing.assert_close(c_n[0], c, **TOL)


def test_masks_are_checked_against_the_call():
    layer = rnnkit.GRU(3, 4, recurrent_dropout=0.2).train()
    masks = layer.sample_masks(2, steps=5)
    with pytest.raises(rnnkit.RnnkitError, match="expected 4, got 5"):
        layer(torch.randn(2, 4, 3), masks=masks)
    with pytest.raises(rnnkit.RnnkitError, match="masks.at"):
        layer.step(torch.randn(2, 3), masks=masks)
    with pytest.raises(rnnkit.RnnkitError, match="batch size mismatch: expected 3, got 2"):
        layer(torch.randn(3, 5, 3), masks=masks)


def test_seq2seq_decoder_uses_one_recurrent_dropout_mask_per_sequence():
    from rnnkit.models import EncoderConfig, Seq2Seq, Seq2SeqConfig

    torch.manual_seed(6)
    dec = EncoderConfig("lstm", 8, recurrent_dropout=0.5, zoneout=0.2)
    model = Seq2Seq(
        Seq2SeqConfig(src_vocab_size=7, tgt_vocab_size=9, encoder=EncoderConfig("gru", 8), decoder=dec)
    )
    model.train()
    seen = []
    orig = model.decoder.step

    def spy(x_t, state=None, masks=None):
        seen.append(masks)
        return orig(x_t, state, masks)

    model.decoder.step = spy
    model(torch.randint(0, 7, (3, 5)), torch.randint(0, 9, (3, 4)))
    assert len(seen) == 4 and all(m is not None for m in seen)
    rec = [m.recurrent[0] for m in seen]
    assert all(torch.equal(r, rec[0]) for r in rec) and (rec[0] == 0).any()
    # zoneout draws a fresh mask per step (Krueger et al.), taken from the sequence's masks
    zo = torch.stack([m.zoneout[0][0][0] for m in seen])
    assert not all(torch.equal(z, zo[0]) for z in zo)
    model.eval()
    seen.clear()
    model(torch.randint(0, 7, (3, 5)), torch.randint(0, 9, (3, 4)))
    assert seen == [None] * 4


# -- observer and scoped backend ----------------------------------------------------------------------------
def test_run_loop_observer_sees_every_state_in_time_order():
    torch.manual_seed(7)
    cell = rnnkit.LSTMCell(3, 4, forget_bias=None).to(D64)
    ref = nn.LSTMCell(3, 4).to(D64)
    with torch.no_grad():
        for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ref, n).copy_(getattr(cell, n))
    x = torch.randn(5, 2, 3, dtype=D64)  # (T, B, I)
    mask = torch.tensor([[1, 1], [1, 1], [1, 0], [1, 0], [0, 0]], dtype=torch.bool).unsqueeze(-1)
    seen = {}
    for reverse in (False, True):
        seen.clear()
        run_loop(
            cell,
            cell.project_input(x),
            cell.zeros_state(2),
            mask,
            reverse,
            observer=lambda t, s: seen.update({t: s}),
        )
        assert sorted(seen) == list(range(5))
    # forward direction by hand with torch's cell: at padded steps the state is carried
    seen.clear()
    run_loop(
        cell, cell.project_input(x), cell.zeros_state(2), mask, observer=lambda t, s: seen.update({t: s})
    )
    h = c = torch.zeros(2, 4, dtype=D64)
    for t in range(5):
        h_new, c_new = ref(x[t], (h, c))
        m = mask[t]
        h, c = torch.where(m, h_new, h), torch.where(m, c_new, c)
        torch.testing.assert_close(seen[t][0], h, **TOL)
        torch.testing.assert_close(seen[t][1], c, **TOL)


def test_use_backend_scopes_the_choice_and_observe_needs_the_reference_loop():
    layer = rnnkit.LSTM(3, 4)
    before = layer.backend
    with rnnkit.use_backend("reference"):
        assert layer.backend == "reference" and "use_backend" in layer.backend.reason
        hs = []
        with layer.observe(lambda k, t, s: hs.append((k, t))):
            layer(torch.randn(2, 5, 3))
        assert hs == [(0, t) for t in range(5)]
    assert layer.backend == before and layer.requested_backend == "auto"
    with rnnkit.use_backend("native"), pytest.raises(rnnkit.RnnkitError, match="reference backend"):
        with layer.observe(lambda k, t, s: None):
            layer(torch.randn(2, 5, 3))
    sig = rnnkit.RNN(3, 4, activation="sigmoid")
    with rnnkit.use_backend("native"), pytest.raises(rnnkit.RnnkitError, match="chosen by use_backend"):
        sig(torch.randn(2, 5, 3))
    with pytest.raises(rnnkit.RnnkitError, match="unknown backend"):
        with rnnkit.use_backend("cudnn"):
            pass


# -- torch users ---------------------------------------------------------------------------------------------
TORCH_CONFIGS = [
    ("LSTM", dict(num_layers=2, bidirectional=True, proj_size=2)),
    ("LSTM", dict(num_layers=1, bias=False)),
    ("GRU", dict(num_layers=3, bidirectional=True)),
    ("RNN", dict(num_layers=2, nonlinearity="relu")),
]


@pytest.mark.parametrize("kind,kw", TORCH_CONFIGS)
def test_load_torch_state_dict_and_export_it_back(kind, kw):
    torch.manual_seed(8)
    ref = getattr(nn, kind)(3, 5, batch_first=True, **kw).to(D64)
    rk_kw = dict(kw)
    if "nonlinearity" in rk_kw:
        rk_kw["activation"] = rk_kw.pop("nonlinearity")
    layer = getattr(rnnkit, kind)(3, 5, **rk_kw).to(D64)  # rnnkit's default is batch_first=True
    result = layer.load_state_dict(ref.state_dict())
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(4, 6, 3, dtype=D64)
    y, s = layer(x)
    ty, ts = ref(x)
    torch.testing.assert_close(y, ty, **TOL)
    for a, b in zip(s if isinstance(s, tuple) else (s,), ts if isinstance(ts, tuple) else (ts,)):
        torch.testing.assert_close(a, b, **TOL)
    # export: torch loads it strictly, with the same keys in the same order, and computes the same
    exported = layer.torch_state_dict()
    assert list(exported) == list(ref.state_dict())
    ref2 = getattr(nn, kind)(3, 5, batch_first=True, **kw).to(D64)
    ref2.load_state_dict(exported)
    for k, v in ref.state_dict().items():
        assert torch.equal(ref2.state_dict()[k], v), k


def test_torch_state_dict_loads_into_a_nested_layer_and_rnnkit_names_still_load():
    torch.manual_seed(10)
    ref = nn.LSTM(3, 4, num_layers=2)
    model = nn.Sequential(rnnkit.LSTM(3, 4, num_layers=2, batch_first=False))
    model.load_state_dict({f"0.{k}": v for k, v in ref.state_dict().items()})
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(model[0](x)[0], ref(x)[0], atol=1e-6, rtol=1e-5)
    twin = rnnkit.LSTM(3, 4, num_layers=2, batch_first=False)
    twin.load_state_dict(model[0].state_dict())  # rnnkit's own names
    assert torch.equal(twin(x)[0], model[0](x)[0])
    peep = rnnkit.LSTM(3, 4, peephole=True)
    with pytest.raises(rnnkit.RnnkitError, match="torch_state_dict: torch's LSTM kernel has no peephole"):
        peep.torch_state_dict()


@pytest.mark.parametrize("batch_first", [True, False])
def test_packed_sequence_into_a_layer_of_either_layout_matches_torch(batch_first):
    torch.manual_seed(11)
    ref = nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=batch_first).to(D64)
    layer = rnnkit.from_torch(ref)
    assert layer.batch_first == batch_first
    seqs = [torch.randn(n, 3, dtype=D64) for n in (5, 2, 4)]
    packed = nn.utils.rnn.pack_sequence(seqs, enforce_sorted=False)
    h0 = torch.randn(4, 3, 4, dtype=D64)
    y, h = layer(packed, h0)
    ty, th = ref(packed, h0)
    assert isinstance(y, nn.utils.rnn.PackedSequence)
    torch.testing.assert_close(y.data, ty.data, **TOL)
    torch.testing.assert_close(h, th, **TOL)
    assert torch.equal(y.unsorted_indices, ty.unsorted_indices)


# -- structure -----------------------------------------------------------------------------------------------
def test_cells_do_not_import_layers():
    src = Path(rnnkit.cells.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
    assert not imported & {"rnnkit.layers", "rnnkit.loop", "rnnkit.backends", "rnnkit.models"}, imported


def test_step_and_forward_share_one_layer_loop():
    """step() goes through stack_forward: an observer attached to the layer sees step() calls too."""
    layer = rnnkit.GRU(3, 4, num_layers=2)
    seen = []
    with layer.observe(lambda k, t, s: seen.append(k)):
        layer.step(torch.randn(2, 3))
    assert seen == [0, 1]
    twin = copy.deepcopy(layer)
    x = torch.randn(2, 3)
    assert torch.equal(layer.step(x)[0], twin.step(x)[0])
