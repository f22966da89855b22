"""The part of every application's config that is not the application's own: the run and the training.

An application's config is one dataclass: :class:`AppConfig` (the run's name, folder and threads, plus the
whole :class:`rnnkit.train.TrainerConfig`) extended by the application's data, model and evaluation
settings. Every field is a flag of ``rnnkit train <app>``, a key of its ``--config`` TOML and of the run's
``config.json`` (see :mod:`rnnkit.config`); the trainer fields the application sets itself are listed in
``cli_hidden``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rnnkit._errors import RnnkitError
from rnnkit.config import option
from rnnkit.train.trainer import TrainerConfig

__all__ = ["AppConfig", "WordLMOptions", "check_fractions"]


@dataclass
class AppConfig(TrainerConfig):
    """Where a run is written, how many threads it uses, and how it is trained (the trainer's config)."""

    # the application decides these (the model's loss and state, the metric it restores, where it runs)
    cli_hidden = ("device", "stateful", "tbptt_k1", "tbptt_k2", "monitor", "monitor_mode", "keep_checkpoints")

    name: str | None = option(
        None, "run name: the run is written to RUNS_DIR/NAME (default: the application's name)"
    )
    runs_dir: str = option("runs", "folder that holds the run directories")
    threads: int = option(
        1, "torch threads (1 is fastest for small models on a busy machine); 0 = torch's default", low=0
    )
    batch_size: int = option(32, "sequences per batch", low=1)
    seed: int = option(0, "seed of the model's initial weights, the batch order and dropout", low=0)
    optimizer: str = option("adamw", "a torch.optim class, case-insensitive: adamw, adam, sgd, rmsprop, ...")
    lr: float = option(2e-3, "learning rate", low=1e-12)
    early_stopping: int = option(
        3, "stop after this many validations without a better validation score; 0 = never", low=0
    )
    grad_monitor_every: int | None = option(
        None, "record the gradient flow through time every N steps (default: about 10 times a run)", low=1
    )
    keep_checkpoints: int = option(
        1, "newest checkpoints kept while training (the run keeps the best)", low=1
    )

    def check(self) -> None:
        super().check()
        check_fractions(self)


def check_fractions(cfg: Any) -> None:
    """The validation and test shares must leave something to train on."""
    if cfg.val_fraction + cfg.test_fraction >= 1:
        raise RnnkitError(
            f"val_fraction + test_fraction (--val-fraction, --test-fraction) must be < 1, got "
            f"{cfg.val_fraction} + {cfg.test_fraction}"
        )


@dataclass
class WordLMOptions:
    """The word language model fused into a CTC application's lexicon beam search (speech, handwriting):
    ``log p_CTC + lm_weight * log p_LM + word_bonus * words`` (:func:`rnnkit.models.lexicon_beam_search`),
    a search that keeps ``lexicon_beam`` prefixes."""

    lm_order: int = option(
        3,
        "order of the Kneser-Ney word LM of the training texts fused into the lexicon beam; 0 = no LM",
        low=0,
    )
    lm_weight: float = option(0.5, "weight of the word LM's log-probability in the lexicon beam", low=0.0)
    word_bonus: float = option(
        1.0, "score added per word with the LM (offsets its preference for short texts)"
    )
    lexicon_beam: int = option(
        64,
        "beam of the lexicon (+ word LM) search; wider than the plain beam: a word's LM score counts only once "
        "the word ends, and a narrow beam drops the right word before then (chosen on validation parts: "
        "docs/handwriting.md, docs/speech.md)",
        low=1,
    )

    def search_weights(self) -> dict[str, float]:
        """The keyword arguments of :func:`~rnnkit.models.lexicon_beam_search` that weigh the word LM."""
        return {"lm_weight": self.lm_weight, "word_bonus": self.word_bonus}
