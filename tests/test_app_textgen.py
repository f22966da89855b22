"""The text-generation app: its baselines on the same scored tokens, the learning-rate schedule, the held-out
texts, and next-word suggestions with carried state (checked against a full forward pass)."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch

from rnnkit._errors import RnnkitError
from rnnkit.apps import load_run
from rnnkit.apps.textgen import TextGenConfig, scored_positions, streams, token_nats
from rnnkit.apps.textgen import train as train_textgen
from rnnkit.apps.textgen.train import WarmupCosine
from rnnkit.cli import main


def _memory_text(seed: int = 0, lines: int = 4000, gap: int = 5) -> str:
    """Lines ``K d1..d5 K``: the closing letter repeats the opening one, ``gap + 1`` characters back.

    A model that remembers the first letter pays ``log2(4) + 5`` bits a line (binary digits); one that sees
    fewer than ``gap + 1`` characters pays ``log2(4)`` bits more for the closing letter.
    """
    rng = random.Random(seed)
    out = []
    for _ in range(lines):
        k = rng.choice("abcd")
        out.append(k + "".join(rng.choice("01") for _ in range(gap)) + k + "\n")
    return "".join(out)


def test_scored_positions_match_the_streams_targets():
    from rnnkit.apps.textgen.data import stream_count

    for n, num, count in ((20_003, 1, 1), (20_003, 7, 7), (20_003, 16, 16), (1_003, 16, 2)):
        ids = torch.arange(n)
        assert stream_count(n, num) == count  # each stream at least 500 tokens
        _, y = streams(ids, count)
        pos = scored_positions(len(ids), num)
        assert torch.equal(ids[torch.as_tensor(pos)], y.reshape(-1))


def test_warmup_cosine_is_torch_cosine_annealing_after_warmup():
    lr, total, ratio = 0.01, 50, 0.1
    p1 = [torch.nn.Parameter(torch.zeros(1))]
    p2 = [torch.nn.Parameter(torch.zeros(1))]
    o1, o2 = torch.optim.SGD(p1, lr=lr), torch.optim.SGD(p2, lr=lr)
    ours = torch.optim.lr_scheduler.LambdaLR(o1, WarmupCosine(total, 0, ratio))
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(o2, T_max=total, eta_min=lr * ratio)
    for _ in range(total):
        assert o1.param_groups[0]["lr"] == pytest.approx(o2.param_groups[0]["lr"], rel=1e-9, abs=1e-12)
        o1.step(), o2.step(), ours.step(), ref.step()
    warm = WarmupCosine(total, 10, ratio)
    assert [warm(s) for s in range(3)] == pytest.approx(
        [0.1 * WarmupCosine(total, 0, ratio)(s) * (s + 1) for s in range(3)]
    )


def test_lr_schedule_picks_the_trainers_scheduler(tmp_path):
    """plateau (the default) halves the rate after a validation without a lower score; constant keeps it;
    cosine is WarmupCosine; a named torch scheduler wins over all three."""
    from rnnkit.apps.textgen.model import build_model
    from rnnkit.apps.textgen.train import _trainer

    def trainer(**kw):
        cfg = TextGenConfig(runs_dir=str(tmp_path), progress=False, hidden_size=4, embedding_dim=4, **kw)
        model = build_model(cfg, 10)
        return _trainer(model, cfg, tmp_path / "run", total_updates=100, grad_monitor_every=10, epochs=1)

    t = trainer()
    assert isinstance(t.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau) and t.scheduler.factor == 0.5
    lr = t.optimizer.param_groups[0]["lr"]
    t.scheduler.step(1.0)
    t.scheduler.step(1.0)  # no lower validation score: halved (patience 0)
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(lr / 2)
    assert trainer(lr_schedule="constant").scheduler is None
    assert trainer(lr_schedule="constant", lr_decay=0.5).scheduler is None
    cos = trainer(lr_schedule="cosine").scheduler
    assert isinstance(cos, torch.optim.lr_scheduler.LambdaLR) and isinstance(cos.lr_lambdas[0], WarmupCosine)
    named = trainer(scheduler="steplr", scheduler_options={"step_size": 3})
    assert isinstance(named.scheduler, torch.optim.lr_scheduler.StepLR)


def test_auto_epochs_give_a_short_text_enough_updates(tmp_path):
    """``--epochs 0`` (the default) trains one pass over a long text and enough passes over a short one to make
    MIN_UPDATES steps (one pass over 70,000 characters is about 40 updates); a number given is kept; the
    trainer gets the passes, not the 0."""
    from rnnkit.apps.textgen.model import build_model
    from rnnkit.apps.textgen.train import MIN_UPDATES, _trainer, training_passes

    assert TextGenConfig().epochs == 0
    assert (
        training_passes(0, 41) == math.ceil(MIN_UPDATES / 41) and training_passes(0, 41) * 41 >= MIN_UPDATES
    )
    assert training_passes(0, MIN_UPDATES) == 1 and training_passes(0, 5 * MIN_UPDATES) == 1
    assert training_passes(0, MIN_UPDATES - 1) == 2
    assert training_passes(3, 41) == 3 and training_passes(1, 10) == 1
    cfg = TextGenConfig(runs_dir=str(tmp_path), progress=False, hidden_size=4, embedding_dim=4)
    t = _trainer(
        build_model(cfg, 10), cfg, tmp_path / "run", total_updates=100, grad_monitor_every=10, epochs=7
    )
    assert t.config.epochs == 7


def test_recurrence_beats_the_baselines_on_a_long_range_text(tmp_path):
    data = tmp_path / "memory.txt"
    data.write_text(_memory_text())
    cfg = TextGenConfig(
        data=str(data),
        runs_dir=str(tmp_path),
        name="mem",
        hidden_size=64,
        embedding_dim=16,
        batch_size=16,
        tbptt_k1=40,
        tbptt_k2=40,
        lr=1e-2,
        max_steps=300,
        epochs=20,
        validate_every=100,
        eval_tokens=0,
        sample_length=0,
        ngram_max_order=4,  # sees 3 characters back, fewer than the 7 to the opening letter
        ff_context=4,
        ff_epochs=2,
        progress=False,
    )
    result = train_textgen(cfg, say=lambda s: None)
    m = result.metrics
    b = {k: v["bpc"] for k, v in m["baselines"].items()}
    remember = (math.log2(4) + 5) / 8  # the best possible, per character
    forget = remember + math.log2(4) / 8
    # the baselines cannot see the opening letter; the LSTM learns to keep it
    assert min(b["kneser_ney"], b["feedforward"]) > forget - 0.03
    assert m["test"]["bpc"] < forget - 0.1
    assert b["unigram"] > forget + 0.3
    # `evaluate` scores the saved network, n-gram and feed-forward counterpart on the same characters again
    ev = load_run(result.run).evaluate()
    assert ev["bpc"] == pytest.approx(m["test"]["bpc"], rel=1e-6)
    assert ev["kneser_ney"] == pytest.approx(b["kneser_ney"], rel=1e-9)
    assert ev["feedforward"] == pytest.approx(b["feedforward"], rel=1e-6)
    # a short file is read as one stream from its start, as `score` reads it: 16 streams each starting from
    # a zero state charged the network for every stream's start, next to an n-gram that sees the text before
    short = tmp_path / "short.txt"
    short.write_text(_memory_text()[:400])
    gen = load_run(result.run)
    text = short.read_text().rstrip("\n")
    assert gen.evaluate(str(short))["bpc"] == pytest.approx(gen.score([text])[0]["bits_per_token"], abs=0.02)
    from rnnkit.apps.textgen.data import stream_count

    assert (stream_count(400), stream_count(2_000), stream_count(100_001)) == (1, 3, 16)
    row = result.rows[0]
    assert row.baseline == min(b, key=b.get) and row.baselines == pytest.approx(b)
    assert row.met == (m["test"]["bpc"] < row.baseline_value) and row.met
    # the Kneser-Ney order was chosen on the validation part
    scores = m["baseline_details"]["kneser_ney"]["validation_bits_by_order"]
    assert m["baseline_details"]["kneser_ney"]["order"] == int(min(scores, key=scores.get))


def _words_text() -> str:
    rng = random.Random(1)
    subjects, verbs, objects = (
        ["the cat", "the dog", "a bird"],
        ["sat on", "ran to", "looked at"],
        ["the mat", "the log"],
    )
    return " ".join(
        f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} ." for _ in range(1500)
    )


@pytest.fixture(scope="module", params=["full", "adaptive"])
def word_run(tmp_path_factory, request):
    """A word-level run with each output layer (the vocabulary is small: ``auto`` would pick the full one)."""
    tmp = tmp_path_factory.mktemp("words")
    data = tmp / "words.txt"
    data.write_text(_words_text())
    cfg = TextGenConfig(
        data=str(data),
        level="word",
        runs_dir=str(tmp),
        name="words",
        hidden_size=32,
        embedding_dim=16,
        batch_size=8,
        tbptt_k1=20,
        tbptt_k2=20,
        lr=1e-2,
        max_steps=150,
        epochs=20,
        validate_every=50,
        eval_tokens=0,
        sample_length=0,
        ff_epochs=1,
        progress=False,
        softmax=request.param,
    )
    return train_textgen(cfg, say=lambda s: None)


def test_word_level_reports_bits_per_word_and_next_word_accuracy(word_run):
    m = word_run.metrics
    assert m["unit"] == "bits per word" and "bpc" not in m["test"] and word_run.rows[0].metric == "bits/word"
    # the honest conversion to characters: bits per word x words / characters of the test part
    assert m["test"]["bits_per_char_equivalent"] == pytest.approx(
        m["test"]["bits_per_word"] / m["chars_per_token"]
    )
    assert m["chars_per_token"] > 2
    nw = m["next_word"]
    # after "the" the next word is one of a few: a learnt model and the n-gram both guess well
    assert nw["rnnkit"]["top5"] > 0.8 and nw["kneser_ney"]["top5"] > 0.8
    assert nw["rnnkit"]["perplexity"] == pytest.approx(2 ** m["test"]["bits_per_word"])


def test_next_word_stream_carries_state_like_one_forward_pass(word_run):
    gen = load_run(word_run.run)
    text = "the cat sat on the mat . the dog ran to"
    pieces = ["the cat sat", " on the mat .", " the dog", " ran to "]
    s = gen.next_words(mixture=False)  # the network alone (the mixture: test_ngram_mixture_...)
    for p in pieces:
        s.feed(p)
    got = s.suggest(3)
    ids = [gen.vocab.token_to_id(".")] + gen.vocab.encode(text)
    with torch.no_grad():
        logits, _ = gen.model(torch.tensor([ids]))
    p = logits[0, -1].softmax(-1)
    p[gen.vocab.unk_id] = 0
    p[0] = 0
    ref = p.topk(3)
    assert [w for w, _ in got] == [gen.vocab.id_to_token(int(i)) for i in ref.indices]
    assert [v for _, v in got] == pytest.approx(ref.values.tolist(), rel=1e-5)
    assert s.words_read == len(gen.vocab.encode(text))  # each word read once
    # a word still being typed is completed from the same distribution, renormalised over its prefix
    s.feed("the l")
    got = dict(s.suggest(5))
    ids += gen.vocab.encode("the")
    with torch.no_grad():
        p = gen.model(torch.tensor([ids]))[0][0, -1].softmax(-1)
    ref = {w: float(p[gen.vocab.token_to_id(w)]) for w in ("log", "looked")}  # the words starting with "l"
    assert got == pytest.approx({w: v / sum(ref.values()) for w, v in ref.items()}, rel=1e-5)


def test_ngram_mixture_of_a_word_run(word_run):
    """The network + n-gram mixture: its share is the validation's best, the saved run refits the same
    n-gram and scores the same bits, its ranks reduce to the network's (share 1) and the n-gram's (share 0)
    at the same positions, and the stream's suggestions are the mixture computed here by hand."""
    from rnnkit.apps.textgen.baselines import kneser_ney_ranks
    from rnnkit.apps.textgen.data import held_out, load_text, split_text
    from rnnkit.apps.textgen.mixture import MIX_WEIGHTS, mixture_next_ranks
    from rnnkit.apps.textgen.model import next_word_hits

    m = word_run.metrics
    mix = m["mixture"]
    by = mix["validation_bits_by_weight"]
    assert mix["weight"] in MIX_WEIGHTS and by[mix["weight"]] == min(by.values())
    assert m["test"]["mixture"] == mix["bits_per_word"] and word_run.rows[1].value == mix["bits_per_word"]
    gen = load_run(word_run.run)
    assert gen.mixture.weight == mix["weight"] and gen.mixture.lm.order == mix["ngram_order"]
    ev = gen.evaluate()
    assert ev["mixture"] == pytest.approx(mix["bits_per_word"], rel=1e-9)
    assert ev["kneser_ney"] == pytest.approx(m["baselines"]["kneser_ney"]["bits_per_word"], rel=1e-9)
    assert ev["feedforward"] == pytest.approx(m["baselines"]["feedforward"]["bits_per_word"], rel=1e-6)
    # the refitted n-gram is the baseline: alone (share 0) it scores the baseline's bits on the same words
    cfg = gen.config
    part, ids = held_out(split_text(load_text(cfg), cfg)[2], cfg.eval_tokens, gen.vocab)
    words = [gen.vocab.id_to_token(int(i)) for i in ids]
    kn_bits = -gen.mixture.lm.log2_probs(words)[scored_positions(len(words))].mean()
    assert kn_bits == pytest.approx(m["baselines"]["kneser_ney"]["bits_per_word"], rel=1e-9)
    never = [gen.vocab.unk_id, 0]
    both = mixture_next_ranks(gen.model, gen.mixture, ids, words, never, 300, [1.0, 0.0])
    np.testing.assert_array_equal(both[0], next_word_hits(gen.model, ids, never)[:300])
    kn_ranks = kneser_ney_ranks(gen.mixture.lm, words, scored_positions(len(words))[:300])
    np.testing.assert_array_equal(both[1], kn_ranks)
    # suggestions use the share with the most top-5 hits on validation; the test part is scored with it
    top5 = mix["validation_top5_by_weight"]
    assert gen.mixture.suggest_weight == mix["suggest_weight"]
    assert top5[mix["suggest_weight"]] == max(top5.values())
    assert m["next_word"]["mixture"]["share"] == mix["suggest_weight"]
    # suggestions: w * p_net + (1 - w) * p_KN(last order-1 words), by hand
    text = "the cat sat on the mat . the dog ran to"
    s = gen.next_words()
    s.feed(text + " ")
    got = dict(s.suggest(len(gen.vocab)))
    ids_in = [gen.vocab.token_to_id(".")] + gen.vocab.encode(text)
    with torch.no_grad():
        p_net = gen.model(torch.tensor([ids_in]))[0][0, -1].double().softmax(-1).numpy()
    lm, w = gen.mixture.lm, gen.mixture.suggest_weight
    ctx = ["."] + text.split()
    p_kn = lm.next_distribution(ctx[len(ctx) - (lm.order - 1) :] if lm.order > 1 else [])
    ref = {}
    for i, unit in enumerate(lm.vocab):
        if unit in gen.vocab and gen.vocab.token_to_id(unit) != gen.vocab.unk_id:
            ref[unit] = w * p_net[gen.vocab.token_to_id(unit)] + (1 - w) * p_kn[i]
    assert got == pytest.approx({u: v for u, v in ref.items() if v > 0}, rel=1e-5, abs=1e-9)


