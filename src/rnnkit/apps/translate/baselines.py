r"""The translation baselines: copying the source, and word-by-word translation with an IBM Model 1 lexicon.

IBM Model 1 (Brown et al. 1993) explains a target sentence :math:`f_1..f_m` given a source sentence
:math:`e_0..e_l` (:math:`e_0` = NULL) by letting every target word pick a source word uniformly and
translate it:

.. math:: p(f \mid e) = \prod_{j=1}^{m} \frac{1}{l+1} \sum_{i=0}^{l} t(f_j \mid e_i).

EM estimates the lexicon :math:`t`: the E-step gives each link its posterior
:math:`\frac{t(f_j|e_i)}{\sum_{i'} t(f_j|e_{i'})}`, the M-step renormalises the expected link counts per
source word. The likelihood never decreases. Word-by-word translation replaces each source word by its most
probable target word :math:`\arg\max_f t(f \mid e)` and copies words the lexicon has not seen (names,
numbers).
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["IBMModel1", "copy_baseline", "words"]

_WORD = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    """A sentence as words and punctuation marks (the baselines' tokens)."""
    return _WORD.findall(text)


def copy_baseline(sources: list[str]) -> list[str]:
    """The translation that changes nothing: each source sentence as it is."""
    return list(sources)


class IBMModel1:
    r"""IBM Model 1 lexicon :math:`t(\text{target word} \mid \text{source word})`, trained by EM.

    Args:
        iterations: EM iterations (5 is the usual number; the first already gives a usable lexicon).

    The E- and M-steps run over all sentence pairs at once: every (source position, target position) link
    of the corpus is one entry of flat arrays, and the sums over links are ``np.bincount``.

    Example::

        ibm = IBMModel1().fit([["das", "haus"], ["das", "buch"]], [["the", "house"], ["the", "book"]])
        ibm.translate(["das", "buch"])        # ['the', 'book']
        ibm.align(["das", "haus"], ["the", "house"])   # [0, 1]: the -> das, house -> haus
    """

    NULL = "<null>"

    def __init__(self, iterations: int = 5):
        self.iterations = iterations
        self.log_likelihood: list[float] = []  # per iteration, before its update (up to a constant)

    def fit(self, sources: list[list[str]], targets: list[list[str]]) -> IBMModel1:
        src_vocab = {self.NULL: 0}
        tgt_vocab: dict[str, int] = {}
        pair_src, pair_tgt, link_tok = [], [], []
        n_tok = 0
        for e, f in zip(sources, targets):
            if not f:
                continue
            es = [0] + [src_vocab.setdefault(w, len(src_vocab)) for w in e]
            fs = [tgt_vocab.setdefault(w, len(tgt_vocab)) for w in f]
            ei = np.repeat(np.array(es), len(fs))  # (l+1) * m links: source-major
            fi = np.tile(np.array(fs), len(es))
            tok = np.tile(np.arange(len(fs)) + n_tok, len(es))
            pair_src.append(ei)
            pair_tgt.append(fi)
            link_tok.append(tok)
            n_tok += len(fs)
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.tgt_words = list(tgt_vocab)
        if not pair_src:
            self.lexicon = {}
            return self
        es_all = np.concatenate(pair_src)
        fs_all = np.concatenate(pair_tgt)
        tok_all = np.concatenate(link_tok)
        key = es_all.astype(np.int64) * len(tgt_vocab) + fs_all
        pairs, link_pair = np.unique(key, return_inverse=True)  # the distinct co-occurring word pairs
        p_src = pairs // len(tgt_vocab)
        p_tgt = pairs % len(tgt_vocab)
        # uniform start: every target word equally likely under each source word
        t = np.full(len(pairs), 1.0 / len(tgt_vocab))
        for _ in range(self.iterations):
            w = t[link_pair]
            denom = np.bincount(tok_all, weights=w, minlength=n_tok)  # sum_i t(f_j | e_i)
            self.log_likelihood.append(float(np.log(denom).sum()))
            post = w / denom[tok_all]  # E-step: link posteriors
            counts = np.bincount(link_pair, weights=post, minlength=len(pairs))
            totals = np.bincount(p_src, weights=counts, minlength=len(src_vocab))
            t = counts / totals[p_src]  # M-step
        self.t = t
        self._pairs = (p_src, p_tgt)
        # the best translation of each source word
        best_val = np.full(len(src_vocab), -1.0)
        best_tgt = np.zeros(len(src_vocab), dtype=np.int64)
        order = np.lexsort((-t, p_src))  # by source word, most probable first
        first = np.ones(len(order), dtype=bool)
        first[1:] = p_src[order][1:] != p_src[order][:-1]
        best_tgt[p_src[order][first]] = p_tgt[order][first]
        best_val[p_src[order][first]] = t[order][first]
        src_words = list(src_vocab)
        self.lexicon = {
            src_words[i]: self.tgt_words[best_tgt[i]] for i in range(1, len(src_vocab)) if best_val[i] >= 0
        }
        return self

    def prob(self, target_word: str, source_word: str) -> float:
        """The lexicon entry :math:`t(\\text{target} \\mid \\text{source})` (0 for a pair never seen together)."""
        e, f = self.src_vocab.get(source_word), self.tgt_vocab.get(target_word)
        if e is None or f is None:
            return 0.0
        key = e * len(self.tgt_vocab) + f
        p_src, p_tgt = self._pairs
        pos = np.searchsorted(p_src * len(self.tgt_vocab) + p_tgt, key)
        if pos < len(p_src) and p_src[pos] == e and p_tgt[pos] == f:
            return float(self.t[pos])
        return 0.0

    def align(self, source: list[str], target: list[str]) -> list[int]:
        """The most probable (Viterbi) link of each target word: a source position, or -1 for NULL."""
        out = []
        for f in target:
            probs = [self.prob(f, self.NULL)] + [self.prob(f, e) for e in source]
            out.append(int(np.argmax(probs)) - 1)
        return out

    def translate(self, source: list[str]) -> list[str]:
        """Word by word: each source word's most probable target word; unseen words are copied."""
        return [self.lexicon.get(w, w) for w in source]

    def translate_sentences(self, sources: list[str]) -> list[str]:
        """Each sentence translated word by word in place: spacing and punctuation stay as in the source."""
        return [_WORD.sub(lambda m: self.lexicon.get(m.group(0), m.group(0)), s) for s in sources]
