"""Hashed character n-gram ("subword") features of words, fastText-style (Bojanowski et al., 2017).

A word ``w`` is read as ``<w>`` (with boundary marks) and cut into its character n-grams of ``n_min`` to
``n_max`` characters; each n-gram is hashed (CRC-32 of its UTF-8 bytes) into one of ``buckets`` rows. The
word's vector is the mean of its word embedding and its n-gram rows,

.. math:: v(w) = \\frac{1}{1 + |G_w|}\\Big(E_{word}[w] + \\sum_{g \\in G_w} E_{ngram}[\\mathrm{hash}(g)]\\Big),

so a word outside the vocabulary (rare in the training texts, or never seen) still gets a vector from
the pieces it shares with known words ("unwatchable" from "watch", "able", "un"...).

The ids a text is encoded to (:meth:`Subwords.encode`) keep both: a vocabulary word has its vocabulary
id, a word outside it gets an id ``>= len(vocab)`` that indexes this table's list of extra words. The
batch (:meth:`Subwords.collate`) turns them into word ids (extra words -> ``<unk>``) and a padded
``(B, T, G)`` tensor of n-gram rows + 1 (0 = no n-gram).
"""

from __future__ import annotations

import zlib

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["HashedNgramEmbedding", "Subwords", "char_ngrams", "subword_vectors_reference"]


def char_ngrams(word: str, n_min: int, n_max: int) -> list[str]:
    """The character n-grams of ``<word>``, ``n_min <= n <= n_max``, in order of length then position."""
    w = f"<{word}>"
    return [w[i : i + n] for n in range(n_min, n_max + 1) for i in range(len(w) - n + 1)]


def _bucket(ngram: str, buckets: int) -> int:
    return zlib.crc32(ngram.encode("utf-8")) % buckets


class Subwords:
    """The n-gram rows of every word a model has been asked about: vocabulary words and extra words.

    Args:
        vocab: the run's word :class:`~rnnkit.datasets.Vocabulary` (its special tokens get no n-grams).
        buckets: hash rows; ``n_min``, ``n_max``: the n-gram lengths.

    Example::

        >>> sub = Subwords(vocab, buckets=100_000)
        >>> ids = sub.encode(["an unwatchable film"])      # unseen "unwatchable" -> an extra id
        >>> batch = sub.collate(ids)                         # inputs (B, T), subwords (B, T, G), lengths
    """

    def __init__(self, vocab, buckets: int, n_min: int = 3, n_max: int = 6):
        self.vocab, self.buckets, self.n_min, self.n_max = vocab, buckets, n_min, n_max
        specials = {vocab.pad_id, vocab.unk_id}
        self._rows: list[tuple[int, ...] | None] = [
            () if i in specials else None for i in range(len(vocab))
        ]  # lazily filled
        self._extra: dict[str, int] = {}
        self._extra_words: list[str] = []
        self._extra_rows: dict[int, tuple[int, ...]] = {}
        self._padded: np.ndarray | None = None  # the rows of ids 0..N-1 as one padded array
        self._counts: np.ndarray | None = None

    @property
    def extra_words(self) -> int:
        """How many words outside the vocabulary have been encoded (since :meth:`forget_extra`)."""
        return len(self._extra_words)

    def forget_extra(self) -> None:
        """Drop the extra words (a server's unseen words must not pile up); vocabulary rows stay cached."""
        self._extra, self._extra_words, self._extra_rows = {}, [], {}
        if self._padded is not None and self._padded.shape[0] > len(self.vocab):
            self._padded, self._counts = self._padded[: len(self.vocab)], self._counts[: len(self.vocab)]

    def word(self, i: int) -> str:
        v = len(self.vocab)
        return self.vocab.id_to_token(i) if i < v else self._extra_words[i - v]

    def rows(self, i: int) -> tuple[int, ...]:
        """N-gram rows + 1 of the word with (extended) id ``i``."""
        v = len(self.vocab)
        if i < v and self._rows[i] is not None:
            return self._rows[i]
        if i >= v and i in self._extra_rows:
            return self._extra_rows[i]
        r = tuple(1 + _bucket(g, self.buckets) for g in char_ngrams(self.word(i), self.n_min, self.n_max))
        if i < v:
            self._rows[i] = r
        else:
            self._extra_rows[i] = r
        return r

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Extended ids of each text's words (a text with no words becomes ``[<unk>]``)."""
        vocab, unk, out = self.vocab, self.vocab.unk_id, []
        for t in texts:
            ids = []
            for w in vocab.tokenize(t):
                i = vocab.token_to_id(w)
                if i == unk:
                    i = self._extra.get(w)
                    if i is None:
                        i = self._extra[w] = len(self.vocab) + len(self._extra_words)
                        self._extra_words.append(w)
                ids.append(i)
            out.append(ids or [unk])
        return out

    def _table(self, top: int) -> np.ndarray:
        """``(ids, G)`` n-gram rows + 1 of every id up to ``top``, right-padded with 0 (grown on demand)."""
        have = 0 if self._padded is None else self._padded.shape[0]
        if top >= have:
            rows = [self.rows(i) for i in range(have, top + 1)]
            width = max([len(r) for r in rows] + [0 if self._padded is None else self._padded.shape[1], 1])
            grown = np.zeros((top + 1, width), dtype=np.int64)
            if self._padded is not None:
                grown[:have, : self._padded.shape[1]] = self._padded
            for k, r in enumerate(rows):
                grown[have + k, : len(r)] = r
            self._padded, self._counts = grown, np.count_nonzero(grown, axis=1)
        return self._padded

    def collate(self, ids: list[list[int]], labels: list[int] | None = None) -> dict[str, Tensor]:
        """Right-padded batch: inputs (B, T) word ids, subwords (B, T, G), lengths (B,), targets (B,)."""
        v, unk = len(self.vocab), self.vocab.unk_id
        lengths = np.array([len(x) for x in ids])
        padded = np.zeros((len(ids), int(lengths.max())), dtype=np.int64)  # (B, T), 0 = <pad>
        for b, x in enumerate(ids):
            padded[b, : len(x)] = x
        table = self._table(int(padded.max()))
        G = max(1, int(self._counts[padded].max()))
        sub = table[padded][:, :, :G]  # (B, T, G); <pad> has no n-grams
        inputs = np.where(padded < v, padded, unk)  # extra words read <unk>'s word vector
        batch = {
            "inputs": torch.from_numpy(inputs),
            "subwords": torch.from_numpy(np.ascontiguousarray(sub)),
            "lengths": torch.from_numpy(lengths),
        }
        if labels is not None:
            batch["targets"] = torch.tensor(labels, dtype=torch.long)
        return batch