def test_mixture_weights_and_saved_ngram(tmp_path):
    """mix_log2 is log2 of the interpolated probabilities; choose_weight takes the validation's best share;
    the saved n-gram round-trips, and a damaged file is one clear error."""
    from rnnkit.apps.textgen.mixture import (
        NgramMixture,
        choose_suggest_weight,
        choose_weight,
        mix_log2,
    )
    from rnnkit.baselines import KneserNeyLM
    from rnnkit.datasets import Vocabulary

    rng = np.random.default_rng(0)
    p_net, p_kn = rng.uniform(0.01, 1, 50), rng.uniform(0.01, 1, 50)
    np.testing.assert_allclose(
        mix_log2(np.log2(p_net), np.log2(p_kn), 0.3), np.log2(0.3 * p_net + 0.7 * p_kn)
    )
    w, bits = choose_weight(np.log2(p_net), np.log2(p_kn), weights=(0.0, 0.25, 0.5, 0.75, 1.0))
    assert bits[w] == min(bits.values()) and bits[1.0] == pytest.approx(-np.log2(p_net).mean())
    # a network that is always right at one token and the n-gram at another: both are needed
    net = np.log2(np.array([0.9, 0.01] * 20))
    kn = np.log2(np.array([0.01, 0.9] * 20))
    assert 0 < choose_weight(net, kn)[0] < 1
    with pytest.raises(RnnkitError, match="share"):
        mix_log2(net, kn, 1.5)
    # suggestions: most top-5 hits, then most top-1 hits, then the larger share
    ranks = np.array([[0, 5, 5, 4], [1, 1, 5, 4], [0, 1, 5, 4], [0, 1, 5, 4]])
    assert choose_suggest_weight(ranks, weights=(0.0, 0.5, 0.75, 1.0))[0] == 1.0
    assert choose_suggest_weight(ranks[:3], weights=(0.0, 0.5, 0.75))[0] == 0.75
    words = ("a b c a b d a b c " * 30).split()
    vocab = Vocabulary.build([" ".join(words)], level="word")
    lm = KneserNeyLM(max_order=3).fit(words)
    digest = NgramMixture(lm, 0.4, vocab, suggest_weight=0.3).save(tmp_path / "n.safetensors", words)
    back = NgramMixture.load(tmp_path / "n.safetensors", vocab, digest)
    with pytest.raises(RnnkitError, match="damaged n-gram file.*sha256"):
        NgramMixture.load(tmp_path / "n.safetensors", vocab, "0" * 64)
    assert (back.weight, back.suggest_weight, back.lm.order) == (0.4, 0.3, 3)
    np.testing.assert_allclose(
        back.ngram_probs(["a", "b"]), NgramMixture(lm, 0.4, vocab).ngram_probs(["a", "b"])
    )
    assert back.ngram_probs(["a", "b"]).sum() == pytest.approx(1.0)
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(RnnkitError, match="damaged n-gram file"):
        NgramMixture.load(tmp_path / "bad.safetensors", vocab)
    # characters: bytes that are not UTF-8 are one clear error too
    chars = Vocabulary.build(["abc"], level="char")
    char_lm = KneserNeyLM(max_order=2).fit("abcabc")
    NgramMixture(char_lm, 0.5, chars).save(tmp_path / "c.safetensors", "abcabc")
    assert NgramMixture.load(tmp_path / "c.safetensors", chars).lm.vocab == char_lm.vocab
    from rnnkit.files import read_safetensors, write_safetensors

    tensors, meta = read_safetensors(tmp_path / "c.safetensors")
    write_safetensors(
        tmp_path / "c.safetensors", {"tokens": torch.tensor([0xFF, 0xFE], dtype=torch.uint8)}, meta
    )
    with pytest.raises(RnnkitError, match="damaged n-gram file"):
        NgramMixture.load(tmp_path / "c.safetensors", chars)


