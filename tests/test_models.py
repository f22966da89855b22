"""rnnkit.models: every structure learns, decoders are correct, configs round-trip, bad input is refused."""

from __future__ import annotations

import itertools
import json
import math
import re

import pytest
import torch

from rnnkit import RnnkitError
from rnnkit.models import (
    ClassifierConfig,
    CTCConfig,
    CTCRecognizer,
    DecodingConfig,
    EncoderConfig,
    GeneratorConfig,
    LanguageModel,
    LanguageModelConfig,
    RegressorConfig,
    Seq2Seq,
    Seq2SeqConfig,
    SequenceClassifier,
    SequenceGenerator,
    SequenceRegressor,
    SequenceTagger,
    StreamingConfig,
    StreamingPredictor,
    TaggerConfig,
    WindowRegressor,
    WindowRegressorConfig,
    config_from_dict,
    ctc_greedy_decode,
    ctc_prefix_beam_search,
    filter_logits,
    load_model,
    sample_tokens,
)
from rnnkit.models.decoding import beam_search, decode, greedy_search


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # small models on a shared 2-core machine: one intra-op thread avoids OpenMP spin contention
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _train(model, batch, steps, lr=1e-2):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        out = model.loss(batch)
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    model.eval()
    with torch.no_grad():
        return model.loss(batch)


# -- every model overfits one small batch ----------------------------------------------------------------------
def _lengths(B, T, g):
    lengths = torch.randint(2, T + 1, (B,), generator=g)
    lengths[0] = T
    return lengths


@pytest.mark.parametrize(
    "pooling,cell,bidi",
    [("last", "lstm", True), ("mean", "gru", False), ("max", "rnn", True), ("attention", "mingru", True)],
)
def test_classifier_overfits_one_batch(pooling, cell, bidi):
    g = torch.Generator().manual_seed(1)
    B, T = 16, 9
    cfg = ClassifierConfig(
        num_classes=4,
        vocab_size=30,
        embedding_dim=16,
        encoder=EncoderConfig(cell, 32, bidirectional=bidi),
        pooling=pooling,
    )
    model = SequenceClassifier(cfg)
    batch = {
        "inputs": torch.randint(0, 30, (B, T), generator=g),
        "targets": torch.randint(0, 4, (B,), generator=g),
        "lengths": _lengths(B, T, g),
    }
    before = model.loss(batch).loss.item()
    out = _train(model, batch, 150)
    assert out.metrics["accuracy"] == B
    assert out.loss.item() < 0.05 < before


def test_regressor_overfits_one_batch():
    g = torch.Generator().manual_seed(2)
    B, T = 16, 8
    model = SequenceRegressor(
        RegressorConfig(output_size=2, input_size=3, encoder=EncoderConfig("lstm", 32), pooling="mean")
    )
    batch = {
        "inputs": torch.randn(B, T, 3, generator=g),
        "targets": torch.randn(B, 2, generator=g),
        "lengths": _lengths(B, T, g),
    }
    out = _train(model, batch, 300)
    assert out.metrics["mse"] / B < 0.01


def test_window_regressor_is_the_mlp_of_its_flattened_last_window(tmp_path):
    """The feed-forward counterpart: the last ``window`` steps flattened (time-major), two ReLU layers, a linear
    output; checked against the same algebra written with its weight matrices, its loss against torch's, and a
    save/load round trip."""
    g = torch.Generator().manual_seed(4)
    model = WindowRegressor(
        WindowRegressorConfig(output_size=3, input_size=2, window=5, hidden_size=7, loss="l1")
    )
    x = torch.randn(6, 9, 2, generator=g)
    lin = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(lin) == 3
    u = torch.stack([x[b, 4:].flatten() for b in range(6)])  # steps 4..8: the last five, step after step
    for layer in lin[:2]:
        u = torch.relu(u @ layer.weight.T + layer.bias)
    want = u @ lin[2].weight.T + lin[2].bias
    torch.testing.assert_close(model(x), want)
    # what lies before the window plays no part
    y = x.clone()
    y[:, :4] = 100.0
    torch.testing.assert_close(model(y), want)
    targets = torch.randn(6, 3, generator=g)
    out = model.loss({"inputs": x, "targets": targets})
    torch.testing.assert_close(out.loss, torch.nn.functional.l1_loss(want, targets))
    assert out.count == 6 and out.metrics["mae"] == pytest.approx(
        float((want - targets).detach().abs().mean(-1).sum())
    )
    model.save(tmp_path / "w")
    again = load_model(tmp_path / "w", WindowRegressor)
    torch.testing.assert_close(again(x), want)
    for bad, why in [
        (torch.randn(2, 4, 2), "T >= 5"),  # shorter than the window
        (torch.randn(2, 9, 3), "(batch, T >= 5, 2)"),  # wrong features
    ]:
        with pytest.raises(RnnkitError, match=re.escape(why)):
            model(bad)
    with pytest.raises(RnnkitError, match="every length must be 9"):
        model(x, torch.tensor([9, 9, 5, 9, 9, 9]))
    with pytest.raises(RnnkitError, match="loss"):
        WindowRegressor(WindowRegressorConfig(loss="pinball"))


