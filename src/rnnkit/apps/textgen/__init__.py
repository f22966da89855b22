"""Text generation: a character-level (or word-level) recurrent language model trained with truncated BPTT.

Data: Jane Austen's six novels (``data="austen"``, about 4 million characters; ``books`` picks some), one of
the held-out texts of :mod:`rnnkit.datasets.extra` (``HELD_OUT_TEXTS``: ``kjv``, ``reina_valera``,
``fortunes``; defaults are never tuned on them) or a user's UTF-8 text file. The text is cut in order: the first part trains, then validation, then the held-out
test part (the end of the text). The vocabulary comes from the training part; unseen characters map to
``<unk>``.

Training reads ``batch_size`` parallel streams of the training text, ``tbptt_k1`` steps per update, carrying the
LSTM state from update to update (truncated BPTT, Williams & Peng's BPTT(k2; k1) with ``k2 >= k1`` steps of
backpropagation). The held-out score is bits per character (bpc): the mean negative log2-probability of
each next character, on the first ``eval_tokens`` characters of the test part, read as 16 streams with the
state carried (bits per word for a word-level model, with the honest conversion to characters:
bits per word x words / characters). The baselines, scored on the same tokens: the unigram, the interpolated
Kneser-Ney n-gram (order chosen on validation; its 5-gram too) and the feed-forward fixed-context network;
the goal is fewer bits than the strongest. The learning rate is halved whenever a validation brings no lower
score (``lr_schedule="plateau"``, ``lr_decay=0.5``, the default, which measured best at demo scale);
``"constant"`` keeps it, ``"cosine"`` is a warm-up + cosine schedule that ends with the run (its steps or its
time budget). A word-level run also reports perplexity and top-1/top-5
next-word accuracy next to the Kneser-Ney word n-gram; with a vocabulary of 2,000+ words its output layer is
Grave et al.'s adaptive softmax (``softmax="auto"``; about 2.3 times the training throughput of the full
softmax at 7,632 words, with exact full log-probabilities wherever the distribution is read), and
:class:`NextWordStream` gives a keyboard's suggestions as the user types (``rnnkit predict RUN "text so far" --next 5``).

Validation runs every ``validate_every`` steps (the trainer's hook), so early stopping and the kept weights
need no pass over the whole text.

Like every application, it has the same parts in the same files: ``config`` (:class:`TextGenConfig`,
:class:`GenerateConfig`), ``data`` (the built-in novels, the user's text, the split, the streams),
``model`` (built from :mod:`rnnkit.models`), ``train`` (the shared trainer), ``report`` (scores next to the
baseline) and ``use`` (a saved run).
"""

from rnnkit.apps.textgen.config import GenerateConfig, TextGenConfig
from rnnkit.apps.textgen.data import (
    APP,
    EVAL_STREAMS,
    HELD_OUT_TEXTS,
    held_out,
    load_text,
    scored_positions,
    split_text,
    stream_batches,
    streams,
)
from rnnkit.apps.textgen.model import build_model, generate, next_word_hits, token_nats
from rnnkit.apps.textgen.report import CHAR_CLASSES, GOAL_BPC, char_class
from rnnkit.apps.textgen.train import DEFAULT_PROMPTS, WarmupCosine, train
from rnnkit.apps.textgen.use import NextWordStream, TextGenerator, load

__all__ = [
    "APP",
    "CHAR_CLASSES",
    "DEFAULT_PROMPTS",
    "EVAL_STREAMS",
    "GOAL_BPC",
    "GenerateConfig",
    "HELD_OUT_TEXTS",
    "NextWordStream",
    "TextGenConfig",
    "TextGenerator",
    "WarmupCosine",
    "build_model",
    "char_class",
    "generate",
    "held_out",
    "load",
    "load_text",
    "next_word_hits",
    "scored_positions",
    "split_text",
    "stream_batches",
    "streams",
    "token_nats",
    "train",
]
