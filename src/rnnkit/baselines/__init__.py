"""Baselines a practitioner would use instead of a recurrent network, computed on the application's own split.

* :mod:`rnnkit.baselines.text` - TF-IDF word + character n-grams with logistic regression (scikit-learn).
* :mod:`rnnkit.baselines.forecast` - naive, seasonal naive, ETS / Holt-Winters and seasonal ARIMA (statsmodels),
  configurations chosen on the validation part.
* :mod:`rnnkit.baselines.ngram` - interpolated modified Kneser-Ney n-gram language model (characters or words).
* :mod:`rnnkit.baselines.feedforward` - the feed-forward counterparts (same inputs, no recurrence) in torch.

scikit-learn and statsmodels come with the ``apps`` extra (``pip install rnnkit[apps]``); they are imported
only when a baseline that needs them is fitted. See docs/baselines.md.
"""

from rnnkit.baselines.feedforward import FixedContextLM, MLPForecaster, MLPTextClassifier
from rnnkit.baselines.forecast import (
    Forecast,
    arima_forecast,
    ets_forecast,
    forecast_baselines,
    naive,
    seasonal_naive,
    select_arima,
    select_ets,
)
from rnnkit.baselines.ngram import KneserNeyLM
from rnnkit.baselines.text import TfidfLogisticRegression

__all__ = [
    "FixedContextLM",
    "Forecast",
    "KneserNeyLM",
    "MLPForecaster",
    "MLPTextClassifier",
    "TfidfLogisticRegression",
    "arima_forecast",
    "ets_forecast",
    "forecast_baselines",
    "naive",
    "seasonal_naive",
    "select_arima",
    "select_ets",
]