def test_window_regressor_overfits_one_batch():
    g = torch.Generator().manual_seed(5)
    model = WindowRegressor(WindowRegressorConfig(output_size=2, input_size=3, window=8))
    batch = {"inputs": torch.randn(16, 8, 3, generator=g), "targets": torch.randn(16, 2, generator=g)}
    before = model.loss(batch).metrics["mse"]
    out = _train(model, batch, 300)
    assert out.metrics["mse"] / 16 < 0.01 < before / 16


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_tagger_overfits_one_batch(task):
    g = torch.Generator().manual_seed(3)
    B, T = 8, 10
    cfg = TaggerConfig(
        task=task,
        num_outputs=3,
        vocab_size=20,
        embedding_dim=16,
        encoder=EncoderConfig("gru", 32, bidirectional=True),
    )
    model = SequenceTagger(cfg)
    lengths = _lengths(B, T, g)
    y = (
        torch.randint(0, 3, (B, T), generator=g)
        if task == "classification"
        else torch.randn(B, T, 3, generator=g)
    )
    batch = {"inputs": torch.randint(0, 20, (B, T), generator=g), "targets": y, "lengths": lengths}
    out = _train(model, batch, 200)
    n = int(lengths.sum())
    assert out.count == n
    if task == "classification":
        assert out.metrics["accuracy"] == n
    else:
        assert out.metrics["mse"] / n < 0.02


def test_streaming_predictor_overfits_and_streams_like_forward():
    g = torch.Generator().manual_seed(4)
    B, T = 4, 12
    model = StreamingPredictor(
        StreamingConfig(input_size=2, num_outputs=1, encoder=EncoderConfig("lstm", 32))
    )
    x = torch.randn(B, T, 2, generator=g)
    y = torch.cumsum(x[..., :1], dim=1) * 0.3  # depends on the whole past: needs the carried state
    out = _train(model, {"inputs": x, "targets": y}, 300)
    assert out.metrics["mse"] / (B * T) < 0.01
    seq, _ = model(x)
    model.reset()
    streamed = torch.stack([model.predict(x[:, t]) for t in range(T)], 1)
    torch.testing.assert_close(streamed, seq.detach(), atol=1e-5, rtol=1e-5)
    model.reset()
    first = model.predict(x[:, 0])
    torch.testing.assert_close(first, seq[:, 0].detach(), atol=1e-5, rtol=1e-5)  # reset forgets the stream


@pytest.mark.parametrize("tie", [False, True])
def test_language_model_overfits_one_batch(tie):
    g = torch.Generator().manual_seed(5)
    tokens = torch.randint(0, 25, (4, 21), generator=g)
    cfg = LanguageModelConfig(
        vocab_size=25, embedding_dim=24, encoder=EncoderConfig("lstm", 48), tie_embeddings=tie
    )
    model = LanguageModel(cfg)
    if tie:
        assert model.output.weight is model.embedding.weight
        assert model.proj is not None  # 48 -> 24 before the tied output
    out = _train(model, {"inputs": tokens[:, :-1], "targets": tokens[:, 1:]}, 200)
    assert out.metrics["accuracy"] == 80
    assert out.loss.item() < 0.1


def test_generator_overfits_one_batch():
    g = torch.Generator().manual_seed(6)
    B = 6
    cond = torch.arange(B)  # one class per sequence
    seqs = torch.randint(4, 12, (B, 7), generator=g)
    lengths = torch.randint(3, 8, (B,), generator=g)
    for i in range(B):
        seqs[i, lengths[i] - 1] = 3  # end token
    cfg = GeneratorConfig(
        cond_size=16, cond_classes=B, vocab_size=12, embedding_dim=16, encoder=EncoderConfig("gru", 48)
    )
    model = SequenceGenerator(cfg)
    out = _train(model, {"cond": cond, "targets": seqs, "lengths": lengths}, 400)
    assert out.metrics["accuracy"] == int(lengths.sum())
    gen = model.generate(cond, max_length=10)
    for i in range(B):
        assert gen.to_lists()[i] == seqs[i, : lengths[i] - 1].tolist()
    assert bool(gen.finished.all())


@pytest.mark.parametrize("attention", ["bahdanau", "dot", "general", "none"])
def test_seq2seq_overfits_one_batch(attention):
    g = torch.Generator().manual_seed(7)
    B = 8
    src = torch.randint(4, 12, (B, 6), generator=g)
    src_lengths = torch.randint(2, 7, (B,), generator=g)
    tgt = torch.randint(4, 12, (B, 5), generator=g)
    tgt[:, -1] = 3
    cfg = Seq2SeqConfig(
        src_vocab_size=12,
        tgt_vocab_size=12,
        embedding_dim=16,
        encoder=EncoderConfig("lstm", 32, bidirectional=True),
        decoder=EncoderConfig("lstm", 64),
        attention=attention,
    )
    model = Seq2Seq(cfg)
    out = _train(model, {"src": src, "tgt": tgt, "src_lengths": src_lengths}, 150)
    assert out.metrics["accuracy"] == B * 5


