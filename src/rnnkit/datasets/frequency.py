"""How often a series is sampled, read from its time stamps, and the season that goes with it.

A practitioner declares a monthly series' season once (R's ``ts(x, frequency = 12)``, pandas' ``freq="MS"``);
a CSV only has the stamps. :func:`infer_frequency` reads them and names the step with its usual season:

=================  ======  ==========================================================
frequency          season  the cycle
=================  ======  ==========================================================
quarter-hourly     96      a day
half-hourly        48      a day
hourly             24      a day
daily              7       a week (a yearly cycle in daily data is 365: say so with ``--season``)
business-daily     5       a trading or working week (no Saturdays or Sundays)
weekly             52      a year
monthly            12      a year
quarterly          4       a year
yearly             1       none
=================  ======  ==========================================================

These are the seasonal periods of Hyndman & Athanasopoulos, *Forecasting: Principles and Practice* (3rd ed.,
section 2.1), with a trading week of 5. Stamps it reads: ISO dates and times (``1949-01``, ``1949-01-01``,
``2000-06-05T00:30``, ``2000-06-05 00:30:00+01:00``; ``/`` or ``.`` for ``-`` and one-digit months and days too),
day-first or month-first dates (``31/01/2020``, ``01/31/2020``: the reading that parses every stamp at a
regular step wins), quarters (``1990 Q1``, ``1990-Q1``, ``Q1 1990``), month names (``Jan 1949``, ``1949-Jan``),
ISO weeks (``2020-W05``), years (``1990``, from 1000 to 2999) and R's decimal times (``1949.0833``, a twelfth
of a year apart). Row numbers (``0``, ``1``, ...) name no frequency.

Example::

    >>> infer_frequency(["1949-01", "1949-02", "1949-03", "1949-04"])
    Frequency(name='monthly', season=12)
    >>> infer_frequency(["0", "1", "2"]) is None
    True
"""

from __future__ import annotations

import calendar
import datetime
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Frequency",
    "infer_frequency",
    "missing_stamps",
    "next_stamps",
    "out_of_order",
    "runs_backwards",
    "stamp_keys",
]


@dataclass(frozen=True)
class Frequency:
    """A sampling frequency: its ``name`` (``"monthly"``) and usual ``season`` length in steps (12)."""

    name: str
    season: int


_BY_MONTHS = {1: Frequency("monthly", 12), 3: Frequency("quarterly", 4), 12: Frequency("yearly", 1)}
_BY_SECONDS = {
    900: Frequency("quarter-hourly", 96),
    1800: Frequency("half-hourly", 48),
    3600: Frequency("hourly", 24),
    86400: Frequency("daily", 7),
    7 * 86400: Frequency("weekly", 52),
}
_BUSINESS = Frequency("business-daily", 5)
REGULAR_SHARE = 0.9
"""The share of steps that must equal the most common one for the stamps to count as regular (gaps allowed)."""

_MONTH_NAMES = "january february march april may june july august september october november december".split()
_MONTHS = {m[:3]: i for i, m in enumerate(_MONTH_NAMES)}
_QUARTER = [re.compile(r"^(\d{4})\s*[-_/ ]?\s*q([1-4])$"), re.compile(r"^q([1-4])\s*[-_/ ]?\s*(\d{4})$")]
_MONTH_NAME = [
    re.compile(r"^([a-z]{3,9})\.?\s*[-_/ ]?\s*(\d{4})$"),
    re.compile(r"^(\d{4})\s*[-_/ ]?\s*([a-z]{3,9})$"),
]
_NAMED_DAY = [  # month names with a day: statsmodels' "Jan-1-1995", "January 1, 1995", "01-Jan-1995", "1 Jan 1995"
    re.compile(r"^([a-z]{3,9})\.?[-/ ](\d{1,2}),?[-/ ](\d{4})([ t].*)?$"),
    re.compile(r"^(\d{1,2})[-/ ]([a-z]{3,9})\.?[-/ ](\d{4})([ t].*)?$"),
]
_WEEK = re.compile(r"^(\d{4})-?w(\d{1,2})$")
_YMD = re.compile(r"^(\d{4})[-/.](\d{1,2})(?:[-/.](\d{1,2}))?([ t].*)?$")
_DMY = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})([ t].*)?$")
_ZONE = re.compile(r"(z|[+-]\d{2}:?\d{2})$")
_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
_ISO_START = re.compile(r"^\d{4}-\d{2}")


