"""Connected-word recognition with word templates and one-pass dynamic time warping: the classical baseline of
connected speech.

Before hidden Markov models and long after, connected digits were recognised by matching the utterance against
concatenations of stored word templates (Sakoe's two-level DP, 1979; Myers & Rabiner's level building, 1981).
The one-pass (one-stage) algorithm (Bridle, Brown & Chamberlain 1982; Ney 1984, IEEE Trans. ASSP 32(2)) does it
in a single left-to-right pass: at frame :math:`t` every template state :math:`j` keeps the cheapest path

.. math::

    D(t, j) = d(x_t, r_j) + \\min\\{D(t-1, j),\\ D(t-1, j-1),\\ D(t-1, j-2)\\},

and a template's first state may instead be entered from the cheapest word end of frame :math:`t-1` plus a word
insertion penalty. Each state carries the frame its word started at, so the best word end of every frame and its
start are enough to read the word sequence back. Every path consumes one input frame per step, so the costs of
different word sequences are comparable.

The templates come from the training utterances themselves (the user's data has transcripts, not isolated words):
each utterance's speech (its frames above an energy floor) is first cut in proportion to its words' letters, then
re-cut by forced alignment against the current templates (the same dynamic programme, constrained to the
transcript's words), as segmental k-means does (Rabiner, Wilpon & Juang 1986). A word keeps up to ``per_word``
exemplars: the segments nearest the centres of a k-means clustering of its length-normalised segments (Rabiner &
Wilpon 1979 cluster speaker-independent templates this way). As in the classical systems' finite-state or
bigram grammars, the decoder can add a word bigram model of the training transcripts (interpolated Kneser-Ney)
to the cost of each word transition; the word insertion penalty and the grammar's weight are chosen on the
validation utterances.

Frames are the log-mel features, normalised per utterance (cepstral mean and variance normalisation), with every
``pool`` frames averaged into one.

Example::

    rec, hyps = template_baseline(corpus.features, corpus.texts, train_ix, val_ix, {"test": test_ix})
    rec.transcribe(speech_frames(log_mels))   # (T, 40) natural-log mel energies -> "three one four"
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from rnnkit.apps.speech.features import stretch_frames

__all__ = [
    "TemplateRecognizer",
    "bigram_costs",
    "fit_templates",
    "template_baseline",
    "one_pass_dtw",
    "forced_align",
    "speech_frames",
]

_INF = np.float32(np.inf)


def speech_frames(features: np.ndarray, pool: int = 2, floor: float = 6.0) -> np.ndarray:
    """The frames a template matcher reads: leading and trailing frames more than ``floor`` (natural-log units of
    power; 6 is about 26 dB) below the loudest frame's mean log-mel dropped (endpoint detection), the rest
    normalised per feature and averaged ``pool`` at a time. ``features``: (T, F) log-mels -> (T', F) float32."""
    x = np.asarray(features, dtype=np.float32)
    if len(x) == 0:
        return x
    energy = x.mean(1)
    loud = np.flatnonzero(energy >= energy.max() - floor)
    x = x[loud[0] : loud[-1] + 1]
    x = (x - x.mean(0)) / (x.std(0) + 1e-5)
    n = len(x) // pool * pool
    if n >= pool:
        x = x[:n].reshape(-1, pool, x.shape[1]).mean(1)
    return np.ascontiguousarray(x, dtype=np.float32)


def _distances(x: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Euclidean distances (T, S) between the frames of ``x`` (T, F) and template states ``refs`` (S, F)."""
    sq = (x * x).sum(1)[:, None] + (refs * refs).sum(1)[None, :] - 2.0 * (x @ refs.T)
    return np.sqrt(np.maximum(sq, 0.0)).astype(np.float32)


@dataclass
class _Network:
    """Templates laid end to end: ``states`` (S, F), each template's ``first`` and ``last`` state and the
    masks that keep the +1 / +2 moves inside a template."""

    states: np.ndarray
    first: np.ndarray
    last: np.ndarray
    no_step1: np.ndarray = field(init=False)
    no_step2: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        S = len(self.states)
        self.no_step1 = np.zeros(S, bool)
        self.no_step1[self.first] = True
        self.no_step2 = self.no_step1.copy()
        self.no_step2[np.minimum(self.first + 1, S - 1)] = True

    @classmethod
    def of(cls, templates: list[np.ndarray]) -> _Network:
        lengths = np.array([len(t) for t in templates])
        last = np.cumsum(lengths) - 1
        first = last - lengths + 1
        return cls(np.concatenate(templates).astype(np.float32), first, last)

    def step(self, D: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The best predecessor of every state among stay, +1 and +2 (costs before this frame's distance)."""
        c1 = np.empty_like(D)
        c1[0] = _INF
        c1[1:] = D[:-1]
        c1[self.no_step1] = _INF
        c2 = np.empty_like(D)
        c2[:2] = _INF
        c2[2:] = D[:-2]
        c2[self.no_step2] = _INF
        s1 = np.empty_like(start)
        s1[0] = 0
        s1[1:] = start[:-1]
        s2 = np.empty_like(start)
        s2[:2] = 0
        s2[2:] = start[:-2]
        best = D.copy()
        from_start = start.copy()
        take = c1 < best
        best[take], from_start[take] = c1[take], s1[take]
        take = c2 < best
        best[take], from_start[take] = c2[take], s2[take]
        return best, from_start


def one_pass_dtw(
    x: np.ndarray,
    templates: list[np.ndarray],
    word_of: np.ndarray,
    penalty: float,
    grammar: np.ndarray | None = None,
) -> tuple[list[int], float]:
    """The cheapest sequence of templates for the frames ``x`` (T, F): ``(word ids, cost)``.

    ``word_of[k]`` is template k's word (ids 0 .. W-1). Every word after the first costs ``penalty`` more.
    ``grammar`` (W + 1, W + 1), optional, adds ``grammar[v, w]`` when word w follows word v, index W being the
    sentence boundary (``grammar[W, w]`` starts an utterance with w, ``grammar[v, W]`` ends one with v): a
    weighted ``-log p(w | v)`` of a bigram model makes it the classical decoder with a bigram grammar. Without
    it any word may follow any word at no cost. Too few frames for any template: no words, cost ``inf``.
    """
    words, _, cost = _search(x, templates, word_of, penalty, grammar)
    return words, cost


def forced_align(x: np.ndarray, slots: list[list[np.ndarray]]) -> list[tuple[int, int]] | None:
    """Cut the frames ``x`` (T, F) into one segment per slot, in order, each slot matched by the best of its
    templates: ``[(start, end), ...]`` (end exclusive), or ``None`` if the frames are too few.

    It is :func:`one_pass_dtw` with the slots as words and a grammar that allows only slot 0 first, slot s + 1
    after slot s and the last slot at the end."""
    n = len(slots)
    if len(x) == 0 or n == 0:
        return None
    grammar = np.full((n + 1, n + 1), np.inf)
    grammar[np.arange(n), np.arange(1, n + 1)] = 0.0  # s -> s + 1, and the last slot -> the end
    grammar[n, 0] = 0.0  # the start -> slot 0
    word_of = np.repeat(np.arange(n), [len(s) for s in slots])
    words, starts, _ = _search(x, [t for slot in slots for t in slot], word_of, 0.0, grammar)
    if not words:
        return None
    return list(zip(starts, [*starts[1:], len(x)]))


def _search(
    x: np.ndarray,
    templates: list[np.ndarray],
    word_of: np.ndarray,
    penalty: float,
    grammar: np.ndarray | None,
) -> tuple[list[int], list[int], float]:
    """The one pass of :func:`one_pass_dtw`: ``(word ids, the frame each starts at, cost)``."""
    T = len(x)
    if T == 0 or not templates:
        return [], [], 0.0
    W = int(word_of.max()) + 1
    if grammar is None:
        grammar = np.zeros((W + 1, W + 1))
    net = _Network.of(templates)
    dist = _distances(x, net.states)
    S = len(net.states)
    counts = np.bincount(word_of, minlength=W)
    lasts = np.full((W, max(int(counts.max()), 1)), S)  # each word's templates' last states; S: never reached
    for w in range(W):
        lasts[w, : counts[w]] = net.last[word_of == w]
    rows = np.arange(W)
    D = np.full(S + 1, _INF, np.float32)
    start = np.zeros(S + 1, np.int64)
    D[net.first] = dist[0, net.first] + grammar[W, word_of]
    exit_cost = np.empty((T, W), np.float64)  # each word's cheapest end at frame t, and where it started
    exit_start = np.empty((T, W), np.int64)
    came_from = np.zeros((T, W), np.int64)  # the word before a word that starts at frame t

    def record(t: int) -> None:
        best = lasts[rows, D[lasts].argmin(1)]
        exit_cost[t], exit_start[t] = D[best], start[best]

    record(0)
    between = grammar[:W, :W]
    for t in range(1, T):
        D[:S], start[:S] = net.step(D[:S], start[:S])
        cand = exit_cost[t - 1][:, None] + between  # (from v, to w)
        came_from[t] = cand.argmin(0)
        entry = (cand[came_from[t], rows] + penalty).astype(np.float32)[word_of]  # per template
        enter = entry < D[net.first]
        D[net.first[enter]] = entry[enter]
        start[net.first[enter]] = t
        D[:S] += dist[t]
        record(t)
    final = exit_cost[T - 1] + grammar[:W, W]
    w = int(np.argmin(final))
    if not np.isfinite(final[w]):  # too few frames for any template
        return [], [], float("inf")
    cost, words, starts, t = float(final[w]), [], [], T - 1
    while True:
        began = int(exit_start[t, w])
        words.append(w)
        starts.append(began)
        if began == 0:
            break
        w, t = int(came_from[began, w]), began - 1
    return words[::-1], starts[::-1], cost


def _exemplars(segments: list[np.ndarray], k: int, seed: int) -> list[np.ndarray]:
    """Up to ``k`` segments, each the one nearest a k-means centre of the segments stretched to their median
    length (one cluster per exemplar)."""
    if len(segments) <= k:
        return list(segments)
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    length = max(2, int(np.median([len(s) for s in segments])))
    flat = np.stack([stretch_frames(s, length).ravel() for s in segments])
    with (
        warnings.catch_warnings()
    ):  # identical segments (a word said the same way) give fewer distinct clusters
        warnings.simplefilter("ignore", ConvergenceWarning)
        km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(flat)
    out = []
    for c in range(k):
        members = np.flatnonzero(km.labels_ == c)
        if len(members):
            d = ((flat[members] - km.cluster_centers_[c]) ** 2).sum(1)
            out.append(segments[members[int(np.argmin(d))]])
    return out


@dataclass
class TemplateRecognizer:
    """Word templates, the one-pass decoder's word insertion ``penalty`` and its bigram grammar (``bigram``:
    (W + 1, W + 1) costs ``-log p(w | v)``, index W the utterance boundary; weighted by ``lm_weight``); see the
    module's docstring."""

    words: list[str]
    templates: list[np.ndarray]
    word_of: np.ndarray
    penalty: float = 0.0
    bigram: np.ndarray | None = None
    lm_weight: float = 0.0
    info: dict = field(default_factory=dict)

    def transcribe(
        self, frames: np.ndarray, penalty: float | None = None, lm_weight: float | None = None
    ) -> str:
        """The words of one utterance's :func:`speech_frames`."""
        p = self.penalty if penalty is None else penalty
        lw = self.lm_weight if lm_weight is None else lm_weight
        grammar = lw * self.bigram if self.bigram is not None and lw > 0 else None
        ids, _ = one_pass_dtw(frames, self.templates, self.word_of, p, grammar)
        return " ".join(self.words[i] for i in ids)


def bigram_costs(texts: list[str], words: list[str]) -> np.ndarray:
    """``-log p(w | v)`` (W + 1, W + 1) of an interpolated Kneser-Ney bigram model of ``texts`` over ``words``;
    index W is the utterance boundary (row: the start, column: the end)."""
    from rnnkit.models import WordNgramLM

    lm = WordNgramLM(texts, order=2)
    out = np.empty((len(words) + 1, len(words) + 1))
    for row, history in enumerate([[w] for w in words] + [[]]):
        out[row] = [-lm.log_prob(history, w) for w in [*words, None]]
    return out


def fit_templates(
    frames: list[np.ndarray],
    texts: list[str],
    val_frames: list[np.ndarray],
    val_texts: list[str],
    per_word: int = 4,
    iterations: int = 2,
    max_utterances: int = 1500,
    max_segments: int = 300,
    max_val: int = 150,
    seed: int = 0,
) -> TemplateRecognizer:
    """Templates from transcribed utterances (``frames[i]`` = :func:`speech_frames`, ``texts[i]`` its words),
    and the word insertion penalty with the lowest word error rate on (up to ``max_val`` of) the validation
    utterances. At most ``max_utterances`` training utterances and ``max_segments`` segments per word are read
    (a seeded choice), so the cost stays bounded on a large corpus."""
    from rnnkit.apps.speech.report import error_rates

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frames))[:max_utterances]
    utts = [(frames[i], texts[i].split()) for i in order if texts[i].split()]
    words = sorted({w for _, ws in utts for w in ws})
    index = {w: i for i, w in enumerate(words)}

    def proportional(x: np.ndarray, ws: list[str]) -> list[tuple[int, int]] | None:
        n, T = len(ws), len(x)
        if T < n:
            return None
        weight = np.cumsum([len(w) + 1.0 for w in ws])
        ends = [int(round(e / weight[-1] * T)) for e in weight]
        cuts, a = [], 0
        for i, e in enumerate(ends):
            b = min(max(e, a + 1), T - (n - 1 - i))  # every word at least one frame
            cuts.append((a, b))
            a = b
        return cuts

    cuts = [proportional(x, ws) for x, ws in utts]
    by_word: dict[str, list[np.ndarray]] = {}
    for it in range(iterations + 1):
        segs: dict[str, list[np.ndarray]] = {w: [] for w in words}
        for (x, ws), c in zip(utts, cuts):
            if c is not None:
                for w, (a, b) in zip(ws, c):
                    segs[w].append(x[a:b])
        by_word = {}
        for w in words:
            pool = segs[w]
            if len(pool) > max_segments:
                pick = rng.choice(len(pool), max_segments, replace=False)
                pool = [pool[i] for i in pick]
            by_word[w] = _exemplars(pool, per_word, seed) if pool else []
        if it == iterations:
            break
        cuts = [
            forced_align(x, [by_word[w] for w in ws]) if all(by_word[w] for w in ws) else None
            for x, ws in utts
        ]
    templates, word_of = [], []
    for w in words:
        for t in by_word[w]:
            templates.append(np.ascontiguousarray(t, dtype=np.float32))
            word_of.append(index[w])
    rec = TemplateRecognizer(words, templates, np.array(word_of, np.int64))
    rec.bigram = bigram_costs([" ".join(ws) for _, ws in utts], words)
    # the penalty and the grammar's weight, in units of a typical frame distance, chosen on validation (ties: the
    # smaller): the penalty without the grammar, the weight at that penalty, the penalty again at that weight.
    # The weight is chosen on the validation utterances whose texts no training utterance says, where there are
    # at least 30 (a weight chosen on texts the bigram has seen would favour it too much).
    typical = (
        float(np.median([np.median(_distances(t, t[::-1])) for t in templates[:50]])) if templates else 1.0
    )
    val = list(range(min(max_val, len(val_frames))))
    known = {" ".join(ws) for _, ws in utts}
    new_texts = [i for i in val if val_texts[i] not in known]
    wer: dict[str, dict[str, float]] = {"penalty": {}, "lm_weight": {}, "penalty_again": {}}

    def choose(key: str, grid: list[float], which: list[int], make) -> float:
        best = (np.inf, 0.0)
        for g in grid if which else []:
            hyps = [rec.transcribe(val_frames[i], *make(g)) for i in which]
            wer[key][f"{g:g}"] = error_rates([val_texts[i] for i in which], hyps)["wer"]
            if wer[key][f"{g:g}"] < best[0]:
                best = (wer[key][f"{g:g}"], g)
        return best[1]

    penalties = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 8.0]
    p = choose("penalty", penalties, val, lambda g: (g * typical, 0.0))
    lm_on = new_texts if len(new_texts) >= 30 else val
    lw = choose("lm_weight", [0.0, 0.1, 0.25, 0.5, 1.0, 2.0], lm_on, lambda g: (p * typical, g * typical))
    if lw > 0:  # the grammar charges every word: a bonus (a negative penalty) may now pay
        p = choose(
            "penalty_again", [-2.0, -1.0, -0.5, *penalties], val, lambda g: (g * typical, lw * typical)
        )
    rec.penalty, rec.lm_weight = p * typical, lw * typical
    rec.info = {
        "name": "word templates + one-pass DTW",
        "templates": len(templates),
        "words": len(words),
        "per_word": per_word,
        "iterations": iterations,
        "training_utterances": len(utts),
        "aligned": int(sum(c is not None for c in cuts)),
        "penalty": round(rec.penalty, 4),
        "lm_weight": round(rec.lm_weight, 4),
        "typical_distance": round(typical, 4),
        "val_wer": wer,
        "lm_chosen_on": f"{len(lm_on)} validation utterances"
        + (" with new texts" if lm_on is new_texts else ""),
        "seconds_to_fit": round(time.perf_counter() - t0, 2),
    }
    return rec


def template_baseline(
    features: list[np.ndarray],
    texts: list[str],
    train,
    val,
    tests: dict[str, np.ndarray],
    seed: int = 0,
    **fit,
) -> tuple[TemplateRecognizer, dict[str, list[str]]]:
    """The baseline on a corpus split: templates from the utterances ``train`` (indices into ``features``, the
    raw log-mels, and ``texts``), the penalty chosen on ``val``, and the transcripts of each test part:
    ``(recogniser, {part: hypotheses})``. ``fit``: more arguments of :func:`fit_templates`."""
    t0 = time.perf_counter()
    frames = {int(i): speech_frames(features[i]) for ix in (train, val, *tests.values()) for i in ix}
    rec = fit_templates(
        [frames[int(i)] for i in train],
        [texts[i] for i in train],
        [frames[int(i)] for i in val],
        [texts[i] for i in val],
        seed=seed,
        **fit,
    )
    hyps = {part: [rec.transcribe(frames[int(i)]) for i in ix] for part, ix in tests.items()}
    rec.info["seconds"] = round(time.perf_counter() - t0, 2)
    return rec, hyps
