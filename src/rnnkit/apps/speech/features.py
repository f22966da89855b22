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

__all__ = [
    "HOP",
    "N_MELS",
    "SAMPLE_RATE",
    "WINDOW",
    "StreamingLogMel",
    "load_audio",
    "log_mel",
    "stretch_frames",
    "warp_log_mel",
]

SAMPLE_RATE = 16000
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
_FLOOR = 1e-8
_FMIN, _FMAX = 20.0, 7600.0


def _mel_basis() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=WINDOW, n_mels=N_MELS, fmin=_FMIN, fmax=_FMAX)


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


def stretch_frames(seq: np.ndarray, length: int) -> np.ndarray:
    """Frames ``seq`` (T, F) stretched or squeezed linearly in time to ``length`` frames (T >= 1): frame ``i`` of
    the result reads position ``i (T - 1) / (length - 1)``, interpolating between the two nearest frames."""
    pos = np.linspace(0, len(seq) - 1, length)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(seq) - 1)
    w = (pos - lo)[:, None]
    return (1 - w) * seq[lo] + w * seq[hi]


def warp_log_mel(frames, alpha):
    """Vocal tract length perturbation (Jaitly & Hinton 2013) of log-mel frames: the spectrum stretched
    along frequency by ``alpha``, as if the speaker's vocal tract were ``1/alpha`` times as long.

    Band ``k`` (centre frequency :math:`f_k`) of the result reads the input at :math:`f_k / \\alpha`, that is at
    the fractional band where that frequency's mel value lies, interpolating linearly between the two
    neighbouring bands; frequencies below the first or above the last band's centre read that band.
    ``alpha > 1`` moves energy to higher bands (a shorter tract: formants and pitch rise).

    Args:
        frames: ``(..., T, 40)`` log-mel frames (:func:`log_mel`), a tensor.
        alpha: one factor, or a tensor of factors of shape ``(...)`` (one per sequence of the batch).

    Returns:
        The warped frames, the shape of ``frames``.

    Example::

        >>> import torch
        >>> x = torch.randn(2, 5, 40)
        >>> torch.allclose(warp_log_mel(x, torch.ones(2)), x, atol=1e-5)
        True
    """
    import librosa
    import torch

    mels = librosa.hz_to_mel(np.array([_FMIN, _FMAX]))
    centres_mel = np.linspace(mels[0], mels[1], N_MELS + 2)[1:-1]  # librosa.filters.mel's band centres
    alpha = np.asarray(torch.as_tensor(alpha).detach().cpu().double().numpy())
    source = librosa.mel_to_hz(centres_mel) / alpha[..., None]  # (..., 40): the frequency each band reads
    pos = (librosa.hz_to_mel(source) - centres_mel[0]) / (centres_mel[1] - centres_mel[0])
    pos = torch.from_numpy(np.clip(np.round(pos, 9), 0, N_MELS - 1))  # fractional band index
    lo = pos.floor().long().clamp(max=N_MELS - 2)
    w = (pos - lo).to(frames.dtype).unsqueeze(-2)  # (..., 1, 40), broadcast over time
    idx = lo.unsqueeze(-2).expand(*frames.shape[:-1], N_MELS)
    below = frames.gather(-1, idx)
    above = frames.gather(-1, idx + 1)
    return below + w * (above - below)


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
