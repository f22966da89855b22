"""Time-series forecasting: a recurrent network reads ``window`` past steps and forecasts ``horizon`` steps.

Data: weekly Mauna Loa CO2 (``data="co2"``), yearly sunspots (``"sunspots"``), a held-out series of
:mod:`rnnkit.datasets.extra` by name (``"airpassengers"``, ``"wineind"``, ``"taylor"``, ...) or a user CSV (one time column,
one or more value columns; missing cells interpolated). Inputs may be multivariate (every value column);
one ``target`` column is forecast.

Structures:

* ``many-to-one`` — a :class:`~rnnkit.models.SequenceRegressor` reads the window and outputs the ``horizon``
  next values from its last step;
* ``many-to-many`` — a :class:`~rnnkit.models.SequenceTagger` outputs the ``horizon`` next values at *every*
  step and is trained on all of them; forecasts use the last step.

Normalisation ``auto`` (default): ``es`` for series shorter than :data:`ES_BELOW` values, ``seasonal`` for
longer ones. ``es`` is Smyl's ES-RNN (:mod:`rnnkit.apps.timeseries.es`): a level and seasonal indices are
smoothed over the whole log series with per-series coefficients and starting indices learnt with the network
by backpropagation; the network reads windows deseasonalised and relative to the level and forecasts the log
ratio of the horizon to it. A global model (many series, ``--id-column``) takes ``es`` for ``auto`` whatever its series'
lengths, and its ES-RNN (:class:`~rnnkit.apps.timeseries.es.PanelESForecaster`) shares the two coefficients over the
series, each smoothed from its own start. ``seasonal`` (per-window, after the same idea): strictly positive columns are log-transformed, each
window's last whole seasons are fitted with one mean per season position and a common slope, the seasonal
profile is removed from the inputs and re-applied to the forecast, and the inputs are relative to the fitted
level at the window's end, in units of the typical ``horizon``-step change (:class:`Scaler`). ``level``: values
relative to the window's last (many-to-one) or first (many-to-many) value; ``standard``: z-scores. The forecast
is the median of an :class:`Ensemble` of small networks (seeds and two window lengths), with an interval
calibrated on the validation errors; a target that is never negative is never forecast negative.

Evaluation: the series is cut in time into train / validation / test. Forecasts start at every ``stride``-th
origin of the test part whose whole horizon lies in it (rolling origin; the inputs are the actual values
before the origin); MAE, sMAPE and MASE are averaged over all origins and horizon steps. At the first
``baseline_origins`` non-overlapping horizons of the test part the network is compared with naive, seasonal
naive, ETS, seasonal ARIMA and an MLP on the same window (:mod:`rnnkit.apps.timeseries.baselines`); ``met``
judges it against the strongest of them.

Many series (``id_column``, or a built-in collection ``"tourism-quarterly"``, ``"m3-quarterly"``, ...): one global
network is trained on the windows of every series of a long-format file (:mod:`rnnkit.apps.timeseries.panel`),
each series scaled by itself; each series' last ``horizon`` values are its test part, and the report gives
the mean and median MASE / sMAPE over the series next to per-series seasonal naive, ETS and ARIMA forecasts
(:func:`train_global`, :class:`GlobalForecaster`).

Like every application, it has the same parts in the same files: ``config`` (:class:`TimeSeriesConfig`),
``data`` (the built-in series, the user's CSV, the split in time, the scaling), ``model`` (built from
:mod:`rnnkit.models`), ``train`` (the shared trainer), ``report`` (scores next to the baselines) and
``use`` (a saved run).
"""

from rnnkit.apps.timeseries.config import TimeSeriesConfig
from rnnkit.apps.timeseries.data import (
    APP,
    ES_BELOW,
    PRESETS,
    Scaler,
    futures_at,
    held_out_names,
    load_series,
    make_batches,
    part_sizes,
    preset_of,
    resolve,
    windows_at,
)
from rnnkit.apps.timeseries.es import ESForecaster
from rnnkit.apps.timeseries.model import Ensemble, build_model, forecast_at, forecast_windows, member_windows
from rnnkit.apps.timeseries.panel import (
    PANELS,
    Panel,
    is_global,
    load_panel,
    read_long_csv,
    resolve_global,
    series_split,
)
from rnnkit.apps.timeseries.report import evaluate_origins, goal_of, score
from rnnkit.apps.timeseries.train import train, train_global
from rnnkit.apps.timeseries.use import Forecaster, GlobalForecaster, future_times, load

__all__ = [
    "APP",
    "ES_BELOW",
    "PANELS",
    "PRESETS",
    "ESForecaster",
    "Ensemble",
    "Forecaster",
    "GlobalForecaster",
    "Panel",
    "Scaler",
    "TimeSeriesConfig",
    "build_model",
    "evaluate_origins",
    "forecast_at",
    "forecast_windows",
    "future_times",
    "futures_at",
    "goal_of",
    "held_out_names",
    "is_global",
    "load",
    "load_panel",
    "load_series",
    "make_batches",
    "member_windows",
    "part_sizes",
    "preset_of",
    "read_long_csv",
    "resolve",
    "resolve_global",
    "score",
    "series_split",
    "train",
    "train_global",
    "windows_at",
]