def test_a_run_checks_its_saved_ngram(word_run, tmp_path):
    """The run records the n-gram file's sha256 (ngram.json); a file changed after training, even a readable
    one, is refused with one line, and so is a damaged ngram.json."""
    import shutil

    from rnnkit.apps.textgen.mixture import NGRAM_FILE, NGRAM_INFO
    from rnnkit.files import read_safetensors, sha256_file, write_safetensors

    run = tmp_path / "copy"
    shutil.copytree(word_run.run, run)
    assert json.loads((run / NGRAM_INFO).read_text())["sha256"] == sha256_file(run / NGRAM_FILE)
    assert load_run(run).mixture is not None
    tensors, meta = read_safetensors(run / NGRAM_FILE)
    write_safetensors(run / NGRAM_FILE, {"tokens": tensors["tokens"].flip(0)}, meta)  # other text, readable
    with pytest.raises(RnnkitError, match="damaged n-gram file"):
        _ = load_run(run).mixture
    (run / NGRAM_INFO).write_text("{")
    with pytest.raises(RnnkitError, match=NGRAM_INFO):
        _ = load_run(run).mixture


def test_predict_next_cli(word_run, capsys):
    rc = main(["predict", str(word_run.run), "the cat sat on", "the", "--next", "2", "--json"])
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rc == 0 and len(out) == 2
    assert out[1]["text"] == "the cat sat on the "
    probs = [s["probability"] for s in out[1]["next"]]
    assert {s["word"] for s in out[1]["next"]} == {"mat", "log"} and probs == sorted(probs, reverse=True)


