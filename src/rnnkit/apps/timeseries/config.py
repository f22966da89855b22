"""The settings of the time-series application (one dataclass: flags, TOML keys and the run's config.json)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rnnkit._errors import RnnkitError
from rnnkit.apps.config import AppConfig
from rnnkit.config import option
from rnnkit.datasets.frequency import Frequency

__all__ = [
    "BASELINE_NAMES",
    "YEARLY_HORIZON",
    "TimeSeriesConfig",
    "default_horizon",
    "default_window",
    "held_out_window",
    "resolve_trend",
    "stamp_defaults",
]

BASELINE_NAMES = ("naive", "seasonal naive", "ets", "arima", "mlp")
"""The classical forecasts ``--baselines`` can name (:mod:`rnnkit.apps.timeseries.baselines` fits them)."""


@dataclass
class TimeSeriesConfig(AppConfig):
    """Time-series forecasting: a recurrent network reads a window and forecasts the next HORIZON values."""

    # runs saved before these settings existed trained without them (read by rnnkit.config.saved_run_settings)
    added_since = (("hybrid", False),)

    monitor: str = option("val_mae", "metric for early stopping and the kept weights")
    data: str = option(
        "co2",
        "'co2' or 'sunspots' (built in), a held-out series of rnnkit.datasets.extra (airpassengers, wineind, "
        "woolyrnq, ausbeer, gas, taylor, ice_river, nino, gold, heartrate), a built-in collection of many series "
        "for one global model (tourism-quarterly, tourism-monthly, tourism-yearly, m3-quarterly, m3-monthly, "
        "m3-yearly, m3-other, m1-yearly), or a CSV file with a header line (long format with --id-column)",
    )
    id_column: str | None = option(
        None,
        "long-format CSV (one row per observation: series, time, value, as M4's unique_id, ds, y): the column naming the "
        "series; trains one global model on the windows of all of them (implied by the built-in collections "
        "tourism-quarterly, tourism-monthly, tourism-yearly, m3-quarterly, m3-monthly, m3-yearly, "
        "m3-other, m1-yearly)",
    )
    max_series: int = option(
        0,
        "global model: a seeded random sample of at most this many series (file order kept); 0 = all",
        low=0,
    )
    time_column: str | None = option(
        None, "time-stamp column of a user CSV (default: detected from the header)"
    )
    value_columns: list[str] = option([], "input columns (default: every column but the time column)")
    target: str | None = option(None, "column to forecast (default: the first value column)")
    horizon: int | None = option(
        None,
        "steps ahead to forecast (default: 52 for co2, 5 for sunspots, a season for held-out series (two for "
        "quarterly ones, 10 without a season) and for a CSV whose time stamps name the frequency (cut to the test "
        "part), else 1)",
        low=1,
    )
    window: int | None = option(
        None, "past steps the model reads (default: 2 seasons, at least 2 * horizon)", low=2
    )
    season: int | None = option(
        None,
        "seasonal period (default: 52 for co2, 11 for sunspots, the registry's for held-out series, for a CSV the "
        "usual one of its time stamps' frequency: hourly 24, daily 7, business-daily 5, weekly 52, monthly 12, "
        "quarterly 4; else 1)",
        low=1,
    )
    structure: str = option(
        "many-to-one",
        "many-to-one: forecast from the last step; many-to-many: forecast at every step, train on all",
        choices=("many-to-one", "many-to-many"),
    )
    val_fraction: float = option(
        0.1, "share of the series (before the test part) for early stopping", low=0.0, below=1.0
    )
    test_fraction: float = option(0.1, "last share of the series for the reported scores", low=0.0, below=1.0)
    normalize: str = option(
        "auto",
        "auto: es for series shorter than 250 values (ES_BELOW), seasonal for longer ones (a global model: "
        "always es); es: Smyl's ES-RNN, a level and seasonal indices smoothed over the whole series "
        "with coefficients learnt with the network (a global model shares the two coefficients); seasonal: remove each window's straight line and seasonal profile, forecast "
        "the rest; level: values relative to the latest value, in units of the typical HORIZON-step change; "
        "standard: (x - mean) / std of the training part",
        choices=("auto", "es", "seasonal", "level", "standard"),
    )
    es_alpha: float | None = option(
        None,
        "es: the level's smoothing coefficient at the start of training (learnt from there; default 0.3, or 0.6 "
        "for one series without a season)",
        low=0.01,
        high=0.99,
    )
    es_gamma: float | None = option(
        None,
        "es: the seasonal indices' smoothing coefficient at the start of training (learnt from there; default 0.2)",
        low=0.01,
        high=0.99,
    )
    level_penalty: float = option(
        0.0, "es: weight of Smyl's penalty on the smoothed level's second differences", low=0.0
    )
    transform: str = option(
        "auto",
        "auto: log of every column that is strictly positive in the training part; log: require it for "
        "the target; none: the raw values",
        choices=("auto", "log", "none"),
    )
    trend: str = option(
        "auto",
        "seasonal normalisation: line: a zero network output continues the window's straight line; flat: it "
        "stays at the level (the network forecasts the trend); auto: line where the window holds a whole season "
        "or for a global model (--id-column), else flat (one series without a season: its window's line is mostly "
        "noise)",
        choices=("auto", "line", "flat"),
    )
    ensemble: int = option(
        5,
        "networks trained (seeds seed, seed+1, ...; every other one reads two thirds of the window); forecast = median",
        low=1,
    )
    interval: float = option(
        0.8, "coverage of the forecast interval calibrated on the validation errors", low=0.0, below=1.0
    )
    interval_tails: str = option(
        "symmetric",
        "the interval's bounds: the forecast -+ the quantile of the absolute validation errors (symmetric), "
        "or the two tail quantiles of the signed errors (equal: follows skewed errors, needs more of them)",
        choices=("symmetric", "equal"),
    )
    baselines: list[str] = option(
        ["naive", "seasonal naive", "ets", "arima", "mlp"],
        "baselines in the report (met judges against the strongest): naive, 'seasonal naive', ets, arima, mlp "
        "(the feed-forward counterpart: window MLPs trained like the networks; a many-to-many run's, an MLP on the "
        "raw window)",
    )
    hybrid: bool = option(
        True,
        "a global run: forecast with the median over the recurrent networks and the feed-forward counterpart's "
        "window MLPs (trained whatever --baselines says); one series: not used",
    )
    ets_mix: bool = option(
        True,
        "also report, and use to forecast, the network's forecast pooled with classical models' (--pool-with)",
    )
    pool_with: str = option(
        "auto",
        "the pool's partner, among the baselines: ets or arima (the network's share chosen on validation), or "
        "auto (one series: the network, ETS and ARIMA in equal weights, those among the baselines; a global "
        "model: ets, its share chosen on every series' validation horizon)",
        choices=("auto", "ets", "arima"),
    )
    baseline_origins: int = option(
        3,
        "non-overlapping test horizons at which every baseline (ETS, ARIMA, MLP, ...) is refitted and scored",
        low=1,
    )
    stride: int = option(1, "step between forecast origins in the validation and test parts", low=1)
    cell: str = option("gru", "recurrent cell", choices=("gru", "lstm", "rnn", "mingru", "minlstm"))
    hidden_size: int = option(32, "hidden units (of each ensemble member)", low=1)
    num_layers: int = option(1, "stacked recurrent layers", low=1)
    dropout: float = option(
        0.0, "dropout between stacked layers and before the output layer", low=0.0, below=1.0
    )
    epochs: int = option(60, "passes over the training windows at most", low=1)
    batch_size: int = option(64, "windows per batch", low=1)
    lr: float = option(3e-3, "learning rate", low=1e-12)
    early_stopping: int = option(
        10, "stop after this many epochs without a better validation MAE; 0 = never", low=0
    )

    def check(self) -> None:
        super().check()
        check_baselines(self)


def check_baselines(cfg: TimeSeriesConfig) -> None:
    """One clear error for ``--baselines`` outside the known ones, and for ``--pool-with ets|arima`` without that
    baseline (the pool is made of the report's own baseline forecasts). Part of the config's ``check`` (flags,
    TOML, ``config_from_dict``); the data readers call it again for a config built in Python."""
    if not cfg.baselines or set(cfg.baselines) - set(BASELINE_NAMES):
        raise RnnkitError(f"--baselines: expected one or more of {list(BASELINE_NAMES)}, got {cfg.baselines}")
    if cfg.ets_mix and cfg.pool_with != "auto" and cfg.pool_with not in cfg.baselines:
        raise RnnkitError(
            f"--pool-with {cfg.pool_with}: expected {cfg.pool_with} among --baselines (the pool uses its forecasts), "
            f"got {cfg.baselines}; add it, or pass --no-ets-mix"
        )


def check_es_start(cfg: TimeSeriesConfig, normalize: str, season: int) -> None:
    """One clear error for ``--es-alpha`` / ``--es-gamma`` where they would do nothing: without the ES-RNN
    (``normalize`` as resolved), or ``--es-gamma`` without a season (no seasonal indices to smooth)."""
    given = [f for f, v in (("--es-alpha", cfg.es_alpha), ("--es-gamma", cfg.es_gamma)) if v is not None]
    if given and normalize != "es":
        raise RnnkitError(
            f"{' and '.join(given)}: expected --normalize es (they start the ES-RNN's smoothing), got "
            f"--normalize {normalize}{' (what auto chose here)' if cfg.normalize == 'auto' else ''}; drop them or "
            "pass --normalize es"
        )
    if cfg.es_gamma is not None and season <= 1:
        raise RnnkitError(
            "--es-gamma: expected a season (--season above 1): without one the ES-RNN smooths only a level"
        )


def resolve_trend(trend: str, season: int, window: int) -> str:
    """``--trend auto`` for one series: ``line`` where the window holds a whole season, else ``flat``.

    Without a season in the window (``season`` 1, or longer than ``window``) the seasonal normalisation fits
    no profile, the level is the window's last value, and the window's slope, carried ``horizon`` steps ahead,
    mostly extrapolates noise: on the development series without a season that are long enough for the
    seasonal normalisation (interest rates, a wheat price index) ``flat`` lowered the network's MASE at every
    one (docs/applications.md, *Series without a season*).
    """
    return trend if trend != "auto" else ("line" if 1 < season <= window else "flat")


YEARLY_HORIZON = 6
"""Years ahead to forecast a series with yearly time stamps: the M3 and M4 competitions' yearly horizon."""


def default_horizon(season: int) -> int:
    """Steps ahead to forecast for a series with this season: one season (two for quarterly data, as in the M3
    and M4 competitions), and 10 (R's ``forecast`` default) without a season or with one longer than 52."""
    return 8 if season == 4 else (season if 1 < season <= 52 else 10)


def held_out_window(season: int, horizon: int) -> int:
    """Past steps the network reads on a held-out series of the registry: three seasons, at least 12 steps (so 12
    without a season: heartrate and gold, horizon 10); twice the horizon for a season longer than 52 (daily data
    with a yearly cycle). The held-out rows in docs/applications.md were measured with this rule."""
    return max(3 * season if season <= 52 else 2 * horizon, 12)


def default_window(season: int, horizon: int) -> int:
    """Past steps the network reads on a user's file (``--window`` unset): two seasons, at least twice the horizon
    and 12 steps. (On R's six seasonal textbook series, held out, the held-out registry's three seasons instead
    scored 1.176 against 1.118 for the network, geometric mean of MASE over min(ETS, ARIMA).)"""
    return max(2 * season, 2 * horizon, 12)


def stamp_defaults(
    cfg: TimeSeriesConfig,
    frequency: Frequency | None,
    feasible: Callable[[int, int, int], bool],
    cap: int | None = None,
) -> tuple[int, int, str]:
    """``(horizon, season, note)`` for a user's file whose time stamps have ``frequency``
    (:func:`~rnnkit.datasets.frequency.infer_frequency`; None when unknown).

    ``--horizon`` and ``--season`` are kept where given; the others come from the frequency as for a held-out series
    (monthly stamps: season 12, horizon 12: :func:`default_horizon`; yearly ones: :data:`YEARLY_HORIZON`). An inferred horizon longer than ``cap`` (the
    test or validation part) is cut to it; when the series has no room for the inferred values
    (``feasible(horizon, season, window)`` False, ``window`` by :func:`default_window` unless ``--window`` is given:
    too short for one training window), the season falls back to 1, then the horizon to 1. Without a frequency, or
    with both flags given, nothing is inferred: ``(--horizon or 1, --season or 1, "")``. ``note`` says what was
    inferred and from what, for the run's first line.
    """
    if frequency is None or (cfg.horizon and cfg.season):
        return cfg.horizon or 1, cfg.season or 1, ""
    season = cfg.season or frequency.season
    # yearly data: the M3 and M4 competitions' 6 years (default_horizon's 10 is for a series without a known step)
    wanted = cfg.horizon or (
        YEARLY_HORIZON if frequency.name == "yearly" else default_horizon(frequency.season)
    )
    horizon = min(wanted, cap) if cap and not cfg.horizon else wanted
    candidates = [(horizon, season)]
    if not cfg.season and season > 1:
        candidates.append((horizon, 1))
    if not cfg.horizon and horizon > 1:
        candidates.append((1, candidates[-1][1]))
    h, m = next(
        (c for c in candidates if feasible(*c, cfg.window or default_window(*c[::-1]))), candidates[-1]
    )
    said = [f"season {m}"] if not cfg.season else []
    said += [f"horizon {h}"] if not cfg.horizon else []
    note = f"{' and '.join(said)} from the {frequency.name} time stamps"
    if m != season:  # the run's line puts the note in brackets: no brackets inside it
        note += f"; too few values for a season of {season}: season 1"
    if h != wanted and not cfg.horizon:
        why = "the test part" if h == horizon else "what the series has room for"
        note += f"; horizon cut from {wanted} to {why}, --horizon sets it"
    return h, m, note
