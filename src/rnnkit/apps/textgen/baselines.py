"""The language model's baselines, fitted on the run's own split and scored on the same held-out tokens.

* ``unigram``: token frequencies of the training part (add-one smoothed);
* ``kneser_ney``: the interpolated modified Kneser-Ney n-gram (:class:`rnnkit.baselines.KneserNeyLM`), its
  order chosen on the validation part (every order up to ``ngram_max_order`` is scored there);
* ``kneser_ney_5``: the same counts at order 5 (the issue's yardstick for the demo-scale model);
* ``feedforward``: Bengio et al.'s fixed-context network (:class:`rnnkit.baselines.FixedContextLM`), the
  recurrent model's counterpart without recurrence.

Every model sees the same tokens: at word level the training vocabulary's words, the rarer ones (``min_freq``)
mapped to ``<unk>`` as the recurrent model's vocabulary maps them, so bits per word are comparable.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

import numpy as np

from rnnkit.apps.textgen.config import TextGenConfig
from rnnkit.apps.textgen.data import scored_positions
from rnnkit.datasets import Vocabulary

__all__ = ["BASELINE_NAMES", "fit_baselines", "kneser_ney_ranks", "units"]

BASELINE_NAMES = {
    "unigram": "unigram token frequencies",
    "kneser_ney": "Kneser-Ney n-gram (order chosen on validation)",
    "kneser_ney_5": "Kneser-Ney 5-gram",
    "feedforward": "feed-forward fixed-context network (Bengio et al. 2003)",
}


def units(text: str, vocab: Vocabulary) -> str | list[str]:
    """The text as the baselines read it: the text itself (characters) or its in-vocabulary words."""
    if vocab.level == "char":
        return text
    unk = vocab.id_to_token(vocab.unk_id)
    return [w if w in vocab else unk for w in vocab.tokenize(text)]


def _unigram_bits(train, test) -> float:
    counts = Counter(train)
    total = len(train) + len(counts) + 1
    nats = -sum(n * math.log((counts.get(u, 0) + 1) / total) for u, n in Counter(test).items())
    return nats / len(test) / math.log(2)


def fit_baselines(
    cfg: TextGenConfig, vocab: Vocabulary, train_text: str, val_text: str, test_units, say=print
) -> dict[str, Any]:
    """Every baseline's bits per token on ``test_units`` (the tokens the recurrent model scores).

    ``test_units`` are the held-out tokens the recurrent model reads; every baseline is scored on the same
    positions (:func:`~rnnkit.apps.textgen.data.scored_positions`), with the whole text before each as context.
    Returns ``{"bits": {name: bits per token}, "details": {...}}``, with the baselines also the fitted
    ``"kneser_ney"`` model, its ``"kneser_ney_log2"`` per scored token and the ``"train_units"`` it was fitted
    on (for the network + n-gram mixture), and the fitted ``"feedforward_model"`` (saved with the run).
    """
    from rnnkit.baselines import FixedContextLM, KneserNeyLM

    train_u, val_u = units(train_text, vocab), units(val_text, vocab)
    pos = scored_positions(len(test_units))
    scored = [test_units[i] for i in pos]
    bits: dict[str, float] = {"unigram": _unigram_bits(train_u, scored)}
    details: dict[str, Any] = {}
    if not cfg.baselines:
        return {"bits": bits, "details": details}
    t = time.perf_counter()
    lm = KneserNeyLM(max_order=cfg.ngram_max_order, min_count=1).fit(train_u)
    val_scores = lm.select_order(val_u) if len(val_u) else {lm.order: float("nan")}
    logp = lm.log2_probs(test_units)[pos]
    bits["kneser_ney"] = float(-logp.mean())
    if lm.max_order >= 5 and lm.order != 5:
        bits["kneser_ney_5"] = float(-lm.log2_probs(test_units, order=5)[pos].mean())
    details["kneser_ney"] = {
        "order": lm.order,
        "validation_bits_by_order": val_scores,
        "seconds": round(time.perf_counter() - t, 2),
    }
    say(f"Kneser-Ney: order {lm.order} chosen on validation; {bits['kneser_ney']:.3f} bits/{vocab.level}")
    t = time.perf_counter()
    context = cfg.ff_context or (16 if vocab.level == "char" else 5)
    ff = FixedContextLM(
        context=context, max_epochs=cfg.ff_epochs, patience=2, seed=cfg.seed, max_val_positions=20_000
    )
    ff.fit(train_u, val_u)
    # the fixed-context model sees the tokens before the first scored one too
    bits["feedforward"] = float(-ff.log2_probs(test_units)[pos].mean())
    details["feedforward"] = {
        "context": context,
        "epochs": len(ff.history),
        "seconds": round(time.perf_counter() - t, 2),
    }
    say(f"feed-forward ({context} tokens of context): {bits['feedforward']:.3f} bits/{vocab.level}")
    return {
        "bits": bits,
        "details": details,
        "kneser_ney": lm,
        "kneser_ney_log2": logp,
        "train_units": train_u,
        "feedforward_model": ff,
    }


def kneser_ney_ranks(lm, test_units: list[str], positions, k: int = 5) -> np.ndarray:
    """The rank of each target among the n-gram's ``k`` most likely next words (``k`` = a miss; ``<unk>`` is
    never guessed, so an ``<unk>`` target is a miss, as for the recurrent model)."""
    ranks = []
    ctx_len = max(0, lm.order - 1)
    for pos in positions:
        guesses = [u for u, _ in lm.next_topk(test_units[max(0, pos - ctx_len) : pos], k)]
        target = test_units[pos]
        ranks.append(guesses.index(target) if target in guesses else k)
    return np.asarray(ranks)
