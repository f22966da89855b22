"""The compiled step-and-sample loop (rnnkit.models.fastgen) against its slow twins.

The reference is LanguageModel.generate (rnnkit.models.decoding's loop and torch.multinomial): with the
same seed the fast loop must give exactly the same tokens, for every cell and sampling option it covers;
the recurrent step itself is checked against the encoder's step within 1e-5.
"""

from __future__ import annotations

import json

import pytest
import torch

from rnnkit import RnnkitError
from rnnkit.apps.textgen.config import GenerateConfig, TextGenConfig
from rnnkit.apps.textgen.model import generate, generation_backend, stream
from rnnkit.datasets import Vocabulary
from rnnkit.models import DecodingConfig, EncoderConfig, LanguageModel, LanguageModelConfig
from rnnkit.models.fastgen import FastGenerator, StreamBatch, fast_support, python_tokens

if not fast_support(LanguageModel(LanguageModelConfig(vocab_size=8, embedding_dim=4)))[0]:
    pytest.skip("the compiled engine cannot be built here", allow_module_level=True)

SETTINGS = [  # (temperature, top_k, top_p)
    (0.0, 0, 1.0),
    (1.0, 0, 1.0),
    (0.7, 0, 1.0),
    (1.3, 12, 1.0),
    (1.0, 0, 0.8),
    (0.6, 8, 0.9),
    (2.0, 3, 0.5),
]


def _lm(cell="lstm", layers=1, tie=False, V=70, E=24, H=48, seed=0, sharpen=4.0, **cell_options):
    """An untrained model whose output layer is scaled up so that its distributions are far from uniform
    (top-k and top-p then cut real tokens, and greedy has a clear winner)."""
    torch.manual_seed(seed)
    lm = LanguageModel(
        LanguageModelConfig(
            vocab_size=V,
            embedding_dim=E,
            encoder=EncoderConfig(cell, H, num_layers=layers, cell_options=cell_options),
            tie_embeddings=tie,
        )
    ).eval()
    with torch.no_grad():
        lm.output.weight.mul_(sharpen)
    return lm


def _reference(lm, prompt, n, temperature, top_k, top_p, seed):
    cfg = DecodingConfig(
        strategy="greedy" if temperature == 0 else "sample",
        max_length=n,
        temperature=temperature or 1.0,
        top_k=top_k,
        top_p=top_p,
    )
    g = torch.Generator().manual_seed(seed)
    return lm.generate(torch.tensor([prompt]), cfg, generator=g).to_lists()[0]


