"""The settings of the handwriting application (one dataclass: flags, TOML keys and the run's config.json)."""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit._errors import RnnkitError
from rnnkit.apps.config import AppConfig, TimeDelayOptions, WordLMOptions
from rnnkit.config import option

__all__ = ["HandwritingConfig"]


@dataclass
class HandwritingConfig(AppConfig, WordLMOptions, TimeDelayOptions):
    """Handwriting recognition: a CRNN (conv + BiLSTM + CTC) next to Tesseract, segment-and-classify and its
    feed-forward counterpart (the same conv blocks and CTC, time-delay convolutions in place of the BiLSTM)."""

    # runs saved before these settings existed trained without them (read by rnnkit.config.saved_run_settings)
    added_since = (("case_variety", False), ("word_gaps", False), ("ff_layers", 0), ("cut_lines", False))

    # training (trainer fields whose default differs for this application)
    epochs: int = option(30, "passes over freshly drawn training lines at most", low=1)
    optimizer: str = option("adam", "a torch.optim class, case-insensitive: adam, adamw, sgd, rmsprop, ...")
    lr: float = option(3e-3, "learning rate", low=1e-12)
    lr_decay: float = option(
        0.5,
        "multiply the learning rate by this when the validation loss stops improving; 1 = constant",
        low=1e-3,
        high=1.0,
    )
    early_stopping: int = option(
        5, "stop after this many validations without a lower validation loss; 0 = never", low=0
    )
    # data
    data: str = option(
        "digits",
        "'digits' (real handwritten digits, built in), 'fonts' (handwriting fonts, Debian packages) "
        "or a CSV 'file,text' of line images",
    )
    val_fraction: float = option(
        0.1,
        "share of the digit images (or text lines, or user lines) held out for early stopping",
        low=0.0,
        below=1.0,
    )
    test_fraction: float = option(
        0.2,
        "share of the digit images (or text lines, or user lines) held out for the scores",
        low=0.0,
        below=1.0,
    )
    split_seed: int = option(0, "seed of the split and of the validation and test lines", low=0)
    train_lines: int = option(
        2000, "lines drawn afresh each epoch from the training part (built-in data)", low=1
    )
    val_lines: int = option(300, "validation lines made from the validation part (built-in data)", low=1)
    test_lines: int = option(1000, "test lines made from the test part, per test set (built-in data)", low=1)
    min_digits: int = option(1, "digits per line at least (digits data)", low=1)
    max_digits: int = option(12, "digits per line at most (digits data)", low=1)
    case_variety: bool = option(
        True,
        "fonts data: draw half of the training lines with capitals (first letter, every word or all; "
        "the label stays lower case)",
    )
    word_gaps: bool = option(
        True, "fonts data: space the words of each training line 0.3-1.5 times the font's space apart"
    )
    height: int = option(32, "line images are scaled to this many pixels high (a multiple of 8)", low=8)
    cut_lines: bool | None = option(
        None,
        "cut every line to its ink before it is read (training, validation and test lines, and the images "
        "given to predict), keeping around it the blank the run's uncut validation lines have: the ink's "
        "height, not the image's, then sets the scale, and a scan with wide borders reads like the lines "
        "(default: on for the digit strings, off for the font lines and your lines; measured in "
        "docs/handwriting.md)",
    )
    # model
    channels: tuple[int, ...] = option((16, 32, 64), "output channels of the three conv blocks")
    cell: str = option("lstm", "recurrent cell over the width", choices=("lstm", "gru"))
    hidden_size: int = option(96, "hidden units per direction", low=1)
    num_layers: int = option(2, "stacked bidirectional layers", low=1)
    backend: str = option(
        "native", "recurrent backend (see rnnkit.backends); native was the fastest for this model on 2 cores"
    )
    dropout: float = option(
        0.2, "between the recurrent layers and before the output layer", low=0.0, below=1.0
    )
    beam_size: int = option(8, "prefix beam search width for the reported scores; 1 = greedy", low=1)
    # baselines
    segment_baseline: bool = option(
        True, "digits data: also score connected components + a CNN (its CNN trains for baseline_epochs)"
    )
    baseline_epochs: int = option(6, "epochs of the segment-and-classify baseline's digit CNN", low=1)
    tesseract: bool = option(
        True, "also score Tesseract (skipped, with the reason, when it is not installed)"
    )

    def cuts_lines(self) -> bool:
        """``cut_lines`` in force: as set, or on for the digit strings only (where it was measured to help)."""
        return self.data == "digits" if self.cut_lines is None else self.cut_lines

    def check(self) -> None:
        super().check()
        if self.test_fraction <= 0:
            raise RnnkitError(
                f"test_fraction must be > 0 (the scores need test lines), got {self.test_fraction}"
            )
        self.check_time_delay()
        if self.height % 8:
            raise RnnkitError(f"height must be a multiple of 8, got {self.height}")
        if self.min_digits > self.max_digits:
            raise RnnkitError(
                f"expected min_digits <= max_digits, got {self.min_digits} and {self.max_digits}"
            )
        if len(self.channels) != 3 or min(self.channels) < 1:
            raise RnnkitError(f"channels: expected three positive ints, got {list(self.channels)}")
