"""The settings of the text-generation application and of ``rnnkit generate`` (flags, TOML, config.json)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rnnkit.apps.config import AppConfig
from rnnkit.config import option

__all__ = ["LEVEL_DEFAULTS", "GenerateConfig", "TextGenConfig"]

LEVEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "char": {
        "min_freq": 1,
        "embedding_dim": 64,
        "lr": 5e-3,
        "dropout": 0.0,
        "epochs": 0,
        "optimizer": "adam",
        "weight_decay": 0.0,
    },
    "word": {
        "min_freq": 3,
        "embedding_dim": 128,
        "lr": 0.01,
        "dropout": 0.2,
        "epochs": 6,
        "optimizer": "adamw",
        "weight_decay": 0.1,
    },
}
"""The settings a field left unset (``None``) takes, by ``--level``, so that ``--level word`` alone trains the
measured word-level configuration. The character ones are the demo's (chosen on Austen's characters). The word
ones were chosen on Austen's words (docs/applications.md, *Next-word prediction*; test bits per word, one seed
each): the rate 0.01 at 420 updates (6.704 against 6.717 at 0.005 and 6.929 at 0.02); dropout 0.2 and up to 6
passes on four novels, a text the size of fortunes (6.498 against 6.597 without dropout and 6.644 with 3
passes); AdamW's decoupled weight decay 0.1 on the same four (6.461 against Adam's 6.609 in 140 s; 6.487 against
6.651 at 1,000 updates with another seed)."""


@dataclass
class TextGenConfig(AppConfig):
    """Text generation: a character- or word-level LSTM language model trained with truncated BPTT (the unset
    settings by level: :data:`LEVEL_DEFAULTS`)."""

    # the streams are contiguous text: the state is carried from batch to batch (truncated BPTT)
    cli_hidden = ("device", "stateful", "monitor", "monitor_mode", "keep_checkpoints")
    stateful: bool = option(True, "carry the recurrent state across batches (always, for streams of text)")

    data: str = option(
        "austen",
        "'austen' (Jane Austen's novels, built in), a held-out text of rnnkit.datasets.extra "
        "(kjv, reina_valera, fortunes) or a UTF-8 text file",
    )
    books: list[str] = option([], "Austen novels to use (default: all six)")
    level: str = option("char", "tokens: characters or words", choices=("char", "word"))
    min_freq: int | None = option(
        None,
        "keep tokens seen at least this often in the training text (default: 1 for characters, 3 for words)",
        low=1,
    )
    val_fraction: float = option(
        0.02, "share of the text (before the test part) for early stopping", low=0.0, below=1.0
    )
    test_fraction: float = option(
        0.05, "last share of the text held out for the reported bits per character", low=0.0, below=1.0
    )
    eval_tokens: int = option(
        100000, "score at most this many held-out tokens (from the start of each part); 0 = all", low=0
    )
    cell: str = option("lstm", "recurrent cell", choices=("lstm", "gru", "rnn", "mingru", "minlstm"))
    embedding_dim: int | None = option(
        None, "size of the token embeddings (default: 64 for characters, 128 for words)", low=1
    )
    hidden_size: int = option(256, "hidden units per layer", low=1)
    num_layers: int = option(1, "stacked recurrent layers", low=1)
    dropout: float | None = option(
        None,
        "dropout on the embeddings, between layers and before the output layer (default: 0 for characters, 0.2 "
        "for words)",
        low=0.0,
        below=1.0,
    )
    tie_weights: bool = option(
        False,
        "share the embedding and output weights (a projection is added when embedding_dim != hidden_size)",
    )
    # auto: adaptive at word level from ADAPTIVE_FROM tokens of vocabulary (measured: docs/applications.md),
    # full for characters, so the character model (and the demo) is unchanged
    softmax: str = option(
        "auto",
        "output layer: full softmax, or Grave et al.'s adaptive softmax (frequent words in a head, rare ones in "
        "smaller clusters; with --tie-weights their word vectors are the embedding's); auto = adaptive for word-level "
        "vocabularies of 2,000+ words",
        choices=("auto", "adaptive", "full"),
    )
    tbptt_k1: int = option(50, "truncated BPTT: time steps forward between updates", low=1)
    tbptt_k2: int = option(50, "truncated BPTT: time steps backpropagated (k2 >= k1 overlaps chunks)", low=1)
    epochs: int | None = option(
        None,
        "passes over the training text at most; 0 = auto: one pass, or over a shorter text as many passes as make "
        "2,000 updates (the kept weights are the best on validation); default: 0 for characters, 6 for words",
        low=0,
    )
    batch_size: int = option(32, "parallel streams of text", low=1)
    lr: float | None = option(
        None,
        "learning rate, the peak of the schedule (default: 0.005 for characters, 0.01 for words)",
        low=1e-12,
    )
    optimizer: str | None = option(
        None, "a torch.optim class, case-insensitive (default: adam for characters, adamw for words)"
    )
    weight_decay: float | None = option(
        None, "the optimiser's weight decay (default: 0 for characters, 0.1 for words)", low=0.0
    )
    # plateau by default: at demo scale (2,900 updates of the defaults, Austen validation) halving the rate
    # whenever a validation brings no lower score reached 1.825 bpc, a constant rate 1.877 and warm-up +
    # cosine 1.964 (it decays before the model has learnt); docs/applications.md
    lr_schedule: str = option(
        "plateau",
        "learning-rate schedule when no --scheduler is named: plateau = multiply the rate by --lr-decay each time "
        "a validation brings no lower score; constant; cosine = linear warm-up then cosine decay to "
        "lr * min_lr_ratio over the run (its steps, or its time budget when that ends it first)",
        choices=("plateau", "constant", "cosine"),
    )
    lr_decay: float = option(
        0.5,
        "the plateau schedule's factor: multiply the learning rate by this when the validation score stops "
        "improving; 1 = constant",
        low=1e-3,
        high=1.0,
    )
    warmup_steps: int = option(
        100,
        "updates of linear learning-rate warm-up (cosine schedule; at most a tenth of the planned updates)",
        low=0,
    )
    min_lr_ratio: float = option(
        0.05, "the cosine schedule's final learning rate, as a share of lr", low=0.0, high=1.0
    )
    baselines: bool = option(
        True,
        "also fit the Kneser-Ney n-gram and the feed-forward (fixed-context) baselines on the same split",
    )
    ngram_mix: bool = option(
        True,
        "also report (and use for evaluate and predict --next) the network interpolated with the Kneser-Ney "
        "n-gram, the network's share chosen on validation (Mikolov et al. 2011); needs the baselines",
    )
    ngram_max_order: int = option(
        8, "Kneser-Ney baseline: longest n-gram; the order is chosen on validation", low=1
    )
    ff_context: int = option(
        0, "feed-forward baseline: tokens of context (0 = 16 characters or 5 words)", low=0
    )
    next_word_positions: int = option(
        5000,
        "word level: score top-1/top-5 next-word accuracy (model and Kneser-Ney) on this many held-out positions",
        low=1,
    )
    ff_epochs: int = option(
        10,
        "feed-forward baseline: epochs of 100,000 random positions at most (stops early on validation)",
        low=1,
    )
    # 10: with the plateau schedule's halving at every validation without a lower score, ten in a row leave the
    # rate at 1/1024 of --lr; on small texts the auto passes went on for hundreds of updates after that without
    # changing the kept (best) weights: the same scores in about two thirds of the time (docs/applications.md)
    early_stopping: int = option(
        10, "stop after this many validations in a row without a better validation score; 0 = never", low=0
    )
    validate_every: int = option(
        300,
        "validate every this many steps (a step is k1 tokens per stream, 10 * k1 when k2 > k1); "
        "0 = once per pass",
        low=0,
    )
    max_steps: int = option(
        0, "stop after this many steps (as counted by --validate-every); 0 = no limit", low=0
    )
    sample_length: int = option(300, "characters of sample text written to the run at the end", low=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, value in LEVEL_DEFAULTS.get(self.level, LEVEL_DEFAULTS["char"]).items():
            # unset: the level's default (a run's config.json holds the values, so a loaded run keeps them)
            if getattr(self, name) is None:
                setattr(self, name, value)


@dataclass
class GenerateConfig:
    """How ``rnnkit generate`` samples text from a language model (see the models' decoding strategies)."""

    length: int = option(
        300, "tokens to generate after the prompt (at most 1,000,000)", low=1, high=1_000_000
    )
    temperature: float = option(
        0.8, "divide the logits by this before sampling; 0 = greedy (most probable)", low=0.0
    )
    top_k: int = option(0, "sample among the k most probable tokens only; 0 = all", low=0)
    top_p: float = option(
        1.0, "nucleus sampling: the smallest set with this much probability; 1 = all", low=1e-9, high=1.0
    )
    num_samples: int = option(1, "samples per prompt", low=1)
    seed: int = option(0, "random seed of the sampling", low=0, high=2**31 - 1)
