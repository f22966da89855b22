"""Interpolated Kneser-Ney n-gram language model over characters or words, vectorised with numpy.

The model is the interpolated form of Kneser & Ney (1995) with the modified discounts of Chen & Goodman
(1998): for a context ``c`` (the last ``k-1`` units) and a next unit ``w``

.. math::

    p_k(w \\mid c) = \\frac{\\max(n_k(c w) - D_k(n_k(c w)), 0)}{\\sum_v n_k(c v)}
                    + \\gamma_k(c)\\, p_{k-1}(w \\mid c'), \\qquad
    \\gamma_k(c) = \\frac{D_{k,1} N_1(c\\,\\cdot) + D_{k,2} N_2(c\\,\\cdot) + D_{k,3+} N_{3+}(c\\,\\cdot)}
                        {\\sum_v n_k(c v)}

where ``c'`` drops the oldest unit of ``c``, ``n_k`` is the raw count at the model's highest order and
the *continuation count* (the number of distinct units seen just before ``c w``) at the lower orders,
``N_r(c .)`` is the number of units that follow ``c`` with ``n_k = r``, and ``D_{k,r}`` are the
Chen & Goodman discounts estimated from the count-of-counts of order ``k``. The recursion ends at the
uniform distribution over the vocabulary plus one ``<unk>`` unit, which is how units never seen in
training get probability. A context never seen (or seen only at the very end of the training text)
passes its lower order on unchanged (``gamma = 1``).

Counting runs on one stream (no sentence padding): n-grams are numbered order by order with
``np.unique`` on ``prefix_id * (V + 1) + unit`` keys, so a few MB of text at order 7 take seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from rnnkit._errors import RnnkitError

__all__ = ["KneserNeyLM"]

_UNK = "<unk>"


class _Level:
    """Counts of one order ``k``: n-gram types sorted by ``key = prefix_id * (V + 1) + unit``."""

    def __init__(self, keys: np.ndarray, raw: np.ndarray, prefix: np.ndarray, n_contexts: int):
        self.keys, self.raw, self.prefix = keys, raw, prefix
        self.n_contexts = n_contexts
        self.stats: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    def add_stats(self, kind: str, counts: np.ndarray, discount: np.ndarray) -> None:
        """Per-context totals and back-off weights for ``counts`` (raw or continuation) and ``discount``."""
        total = np.bincount(self.prefix, weights=counts, minlength=self.n_contexts)
        d_of = discount[np.minimum(counts, 3).astype(np.int64)]  # (types,) discount of each type
        mass = np.bincount(self.prefix, weights=d_of * (counts > 0), minlength=self.n_contexts)
        with np.errstate(divide="ignore", invalid="ignore"):
            gamma = np.where(total > 0, mass / np.where(total > 0, total, 1.0), 1.0)
        self.stats[kind] = (counts.astype(np.float64), total, gamma, discount)


def _discounts(counts: np.ndarray, fixed: float | None) -> np.ndarray:
    """``[0, D1, D2, D3+]`` from the count-of-counts (Chen & Goodman 1998, eq. 26), or a fixed ``D``."""
    if fixed is not None:
        return np.array([0.0, fixed, fixed, fixed])
    n = np.bincount(np.minimum(counts, 5).astype(np.int64), minlength=6).astype(np.float64)
    y = n[1] / (n[1] + 2 * n[2]) if n[1] + n[2] > 0 else 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.array([1 - 2 * y * n[2] / n[1], 2 - 3 * y * n[3] / n[2], 3 - 4 * y * n[4] / n[3]])
    if not (np.all(np.isfinite(d)) and np.all(d > 0) and np.all(d <= [1, 2, 3])):
        # Too little data for the three-discount estimate (a zero count-of-counts or a discount outside
        # (0, r]): Ney's single discount Y for all counts, kept away from 0 so unseen units keep mass.
        d = np.full(3, float(np.clip(y, 0.1, 0.9)))
    return np.concatenate([[0.0], d])


class KneserNeyLM:
    """Interpolated (modified) Kneser-Ney n-gram language model; see the module docstring for the equations.

    Args:
        max_order: the longest n-gram counted (orders ``1..max_order`` can be scored after one ``fit``).
        discount: ``"modified"`` for Chen & Goodman's three discounts per order, or one number ``D`` used
            for every count at orders >= 2 (the original Kneser-Ney form).
        unigram_discount: the discount at order 1, which sets the mass of the uniform distribution and so
            of ``<unk>``. ``None`` treats order 1 like the others; ``0.0`` gives NLTK's
            ``KneserNeyInterpolated`` base case (then unseen units get probability 0).
        min_count: units seen fewer times in training become ``<unk>``.

    Shape:
        Units are characters (pass a ``str``) or words (pass a sequence of ``str``). ``log2_probs`` returns
        one value per unit of its input.

    Example::

        lm = KneserNeyLM(max_order=7).fit(train_text)
        scores = lm.select_order(val_text)           # {order: bits per unit}; lm.order is the best
        lm.bits_per_unit(test_text)                  # bits per character for a character model
        lm.next_topk("the quick brown fo", k=3)      # [(unit, probability), ...]
    """

    def __init__(
        self,
        max_order: int = 5,
        discount: str | float = "modified",
        unigram_discount: float | None = None,
        min_count: int = 1,
    ):
        if not isinstance(max_order, int) or max_order < 1:
            raise RnnkitError(f"max_order must be an integer >= 1, got {max_order!r}")
        if discount != "modified" and not (isinstance(discount, int | float) and 0 < discount < 1):
            raise RnnkitError(f"discount must be 'modified' or a number in (0, 1), got {discount!r}")
        if unigram_discount is not None and not 0 <= unigram_discount < 1:
            raise RnnkitError(f"unigram_discount must be None or in [0, 1), got {unigram_discount!r}")
        if min_count < 1:
            raise RnnkitError(f"min_count must be >= 1, got {min_count}")
        self.max_order, self.discount, self.unigram_discount = max_order, discount, unigram_discount
        self.min_count = min_count
        self.order = max_order
        self.vocab: list[str] = []
        self._index: dict[str, int] = {}
        self._levels: list[_Level] = []
        self.chars = True

    # ----------------------------------------------------------------- units
    def _ids(self, units: str | Sequence[str]) -> np.ndarray:
        """Unit ids (0 is ``<unk>``) of a string (characters) or a sequence of words."""
        if self.chars:
            if not isinstance(units, str):
                raise RnnkitError(
                    f"this model was fitted on characters: expected a str, got {type(units).__name__}"
                )
            points = np.frombuffer(units.encode("utf-32-le"), dtype=np.uint32)
            table_keys, table_ids = self._code_table
            pos = np.clip(np.searchsorted(table_keys, points), 0, max(len(table_keys) - 1, 0))
            if len(table_keys) == 0:
                return np.zeros(len(points), dtype=np.int64)
            return np.where(table_keys[pos] == points, table_ids[pos], 0).astype(np.int64)
        if isinstance(units, str):
            raise RnnkitError("this model was fitted on words: expected a sequence of words, got a str")
        get = self._index.get
        return np.fromiter((get(u, 0) for u in units), dtype=np.int64, count=len(units))

    # ----------------------------------------------------------------- fit
    def fit(self, units: str | Sequence[str]) -> KneserNeyLM:
        """Count n-grams of orders ``1..max_order`` in ``units`` (a ``str`` for characters, else words)."""
        self.chars = isinstance(units, str)
        if len(units) < 2:
            raise RnnkitError(f"need at least 2 training units, got {len(units)}")
        if self.chars:
            points = np.frombuffer(units.encode("utf-32-le"), dtype=np.uint32)
            uniq, inv, cnt = np.unique(points, return_inverse=True, return_counts=True)
            keep = cnt >= self.min_count
            new_id = np.zeros(len(uniq), dtype=np.int64)
            new_id[keep] = np.arange(1, keep.sum() + 1)
            self.vocab = [_UNK] + [chr(int(p)) for p in uniq[keep]]
            self._code_table = (uniq[keep], new_id[keep])
            ids = new_id[inv.ravel()]
        else:
            words, inv, cnt = np.unique(
                np.asarray(list(units), dtype=object).astype(str), return_inverse=True, return_counts=True
            )
            keep = cnt >= self.min_count
            new_id = np.zeros(len(words), dtype=np.int64)
            new_id[keep] = np.arange(1, keep.sum() + 1)
            self.vocab = [_UNK] + [str(w) for w in words[keep]]
            ids = new_id[inv.ravel()]
        self._index = {u: i for i, u in enumerate(self.vocab)}
        self._build(ids)
        self.order = len(self._levels)
        return self

    def _build(self, ids: np.ndarray) -> None:
        base = len(self.vocab)  # V + 1 with <unk>
        fixed = None if self.discount == "modified" else float(self.discount)
        # Level 1: the unit ids are the type ids; one (empty) context.
        raw1 = np.bincount(ids, minlength=base)
        levels = [_Level(np.arange(base, dtype=np.int64), raw1, np.zeros(base, dtype=np.int64), 1)]
        gid = ids  # gid[i]: type id of the (k-1)-gram starting at position i
        conts = []  # continuation counts of order k-1, found while numbering order k
        for k in range(2, self.max_order + 1):
            if len(ids) < k:
                break
            keys = gid[: len(ids) - k + 1] * base + ids[k - 1 :]
            uniq, first, inv, cnt = np.unique(
                keys, return_index=True, return_inverse=True, return_counts=True
            )
            levels.append(_Level(uniq, cnt, gid[first], len(levels[-1].keys)))
            # Distinct units seen before a (k-1)-gram = number of k-gram types whose suffix it is; the
            # suffix of the k-gram at position i is the (k-1)-gram at position i + 1.
            conts.append(np.bincount(gid[first + 1], minlength=len(levels[-2].keys)))
            gid = inv.ravel().astype(np.int64)
        for k, level in enumerate(levels, start=1):
            d_fixed = self.unigram_discount if k == 1 and self.unigram_discount is not None else fixed
            level.add_stats("raw", level.raw, _discounts(level.raw, d_fixed))
            if k < len(levels):
                level.add_stats("cont", conts[k - 1], _discounts(conts[k - 1], d_fixed))
        self._levels = levels

    # ----------------------------------------------------------------- scoring
    def _check(self, order: int | None) -> int:
        if not self._levels:
            raise RnnkitError("the model is not fitted: call fit(units) first")
        order = self.order if order is None else order
        if not 1 <= order <= len(self._levels):
            raise RnnkitError(f"order must be in 1..{len(self._levels)}, got {order}")
        return order

    def _lookup(self, ids: np.ndarray, top: int) -> list[np.ndarray]:
        """Type ids (-1 when unseen) of the held-out k-grams starting at each position, k = 1..top."""
        out = [ids]
        base = len(self.vocab)
        for k in range(2, top + 1):
            prev = out[-1][: len(ids) - k + 1]
            keys = prev * base + ids[k - 1 :]
            table = self._levels[k - 1].keys
            pos = np.clip(np.searchsorted(table, keys), 0, len(table) - 1)
            out.append(np.where((prev >= 0) & (table[pos] == keys), pos, -1))
        return out

    def _uniform_unigram(self, order: int) -> np.ndarray:
        """Order-1 probabilities of every unit (kind: raw for a unigram model, else continuation)."""
        counts, total, gamma, disc = self._levels[0].stats["raw" if order == 1 else "cont"]
        base = len(self.vocab)
        if total[0] <= 0:
            return np.full(base, 1.0 / base)
        d = disc[np.minimum(counts, 3).astype(np.int64)]
        return np.maximum(counts - d, 0.0) / total[0] + gamma[0] / base

    def _log2_probs(self, ids: np.ndarray, order: int, grams: list[np.ndarray]) -> np.ndarray:
        p = self._uniform_unigram(order)[ids]
        m = len(ids)
        for k in range(2, order + 1):
            if m < k:
                break
            counts, total, gamma, disc = self._levels[k - 1].stats["raw" if k == order else "cont"]
            ctx = grams[k - 2][: m - k + 1]  # (k-1)-gram before each target t = k-1 .. m-1
            ng = grams[k - 1][: m - k + 1]
            safe_ctx = np.maximum(ctx, 0)
            ok = (ctx >= 0) & (total[safe_ctx] > 0)
            c = np.where(ng >= 0, counts[np.maximum(ng, 0)], 0.0)
            d = disc[np.minimum(c, 3).astype(np.int64)]
            with np.errstate(divide="ignore", invalid="ignore"):
                new = np.maximum(c - d, 0.0) / total[safe_ctx] + gamma[safe_ctx] * p[k - 1 :]
            p[k - 1 :] = np.where(ok, new, p[k - 1 :])
        with np.errstate(divide="ignore"):
            return np.log2(p)

    def log2_probs(self, units: str | Sequence[str], order: int | None = None) -> np.ndarray:
        """``log2 p(unit_t | previous units)`` for every unit of a held-out text (shorter contexts at its start)."""
        order = self._check(order)
        ids = self._ids(units)
        return self._log2_probs(ids, order, self._lookup(ids, order))

    def bits_per_unit(self, units: str | Sequence[str], order: int | None = None) -> float:
        """Mean ``-log2 p`` over ``units``: bits per character for a character model, per word for a word model."""
        if len(units) == 0:
            raise RnnkitError("cannot score an empty text")
        return float(-self.log2_probs(units, order).mean())

    def select_order(
        self, units: str | Sequence[str], orders: Iterable[int] | None = None
    ) -> dict[int, float]:
        """Score ``units`` (validation) at each order, set ``self.order`` to the best; return ``{order: bits}``."""
        self._check(None)
        orders = list(range(1, len(self._levels) + 1) if orders is None else orders)
        for o in orders:
            self._check(o)
        if len(units) == 0:
            raise RnnkitError("cannot choose an order on an empty validation text")
        ids = self._ids(units)
        grams = self._lookup(ids, max(orders))
        scores = {o: float(-self._log2_probs(ids, o, grams).mean()) for o in orders}
        self.order = min(scores, key=scores.get)
        return scores

    def next_distribution(self, context: str | Sequence[str], order: int | None = None) -> np.ndarray:
        """Probabilities of every unit in ``self.vocab`` (index 0 is ``<unk>``) after ``context``; sums to 1."""
        order = self._check(order)
        ids = self._ids(context)[-(order - 1) :] if order > 1 else self._ids(context)[:0]
        p = self._uniform_unigram(order)
        base = len(self.vocab)
        for k in range(2, min(order, len(ids) + 1) + 1):
            counts, total, gamma, disc = self._levels[k - 1].stats["raw" if k == order else "cont"]
            ctx = self._lookup(ids[len(ids) - (k - 1) :], k - 1)[-1]
            if len(ctx) == 0 or ctx[0] < 0 or total[ctx[0]] <= 0:
                continue
            c_id = int(ctx[0])
            keys = self._levels[k - 1].keys
            lo, hi = np.searchsorted(keys, [c_id * base, (c_id + 1) * base])
            units_after = keys[lo:hi] - c_id * base
            cnt = counts[lo:hi]
            d = disc[np.minimum(cnt, 3).astype(np.int64)]
            p = gamma[c_id] * p
            p[units_after] += np.maximum(cnt - d, 0.0) / total[c_id]
        return p

    def next_topk(
        self, context: str | Sequence[str], k: int = 5, order: int | None = None, unk: bool = False
    ) -> list[tuple[str, float]]:
        """The ``k`` most likely next units after ``context`` with their probabilities, most likely first.

        ``<unk>`` is left out of the list unless ``unk=True`` (the probabilities are not renormalised): the
        model's own unit for the unseen and, at word level, a ``"<unk>"`` word of the training text (rare words
        mapped to it before fitting, as a word model's vocabulary does), which is counted like any word.
        """
        if k < 1:
            raise RnnkitError(f"k must be >= 1, got {k}")
        p = self.next_distribution(context, order)
        if not unk:
            p = p.copy()
            p[0] = -1.0
            p[self._index.get(_UNK, 0)] = -1.0
        top = np.argsort(-p, kind="stable")[:k]
        return [(self.vocab[i], float(p[i])) for i in top if p[i] >= 0]
