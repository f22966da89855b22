"""Constrained decoding: a mask over the next token that keeps every bar within its meter.

The state follows the tokens as they are drawn: the position in the bar (in eighths), whether the last
note still waits for its duration token, the notes left in a triplet, and the bar line before the bar.
The rules are those of :func:`rnnkit.apps.music.abc.check_bars`:

* a note or a duration token is allowed only when the bar stays within the meter (a note with no duration
  token lasts one eighth, so when that no longer fits, only duration tokens are allowed after it);
* ``|`` closes a bar that is exactly full, or a shorter one right after the start or a section line
  (a pick-up); ``||``, ``:|``, ``::`` and ``|:`` close any bar that is not too long;
* a fermata (``H``, chorales) is followed by a note or rest;
* a tie is followed by the same pitch (after a bar line, with its accidental written again);
* repeats are closed: no ``|:`` inside an open ``|: ... :|``, and no ``<eos>`` inside one;
* ``[1`` follows a bar line other than ``:|``, ``[2`` follows ``:|``;
* ``<eos>`` follows a bar line or a bar that is not too long, after at least ``MIN_BARS`` bar lines; drawn
  inside a bar that is neither full nor the rest of the pick-up's (:meth:`BarGrammar.ends_well`), it makes the
  sampler finish that bar with notes first (``BarState.closing``), so the tune ends as the folk tunes do;
* header tokens (``M:``, ``K:``) and the special tokens never appear in the body.
"""

from __future__ import annotations

from fractions import Fraction

import torch

from rnnkit.apps.music.abc import BAR_TOKENS, ENDINGS, UNIT, is_duration, is_pitch, meter_length, token_length

__all__ = ["BarGrammar", "BarState"]

_BOUNDARY = ("start", "||", "|:", ":|", "::")
MIN_BARS = 4  # bar lines before <eos> is allowed


class BarState:
    """Where one tune being generated stands (see the module docstring)."""

    def __init__(self, meter: str):
        self.full = meter_length(meter) / UNIT  # eighths per bar
        self.pos = Fraction(0)  # eighths in the bar, the pending note not included
        self.pending: Fraction | None = None  # the triplet factor of a note still open for a duration
        self.tuplet_left = 0
        self.bar_has = False
        self.before = "start"
        self.last = "start"  # kind of the last token: start, note, duration, bar, ending, tuplet, tie
        self.notes = 0
        self.bars = 0  # bar lines so far
        self.note_token = ""  # the last note's token, the one a tie continues
        self.tie_open = False  # a tie waits for its note (abc2midi needs the same pitch)
        self.tie_crossed_bar = False
        self.open_repeat = False  # inside |: ... :| (music21 cannot expand a repeat left open)
        self.pickup: Fraction | None = None  # the first bar's length when it is shorter than the meter
        self.closing = False  # the tune was to end inside a bar: only that bar's notes, then <eos>

    def eff(self) -> Fraction:
        return self.pos + (self.pending if self.pending is not None else 0)

    def update(self, token: str) -> None:
        if is_duration(token):
            self.pos += self.pending * token_length(token)
            self.pending = None
            self.last = "duration"
            return
        if self.pending is not None:
            self.pos += self.pending
            self.pending = None
        if is_pitch(token) or token == "z":
            self.pending = Fraction(2, 3) if self.tuplet_left else Fraction(1)
            self.tuplet_left = max(0, self.tuplet_left - 1)
            self.bar_has = True
            self.notes += 1
            self.last = "note"
            self.note_token, self.tie_open, self.tie_crossed_bar = token, False, False
        elif token in BAR_TOKENS:
            if self.bars == 0 and self.bar_has and self.pos < self.full:
                self.pickup = self.pos
            self.before, self.pos, self.bar_has, self.last = token, Fraction(0), False, "bar"
            self.bars += 1
            self.tie_crossed_bar = self.tie_open
            if token in ("|:", "::"):
                self.open_repeat = True
            elif token == ":|":
                self.open_repeat = False
        elif token in ENDINGS:
            self.last = "ending"
        elif token == "(3":
            self.tuplet_left, self.last = 3, "tuplet"
        elif token == "-":
            self.last, self.tie_open = "tie", True
        elif token == "H":
            self.last = "fermata"