MODELS = {
    "lstm": dict(cell="lstm"),
    "lstm-2-tied-proj": dict(cell="lstm", layers=2, tie=True),  # tied, E != H: a projection folded in
    "gru-2": dict(cell="gru", layers=2),
    "rnn-tanh-nobias": dict(cell="rnn", bias=False),
    "rnn-relu": dict(cell="rnn", activation="relu", sharpen=1.0),
    "lstm-odd-sizes": dict(cell="lstm", V=131, E=5, H=37),  # no size a multiple of the panel width
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fast_tokens_equal_language_model_generate(name):
    lm = _lm(**MODELS[name])
    fast = FastGenerator(lm)
    prompt = [3, 9, 4, 27, 11]
    for i, (t, k, p) in enumerate(SETTINGS):
        seed = 100 + i
        want = _reference(lm, prompt, 120, t, k, p, seed)
        got = fast.generate(prompt, 120, t, k, p, torch.Generator().manual_seed(seed))
        assert got == want, (name, t, k, p)
        slow = list(python_tokens(lm, prompt, 120, t, k, p, torch.Generator().manual_seed(seed)))
        assert slow == want, (name, t, k, p)


def test_one_token_prompt_and_chunked_tokens_equal_one_call():
    lm = _lm()
    fast = FastGenerator(lm)
    want = _reference(lm, [7], 50, 0.9, 0, 0.95, 5)
    assert fast.generate([7], 50, 0.9, 0, 0.95, torch.Generator().manual_seed(5)) == want
    # tokens() hands them out one by one, computed a few at a time; the draws continue across chunks
    chunked = list(fast.tokens([7], 50, 0.9, 0, 0.95, torch.Generator().manual_seed(5), chunk=3))
    assert chunked == want


def test_greedy_draws_nothing_from_the_generator():
    lm = _lm()
    g = torch.Generator().manual_seed(9)
    before = g.get_state()
    FastGenerator(lm).generate([1, 2], 30, 0.0, 0, 1.0, g)
    assert torch.equal(g.get_state(), before)


def test_one_step_matches_the_encoder_step_and_picks_the_argmax():
    from rnnkit.models.fastgen import _Weights

    lm = _lm(cell="lstm", layers=2, H=40)
    w = _Weights(lm)
    B = 3
    torch.manual_seed(1)
    h, c = torch.randn(2, B, 40) * 0.5, torch.randn(2, B, 40) * 0.5
    prev = torch.tensor([4, 0, 69])
    with torch.no_grad():
        log_probs, (h_ref, c_ref) = lm.step(prev, (h.clone(), c.clone()))
    hh, cc = h.clone(), c.clone()
    zeros = torch.zeros(B)
    out = w.run(hh, cc, prev.clone(), zeros.double(), zeros.long(), zeros.double() + 1, [None] * B, 1)
    torch.testing.assert_close(hh, h_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cc, c_ref, atol=1e-5, rtol=1e-5)
    assert out[:, 0].tolist() == log_probs.argmax(-1).tolist()


def test_sampled_frequencies_follow_the_filtered_distribution():
    # the fast loop's choice against the probabilities sample_tokens defines, over many one-step draws
    from rnnkit.models.decoding import filter_logits

    lm = _lm(V=12, sharpen=2.0)
    fast = FastGenerator(lm)
    with torch.no_grad():
        log_probs, _ = lm.step(torch.tensor([5]), None)
    p = filter_logits(log_probs, 0.8, 6, 0.9).softmax(-1)[0]
    g = torch.Generator().manual_seed(0)
    n = 4000
    counts = torch.zeros(12)
    for _ in range(n):
        counts[fast.generate([5], 1, 0.8, 6, 0.9, g)[0]] += 1
    assert counts[p == 0].sum() == 0  # tokens cut by top-k/top-p are never drawn
    expected = n * p
    chi2 = float((((counts - expected) ** 2) / expected.clamp_min(1e-9))[p > 0].sum())
    assert chi2 < 30.0  # 5 degrees of freedom at most: p(chi2 > 30) < 1e-4


def test_stream_batch_streams_equal_their_single_runs():
    lm = _lm(cell="gru", layers=2)
    fast = FastGenerator(lm)
    specs = {  # name: (prompt, temperature, top_k, top_p, seed, joins at step)
        "a": ([1, 2, 3], 0.8, 0, 1.0, 11, 0),
        "b": ([40], 0.0, 0, 1.0, 12, 0),
        "c": ([5, 6, 7, 8, 9, 10], 1.2, 10, 0.9, 13, 4),
        "d": ([60, 2], 0.5, 0, 0.7, 14, 9),
    }
    batch = StreamBatch(lm)
    ids, got = {}, {k: [] for k in specs}
    for step in range(40):
        for name, (prompt, t, k, p, seed, at) in specs.items():
            if at == step:
                ids[name] = batch.add(prompt, t, k, p, torch.Generator().manual_seed(seed))
        if step == 25:
            batch.remove(ids["a"])  # a leaves; the others go on undisturbed
        out = batch.step()
        for name, sid in ids.items():
            if sid in out:
                got[name].append(out[sid])
    assert len(batch) == 3 and len(got["a"]) == 25
    for name, (prompt, t, k, p, seed, _) in specs.items():
        want = fast.generate(prompt, len(got[name]), t, k, p, torch.Generator().manual_seed(seed))
        assert got[name] == want, name
        assert want == _reference(lm, prompt, len(want), t, k, p, seed)


def test_stream_batch_advance_equals_that_many_steps():
    """``advance(k)`` (what the server calls) gives each stream the tokens of ``k`` single steps, and the
    streams go on from there as if stepped one at a time."""
    lm = _lm(cell="lstm", layers=2)
    specs = [([1, 2, 3], 0.8, 0, 1.0, 21), ([40], 0.0, 0, 1.0, 22), ([5, 6], 1.1, 12, 0.85, 23)]

    def fresh():
        batch = StreamBatch(lm)
        ids = [batch.add(pr, t, k, p, torch.Generator().manual_seed(sd)) for pr, t, k, p, sd in specs]
        return batch, ids

    stepped, ids_s = fresh()
    one = {i: [] for i in ids_s}
    for _ in range(13):
        for i, tok in stepped.step().items():
            one[i].append(tok)
    advanced, ids_a = fresh()
    many = {i: [] for i in ids_a}
    for k in (5, 1, 7):  # 13 tokens in three calls of different lengths
        for i, toks in advanced.advance(k).items():
            assert len(toks) == k
            many[i].extend(toks)
    assert [one[i] for i in ids_s] == [many[i] for i in ids_a]
    for (pr, t, k, p, sd), i in zip(specs, ids_a):
        assert many[i] == _reference(lm, pr, 13, t, k, p, sd)


def test_stream_batch_rejects_unknown_ids_and_bad_settings():
    batch = StreamBatch(_lm())
    assert batch.step() == {}
    with pytest.raises(RnnkitError, match="expected the id of a stream"):
        batch.remove(3)
    with pytest.raises(RnnkitError, match="top_p"):
        batch.add([1], top_p=0.0)
    with pytest.raises(RnnkitError, match=r"prompt token ids must lie in \[0, 70\), got 70"):
        batch.add([1, 70])


def test_weights_are_read_again_after_an_in_place_update():
    lm = _lm()
    fast = FastGenerator(lm)
    fast.generate([1], 5, 0.0)
    with torch.no_grad():
        lm.encoder.cell.weight_hh.add_(0.3)
        lm.output.bias.add_(torch.linspace(0, 3, 70))
    assert fast.generate([1, 2], 60, 0.0) == _reference(lm, [1, 2], 60, 0.0, 0, 1.0, 0)


UNSUPPORTED = {
    "layer_norm": (dict(cell="lstm", layer_norm=True), "layer_norm"),
    "peephole": (dict(cell="lstm", peephole=True), "peephole"),
    "gru reset_before": (dict(cell="gru", reset_after=False), "reset_after"),
    "mingru": (dict(cell="mingru"), "MinGRU"),
    "sigmoid rnn": (dict(cell="rnn", activation="sigmoid"), "tanh or relu"),
}


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unsupported_models_fall_back_to_the_python_loop(name):
    kwargs, reason = UNSUPPORTED[name]
    lm = _lm(**kwargs)
    ok, why = fast_support(lm)
    assert not ok and reason in why
    with pytest.raises(RnnkitError, match="does not cover"):
        FastGenerator(lm)
    vocab = Vocabulary([chr(ord("a") + i) for i in range(68)])  # 70 with <pad>, <unk>
    gen = GenerateConfig(length=40, temperature=0.9, top_k=20)
    assert generation_backend(lm)[0] == "python"
    # auto falls back to the reference and gives its text; asking for the fast loop is an error
    assert generate(lm, vocab, "abc", gen) == generate(lm, vocab, "abc", gen, backend="python")
    with pytest.raises(RnnkitError, match="fast generation does not cover"):
        generate(lm, vocab, "abc", gen, backend="fast")


def test_other_devices_dtypes_and_models_are_not_covered():
    lm = _lm()
    assert not fast_support(lm.double())[0]
    assert "CPU" in fast_support(_lm().to("meta"))[1]  # stands in for CUDA: any non-CPU device
    zoned = LanguageModel(
        LanguageModelConfig(vocab_size=9, embedding_dim=4, encoder=EncoderConfig(zoneout=0.1))
    )
    assert "zoneout" in fast_support(zoned)[1]
    with_eos = LanguageModel(LanguageModelConfig(vocab_size=9, embedding_dim=4, eos_id=3))
    assert "eos_id" in fast_support(with_eos)[1]
    assert not fast_support(torch.nn.Linear(2, 2))[0]
    with pytest.raises(RnnkitError, match="unknown generation backend"):
        generation_backend(lm, "turbo")


@pytest.mark.parametrize("level", ["char", "word"])
def test_textgen_stream_pieces_join_to_generate(level):
    words = ["the", "cat", "sat", "on", "mat", ".", "a", "dog"]
    tokens = words if level == "word" else list("abcdefgh ")
    vocab = Vocabulary(tokens, level=level)
    lm = _lm(V=len(vocab), sharpen=1.0)
    gen = GenerateConfig(length=60, temperature=1.0, seed=3)
    for prompt in ("", "the cat" if level == "word" else "abc"):
        text = generate(lm, vocab, prompt, gen, backend="python")
        assert generate(lm, vocab, prompt, gen) == text  # auto: the fast loop
        for backend in ("auto", "python"):
            pieces = list(stream(lm, vocab, prompt, gen, backend=backend))
            assert "".join(pieces) == text
            assert all(pieces)  # <pad> samples give no empty pieces
        assert len(pieces) <= gen.length


def test_text_generator_run_uses_the_fast_loop(tmp_path, capsys):
    from rnnkit.apps.textgen import TextGenerator
    from rnnkit.apps.textgen.train import train as train_textgen

    data = tmp_path / "t.txt"
    data.write_text("the quick brown fox jumps over the lazy dog. " * 200)
    cfg = TextGenConfig(
        data=str(data),
        runs_dir=str(tmp_path),
        name="tiny",
        hidden_size=32,
        embedding_dim=8,
        batch_size=4,
        tbptt_k1=10,
        tbptt_k2=10,
        max_steps=3,
        validate_every=3,
        eval_tokens=200,
        sample_length=0,
        baselines=False,
        progress=False,
    )
    train_textgen(cfg, say=lambda s: None)
    run = TextGenerator(tmp_path / "tiny")
    assert run.generation_backend[0] == "fast"
    gen = GenerateConfig(length=80, temperature=0.8, top_p=0.9, num_samples=2, seed=4)
    texts = run.generate("the ", gen)
    assert texts == run.generate("the ", gen, backend="python")
    assert texts[0] != texts[1]  # each sample has its own seeded stream
    assert "".join(run.stream("the ", gen)) == texts[0]
    # `rnnkit generate` goes through TextGenerator.generate, hence the fast loop, and prints the same text
    from rnnkit.cli import main

    args = ["--length", "80", "--temperature", "0.8", "--top-p", "0.9", "--num-samples", "2", "--seed", "4"]
    assert main(["generate", str(tmp_path / "tiny"), "the ", *args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["results"][0]["samples"] == texts