def test_next_words_needs_a_word_run(tmp_path, capsys):
    data = tmp_path / "t.txt"
    data.write_text("abc abd abe " * 200)
    cfg = TextGenConfig(
        data=str(data),
        runs_dir=str(tmp_path),
        name="c",
        hidden_size=8,
        max_steps=2,
        sample_length=0,
        baselines=False,
        progress=False,
        batch_size=4,
    )
    run = train_textgen(cfg, say=lambda s: None).run
    rc = main(["predict", str(run), "ab", "--next", "3"])
    err = capsys.readouterr().err
    assert rc == 2 and "word-level run" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_held_out_texts_by_name():
    from rnnkit.apps.textgen import HELD_OUT_TEXTS, load_text
    from rnnkit.datasets.extra import load_extra

    assert set(HELD_OUT_TEXTS) == {"kjv", "reina_valera", "fortunes"}
    with pytest.raises(RnnkitError, match="--books"):
        load_text(TextGenConfig(data="kjv", books=["emma"]))
    expected = load_extra("fortunes")  # fetched once into the cache (a small Debian package)
    assert load_text(TextGenConfig(data="fortunes")) == expected


def test_token_nats_positions_match_the_ngram_scores():
    """The baselines are scored where the model is: the same positions give the same unigram bits."""
    rng = np.random.default_rng(0)
    ids = torch.as_tensor(rng.integers(0, 5, 401))
    model = torch.nn.Module()
    vocab = 5

    def forward(x, state=None):  # a fixed distribution: p(k) = (k + 1) / 15
        logp = torch.log(torch.arange(1, vocab + 1, dtype=torch.float) / 15)
        return logp.expand(*x.shape, vocab).clone(), state

    model.forward = forward
    nats = token_nats(model, ids)
    pos = scored_positions(len(ids))
    ref = -np.log((ids.numpy()[pos] + 1) / 15)
    np.testing.assert_allclose(nats, ref, rtol=1e-6)


