"""The feed-forward counterpart of the recurrent encoders: TimeDelayEncoder against a frame-by-frame reference,
and a CTC recognizer built on it."""

from __future__ import annotations

import json

import pytest
import torch

from rnnkit._errors import RnnkitError
from rnnkit.models import CTCConfig, CTCRecognizer, TimeDelayEncoder, load_model


def _reference(enc: TimeDelayEncoder, x: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """Each output frame as the sum over its window's frames, one frame at a time (zeros outside the sequence),
    plus the layer's input after the first layer."""
    r = enc.width // 2
    outs = []
    for b, n in enumerate(lengths):
        h = [x[b, t] for t in range(n)]
        for i, conv in enumerate(enc.convs):
            W, bias = conv.weight, conv.bias  # (out, in, width)
            nxt = []
            for t in range(n):
                acc = bias.clone()
                for k in range(enc.width):
                    s = t + k - r
                    if 0 <= s < n:
                        acc = acc + W[:, :, k] @ h[s]
                nxt.append(torch.relu(acc) + (h[t] if i else 0))
            h = nxt
        pad = [torch.zeros(enc.hidden_size, dtype=x.dtype)] * (x.shape[1] - n)
        outs.append(torch.stack(h + pad))
    return torch.stack(outs)


@pytest.mark.parametrize("width,layers", [(1, 1), (3, 2), (5, 3)])
def test_time_delay_encoder_matches_the_frame_by_frame_reference_forward_and_backward(width, layers):
    torch.manual_seed(width)
    enc = TimeDelayEncoder(3, 4, num_layers=layers, width=width).double()
    x = torch.randn(3, 9, 3, dtype=torch.float64)
    lengths = [9, 6, 2]
    out, state = enc(x, None, torch.tensor(lengths))
    ref = _reference(enc, x, lengths)
    assert state is None
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
    w = torch.randn_like(out)
    grads = torch.autograd.grad((out * w).sum(), list(enc.parameters()))
    ref_grads = torch.autograd.grad((ref * w).sum(), list(enc.parameters()))
    for g, rg in zip(grads, ref_grads):
        torch.testing.assert_close(g, rg, rtol=1e-10, atol=1e-12)


def test_time_delay_encoder_reads_a_sequence_the_same_alone_or_padded():
    torch.manual_seed(0)
    enc = TimeDelayEncoder(5, 8, num_layers=3, width=5).eval()
    x = torch.randn(2, 12, 5)
    x[1, 7:] = 100.0  # padding that would leak into the last frames if it were read
    out, _ = enc(x, None, torch.tensor([12, 7]))
    alone, _ = enc(x[1:2, :7], None, torch.tensor([7]))
    torch.testing.assert_close(out[1, :7], alone[0])
    assert float(out[1, 7:].detach().abs().sum()) == 0.0
    assert enc.receptive_field == 13


def test_time_delay_encoder_refuses_bad_settings_and_inputs():
    with pytest.raises(RnnkitError, match="odd"):
        TimeDelayEncoder(3, 4, width=4)
    with pytest.raises(RnnkitError, match="num_layers"):
        TimeDelayEncoder(3, 4, num_layers=0)
    enc = TimeDelayEncoder(3, 4)
    with pytest.raises(RnnkitError, match="no state"):
        enc(torch.zeros(1, 4, 3), torch.zeros(1, 4))
    with pytest.raises(RnnkitError, match=r"\(batch, time, 3\)"):
        enc(torch.zeros(1, 4, 2))
    with pytest.raises(RnnkitError, match="lengths"):
        enc(torch.zeros(2, 4, 3), None, torch.tensor([5, 1]))


def _fit(model, make_batch, steps: int, lr: float) -> None:
    """``steps`` Adam updates on fresh batches ``make_batch(generator)``."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(1)
    model.train()
    for _ in range(steps):
        out = model.loss(make_batch(g))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    model.eval()


def test_ctc_recognizer_with_a_time_delay_encoder_learns_and_saves(tmp_path):
    torch.manual_seed(0)
    from test_models import _ctc_toy  # labels as bursts of 1-3 frames at random places, noise between

    cfg = CTCConfig(num_labels=4, input_size=5, time_delay_layers=3, time_delay_width=3, time_delay_size=64)
    model = CTCRecognizer(cfg)
    assert isinstance(model.encoder, TimeDelayEncoder) and model.encoder.backend == "feed-forward"
    test = _ctc_toy(200, torch.Generator().manual_seed(99))
    model.eval()
    with torch.no_grad():
        before = model.loss(test).metrics["exact_match"] / 200
    _fit(model, lambda g: _ctc_toy(32, g), 150, 1e-2)
    with torch.no_grad():
        after = model.loss(test).metrics["exact_match"] / 200
    assert before < 0.2 and after >= 0.9, (before, after)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert json.loads(json.dumps(loaded.to_config()))["time_delay_layers"] == 3
    with torch.no_grad():
        torch.testing.assert_close(loaded(test["inputs"]), model(test["inputs"]))


def _copy_batch(n: int, g: torch.Generator, vocab: int = 14):
    """Copy 3-6 distinct tokens (ids 4 .. vocab - 1) and then eos (3)."""
    src, lengths = torch.zeros(n, 6, dtype=torch.long), []
    tgt = torch.zeros(n, 7, dtype=torch.long)
    for i in range(n):
        k = int(torch.randint(3, 7, (1,), generator=g))
        toks = torch.randperm(vocab - 4, generator=g)[:k] + 4
        src[i, :k], tgt[i, :k], tgt[i, k] = toks, toks, 3
        lengths.append(k)
    lengths = torch.tensor(lengths)
    return {"src": src, "tgt": tgt, "src_lengths": lengths, "tgt_lengths": lengths + 1}


def _ff_seq2seq(attention: str = "general"):
    from rnnkit.models import Seq2Seq, Seq2SeqConfig
    from rnnkit.models._base import EncoderConfig

    cfg = Seq2SeqConfig(
        src_vocab_size=14,
        tgt_vocab_size=14,
        embedding_dim=16,
        decoder=EncoderConfig("gru", 48),
        attention=attention,
        time_delay_layers=2,
        time_delay_width=3,
        time_delay_size=48,
        decoder_context=2,
    )
    return Seq2Seq(cfg)


def test_feed_forward_seq2seq_learns_to_copy_and_decodes_like_its_forward_pass():
    """No recurrence anywhere: the time-delay encoder marks each token's neighbours, and a decoder that sees its
    last two tokens finds the next source token by attention. Greedy decoding gives the teacher-forced argmax."""
    torch.manual_seed(0)
    model = _ff_seq2seq()
    assert model.decoder is None and isinstance(model.encoder, TimeDelayEncoder)
    _fit(model, lambda g: _copy_batch(64, g), 300, 5e-3)
    test = _copy_batch(200, torch.Generator().manual_seed(7))
    want = [
        test["src"][i, : int(test["src_lengths"][i])].tolist() for i in range(200)
    ]  # the end token excluded
    for strategy in ("greedy", "beam"):
        res = model.generate(test["src"], test["src_lengths"], strategy=strategy, beam_size=3, max_length=8)
        got = [row[:n].tolist() for row, n in zip(res.tokens, res.lengths)]
        exact = sum(a == b for a, b in zip(got, want)) / 200
        assert exact >= 0.9, (strategy, exact)
    # a sequence reads the same alone as padded in a batch, and step by step as in the teacher-forced pass
    with torch.no_grad():
        bos = torch.full((200, 1), 2)
        logits, attn = model(test["src"], torch.cat([bos, test["tgt"][:, :-1]], 1), test["src_lengths"])
        i = int(torch.argmin(test["src_lengths"]))
        k = int(test["src_lengths"][i])
        alone, _ = model(test["src"][i : i + 1, :k], torch.cat([bos[:1], test["tgt"][i : i + 1, :-1]], 1))
    torch.testing.assert_close(logits[i], alone[0], rtol=1e-5, atol=1e-5)
    assert float(attn[i, :, k:].abs().sum()) == 0.0


def test_feed_forward_seq2seq_needs_attention_and_saves(tmp_path):
    with pytest.raises(RnnkitError, match="only through attention"):
        _ff_seq2seq("none")
    torch.manual_seed(0)
    model = _ff_seq2seq("bahdanau")
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    batch = _copy_batch(4, torch.Generator().manual_seed(3))
    torch.testing.assert_close(loaded.loss(batch).loss, model.loss(batch).loss)