def test_ctc_overfits_one_batch():
    g = torch.Generator().manual_seed(8)
    model = CTCRecognizer(
        CTCConfig(num_labels=5, input_size=6, encoder=EncoderConfig("gru", 32, bidirectional=True))
    )
    B, T = 6, 15
    x = torch.randn(B, T, 6, generator=g)
    targets = torch.randint(1, 6, (B, 4), generator=g)
    tl = torch.tensor([4, 3, 2, 4, 1, 3])
    out = _train(model, {"inputs": x, "targets": targets, "target_lengths": tl}, 250)
    assert out.metrics["exact_match"] == B
    for beam in (1, 4):
        assert model.decode(x, beam_size=beam) == [targets[i, : tl[i]].tolist() for i in range(B)]


# -- real tasks --------------------------------------------------------------------------------------------
def _reverse_batch(n, g, lo=3, hi=6):
    L = torch.randint(lo, hi + 1, (n,), generator=g)
    src = torch.zeros(n, hi, dtype=torch.long)
    tgt = torch.zeros(n, hi + 1, dtype=torch.long)
    for i in range(n):
        d = torch.randint(4, 14, (int(L[i]),), generator=g)  # digits 0-9 as ids 4..13
        src[i, : L[i]] = d
        tgt[i, : L[i]] = d.flip(0)
        tgt[i, L[i]] = 3
    return {"src": src, "tgt": tgt, "src_lengths": L, "tgt_lengths": L + 1}


@pytest.mark.slow
def test_seq2seq_with_attention_learns_to_reverse_digits():
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(
        src_vocab_size=14,
        tgt_vocab_size=14,
        embedding_dim=32,
        encoder=EncoderConfig("gru", 64, bidirectional=True),
        decoder=EncoderConfig("gru", 64),
        attention="bahdanau",
    )
    model = Seq2Seq(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    steps = 250
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / steps))
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        out = model.loss(_reverse_batch(64, g))
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    test = _reverse_batch(500, torch.Generator().manual_seed(123))
    res = model.generate(test["src"], test["src_lengths"], max_length=8)
    want = [test["tgt"][i, : int(test["src_lengths"][i])].tolist() for i in range(500)]
    exact = sum(h == w for h, w in zip(res.to_lists(), want)) / 500
    assert exact >= 0.99
    # the attention of output step t looks at source position L-1-t (that is what reversal means)
    L = test["src_lengths"]
    att = res.extras  # (B, steps, S)
    rows = torch.arange(500)
    hits = [
        (att[rows, 0].argmax(-1) == L - 1).float().mean().item(),
        (att[rows, 1].argmax(-1) == L - 2).float().mean().item(),
    ]
    assert min(hits) > 0.9
    beam = model.generate(
        test["src"][:50], test["src_lengths"][:50], strategy="beam", beam_size=4, max_length=8
    )
    assert sum(h == w for h, w in zip(beam.to_lists(), want[:50])) >= 49


def _ctc_toy(n, g, labels=4, max_len=4, T=24):
    """Unaligned task: each label shows as a one-hot burst of 1-3 frames at a random place, noise between."""
    x = torch.randn(n, T, labels + 1, generator=g) * 0.3
    targets = torch.zeros(n, max_len, dtype=torch.long)
    tl = torch.randint(1, max_len + 1, (n,), generator=g)
    for i in range(n):
        seq = torch.randint(1, labels + 1, (int(tl[i]),), generator=g)
        targets[i, : tl[i]] = seq
        t = int(torch.randint(0, 3, (1,), generator=g))
        for lab in seq.tolist():
            dur = int(torch.randint(1, 4, (1,), generator=g))
            x[i, t : t + dur, lab] += 2.0
            t += dur + 1 + int(torch.randint(0, 2, (1,), generator=g))
    return {"inputs": x, "targets": targets, "target_lengths": tl}