class HashedNgramEmbedding(nn.Module):
    """Word embedding plus hashed character n-gram embeddings, averaged (see the module's equation).

    Args:
        vocab_size: word rows; ``buckets``: n-gram rows (row 0 of the n-gram table is padding);
        embedding_dim: the vector size.

    Shape: words (B, T), subwords (B, T, G) n-gram rows + 1 (0 = none) -> (B, T, E).

    Example::

        >>> emb = HashedNgramEmbedding(100, 1000, 8)
        >>> emb(torch.tensor([[3, 4]]), torch.tensor([[[5, 9, 0], [0, 0, 0]]])).shape
        torch.Size([1, 2, 8])
    """

    def __init__(self, vocab_size: int, buckets: int, embedding_dim: int):
        super().__init__()
        self.word = nn.Embedding(vocab_size, embedding_dim)
        self.ngram = nn.EmbeddingBag(buckets + 1, embedding_dim, mode="sum", padding_idx=0)
        nn.init.normal_(self.ngram.weight, std=0.1)  # smaller than the words': many rows are summed
        with torch.no_grad():
            self.ngram.weight[0].zero_()
        self.size = embedding_dim

    def forward(self, words: Tensor, subwords: Tensor) -> Tensor:
        B, T, G = subwords.shape
        if torch.onnx.is_in_onnx_export():  # ONNX has no EmbeddingBag with a padding row: gather, mask, sum
            rows = nn.functional.embedding(subwords, self.ngram.weight)  # (B, T, G, E)
            summed = (rows * (subwords > 0).unsqueeze(-1).to(rows.dtype)).sum(2)
        else:
            summed = self.ngram(subwords.reshape(B * T, G)).reshape(B, T, -1)  # (B, T, E)
        count = (subwords > 0).sum(-1, keepdim=True)  # (B, T, 1)
        return (self.word(words) + summed) / (1 + count)


def subword_vectors_reference(
    word_weight: Tensor, ngram_weight: Tensor, words: list[str], word_ids: list[int], n_min: int, n_max: int
) -> Tensor:
    """The slow twin of :class:`HashedNgramEmbedding`: one word at a time, a plain loop over its n-grams.

    ``ngram_weight`` has ``buckets + 1`` rows (row 0 unused); returns ``(len(words), E)``.
    """
    buckets = ngram_weight.shape[0] - 1
    out = []
    for w, i in zip(words, word_ids):
        grams = []
        if w is not None:
            marked = "<" + w + ">"
            for start in range(len(marked)):
                for n in range(n_min, n_max + 1):
                    if start + n <= len(marked):
                        grams.append(marked[start : start + n])
        total = word_weight[i]
        for g in grams:
            total = total + ngram_weight[1 + zlib.crc32(g.encode("utf-8")) % buckets]
        out.append(total / (1 + len(grams)))
    return torch.stack(out)