def test_word_run_generates_and_scores_with_its_output_layer(word_run):
    from rnnkit.apps.textgen import GenerateConfig

    gen = load_run(word_run.run)
    adaptive = gen.config.softmax == "adaptive"
    assert gen.model.adaptive == adaptive
    name, reason = gen.generation_backend
    if adaptive:  # the compiled loop has a full softmax only: the Python loop runs, and says why
        assert name == "python" and "adaptive" in reason
        with pytest.raises(RnnkitError, match="adaptive"):
            gen.generate("the cat", GenerateConfig(length=5), backend="fast")
    words = gen.generate("the cat", GenerateConfig(length=12, temperature=0.5))[0].split()
    assert len(words) == 12 and all(w in gen.vocab for w in words)
    # the saved run scores its held-out part as training did
    assert gen.evaluate()["bits_per_word"] == pytest.approx(
        word_run.metrics["test"]["bits_per_word"], rel=1e-6
    )


def test_softmax_auto_is_adaptive_for_large_word_vocabularies_only():
    from rnnkit.apps.textgen.model import ADAPTIVE_FROM, build_model, softmax_kind
    from rnnkit.config import validate_config

    char, word = TextGenConfig(), TextGenConfig(level="word")
    assert softmax_kind(char, 5000) == "full"  # characters (the demo) keep the full softmax
    assert softmax_kind(word, ADAPTIVE_FROM - 1) == "full" and softmax_kind(word, ADAPTIVE_FROM) == "adaptive"
    # tied to the embedding the adaptive softmax scores its clusters with the embedding's rows (since 3 Dec;
    # before, auto gave a tied model the full softmax and refused adaptive)
    tied = TextGenConfig(level="word", tie_weights=True)
    validate_config(tied)
    assert (
        softmax_kind(tied, 9000) == "adaptive"
        and softmax_kind(TextGenConfig(tie_weights=True), 9000) == "full"
    )
    model = build_model(tied, 9000)
    assert model.output.weight is model.embedding.weight and model.proj.out_features == tied.embedding_dim


