"""The connected-speech baseline: one-pass DTW over word templates (rnnkit.apps.speech.templates).

The one-pass decoder and the forced aligner are checked against brute force (every word sequence, every cut),
and the whole recogniser against utterances built from known word patterns.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rnnkit.apps.speech.templates import fit_templates, forced_align, one_pass_dtw, speech_frames


def chain_cost(x: np.ndarray, templates: list[np.ndarray], penalty: float = 0.0) -> float:
    """The slow twin: DTW of ``x`` against one fixed sequence of templates (moves stay, +1, +2 inside a template;
    from a template's last state to the next one's first, paying ``penalty``), state by state in Python."""
    states = np.concatenate(templates)
    first, k = set(), 0
    for t in templates:
        first.add(k)
        k += len(t)
    d = np.sqrt(((x[:, None, :] - states[None, :, :]) ** 2).sum(-1))
    T, S = d.shape
    D = np.full((T, S), np.inf)
    D[0, 0] = d[0, 0]
    for t in range(1, T):
        for j in range(S):
            best = D[t - 1, j]
            if j in first:
                if j > 0:
                    best = min(best, D[t - 1, j - 1] + penalty)
            else:
                best = min(best, D[t - 1, j - 1])
                if j - 1 not in first:
                    best = min(best, D[t - 1, j - 2])
            D[t, j] = best + d[t, j]
    return float(D[T - 1, S - 1])


@pytest.mark.parametrize("with_grammar", [False, True])
def test_one_pass_dtw_finds_the_cheapest_word_sequence_of_all(with_grammar):
    rng = np.random.default_rng(0)
    templates = [rng.normal(size=(n, 3)).astype(np.float32) for n in (2, 3, 2)]
    word_of = np.array([0, 1, 1])  # two templates of word 1
    for trial in range(8):
        x = rng.normal(size=(8, 3)).astype(np.float32)
        penalty = [0.0, 0.5, 2.0, -0.4][trial % 4]  # a negative penalty is a bonus for each word
        # costs of word v -> word w; index 2 is the utterance's start (row) and end (column)
        grammar = rng.uniform(0, 3, size=(3, 3)) if with_grammar else None
        best, best_seq = np.inf, None
        for n in range(1, 5):
            for seq in itertools.product(range(3), repeat=n):
                c = chain_cost(x, [templates[k] for k in seq], penalty)
                if grammar is not None:
                    ws = [2, *(int(word_of[k]) for k in seq), 2]
                    c += sum(grammar[a, b] for a, b in zip(ws, ws[1:]))
                if c < best - 1e-6:
                    best, best_seq = c, seq
        words, cost = one_pass_dtw(x, templates, word_of, penalty, grammar)
        assert cost == pytest.approx(best, rel=1e-5)
        assert words == [int(word_of[k]) for k in best_seq]
    assert one_pass_dtw(x[:1], [templates[1]], np.array([0]), 0.0) == ([], float("inf"))  # 3 states, 1 frame


def test_forced_align_cuts_where_the_cheapest_segmentation_does():
    rng = np.random.default_rng(1)
    slots = [[rng.normal(size=(2, 2)).astype(np.float32)] for _ in range(3)]
    slots[1].append(rng.normal(size=(3, 2)).astype(np.float32))  # the middle word has two templates
    x = rng.normal(size=(9, 2)).astype(np.float32)

    def cost_of(cuts):
        return sum(min(chain_cost(x[a:b], [t]) for t in slot) for (a, b), slot in zip(cuts, slots))

    every = [
        [(0, i), (i, j), (j, 9)] for i in range(1, 8) for j in range(i + 1, 9)
    ]  # every way to cut 9 frames into 3 non-empty pieces
    best = min(cost_of(c) for c in every)
    cuts = forced_align(x, slots)
    assert cuts is not None and cuts[0][0] == 0 and cuts[-1][1] == 9
    assert all(a < b for a, b in cuts) and all(cuts[i][1] == cuts[i + 1][0] for i in range(2))
    assert cost_of(cuts) == pytest.approx(best, rel=1e-5)
    assert forced_align(x[:2], slots) is None  # three words cannot fit in two frames


def _utterance(protos, words, rng, noise=0.3):
    """Frames of the word sequence ``words``: each word's pattern stretched by 0.7-1.4 and noised."""
    parts = []
    for w in words:
        p = protos[w]
        n = max(2, int(round(len(p) * rng.uniform(0.7, 1.4))))
        idx = np.round(np.linspace(0, len(p) - 1, n)).astype(int)
        parts.append(p[idx] + noise * rng.normal(size=(n, p.shape[1])))
    return np.concatenate(parts).astype(np.float32)


