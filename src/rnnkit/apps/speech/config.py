"""The settings of the speech application (one dataclass: flags, TOML keys and the run's config.json)."""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit._errors import RnnkitError
from rnnkit.apps.config import AppConfig, TimeDelayOptions, WordLMOptions
from rnnkit.config import option

__all__ = ["SpeechConfig"]


@dataclass
class SpeechConfig(AppConfig, WordLMOptions, TimeDelayOptions):
    """Speech recognition. Isolated words (``data="fsdd"`` or an .npz): a bidirectional GRU/LSTM over MFCC
    frames next to DTW 1-nearest-neighbour. Connected speech (``data="digits-ctc"``, ``"phrases"`` or a CSV
    ``file,transcript``): log-mel frames, a conv front end with time subsampling, a GRU/LSTM and CTC."""

    data: str = option(
        "fsdd",
        "the task: 'fsdd' (Free Spoken Digit Dataset MFCCs, isolated digits) or an .npz of feature sequences "
        "(keys X (frames, features), lengths, y; optional speaker); connected speech with CTC: 'digits-ctc' "
        "(synthesised digit strings), 'phrases' (synthesised commands) or a CSV file,transcript naming "
        "audio files (paths relative to the CSV)",
    )
    split: str = option(
        "stratified",
        "stratified: a seeded TEST_FRACTION of every class is the test set; speaker: TEST_SPEAKER's "
        "recordings are the test set (needs speaker labels)",
        choices=("stratified", "speaker"),
    )
    test_speaker: str | None = option(None, "the held-out speaker of split=speaker")
    val_fraction: float = option(
        0.1, "share of the training recordings for early stopping", low=0.0, below=1.0
    )
    test_fraction: float = option(
        0.1, "share of every class held out for the reported scores", low=0.0, below=1.0
    )
    split_seed: int = option(0, "seed of the shuffle that makes the fixed split", low=0)
    normalise: bool = option(True, "scale each utterance's features to zero mean and unit variance")
    time_masks: int = option(2, "SpecAugment: time stretches zeroed in each training utterance", low=0)
    time_mask_fraction: float = option(
        0.15, "SpecAugment: longest time mask as a share of the utterance", low=0.0, below=1.0
    )
    feature_masks: int = option(1, "SpecAugment: bands of features zeroed in each training utterance", low=0)
    feature_mask_width: int = option(3, "SpecAugment: widest feature band", low=0)
    ensemble: int = option(
        1,
        "connected speech: networks trained one after another with seeds seed, seed+1, ... (a time budget "
        "is shared); their per-step probabilities are averaged before decoding",
        low=1,
    )
    vtlp: float = option(
        0.0,
        "connected speech: vocal tract length perturbation, each training utterance's frequency axis "
        "stretched by a new random factor in 1 +- this every epoch; 0 = off",
        low=0.0,
        below=0.5,
    )
    cell: str = option("gru", "recurrent cell", choices=("gru", "lstm", "rnn", "mingru", "minlstm"))
    hidden_size: int = option(96, "hidden units per direction", low=1)
    num_layers: int = option(1, "stacked recurrent layers", low=1)
    bidirectional: bool = option(True, "read the utterance in both directions")
    pooling: str = option(
        "mean", "how the per-frame outputs become one vector", choices=("last", "mean", "max", "attention")
    )
    dropout: float = option(0.2, "dropout on the features and before the output layer", low=0.0, below=1.0)
    baseline: bool = option(
        True,
        "score the classical baseline on the same split: DTW 1-nearest-neighbour (isolated words), word "
        "templates with one-pass DTW and a bigram grammar (connected speech)",
    )
    dtw_window: int = option(
        0,
        "DTW baseline: pair frames i, j only when |i - j| < window (plus the length difference); 0 = no band",
        low=0,
    )
    train_size: int = option(
        3000, "connected speech, built-in tasks: training utterances to synthesise (cached)", low=10
    )
    conv_channels: int = option(128, "connected speech: channels of the two conv layers", low=1)
    subsample: int = option(
        3, "connected speech: time subsampling of the conv front end (one step per N 10-ms frames)", low=1
    )
    beam_size: int = option(8, "connected speech: beam of the CTC prefix beam search (1 = greedy)", low=1)
    lexicon: bool = option(
        True,
        "connected speech: also decode with a beam search that only spells words of the training "
        "transcripts (and with their word n-gram LM when lm_order > 0)",
    )
    epochs: int = option(40, "passes over the training recordings at most", low=1)
    lr: float = option(3e-3, "learning rate", low=1e-12)
    early_stopping: int = option(
        10, "stop after this many validations without a better validation score; 0 = never", low=0
    )

    @property
    def connected(self) -> bool:
        """Connected speech with CTC (a built-in CTC task or a CSV of transcripts)?"""
        from rnnkit.apps.speech.synth import CTC_TASKS

        return self.data in CTC_TASKS or self.data.lower().endswith(".csv")

    # runs saved before these settings existed trained without them (read by rnnkit.config.saved_run_settings)
    added_since = (("ff_layers", 0),)

    def check(self) -> None:
        super().check()
        self.check_time_delay()
        if not self.connected and (self.ensemble > 1 or self.vtlp > 0):
            raise RnnkitError(
                "--ensemble and --vtlp are for connected speech (digits-ctc, phrases or a CSV of transcripts), "
                f"got data {self.data!r}"
            )
        if self.split == "speaker" and not self.test_speaker:
            raise RnnkitError("split=speaker needs test_speaker (--test-speaker): the speaker to hold out")