def test_ctc_learns_a_toy_unaligned_task():
    torch.manual_seed(0)
    model = CTCRecognizer(
        CTCConfig(num_labels=4, input_size=5, encoder=EncoderConfig("gru", 32, bidirectional=True))
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(1)
    for _ in range(150):
        out = model.loss(_ctc_toy(32, g))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    test = _ctc_toy(200, torch.Generator().manual_seed(99))
    model.eval()
    with torch.no_grad():
        res = model.loss(test)
    assert res.metrics["exact_match"] / 200 >= 0.9
    want = [test["targets"][i, : test["target_lengths"][i]].tolist() for i in range(200)]
    beam = model.decode(test["inputs"], beam_size=4)
    assert sum(h == w for h, w in zip(beam, want)) / 200 >= 0.9


# -- decoding ---------------------------------------------------------------------------------------------------
def _markov_step(table):
    """A step function over a fixed transition table of log-probabilities (prev token -> next token)."""

    def step(prev, state):
        return table[prev], state + 1, None

    return step


def test_beam_search_finds_the_most_probable_sequence_greedy_misses():
    # tokens: 0 = start, 1 = end, 2 = "a", 3 = "b". Greedy takes "a" (0.6) then is stuck in low-probability
    # continuations; "b" (0.4) leads to a certain end.
    p = (
        torch.tensor(
            [
                [0.0, 0.0, 0.6, 0.4],
                [0.0, 1.0, 0.0, 0.0],
                [0.0, 0.3, 0.35, 0.35],
                [0.0, 1.0, 0.0, 0.0],
            ]
        )
        .clamp_min(1e-12)
        .log()
    )
    step = _markov_step(p)
    first = torch.zeros(1, dtype=torch.long)
    cfg = DecodingConfig(strategy="beam", beam_size=4, length_penalty=0.0, max_length=4)
    beam = beam_search(step, torch.zeros(1), first, 1, cfg, lambda s, i: s.index_select(0, i))
    greedy = greedy_search(step, torch.zeros(1), first, 1, DecodingConfig(max_length=4))
    # brute force over all sequences that end within max_length
    best, best_lp = None, -math.inf
    for L in range(0, 4):
        for seq in itertools.product([2, 3], repeat=L):
            lp, prev = 0.0, 0
            for tok in (*seq, 1):
                lp += float(p[prev, tok])
                prev = tok
            if lp > best_lp:
                best, best_lp = list(seq), lp
    assert beam.to_lists()[0] == best == [3]
    assert greedy.to_lists()[0] != best
    assert beam.scores[0].item() == pytest.approx(best_lp, abs=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_search_keeps_going_while_a_live_beam_can_beat_the_finished_ones(alpha):
    # tokens: 0 = start, 1 = end, 2 = "a", 3 = "b", 4 = "c", 5 = "d". From the start "a" is almost certain
    # and "a d end" follows; the unlikely "end" and "b end" finish first and fill the beam's two places for
    # finished hypotheses, but the live beam "a d" scores far above both and must still be followed to its end
    p = torch.full((6, 6), 1e-12)
    p[0, 2], p[0, 1], p[0, 3], p[0, 4] = 0.97, 0.01, 0.01, 0.01
    p[2, 5], p[2, 1] = 0.99, 0.01
    p[3, 1] = p[4, 1] = p[5, 1] = 1.0
    step = _markov_step(p.log())
    first = torch.zeros(1, dtype=torch.long)
    cfg = DecodingConfig(strategy="beam", beam_size=2, length_penalty=alpha, max_length=6)
    beam = beam_search(step, torch.zeros(1), first, 1, cfg, lambda s, i: s.index_select(0, i))
    assert beam.to_lists()[0] == [2, 5] and bool(beam.finished[0])
    best = math.log(0.97 * 0.99)
    assert beam.scores[0].item() == pytest.approx(best / (3**alpha if alpha else 1.0), rel=1e-5)


def test_beam_size_one_equals_greedy_for_every_generator():
    torch.manual_seed(0)
    lm = LanguageModel(
        LanguageModelConfig(vocab_size=15, embedding_dim=8, encoder=EncoderConfig("gru", 16), eos_id=3)
    )
    prompt = torch.randint(4, 15, (5, 4))
    lengths = torch.tensor([4, 2, 1, 3, 4])
    a = lm.generate(prompt, lengths=lengths, strategy="greedy", max_length=12)
    b = lm.generate(prompt, lengths=lengths, strategy="beam", beam_size=1, max_length=12, length_penalty=0.0)
    assert a.to_lists() == b.to_lists()
    torch.testing.assert_close(a.scores, b.scores)
    gen = SequenceGenerator(
        GeneratorConfig(cond_size=4, vocab_size=10, encoder=EncoderConfig("lstm", 16, num_layers=2))
    )
    cond = torch.randn(6, 4)
    assert (
        gen.generate(cond, max_length=9).to_lists()
        == gen.generate(cond, strategy="beam", beam_size=1, max_length=9).to_lists()
    )
    s2s = Seq2Seq(
        Seq2SeqConfig(
            src_vocab_size=10,
            tgt_vocab_size=10,
            embedding_dim=8,
            encoder=EncoderConfig("gru", 16, bidirectional=True),
            decoder=EncoderConfig("gru", 16),
        )
    )
    src, sl = torch.randint(4, 10, (4, 5)), torch.tensor([5, 3, 1, 4])
    g1 = s2s.generate(src, sl, max_length=7)
    b1 = s2s.generate(src, sl, strategy="beam", beam_size=1, max_length=7)
    assert g1.to_lists() == b1.to_lists()
    for i in range(4):  # attention weights of the chosen path are the same too
        n = int(g1.lengths[i])
        torch.testing.assert_close(g1.extras[i, :n], b1.extras[i, :n])


def test_sampling_filters_and_temperature():
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0]])
    k = filter_logits(logits, top_k=2)
    assert torch.isfinite(k).sum() == 2 and torch.isfinite(k[0, :2]).all()
    probs = logits.softmax(-1)[0]  # 0.53, 0.19, 0.12, 0.07, 0.03 (approximately)
    p = filter_logits(logits, top_p=0.8)
    keep = int(torch.isfinite(p).sum())
    # smallest prefix of the sorted distribution whose mass reaches 0.8
    assert keep == int((probs.cumsum(0) < 0.8).sum()) + 1 == 3
    t = filter_logits(logits, temperature=0.5)
    torch.testing.assert_close(t.softmax(-1), (logits / 0.5).softmax(-1))
    # any accepted temperature is stable: 1e-40 is the argmax, never inf/nan (float32 overflow, issue 9)
    for tiny in (1e-40, 1e-30, 1e-8):
        assert torch.isfinite(filter_logits(logits, temperature=tiny).softmax(-1)).all()
        assert sample_tokens(logits.repeat(50, 1), tiny).tolist() == [0] * 50
    ties = torch.tensor([[1.0, 3.0, 3.0, float("-inf")]])
    assert set(
        sample_tokens(ties.repeat(200, 1), 1e-40, generator=torch.Generator().manual_seed(0)).tolist()
    ) == {1, 2}
    # sampling frequencies follow softmax(logits / T)
    lm = LanguageModel(LanguageModelConfig(vocab_size=5, embedding_dim=4, encoder=EncoderConfig("rnn", 4)))
    with torch.no_grad():
        lm.output.weight.zero_()
        lm.output.bias.copy_(logits[0])
    gen = torch.Generator().manual_seed(0)
    out = lm.generate(
        torch.zeros(4000, 1, dtype=torch.long),
        strategy="sample",
        max_length=1,
        temperature=2.0,
        generator=gen,
    )
    freq = torch.bincount(out.tokens[:, 0], minlength=5).float() / 4000
    torch.testing.assert_close(freq, (logits[0] / 2).softmax(-1), atol=0.03, rtol=0)
    out = lm.generate(
        torch.zeros(2000, 1, dtype=torch.long), strategy="sample", max_length=1, top_k=2, generator=gen
    )
    assert set(out.tokens[:, 0].tolist()) == {0, 1}


