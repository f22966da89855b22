"""A tune's token form as MIDI (written with ``mido``), a piano-roll PNG (matplotlib) and a WAV (rendered by
fluidsynth or timidity where one is installed)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from rnnkit._errors import RnnkitError
from rnnkit.apps.music.abc import UNIT, bar_lengths, meter_length, token_events

__all__ = [
    "SOUNDFONTS",
    "TICKS_PER_QUARTER",
    "synthesizer",
    "tune_notes",
    "write_midi",
    "write_piano_roll",
    "write_wav",
]

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
    """A one-track MIDI file of the tune (default instrument: General MIDI 73, flute).

    A pick-up (a short first bar) starts after a rest, so that the bar lines of the MIDI file's meter fall
    where the tune's do.
    """
    import mido

    notes, _ = tune_notes(tokens)
    bars = bar_lengths(tokens)
    full = meter_length(tokens[0][2:])
    lead = (full - bars[0][0]) * 4 if bars and bars[0][0] < full else Fraction(0)
    notes = [(p, s + lead, n) for p, s, n in notes]
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


SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)


def synthesizer() -> tuple[list[str] | None, str]:
    """``(command prefix, "")`` of the installed MIDI synthesiser, or ``(None, why not)``.

    Debian's ``fluidsynth`` with a General MIDI soundfont (``$RNNKIT_SOUNDFONT``, else the Debian paths in
    :data:`SOUNDFONTS`) comes first, then ``timidity`` (its own configured patches).
    """
    import os
    import shutil

    fluid = shutil.which("fluidsynth")
    fonts = [os.environ.get("RNNKIT_SOUNDFONT", ""), *SOUNDFONTS]
    font = next((f for f in fonts if f and Path(f).is_file()), None)
    if fluid and font:
        return [fluid, "-ni", "-q", "-r", "22050", "-g", "0.8", "-F", "{wav}", font, "{midi}"], ""
    timidity = shutil.which("timidity")
    if timidity:
        return [timidity, "-idq", "-Ow", "-s", "22050", "-o", "{wav}", "{midi}"], ""
    if fluid:
        return None, "fluidsynth has no General MIDI soundfont (apt-get install fluid-soundfont-gm)"
    return None, "no synthesiser installed (apt-get install fluidsynth fluid-soundfont-gm, or timidity)"


def write_wav(midi_path: Path, path: Path, command: list[str]) -> Path:
    """Render a MIDI file to a WAV file (22,050 Hz, 16-bit) with ``command`` from :func:`synthesizer`."""
    import subprocess

    args = [a.replace("{wav}", str(path)).replace("{midi}", str(midi_path)) for a in command]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RnnkitError(f"{Path(command[0]).name} failed on {midi_path.name}: {exc}") from None
    if done.returncode != 0 or not path.is_file():
        log = (done.stderr or done.stdout).strip().splitlines()
        raise RnnkitError(
            f"{Path(command[0]).name} failed on {midi_path.name}: {log[-1] if log else done.returncode}"
        )
    return path
