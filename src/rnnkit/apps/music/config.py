"""The settings of the music application and of generating tunes from a run (flags, TOML, config.json)."""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit.apps.config import AppConfig
from rnnkit.config import option

__all__ = ["GenerateMusicConfig", "MusicConfig"]


@dataclass
class MusicConfig(AppConfig):
    """Music generation: a token-level LSTM language model of folk tunes (ABC), Bach chorale melodies or the
    user's ABC/MIDI files, conditioned on meter and key."""

    data: str = option(
        "folk",
        "'folk' (12,762 tunes inside the music21 wheel), 'chorales' (Bach's 371 chorale melodies, music21's "
        "corpus), or an ABC or MIDI file or a folder of them",
    )
    collections: list[str] = option(
        [], "built-in collections to use: essen, oneills, ryans, airds (default: all four)"
    )
    max_tunes: int = option(
        0, "use at most this many tunes (a seeded sample; chorales: only those are parsed); 0 = all", low=0
    )
    max_tune_tokens: int = option(
        512, "leave out tunes longer than this many tokens (counted as skipped)", low=16
    )
    val_fraction: float = option(
        0.05, "share of the tunes for early stopping and the n-gram order", low=0.0, below=1.0
    )
    test_fraction: float = option(
        0.05, "share of the tunes held out for the reported scores", low=0.0, below=1.0
    )
    split_seed: int = option(0, "seed of the shuffle that splits the tunes", low=0)
    cell: str = option("lstm", "recurrent cell", choices=("lstm", "gru", "rnn", "mingru", "minlstm"))
    embedding_dim: int = option(64, "size of the token embeddings", low=1)
    hidden_size: int = option(256, "hidden units per layer", low=1)
    num_layers: int = option(1, "stacked recurrent layers", low=1)
    dropout: float = option(
        0.2, "dropout on the embeddings, between layers and before the output", low=0.0, below=1.0
    )
    epochs: int = option(4, "passes over the training tunes at most", low=1)
    batch_size: int = option(32, "tunes per batch", low=1)
    lr: float = option(3e-3, "learning rate", low=1e-12)
    early_stopping: int = option(3, "stop after this many validations without improvement; 0 = never", low=0)
    validate_every: int = option(
        100, "validate every this many steps as well as at each epoch end; 0 = epoch ends only", low=0
    )
    ngram_max_order: int = option(20, "the Kneser-Ney baseline tries orders 1..this on validation", low=1)
    ff_context: int = option(
        16, "feed-forward baseline (Bengio et al. 2003): tokens of context it reads", low=1
    )
    # 30: on the folk tunes the network stops early on validation after 20 (a cap of 10 still bound it)
    ff_epochs: int = option(
        30,
        "feed-forward baseline: epochs of 100,000 random positions at most (stops early on validation); "
        "0 = leave it out",
        low=0,
    )
    eval_samples: int = option(100, "tunes generated at the end for the validity and histogram scores", low=0)
    eval_temperature: float = option(1.0, "sampling temperature of those tunes", low=1e-6)
    eval_max_length: int = option(600, "tokens at most per generated tune", low=8)


@dataclass
class GenerateMusicConfig:
    """How tunes are sampled from a music run."""

    meter: str = option("", "meter of the tunes, e.g. 6/8 (default: drawn like the training tunes)")
    key: str = option("", "key of the tunes, e.g. Dmix, G, Ador, Em (default: C in a drawn mode)")
    num_samples: int = option(1, "tunes to generate", low=1)
    temperature: float = option(1.0, "divide the logits by this before sampling", low=1e-6)
    top_k: int = option(0, "sample among the k most probable tokens only; 0 = all", low=0)
    top_p: float = option(
        1.0, "nucleus sampling: the smallest set with this much probability", low=1e-9, high=1.0
    )
    constrained: bool = option(True, "mask tokens that would make a bar longer than the meter")
    max_length: int = option(600, "tokens at most per tune", low=8)
    seed: int = option(0, "random seed of the sampling", low=0, high=2**31 - 1)
    wav: bool = option(True, "also write a WAV per tune where fluidsynth or timidity is installed")