def test_ctc_prefix_beam_search_matches_brute_force_and_beats_best_path():
    # best path is blank-blank (empty labelling) while the labelling "1" is more probable in total
    p = torch.tensor([[0.4, 0.6 * 0.5, 0.6 * 0.5], [0.4, 0.6 * 0.5, 0.6 * 0.5]])
    p = torch.tensor([[0.5, 0.4, 0.1], [0.5, 0.4, 0.1]])
    lp = p.log()
    assert ctc_greedy_decode(lp.unsqueeze(0)) == [[]]
    g = torch.Generator().manual_seed(0)
    for trial in range(4):
        lp = (torch.randn(5, 3, generator=g) * 1.5).log_softmax(-1) if trial else lp
        totals: dict[tuple, float] = {}
        for path in itertools.product(range(3), repeat=lp.shape[0]):
            lab, prev = [], None
            for k in path:
                if k != prev and k != 0:
                    lab.append(k)
                prev = k
            totals[tuple(lab)] = totals.get(tuple(lab), 0.0) + math.exp(
                sum(float(lp[t, k]) for t, k in enumerate(path))
            )
        best = max(totals, key=totals.get)
        labels, score = ctc_prefix_beam_search(lp, beam_size=64, prune=-1e9)
        assert tuple(labels) == best
        assert score == pytest.approx(math.log(totals[best]), abs=1e-6)
        if trial == 0:
            assert labels == [1]


# -- structure-specific behaviour ------------------------------------------------------------------------------
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
def test_classifier_padding_invariance(pooling):
    torch.manual_seed(0)
    cfg = ClassifierConfig(
        num_classes=3, input_size=4, encoder=EncoderConfig("lstm", 8, bidirectional=True), pooling=pooling
    )
    model = SequenceClassifier(cfg).eval()
    x = torch.randn(3, 7, 4)
    lengths = torch.tensor([7, 4, 2])
    batched = model(x, lengths)
    for i in range(3):
        n = int(lengths[i])
        alone = model(x[i : i + 1, :n])
        torch.testing.assert_close(batched[i : i + 1], alone, atol=1e-5, rtol=1e-5)
    x2 = x.clone()
    x2[1, 4:] = 100.0  # garbage in the padding changes nothing
    torch.testing.assert_close(model(x2, lengths), batched)


