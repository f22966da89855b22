"""The user's MIDI files as tunes in the token form of :mod:`.abc` (read with ``mido``).

A MIDI file holds performed or sequenced notes, not a written melody, so it is turned into one in four steps:

1. **The melody.** A track whose name says melody (``melody``, ``soprano``, ``lead``, ``vocal``, ``voice``,
   ``tune``) is the melody; otherwise the top voice of all tracks (General MIDI drums, channel 10, left
   out): at each onset the highest note sounding from there on (the "skyline").
2. **Quantising.** Onsets and ends are rounded to the nearest sixteenth note (half the tokens' unit of one
   eighth; a quarter note is the file's ``ticks_per_beat``). A note that rounds to nothing lasts one
   sixteenth; a note is cut where the next melody note starts.
3. **Meter and key.** The file's first time signature (4/4 when it has none) and its first key signature;
   without one, the key whose Krumhansl-Kessler profile best matches the melody's duration-weighted
   pitch classes (major or minor). The file's time 0 is taken to be a downbeat; silence before the first
   note is dropped, so the first bar may be a pick-up.
4. **Tokens.** Bars of the meter, rests in the gaps, a note over a bar line split into tied notes,
   pitches spelled in the key (notes outside it as a sharp in sharp keys, else a flat), then moved to
   tonic C like every tune.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from rnnkit._errors import RnnkitError
from rnnkit.apps.music.abc import (
    _NATURAL,
    AbcSkip,
    _key_shift,
    _meter,
    check_bars,
    events_to_tokens,
    key_signature,
    meter_length,
    parse_key,
)

__all__ = ["GRID", "MELODY_NAMES", "midi_melody", "midi_tokens"]

GRID = Fraction(1, 16)  # quantisation step in whole notes
MELODY_NAMES = ("melody", "soprano", "lead", "vocal", "voice", "tune")
# Krumhansl & Kessler (1982) key profiles, from the tonic up
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def _read(path: Path):
    import mido

    try:
        return mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise RnnkitError(f"{path.name}: expected a MIDI file, cannot read it ({exc})") from None


def midi_melody(path: Path) -> tuple[list[tuple[int, int, int]], str, str, int, str]:
    """``(notes, meter, key, ticks per quarter, how the melody was chosen)``; ``notes`` are
    ``(start tick, end tick, pitch)`` of the melody, unquantised, sorted, not overlapping."""
    mid = _read(path)
    tracks: list[tuple[str, list[tuple[int, int, int]]]] = []
    meter, key = "", ""
    for track in mid.tracks:
        now = 0
        open_: dict[tuple[int, int], list[int]] = {}  # (channel, pitch) -> start ticks of sounding notes
        notes, name = [], ""
        for msg in track:
            now += msg.time
            if msg.type == "track_name" and not name:
                name = msg.name
            elif msg.type == "time_signature" and not meter:
                meter = f"{msg.numerator}/{msg.denominator}"
            elif msg.type == "key_signature" and not key:
                key = msg.key
            elif msg.type in ("note_on", "note_off") and msg.channel != 9:
                k = (msg.channel, msg.note)
                if msg.type == "note_on" and msg.velocity > 0:
                    open_.setdefault(k, []).append(now)
                elif open_.get(k):
                    start = open_[k].pop(0)
                    if now > start:
                        notes.append((start, now, msg.note))
        tracks.append((name, notes))
    if not any(notes for _, notes in tracks):
        raise RnnkitError(f"{path.name}: expected a MIDI file with notes, found none")
    named = [(n, t) for n, t in tracks if t and any(w in n.lower() for w in MELODY_NAMES)]
    if named:
        notes, how = sorted(named[0][1]), f"track {named[0][0]!r}"
    else:
        notes, how = sorted(n for _, t in tracks for n in t), "top voice of all tracks"
    return notes, meter or "4/4", key, mid.ticks_per_beat, how


def _skyline(notes: list[tuple[int, int, int]], grid_ticks: float) -> list[tuple[int, int, int]]:
    """Quantised ``(start, end, pitch)`` in grid steps: the highest note at each onset, cut at the next."""
    by_onset: dict[int, tuple[int, int]] = {}
    for start, end, pitch in notes:
        s = round(start / grid_ticks)
        e = max(s + 1, round(end / grid_ticks))
        if s not in by_onset or pitch > by_onset[s][1]:
            by_onset[s] = (e, pitch)
    onsets = sorted(by_onset)
    out = []
    for i, s in enumerate(onsets):
        e, pitch = by_onset[s]
        if i + 1 < len(onsets):
            e = min(e, onsets[i + 1])
        out.append((s, e, pitch))
    return out


def _estimate_key(notes: list[tuple[int, int, int]]) -> str:
    weights = np.zeros(12)
    for s, e, p in notes:
        weights[p % 12] += e - s
    best, name = -2.0, "C"
    for tonic in range(12):
        for profile, suffix in ((_MAJOR, ""), (_MINOR, "m")):
            r = float(np.corrcoef(weights, np.roll(profile, tonic))[0, 1]) if weights.std() > 0 else 0.0
            if r > best:
                best, name = r, _TONICS[tonic] + suffix
    return name


def _spell(pitch: int, sig: dict[int, int], sharps: bool) -> tuple[int, int]:
    """``(diatonic step, midi)`` of a MIDI pitch spelled in the key (C4 = step 28): the key's own note, else
    a natural, else a sharp (sharp keys and C) or a flat."""
    pc, octave = pitch % 12, pitch // 12 - 1
    pref = 1 if sharps else -1
    for alters in ([None], [0], [pref], [-pref]):
        idx = next(
            (i for i in range(7) if (_NATURAL[i] + (sig[i] if alters[0] is None else alters[0])) % 12 == pc),
            None,
        )
        if idx is not None:
            alter = sig[idx] if alters[0] is None else alters[0]
            break
    sounding = _NATURAL[idx] + alter  # C-flat's letter is an octave above its sound, B-sharp's below
    letter_octave = octave + (1 if sounding < 0 else -1 if sounding > 11 else 0)
    return letter_octave * 7 + idx, pitch


def midi_tokens(path: Path) -> tuple[list[str], str]:
    """``(tokens, how the melody was chosen)`` of a MIDI file; raises :class:`RnnkitError` for a file with no
    notes or that is not MIDI, and :class:`.abc.AbcSkip` when the melody does not fit the token form."""
    path = Path(path)
    notes, meter, key, tpq, how = midi_melody(path)
    meter = _meter(meter)
    grid_ticks = tpq * 4 * float(GRID)
    melody = _skyline(notes, grid_ticks)
    if not key:
        key = _estimate_key(melody)
        how += f", key {key} estimated"
    letter, alter, mode = parse_key(key)
    sig = key_signature(letter, alter, mode)
    sharps = sum(sig.values()) >= 0
    bar = int(meter_length(meter) / GRID)  # grid steps per bar
    first = melody[0][0]
    origin = first - first % bar  # the bar of the first note; the silence before it is dropped
    events: list[tuple] = []
    t = first  # the time reached, in grid steps
    for s, e, pitch in melody:
        step, midi = _spell(pitch, sig, sharps)
        for kind, a, b in (("rest", t, s), ("note", s, e)):
            while a < b:
                bar_end = origin + ((a - origin) // bar + 1) * bar
                cut = min(b, bar_end)
                length = (cut - a) * GRID
                events.append(("rest", length) if kind == "rest" else ("note", step, midi, length))
                if kind == "note" and cut < b:
                    events.append(("tie",))
                a = cut
                if a == bar_end:
                    events.append(("bar", "|"))
        t = e
    if events[-1] == ("bar", "|"):
        events[-1] = ("bar", "||")
    else:
        events.append(("bar", "||"))
    steps, semis = _key_shift(letter, alter)
    tokens = events_to_tokens(meter, mode, events, steps, semis)
    problem = check_bars(tokens)
    if problem:
        raise AbcSkip("bars do not fill the meter", problem)
    return tokens, how
