"""Music generation: a token-level LSTM language model of folk tunes in ABC notation and Bach chorale melodies.

Data: 12,762 tunes of four collections in music21's corpus (Essen, O'Neill's 1850, Ryan's Mammoth, Aird's
Airs), read from the ``music21`` wheel without installing it; Bach's 371 chorale melodies as (pitch,
duration, beat position, fermata) in the same tokens (:mod:`.chorales`, ``data="chorales"``, split by
melody family); or the user's ABC and MIDI files (:mod:`.midi_in`: the melody track or the top voice,
quantised to sixteenths). Each tune becomes
musical tokens as in folk-rnn (Sturm et al., 2016) — meter, key, pitches, durations, bar lines, repeats —
moved to tonic C in its own mode (:mod:`.abc`). Tunes that cannot be read are skipped and counted by reason.
The split is by tune (a seeded shuffle; duplicates removed first).

Model: :class:`rnnkit.models.LanguageModel` (LSTM) on ``<bos> M:.. K:.. body <eos>``; the meter and key
tokens are the conditioning prefix. Sampling: temperature, top-k, top-p and a bar grammar (:mod:`.grammar`)
that never lets a bar run past its meter.

Scores (:mod:`.report`): held-out bits per token next to a Kneser-Ney n-gram (order chosen on validation)
and the unigram; the share of generated tunes that music21 turns into MIDI with every bar filling its meter;
pitch-class / interval / duration histogram distances to held-out tunes next to the distance between two
halves of them. Outputs (:mod:`.render`): ABC, MIDI (mido), a piano-roll PNG and, where fluidsynth or
timidity is installed, a WAV per tune.

Like every application: ``config`` (:class:`MusicConfig`, :class:`GenerateMusicConfig`), ``data``,
``model``, ``train``, ``report`` and ``use``::

    from rnnkit.apps.music import MusicConfig, train, generate
    result = train(MusicConfig(max_tunes=2000, epochs=3, name="folk"))
    files = generate(result.run, meter="6/8", key="Dmix", num_samples=5, out_dir="tunes")
"""

from rnnkit.apps.music.config import GenerateMusicConfig, MusicConfig
from rnnkit.apps.music.data import APP, COLLECTIONS, load_tunes
from rnnkit.apps.music.train import train
from rnnkit.apps.music.use import MusicGenerator, generate, load, write_tunes

__all__ = [
    "APP",
    "COLLECTIONS",
    "GenerateMusicConfig",
    "MusicConfig",
    "MusicGenerator",
    "generate",
    "load",
    "load_tunes",
    "train",
    "write_tunes",
]
