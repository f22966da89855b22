"""CTC decoding with a word list and a word language model: prefix beam search that only spells lexicon words.

The search is :func:`rnnkit.models.ctc_prefix_beam_search` (Hannun et al. 2014) with a lexicon: a prefix may
only grow into a string that starts some lexicon word (a trie of label ids is walked along), a space may
only follow a complete word, and at the end only prefixes whose last word is complete count. Words are
separated by single spaces; the text never starts or ends with one.

With a word language model the beams are ranked by the shallow-fusion score of Hannun et al. (2014)

.. math::

    \\log p_{\\text{CTC}}(y \\mid x) + \\alpha \\log p_{\\text{LM}}(w_1 \\dots w_n) + \\beta n

where :math:`w_1 \\dots w_n` are the complete words of the prefix :math:`y` (the LM term of a word is added
when its space is written, and for the last word, together with the end of the sentence, when the
utterance ends), :math:`\\alpha` is ``lm_weight`` and :math:`\\beta` is ``word_bonus`` (which offsets the
LM's preference for fewer words). :class:`WordNgramLM` is an interpolated Kneser-Ney word n-gram model
(:class:`rnnkit.baselines.KneserNeyLM`) over sentences, with an end-of-sentence word.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from rnnkit._errors import RnnkitError
from rnnkit.models.ctc import _NEG_INF, _logaddexp, check_beam_size

__all__ = ["Lexicon", "WordNgramLM", "lexicon_beam_search"]

_END = -1  # the trie key that marks a complete word; its value is the word
_EOS = "</s>"
LM_CACHE_BYTES = 256 * 2**20
"""Memory for :class:`WordNgramLM`'s distributions of recent contexts (each one float64 per word)."""


class Lexicon:
    """A word list over an alphabet, as a trie of label ids (label ``k`` is ``alphabet[k - 1]``).

    Words with characters outside the alphabet (or a space) are left out.

    Example::

        >>> lex = Lexicon(["a", "ab"], " ab")
        >>> len(lex), lex.space
        (2, 1)
    """

    def __init__(self, words: Iterable[str], alphabet: str):
        if " " not in alphabet:
            raise ValueError("a lexicon needs an alphabet with a space between words")
        index = {c: i + 1 for i, c in enumerate(alphabet)}
        self.alphabet = alphabet
        self.space = index[" "]
        self.root: dict = {}
        self.words = sorted({w for w in words if w and set(w) <= set(alphabet) - {" "}})
        for w in self.words:
            node = self.root
            for c in w:
                node = node.setdefault(index[c], {})
            node[_END] = w

    def __len__(self) -> int:
        return len(self.words)


