"""Readers for user data: labelled texts (CSV/TSV/JSONL), numeric time series (CSV) and plain text.

Every problem with the input raises :class:`rnnkit.RnnkitError` with one line saying what was expected
and what was found (file, line, column). A reader takes a file name or an open file (stdin, a ``StringIO``);
a name that is not a regular file is reported as what it is (a directory, a symbolic link loop, a FIFO, a
device), never opened, and a file holding NUL bytes is refused as binary.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from rnnkit._errors import RnnkitError

__all__ = [
    "TimeSeries",
    "interpolate_missing",
    "open_image",
    "read_text_classification",
    "read_text_file",
    "read_time_series_csv",
    "split_by_time",
]

MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none"})
"""Cell values (compared lower-case, stripped) that count as a missing number."""

_TIME_NAMES = frozenset({"date", "time", "datetime", "timestamp", "ds", "year", "month", "day", "period"})


# ----------------------------------------------------------------------------------------------------
# Shared helpers
# ----------------------------------------------------------------------------------------------------
def open_image(path: str | os.PathLike, name: str | None = None):
    """An image file read whole into a PIL image; one line for a missing, empty, non-image, undecodable or
    too large file (PIL's pixel limit, whose warning below twice the limit is refused too)."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    name = name or str(path)
    path = check_input_file(path, name)  # names a directory, a link loop, a FIFO for what it is
    if path.stat().st_size == 0:
        raise RnnkitError(f"{name}: expected an image (PNG, JPEG, ...), got an empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                return im.copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise RnnkitError(
            f"{name}: expected an image of at most {Image.MAX_IMAGE_PIXELS} pixels, got a larger one: {exc}"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise RnnkitError(f"{name}: expected a readable image (PNG, JPEG, ...), got: {exc}") from None


def check_input_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a :class:`~pathlib.Path` if it is a regular file (through symbolic links); otherwise one
    line saying what it is instead: missing, a broken link, a link loop, a directory, a FIFO, a device, ..."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if os.path.islink(p):
            raise RnnkitError(
                f"{what}: expected a file, got {str(p)!r} which is a broken symbolic link to {os.readlink(p)!r}"
            ) from None
        raise RnnkitError(f"{what}: expected an existing file, got {str(p)!r} which does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RnnkitError(
                f"{what}: expected a file, got {str(p)!r} which is a symbolic link loop"
            ) from None
        raise RnnkitError(f"{what}: cannot read {str(p)!r}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a directory"
            if stat.S_ISDIR(st.st_mode)
            else "a FIFO (named pipe)"
            if stat.S_ISFIFO(st.st_mode)
            else "a device"
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "not a regular file"
        )
        raise RnnkitError(f"{what}: expected a regular file, got {str(p)!r} which is {kind}")
    return p


def _source(path: Any, what: str) -> tuple[Path, bytes]:
    """``(path for names and extensions, content)`` of a file name or of an open file (e.g. stdin; its
    ``name`` attribute, else ``stdin``, names it in messages)."""
    if hasattr(path, "read"):
        name = getattr(path, "name", None)
        p = Path(name if isinstance(name, str) and not name.startswith("<") else "stdin")
        try:
            data = path.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise RnnkitError(
                f"{what}: cannot read {p.name}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        return p, data.encode("utf-8") if isinstance(data, str) else bytes(data)
    p = check_input_file(path, what)
    try:
        return p, p.read_bytes()
    except OSError as exc:
        raise RnnkitError(f"{what}: cannot read {str(p)!r}: {exc.strerror or exc}") from None


def _read_utf8(path: Any, what: str) -> tuple[Path, str]:
    """``(path, whole text)`` (UTF-8, optional BOM), with one-line errors for the usual problems."""
    p, data = _source(path, what)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RnnkitError(
            f"{what}: expected UTF-8 text in {p.name}, got byte 0x{data[exc.start]:02x} at line {line} "
            f"(byte offset {exc.start}); re-save the file as UTF-8"
        ) from None
    if "\x00" in text:
        raise RnnkitError(f"{what}: expected text in {p.name}, got a binary file (it holds NUL bytes)")
    if not text.strip():
        raise RnnkitError(f"{what}: expected some content, got an empty file {str(p)!r}")
    return p, text


def _clip(cell: str, n: int = 40) -> str:
    """A cell as quoted in a message: a huge one is cut, so that the message stays one readable line."""
    return cell if len(cell) <= n else f"{cell[:n]}... ({len(cell)} characters)"


def _table_format(path: Path, text: str, delimiter: str | None) -> tuple[str, str | None]:
    """("csv", delimiter), ("jsonl", None) or ("json", None), from the extension or the content."""
    if delimiter is not None:
        if len(delimiter) != 1:
            raise RnnkitError(f"expected a one-character delimiter, got {delimiter!r}")
        return "csv", delimiter
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl", None
    if suffix in (".tsv", ".tab"):
        return "csv", "\t"
    if suffix == ".csv":  # a spreadsheet saved in a locale with decimal commas separates fields with ";"
        first = next((line for line in text.splitlines() if line.strip()), "")
        return "csv", ";" if "," not in first and ";" in first else ","
    head = text.lstrip()
    if suffix == ".json" or head.startswith("["):
        return ("json", None) if head.startswith("[") else ("jsonl", None)
    if head.startswith("{"):
        return "jsonl", None
    try:
        return "csv", csv.Sniffer().sniff(text[:20000], delimiters=",\t;|").delimiter
    except csv.Error:
        return "csv", ","


def _csv_rows(text: str, delimiter: str, name: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(line number, fields)`` of each non-blank data row."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    try:
        start = 1
        for fields in reader:
            if any(f.strip() for f in fields):
                rows.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise RnnkitError(
            f"{name}: expected valid CSV, got a parse error near line {reader.line_num}: {exc}"
        ) from None
    if not rows:
        raise RnnkitError(f"{name}: expected a header line, got no rows")
    header = [h.strip() for h in rows[0][1]]
    seen = set()
    for h in header:
        if h in seen:
            raise RnnkitError(f"{name}: expected unique column names, got {h!r} twice in the header")
        seen.add(h)
    return header, rows[1:]


_COLUMN_FLAGS = {
    "text": "--text-column",
    "label": "--label-column",
    "source": "--source-column",
    "target": "--target-column",
    "time": "--time-column",
    "value": "--value-columns",
}
"""The training flag that names each role's column, for the message of a column that is not there."""


def _column_index(header: list[str], column: str, name: str, role: str) -> int:
    if column not in header:
        flag = _COLUMN_FLAGS.get(role)
        hint = f" (name yours with {flag})" if flag else ""
        raise RnnkitError(f"{name}: expected a {role} column {column!r}, got columns {header}{hint}")
    return header.index(column)


# ----------------------------------------------------------------------------------------------------
# Text classification
# ----------------------------------------------------------------------------------------------------
def _label_string(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (str, int)):
        return str(value).strip()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    raise RnnkitError(f"{where}: expected a string or integer label, got {type(value).__name__} {value!r}")


def _json_records(text: str, fmt: str, name: str) -> list[tuple[int, dict]]:
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RnnkitError(
                f"{name}: expected a JSON array of objects, got invalid JSON at line {exc.lineno}: {exc.msg}"
            ) from None
        if not isinstance(data, list):
            raise RnnkitError(f"{name}: expected a JSON array of objects, got a {type(data).__name__}")
        items = [(i + 1, item) for i, item in enumerate(data)]
        unit = "item"
    else:
        items = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append((lineno, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise RnnkitError(
                    f"{name} line {lineno}: expected one JSON object per line, got invalid JSON ({exc.msg})"
                ) from None
        unit = "line"
    for where, item in items:
        if not isinstance(item, dict):
            raise RnnkitError(f"{name} {unit} {where}: expected a JSON object, got {type(item).__name__}")
    return items


def read_text_classification(
    path: str | os.PathLike | IO,
    text_column: str,
    label_column: str,
    delimiter: str | None = None,
    min_classes: int = 2,
) -> tuple[list[str], list[str]]:
    """Read labelled texts from a CSV, TSV or JSON-lines file.

    The format comes from the extension (``.csv``, ``.tsv``/``.tab``, ``.jsonl``/``.ndjson``, ``.json``
    holding an array of objects) or, for other names, from the content (a line starting with ``{`` means
    JSON lines; otherwise the CSV delimiter is sniffed). ``delimiter`` forces CSV with that delimiter.
    CSV files need a header line. Texts are stripped of surrounding whitespace; labels become strings
    (JSON ``1`` -> ``"1"``).

    Returns ``(texts, labels)``, two lists of N strings. Example::

        texts, labels = read_text_classification("reviews.csv", "review", "sentiment")
        classes = sorted(set(labels))

    Raises ``RnnkitError`` for a missing or non-UTF-8 file, an unknown column, no data rows, a row
    without the columns, an empty text or label, or a label column holding fewer than ``min_classes`` classes
    (2, what training needs; a test file may hold one: ``min_classes=1``).
    """
    p, text = _read_utf8(path, "data")
    name = p.name
    fmt, delim = _table_format(p, text, delimiter)
    texts: list[str] = []
    labels: list[str] = []
    if fmt == "csv":
        header, rows = _csv_rows(text, delim, name)
        ti = _column_index(header, text_column, name, "text")
        li = _column_index(header, label_column, name, "label")
        for line, fields in rows:
            if len(fields) <= max(ti, li):
                raise RnnkitError(
                    f"{name} line {line}: expected at least {max(ti, li) + 1} fields "
                    f"({delim!r}-separated, like the header), got {len(fields)}"
                )
            texts.append(fields[ti].strip())
            labels.append(fields[li].strip())
            _check_pair(texts[-1], labels[-1], f"{name} line {line}", text_column, label_column)
    else:
        records = _json_records(text, fmt, name)
        unit = "item" if fmt == "json" else "line"
        for where, record in records:
            loc = f"{name} {unit} {where}"
            for column, role in ((text_column, "text"), (label_column, "label")):
                if column not in record:
                    raise RnnkitError(f"{loc}: expected a {role} key {column!r}, got keys {list(record)}")
            value = record[text_column]
            if not isinstance(value, str):
                raise RnnkitError(f"{loc}: expected a string in {text_column!r}, got {type(value).__name__}")
            texts.append(value.strip())
            labels.append(_label_string(record[label_column], loc))
            _check_pair(texts[-1], labels[-1], loc, text_column, label_column)
    if not texts:
        raise RnnkitError(f"{name}: expected at least one data row, got none (header only?)")
    classes = set(labels)
    if len(classes) < min_classes:
        raise RnnkitError(
            f"{name}: expected at least 2 classes in label column {label_column!r}, got only "
            f"{next(iter(classes))!r} in {len(labels)} rows"
        )
    return texts, labels


def read_text_column(path: str | os.PathLike, column: str) -> list[str] | None:
    """The non-blank cells of ``column`` of a table file (``.csv``, ``.tsv``/``.tab``, ``.jsonl``/``.ndjson``,
    ``.json``) whose header (or records) has it, as :func:`read_text_classification` reads tables; None for any
    other file (read it a text per line)."""
    p = Path(path)
    if p.suffix.lower() not in (".csv", ".tsv", ".tab", ".jsonl", ".ndjson", ".json"):
        return None
    p, text = _read_utf8(p, "--file")
    fmt, delim = _table_format(p, text, None)
    if fmt == "csv":
        header, rows = _csv_rows(text, delim, p.name)
        if column not in header:
            return None
        i = header.index(column)
        cells = [fields[i] if len(fields) > i else "" for _, fields in rows]
    else:
        records = _json_records(text, fmt, p.name)
        if not records or column not in records[0][1]:
            return None
        cells = [str(r.get(column, "")) for _, r in records]
    return [c.strip() for c in cells if c.strip()]


def _check_pair(text: str, label: str, loc: str, text_column: str, label_column: str) -> None:
    if not text:
        raise RnnkitError(f"{loc}: expected a non-empty text in {text_column!r}, got an empty cell")
    if not label:
        raise RnnkitError(f"{loc}: expected a label in {label_column!r}, got an empty cell")


def read_text_file(path: str | os.PathLike | IO) -> str:
    """Whole UTF-8 text file as one ``str`` (BOM removed, line endings normalised to ``"\\n"``).

    Example: ``text = read_text_file("corpus.txt")``. Raises ``RnnkitError`` for a missing, empty
    (or whitespace-only) or non-UTF-8 file.
    """
    _, text = _read_utf8(path, "text")
    return text.replace("\r\n", "\n").replace("\r", "\n")


# ----------------------------------------------------------------------------------------------------
# Time series
# ----------------------------------------------------------------------------------------------------
@dataclass
class TimeSeries:
    """A regularly sampled (possibly multivariate) series.

    Attributes:
        times: N time stamps as strings, as in the source (``"1958-03-29"``, ``"1700"``, or row
            numbers ``"0"``, ``"1"``, ... when there is no time column).
        values: float64 array of shape (N, C), no NaN (missing cells are interpolated): the source's numbers
            exactly (a model casts its own inputs: ``ts.values.astype(np.float32)``).
        columns: the C column names.
        missing: bool array (N, C), True where a value was missing and has been interpolated.
        timed: whether ``times`` were read from a time column (False: row numbers, or not known).
        inserted: the time stamps of rows the file left out of a regular series, put back as missing rows
            (:func:`~rnnkit.datasets.frequency.missing_stamps`); their cells count in ``missing``.

    Example: ``ts.values[:, 0]`` is the first series; ``len(ts)`` is N.
    """

    times: list[str]
    values: np.ndarray
    columns: list[str]
    missing: np.ndarray
    timed: bool = False
    inserted: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.times)

    def as_datetime64(self) -> np.ndarray:
        """``times`` as a ``numpy.datetime64`` array (ISO strings such as ``"1958-03-29"`` or ``"1700"``)."""
        try:
            return np.array(self.times, dtype="datetime64")
        except ValueError:
            raise RnnkitError(
                f"expected ISO dates (YYYY, YYYY-MM or YYYY-MM-DD) in times, got e.g. {self.times[0]!r}"
            ) from None

    def __getitem__(self, index: slice) -> TimeSeries:
        if not isinstance(index, slice):
            raise RnnkitError(f"expected a slice of a TimeSeries, got {type(index).__name__}")
        return TimeSeries(
            self.times[index], self.values[index], list(self.columns), self.missing[index], self.timed
        )


def interpolate_missing(values: np.ndarray, columns: Sequence[str] = ()) -> np.ndarray:
    """Fill NaNs of a (N, C) array column by column: linear between known values, nearest at the edges.

    Returns a new float array; raises ``RnnkitError`` when a column has no known value at all.
    """
    out = np.array(values, dtype=np.float64, copy=True)
    if out.ndim == 1:
        out = out[:, None]
    positions = np.arange(out.shape[0])
    for c in range(out.shape[1]):
        known = ~np.isnan(out[:, c])
        if not known.any():
            label = columns[c] if c < len(columns) else str(c)
            raise RnnkitError(f"expected at least one number in column {label!r}, got only missing values")
        if not known.all():
            out[~known, c] = np.interp(positions[~known], positions[known], out[known, c])
    return out


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _parse_number(cell: str) -> float | None:
    """Float value of a cell, ``None`` for a missing marker; raises ValueError for anything else."""
    s = cell.strip()
    if s.lower() in MISSING_MARKERS:
        return None
    value = float(s)
    if math.isnan(value):
        return None
    if math.isinf(value):
        raise ValueError("infinite")
    return value


def _is_number(cell: str) -> bool:
    try:
        return _parse_number(cell) is not None
    except ValueError:
        return False


#: a number written with a decimal comma (and perhaps dots between thousands): ``-1234,5``, ``1.234,5``
_DECIMAL_COMMA = re.compile(r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+),\d+")


def _read_csv_table(path, caller: str, expected: str, delimiter: str | None = None):
    """``(file name, header, rows)`` of a CSV/TSV file (see :func:`_csv_rows`); a JSON file is one error line
    saying that ``expected`` was wanted. In a ``;``-separated file (a spreadsheet saved where the decimal mark
    is a comma) numbers such as ``1.234,5`` are given back as ``1234.5``."""
    p, text = _read_utf8(path, caller)
    fmt, delim = _table_format(p, text, delimiter)
    if fmt != "csv":
        raise RnnkitError(f"{p.name}: expected {expected}, got JSON")
    header, rows = _csv_rows(text, delim, p.name)
    if delim == ";":
        rows = [(line, [_decimal_point(cell) for cell in fields]) for line, fields in rows]
    return p.name, header, rows


def _decimal_point(cell: str) -> str:
    s = cell.strip()
    return s.replace(".", "").replace(",", ".") if _DECIMAL_COMMA.fullmatch(s) else cell


def read_time_series_csv(
    path: str | os.PathLike | IO,
    time_column: str | None = None,
    value_columns: Sequence[str] | None = None,
    delimiter: str | None = None,
) -> TimeSeries:
    """Read a numeric time series from a CSV/TSV file with a header line.

    ``time_column`` names the time-stamp column. When it is ``None``, the first column is used as time
    column if its name is a usual time name (date, time, datetime, timestamp, ds, year, month, day,
    period) or none of its cells is a number (dates such as ``2024-01-31``); otherwise there is no time column and ``times`` are row
    numbers. A time column named ``year`` with a ``quarter`` (``qtr``) or ``month`` (``mon``) column of whole numbers
    from 1 to 4 or 12 beside it (statsmodels' ``macrodata``: ``year,quarter,realgdp,...``) is read as one stamp,
    ``1959 Q1`` or ``1959-01``, and the period column is not a value; a table of a ``year`` column and twelve month
    columns ``JAN`` .. ``DEC`` (statsmodels' ``elnino.csv``) is one monthly series, ``value``, stamped ``1950-01``, ...
    (blank months before the first or after the last number are not part of it). ``value_columns`` picks the
    series (default: every other column). Missing cells (empty,
    ``NA``, ``N/A``, ``nan``, ``null``, ``None``) are filled by linear interpolation along the rows, and
    by the nearest known value before the first / after the last one. Rows are kept in file order; time stamps
    that read as dates must run oldest first, each once, and the rows a regular series leaves out (a month
    missing from a monthly file) are put back as missing rows, filled the same way (``inserted`` lists them).

    Returns a :class:`TimeSeries` with ``values`` of shape (N, C), float64 (the file's numbers, not rounded to
    float32's 7 digits: a count near 3e7 keeps its last digit). Example::

        ts = read_time_series_csv("power.csv", time_column="timestamp", value_columns=["load"])
        x = ts.values  # (N, 1)

    Raises ``RnnkitError`` for a missing or non-UTF-8 file, an unknown column, fewer than two data rows,
    a non-numeric or infinite value (with its line and column), or a column with no numbers at all.
    """
    name, header, rows = _read_csv_table(path, "data", "a CSV/TSV file for a time series", delimiter)
    if len(rows) < 2:
        raise RnnkitError(f"{name}: expected at least 2 data rows for a time series, got {len(rows)}")

    if time_column is None and header and (value_columns is None or header[0] not in value_columns):
        first = header[0]
        looks_like_time = first.lower() in _TIME_NAMES
        if not looks_like_time:
            looks_like_time = not any(_is_number(fields[0]) for _, fields in rows if fields)
        if looks_like_time:
            time_column = first
    ti = None if time_column is None else _column_index(header, time_column, name, "time")
    pi, stamp = (None, None) if ti is None else period_stamps(header, rows, ti, value_columns)
    wide = value_columns is None and _month_table(header, rows, ti)
    if value_columns is None:
        value_columns = [h for i, h in enumerate(header) if i not in (ti, pi)]
    else:
        value_columns = list(value_columns)
        if not value_columns:
            raise RnnkitError(f"{name}: expected at least one value column, got an empty list")
    if not value_columns:
        raise RnnkitError(f"{name}: expected at least one value column besides time column {time_column!r}")
    vis = [_column_index(header, c, name, "value") for c in value_columns]

    needed = max(vis + ([ti] if ti is not None else [])) + 1
    values = np.empty((len(rows), len(vis)), dtype=np.float64)
    times: list[str] = []
    for r, (line, fields) in enumerate(rows):
        if len(fields) < needed:
            raise RnnkitError(
                f"{name} line {line}: expected at least {needed} fields like the header, got {len(fields)}"
            )
        if len(fields) > len(header) and any(f.strip() for f in fields[len(header) :]):
            raise RnnkitError(
                f"{name} line {line}: expected {len(header)} fields like the header, got {len(fields)} (a number "
                'written with a thousands separator? write 1234, or quote it: "1,234")'
            )
        times.append(str(r) if ti is None else stamp(fields))
        for c, i in enumerate(vis):
            try:
                number = _parse_number(fields[i])
            except ValueError:
                raise RnnkitError(
                    f"{name} line {line} (data row {r + 1}), column {header[i]!r}: expected a number "
                    f"or an empty/NA cell, got {_clip(fields[i].strip())!r}"
                ) from None
            if number is not None and abs(number) > _FLOAT32_MAX:  # the models compute in float32
                raise RnnkitError(
                    f"{name} line {line} (data row {r + 1}), column {header[i]!r}: expected a number within "
                    f"float32's range (|x| <= 3.4e38), got {_clip(fields[i].strip())!r}"
                )
            values[r, c] = np.nan if number is None else number
    if wide:  # one row per year, a column per month: one monthly series, read along the rows
        times = [f"{t}-{m:02d}" for t in times for m in range(1, 13)]
        values, value_columns = values.reshape(-1, 1), ["value"]
        known = np.flatnonzero(~np.isnan(values[:, 0]))
        if len(known):  # months not yet observed (the last year's blank cells) are not part of the series
            times, values = times[known[0] : known[-1] + 1], values[known[0] : known[-1] + 1]
    inserted: list[str] = []
    if ti is not None:
        times, values, inserted = _in_time_order(
            name, times, values, None if wide else [ln for ln, _ in rows]
        )
    missing = np.isnan(values)
    try:
        filled = interpolate_missing(values, value_columns)
    except RnnkitError as exc:
        raise RnnkitError(f"{name}: {exc}") from None
    return TimeSeries(times, filled, list(value_columns), missing, ti is not None, inserted)


def _in_time_order(
    name: str, times: list[str], values: np.ndarray, lines: list[int] | None
) -> tuple[list[str], np.ndarray, list[str]]:
    """Stamps that read as dates must run oldest first, each once (one line naming the first that does not);
    the rows a regular series leaves out are put back as missing rows. Returns ``(times, values, the stamps
    put back)``."""
    from rnnkit.datasets.frequency import out_of_order, runs_backwards, stamp_keys

    if runs_backwards(times):
        raise RnnkitError(
            f"{name}: expected time stamps oldest first, got them newest first ({times[0]} .. {times[-1]}); "
            "sort the rows by time"
        )
    i = out_of_order(times)
    if i is not None:
        where = f"{name} line {lines[i]}" if lines else name
        keys = stamp_keys(times)  # read as the whole series reads them (day-first or month-first)
        if keys is not None and keys[i] == keys[i - 1]:
            raise RnnkitError(
                f"{where}: time stamp {times[i]!r} repeats the row above's; expected one row per time stamp"
            )
        raise RnnkitError(
            f"{where}: time stamp {times[i]!r} comes before the row above's {times[i - 1]!r}; expected the "
            "rows oldest first (sort them by time)"
        )
    try:
        return put_back_missing_rows(times, values)
    except RnnkitError as exc:
        raise RnnkitError(f"{name}: {exc}") from None


def put_back_missing_rows(times: list[str], values: np.ndarray) -> tuple[list[str], np.ndarray, list[str]]:
    """``(times, values, the stamps added)``: the rows a regular series leaves out
    (:func:`~rnnkit.datasets.frequency.missing_stamps`) put back at their places, their ``values`` (N, C) NaN."""
    from rnnkit.datasets.frequency import missing_stamps

    gaps = missing_stamps(times)
    if not gaps:
        return times, values, []
    added = sum(len(stamps) for _, stamps in gaps)
    if added > len(times):  # more rows invented than read: an outage, not a few missing rows
        i, stamps = max(gaps, key=lambda g: len(g[1]))
        raise RnnkitError(
            f"expected a series with a few rows missing, got {added} missing among {len(times)} (the longest gap: "
            f"{len(stamps)} steps after {times[i]!r}); keep the part after the gap, or fill it yourself"
        )
    out_t: list[str] = []
    out_v: list[np.ndarray] = []
    start = 0
    for i, stamps in gaps:
        out_t += times[start : i + 1] + stamps
        out_v += [values[start : i + 1], np.full((len(stamps), values.shape[1]), np.nan)]
        start = i + 1
    out_t += times[start:]
    out_v.append(values[start:])
    return out_t, np.concatenate(out_v), [t for _, stamps in gaps for t in stamps]


_PERIODS = {"quarter": 4, "qtr": 4, "month": 12, "mon": 12}
"""Column names (lower-case) of a period within the year, with the number of periods; see :func:`_period_column`."""


def _period_column(header: list[str], rows, ti: int | None, value_columns) -> int | None:
    """The index of a quarter or month column that completes a year time column (statsmodels' ``macrodata``:
    ``year,quarter,...``), or None: the time column must be named ``year``, the period column must hold whole
    numbers from 1 to 4 (quarter, qtr) or 12 (month, mon) in every row, and not be asked for as a value column."""
    if ti is None or header[ti].strip().lower() != "year":
        return None
    for i, h in enumerate(header):
        top = _PERIODS.get(h.strip().lower())
        if top is None or i == ti or (value_columns is not None and h in value_columns):
            continue
        cells = [fields[i].strip() if len(fields) > max(i, ti) else "" for _, fields in rows]
        if all(c.isdigit() and 1 <= int(c) <= top for c in cells):
            return i
    return None


def _month_table(header: list[str], rows, ti: int | None) -> bool:
    """Whether the file is a table of months by year (statsmodels' ``elnino.csv``: ``YEAR,JAN,...,DEC``): a time
    column named ``year`` holding four-digit years, and the other twelve columns named for the months in order."""
    if ti is None or header[ti].strip().lower() != "year" or len(header) != 13:
        return False
    months = [h.strip().lower() for i, h in enumerate(header) if i != ti]
    names = "january february march april may june july august september october november december".split()
    if not all(m[:3] == full[:3] and full.startswith(m) for m, full in zip(months, names)):
        return False
    return all(len(f) > ti and f[ti].strip().isdigit() and len(f[ti].strip()) == 4 for _, f in rows)


def _stamp(year: str, period: str | None, periods: int | None) -> str:
    """A time stamp: the year cell alone, or with its quarter (``1959 Q1``, ``periods`` 4) or month (``1959-01``)."""
    if period is None:
        return year.strip()
    return f"{year.strip()} Q{int(period)}" if periods == 4 else f"{year.strip()}-{int(period):02d}"


def period_stamps(
    header: list[str], rows, ti: int, value_columns
) -> tuple[int | None, Callable[[list[str]], str]]:
    """How a CSV table's rows give their time stamps, for every reader of time series (one series or a panel):
    ``(index of the period column or None, stamp(fields))``. ``stamp`` is the time cell alone, or, where a
    ``year`` column has a quarter or month column beside it (:func:`_period_column`), both as one stamp
    (``1959 Q1``, ``1959-01``). ``value_columns``: the columns asked for as values (never a period column)."""
    pi = _period_column(header, rows, ti, value_columns)
    if pi is None:
        return None, lambda fields: fields[ti].strip()
    periods = _PERIODS[header[pi].strip().lower()]
    return pi, lambda fields: _stamp(fields[ti], fields[pi], periods)


def split_by_time(data: Any, val_fraction: float = 0.1, test_fraction: float = 0.1) -> tuple[Any, Any, Any]:
    """Chronological split into ``(train, val, test)``: the first rows train, the last rows test.

    ``data`` is an array-like of shape (N, ...) (split along axis 0), a :class:`TimeSeries` or a string
    (split into three of the same). The val and test parts get ``round(N * fraction)`` rows, at least one
    when the fraction is positive; a zero fraction gives an empty part. Example::

        train, val, test = split_by_time(ts.values, 0.1, 0.2)   # 70% / 10% / 20%, in time order

    Raises ``RnnkitError`` for fractions outside [0, 1), fractions summing to 1 or more, or data too short
    to leave at least one training row.
    """
    for label, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not isinstance(f, (int, float)) or not 0 <= f < 1:
            raise RnnkitError(f"expected {label} in [0, 1), got {f!r}")
    if val_fraction + test_fraction >= 1:
        raise RnnkitError(f"expected val_fraction + test_fraction < 1, got {val_fraction} + {test_fraction}")
    series = data if isinstance(data, (TimeSeries, str)) else np.asarray(data)
    if isinstance(series, np.ndarray) and series.ndim == 0:
        raise RnnkitError("expected an array of shape (N, ...) or a TimeSeries, got a scalar")
    n = len(series)

    def part(f: float) -> int:
        return max(1, int(round(n * f))) if f > 0 else 0

    n_val, n_test = part(val_fraction), part(test_fraction)
    n_train = n - n_val - n_test
    if n_train < 1:
        raise RnnkitError(
            f"expected enough rows for train/val/test, got N={n}: {n_val} val + {n_test} test leave "
            f"{n_train} for training"
        )
    return series[:n_train], series[n_train : n_train + n_val], series[n_train + n_val :]
