"""The settings of the handwriting application: one dataclass (flags, TOML keys and the run's config.json).

It extends the trainer's config (:class:`rnnkit.train.TrainerConfig`), so every training setting has the
trainer's own name; the run's name, folder and threads are the same three fields every application has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rnnkit._errors import RnnkitError
from rnnkit.train.trainer import TrainerConfig

__all__ = ["HandwritingConfig"]


@dataclass
class HandwritingConfig(TrainerConfig):
    """Handwriting recognition: a CRNN (conv + BiLSTM + CTC) next to Tesseract and segment-and-classify."""

    # the run
    name: str | None = None  # run name: the run is written to runs_dir/name (default "handwriting")
    runs_dir: str = "runs"  # folder that holds the run directories
    threads: int = 1  # torch threads (1 is fastest for small models on a busy machine); 0 = torch's default
    # training (trainer fields whose default differs for this application)
    epochs: int = 30  # passes over freshly drawn training lines at most
    lr: float = 3e-3  # learning rate of Adam
    early_stopping: int = 5  # stop after this many epochs without a lower validation loss
    scheduler: str | None = "ReduceLROnPlateau"  # halve the learning rate when the validation loss stalls
    scheduler_options: dict[str, Any] = field(default_factory=lambda: {"factor": 0.5, "patience": 1})
    progress: bool = False  # progress bar on stderr
    batch_size: int = 32  # lines per batch
    # data
    data: str = (
        "digits"  # "digits" (real handwritten digits), "fonts" (handwriting fonts) or a CSV "file,text"
    )
    val_fraction: float = 0.1  # share of the digit images (or user lines) held out for early stopping
    test_fraction: float = 0.2  # share of the digit images (or user lines) held out for the reported scores
    split_seed: int = 0  # seed of the split and of the validation and test lines
    train_lines: int = 2000  # digit lines drawn afresh each epoch from the training digits
    val_lines: int = 300  # digit lines made from the validation digits
    test_lines: int = 1000  # digit lines made from the test digits
    min_digits: int = 1  # digits per line at least
    max_digits: int = 12  # digits per line at most
    height: int = 32  # line images are scaled to this many pixels high (a multiple of 8)
    # model
    channels: tuple[int, ...] = (16, 32, 64)  # output channels of the three conv blocks
    cell: str = "lstm"  # recurrent cell over the width: lstm | gru
    hidden_size: int = 96  # hidden units per direction
    num_layers: int = 2  # stacked bidirectional layers
    backend: str = "native"  # recurrent backend (see rnnkit.backends): native was the fastest here, 2 cores
    dropout: float = 0.2  # between the recurrent layers and before the output layer
    beam_size: int = 8  # prefix beam search width for the reported scores; 1 = greedy
    # baselines
    baseline_epochs: int = 6  # epochs of the segment-and-classify baseline's digit CNN
    tesseract: bool = True  # also score Tesseract (skipped with a logged reason when it is not installed)

    def check(self) -> None:
        """One clear error for settings that cannot work together."""
        if self.val_fraction < 0 or self.test_fraction <= 0 or self.val_fraction + self.test_fraction >= 1:
            raise RnnkitError(
                "val_fraction + test_fraction must be < 1 with test_fraction > 0, got "
                f"{self.val_fraction} + {self.test_fraction}"
            )
        if self.height < 8 or self.height % 8:
            raise RnnkitError(f"height must be a positive multiple of 8, got {self.height}")
        if not 1 <= self.min_digits <= self.max_digits:
            raise RnnkitError(
                f"expected 1 <= min_digits <= max_digits, got {self.min_digits} and {self.max_digits}"
            )
        if len(self.channels) != 3 or min(self.channels) < 1:
            raise RnnkitError(f"channels: expected three positive ints, got {self.channels}")
        if self.cell not in ("lstm", "gru"):
            raise RnnkitError(f"cell: expected 'lstm' or 'gru', got {self.cell!r}")
        for name in ("train_lines", "val_lines", "test_lines", "batch_size", "hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise RnnkitError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise RnnkitError(f"dropout must be in [0, 1), got {self.dropout}")
