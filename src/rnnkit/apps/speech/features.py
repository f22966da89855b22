"""Log-mel frames for connected speech, computed so that chunks of audio give the same frames as the whole.

Frame ``t`` is the log of librosa's 40-band mel power spectrum of samples ``[160 t, 160 t + 400)`` at 16 kHz
(25 ms windows every 10 ms, ``center=False``: no padding, so a frame depends on its own samples only). A
stream of audio chunks is turned into frames by :class:`StreamingLogMel`, which keeps the samples that the
next frame still needs and emits every frame whose window is complete: the frames of the chunks, joined,
are the frames of the whole recording (the same samples go through the same FFT).

Normalisation is one mean and standard deviation per band, measured on the training set and stored with the
run (not per utterance: a per-utterance mean is unknown until the utterance ends, which a stream cannot wait
for).
"""

from __future__ import annotations

import numpy as np

from rnnkit._errors import RnnkitError

__all__ = ["HOP", "N_MELS", "SAMPLE_RATE", "WINDOW", "StreamingLogMel", "load_audio", "log_mel"]

SAMPLE_RATE = 16000
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
_FLOOR = 1e-8


def _mel_basis() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=WINDOW, n_mels=N_MELS, fmin=20.0, fmax=7600.0)


_BASIS: np.ndarray | None = None


def log_mel(y: np.ndarray) -> np.ndarray:
    """Log-mel frames ``(frames, 40)`` float32 of 16 kHz samples; ``(0, 40)`` for fewer than 400 samples."""
    import librosa

    global _BASIS
    if _BASIS is None:
        _BASIS = _mel_basis()
    y = np.asarray(y, dtype=np.float32)
    if len(y) < WINDOW:
        return np.zeros((0, N_MELS), dtype=np.float32)
    spec = np.abs(librosa.stft(y, n_fft=WINDOW, hop_length=HOP, win_length=WINDOW, center=False)) ** 2
    mel = _BASIS @ spec  # (40, frames)
    return np.log(mel + _FLOOR).T.astype(np.float32)


class StreamingLogMel:
    """Audio chunks in, log-mel frames out: ``feed(samples) -> (new frames, 40)``.

    Holds back the samples of the next incomplete window (at most 399 plus the hop's remainder), so the
    frames of all chunks together equal :func:`log_mel` of the joined audio.
    """

    def __init__(self):
        self._buffer = np.zeros(0, dtype=np.float32)

    def feed(self, samples: np.ndarray) -> np.ndarray:
        self._buffer = np.concatenate([self._buffer, np.asarray(samples, dtype=np.float32)])
        n = 0 if len(self._buffer) < WINDOW else (len(self._buffer) - WINDOW) // HOP + 1
        if n == 0:
            return np.zeros((0, N_MELS), dtype=np.float32)
        frames = log_mel(self._buffer[: (n - 1) * HOP + WINDOW])
        self._buffer = self._buffer[n * HOP :]
        return frames


def load_audio(path) -> np.ndarray:
    """A WAV/FLAC/OGG file as mono float32 samples at 16 kHz (resampled with librosa/soxr when needed).

    A missing, unreadable, empty or silent file, or a sample rate of 0, is a one-line ``RnnkitError``.
    """
    import librosa

    from rnnkit.apps.speech.data import read_audio

    y, rate = read_audio(path)
    if rate != SAMPLE_RATE:
        y = librosa.resample(y, orig_sr=rate, target_sr=SAMPLE_RATE)
    if len(y) < WINDOW:
        raise RnnkitError(f"{getattr(path, 'name', path)}: shorter than one 25 ms frame ({len(y)} samples)")
    return np.ascontiguousarray(y, dtype=np.float32)
