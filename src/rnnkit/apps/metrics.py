"""Metrics of the applications: classification, forecasting and language modelling.

All functions take numpy arrays (or anything ``np.asarray`` accepts) and return Python floats, so their
results go straight into ``metrics.json``.

Forecast metrics follow Hyndman & Koehler (2006) and the M4 competition:

* ``MAE = mean |y - f|``
* ``sMAPE = 100 * mean(2 |y - f| / (|y| + |f|))`` (in percent, between 0 and 200; terms with ``y = f = 0``
  count as 0)
* ``MASE = MAE / scale`` with ``scale = mean |y_t - y_{t-m}|`` over the *training* part of the series, ``m``
  the seasonal period (``m = 1`` for non-seasonal data). MASE < 1 beats the in-sample one-step seasonal
  naive forecast.
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit._errors import RnnkitError

__all__ = [
    "accuracy",
    "bits_per_char",
    "confusion_matrix",
    "f1_score",
    "mae",
    "mase",
    "mase_scale",
    "smape",
]


def accuracy(y_true, y_pred) -> float:
    """Fraction of equal labels. Example: ``accuracy([0, 1, 1], [0, 1, 0]) == 2 / 3``."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.shape != p.shape or t.size == 0:
        raise RnnkitError(f"expected two non-empty label arrays of one shape, got {t.shape} and {p.shape}")
    return float((t == p).mean())


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int array: row = true class, column = predicted class."""
    t, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    out = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(out, (t, p), 1)
    return out


def f1_score(y_true, y_pred, num_classes: int | None = None) -> float:
    """F1 score: the positive class's F1 for two classes (labels 0/1), the macro average for more.

    A class that is never predicted nor present contributes nothing to the macro average; a class with
    no true positives has F1 = 0. Example: ``f1_score([0, 1, 1, 0], [0, 1, 0, 0]) == 2 / 3``.
    """
    t, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    k = int(num_classes or max(int(t.max(initial=0)), int(p.max(initial=0))) + 1)
    cm = confusion_matrix(t, p, k)
    tp = np.diag(cm).astype(np.float64)
    pred = cm.sum(0).astype(np.float64)
    true = cm.sum(1).astype(np.float64)
    denom = pred + true
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    if k == 2:
        return float(f1[1])
    present = denom > 0
    return float(f1[present].mean()) if present.any() else 0.0


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """The actual and forecast values as float64; a non-finite forecast makes every forecast NaN, so that
    each metric is NaN (never a good score) and every ``met`` comparison with it is False."""
    y, f = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if y.shape != f.shape or y.size == 0:
        raise RnnkitError(
            f"expected actual and forecast arrays of one non-empty shape, got {y.shape}, {f.shape}"
        )
    if not np.isfinite(f).all():
        f = np.full_like(f, np.nan)
    return y, f


def mae(y_true, y_pred) -> float:
    """Mean absolute error."""
    y, f = _pair(y_true, y_pred)
    return float(np.abs(y - f).mean())


def smape(y_true, y_pred) -> float:
    """Symmetric mean absolute percentage error in percent (0 to 200), as in the M4 competition."""
    y, f = _pair(y_true, y_pred)
    if np.isnan(f).any():
        return math.nan
    denom = np.abs(y) + np.abs(f)
    terms = np.divide(2 * np.abs(y - f), denom, out=np.zeros_like(denom), where=denom > 0)
    return float(100 * terms.mean())


def mase_scale(train, season: int = 1) -> float:
    """``mean |y_t - y_{t-season}|`` over a training series (N,) or (N, C): the denominator of MASE."""
    y = np.asarray(train, dtype=np.float64)
    if season < 1 or len(y) <= season:
        raise RnnkitError(
            f"MASE needs a training series longer than the season: got {len(y)} values, season {season}"
        )
    scale = float(np.abs(y[season:] - y[:-season]).mean())
    if not scale > 0:
        raise RnnkitError("MASE is undefined for a constant training series (its seasonal differences are 0)")
    return scale


def mase(y_true, y_pred, scale: float) -> float:
    """Mean absolute scaled error: ``mae(y_true, y_pred) / scale`` (``scale`` from :func:`mase_scale`)."""
    return mae(y_true, y_pred) / scale


def bits_per_char(total_nats: float, count: int) -> float:
    """Bits per character from a summed negative log-likelihood in nats over ``count`` characters."""
    if count < 1:
        raise RnnkitError(f"expected at least one character to score, got {count}")
    return total_nats / count / math.log(2)
