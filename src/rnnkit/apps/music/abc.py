"""ABC notation <-> musical tokens, in the manner of folk-rnn (Sturm et al., 2016).

A tune becomes one token per musical event instead of one per character::

    <bos> M:6/8 K:Cmaj |: G 2 A | B c d e 2 c | ... :| <eos>

* header: the meter (``M:6/8``; ``C`` is ``4/4``, ``C|`` is ``2/2``) and the key, always with tonic C after
  transposition (``K:Cmaj``, ``K:Cmin``, ``K:Cdor``, ``K:Cmix``, ...). The unit length is always 1/8
  (``L:1/8``, as in folk-rnn), so it needs no token.
* pitches: accidental (``^ ^^ _ __ =`` or none), letter, octave marks (``c'``, ``C,``); ``z`` is a rest.
* durations in eighths, only when not 1: ``2``, ``3``, ``/2``, ``3/2``, ... Broken rhythm (``A>B``) is
  written out as durations (``A 3/2 B /2``), so that every bar's length is a sum of duration tokens.
* ``(3`` (a triplet: the next three notes take the time of two), ``-`` (a tie), ``H`` (a fermata on the
  next note; only the Bach chorales use it — ABC files' decorations are dropped — and it is written
  ``!fermata!`` in ABC text).
* bar lines: ``|``, ``||`` (also ``|]`` and ``[|``), ``|:``, ``:|``, ``::`` and endings ``[1`` ``[2``.

Transposition: every tune is moved to tonic C in its own mode (D major -> C major, A dorian -> C dorian,
E minor -> C minor) by a diatonic shift, so letter names keep their function and spelling (F# in D major
becomes E in C major). The shift is at most three letters up or down. A chosen key at generation time is
reached by the inverse shift (:func:`transpose_tokens`).

Grace notes, slurs, decorations, chord symbols, annotations and spaces are dropped. Tunes with chords,
several voices, changes of key or meter inside the tune, other tuplets, ``M:none`` or a key this module
cannot read are skipped, each with its reason (:class:`AbcSkip`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "BAR_TOKENS",
    "AbcSkip",
    "Tune",
    "bar_lengths",
    "duration_token",
    "key_name",
    "meter_length",
    "parse_key",
    "split_tunes",
    "tokens_to_abc",
    "tokens_of_events",
    "tune_tokens",
    "transpose_tokens",
]

LETTERS = "CDEFGAB"
_NATURAL = (0, 2, 4, 5, 7, 9, 11)  # semitones of C D E F G A B above C
MODES = {
    "maj": 0,
    "ion": 0,
    "mix": -1,
    "dor": -2,
    "min": -3,
    "aeo": -3,
    "m": -3,
    "phr": -4,
    "lyd": 1,
    "loc": -5,
}
_MODE_NAME = {"ion": "maj", "aeo": "min", "m": "min"}
_SHARP_ORDER = "FCGDAEB"
BAR_TOKENS = ("|", "||", "|:", ":|", "::")
ENDINGS = ("[1", "[2")
UNIT = Fraction(1, 8)  # the unit length of every token stream


class AbcSkip(Exception):
    """A tune this tokeniser leaves out; ``reason`` is a short category for the counts."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class Tune:
    """One tune of an ABC file: its header fields (first value of each) and its body lines."""

    fields: dict[str, str]
    body: str
    source: str  # "file.abc#X"


# ----------------------------------------------------------------------------------------------- reading
def split_tunes(text: str, source: str = "") -> list[Tune]:
    """The tunes of an ABC file: each starts at an ``X:`` line and ends at a blank line or the next ``X:``."""
    tunes: list[Tune] = []
    fields: dict[str, str] | None = None
    body: list[str] = []
    in_body = False

    def close() -> None:
        if fields is not None:
            tunes.append(Tune(dict(fields), "\n".join(body), f"{source}#{fields.get('X', '?')}"))

    for raw in text.splitlines():
        line = raw.split("%", 1)[0].rstrip() if not raw.startswith("%%") else ""
        if re.match(r"^X:", raw):
            close()
            fields, body, in_body = {"X": raw[2:].strip()}, [], False
            continue
        if fields is None:
            continue
        if not raw.strip():
            if in_body:
                close()
                fields, body, in_body = None, [], False
            continue
        m = re.match(r"^([A-Za-z]):(.*)$", line)
        if m and not (in_body and m.group(1) in "|"):
            key, value = m.group(1), m.group(2).strip()
            if in_body:
                if key in "KMLV":  # a change inside the tune: marked, so that the tune is skipped
                    body.append(f"\x00{key}:{value}")
                continue  # words (w:), notes and the like inside the body
            fields.setdefault(key, value)
            if key == "K":
                in_body = True
            continue
        if in_body and line.strip():
            body.append(line)
    close()
    return tunes