def test_templates_learnt_from_connected_utterances_recognise_new_ones():
    rng = np.random.default_rng(2)
    names = ["ka", "lumo", "te", "sirenu"]
    # lengths unlike the letter counts, so that the first, letter-proportional cut is wrong
    protos = {w: rng.normal(size=(n, 6)) * 1.5 for w, n in zip(names, (14, 6, 10, 5))}

    def corpus(n):
        texts = [" ".join(rng.choice(names, size=rng.integers(2, 6))) for _ in range(n)]
        return [_utterance(protos, t.split(), rng, noise=0.6) for t in texts], texts

    tr_x, tr_t = corpus(120)
    va_x, va_t = corpus(30)
    te_x, te_t = corpus(40)
    rec = fit_templates(tr_x, tr_t, va_x, va_t, per_word=2, iterations=2)
    from rnnkit.apps.speech.report import error_rates

    wer = error_rates(te_t, [rec.transcribe(x) for x in te_x])["wer"]
    assert wer <= 0.05  # measured 0.0
    # the letters-only first cut (no forced alignment) is far worse (measured 0.31): the re-cutting works
    rough = fit_templates(tr_x, tr_t, va_x, va_t, per_word=2, iterations=0)
    assert error_rates(te_t, [rough.transcribe(x) for x in te_x])["wer"] >= wer + 0.1
    assert rec.info["aligned"] > 100 and set(rec.words) == set(names)


def test_speech_frames_drop_quiet_edges_and_pool():
    x = np.zeros((20, 4), np.float32) - 20.0  # silence
    x[5:15] = np.random.default_rng(3).normal(size=(10, 4))
    f = speech_frames(x, pool=2)
    assert f.shape == (5, 4)  # frames 5..14, two at a time
    np.testing.assert_allclose(
        f,
        ((x[5:15] - x[5:15].mean(0)) / (x[5:15].std(0) + 1e-5)).reshape(5, 2, 4).mean(1),
        rtol=1e-5,
        atol=1e-5,
    )


def test_result_rows_judge_every_decoder_against_the_templates_and_the_goal():
    from rnnkit.apps.speech.config import SpeechConfig
    from rnnkit.apps.speech.report import FEEDFORWARD, TEMPLATES, ctc_result_rows

    parts = {
        "test": {"greedy": {"wer": 0.01}, TEMPLATES: {"wer": 0.02}, "untrained": {"wer": 1.0}, "count": 9},
        "unseen": {"greedy": {"wer": 0.055}, "beam 8": {"wer": 0.04}, TEMPLATES: {"wer": 0.06}},
    }
    rows = {r.task: r for r in ctc_result_rows(SpeechConfig(data="digits-ctc"), parts, 1.0)}
    assert len(rows) == 3  # neither the baseline nor the untrained network is a row of its own
    seen = rows["speech (digits-ctc, test, greedy)"]
    assert (seen.baseline, seen.baseline_value, seen.goal, seen.met) == (
        "templates",
        0.02,
        "<= baseline",
        True,
    )
    assert seen.baselines == {"untrained": 1.0, "templates": 0.02}
    greedy = rows["speech (digits-ctc, unseen voices, greedy)"]  # below the baseline, above the goal
    assert greedy.goal == "<= 0.05 and <= baseline" and not greedy.met
    assert rows["speech (digits-ctc, unseen voices, beam 8)"].met
    # without the baseline the untrained network is shown, and only the goal judges
    parts["unseen"].pop(TEMPLATES)
    parts["unseen"]["untrained"] = {"wer": 1.0}
    rows = {r.task: r for r in ctc_result_rows(SpeechConfig(data="digits-ctc"), parts, 1.0)}
    beam = rows["speech (digits-ctc, unseen voices, beam 8)"]
    assert (beam.baseline, beam.goal, beam.met) == ("untrained", "<= 0.05", True)
    # the feed-forward counterpart is judged decoder by decoder: where it beats the templates it is the baseline
    parts["unseen"][TEMPLATES] = {"wer": 0.06}
    parts["unseen"][FEEDFORWARD] = {"greedy": {"wer": 0.05}, "beam 8": {"wer": 0.07}}
    rows = {r.task: r for r in ctc_result_rows(SpeechConfig(data="digits-ctc"), parts, 1.0)}
    greedy = rows["speech (digits-ctc, unseen voices, greedy)"]
    assert (greedy.baseline, greedy.baseline_value, greedy.met) == ("feed-forward", 0.05, False)
    assert greedy.baselines == {"untrained": 1.0, "templates": 0.06, "feed-forward": 0.05}
    beam = rows["speech (digits-ctc, unseen voices, beam 8)"]
    assert (beam.baseline, beam.baseline_value, beam.met) == ("templates", 0.06, True)
    assert len(rows) == 3  # the counterpart has no rows of its own