_EPOCH_MONTHS = 1970 * 12
"""Months from the year 0 to 1970-01: every ``"m"`` stamp counts ``year * 12 + month - 1``."""


def _month_count(year: int, month: int) -> int:
    return year * 12 + month


def _iso(year: int, month: int, day: int | None, clock: str | None) -> np.datetime64 | None:
    text = f"{year:04d}-{month:02d}" + (f"-{day:02d}" if day is not None else "")
    if clock:
        clock = _ZONE.sub("", clock.strip())
        text += "T" + clock.lstrip("t").strip()
    try:
        return np.datetime64(text)
    except ValueError:
        return None


def _month_index(name: str) -> int | None:
    """0-11 for a month's name or its start of three letters or more (``jan``, ``sept``), else None."""
    month = _MONTHS.get(name[:3])
    return month if month is not None and _MONTH_NAMES[month].startswith(name) else None


def _one(text: str, day_first: bool) -> tuple[str, int] | None:
    """``("m", months since year 0)`` for a stamp of a month or coarser, ``("s", seconds)`` for a finer one."""
    t = text.strip().lower()
    for i, rx in enumerate(_QUARTER):
        if m := rx.match(t):
            year, q = (m[1], m[2]) if i == 0 else (m[2], m[1])
            return "m", _month_count(int(year), 3 * (int(q) - 1))
    for i, rx in enumerate(_MONTH_NAME):
        if m := rx.match(t):
            name, year = (m[1], m[2]) if i == 0 else (m[2], m[1])
            month = _month_index(name)
            return None if month is None else ("m", _month_count(int(year), month))
    if m := _WEEK.match(t):
        if not 1 <= int(m[2]) <= 53:
            return None
        jan4 = np.datetime64(f"{m[1]}-01-04")  # ISO week 1 holds 4 January; weeks start on Monday
        monday = jan4 - ((jan4.astype("datetime64[D]").astype(np.int64) + 3) % 7)
        return "s", int((monday + 7 * (int(m[2]) - 1)).astype("datetime64[s]").astype(np.int64))
    if _DECIMAL.match(t):
        v = float(t)
        if "." not in t:
            return ("m", _month_count(int(v), 0)) if 1000 <= v <= 2999 else None
        months = v * 12
        return ("m", round(months)) if abs(months - round(months)) < 1e-3 and 1000 <= v < 3000 else None
    for i, rx in enumerate(_NAMED_DAY):
        if m := rx.match(t):
            name, day = (m[1], m[2]) if i == 0 else (m[2], m[1])
            month = _month_index(name)
            stamp = None if month is None else _iso(int(m[3]), month + 1, int(day), m[4])
            return None if stamp is None else ("s", int(stamp.astype("datetime64[s]").astype(np.int64)))
    if m := _YMD.match(t):
        parts = (int(m[1]), int(m[2]), None if m[3] is None else int(m[3]), m[4])
    elif m := _DMY.match(t):
        a, b = int(m[1]), int(m[2])
        parts = (int(m[3]), b if day_first else a, a if day_first else b, m[4])
    else:
        return None
    year, month, day, clock = parts
    if not 1 <= month <= 12:
        return None
    if day is None:
        return "m", _month_count(year, month - 1)
    stamp = _iso(year, month, day, clock)
    if stamp is None:
        return None
    return "s", int(stamp.astype("datetime64[s]").astype(np.int64))