def meter_length(meter: str) -> Fraction:
    """A bar's length in whole notes: ``"6/8"`` -> 3/4."""
    num, den = meter.split("/")
    return Fraction(int(num), int(den))


def _meter(value: str) -> str:
    v = value.replace(" ", "")
    if v == "C":
        return "4/4"
    if v == "C|":
        return "2/2"
    if re.fullmatch(r"[1-9][0-9]?/(1|2|4|8|16)", v):
        return v
    if v.lower() in ("none", ""):
        raise AbcSkip("free meter (M:none)")
    raise AbcSkip("meter not understood", value)


def parse_key(value: str) -> tuple[int, int, str]:
    """``(letter index 0..6 of C..B, alteration of the tonic, mode)`` of a ``K:`` value such as ``F#m``."""
    v = value.strip()
    m = re.fullmatch(r"([A-Ga-g])([#b]?)\s*([A-Za-z]*)\s*", v)
    if not m:
        raise AbcSkip("key not understood", value)
    letter = LETTERS.index(m.group(1).upper())
    alter = {"#": 1, "b": -1, "": 0}[m.group(2)]
    word = m.group(3).lower()
    if word in ("", "major"):
        mode = "maj"
    elif word == "m":
        mode = "min"
    elif word[:3] in MODES:
        mode = _MODE_NAME.get(word[:3], word[:3])
    else:
        raise AbcSkip("key not understood", value)
    return letter, alter, mode


def key_name(letter: int, alter: int, mode: str) -> str:
    return LETTERS[letter] + {1: "#", -1: "b", 0: ""}[alter] + mode


def key_signature(letter: int, alter: int, mode: str) -> dict[int, int]:
    """Alteration of each letter (index) in the key: ``{3: 1}`` for G major's F sharp."""
    fifths_major = {0: 0, 1: 2, 2: 4, 3: -1, 4: 1, 5: 3, 6: 5}[letter] + 7 * alter
    fifths = fifths_major + MODES[mode]
    sig = {i: 0 for i in range(7)}
    if fifths > 0:
        for ch in _SHARP_ORDER[:fifths]:
            sig[LETTERS.index(ch)] += 1
        for ch in _SHARP_ORDER[: max(0, fifths - 7)]:
            sig[LETTERS.index(ch)] += 1
    elif fifths < 0:
        for ch in _SHARP_ORDER[::-1][:-fifths]:
            sig[LETTERS.index(ch)] -= 1
        for ch in _SHARP_ORDER[::-1][: max(0, -fifths - 7)]:
            sig[LETTERS.index(ch)] -= 1
    return sig


def _unit(value: str | None, meter: str) -> Fraction:
    if value:
        m = re.fullmatch(r"\s*1\s*/\s*(1|2|4|8|16|32)\s*", value)
        if not m:
            raise AbcSkip("unit length not understood", value)
        return Fraction(1, int(m.group(1)))
    # ABC's default: 1/16 when the meter is below 3/4, else 1/8
    return Fraction(1, 16) if meter_length(meter) < Fraction(3, 4) else Fraction(1, 8)


# ----------------------------------------------------------------------------------------------- events
_NOTE = re.compile(r"(\^\^|\^|__|_|=)?([A-Ga-gz])([',]*)(\d*)(/*)(\d*)")
_BAR = re.compile(r":*\|+\]?:*|\[\||::")


def _length(num: str, slashes: str, den: str) -> Fraction:
    n = int(num) if num else 1
    if not slashes:
        return Fraction(n)
    if den:
        return Fraction(n, int(den) ** 1 if len(slashes) == 1 else int(den) * 2 ** (len(slashes) - 1))
    return Fraction(n, 2 ** len(slashes))


