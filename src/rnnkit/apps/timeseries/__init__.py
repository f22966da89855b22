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

Normalisation ``level`` (default): the model sees values relative to a reference value of the window, divided
by the typical ``horizon``-step change of the training part; it forecasts changes from the latest value. The
reference is the window's last value for many-to-one and its first value for many-to-many (so no step sees
the future). ``standard``: z-scores with the training part's mean and standard deviation.

Evaluation: the series is cut in time into train / validation / test. Forecasts start at every ``stride``-th
origin of the test part whose whole horizon lies in it (rolling origin; the inputs are the actual values
before the origin); MAE, sMAPE and MASE are averaged over all origins and horizon steps and compared with the
naive (last value) and seasonal naive (same step one season earlier) forecasts at the same origins.

Like every application, it has the same parts in the same files: ``config`` (:class:`TimeSeriesConfig`),
``data`` (the built-in series, the user's CSV, the split in time, the scaling), ``model`` (built from
:mod:`rnnkit.models`), ``train`` (the shared trainer), ``report`` (scores next to the baselines) and
``use`` (a saved run).
"""

from rnnkit.apps.timeseries.config import TimeSeriesConfig
from rnnkit.apps.timeseries.data import (
    APP,
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
from rnnkit.apps.timeseries.model import build_model, forecast_windows
from rnnkit.apps.timeseries.report import evaluate_origins, goal_of, score
from rnnkit.apps.timeseries.train import train
from rnnkit.apps.timeseries.use import Forecaster, future_times, load

__all__ = [
    "APP",
    "PRESETS",
    "Forecaster",
    "Scaler",
    "TimeSeriesConfig",
    "build_model",
    "evaluate_origins",
    "forecast_windows",
    "future_times",
    "futures_at",
    "goal_of",
    "held_out_names",
    "load",
    "load_series",
    "make_batches",
    "part_sizes",
    "preset_of",
    "resolve",
    "score",
    "train",
    "windows_at",
]