def test_attention_weights_are_zero_on_padding_and_sum_to_one():
    torch.manual_seed(0)
    for att in ("bahdanau", "dot", "general"):
        cfg = Seq2SeqConfig(
            src_vocab_size=10,
            tgt_vocab_size=10,
            embedding_dim=8,
            encoder=EncoderConfig("gru", 8, bidirectional=True),
            decoder=EncoderConfig("gru", 16),
            attention=att,
        )
        model = Seq2Seq(cfg).eval()
        src, sl = torch.randint(4, 10, (3, 6)), torch.tensor([6, 2, 4])
        _, w = model(src, torch.randint(4, 10, (3, 5)), sl)
        assert w.shape == (3, 5, 6)
        torch.testing.assert_close(w.sum(-1), torch.ones(3, 5))
        assert w[1, :, 2:].abs().max() == 0 and w[2, :, 4:].abs().max() == 0


def test_scheduled_sampling_feeds_back_predictions_only_in_training():
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(
        src_vocab_size=10,
        tgt_vocab_size=10,
        embedding_dim=8,
        encoder=EncoderConfig("gru", 8),
        decoder=EncoderConfig("gru", 8),
        teacher_forcing=0.0,
    )
    model = Seq2Seq(cfg)
    src, tgt_in = torch.randint(4, 10, (4, 5)), torch.randint(4, 10, (4, 6))
    model.train()
    free, _ = model(src, tgt_in)
    model.set_teacher_forcing(1.0)
    forced, _ = model(src, tgt_in)
    assert not torch.allclose(free, forced)
    torch.testing.assert_close(free[:, 0], forced[:, 0])  # the first input is always the start token
    model.set_teacher_forcing(0.0)
    model.eval()
    torch.testing.assert_close(model(src, tgt_in)[0], forced)  # evaluation is teacher-forced
    # with teacher_forcing=0 the decoder input at t is the argmax of step t-1: equal to greedy decoding
    model.train()
    free, _ = model(src, tgt_in)
    model.eval()
    greedy_in = torch.cat([tgt_in[:, :1], free.argmax(-1)[:, :-1]], 1)
    torch.testing.assert_close(model(src, greedy_in)[0], free)


def test_lm_batched_prompts_of_different_lengths_generate_like_single_ones():
    torch.manual_seed(0)
    lm = LanguageModel(
        LanguageModelConfig(vocab_size=12, embedding_dim=8, encoder=EncoderConfig("lstm", 16, num_layers=2))
    )
    prompt = torch.randint(0, 12, (3, 5))
    lengths = torch.tensor([5, 1, 3])
    batched = lm.generate(prompt, lengths=lengths, max_length=6).to_lists()
    for i in range(3):
        assert lm.generate(prompt[i, : lengths[i]], max_length=6).to_lists()[0] == batched[i]
    # and generation continues the prompt exactly as forward() would predict its next token
    logits, _ = lm(prompt[:1])
    assert batched[0][0] == int(logits[0, -1].argmax())


def test_lm_truncated_state_carry_equals_one_call():
    torch.manual_seed(0)
    lm = LanguageModel(LanguageModelConfig(vocab_size=12, embedding_dim=8, encoder=EncoderConfig("gru", 16)))
    x = torch.randint(0, 12, (3, 10))
    lengths = torch.tensor([10, 4, 7])
    full, _ = lm(x, lengths=lengths)
    a, st = lm(x[:, :5], lengths=lengths.clamp(max=5))
    b, _ = lm(x[:, 5:], st, lengths=(lengths - 5).clamp(min=0))  # sequence 1 has ended: length 0 is fine here
    torch.testing.assert_close(torch.cat([a, b], 1)[0], full[0])
    torch.testing.assert_close(torch.cat([a, b], 1)[2, :7], full[2, :7])


# -- configs and files ------------------------------------------------------------------------------------------
ALL_MODELS = [
    (StreamingPredictor, StreamingConfig(input_size=3, encoder=EncoderConfig("minlstm", 8))),
    (
        SequenceGenerator,
        GeneratorConfig(
            cond_size=4, vocab_size=9, encoder=EncoderConfig("lstm", 8, cell_options={"layer_norm": True})
        ),
    ),
    (
        SequenceClassifier,
        ClassifierConfig(
            num_classes=3,
            vocab_size=9,
            encoder=EncoderConfig("gru", 8, bidirectional=True),
            pooling="attention",
        ),
    ),
    (
        SequenceRegressor,
        RegressorConfig(
            input_size=2,
            encoder=EncoderConfig(
                "rnn", 8, cell_options={"activation": "relu", "recurrent_init": "identity"}
            ),
        ),
    ),
    (
        SequenceTagger,
        TaggerConfig(
            vocab_size=9, encoder=EncoderConfig("lstm", 8, num_layers=2, cell_options={"proj_size": 4})
        ),
    ),
    (
        LanguageModel,
        LanguageModelConfig(
            vocab_size=9, embedding_dim=8, encoder=EncoderConfig("gru", 8), tie_embeddings=True
        ),
    ),
    (
        Seq2Seq,
        Seq2SeqConfig(
            src_vocab_size=9,
            tgt_vocab_size=9,
            embedding_dim=8,
            encoder=EncoderConfig("lstm", 8, bidirectional=True),
            decoder=EncoderConfig("gru", 16),
            attention="dot",
        ),
    ),
    (
        CTCRecognizer,
        CTCConfig(num_labels=4, input_size=3, encoder=EncoderConfig("mingru", 8, bidirectional=True)),
    ),
]