def _strip(body: str) -> str:
    """The body without what does not change pitch or time: chord symbols, decorations, grace notes, slurs."""
    if "\x00" in body:
        field = body.split("\x00", 1)[1].split("\n", 1)[0]
        if field[:1] == "V":
            raise AbcSkip("several voices")
        raise AbcSkip("key, meter or unit change inside the tune", field)
    if re.search(r"\[[KMLV]:", body):
        raise AbcSkip("key, meter or unit change inside the tune")
    body = re.sub(r'"[^"]*"', "", body)  # chord symbols and annotations
    body = re.sub(r"![^!\n]*!|\+[^+\n]*\+", "", body)  # !trill! +fermata+
    body = re.sub(r"\{[^}]*\}", "", body)  # grace notes
    body = re.sub(r"\\\s*\n", " ", body)
    body = re.sub(r"[.~HLMOPSTuvkJRy`]", "", body)  # one-character decorations, backquote beaming
    return body


def tune_events(tune: Tune) -> tuple[str, tuple[int, int, str], list[tuple]]:
    """``(meter, key, events)``: events are ``("note", step, midi, length)``, ``("rest", length)``,
    ``("bar", token)``, ``("ending", token)``, ``("tuplet",)`` and ``("tie",)``; lengths in whole notes."""
    meter = _meter(tune.fields.get("M", "none"))
    key = parse_key(tune.fields.get("K", ""))
    unit = _unit(tune.fields.get("L"), meter)
    sig = key_signature(*key)
    body = _strip(tune.body)
    events: list[tuple] = []
    bar_acc: dict[tuple[int, int], int] = {}  # accidentals carried to the end of the bar, per letter+octave
    broken: Fraction | None = None  # the factor of the next note after > or <
    tuplet_left = 0
    i = 0
    full = meter_length(meter)
    in_tuplet: set[int] = set()  # indices of events inside a triplet (they last 2/3 of their length)
    last_bar = -1
    while i < len(body):
        ch = body[i]
        if ch == "\n" and events and broken is None and not tuplet_left:
            # The Essen collection ends a full bar with a line break instead of a bar line.
            pos = sum(
                (e[-1] * (Fraction(2, 3) if k in in_tuplet else 1))
                for k, e in enumerate(events[last_bar + 1 :], last_bar + 1)
                if e[0] in ("note", "rest")
            )
            if pos == full and events[-1][0] != "bar":
                events.append(("bar", "|"))
                last_bar = len(events) - 1
                bar_acc.clear()
            i += 1
            continue
        if ch.isspace() or ch in ")":
            i += 1
            continue
        if ch == "(":
            m = re.match(r"\((\d)(:\d*)?(:\d*)?", body[i:])
            if m:
                if m.group(1) != "3" or m.group(2):
                    raise AbcSkip("tuplet other than (3", m.group(0))
                if tuplet_left:
                    raise AbcSkip("nested or unfinished tuplet")
                events.append(("tuplet",))
                tuplet_left = 3
                i += len(m.group(0))
            else:
                i += 1  # a slur
            continue
        if ch == "[" and i + 1 < len(body) and body[i + 1] in "12":
            if not events or events[-1][0] != "bar":
                raise AbcSkip("ending not after a bar line")
            events.append(("ending", "[" + body[i + 1]))
            i += 2
            continue
        if ch == "[" and i + 1 < len(body) and body[i + 1] not in "|":
            raise AbcSkip("chord")
        m = _BAR.match(body, i)
        if m:
            tok = m.group(0)
            i = m.end()
            if tok in ("|", "||", "|]", "[|", "|:", ":|", "::", ":|:", ":||:", ":||", "||:", "[|:"):
                norm = {
                    "|]": "||",
                    "[|": "||",
                    ":|:": "::",
                    ":||:": "::",
                    ":||": ":|",
                    "||:": "|:",
                    "[|:": "|:",
                }
                tok = norm.get(tok, tok)
            else:
                raise AbcSkip("bar line not understood", tok)
            if tuplet_left:
                raise AbcSkip("tuplet across a bar line")
            if broken is not None:
                raise AbcSkip("broken rhythm across a bar line")
            events.append(("bar", tok))
            last_bar = len(events) - 1
            bar_acc.clear()
            mm = re.match(r"\[?([12])(?![0-9])", body[i:])
            if mm:
                events.append(("ending", "[" + mm.group(1)))
                i += len(mm.group(0))
            continue
        if ch == "-":
            if not events or events[-1][0] != "note":
                raise AbcSkip("tie after something that is not a note")
            events.append(("tie",))
            i += 1
            continue
        if ch in "<>":
            m = re.match(r"[<>]+", body[i:])
            arrows = m.group(0)
            if len(set(arrows)) != 1 or len(arrows) > 2:
                raise AbcSkip("broken rhythm not understood", arrows)
            j = len(events) - 1
            while j >= 0 and events[j][0] == "tie":
                j -= 1
            if j < 0 or events[j][0] not in ("note", "rest") or broken is not None:
                raise AbcSkip("broken rhythm without a note before it")
            small = Fraction(1, 2 ** len(arrows))
            first, second = (2 - small, small) if arrows[0] == ">" else (small, 2 - small)
            ev = events[j]
            events[j] = (*ev[:-1], ev[-1] * first)
            broken = second
            i += len(arrows)
            continue
        m = _NOTE.match(body, i)
        if not m or m.end() == i:
            raise AbcSkip("symbol not understood", body[i : i + 8].strip())
        acc, letter, octs, num, slashes, den = m.groups()
        i = m.end()
        length = _length(num, slashes, den) * unit
        if broken is not None:
            length *= broken
            broken = None
        if tuplet_left:
            tuplet_left -= 1
            in_tuplet.add(len(events))
        if letter == "z":
            events.append(("rest", length))
            continue
        idx = LETTERS.index(letter.upper())
        octave = 4 + (1 if letter.islower() else 0) + octs.count("'") - octs.count(",")
        if acc is not None:
            alter = {"^": 1, "^^": 2, "_": -1, "__": -2, "=": 0}[acc]
            bar_acc[(idx, octave)] = alter
        else:
            alter = bar_acc.get((idx, octave), sig[idx])
        step = octave * 7 + idx
        midi = 12 * (octave + 1) + _NATURAL[idx] + alter
        events.append(("note", step, midi, length))
    if tuplet_left:
        raise AbcSkip("unfinished tuplet")
    if broken is not None:
        raise AbcSkip("broken rhythm at the end")
    if not any(e[0] == "note" for e in events):
        raise AbcSkip("no notes")
    return meter, key, events


