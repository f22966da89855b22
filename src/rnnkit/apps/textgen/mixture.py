"""The network interpolated with the Kneser-Ney n-gram: the mixture the RNNLM literature reports next to both.

For a next token ``w`` after the text so far ``c``, with ``lambda`` the network's share:

.. math::

    p(w \\mid c) = \\lambda\\, p_{\\text{net}}(w \\mid c) + (1 - \\lambda)\\, p_{\\text{KN}}(w \\mid c_{-(n-1):})

(linear interpolation of the recurrent model with a Kneser-Ney n-gram, as Mikolov et al. 2011, *Empirical
evaluation and combination of advanced language modeling techniques*, and the RNNLM toolkit's ``-lambda``).
The two models err differently (the n-gram remembers rare exact phrases, the network generalises over
contexts), so on held-out text the mixture usually has fewer bits than either. ``lambda`` is chosen on
the validation part from :data:`MIX_WEIGHTS`; ``1`` (the network alone) and ``0`` (the n-gram alone) are
among the choices, so on the text it was chosen on the mixture is never worse than either model.

The n-gram is the run's ``kneser_ney`` baseline (same tokens: at word level the network's vocabulary,
rarer words as ``<unk>``). A saved run keeps its training tokens in ``ngram.safetensors`` (no pickle; a
few MB) and refits the n-gram at its chosen order when the mixture is first used (seconds).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import MIX_WEIGHTS, check_share, lowest_share

__all__ = [
    "MIX_WEIGHTS",
    "NGRAM_FILE",
    "NGRAM_INFO",
    "NgramMixture",
    "choose_suggest_weight",
    "choose_weight",
    "mix_log2",
    "mixture_next_ranks",
]

NGRAM_FILE = "ngram.safetensors"
NGRAM_INFO = "ngram.json"  # the sha256 of NGRAM_FILE, checked when it is read


def mix_log2(net_log2: np.ndarray, ngram_log2: np.ndarray, weight: float) -> np.ndarray:
    """``log2(weight * 2^net + (1 - weight) * 2^ngram)`` per token (base-2 log-probabilities, same shape)."""
    check_share(weight)
    net_log2, ngram_log2 = np.asarray(net_log2, np.float64), np.asarray(ngram_log2, np.float64)
    if net_log2.shape != ngram_log2.shape:
        raise RnnkitError(
            f"mixture: expected the same tokens from both models, got {net_log2.shape} and {ngram_log2.shape}"
        )
    if weight == 1.0:
        return net_log2
    if weight == 0.0:
        return ngram_log2
    return np.logaddexp2(math.log2(weight) + net_log2, math.log2(1.0 - weight) + ngram_log2)


def choose_weight(
    net_log2: np.ndarray, ngram_log2: np.ndarray, weights=MIX_WEIGHTS
) -> tuple[float, dict[float, float]]:
    """The network's share with the fewest bits per token on these (validation) tokens, and every share's bits.

    On a tie the larger share (more of the network) wins."""
    if len(net_log2) == 0:
        raise RnnkitError("cannot choose a mixture weight on an empty validation part")
    bits = {float(w): float(-mix_log2(net_log2, ngram_log2, float(w)).mean()) for w in weights}
    return lowest_share(bits), bits


def choose_suggest_weight(ranks: np.ndarray, weights=MIX_WEIGHTS) -> tuple[float, dict[float, float]]:
    """The share whose suggestions are best on validation: the most top-5 hits (then top-1 hits, then the
    larger share), from ``ranks`` (len(weights), n) of :func:`mixture_next_ranks`; and every share's top-5."""
    top5 = {float(w): float((r < 5).mean()) for w, r in zip(weights, ranks)}
    top1 = {float(w): float((r < 1).mean()) for w, r in zip(weights, ranks)}
    best = max(top5, key=lambda w: (top5[w], top1[w], w))
    return best, top5


