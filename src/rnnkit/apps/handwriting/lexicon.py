"""Decoding constrained by a lexicon: CTC prefix beam search that only spells words of a word list.

The search is :func:`rnnkit.models.ctc_prefix_beam_search` (Hannun et al. 2014) with one more rule: a
prefix may only grow into a word that starts some lexicon word (a trie of label ids is walked along), a
space may only follow a complete lexicon word, and at the end only prefixes whose last word is complete
count. Words are separated by single spaces; the text never starts or ends with one.
"""

from __future__ import annotations

import numpy as np
import torch

from rnnkit.models.ctc import _NEG_INF, _logaddexp

__all__ = ["Lexicon", "lexicon_beam_search"]

_END = -1  # the trie key that marks a complete word


class Lexicon:
    """A word list over an alphabet, as a trie of label ids (label ``k`` is ``alphabet[k - 1]``).

    Example::

        >>> lex = Lexicon(["a", "ab"], " ab")
        >>> len(lex), lex.space
        (2, 1)
    """

    def __init__(self, words, alphabet: str):
        if " " not in alphabet:
            raise ValueError("a lexicon needs an alphabet with a space between words")
        index = {c: i + 1 for i, c in enumerate(alphabet)}
        self.space = index[" "]
        self.root: dict = {}
        self.words = sorted({w for w in words if w and set(w) <= set(alphabet) - {" "}})
        for w in self.words:
            node = self.root
            for c in w:
                node = node.setdefault(index[c], {})
            node[_END] = True

    def __len__(self) -> int:
        return len(self.words)


def lexicon_beam_search(
    log_probs: torch.Tensor, lexicon: Lexicon, beam_size: int = 8, blank: int = 0, prune: float = -12.0
) -> tuple[list[int], float]:
    """The most probable labelling of ``log_probs`` (T, C) made of lexicon words, by prefix beam search.

    Returns ``(labels, log p(labels))``; ``([], log p(empty))`` when no word fits.
    """
    lp = log_probs.detach().double().cpu().numpy()
    space, root = lexicon.space, lexicon.root
    # prefix -> [log p ending in blank, log p ending in a label, trie node of the word being spelt]
    beams: dict[tuple[int, ...], list] = {(): [0.0, _NEG_INF, root]}
    for t in range(lp.shape[0]):
        row = lp[t]
        cands = [int(c) for c in np.flatnonzero(row >= prune) if c != blank]
        nxt: dict[tuple[int, ...], list] = {}

        def acc(prefix, which, value, node, nxt=nxt):
            cur = nxt.setdefault(prefix, [_NEG_INF, _NEG_INF, node])
            cur[which] = _logaddexp(cur[which], value)

        for prefix, (pb, pnb, node) in beams.items():
            total = _logaddexp(pb, pnb)
            acc(prefix, 0, total + row[blank], node)
            last = prefix[-1] if prefix else None
            for c in cands:
                if c == last:
                    acc(prefix, 1, pnb + row[c], node)  # the same label goes on
                if c == space:  # a space only ends a complete word
                    child = root if prefix and last != space and _END in node else None
                else:  # a letter only where some lexicon word goes on like this
                    child = node.get(c)
                if child is not None:
                    # a repeated label needs a blank in between
                    acc(prefix + (c,), 1, (pb if c == last else total) + row[c], child)
        ranked = sorted(nxt.items(), key=lambda kv: _logaddexp(kv[1][0], kv[1][1]), reverse=True)
        beams = dict(ranked[:beam_size])
    done = [(k, v) for k, v in beams.items() if not k or (k[-1] != space and _END in v[2])]
    if not done:
        return [], _NEG_INF
    best, (pb, pnb, _) = max(done, key=lambda kv: _logaddexp(kv[1][0], kv[1][1]))
    return list(best), _logaddexp(pb, pnb)