def _read_fast(times: Sequence[str]) -> tuple[str, np.ndarray] | None:
    """Numbers (years, R's decimal times) and ISO stamps read by numpy in one call: None when they are not that."""
    text = [t.strip() for t in times]
    if _DECIMAL.match(text[0]):
        try:
            v = np.asarray(text, dtype=np.float64)
        except ValueError:
            return None
        months = v * 12
        if not (np.all((v >= 1000) & (v < 3000)) and np.all(np.abs(months - np.round(months)) < 1e-3)):
            return None
        return "m", np.round(months).astype(np.int64)
    if not _ISO_START.match(text[0]):
        return None
    try:  # a time zone numpy would drop with a warning: the slow path strips it
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            stamps = np.array(text, dtype="datetime64")
    except (ValueError, Warning):
        return None
    if np.datetime_data(stamps.dtype)[0] in ("Y", "M"):
        return "m", stamps.astype("datetime64[M]").astype(np.int64) + _EPOCH_MONTHS
    return "s", stamps.astype("datetime64[s]").astype(np.int64)


def _read(times: Sequence[str], day_first: bool) -> tuple[str, np.ndarray] | None:
    """The stamps as one kind of integer (see :func:`_one`), or None when any does not parse or kinds mix."""
    read = None if day_first else _read_fast(times)
    if read is None and _DECIMAL.match(times[0].strip()):
        return None  # numbers that are not years: row numbers (the slow path reads numbers the same way)
    if read is None:
        each = [_one(t, day_first) for t in times]
        if not each or any(r is None for r in each) or len({k for k, _ in each}) > 1:
            return None
        read = each[0][0], np.array([v for _, v in each], dtype=np.int64)
    kind, values = read
    if kind == "s":  # dates on one day of every month (the 1st, the 15th, the last) step in months
        days = values // 86400
        if np.all(values % 86400 == 0):
            d = days.astype("datetime64[D]")
            month_start = d.astype("datetime64[M]")
            dom = (d - month_start).astype(np.int64)
            last = (month_start + 1).astype("datetime64[D]") - 1 == d
            if len(values) > 1 and (np.all(dom == dom[0]) or np.all(last)):
                months = month_start.astype(np.int64) + _EPOCH_MONTHS
                if np.all(np.diff(months) != 0):
                    return "m", months
    return kind, values


def _regular(kind: str, values: np.ndarray) -> tuple[str, int, float] | None:
    """``(kind, the most common step, its share of all steps)``; None for fewer than two stamps."""
    if len(values) < 2:
        return None
    steps, counts = np.unique(np.diff(values), return_counts=True)
    i = int(np.argmax(counts))
    return kind, int(steps[i]), int(counts[i]) / (len(values) - 1)


def _stamps(times: Sequence[str]) -> tuple[str, np.ndarray] | None:
    """The stamps read one way; for dates that read both day-first and month-first, the more regular reading."""
    month_first = _read(times, False)
    if not _DMY.match(times[0].strip()):
        return month_first
    day_first = _read(times, True)
    if month_first is None or day_first is None:
        return month_first or day_first
    if np.array_equal(month_first[1], day_first[1]):
        return month_first
    a, b = _regular(*month_first), _regular(*day_first)
    share_a, share_b = (0.0 if a is None else a[2]), (0.0 if b is None else b[2])
    if share_a == share_b:
        return None  # the two readings are equally plausible: no guess
    return month_first if share_a > share_b else day_first


