r"""A forecasting network pooled with a classical model (ETS or ARIMA): the hybrid a practitioner would ship.

For series ``i`` and step ``k`` of the horizon, with ``lambda`` the network's share and ``c`` the partner:

.. math::

    \hat y_{i,k} = \lambda\, \hat y^{\text{net}}_{i,k} + (1 - \lambda)\, \hat y^{c}_{i,k}

Combining forecasts of different kinds is the most reliable gain the forecasting competitions have shown
(Makridakis et al. 2020, *The M4 Competition: 100,000 time series and 61 forecasting methods*: 12 of the 17
most accurate methods were combinations, the winner Smyl's hybrid of exponential smoothing and a recurrent
network). The network learns windows (across series, for a global model); ETS or ARIMA, fitted to each series
alone, follows that series' own recent level, trend, season (ETS) or autocorrelation (ARIMA).

For one series the default (``--pool-with auto``) chooses nothing: the network, ETS and ARIMA weigh a third
each (partner ``"ets+arima"``, their mean; share 1/3), and the pool's interval is the mean of the three
members' own bounds (:func:`pool_bounds`): measured on samples of competition series, one to three validation
horizons chose worse weights than equal ones. Otherwise (a global model; ``--pool-with ets|arima``) the
partner and ``lambda`` (from :data:`~rnnkit.apps._common.MIX_WEIGHTS`: 0 = the partner alone, 1 = the
network alone) are chosen together by mean MASE on validation horizons (:func:`choose_pool`): each series'
validation horizon for a global model, up to ``baseline_origins`` non-overlapping horizons of the validation
part for one series. The partner there is fitted on every value before the origin, its form chosen by
AICc / AIC (:func:`classical_at` with no selection values), so no validation value is seen. Ties go to the
larger share, then to the earlier partner (ETS). At the test origins the pool uses the report's own baseline
of that kind (:mod:`rnnkit.apps.timeseries.baselines`); a forecast after the end of a series refits the
partner on it by the same rule (:func:`classical_after`), when it has at least two seasons and two values
(:func:`pools`).
"""

from __future__ import annotations

import numpy as np

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import MIX_WEIGHTS, check_share, lowest_share

__all__ = [
    "PARTNERS",
    "choose_pool",
    "choose_share",
    "classical_after",
    "classical_at",
    "classical_with_bounds",
    "fit_start",
    "pool_memory",
    "mix_forecasts",
    "pool_bounds",
    "pools",
    "quantile_mean",
]

PARTNERS = ("ets", "arima")
"""The classical models the network may be pooled with, in the order ties go."""


def pool_memory(season: int) -> int:
    """The most recent values the partner is fitted on (the baselines' cap): a stream keeps this many for the
    pool."""
    return max(2000, 20 * season)


def pools(n: int, season: int) -> bool:
    """Whether a forecast from ``n`` values is pooled: with fewer than two seasons and two values the partner
    cannot fit the season the run's partner saw, so the network forecasts alone."""
    return n >= 2 * season + 2


def classical_at(
    y: np.ndarray, n_fit: int, origin: int, horizon: int, season: int, method: str = "ets"
) -> np.ndarray:
    """The classical ``method``'s (``"ets"``, ``"arima"``, or ``"ets+arima"``: their mean) (H,) forecast at
    ``origin`` of series ``y``: its form chosen on ``y[n_fit:origin]`` (by AICc / AIC when that is empty),
    refitted on every value before ``origin`` (the report's baseline rule)."""
    return classical_with_bounds(y, n_fit, origin, horizon, season, method)[0]


def classical_with_bounds(
    y: np.ndarray, n_fit: int, origin: int, horizon: int, season: int, method: str = "ets", level=None
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]] | None]:
    """:func:`classical_at`'s forecast and, with ``level``, each model's own ``level`` forecast interval
    ``[(lower, upper), ...]`` (H,) in the order of ``method`` (None when one of them has none)."""
    from rnnkit.apps.timeseries.baselines import classical_forecasts

    methods = method.split("+")
    if not all(m in PARTNERS for m in methods):
        raise RnnkitError(f"mixture: expected a partner among {', '.join(PARTNERS)}, got {method!r}")
    fc, _, bounds = classical_forecasts(
        np.asarray(y, np.float64), n_fit, [origin], horizon, season, methods=tuple(methods), level=level
    )
    each = None
    if level is not None and all(m in bounds for m in methods):
        each = [(bounds[m][0][0], bounds[m][1][0]) for m in methods]
    return np.mean([fc[m][0] for m in methods], axis=0), each