def test_word_level_takes_its_own_defaults_unless_set(tmp_path):
    """``--level word`` alone trains the measured word configuration (``LEVEL_DEFAULTS``), not the character
    model's settings; a value given (as an argument, a flag or in a TOML file) is kept, whatever the level."""
    import argparse

    from rnnkit.apps.textgen.config import LEVEL_DEFAULTS
    from rnnkit.config import add_config_arguments, config_from_args, config_from_dict, config_to_dict

    names = sorted(LEVEL_DEFAULTS["word"])
    assert sorted(LEVEL_DEFAULTS["char"]) == names
    assert any(LEVEL_DEFAULTS["char"][k] != LEVEL_DEFAULTS["word"][k] for k in names)
    as_set = lambda cfg: {k: getattr(cfg, k) for k in names}  # noqa: E731
    assert as_set(TextGenConfig()) == LEVEL_DEFAULTS["char"]
    assert as_set(TextGenConfig(level="word")) == LEVEL_DEFAULTS["word"]
    assert TextGenConfig(level="word", lr=0.002, min_freq=1).lr == 0.002
    assert TextGenConfig(level="word", lr=0.002, min_freq=1).min_freq == 1
    assert TextGenConfig(level="word", dropout=0.0).dropout == 0.0  # a zero given is a value, not "unset"

    parser = argparse.ArgumentParser()
    add_config_arguments(parser, TextGenConfig)
    flags = lambda *argv, toml=None: config_from_args(TextGenConfig, parser.parse_args(list(argv)), toml)  # noqa: E731
    assert as_set(flags("--level", "word")) == LEVEL_DEFAULTS["word"]
    assert flags("--level", "word", "--optimizer", "adam").optimizer == "adam"
    assert (
        flags("--level", "word", "--optimizer", "adam").weight_decay == LEVEL_DEFAULTS["word"]["weight_decay"]
    )
    toml = tmp_path / "word.toml"
    toml.write_text('level = "word"\nlr = 0.02\n')
    from_file = flags(toml=str(toml))
    assert from_file.lr == 0.02 and from_file.min_freq == LEVEL_DEFAULTS["word"]["min_freq"]
    # a flag changes the level the file asked for: the unset settings follow the flag, the file's lr stays
    back_to_chars = flags("--level", "char", toml=str(toml))
    assert back_to_chars.lr == 0.02 and back_to_chars.embedding_dim == LEVEL_DEFAULTS["char"]["embedding_dim"]
    # a run's config.json holds the values, so reading it back changes nothing
    saved = config_to_dict(flags("--level", "word"))
    assert config_to_dict(config_from_dict(TextGenConfig, saved)) == saved


def test_training_stops_after_ten_validations_without_a_lower_score(tmp_path):
    """The default patience (10): on a text with nothing to learn beyond its letters' frequencies (random
    letters), the passes stop ten validations in a row after the best one (whose weights the trainer keeps);
    metrics.json says why training stopped."""
    data = tmp_path / "small.txt"
    rng = random.Random(0)
    data.write_text("".join(rng.choice("abcdefgh ") for _ in range(3000)))
    cfg = TextGenConfig(
        data=str(data),
        runs_dir=str(tmp_path),
        name="small",
        hidden_size=64,
        embedding_dim=16,
        lr=0.02,
        epochs=300,
        validate_every=0,  # once per pass
        eval_tokens=0,
        sample_length=0,
        baselines=False,
        progress=False,
    )
    assert TextGenConfig().early_stopping == 10 == cfg.early_stopping
    result = train_textgen(cfg, say=lambda s: None)
    m = result.metrics
    history = [row["val_loss"] for row in m["history"]]
    best = history.index(min(history))
    assert m["stop_reason"] == "early_stopping" and len(history) < 300
    assert len(history) == best + 11 and all(v >= history[best] for v in history[best + 1 :])