@pytest.mark.parametrize("cls,cfg", ALL_MODELS, ids=[c.__name__ for c, _ in ALL_MODELS])
def test_config_round_trip_and_save_load(cls, cfg, tmp_path):
    torch.manual_seed(0)
    model = cls(cfg)
    d = json.loads(json.dumps(model.to_config()))
    assert d["model"] == cls.__name__
    twin = cls.from_config(d)
    assert twin.to_config() == model.to_config()
    assert [n for n, _ in twin.named_parameters()] == [n for n, _ in model.named_parameters()]
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is cls
    for (n, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), n
    if cls is LanguageModel:
        assert loaded.output.weight is loaded.embedding.weight  # tying survives the file


def test_encoder_config_from_layer_describes_any_layer():
    import rnnkit

    layer = rnnkit.Recurrent(rnnkit.LSTMCell(5, 8, peephole=True, cell_clip=3.0), num_layers=2, zoneout=0.1)
    cfg = EncoderConfig.from_layer(layer)
    twin = cfg.build(5)
    assert twin.cell.config() == layer.cell.config()
    assert (twin.num_layers, twin.zoneout) == (2, 0.1)
    with pytest.raises(RnnkitError, match="callable activation"):
        EncoderConfig.from_layer(rnnkit.RNN(3, 4, activation=torch.sin))


# -- bad input ------------------------------------------------------------------------------------------------
def test_bad_tokens_targets_and_shapes_are_clear_errors():
    torch.manual_seed(0)
    clf = SequenceClassifier(ClassifierConfig(num_classes=3, vocab_size=10, encoder=EncoderConfig("gru", 8)))
    with pytest.raises(RnnkitError, match=r"out of range.*vocab_size=10"):
        clf(torch.tensor([[1, 2, 10]]))
    with pytest.raises(RnnkitError, match=r"targets out of range.*num_classes=3"):
        clf.loss({"inputs": torch.tensor([[1, 2]]), "targets": torch.tensor([3])})
    with pytest.raises(RnnkitError, match=r"targets must have shape \(1,\)"):
        clf.loss({"inputs": torch.tensor([[1, 2]]), "targets": torch.tensor([1, 2])})
    with pytest.raises(RnnkitError, match="integer token ids"):
        clf(torch.randn(2, 3))
    with pytest.raises(RnnkitError, match="empty batch"):
        clf(torch.zeros(0, 5, dtype=torch.long))
    with pytest.raises(RnnkitError, match=r"lengths must lie in \[1, T=3\]"):
        clf(torch.tensor([[1, 2, 3], [1, 2, 3]]), lengths=torch.tensor([3, 0]))
    with pytest.raises(RnnkitError, match="unknown batch key"):
        clf.loss({"inputs": torch.tensor([[1]]), "labels": torch.tensor([0])})
    lm = LanguageModel(LanguageModelConfig(vocab_size=10, embedding_dim=4, encoder=EncoderConfig("gru", 4)))
    with pytest.raises(RnnkitError, match=r"targets out of range"):
        lm.loss({"inputs": torch.tensor([[1, 2]]), "targets": torch.tensor([[2, 12]])})
    with pytest.raises(RnnkitError, match="targets must have the inputs' shape"):
        lm.loss({"inputs": torch.tensor([[1, 2]]), "targets": torch.tensor([[2, 3, 4]])})
    with pytest.raises(RnnkitError, match="lengths must lie in"):
        lm(torch.tensor([[1, 2]]), lengths=torch.tensor([0]))
    reg = SequenceRegressor(RegressorConfig(output_size=2, input_size=3, encoder=EncoderConfig("gru", 4)))
    with pytest.raises(RnnkitError, match=r"input_size: expected 3, got 4"):
        reg(torch.randn(2, 5, 4))
    with pytest.raises(RnnkitError, match=r"targets must have shape \(2, 2\)"):
        reg.loss({"inputs": torch.randn(2, 5, 3), "targets": torch.randn(2, 3)})
    ctc = CTCRecognizer(CTCConfig(num_labels=3, input_size=2, encoder=EncoderConfig("gru", 4)))
    with pytest.raises(RnnkitError, match="0 is the blank"):
        ctc.loss({"inputs": torch.randn(1, 8, 2), "targets": torch.tensor([[0, 1]])})
    with pytest.raises(RnnkitError, match="needs at least 4 input frames"):
        ctc.loss({"inputs": torch.randn(1, 3, 2), "targets": torch.tensor([[1, 1, 2]])})
    with pytest.raises(RnnkitError, match=r"must lie in \[0, tgt_vocab_size=9\)"):
        Seq2Seq(Seq2SeqConfig(tgt_vocab_size=9, eos_id=9))


