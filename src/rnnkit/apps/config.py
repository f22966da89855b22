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

__all__ = ["AppConfig", "FeedForwardSeq2SeqOptions", "TimeDelayOptions", "WordLMOptions", "check_fractions"]


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


@dataclass
class TimeDelayOptions:
    """The feed-forward counterpart of a CTC application's recurrent network (speech, handwriting): the same
    front end, CTC output, data, training settings and decoders, with a time-delay network
    (:class:`rnnkit.models.TimeDelayEncoder`) in place of the recurrence. It is reported beside the network as
    a baseline, so the report shows what the recurrence itself buys."""

    ff_layers: int = option(
        4,
        "convolutions of the feed-forward counterpart's encoder (as wide as the recurrent encoder's output; "
        "speech: connected data only), trained and decoded like the network and reported as a baseline; 0 = leave it out",
        low=0,
    )
    ff_width: int = option(
        5,
        "frames each convolution of the feed-forward counterpart spans (odd: a window centred on its frame)",
        low=1,
    )

    def time_delay(self, size: int) -> dict[str, int]:
        """The :class:`~rnnkit.models.CTCConfig` settings of the counterpart, ``size`` channels per layer."""
        return {
            "time_delay_layers": self.ff_layers,
            "time_delay_width": self.ff_width,
            "time_delay_size": size,
        }

    def check_time_delay(self) -> None:
        if self.ff_width % 2 == 0:
            raise RnnkitError(f"ff_width must be odd (a window centred on its frame), got {self.ff_width}")


@dataclass
class FeedForwardSeq2SeqOptions(TimeDelayOptions):
    """The feed-forward counterpart of an encoder-decoder application (translate, caption): a time-delay
    encoder and a decoder that sees only its last ``ff_context`` tokens, with the network's attention, output
    layer, batches, loss, trainer settings and decoding (:class:`rnnkit.models.Seq2Seq` with
    ``time_delay_layers > 0``)."""

    ff_context: int = option(
        4, "previous target tokens the feed-forward counterpart's decoder sees (it has no state)", low=1
    )

    def feedforward_seq2seq(self, size: int) -> dict[str, int]:
        """The :class:`~rnnkit.models.Seq2SeqConfig` settings of the counterpart, encoder ``size`` channels."""
        return {**self.time_delay(size), "decoder_context": self.ff_context}
