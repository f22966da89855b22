r"""The recurrent networks' class probabilities mixed with the TF-IDF model's: the text classifier a
practitioner would ship.

For a text ``x`` with ``lambda`` the networks' share:

.. math::

    p(y \mid x) = \lambda\, p_{\text{net}}(y \mid x) + (1 - \lambda)\, p_{\text{TF-IDF}}(y \mid x)

a linear pool of the two models' probabilities (the simplest of the ensembles the text-classification
literature reports; e.g. Mesnil et al. 2015, *Ensemble of generative and discriminative techniques for
sentiment analysis of movie reviews*, combine a recurrent language model with n-gram logistic models). The
network reads words in order (and character n-grams inside words); the TF-IDF model counts word pairs and
character 2-5-grams: they err on different texts, so the mixture is usually better than either.

``lambda`` is chosen on the validation part from :data:`~rnnkit.apps._common.MIX_WEIGHTS` (0 = TF-IDF alone,
1 = the networks alone) by **log loss**, the proper scoring rule: accuracy on a few hundred validation texts
changes in steps of 1/n and ties across many shares, the log loss does not. The TF-IDF model is the run's own
``tfidf`` baseline, saved with the run as ``tfidf.safetensors`` (no pickle).
"""

from __future__ import annotations

import numpy as np

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import MIX_WEIGHTS, check_share, lowest_share

__all__ = ["TFIDF_FILE", "choose_share", "log_loss", "mix_proba"]

TFIDF_FILE = "tfidf.safetensors"


def mix_proba(net: np.ndarray, tfidf: np.ndarray, share: float) -> np.ndarray:
    """``share * net + (1 - share) * tfidf``: (N, K) class probabilities of both models, same shape."""
    share = check_share(share)
    net, tfidf = np.asarray(net, np.float64), np.asarray(tfidf, np.float64)
    if net.shape != tfidf.shape:
        raise RnnkitError(
            f"mixture: expected the same texts and classes from both models, got {net.shape} and {tfidf.shape}"
        )
    return share * net + (1.0 - share) * tfidf


def log_loss(proba: np.ndarray, labels) -> float:
    """Mean ``-ln p(true class)`` (probabilities clipped at 1e-15 from below)."""
    y = np.asarray(labels, dtype=np.int64)
    return float(-np.log(np.maximum(proba[np.arange(len(y)), y], 1e-15)).mean())


def choose_share(
    net: np.ndarray, tfidf: np.ndarray, labels, weights=MIX_WEIGHTS
) -> tuple[float, dict[float, float], dict[float, float]]:
    """The networks' share with the lowest log loss on these (validation) texts (ties: the larger share), and
    every share's log loss and accuracy."""
    y = np.asarray(labels, dtype=np.int64)
    if len(y) == 0:
        raise RnnkitError("cannot choose the mixture's share on an empty validation part")
    losses, accs = {}, {}
    for w in weights:
        p = mix_proba(net, tfidf, float(w))
        losses[float(w)] = log_loss(p, y)
        accs[float(w)] = float((p.argmax(1) == y).mean())
    return lowest_share(losses), losses, accs
