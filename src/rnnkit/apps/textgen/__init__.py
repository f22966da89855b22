"""Text generation: a character-level (or word-level) recurrent language model trained with truncated BPTT.

Data: Jane Austen's six novels (``data="austen"``, about 4 million characters; ``books`` picks some) or a
user's UTF-8 text file. The text is cut in order: the first part trains, then validation, then the held-out
test part (the end of the text). The vocabulary comes from the training part; unseen characters map to
``<unk>``.

Training reads ``batch_size`` parallel streams of the training text, ``tbptt_k1`` steps per update, carrying the
LSTM state from update to update (truncated BPTT, Williams & Peng's BPTT(k2; k1) with ``k2 >= k1`` steps of
backpropagation). The held-out score is bits per character (bpc): the mean negative log2-probability of
each next character, on the first ``eval_tokens`` characters of the test part, read as 16 streams with the
state carried. The baseline is a character-frequency (unigram) model of the training text.

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
    held_out,
    load_text,
    split_text,
    stream_batches,
    streams,
)
from rnnkit.apps.textgen.model import build_model, generate, token_nats
from rnnkit.apps.textgen.report import CHAR_CLASSES, GOAL_BPC, char_class
from rnnkit.apps.textgen.train import DEFAULT_PROMPTS, train
from rnnkit.apps.textgen.use import TextGenerator, load

__all__ = [
    "APP",
    "CHAR_CLASSES",
    "DEFAULT_PROMPTS",
    "EVAL_STREAMS",
    "GOAL_BPC",
    "GenerateConfig",
    "TextGenConfig",
    "TextGenerator",
    "build_model",
    "char_class",
    "generate",
    "held_out",
    "load",
    "load_text",
    "split_text",
    "stream_batches",
    "streams",
    "token_nats",
    "train",
]
