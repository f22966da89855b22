"""The settings of the image-captioning application (one dataclass: flags, TOML keys and the run's config.json).

Every field is one flag of ``rnnkit train caption`` and one key of its TOML file. Fields whose default is
``None`` are automatic: the application picks them from the data set, as their help says.
"""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit._errors import RnnkitError
from rnnkit.apps.config import AppConfig, FeedForwardSeq2SeqOptions, check_fractions
from rnnkit.config import option

__all__ = ["CaptionConfig", "image_size"]

#: automatic image sizes (height, width) per data set; a user's folder gets the last
_SIZES = {"emoji": (32, 32), "digits": (32, 96)}
_USER_SIZE = (48, 48)


@dataclass
class CaptionConfig(AppConfig, FeedForwardSeq2SeqOptions):
    """Image captioning: a small CNN encoder trained from scratch and an attention GRU/LSTM decoder."""

    data: str = option(
        "emoji",
        "'emoji' (Noto Color Emoji pictures with their CLDR names), 'digits' (handwritten MNIST digit "
        "strings captioned with number words), or a CSV 'file,caption' of images (or a folder holding "
        "captions.csv); several rows may caption one image",
    )
    file_column: str = option("file", "user CSV: the column of image file names (relative to the CSV)")
    caption_column: str = option("caption", "user CSV: the column of captions")
    split: str = option(
        "compositional",
        "emoji: 'compositional' holds out, for every person/gesture seen with several skin tones, one "
        "skin-tone combination (the parts are seen in training, the whole never); 'random' a seeded shuffle. "
        "digits are always split by digit image, a user CSV always at random (by image)",
        choices=("compositional", "random"),
    )
    val_fraction: float = option(
        0.1, "random split: share of the images for early stopping", low=0.0, below=1.0
    )
    test_fraction: float = option(0.1, "random split: share of the images for the scores", low=0.0, below=1.0)
    split_seed: int = option(0, "seed of the split (and of the digit strings)", low=0)
    image_height: int | None = option(
        None, "height the images are scaled to (default: 32 for emoji and digits, 48 for a user CSV)", low=8
    )
    image_width: int | None = option(
        None, "width the images are scaled to (default: 32 emoji, 96 digits, 48 a user CSV)", low=8
    )
    digit_strings: int = option(6000, "digits: training strings (each of 2-4 digit images)", low=1)
    test_strings: int = option(1000, "digits: validation and test strings each", low=1)
    min_digits: int = option(2, "digits: shortest string", low=1)
    max_digits: int = option(4, "digits: longest string", low=1)
    min_count: int = option(1, "caption words seen fewer times in training become <unk>", low=1)
    channels: int = option(
        64, "channels of the CNN's last block (the earlier blocks have 1/4 and 1/2)", low=4
    )
    conv_blocks: int = option(
        3, "CNN blocks, each halving height and width (the grid is image / 2**N)", low=1
    )
    cell: str = option("gru", "recurrent cell of the grid encoder and the decoder", choices=("gru", "lstm"))
    embedding_dim: int = option(64, "size of the word embeddings", low=1)
    hidden_size: int = option(128, "hidden units of the decoder (and of each grid-encoder direction)", low=1)
    attention: str = option(
        "bahdanau",
        "attention over the grid cells: bahdanau (additive, as in Show, Attend and Tell) or Luong's general",
        choices=("bahdanau", "general"),
    )
    attention_dim: int = option(64, "size of the additive attention's tanh layer", low=1)
    dropout: float = option(
        0.2, "dropout on the features, embeddings and before the output layer", low=0.0, below=1.0
    )
    label_smoothing: float = option(
        0.0, "share of each target's probability spread over the vocabulary", low=0.0, below=1.0
    )
    augment: bool = option(True, "shift training images by up to 1/16 of their size each epoch")
    beam: int = option(3, "beam width of the reported beam-search scores", low=1)
    length_penalty: float = option(
        1.0, "beam search ranks captions by log p / length ** this (0 = raw log p)", low=0.0
    )
    max_words: int = option(24, "longest caption generated, in words", low=1)
    eval_images: int = option(0, "score at most this many test images (the first ones); 0 = all", low=0)
    epochs: int = option(40, "passes over the training pairs at most", low=1)
    batch_size: int = option(32, "image-caption pairs per batch", low=1)
    early_stopping: int = option(
        5, "stop after this many validations without a better validation loss; 0 = never", low=0
    )
    min_epochs: int = option(
        15,
        "early stopping ends a run no sooner than after this many epochs (the first epochs can sit on a plateau "
        "where only the caption's length is learnt)",
        low=0,
    )

    # runs saved before these settings existed trained without them (read by rnnkit.config.saved_run_settings)
    added_since = (("ff_layers", 0), ("min_epochs", 0))

    def check(self) -> None:
        super(AppConfig, self).check()  # the trainer's checks; the fractions matter for a random split only
        self.check_time_delay()
        if self.data not in ("emoji", "digits") or self.split == "random":
            check_fractions(self)
        if self.min_digits > self.max_digits:
            raise RnnkitError(f"min_digits must be <= max_digits, got {self.min_digits} > {self.max_digits}")


def image_size(cfg: CaptionConfig) -> tuple[int, int]:
    """``(height, width)`` the run's images are scaled to."""
    h, w = _SIZES.get(cfg.data, _USER_SIZE)
    return cfg.image_height or h, cfg.image_width or w