class BarGrammar:
    """The allowed next tokens of a vocabulary, given a :class:`BarState`.

    Args:
        tokens: the vocabulary's tokens in id order (special tokens included).
        eos: the end token.

    Example::

        g = BarGrammar(vocab.tokens, "<eos>")
        st = BarState("6/8")
        mask = g.allowed(st)        # bool tensor (V,), True where the token keeps the bar within 6/8
    """

    def __init__(self, tokens: list[str], eos: str = "<eos>"):
        self.tokens = list(tokens)
        V = len(tokens)
        self.durations = torch.tensor([is_duration(t) for t in tokens])
        self.values = [token_length(t) if is_duration(t) else None for t in tokens]
        # lengths as float64 for one vectorised comparison (eighths with small denominators: exact enough)
        self.lengths = torch.tensor(
            [float(v) if v is not None else 0.0 for v in self.values], dtype=torch.float64
        )
        self.notes = torch.tensor([is_pitch(t) or t == "z" for t in tokens])
        self.ids = {t: i for i, t in enumerate(tokens)}
        self.min_dur = min([v for v in self.values if v is not None] + [Fraction(1)])
        self.eos = self.ids.get(eos)
        self.V = V

    def _one(self, token: str, mask: torch.Tensor, ok: bool) -> None:
        i = self.ids.get(token)
        if i is not None and ok:
            mask[i] = True

    @staticmethod
    def ends_well(st: BarState) -> bool:
        """Whether a tune may end here as the folk tunes do (98.8 % of them): after a bar line, or with its last
        bar full or the rest of the pick-up's bar (the first bar's length and the last's make one bar)."""
        eff = st.eff()
        rest = st.pickup is not None and eff + st.pickup == st.full
        return st.last == "bar" or (st.bar_has and (eff == st.full or rest))

    def allowed(self, st: BarState) -> torch.Tensor:
        if st.closing:  # finishing the bar the tune ends in: its notes only, then <eos>
            if self.ends_well(st):
                mask = torch.zeros(self.V, dtype=torch.bool)
                if self.eos is not None:
                    mask[self.eos] = True
                return mask
            return self._allowed(st) & (self.notes | self.durations)
        return self._allowed(st)

    def _allowed(self, st: BarState) -> torch.Tensor:
        mask = torch.zeros(self.V, dtype=torch.bool)
        # notes still owed to an open triplet need room too (at least the shortest duration each)
        reserve = st.tuplet_left * Fraction(2, 3) * self.min_dur
        if st.pending is not None:
            room = st.full - st.pos - reserve
            mask |= self.durations & (self.lengths * float(st.pending) <= float(room) + 1e-9)
            if st.pending > room:  # one eighth no longer fits: the note needs a shorter duration token
                return mask
        eff = st.eff()
        if eff + reserve > st.full:
            return mask
        factor = Fraction(2, 3) if st.tuplet_left else Fraction(1)
        if eff + factor * self.min_dur <= st.full:
            if st.tie_open:  # the tied note again: the same token, or without its accidental inside the bar
                for tok in {st.note_token, *([] if st.tie_crossed_bar else [st.note_token.lstrip("^_=")])}:
                    self._one(tok, mask, True)
            else:
                mask |= self.notes
        if st.tuplet_left or st.last == "fermata":
            return mask  # inside a triplet, or after a fermata, only notes (and their durations) follow
        self._one("H", mask, bool((mask & self.notes).any()) and not st.tie_open)
        self._one("(3", mask, eff + 2 * self.min_dur <= st.full and st.last != "tie")
        self._one("-", mask, st.last in ("note", "duration"))
        closes = st.bar_has and (eff == st.full or st.before in _BOUNDARY)
        self._one("|", mask, closes)
        for tok in ("||", ":|", "::"):
            self._one(tok, mask, st.bar_has)
        self._one("|:", mask, (st.bar_has or st.last in ("start", "bar")) and not st.open_repeat)
        self._one("[1", mask, st.last == "bar" and st.before != ":|")
        self._one("[2", mask, st.last == "bar" and st.before == ":|")
        if st.last == "tie":  # a tie leads to the next note, perhaps over a bar line
            for tok in ("(3", "-", "|:"):
                if tok in self.ids:
                    mask[self.ids[tok]] = False
        end_ok = st.bars >= MIN_BARS and not st.open_repeat and not st.tie_open and st.last != "ending"
        if self.eos is not None and end_ok and (st.last == "bar" or st.bar_has):
            mask[self.eos] = True
        return mask
