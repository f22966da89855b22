"""rnnkit's applications: presets that train, evaluate and use a recurrent model on real data.

==============  =============================================  ==============================================
application     model                                          data (built in, or the user's own)
==============  =============================================  ==============================================
``sentiment``   BiGRU/LSTM over word + character n-gram        Pang & Lee polarity, VADER sets, full reviews;
                vectors (an ensemble of seeds with --ensemble)  CSV/TSV/JSONL
``timeseries``  GRU/LSTM forecaster, multi-step horizon,       CO2, sunspots, ...; tourism and M3 collections
                ES-RNN; one global model over many series      (global); wide CSV, or long CSV + --id-column
``textgen``     character (or word) LSTM language model        Jane Austen's novels, KJV, ...; a text file
``speech``      BiGRU over MFCCs (digits); conv + BiGRU + CTC  spoken digits (FSDD); synthesised digit strings
                with lexicon + word LM (connected speech)      and phrases; WAV/FLAC/OGG + CSV
``handwriting`` CRNN (conv + BiLSTM) with CTC                  MNIST/UCI digit strings, handwriting fonts;
                                                               PNG + CSV
``music``       LSTM over folk-rnn ABC tokens, bar grammar     12,762 folk tunes (music21 wheel)
``translate``   BiGRU encoder + attention decoder, subwords    KJV <-> Reina-Valera, num2words; CSV/TSV/JSONL
``caption``     CNN grid + attention GRU decoder, beam search  Noto emoji + CLDR names, MNIST digit strings;
                                                               images + CSV
==============  =============================================  ==============================================

Every application is a package with the same parts in the same files: ``config.py`` (its dataclass, which
extends :class:`rnnkit.train.TrainerConfig` through :class:`rnnkit.apps.config.AppConfig`), ``data.py``
(the built-in set, the user's files, the split), ``model.py`` (built from :mod:`rnnkit.models`),
``train.py`` (the shared trainer with its hooks), ``report.py`` (scores next to baselines, the results
table) and ``use.py`` (a saved run). Shared pieces live here: ``config``, ``_common`` (trainer set-up, run
files, tables), ``base`` (results, loading), ``baselines``, ``metrics``, ``rundir`` and ``plots``.

Each application package has ``train(config, overwrite, say) -> TrainResult`` (writes a run directory, see
:mod:`rnnkit.apps.rundir`) and ``load(run_path)`` (the saved run, ready to predict / generate / evaluate)::

    from rnnkit.apps import app_module
    from rnnkit.apps.timeseries import TimeSeriesConfig
    ts = app_module("timeseries")
    result = ts.train(TimeSeriesConfig(data="sunspots", name="sun"))
    result.metrics["test"]["mae"], result.run          # runs/sun
    forecaster = ts.load(result.run)
    forecaster.predict(recent_values)["forecast"]
"""

from __future__ import annotations

import importlib
from types import ModuleType

from rnnkit._errors import RnnkitError
from rnnkit.apps.base import ResultRow, TrainResult

__all__ = ["APP_NAMES", "ResultRow", "TrainResult", "app_config", "app_module", "load_run"]

APP_NAMES = ("sentiment", "timeseries", "textgen", "speech", "handwriting", "music", "translate", "caption")
_CONFIG_CLASSES = {
    "sentiment": "SentimentConfig",
    "timeseries": "TimeSeriesConfig",
    "textgen": "TextGenConfig",
    "speech": "SpeechConfig",
    "handwriting": "HandwritingConfig",
    "music": "MusicConfig",
    "translate": "TranslateConfig",
    "caption": "CaptionConfig",
}


def app_module(name: str) -> ModuleType:
    """The module of application ``name`` (``sentiment``, ``timeseries`` or ``textgen``)."""
    if name not in APP_NAMES:
        raise RnnkitError(f"unknown application: expected one of {list(APP_NAMES)}, got {name!r}")
    return importlib.import_module(f"rnnkit.apps.{name}")


def app_config(name: str) -> type:
    """The config dataclass of application ``name`` (the flags of ``rnnkit train NAME``)."""
    return getattr(app_module(name), _CONFIG_CLASSES[name])


def load_run(path):
    """A saved run of any application, loaded (a ``SentimentPredictor``, ``Forecaster`` or ``TextGenerator``)."""
    from rnnkit.apps.rundir import open_run

    _, manifest = open_run(path, APP_NAMES)
    return app_module(manifest["app"]).load(path)
