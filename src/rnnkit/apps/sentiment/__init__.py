"""Sentiment analysis (many-to-one): a bidirectional GRU/LSTM text classifier and a bag-of-words baseline.

Data: Pang & Lee's sentence polarity (``data="polarity"``, 4,000 movie-review sentences) or the user's
CSV/TSV/JSONL file (``text_column``, ``label_column``; any number of classes). A fixed seeded shuffle cuts
train / validation / test; the baseline (binary bag-of-words logistic regression, L2 penalty picked on the
validation part) is trained on the same train part and scored on the same test part.

Like every application, it has the same parts in the same files: ``config`` (:class:`SentimentConfig`),
``data`` (the built-in set, the user's file, the split), ``model`` (built from :mod:`rnnkit.models`),
``train`` (the shared trainer), ``report`` (scores next to the baseline) and ``use`` (a saved run).
The model (:class:`SentimentNet`) can add hashed character n-grams to each word's vector
(``subword``), so that rare and unseen words get vectors.
"""

from rnnkit.apps.sentiment.config import SentimentConfig
from rnnkit.apps.sentiment.data import APP, batches, collate, encode, load_texts, split
from rnnkit.apps.sentiment.model import SentimentNet, SentimentNetConfig, build_model, predict_proba
from rnnkit.apps.sentiment.subword import Subwords
from rnnkit.apps.sentiment.train import train
from rnnkit.apps.sentiment.use import SentimentPredictor, load

__all__ = [
    "APP",
    "SentimentConfig",
    "SentimentNet",
    "SentimentNetConfig",
    "SentimentPredictor",
    "Subwords",
    "batches",
    "build_model",
    "collate",
    "encode",
    "load",
    "load_texts",
    "predict_proba",
    "split",
    "train",
]