def test_a_bigram_grammar_helps_where_the_word_order_is_constrained():
    """Six word patterns, each word followed by one of two others only: heavy noise makes the words alone
    hard to read, and the bigram grammar (its weight chosen on validation) reads far better."""
    from rnnkit.apps.speech.report import error_rates

    rng = np.random.default_rng(5)
    names = ["ka", "lumo", "te", "sirenu", "po", "dak"]
    protos = {w: rng.normal(size=(n, 6)) * 1.5 for w, n in zip(names, (14, 6, 10, 5, 8, 9))}
    follows = {w: [names[(i + 1) % 6], names[(i + 3) % 6]] for i, w in enumerate(names)}

    def corpus(n):
        texts = []
        for _ in range(n):
            ws = [names[rng.integers(6)]]
            for _ in range(rng.integers(1, 5)):
                ws.append(follows[ws[-1]][rng.integers(2)])
            texts.append(" ".join(ws))
        return [_utterance(protos, t.split(), rng, noise=1.5) for t in texts], texts

    tr, va, te = corpus(150), corpus(60), corpus(60)
    rec = fit_templates(*tr, *va, per_word=2, iterations=2)
    assert rec.lm_weight > 0
    with_lm = error_rates(te[1], [rec.transcribe(x) for x in te[0]])["wer"]
    without = error_rates(te[1], [rec.transcribe(x, lm_weight=0.0) for x in te[0]])["wer"]
    assert with_lm <= without - 0.1, (with_lm, without)  # measured 0.24 against 0.49
    # the grammar is a distribution over the next word (or the end) after each word and at the start
    p = np.exp(-rec.bigram)
    assert rec.bigram.shape == (7, 7) and np.all(p.sum(1) > 0.99) and np.all(p.sum(1) <= 1 + 1e-9)
    ka, lumo, te_ = (rec.words.index(w) for w in ("ka", "lumo", "te"))
    assert p[ka, lumo] > 5 * p[ka, te_]  # "ka lumo" is said, "ka te" never


def test_stretch_frames_is_linear_interpolation_in_time():
    from rnnkit.apps.speech.features import stretch_frames

    ramp = np.stack([np.arange(5.0), 10 - np.arange(5.0)], 1)  # (5, 2), linear in time
    out = stretch_frames(ramp, 9)
    np.testing.assert_allclose(out[:, 0], np.linspace(0, 4, 9))
    np.testing.assert_allclose(out[:, 1], np.linspace(10, 6, 9))
    np.testing.assert_allclose(
        stretch_frames(ramp, 3), ramp[[0, 2, 4]]
    )  # squeezing keeps the frames it lands on
    np.testing.assert_allclose(stretch_frames(ramp[:1], 4), np.repeat(ramp[:1], 4, 0))  # one frame: repeated