# ----------------------------------------------------------------------------------------------- tokens
def duration_token(length: Fraction) -> str:
    """The token of a length in whole notes (``""`` for one eighth): 1/4 -> ``"2"``, 3/16 -> ``"3/2"``."""
    units = length / UNIT
    if units == 1:
        return ""
    if units.denominator == 1:
        return str(units.numerator)
    return (str(units.numerator) if units.numerator != 1 else "") + f"/{units.denominator}"


def token_length(token: str) -> Fraction:
    """The inverse of :func:`duration_token`, in eighths."""
    num, _, den = token.partition("/")
    return Fraction(int(num) if num else 1, int(den) if den else 1)


def _spell(step: int, alter: int) -> tuple[str, int]:
    """ABC letter with octave marks for a diatonic step (C4 = 28), and the alteration."""
    octave, idx = divmod(step, 7)
    letter = LETTERS[idx]
    if octave >= 5:
        return letter.lower() + "'" * (octave - 5), alter
    return letter + "," * (4 - octave), alter


_ACC = {2: "^^", 1: "^", 0: "=", -1: "_", -2: "__"}


def _key_shift(letter: int, alter: int) -> tuple[int, int]:
    """``(diatonic steps, semitones)`` to move tonic ``letter``/``alter`` to C by at most three letters."""
    steps = letter if letter <= 3 else letter - 7
    semis = (_NATURAL[letter] if letter <= 3 else _NATURAL[letter] - 12) + alter
    return steps, semis


def events_to_tokens(meter: str, mode: str, events: list[tuple], steps: int, semis: int) -> list[str]:
    """Tokens of the events moved down ``steps`` letters / ``semis`` semitones, spelled in C ``mode``."""
    sig = key_signature(0, 0, mode)
    out = [f"M:{meter}", f"K:C{mode}"]
    touched: set[int] = set()  # letters with a written accidental earlier in this bar
    for ev in events:
        kind = ev[0]
        if kind == "note":
            _, step, midi, length = ev
            step, midi = step - steps, midi - semis
            octave, idx = divmod(step, 7)
            alter = midi - (12 * (octave + 1) + _NATURAL[idx])
            if abs(alter) > 2:
                raise AbcSkip("pitch cannot be spelled after transposition")
            name, _ = _spell(step, alter)
            if alter != sig[idx] or idx in touched:
                name = _ACC[alter] + name
                touched.add(idx)
            out.append(name)
            d = duration_token(length)
            if d:
                out.append(d)
        elif kind == "rest":
            out.append("z")
            d = duration_token(ev[1])
            if d:
                out.append(d)
        elif kind == "bar":
            touched.clear()
            tok = ev[1]
            if out[-1] in BAR_TOKENS:  # two bar lines with nothing between them become one
                pair = {out[-1], tok}
                out[-1] = (
                    "::"
                    if pair == {":|", "|:"}
                    else tok
                    if out[-1] == "|"
                    else out[-1]
                    if tok == "|"
                    else tok
                )
            elif len(out) == 2 and tok in ("|", "||"):
                continue  # a bar line before the first note says nothing
            else:
                out.append(tok)
        elif kind == "ending":
            out.append(ev[1])
        elif kind == "tuplet":
            out.append("(3")
        elif kind == "tie":
            out.append("-")
        elif kind == "fermata":
            out.append("H")
    return out


