"""The settings of the sentiment application (one dataclass: flags, TOML keys and the run's config.json)."""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit.apps.config import AppConfig
from rnnkit.config import option

__all__ = ["SentimentConfig"]


@dataclass
class SentimentConfig(AppConfig):
    """Sentiment analysis: a (bidirectional) GRU/LSTM text classifier next to a bag-of-words baseline."""

    data: str = option(
        "polarity", "'polarity' (Pang & Lee, built in) or a CSV/TSV/JSONL file of labelled texts"
    )
    text_column: str = option("text", "column (or JSON key) of the texts in a user file")
    label_column: str = option("label", "column (or JSON key) of the labels in a user file")
    val_fraction: float = option(0.1, "share of the examples held out for early stopping", low=0.0, below=1.0)
    test_fraction: float = option(
        0.1, "share of the examples held out for the reported scores", low=0.0, below=1.0
    )
    split_seed: int = option(0, "seed of the shuffle that makes the fixed train/validation/test split", low=0)
    level: str = option("word", "tokens: words or characters", choices=("word", "char"))
    min_freq: int = option(2, "keep tokens seen at least this often in the training texts", low=1)
    max_vocab: int = option(20000, "vocabulary size at most (special tokens included)", low=4)
    max_tokens: int = option(80, "truncate texts to this many tokens", low=1)
    cell: str = option("gru", "recurrent cell", choices=("gru", "lstm", "rnn", "mingru", "minlstm"))
    embedding_dim: int = option(64, "size of the token embeddings", low=1)
    hidden_size: int = option(64, "hidden units per direction", low=1)
    num_layers: int = option(1, "stacked recurrent layers", low=1)
    bidirectional: bool = option(True, "read the text in both directions")
    pooling: str = option(
        "max", "how the per-token outputs become one vector", choices=("last", "mean", "max", "attention")
    )
    dropout: float = option(0.4, "dropout on the embeddings and before the output layer", low=0.0, below=1.0)
    baseline_ngrams: int = option(
        1, "n-gram order of the bag-of-words baseline (1 = words only)", low=1, high=3
    )