class NgramMixture:
    """The fitted n-gram of a run and the network's share ``weight``, over the network's vocabulary.

    Args:
        lm: a fitted :class:`rnnkit.baselines.KneserNeyLM` (its ``order`` is the one used).
        weight: the network's share ``lambda`` in [0, 1] (chosen by bits on validation).
        vocab: the network's :class:`rnnkit.datasets.Vocabulary`; the n-gram's units map onto it (its own
            ``<unk>`` onto the network's).
        suggest_weight: the share next-word suggestions use (chosen by top-5 accuracy on validation, see
            :func:`choose_suggest_weight`); default ``weight``.

    Example::

        mix = NgramMixture.load("runs/fortunes-words", vocab)
        p = mix.mix(net_probs, ["the", "cat"])   # (V,) probabilities over the network's vocabulary
    """

    def __init__(self, lm, weight: float, vocab, suggest_weight: float | None = None):
        self.lm, self.weight = lm, float(weight)
        self.suggest_weight = self.weight if suggest_weight is None else float(suggest_weight)
        unk = vocab.unk_id
        self._to_net = np.array(
            [vocab.token_to_id(u) if u in vocab else unk for u in lm.vocab], dtype=np.int64
        )
        self.size = len(vocab)

    @property
    def context_size(self) -> int:
        """Tokens of context the n-gram reads (``order - 1``)."""
        return max(0, self.lm.order - 1)

    def ngram_probs(self, context) -> np.ndarray:
        """The n-gram's next-token probabilities after ``context`` (a str of characters or a list of words),
        over the network's vocabulary: (V,), sums to 1."""
        n = self.context_size
        ctx = context[len(context) - n :] if n else context[:0]
        p = self.lm.next_distribution(ctx)
        return np.bincount(self._to_net, weights=p, minlength=self.size)

    def mix(self, net_probs, context, weight: float | None = None) -> np.ndarray:
        """``w * net_probs + (1 - w) * ngram_probs(context)`` with ``w = weight`` (default the mixture's
        ``weight``): (V,) float64, sums to 1."""
        w = self.weight if weight is None else float(weight)
        net = np.asarray(net_probs, dtype=np.float64)
        if net.shape != (self.size,):
            raise RnnkitError(f"mixture: expected {self.size} network probabilities, got shape {net.shape}")
        if w == 1.0:
            return net
        return w * net + (1.0 - w) * self.ngram_probs(context)

    # ----------------------------------------------------------------- saving
    def save(self, path, train_units) -> str:
        """Write the training tokens the n-gram is refitted from (characters as UTF-8 bytes, words as the
        network's ids; ``train_units`` as the n-gram was fitted on them) and the mixture's order and shares to
        ``path`` (safetensors); returns the file's sha256, which :meth:`load` checks."""
        import torch

        from rnnkit.files import write_safetensors

        if isinstance(train_units, str):
            tokens = np.frombuffer(train_units.encode("utf-8"), dtype=np.uint8).copy()
        else:
            index = {u: int(i) for u, i in zip(self.lm.vocab, self._to_net)}
            tokens = np.asarray([index.get(u, self._to_net[0]) for u in train_units], np.int32)
        meta = {
            "order": str(self.lm.order),
            "weight": repr(self.weight),
            "suggest_weight": repr(self.suggest_weight),
            "level": "char" if self.lm.chars else "word",
        }
        return write_safetensors(path, {"tokens": torch.from_numpy(tokens)}, meta)

    @classmethod
    def load(cls, path, vocab, sha256: str | None = None) -> NgramMixture:
        """The mixture saved by :meth:`save` (the n-gram refitted on the saved tokens); with ``sha256``, a file
        whose checksum differs is refused as damaged."""
        from rnnkit.baselines import KneserNeyLM
        from rnnkit.files import read_safetensors

        path = Path(path)
        try:
            tensors, meta = read_safetensors(path, sha256)
            tokens = tensors["tokens"].numpy()
            order, weight, level = int(meta["order"]), float(meta["weight"]), meta["level"]
            suggest = float(meta.get("suggest_weight", weight))
        except (RnnkitError, KeyError, ValueError) as exc:
            raise RnnkitError(f"damaged n-gram file of the mixture: {exc}") from None
        if level != vocab.level or not (0.0 <= weight <= 1.0 and 0.0 <= suggest <= 1.0) or order < 1:
            raise RnnkitError(
                f"{path}: expected a {vocab.level}-level n-gram with a weight in [0, 1], got {meta}"
            )
        if level == "char":
            try:
                units = tokens.tobytes().decode("utf-8", errors="strict")
            except UnicodeDecodeError as exc:
                raise RnnkitError(f"{path}: damaged n-gram file of the mixture: {exc}") from None
        else:
            if len(tokens) and (tokens.min() < 0 or tokens.max() >= len(vocab)):
                raise RnnkitError(f"{path}: token ids outside the vocabulary of {len(vocab)} (damaged run?)")
            units = [vocab.id_to_token(int(i)) for i in tokens]
        lm = KneserNeyLM(max_order=order).fit(units)
        return cls(lm, weight, vocab, suggest)


def mixture_next_ranks(
    model, mixture: NgramMixture, ids, units, never: list[int], limit: int, weights, k: int = 5
) -> np.ndarray:
    """The rank (``k`` = not among the first ``k``) of each of the first ``limit`` scored next tokens under the
    mixture with each of the network's shares in ``weights``: (len(weights), n), the positions and order of
    :func:`rnnkit.apps.textgen.model.next_word_hits`.

    ``ids`` are the held-out tokens as the network reads them, ``units`` the same tokens as the n-gram reads
    them (words); the ids in ``never`` (``<unk>``, ``<pad>``) are never guessed, so an ``<unk>`` target is a
    miss. A rank is the target's place in a stable sort of the probabilities (ties: lower id first).
    """
    from rnnkit.apps.textgen.data import scored_positions, stream_count
    from rnnkit.apps.textgen.model import stream_logits

    w = np.asarray(weights, dtype=np.float64)[:, None]  # (W, 1)
    length = (len(ids) - 1) // stream_count(len(ids))
    positions = scored_positions(len(units))[:limit]
    rows = np.arange(len(positions))
    b_of, t_of = rows // length, rows % length  # the stream and step of each scored position
    ranks = np.full((len(w), len(positions)), k, dtype=np.int64)
    never_set = {int(i) for i in never}
    for a, logits, y in stream_logits(model, ids):  # (B, T, V), (B, T)
        inside = (t_of >= a) & (t_of < a + y.shape[1])
        if not inside.any():
            break  # the positions are in order: none after this chunk either
        probs = logits[b_of[inside], t_of[inside] - a].double().softmax(-1).numpy()
        for r, p_net in zip(rows[inside], probs):
            target = int(y[b_of[r], t_of[r] - a])
            if target in never_set:
                continue  # a miss for every share
            pos = int(positions[r])
            p_kn = mixture.ngram_probs(units[max(0, pos - mixture.context_size) : pos])
            p = w * p_net[None, :] + (1.0 - w) * p_kn[None, :]  # (W, V)
            p[:, never] = -1.0
            pt = p[:, target : target + 1]
            rank = (p > pt).sum(1) + (p[:, :target] == pt).sum(1)
            ranks[:, r] = np.minimum(rank, k)
    return ranks
