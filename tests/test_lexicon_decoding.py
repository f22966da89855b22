"""CTC decoding: prefix beam search (rnnkit.models.ctc), with a lexicon and a word n-gram language model
(rnnkit.models.lexicon).

The reference is exhaustive: every frame-level path of a tiny output is enumerated, its labelling's CTC
probability summed, and the best text (any, or lexicon texts under the shallow-fusion score) picked by
brute force.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from rnnkit._errors import RnnkitError
from rnnkit.baselines.ngram import KneserNeyLM
from rnnkit.models import Lexicon, WordNgramLM, ctc_prefix_beam_search, lexicon_beam_search

ALPHABET = " ab"
WORDS = ["a", "ab", "bb", "b"]


def _labelling_log_probs(lp: torch.Tensor) -> dict[tuple[int, ...], float]:
    """log p(labelling) for every labelling reachable by a path through ``lp`` (T, C), by enumeration."""
    T, C = lp.shape
    p = lp.double().exp()
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(C), repeat=T):
        prob = math.prod(float(p[t, c]) for t, c in enumerate(path))
        lab, prev = [], None
        for c in path:
            if c != prev and c != 0:
                lab.append(c)
            prev = c
        totals[tuple(lab)] = totals.get(tuple(lab), 0.0) + prob
    return {k: math.log(v) for k, v in totals.items() if v > 0}


def _text(labels) -> str:
    return "".join(ALPHABET[k - 1] for k in labels)


def _valid(text: str) -> bool:
    return text == "" or all(w in WORDS for w in text.split(" "))


def _naive_lm_log_prob(lm_sentences, order, words) -> float:
    """log p(w_1..w_n </s>) straight from KneserNeyLM on the same stream (no caching, no context cut)."""
    stream = [w for s in lm_sentences for w in (*s.split(), "</s>")]
    kn = KneserNeyLM(max_order=order).fit(stream)
    total, history = 0.0, ["</s>"]
    for w in [*words, "</s>"]:
        dist = kn.next_distribution(history)
        total += math.log(dist[kn.vocab.index(w) if w in kn.vocab else 0])
        history.append(w)
    return total


@pytest.mark.parametrize("seed", range(6))
def test_prefix_beam_search_finds_the_most_probable_labelling(seed):
    g = torch.Generator().manual_seed(seed)
    lp = (torch.randn(5, 3, generator=g) * 1.5).log_softmax(-1)
    totals = _labelling_log_probs(lp)
    want = max(totals, key=totals.get)
    got, logp = ctc_prefix_beam_search(lp, beam_size=64, prune=-1e9)
    assert got == list(want)
    assert logp == pytest.approx(totals[want], abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_lexicon_beam_search_finds_the_most_probable_lexicon_text(seed):
    words = ["a", "ab", "bb"]
    lex = Lexicon(words, ALPHABET)
    g = torch.Generator().manual_seed(seed)
    lp = (torch.randn(6, 4, generator=g) * 1.5).log_softmax(-1)
    totals = _labelling_log_probs(lp)
    ok = [k for k in totals if _text(k) == "" or all(w in words for w in _text(k).split(" "))]
    got, _ = lexicon_beam_search(lp, lex, beam_size=256, prune=-1e9)
    assert got == list(max(ok, key=totals.get))


LM_TEXTS = ["ab b", "ab b", "a bb", "b a", "ab ab b"]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("weights", [(0.0, 0.0), (1.0, 0.0), (2.0, 1.5)])
def test_lm_beam_search_finds_the_best_fused_score(seed, weights):
    alpha, beta = weights
    lex = Lexicon(WORDS, ALPHABET)
    lm = WordNgramLM(LM_TEXTS, order=2)
    g = torch.Generator().manual_seed(seed)
    lp = (torch.randn(6, 4, generator=g) * 1.5).log_softmax(-1)
    ctc = _labelling_log_probs(lp)

    def fused(labels) -> float:
        words = _text(labels).split()
        return ctc[labels] + alpha * _naive_lm_log_prob(LM_TEXTS, 2, words) + beta * len(words)

    best = max((k for k in ctc if _valid(_text(k))), key=fused)
    got, score = lexicon_beam_search(
        lp, lex, beam_size=5000, prune=-1e9, lm=lm, lm_weight=alpha, word_bonus=beta
    )
    assert got == list(best)
    assert score == pytest.approx(fused(best), abs=1e-9)


def test_without_lm_the_score_is_the_ctc_log_probability():
    lex = Lexicon(WORDS, ALPHABET)
    lp = (torch.randn(6, 4, generator=torch.Generator().manual_seed(7)) * 1.5).log_softmax(-1)
    got, score = lexicon_beam_search(lp, lex, beam_size=5000, prune=-1e9)
    assert score == pytest.approx(_labelling_log_probs(lp)[tuple(got)], abs=1e-9)


def test_the_lm_picks_the_word_the_sounds_leave_open():
    # "turn on" vs "turn an": the frames of the second word say o and a equally; the LM knows "turn on".
    alphabet = " anortu"
    lex = Lexicon(["turn", "on", "an"], alphabet)
    lm = WordNgramLM(["turn on", "turn on the", "an apple"], order=2)
    idx = {c: i + 1 for i, c in enumerate(alphabet)}
    frames = []
    for ch in "turn ":
        frames.append({idx[ch]: 0.97})
    frames.append({idx["a"]: 0.49, idx["o"]: 0.48})
    frames.append({idx["n"]: 0.97})
    lp = torch.full((len(frames), len(alphabet) + 1), 1e-3)
    for t, f in enumerate(frames):
        for c, v in f.items():
            lp[t, c] = v
    lp = (lp / lp.sum(1, keepdim=True)).log()
    plain, _ = lexicon_beam_search(lp, lex, beam_size=16)
    fused, _ = lexicon_beam_search(lp, lex, beam_size=16, lm=lm, lm_weight=1.0)
    assert "".join(alphabet[k - 1] for k in plain) == "turn an"
    assert "".join(alphabet[k - 1] for k in fused) == "turn on"


def test_word_lm_is_a_distribution_over_the_next_word():
    lm = WordNgramLM(["turn on the lights", "turn off the fan", "open the door"], order=3)
    for history in [(), ("turn",), ("turn", "off"), ("unknown", "words")]:
        dist = np.exp(lm._distribution(history))
        assert dist.sum() == pytest.approx(1.0, abs=1e-9)
    # seen sentences are more probable than the same words shuffled
    assert lm.sentence_log_prob("turn on the lights".split()) > lm.sentence_log_prob(
        "lights the on turn".split()
    )
    assert lm.sentence_log_prob(["turn", "on", "the", "fan"]) == pytest.approx(
        _naive_lm_log_prob(
            ["turn on the lights", "turn off the fan", "open the door"], 3, ["turn", "on", "the", "fan"]
        )
    )


def test_bad_arguments_are_one_line():
    with pytest.raises(RnnkitError, match="at least 2 words"):
        WordNgramLM([""], order=2)
    with pytest.raises(RnnkitError, match="order"):
        WordNgramLM(["a b"], order=0)
    with pytest.raises(RnnkitError, match=r"expected \(T, C\)"):
        lexicon_beam_search(torch.zeros(2, 3, 4), Lexicon(["a"], " a"))


def test_the_lm_keeps_a_bounded_cache_of_recent_contexts(monkeypatch):
    """The cached distributions stay within LM_CACHE_BYTES (the least recently used go first) and the
    scores are those of the uncached model."""
    from rnnkit.models import lexicon as lexicon_module

    texts = [f"w{i} w{(i * 7) % 50} w{(i * 3) % 50}" for i in range(200)]
    fresh = WordNgramLM(texts, order=2)
    vocab = len(fresh._index)
    monkeypatch.setattr(lexicon_module, "LM_CACHE_BYTES", 20 * 8 * vocab)
    lm = WordNgramLM(texts, order=2)
    assert lm.cache_size == 20
    pairs = [(f"w{i % 50}", f"w{(i * 11) % 50}") for i in range(300)]
    for history, word in pairs:
        got = lm.log_prob((history,), word)
        assert len(lm._cache) <= 20
        fresh._cache.clear()
        assert got == fresh.log_prob((history,), word)
    lm._cache.clear()
    for i in range(1, 11):  # w1 .. w10
        lm.log_prob((f"w{i}",), "w2")
    lm.log_prob(("w1",), "w3")  # w1 used again: now w2 is the least recently used
    for i in range(11, 22):  # 11 more contexts: one has to go
        lm.log_prob((f"w{i}",), "w2")
    assert len(lm._cache) == 20 and ("w1",) in lm._cache and ("w2",) not in lm._cache


@pytest.mark.parametrize("beam", [0, -1, 2.5, True])
def test_both_beam_searches_refuse_a_beam_size_below_one(beam):
    """A negative width would slice the beam from its end (keeping nearly every prefix: the search never
    ends on long outputs), so both searches refuse anything but an integer >= 1 with one clear error."""
    lp = torch.randn(5, len(ALPHABET) + 1).log_softmax(-1)
    with pytest.raises(RnnkitError, match=r"beam size: expected an integer >= 1"):
        ctc_prefix_beam_search(lp, beam)
    with pytest.raises(RnnkitError, match=r"beam size: expected an integer >= 1"):
        lexicon_beam_search(lp, Lexicon(WORDS, ALPHABET), beam)
    assert lexicon_beam_search(lp, Lexicon(WORDS, ALPHABET), np.int64(2))[1] <= 0.0  # numpy ints are fine