def tune_tokens(tune: Tune) -> list[str]:
    """The token form of a tune (header and body, no ``<bos>``/``<eos>``), transposed to tonic C."""
    return tokens_of_events(*tune_events(tune))


def tokens_of_events(meter: str, key: tuple, events: list) -> list[str]:
    """Tokens of a melody's events (of an ABC tune or a chorale), transposed from ``key`` = (letter, alter,
    mode) to tonic C; raises ``AbcSkip`` when a bar does not fill the meter."""
    letter, alter, mode = key
    steps, semis = _key_shift(letter, alter)
    tokens = events_to_tokens(meter, mode, events, steps, semis)
    problem = check_bars(tokens)
    if problem:
        raise AbcSkip("bars do not fill the meter", problem)
    return tokens


def is_pitch(token: str) -> bool:
    return bool(re.fullmatch(r"(\^\^|\^|__|_|=)?[A-Ga-g][',]*", token))


def is_duration(token: str) -> bool:
    return bool(re.fullmatch(r"\d+|\d*/\d+", token))


def token_events(tokens: list[str]) -> tuple[str, str, list[tuple]]:
    """``(meter, mode, events)`` of a token list: ``("note", midi, eighths)``, ``("rest", eighths)``,
    ``("bar", token)``, ``("tie",)`` and ``("fermata",)``; lengths include a triplet's 2/3."""
    meter = tokens[0][2:]
    key = parse_key(tokens[1][2:])
    mode = key[2]
    sig = key_signature(*key)
    events: list[tuple] = []
    bar_acc: dict[tuple[int, int], int] = {}
    tuplet_left = 0
    for tok in tokens[2:]:
        if is_duration(tok):
            ev = events[
                -1
            ]  # the note or rest before it: its length so far is 1 eighth (times a triplet's 2/3)
            events[-1] = (*ev[:-1], ev[-1] * token_length(tok))
        elif is_pitch(tok) or tok == "z":
            factor = Fraction(2, 3) if tuplet_left else Fraction(1)
            tuplet_left = max(0, tuplet_left - 1)
            if tok == "z":
                events.append(("rest", factor))
                continue
            m = re.fullmatch(r"(\^\^|\^|__|_|=)?([A-Ga-g])([',]*)", tok)
            acc, letter, octs = m.groups()
            idx = LETTERS.index(letter.upper())
            octave = 4 + (1 if letter.islower() else 0) + octs.count("'") - octs.count(",")
            if acc is not None:
                alter = {"^": 1, "^^": 2, "_": -1, "__": -2, "=": 0}[acc]
                bar_acc[(idx, octave)] = alter
            else:
                alter = bar_acc.get((idx, octave), sig[idx])
            events.append(("note", 12 * (octave + 1) + _NATURAL[idx] + alter, factor))
        elif tok == "(3":
            tuplet_left = 3
        elif tok in BAR_TOKENS:
            events.append(("bar", tok))
            bar_acc.clear()
        elif tok == "-" and events:
            events.append(("tie",))
        elif tok == "H":
            events.append(("fermata",))
    return meter, mode, events


def bar_lengths(tokens: list[str]) -> list[tuple[Fraction, str, str]]:
    """``(length in whole notes, bar line before, bar line after)`` of every bar; the first bar line before
    the tune is ``"start"`` and after its last notes ``"end"``."""
    _, _, events = token_events(tokens)
    bars: list[tuple[Fraction, str, str]] = []
    pos, before, has = Fraction(0), "start", False
    for ev in events:
        if ev[0] in ("note", "rest"):
            pos += ev[-1] * UNIT
            has = True
        elif ev[0] == "bar":
            if has:
                bars.append((pos, before, ev[1]))
            before, pos, has = ev[1], Fraction(0), False
    if has:
        bars.append((pos, before, "end"))
    return bars