def test_bidirectional_decoders_are_refused():
    bi = EncoderConfig("lstm", 8, bidirectional=True)
    for make in (
        lambda: LanguageModel(LanguageModelConfig(vocab_size=5, encoder=bi)),
        lambda: SequenceGenerator(GeneratorConfig(vocab_size=5, encoder=bi)),
        lambda: Seq2Seq(Seq2SeqConfig(decoder=bi)),
        lambda: StreamingPredictor(StreamingConfig(encoder=bi)),
    ):
        with pytest.raises(RnnkitError, match="cannot be bidirectional"):
            make()
    Seq2Seq(Seq2SeqConfig(encoder=bi, decoder=EncoderConfig("lstm", 8)))  # a bidirectional *encoder* is fine


def test_bad_configs_are_clear_errors():
    with pytest.raises(RnnkitError, match="unknown key 'hidden' for EncoderConfig"):
        config_from_dict(LanguageModelConfig, {"vocab_size": 5, "encoder": {"hidden": 3}})
    with pytest.raises(RnnkitError, match="expected an integer"):
        config_from_dict(LanguageModelConfig, {"vocab_size": "5"})
    with pytest.raises(RnnkitError, match="unknown cell"):
        LanguageModel(LanguageModelConfig(encoder=EncoderConfig("transformer")))
    with pytest.raises(RnnkitError, match="unknown pooling"):
        SequenceClassifier(ClassifierConfig(input_size=2, pooling="median"))
    with pytest.raises(RnnkitError, match="dot attention needs"):
        Seq2Seq(
            Seq2SeqConfig(
                encoder=EncoderConfig("gru", 8, bidirectional=True),
                decoder=EncoderConfig("gru", 8),
                attention="dot",
            )
        )
    with pytest.raises(RnnkitError, match="config is for model 'LanguageModel'"):
        SequenceTagger.from_config(LanguageModel(LanguageModelConfig(vocab_size=5)).to_config())
    with pytest.raises(RnnkitError, match="unknown decoding strategy"):
        LanguageModel(LanguageModelConfig(vocab_size=5, bos_id=0)).generate(strategy="nucleus")
    with pytest.raises(RnnkitError, match="top_p"):
        decode(
            lambda p, s: (None, s, None),
            None,
            torch.zeros(1, dtype=torch.long),
            None,
            DecodingConfig(top_p=0.0),
        )


def test_damaged_or_foreign_model_files_are_clear_errors(tmp_path):
    torch.manual_seed(0)
    lm = LanguageModel(LanguageModelConfig(vocab_size=9, embedding_dim=4, encoder=EncoderConfig("gru", 4)))
    lm.save(tmp_path / "lm")
    weights = tmp_path / "lm" / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(RnnkitError, match="corrupted"):
        load_model(tmp_path / "lm")
    data = bytearray(good)
    data[-3] ^= 0xFF  # one flipped bit in the weights
    weights.write_bytes(bytes(data))
    with pytest.raises(RnnkitError, match="corrupted"):
        load_model(tmp_path / "lm")
    weights.write_bytes(good)
    assert isinstance(load_model(tmp_path / "lm"), LanguageModel)
    with pytest.raises(RnnkitError, match="holds a LanguageModel, not a SequenceTagger"):
        SequenceTagger.load(tmp_path / "lm")
    (tmp_path / "lm" / "model.json").write_text('{"format": "rnnkit.model", "ver')
    with pytest.raises(RnnkitError, match="not valid JSON"):
        load_model(tmp_path / "lm")
    with pytest.raises(RnnkitError, match="no such model directory"):
        load_model(tmp_path / "nothing")


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_smoothed_cross_entropy_is_torchs_label_smoothing_forward_and_backward(eps):
    from rnnkit.models._base import smoothed_cross_entropy

    torch.manual_seed(0)
    z = (3 * torch.randn(37, 11, dtype=torch.float64)).requires_grad_()
    y = torch.randint(0, 11, (37,))
    loss, nll, correct = smoothed_cross_entropy(z, y, eps)
    (grad,) = torch.autograd.grad(loss, z)
    ref = torch.nn.functional.cross_entropy(z, y, label_smoothing=eps)  # the outside reference
    (ref_grad,) = torch.autograd.grad(ref, z)
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(grad, ref_grad)
    assert nll == pytest.approx(
        float(torch.nn.functional.cross_entropy(z.detach(), y, reduction="sum")), rel=1e-12
    )
    assert correct == float((z.argmax(-1) == y).sum()) and 0 < correct < 37
