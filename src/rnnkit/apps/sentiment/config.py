"""The settings of the sentiment application (one dataclass: flags, TOML keys and the run's config.json)."""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit._errors import RnnkitError
from rnnkit.apps.config import AppConfig
from rnnkit.config import option

__all__ = ["SentimentConfig"]


@dataclass
class SentimentConfig(AppConfig):
    """Sentiment analysis: a (bidirectional) GRU/LSTM text classifier next to a bag-of-words baseline."""

    data: str = option(
        "polarity",
        "'polarity' (Pang & Lee, built in), a held-out set of rnnkit.datasets.extra (vader_tweets, "
        "movie_reviews, bol_reviews, ...) or a CSV/TSV/JSONL file of labelled texts",
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
    max_tokens: int | None = option(
        None,
        "tokens read in one piece; none = automatic: the longest training text, at most max_tokens_cap",
        low=1,
    )
    max_tokens_cap: int = option(400, "upper bound of the automatic max_tokens (memory and time)", low=1)
    long_texts: str = option(
        "chunks",
        "texts longer than max_tokens: 'chunks' reads them in full, in equal pieces whose class "
        "probabilities are averaged; 'cut' keeps only the first max_tokens (the report counts them)",
        choices=("chunks", "cut"),
    )
    min_epochs: int = option(
        3,
        "early stopping waits at least this many epochs and until validation beats the majority class",
        low=0,
    )
    pretrain_epochs: int = option(
        0,
        "epochs of language-model pretraining (ULMFiT-style, both directions) on the training texts "
        "before the classifier is trained; 0 = none",
        low=0,
    )
    pretrain_time: float = option(60.0, "seconds of language-model pretraining at most", low=0.0)
    ensemble: int = option(
        3,
        "networks trained with seeds seed, seed+1, ...; the prediction is the mean of their class "
        "probabilities (a time budget is shared equally among them); 1 = one network",
        low=1,
    )
    cell: str = option("gru", "recurrent cell", choices=("gru", "lstm", "rnn", "mingru", "minlstm"))
    embedding_dim: int = option(100, "size of the token embeddings", low=1)
    hidden_size: int = option(64, "hidden units per direction", low=1)
    num_layers: int = option(1, "stacked recurrent layers", low=1)
    bidirectional: bool = option(True, "read the text in both directions")
    pooling: str = option(
        "mean",
        "how the per-token outputs become one vector: last, mean, max, attention, or several joined by '+' "
        "(concatenated, e.g. mean+max)",
    )
    dropout: float = option(0.5, "dropout on the embeddings and before the output layer", low=0.0, below=1.0)
    subword_buckets: int = option(
        20000,
        "hashed character n-gram rows (fastText-style): each word's vector is the mean of its word "
        "embedding and its n-grams', so rare and unseen words get vectors; word level only; 0 = off",
        low=0,
    )
    ngram_min: int = option(3, "shortest character n-gram of a word (with boundary marks <w>)", low=1)
    ngram_max: int = option(6, "longest character n-gram of a word", low=1)
    word_dropout: float = option(
        0.0,
        "while training, replace each word by <unk> with this probability (n-grams kept)",
        low=0.0,
        below=1.0,
    )
    lr_schedule: str = option(
        "constant",
        "learning rate over the run's epochs*steps: constant, onecycle (warm up to lr, anneal to ~0) or "
        "cosine (anneal from lr); used when no --scheduler is named",
        choices=("constant", "onecycle", "cosine"),
    )
    tfidf_mix: bool = option(
        True,
        "also report, and use to predict, the networks' class probabilities mixed with the TF-IDF baseline's, "
        "the networks' share chosen on validation (log loss); needs a validation part",
    )
    baseline_ngrams: int = option(
        1, "n-gram order of the bag-of-words baseline (1 = words only)", low=1, high=3
    )

    def check(self) -> None:
        super().check()
        from rnnkit.apps.sentiment.model import pooling_kinds

        pooling_kinds(self.pooling)
        if self.ngram_min > self.ngram_max:
            raise RnnkitError(
                f"ngram_min must be <= ngram_max (--ngram-min, --ngram-max), got {self.ngram_min} > {self.ngram_max}"
            )