def infer_frequency(times: Sequence[str]) -> Frequency | None:
    """The sampling frequency of ``times`` (time stamps as strings, oldest first), or None when it is not known.

    None for stamps that are not all dates of one kind (see the module docstring), fewer than three, not
    increasing, or without a step shared by at least :data:`REGULAR_SHARE` of the steps; and for a regular
    step without a usual season (every 2 days, every minute). Dates on weekdays only, a day apart but for
    weekends (and holidays of up to four days), are ``business-daily``.
    """
    if len(times) < 3:
        return None
    read = _stamps(times)
    if read is None:
        return None
    kind, values = read
    steps = np.diff(values)
    if np.any(steps <= 0):
        return None
    if kind == "s" and np.all(values % 86400 == 0):
        weekday = (values // 86400 + 3) % 7  # 1970-01-01 was a Thursday: Monday is 0
        if np.all(weekday < 5) and np.all(steps <= 4 * 86400) and np.any(steps == 3 * 86400):
            return _BUSINESS
    _, step, share = _regular(kind, values)
    if share < REGULAR_SHARE:
        return None
    return (_BY_MONTHS if kind == "m" else _BY_SECONDS).get(step)


def stamp_keys(times: Sequence[str]) -> np.ndarray | None:
    """Integers that order ``times`` (months for stamps of a month or coarser, seconds for finer ones), for every
    way of writing dates :func:`infer_frequency` reads; None when they do not all read as one kind."""
    read = _stamps(times) if len(times) else None
    return None if read is None else read[1]


def out_of_order(times: Sequence[str]) -> int | None:
    """The first index ``i`` whose stamp is not later than stamp ``i - 1`` (a repeat or a step back), for stamps
    that read as dates; None when they increase or are not dates (row numbers, labels)."""
    keys = stamp_keys(times) if len(times) >= 2 else None
    if keys is None:
        return None
    bad = np.flatnonzero(np.diff(keys) <= 0)
    return int(bad[0]) + 1 if len(bad) else None


def missing_stamps(times: Sequence[str]) -> list[tuple[int, list[str]]]:
    """The stamps a regular series leaves out: ``(i, stamps)`` for each gap, the stamps that belong after
    ``times[i]``, written as the series writes its stamps.

    Only for stamps of a known frequency (:func:`infer_frequency`; not trading days, whose weekends are no
    gaps) whose every step is a whole number of the regular step; otherwise ``[]``, as for a series without
    gaps.

    Example::

        >>> missing_stamps(["2001-01", "2001-02", "2001-05", "2001-06"])
        [(1, ['2001-03', '2001-04'])]
    """
    frequency = infer_frequency(times)
    if frequency is None or frequency == _BUSINESS:
        return []
    kind, values = _stamps(times)
    _, step, _ = _regular(kind, values)
    steps = np.diff(values)
    if step <= 0 or np.any(steps % step):
        return []
    gaps = []
    for i in np.flatnonzero(steps > step):
        try:
            stamps = _continue(times[: i + 1], int(steps[i] // step) - 1, step, (kind, values[: i + 1]))
        except (ValueError, OverflowError):
            stamps = None
        if stamps is None:
            return []
        gaps.append((int(i), stamps))
    return gaps


def runs_backwards(times: Sequence[str]) -> bool:
    """Whether ``times`` read as dates (see :func:`infer_frequency`) and mostly decrease: newest first."""
    read = _stamps(times) if len(times) >= 3 else None
    if read is None:
        return False
    steps = np.diff(read[1])
    return bool(np.mean(steps < 0) > 0.5)


_FORMATS = [
    f"{d}{t}"
    for d in ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%m.%d.%Y", "%d-%m-%Y")
    for t in ("", "T%H:%M", " %H:%M", "T%H:%M:%S", " %H:%M:%S")
] + ["%Y-%m", "%Y/%m", "%Y.%m", "%b %Y", "%B %Y", "%Y-%b", "%Y %b", "%b-%Y", "%Y-%B", "%Y %B", "%Y"]
_QUARTER_STYLE = [
    re.compile(r"^(\d{4})(\s*[-_/ ]?\s*)([qQ])[1-4]$"),
    re.compile(r"^([qQ])[1-4](\s*[-_/ ]?\s*)(\d{4})$"),
]


def _style(last: str, when: datetime.datetime) -> str | None:
    """The ``strftime`` format that writes ``when`` as ``last`` (compared without case), or None."""
    for fmt in _FORMATS:
        try:
            if datetime.datetime.strptime(last, fmt) == when and when.strftime(fmt).lower() == last.lower():
                return fmt
        except ValueError:
            continue
    return None


def _month_days(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def next_stamps(times: Sequence[str], horizon: int) -> list[str] | None:
    """The ``horizon`` time stamps after ``times``, written as the last one is: the regular step of the stamps
    (:data:`REGULAR_SHARE` of them; weekends skipped for trading days) carried on. None when the stamps are not
    dates of one kind, not regular, or written in a way this cannot continue.

    Example::

        >>> next_stamps(["1959 Q2", "1959 Q3", "1959 Q4"], 2)
        ['1960 Q1', '1960 Q2']
        >>> next_stamps(["2000-06-05T23:00", "2000-06-05T23:30", "2000-06-06T00:00"], 2)
        ['2000-06-06T00:30', '2000-06-06T01:00']
    """
    try:
        return _continue(times, horizon)
    except (ValueError, OverflowError):  # past the year 9999
        return None


def _continue(
    times: Sequence[str], horizon: int, step: int | None = None, read: tuple[str, np.ndarray] | None = None
) -> list[str] | None:
    """:func:`next_stamps`; with ``step`` (in the stamps' unit) and ``read`` (the stamps as :func:`_stamps` read
    a longer series they begin, which settles day-first or month-first) the stamps after the last at that step,
    for a ``times`` of one stamp or more, whatever their own steps."""
    if read is None:
        read = _stamps(times) if len(times) >= 2 else None
    if read is None:
        return None
    kind, values = read
    if step is None:
        frequency = infer_frequency(
            times
        )  # None also for a regular step without a usual season (every 2 days)
        _, step, share = _regular(kind, values)
        if frequency is None and (share < REGULAR_SHARE or step <= 0):
            return None
    else:
        frequency = None
    last = times[-1].strip()
    if kind == "m":
        months = [int(values[-1]) + step * (h + 1) for h in range(horizon)]
        if m := _QUARTER_STYLE[0].match(last):
            return [f"{c // 12}{m[2]}{m[3]}{c % 12 // 3 + 1}" for c in months]
        if m := _QUARTER_STYLE[1].match(last):
            return [f"{m[1]}{c % 12 // 3 + 1}{m[2]}{c // 12}" for c in months]
        if _DECIMAL.match(last):
            places = len(last.partition(".")[2])
            return [f"{c / 12:.{places}f}" for c in months]
        year, month = divmod(int(values[-1]), 12)
        seen, before = None, None
        for fmt in _FORMATS:  # the last stamp's own day (or month end), if it has a day
            try:
                seen = datetime.datetime.strptime(last, fmt)
                before = datetime.datetime.strptime(times[-2 if len(times) > 1 else -1].strip(), fmt)
            except ValueError:
                continue
            if (seen.year, seen.month) == (year, month + 1):
                break
            seen = None
        if seen is None:
            return None

        def is_end(d: datetime.datetime) -> bool:
            return d.day == _month_days(d.year, d.month)

        # month ends: the last stamp is one, and past the 28th or after another month end (28 February after 31 January)
        month_end = is_end(seen) and (seen.day > 28 or (is_end(before) and before.day != seen.day))
        out = []
        for c in months:
            y, mo = c // 12, c % 12 + 1
            day = _month_days(y, mo) if month_end else min(seen.day, _month_days(y, mo))
            out.append(seen.replace(year=y, month=mo, day=day))
    else:
        start = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=int(values[-1]))
        if frequency == _BUSINESS:
            out, day = [], start
            while len(out) < horizon:
                day += datetime.timedelta(days=1)
                if day.weekday() < 5:
                    out.append(day)
        else:
            out = [start + datetime.timedelta(seconds=step * (h + 1)) for h in range(horizon)]
        seen = start
        if _WEEK.match(last.lower()):
            return [f"{d.isocalendar()[0]}-W{d.isocalendar()[1]:02d}" for d in out]
    fmt = _style(last, seen)
    if fmt is None:
        return None
    written = [d.strftime(fmt) for d in out]
    return [w.upper() for w in written] if last.isupper() and not last.isdigit() else written
