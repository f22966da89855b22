"""Bach chorale melodies: the 371 chorales of music21's corpus as (pitch, duration, beat position, fermata).

Each chorale's melody (the part named *Soprano*; the first part where none is, as in a few chorales whose
top line is written for an instrument) becomes the same token form as the folk tunes (:mod:`.abc`):

* pitch: the written spelling, moved to tonic C in the chorale's key (music21's key estimate,
  ``Score.analyze("key")``: major or minor) by the diatonic shift of :func:`.abc.events_to_tokens`;
* duration: a duration token in eighths (``2`` is a quarter note);
* beat position: carried by the bar lines — a note's position in its bar is the sum of the durations before
  it since the bar line (a short first bar is a pick-up and ends on the downbeat);
  :func:`note_tuples` reads the (pitch, duration, beat, fermata) sequence back out of the tokens;
* fermata: the token ``H`` before the note it holds (written ``!fermata!`` in ABC).

Bar lines: ``|`` between measures (none inside a bar that the edition splits in two at a line break), ``:|`` where music21 has a repeat end, ``|:`` at a repeat start, ``||``
at a double or final bar line. Grace notes are dropped; the top note of a chord is kept. Chorales with a
change of meter, a tuplet, or bars that do not fill the meter are skipped with the reason.

Parsing takes about 0.1-0.3 s a chorale, so each chorale's tokens are cached in
``<cache>/music21/chorales_tokens.json`` (rewritten atomically when chorales are added): a run parses a
chorale once, and a run that uses a sample of them parses only those.
"""

from __future__ import annotations

import json
import warnings
from fractions import Fraction

from rnnkit._errors import RnnkitError
from rnnkit.apps.music.abc import (
    LETTERS,
    UNIT,
    AbcSkip,
    meter_length,
    token_events,
    tokens_of_events,
)
from rnnkit.datasets._cache import cache_dir
from rnnkit.files import atomic_write_bytes

__all__ = ["CHORALE_VERSION", "chorale_names", "chorale_tokens", "load_chorales", "note_tuples"]

CHORALE_VERSION = 1  # bump when the chorale token form changes: the cache is then rebuilt


def _music21():
    try:
        import music21
    except ImportError:
        raise RnnkitError(
            "--data chorales needs music21 (the chorales are parsed with it): pip install 'rnnkit[apps]'"
        ) from None
    return music21


def chorale_names() -> list[str]:
    """The 371 chorales in Riemenschneider's order, as music21 corpus paths (``bach/bwv269``, ...)."""
    m21 = _music21()
    return list(m21.corpus.chorales.Iterator(numberingSystem="riemenschneider", returnType="filename"))


def _melody_part(score):
    parts = list(score.parts)
    for p in parts:
        if (p.partName or "").lower().startswith("soprano"):
            return p
    return parts[0]


def chorale_events(score) -> tuple[str, tuple[int, int, str], list[tuple]]:
    """``(meter, key, events)`` of a parsed chorale's melody, in the event form of :func:`.abc.tune_events`
    plus ``("fermata",)`` before a held note; raises :class:`.abc.AbcSkip`."""
    m21 = _music21()
    part = _melody_part(score)
    sigs = {ts.ratioString for ts in part.flatten().getElementsByClass("TimeSignature")}
    if len(sigs) != 1:
        raise AbcSkip("meter change inside the chorale" if sigs else "no meter")
    meter = sigs.pop()
    key = score.analyze("key")
    mode = "maj" if key.mode == "major" else "min"
    tonic = (LETTERS.index(key.tonic.step), int(key.tonic.alter), mode)
    events: list[tuple] = []
    measures = list(part.getElementsByClass("Measure"))
    for k, m in enumerate(measures):
        left = m.leftBarline
        if isinstance(left, m21.bar.Repeat) and left.direction == "start":
            events.append(("bar", "|:"))
        for n in m.flatten().notesAndRests:
            if n.duration.isGrace or n.duration.quarterLength == 0:
                continue
            if n.duration.tuplets:
                raise AbcSkip("tuplet")
            length = Fraction(n.duration.quarterLength) / 4
            if any(isinstance(e, m21.expressions.Fermata) for e in n.expressions):
                events.append(("fermata",))
            if n.isRest:
                events.append(("rest", length))
                continue
            p = max(n.pitches, key=lambda q: q.ps) if n.isChord else n.pitch
            alter = int(p.alter)
            if alter != p.alter:
                raise AbcSkip("microtone")
            step = p.octave * 7 + LETTERS.index(p.step)
            events.append(("note", step, int(p.midi), length))
            if n.tie is not None and n.tie.type in ("start", "continue"):
                events.append(("tie",))
        right = m.rightBarline
        if isinstance(right, m21.bar.Repeat) and right.direction == "end":
            tok = ":|"
        elif right is not None and right.type in ("final", "double", "light-light", "light-heavy"):
            tok = "||"
        elif k == len(measures) - 1:
            tok = "||"
        elif m.paddingRight and measures[k + 1].paddingLeft and measures[k + 1].leftBarline is None:
            continue  # one bar written in two halves (a line break at a fermata): no bar line between
        else:
            tok = "|"
        events.append(("bar", tok))
    if not any(e[0] == "note" for e in events):
        raise AbcSkip("no notes")
    return meter, tonic, events


