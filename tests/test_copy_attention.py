"""Copy attention (a pointer-generator, See et al. 2017) in :class:`rnnkit.models.Seq2Seq`: the mixture against a
step-by-step reference written out with loops, forward and backward; what can and cannot be copied; a copy task
whose test tokens never appear as targets in training (only copying can write them); the copy map's checks and its
round trip through save and load."""

from __future__ import annotations

import pytest
import torch

from rnnkit import RnnkitError
from rnnkit.models import EncoderConfig, Seq2Seq, Seq2SeqConfig, load_model, save_model

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(attention="bahdanau", copy=True, ff=False, **kw) -> Seq2Seq:
    torch.manual_seed(0)
    cfg = dict(
        src_vocab_size=20,  # ids 15-19 have no target id: they can never be copied
        tgt_vocab_size=15,
        embedding_dim=8,
        encoder=EncoderConfig("gru", 6, bidirectional=True),
        decoder=EncoderConfig("lstm", 12),
        attention=attention,
        attention_dim=5,
        copy_attention=copy,
    )
    if ff:
        cfg.update(time_delay_layers=2, time_delay_size=12, time_delay_width=3)
    return Seq2Seq(Seq2SeqConfig(**{**cfg, **kw}))


def _reference(model: Seq2Seq, src, lengths, tgt_in):
    """log p of each step by the definition: the generator's softmax and the attention weights (taken from the
    model's own output layer and attention through hooks), mixed with explicit loops over the source."""
    seen = {}
    h1 = model.output.register_forward_hook(lambda m, i, o: seen.setdefault("gen", []).append((i[0], o)))
    h2 = model.attention.register_forward_hook(lambda m, i, o: seen.setdefault("att", []).append(o))
    try:
        got, _ = model(src, tgt_in, lengths)
    finally:
        h1.remove(), h2.remove()
    rows = []
    for (out, logits), (ctx, weights) in zip(seen["gen"], seen["att"]):
        g = torch.sigmoid(
            torch.cat([out, ctx], -1) @ model.copy_gate.weight.T + model.copy_gate.bias
        )  # (B, 1)
        p_gen = logits.softmax(-1)
        step = []
        for b in range(src.shape[0]):
            p = g[b, 0] * p_gen[b]
            back = weights.new_zeros(())  # attention on tokens without a target id: back to generating
            copied = [weights.new_zeros(()) for _ in range(p.shape[0])]
            for j in range(src.shape[1]):
                target = int(model.copy_map[src[b, j]])
                if target < 0:
                    back = back + weights[b, j]
                else:
                    copied[target] = copied[target] + weights[b, j]
            p = p + (1 - g[b, 0]) * (torch.stack(copied) + back * p_gen[b])
            step.append(p.log())
        rows.append(torch.stack(step))
    return got, torch.stack(rows, 1)


@pytest.mark.parametrize("attention, ff", [("bahdanau", False), ("general", False), ("bahdanau", True)])
def test_the_mixture_matches_the_definition_forward_and_backward(attention, ff):
    model = _model(attention, ff=ff).double().eval()
    src = torch.tensor([[4, 17, 4, 9, 0], [16, 5, 3, 0, 0]])  # a repeated id, unmappable ids, an eos, padding
    lengths = torch.tensor([4, 3])
    tgt_in = torch.tensor([[2, 4, 9, 6], [2, 5, 5, 8]])
    got, want = _reference(model, src, lengths, tgt_in)
    torch.testing.assert_close(got, want)
    assert torch.allclose(got.exp().sum(-1), torch.ones(2, 4, dtype=torch.float64))
    w = torch.randn_like(got)
    params = list(model.parameters())
    grads = [
        torch.autograd.grad((x * w).sum(), params, retain_graph=True, allow_unused=True) for x in (got, want)
    ]
    for a, b in zip(*grads):
        if a is not None or b is not None:
            torch.testing.assert_close(a, b)


