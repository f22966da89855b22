"""A tune's token form as MIDI (written with ``mido``) and as a piano-roll PNG (matplotlib)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from rnnkit.apps.music.abc import UNIT, meter_length, token_events

__all__ = ["TICKS_PER_QUARTER", "tune_notes", "write_midi", "write_piano_roll"]

TICKS_PER_QUARTER = 480


def tune_notes(tokens: list[str]) -> tuple[list[tuple[int, Fraction, Fraction]], list[Fraction]]:
    """``([(midi pitch, start, length)], bar line times)``, times in quarter notes; tied notes joined.

    Repeats are not unfolded: the notes are in written order.
    """
    _, _, events = token_events(tokens)
    notes: list[list] = []
    bars: list[Fraction] = []
    t = Fraction(0)
    tie_open = False
    for ev in events:
        if ev[0] == "note":
            length = ev[-1] * UNIT * 4  # quarters
            if tie_open and notes and notes[-1][0] == ev[1] and notes[-1][1] + notes[-1][2] == t:
                notes[-1][2] += length
            else:
                notes.append([ev[1], t, length])
            t += length
            tie_open = False
        elif ev[0] == "rest":
            t += ev[-1] * UNIT * 4
            tie_open = False
        elif ev[0] == "tie":
            tie_open = True
        elif ev[0] == "bar":
            bars.append(t)
    return [tuple(n) for n in notes], bars


def write_midi(tokens: list[str], path: Path, tempo_qpm: float = 120.0, program: int = 73) -> Path:
    """A one-track MIDI file of the tune (default instrument: General MIDI 73, flute)."""
    import mido

    notes, _ = tune_notes(tokens)
    mid = mido.MidiFile(ticks_per_beat=TICKS_PER_QUARTER)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    num, den = tokens[0][2:].split("/")
    track.append(mido.MetaMessage("time_signature", numerator=int(num), denominator=int(den), time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_qpm), time=0))
    track.append(mido.Message("program_change", program=program, time=0))
    timeline = []
    for pitch, start, length in notes:
        timeline.append((round(start * TICKS_PER_QUARTER), 1, "note_on", pitch))
        timeline.append((round((start + length) * TICKS_PER_QUARTER), 0, "note_off", pitch))
    now = 0
    for tick, _, kind, pitch in sorted(timeline):  # offs before ons at the same tick
        track.append(mido.Message(kind, note=pitch, velocity=80 if kind == "note_on" else 0, time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    mid.save(str(path))
    return path


def write_piano_roll(tokens: list[str], path: Path, title: str = "") -> Path:
    """A piano roll: one bar per note (pitch against time in quarter notes), bar lines dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    notes, bars = tune_notes(tokens)
    end = max([float(s + n) for _, s, n in notes] + [1.0])
    fig, ax = plt.subplots(figsize=(min(18, 2 + end / 3), 3.2))
    for pitch, start, length in notes:
        ax.broken_barh([(float(start), float(length) * 0.97)], (pitch - 0.4, 0.8), color="tab:blue")
    for b in bars:
        ax.axvline(float(b), color="0.7", lw=0.6, ls=":")
    if notes:
        lo, hi = min(p for p, _, _ in notes), max(p for p, _, _ in notes)
        ax.set_ylim(lo - 2, hi + 2)
        ticks = [p for p in range(lo - 1, hi + 2) if p % 12 in (0, 7)]
        names = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
        ax.set_yticks(ticks, [f"{names[p % 12]}{p // 12 - 1}" for p in ticks])
    ax.set_xlim(0, end)
    bar_q = float(meter_length(tokens[0][2:]) * 4)
    ax.set_xlabel(f"time (quarter notes; a bar of {tokens[0][2:]} is {bar_q:g})")
    ax.set_title(title or f"{tokens[0]} {tokens[1]}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