def check_bars(tokens: list[str]) -> str:
    """``""`` when every bar fills the meter, else what is wrong.

    A bar may be shorter than the meter only next to a section boundary: a pick-up at the start of the tune
    or after ``||``/``|:``/``:|``/``::``, or a bar that ends one (the rest of the pick-up's bar). No bar may
    be longer than the meter.
    """
    full = meter_length(tokens[0][2:])
    for n, (length, before, after) in enumerate(bar_lengths(tokens), 1):
        if length > full:
            return f"bar {n} lasts {length}, longer than the meter's {full}"
        if length < full and before == "|" and after == "|":
            return f"bar {n} lasts {length}, shorter than the meter's {full}"
    return ""


# ----------------------------------------------------------------------------------------------- writing
def transpose_tokens(tokens: list[str], key: str) -> tuple[list[str], str]:
    """Tokens in tonic C moved to ``key`` (e.g. ``"Dmix"``): ``(tokens, K: value)``; raises ``AbcSkip``."""
    letter, alter, mode = parse_key(key)
    if f"K:C{mode}" != tokens[1]:
        raise AbcSkip("mode differs", f"{key} vs {tokens[1]}")
    steps, semis = _key_shift(letter, alter)
    _, _, events = token_events(tokens)
    # back to ("note", step, midi, length) events, then forward by -steps/-semis, spelled in C mode,
    # finally renamed by letter: the spelling is kept relative to the new key's signature.
    out = [tokens[0], f"K:{key_name(letter, alter, mode)}"]
    sig = key_signature(letter, alter, mode)
    touched: set[int] = set()
    bar_acc: dict[tuple[int, int], int] = {}
    csig = key_signature(0, 0, mode)
    for tok in tokens[2:]:
        m = re.fullmatch(r"(\^\^|\^|__|_|=)?([A-Ga-g])([',]*)", tok)
        if not m:
            out.append(tok)
            if tok in BAR_TOKENS:
                touched.clear()
                bar_acc.clear()
            continue
        acc, letter_c, octs = m.groups()
        idx = LETTERS.index(letter_c.upper())
        octave = 4 + (1 if letter_c.islower() else 0) + octs.count("'") - octs.count(",")
        if acc is not None:
            a = {"^": 1, "^^": 2, "_": -1, "__": -2, "=": 0}[acc]
            bar_acc[(idx, octave)] = a
        else:
            a = bar_acc.get((idx, octave), csig[idx])
        step = octave * 7 + idx + steps
        midi = 12 * (octave + 1) + _NATURAL[idx] + a + semis
        o2, i2 = divmod(step, 7)
        alter2 = midi - (12 * (o2 + 1) + _NATURAL[i2])
        if abs(alter2) > 2:
            raise AbcSkip("pitch cannot be spelled in the chosen key")
        name, _ = _spell(step, alter2)
        if alter2 != sig[i2] or i2 in touched:
            name = _ACC[alter2] + name
            touched.add(i2)
        out.append(name)
    return out, out[1][2:]


def tokens_to_abc(tokens: list[str], title: str = "", number: int = 1) -> str:
    """An ABC tune (``X:``, ``T:``, ``M:``, ``L:1/8``, ``K:`` and the body) from a token list."""
    meter, key = tokens[0][2:], tokens[1][2:]
    body: list[str] = []
    for tok in tokens[2:]:
        if tok in BAR_TOKENS:
            body.append(f" {tok} ")
        elif is_duration(tok) or tok == "-":
            body.append(tok)
        elif tok in ENDINGS:
            body[-1] = body[-1].rstrip() + tok + " " if body else tok + " "
        elif tok == "H":
            body.append(" !fermata!")
        elif body and body[-1].endswith("!"):
            body.append(tok)  # the note a fermata marks
        else:
            body.append(tok if not body or body[-1].endswith(" ") else " " + tok)
    text = "".join(body).strip()
    text = re.sub(r"  +", " ", text)
    lines, bars = [], text.split(" | ")
    for i in range(0, len(bars), 4):  # four bars a line, for people
        lines.append(" | ".join(bars[i : i + 4]))
    body_text = " |\n".join(lines)
    head = f"X:{number}\nT:{title or 'rnnkit tune'}\nM:{meter}\nL:1/8\nK:{key}\n"
    return head + body_text + "\n"