class WordNgramLM:
    """An interpolated Kneser-Ney word n-gram model over sentences, for :func:`lexicon_beam_search`.

    The sentences are read as one stream of words with an end-of-sentence word ``</s>`` after each, so
    the first word of a sentence is conditioned on ``</s>`` (the sentence start) and the end of a sentence
    has a probability of its own. Scores are natural logarithms.

    Args:
        sentences: training texts, words separated by spaces.
        order: the n-gram order (2 = bigram, 3 = trigram, ...).

    Example::

        >>> lm = WordNgramLM(["turn on the lights", "turn off the fan"], order=2)
        >>> lm.log_prob(("turn",), "on") > lm.log_prob(("turn",), "lights")
        True
    """

    def __init__(self, sentences: Iterable[str], order: int = 3):
        from rnnkit.baselines.ngram import KneserNeyLM

        if not isinstance(order, int) or order < 1:
            raise RnnkitError(f"order: expected an integer >= 1, got {order!r}")
        stream: list[str] = []
        for s in sentences:
            words = s.split()
            if words:
                stream += [*words, _EOS]
        if len(stream) < 2:
            raise RnnkitError(f"a word language model needs at least 2 words of text, got {len(stream)}")
        self._lm = KneserNeyLM(max_order=order).fit(stream)
        self.order = self._lm.order  # lower than asked when the text is shorter than an n-gram
        self._index = {w: i for i, w in enumerate(self._lm.vocab)}
        # the most recently used contexts' distributions, at most LM_CACHE_BYTES of them: a wide beam visits
        # many contexts, and the earlier bound (100,000 distributions of 22,044 words) let a decoding reach 15 GB
        self._cache: OrderedDict[tuple[str, ...], np.ndarray] = OrderedDict()
        self.cache_size = max(16, LM_CACHE_BYTES // (8 * len(self._lm.vocab)))

    def _distribution(self, history: Sequence[str]) -> np.ndarray:
        context = (_EOS, *history)[-(self.order - 1) :] if self.order > 1 else ()
        logp = self._cache.get(context)
        if logp is None:
            with np.errstate(divide="ignore"):
                logp = np.log(self._lm.next_distribution(list(context)))
            self._cache[context] = logp
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(context)
        return logp

    def log_prob(self, history: Sequence[str], word: str) -> float:
        """``log p(word | the sentence's words so far)``; ``word=None`` scores the end of the sentence."""
        return float(self._distribution(history)[self._index.get(_EOS if word is None else word, 0)])

    def sentence_log_prob(self, words: Sequence[str]) -> float:
        """``log p(w_1 ... w_n </s>)``: the sum of each word's and the end's log-probability."""
        return sum(self.log_prob(words[:k], w) for k, w in enumerate([*words, None]))


def lexicon_beam_search(
    log_probs: torch.Tensor,
    lexicon: Lexicon,
    beam_size: int = 8,
    blank: int = 0,
    prune: float = -12.0,
    lm: WordNgramLM | None = None,
    lm_weight: float = 1.0,
    word_bonus: float = 0.0,
) -> tuple[list[int], float]:
    """The best labelling of ``log_probs`` (T, C) made of lexicon words, by prefix beam search.

    Without ``lm`` the best is the most probable under the CTC model alone; with ``lm`` the search ranks by
    ``log p_CTC + lm_weight * log p_LM + word_bonus * words`` (see the module docstring). Returns
    ``(labels, score)`` where ``score`` is that ranking score of the result (``log p_CTC`` without an LM);
    ``([], log p(empty))`` when no word fits (``-inf`` if not even the empty text is possible).

    Example::

        >>> lex = Lexicon(["ab", "b"], " ab")
        >>> lp = torch.tensor([[0.1, 0.1, 0.7, 0.1], [0.1, 0.1, 0.1, 0.7]]).log()
        >>> lexicon_beam_search(lp, lex)[0]  # labels of "ab"
        [2, 3]
    """
    if log_probs.dim() != 2:
        raise RnnkitError(f"log_probs: expected (T, C), got shape {tuple(log_probs.shape)}")
    check_beam_size(beam_size)
    lp = log_probs.detach().double().cpu().numpy()
    space, root = lexicon.space, lexicon.root
    use_lm = lm is not None

    def word_score(words: tuple[str, ...], word: str | None) -> float:
        return lm_weight * lm.log_prob(words, word) + (word_bonus if word is not None else 0.0)

    # prefix -> [log p ending in blank, log p ending in a label, trie node of the word being spelt,
    #            LM score of the complete words, the complete words]
    beams: dict[tuple[int, ...], list] = {(): [0.0, _NEG_INF, root, 0.0, ()]}
    for t in range(lp.shape[0]):
        row = lp[t]
        cands = [int(c) for c in np.flatnonzero(row >= prune) if c != blank]
        nxt: dict[tuple[int, ...], list] = {}

        def acc(prefix, which, value, node, lm_score, words, nxt=nxt):
            cur = nxt.get(prefix)
            if cur is None:
                cur = nxt[prefix] = [_NEG_INF, _NEG_INF, node, lm_score, words]
            cur[which] = _logaddexp(cur[which], value)

        for prefix, (pb, pnb, node, lm_score, words) in beams.items():
            total = _logaddexp(pb, pnb)
            acc(prefix, 0, total + row[blank], node, lm_score, words)
            last = prefix[-1] if prefix else None
            for c in cands:
                if c == last:
                    acc(prefix, 1, pnb + row[c], node, lm_score, words)  # the same label goes on
                new_score, new_words = lm_score, words
                if c == space:  # a space only ends a complete word
                    if not (prefix and last != space and _END in node):
                        continue
                    child = root
                    if use_lm:
                        new_score = lm_score + word_score(words, node[_END])
                        new_words = (*words, node[_END])
                else:  # a letter only where some lexicon word goes on like this
                    child = node.get(c)
                    if child is None:
                        continue
                # a repeated label needs a blank in between
                acc(prefix + (c,), 1, (pb if c == last else total) + row[c], child, new_score, new_words)
        ranked = sorted(nxt.items(), key=lambda kv: _logaddexp(kv[1][0], kv[1][1]) + kv[1][3], reverse=True)
        beams = dict(ranked[:beam_size])

    def final(prefix, v) -> float:
        pb, pnb, node, lm_score, words = v
        score = _logaddexp(pb, pnb) + lm_score
        if use_lm:
            if prefix:  # the last word, then the end of the sentence
                score += word_score(words, node[_END])
                words = (*words, node[_END])
            score += word_score(words, None)
        return score

    done = [(k, final(k, v)) for k, v in beams.items() if not k or (k[-1] != space and _END in v[2])]
    if not done:
        return [], _NEG_INF
    best, score = max(done, key=lambda kv: kv[1])
    return list(best), score