def test_nothing_copyable_leaves_the_generator_alone_and_copying_moves_mass_to_source_tokens():
    model = _model().eval()
    src, lengths, tgt_in = torch.tensor([[7, 8, 9]]), torch.tensor([3]), torch.tensor([[2, 7]])
    with torch.no_grad():
        mixed, _ = model(src, tgt_in, lengths)
        model.set_copy_map(torch.full((20,), -1))
        alone, _ = model(src, tgt_in, lengths)
        plain = []
        hook = model.output.register_forward_hook(lambda m, i, o: plain.append(o))
        model(src, tgt_in, lengths)
        hook.remove()
    torch.testing.assert_close(alone[0], torch.stack(plain, 1)[0].log_softmax(-1))
    # with the default map the source's own tokens gain what every other token loses
    gain = mixed.exp() - alone.exp()
    assert bool((gain[..., [7, 8, 9]] > 0).all()) and bool((gain[..., [4, 5, 6, 10]] < 0).all())


def test_copy_attention_writes_tokens_it_never_saw_as_targets():
    """Copy the source; training sequences use ids 4-33 only, test sequences 34-63 only. Without copy attention
    the decoder cannot write an id it was never trained to output; with it, it copies them."""

    def batch(n, g, lo, hi):
        L = torch.randint(3, 6, (n,), generator=g)
        src, tgt = torch.zeros(n, 5, dtype=torch.long), torch.zeros(n, 6, dtype=torch.long)
        for i in range(n):
            x = torch.randint(lo, hi, (int(L[i]),), generator=g)
            src[i, : L[i]], tgt[i, : L[i]], tgt[i, L[i]] = x, x, 3
        return {"src": src, "tgt": tgt, "src_lengths": L, "tgt_lengths": L + 1}

    exact = {}
    for copy in (False, True):
        torch.manual_seed(0)
        model = Seq2Seq(
            Seq2SeqConfig(
                src_vocab_size=64,
                tgt_vocab_size=64,
                embedding_dim=16,
                encoder=EncoderConfig("gru", 32, bidirectional=True),
                decoder=EncoderConfig("gru", 32),
                copy_attention=copy,
            )
        )
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        g = torch.Generator().manual_seed(0)
        for _ in range(300):
            out = model.loss(batch(32, g, 4, 34))
            opt.zero_grad()
            out.loss.backward()
            opt.step()
        model.eval()
        test = batch(200, torch.Generator().manual_seed(1), 34, 64)
        hyps = model.generate(test["src"], test["src_lengths"], max_length=7).to_lists()
        want = [test["tgt"][i, : int(test["src_lengths"][i])].tolist() for i in range(200)]
        exact[copy] = sum(h == w for h, w in zip(hyps, want)) / 200
    # 0.0 and 0.85 after 200 steps here; the plain decoder cannot write a single unseen id
    assert exact[False] == 0.0 and exact[True] >= 0.6, exact


def test_copy_map_checks_and_round_trip(tmp_path):
    model = _model()
    assert model.copy_map.tolist()[:5] == [-1, 1, -1, -1, 4]  # pad, bos and eos are never copied; unk is
    assert model.copy_map.tolist()[15:] == [-1] * 5  # beyond the target vocabulary
    for bad in (torch.arange(19), torch.full((20,), 15), torch.full((20,), -2), torch.zeros(20)):
        with pytest.raises(RnnkitError, match="copy map: expected 20 integer target ids"):
            model.set_copy_map(bad)
    with pytest.raises(RnnkitError, match="copy_attention=True"):
        _model(copy=False).set_copy_map(torch.arange(20))
    mapping = torch.tensor([-1, -1, -1, -1] + list(range(14, 4 - 1, -1)) + [-1] * 5)
    model.set_copy_map(mapping)
    save_model(model, tmp_path / "m")
    again = load_model(tmp_path / "m", Seq2Seq)
    assert again.copy_map.tolist() == mapping.tolist()
    src, lengths = torch.tensor([[5, 6, 18]]), torch.tensor([3])
    torch.testing.assert_close(
        again.eval().generate(src, lengths, max_length=4).tokens,
        model.eval().generate(src, lengths, max_length=4).tokens,
    )


@pytest.mark.parametrize("kw", [{"attention": "none"}, {"src_vocab_size": 0, "src_input_size": 3}])
def test_copy_attention_needs_attention_and_source_ids(kw):
    with pytest.raises(RnnkitError, match="copy_attention copies source tokens through the attention"):
        _model(**kw)


def test_without_copy_attention_a_seeded_model_starts_from_the_same_weights():
    a, b = _model(copy=False), _model(copy=True)
    sa, sb = a.state_dict(), b.state_dict()
    assert set(sb) - set(sa) == {"copy_gate.weight", "copy_gate.bias", "copy_map"}
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k])