def chorale_tokens(score) -> list[str]:
    """The token form of a parsed chorale's melody (see the module docstring); raises ``AbcSkip``."""
    return tokens_of_events(*chorale_events(score))


def _parse(name: str) -> dict:
    m21 = _music21()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = m21.corpus.parse(name)
        return {"tokens": chorale_tokens(score)}
    except AbcSkip as exc:
        return {"skip": exc.reason}


def load_chorales(names: list[str] | None = None, say=None) -> tuple[list[dict], dict[str, str]]:
    """Tunes ``{"source", "collection": "chorales", "tokens"}`` of ``names`` (default: all 371), in their
    order, and ``{name: reason}`` of the skipped ones. Chorales not yet in the cache are parsed and added."""
    m21 = _music21()
    names = chorale_names() if names is None else list(names)
    path = cache_dir() / "music21" / "chorales_tokens.json"
    stamp = {"version": CHORALE_VERSION, "music21": m21.__version__}
    cached: dict[str, dict] = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and all(data.get(k) == v for k, v in stamp.items()):
                cached = data.get("chorales", {})
        except (OSError, json.JSONDecodeError):
            cached = {}
    missing = [n for n in names if n not in cached]
    if missing:
        if say is not None:
            say(f"music: parsing {len(missing)} chorales with music21 (once; cached in {path.parent})")
        for n in missing:
            cached[n] = _parse(n)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps({**stamp, "chorales": cached}).encode())
    tunes, skipped = [], {}
    for n in names:
        entry = cached[n]
        if "tokens" in entry:
            tunes.append({"source": n, "collection": "chorales", "tokens": entry["tokens"]})
        else:
            skipped[n] = entry["skip"]
    return tunes, skipped


def note_tuples(tokens: list[str]) -> list[tuple[int, Fraction, Fraction, bool]]:
    """``(midi pitch, duration, beat position, fermata)`` of every note and rest (pitch -1) of a token list;
    durations and positions in quarter notes, the position counted from the bar's downbeat (0).

    A short first bar is a pick-up: it ends on the next downbeat. A short bar that completes the short bar
    before it (the two halves of a bar split by a repeat sign) ends on the downbeat as well.
    """
    _, _, events = token_events(tokens)
    full = meter_length(tokens[0][2:]) * 4
    bars: list[list[list]] = [[]]
    fermata = False
    for ev in events:
        if ev[0] in ("note", "rest"):
            pitch = ev[1] if ev[0] == "note" else -1
            bars[-1].append([pitch, ev[-1] * UNIT * 4, fermata])
            fermata = False
        elif ev[0] == "fermata":
            fermata = True
        elif ev[0] == "bar" and bars[-1]:
            bars.append([])
    bars = [b for b in bars if b]
    out = []
    prev_len = full
    for k, bar in enumerate(bars):
        length = sum(n[1] for n in bar)
        pickup = length < full and (k == 0 or (prev_len < full and prev_len + length == full))
        pos = full - length if pickup else Fraction(0)
        for pitch, dur, ferm in bar:
            out.append((pitch, dur, pos, ferm))
            pos += dur
        prev_len = length if not pickup else full
    return out