def fit_start(n: int, horizon: int, season: int) -> int:
    """Where the selection values start for a classical forecast after the end of ``n`` values, as the report's
    rule makes it at a test origin: the last ``horizon`` values choose the model's form when enough values are
    left before them to fit on (``season + 1`` and at least 3), else AICc / AIC on all of them (``n``)."""
    return n - horizon if n - horizon >= max(season + 1, 3) else n


def classical_after(y: np.ndarray, horizon: int, season: int, method: str = "ets") -> np.ndarray:
    """The classical ``method``'s forecast of the ``horizon`` values after the end of ``y`` (its form chosen
    as :func:`fit_start` says)."""
    return classical_at(y, fit_start(len(y), horizon, season), len(y), horizon, season, method)


def quantile_mean(net_bounds, partner_bounds, share: float) -> tuple[np.ndarray, np.ndarray]:
    """The pool's interval as the pool of its members' intervals: ``share`` times the network's bounds plus
    ``1 - share`` times the partners' mean bounds, lower and upper apart (averaging quantiles, which keeps an
    interval sharper than averaging the distributions; Lichtendahl, Grushka-Cockayne & Winkler 2013,
    *Management Science* 59(8)). ``net_bounds``: ``(lower, upper)``; ``partner_bounds``: a list of them."""
    share = check_share(share)
    return tuple(
        share * np.asarray(net_bounds[i], np.float64)
        + (1.0 - share) * np.mean([np.asarray(b[i], np.float64) for b in partner_bounds], axis=0)
        for i in (0, 1)
    )


def mix_forecasts(net, other, share: float) -> list[np.ndarray]:
    """``share * net + (1 - share) * other`` for each series' (H,) forecasts (lists of the same shapes)."""
    share = check_share(share)
    out = []
    for a, b in zip(net, other, strict=True):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape:
            raise RnnkitError(f"mixture: expected forecasts of the same horizon, got {a.shape} and {b.shape}")
        out.append(share * a + (1.0 - share) * b)
    return out


def choose_share(net, other, actual, scales, weights=MIX_WEIGHTS) -> tuple[float, dict[float, float]]:
    """The network's share with the lowest mean MASE of the pooled forecasts on these (validation) horizons
    (ties: the larger share), and every share's mean MASE. ``scales``: each series' MASE denominator."""
    from rnnkit.apps.timeseries.report import series_scores

    if len(actual) == 0:
        raise RnnkitError("cannot choose the mixture's share without validation horizons")
    mase = {
        float(w): float(np.mean(series_scores(actual, mix_forecasts(net, other, float(w)), scales)["mase"]))
        for w in weights
    }
    return lowest_share(mase), mase


def choose_pool(
    net, partners: dict[str, list], actual, scales, weights=MIX_WEIGHTS
) -> tuple[str, float, dict[str, dict[float, float]]]:
    """The partner and the network's share whose pooled forecasts have the lowest mean MASE on these
    (validation) horizons, and every partner's every share's mean MASE. ``partners``: ``{name: forecasts}``
    in the order ties go (after the larger share: share 1 is the network alone whoever the partner)."""
    if not partners:
        raise RnnkitError("cannot choose the mixture's partner: no partner's forecasts")
    mase = {k: choose_share(net, fc, actual, scales, weights)[1] for k, fc in partners.items()}
    best = [(k, lowest_share(m)) for k, m in mase.items()]
    name, share = min(best, key=lambda ks: (mase[ks[0]][ks[1]], -ks[1]))
    return name, share, mase


def pool_bounds(mixture: dict, net_bounds, partner_bounds: dict, pooled, interval: dict, nonnegative: bool):
    """The pool's ``interval["level"]`` interval around ``pooled`` (n, H): for a pool of several partners in
    equal weights (``--pool-with auto``, one series) the :func:`quantile_mean` of the members' own intervals
    where every partner has one (``partner_bounds``: ``{name: (lower, upper)}``); else the network's interval
    (``interval["offsets"]``, ``interval["kind"]``) centred on the pooled forecast. Records which in
    ``mixture["interval"]``. Lower bounds stay at or above 0 for a ``nonnegative`` series."""
    from rnnkit.apps.timeseries.report import interval_bounds

    parts = mixture["with"].split("+")
    if len(parts) > 1 and all(p in partner_bounds for p in parts):
        mixture["interval"] = "quantile mean"
        lo, hi = quantile_mean(net_bounds, [partner_bounds[p] for p in parts], mixture["share"])
        return (np.maximum(lo, 0.0) if nonnegative else lo), hi
    mixture["interval"] = "the network's, centred"
    return interval_bounds(pooled, interval["offsets"], interval["kind"], nonnegative)
