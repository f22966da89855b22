"""Held-out data sets (rnnkit.datasets.extra): parsers on small hand-made fixtures, loaders on real data.

The fast tests build their inputs by hand (no network). The ``slow`` tests fetch the real packages into
the cache (or reuse it) and check counts and values published with the data.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import zlib
from collections import Counter

import numpy as np
import pytest

from rnnkit._errors import RnnkitError
from rnnkit.datasets import TimeSeries, extra
from rnnkit.datasets._rdata import RVector, read_rda
from rnnkit.datasets.builtin import parse_polarity_csv
from rnnkit.datasets.extra import (
    EXTRA_DATASETS,
    _osis_to_text,
    _parse_fortunes,
    _parse_literal_array,
    _parse_vader_ratings,
    _r_matrix_columns,
    _r_ts_times,
    _read_sword_ztext,
    load_extra,
)


# ----------------------------------------------------------------------------------------------------
# Parsers on synthetic fixtures
# ----------------------------------------------------------------------------------------------------
def test_vader_ratings_become_three_classes_at_the_band():
    text = "1\t2.7\tso lucky\r\n2\t-0.5\tmeh\r\n3\t0.51\tnice enough\r\n\r\n4\t-1.2\tawful, truly\r\n"
    assert _parse_vader_ratings(text, "t") == [
        ("so lucky", 2),
        ("meh", 1),  # exactly on the band edge is neutral
        ("nice enough", 2),
        ("awful, truly", 0),
    ]
    assert [label for _, label in _parse_vader_ratings(text, "t", neutral_band=1.0)] == [2, 1, 1, 0]


def test_vader_text_with_tabs_is_kept_whole_and_bad_lines_are_refused():
    assert _parse_vader_ratings("9\t0.0\ta\tb", "t") == [("a\tb", 1)]
    with pytest.raises(RnnkitError, match="line 2: expected 'id<TAB>mean rating<TAB>text'"):
        _parse_vader_ratings("1\t1.0\tok\n2\tnot-a-number\tx\n", "t")
    with pytest.raises(RnnkitError, match="expected a text"):
        _parse_vader_ratings("1\t1.0\t  \n", "t")


def test_polarity_csv_handles_quoted_commas_and_refuses_other_labels():
    text = '"1","good , very good"\n"-1","bad ""really"" bad"\n\n'
    assert parse_polarity_csv(text, "p") == [("good , very good", 1), ('bad "really" bad', 0)]
    with pytest.raises(RnnkitError, match="record 1"):
        parse_polarity_csv('"text first","1"\n', "p")


def test_literal_array_is_read_without_running_the_source(tmp_path):
    marker = tmp_path / "ran"
    source = (
        "import numpy as np\n"
        f"open({str(marker)!r}, 'w').write('x')\n"
        "def load():\n"
        "    '''doc'''\n"
        "    rslt = np.array([112, 118.5,\n        None, -3]).astype(float)\n"
        "    other = np.array([9, 9])\n"
    )
    assert _parse_literal_array(source, "s") == [112.0, 118.5, None, -3.0]
    assert not marker.exists()
    with pytest.raises(RnnkitError, match="no"):
        _parse_literal_array("x = [1, 2]\n", "s")
    with pytest.raises(RnnkitError, match="only numbers"):
        _parse_literal_array("np.array(['a', 1])", "s")
    with pytest.raises(RnnkitError, match="syntax error"):
        _parse_literal_array("np.array([1, 2", "s")


def test_osis_markup_to_plain_text():
    markup = (
        '<div type="x-milestone" subType="x-preverse" sID="pv1"/><div sID="gen4" type="x-p"/> '
        '<title type="psalm" canonical="true">A Psalm of David.</title>'
        'And <w lemma="strong:H0430">God</w> <w lemma="strong:H0559">said</w>, Let there '
        '<transChange type="added">be</transChange> <w lemma="strong:H0216">light</w>'
        '<note type="study">a &amp; b</note>: and<lb/>there was light &amp; more. '
    )
    assert _osis_to_text(markup) == "And God said, Let there be light: and there was light & more."
    assert _osis_to_text('<chapter n="1" osisID="Gen.1" sID="Gen.1"/> ') == ""


def test_fortune_entries_split_on_percent_lines_and_lose_overstrike():
    text = "Be \x07well.\n%\n\n%\nI *____\b\b\b\bknew* it,   \n\n\tsaid _\bw_\bh_\bo.\n%\nlast"
    assert _parse_fortunes(text) == ["Be well.", "I *knew* it,\n\n\tsaid who.", "last"]
    assert _parse_fortunes("%\n%\n") == []


def _write_ztext(entries: list[str | None], per_block: int) -> tuple[bytes, bytes, bytes]:
    """A SWORD ztext testament written from the format description, ``per_block`` entries a block."""
    bzs, bzv, bzz = b"", b"", b""
    for first in range(0, len(entries), per_block):
        chunk = entries[first : first + per_block]
        block_no = first // per_block
        raw = b""
        for entry in chunk:
            if entry is None:
                bzv += struct.pack("<IIH", 0, 0, 0)
                continue
            data = entry.encode("utf-8")
            bzv += struct.pack("<IIH", block_no, len(raw), len(data))
            raw += data
        packed = zlib.compress(raw)
        bzs += struct.pack("<III", len(bzz), len(packed), len(raw))
        bzz += packed
    return bzs, bzv, bzz


def test_sword_ztext_entries_come_back_in_index_order():
    entries = ["", "<w>In</w> the beginning.", None, "Jesús lloró.", "x" * 300, "last"]
    bzs, bzv, bzz = _write_ztext(entries, per_block=2)
    got = _read_sword_ztext(bzs, bzv, bzz, "t")
    assert got == ["" if e is None else e for e in entries]


def test_sword_ztext_damage_is_reported():
    bzs, bzv, bzz = _write_ztext(["a", "b"], per_block=1)
    with pytest.raises(RnnkitError, match="records of 12 bytes"):
        _read_sword_ztext(bzs[:-1], bzv, bzz, "t")
    with pytest.raises(RnnkitError, match="does not decompress"):
        _read_sword_ztext(bzs, bzv, b"\x00" * len(bzz), "t")
    with pytest.raises(RnnkitError, match="points at block 5"):
        _read_sword_ztext(bzs, struct.pack("<IIH", 5, 0, 1), bzz, "t")


def test_r_ts_times_for_monthly_quarterly_yearly_and_plain_index():
    assert _r_ts_times([1949.0, 1960.917, 12.0], 14)[::12] == ["1949-01", "1950-01"]
    assert _r_ts_times([1980.0 + 11 / 12, 0, 12.0], 2) == ["1980-12", "1981-01"]
    assert _r_ts_times([1965.0, 1994.5, 4.0], 6) == [
        "1965-01",
        "1965-04",
        "1965-07",
        "1965-10",
        "1966-01",
        "1966-04",
    ]
    assert _r_ts_times([1700.0, 1702.0, 1.0], 3) == ["1700", "1701", "1702"]
    assert _r_ts_times([1.0, 1108.0, 1.0], 3) == ["0", "1", "2"]
    # The ISO stamps must be usable as numpy dates.
    times = np.array(_r_ts_times([1956.0, 0, 4.0], 5), dtype="datetime64[M]")
    assert np.all(np.diff(times).astype(int) == 3)


def test_series_interpolates_gaps_and_marks_them():
    series = extra._series(["0", "1", "2", "3"], [1.0, None, 5.0, 7.0], "v")
    assert isinstance(series, TimeSeries)
    np.testing.assert_allclose(series.values[:, 0], np.interp([0, 1, 2, 3], [0, 2, 3], [1.0, 5.0, 7.0]))
    assert series.missing[:, 0].tolist() == [False, True, False, False]
    assert series.values.dtype == np.float64


def _xdr(*ints: int) -> bytes:
    return struct.pack(f">{len(ints)}i", *ints)


def _rda_payload() -> bytes:
    """What R's save(x, y) writes (before compression): RDX2, XDR header, a tagged pairlist."""

    def char(text: str) -> bytes:
        return _xdr(9 | (8 << 12), len(text)) + text.encode()  # CHARSXP, UTF-8 flag

    def tag(name: str) -> bytes:
        return _xdr(1) + char(name)  # SYMSXP

    pair = 2 | (1 << 10)  # LISTSXP with a tag
    x = _xdr(14, 3) + struct.pack(">3d", 1.5, -2.0, 4.25)  # REALSXP
    y = _xdr(13, 2, 7, -(2**31))  # INTSXP with an NA
    return (
        b"RDX2\nX\n"
        + _xdr(2, 0x040201, 0x020300)
        + _xdr(pair)
        + tag("x")
        + x
        + _xdr(pair)
        + tag("y")
        + y
        + _xdr(254)
    )


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress, lambda b: b])
def test_read_rda_any_compression(compress):
    assert read_rda(compress(_rda_payload())) == {"x": [1.5, -2.0, 4.25], "y": [7, None]}


def test_read_rda_refuses_other_files():
    with pytest.raises(RnnkitError, match="RDX2 or RDX3"):
        read_rda(gzip.compress(b"PK\x03\x04 not R"))
    with pytest.raises(RnnkitError, match="cannot decompress"):
        read_rda(b"\x1f\x8b" + b"\x00" * 20)


def test_r_matrix_columns_are_column_major():
    dimnames = RVector([None, RVector(["a", "b"], "character")], "list")
    matrix = RVector([1.0, 2.0, 3.0, 10.0, 20.0, 30.0], "double", {"dim": [3, 2], "dimnames": dimnames})
    assert _r_matrix_columns(matrix, "m") == (["a", "b"], [[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]])
    plain = RVector([1.0, 2.0], "double", {"dim": [1, 2]})
    assert _r_matrix_columns(plain, "m") == (["V1", "V2"], [[1.0], [2.0]])
    with pytest.raises(RnnkitError, match="expected an R matrix"):
        _r_matrix_columns(RVector([1.0, 2.0, 3.0], "double", {"dim": [2, 2]}), "m")


def test_registry_covers_every_task_with_at_least_two_sets():
    tasks = Counter(d.task for d in EXTRA_DATASETS.values())
    assert set(tasks) == {"sentiment", "timeseries", "textgen"}
    assert min(tasks.values()) >= 2
    for name, d in EXTRA_DATASETS.items():
        assert d.name == name and d.source and d.licence and d.size
        assert all(isinstance(s, int) and s > 1 for s in d.season)
        if d.task != "timeseries":
            assert d.season == ()


def test_unknown_name_and_offline_empty_cache_give_one_clear_error(tmp_path, monkeypatch):
    with pytest.raises(RnnkitError, match="expected a data set name"):
        load_extra("nope")
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    with pytest.raises(RnnkitError, match="download=False"):
        load_extra("wineind", download=False)
    with pytest.raises(RnnkitError, match="neutral_band must be"):
        extra.load_vader_tweets(download=False, neutral_band=-1.0)


# ----------------------------------------------------------------------------------------------------
# Real data (fetched once into the cache)
# ----------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_real_airpassengers_is_box_jenkins_series_g():
    series = load_extra("airpassengers")
    assert len(series) == 144 and series.times[0] == "1949-01" and series.times[-1] == "1960-12"
    assert series.timed  # dates, not row numbers
    values = series.values[:, 0]
    assert values[:3].tolist() == [112, 118, 132] and values[-1] == 432
    assert values.sum() == 40363  # sum(AirPassengers) in R
    assert EXTRA_DATASETS["airpassengers"].season == (12,)


@pytest.mark.slow
def test_real_r_forecast_series():
    wine = load_extra("wineind")
    assert len(wine) == 176 and wine.times[0] == "1980-01" and wine.times[-1] == "1994-08"
    assert wine.values[0, 0] == 15136
    wool = load_extra("woolyrnq")
    assert len(wool) == 119 and wool.times[-1] == "1994-07" and wool.values[0, 0] == 6172
    gas = load_extra("gas")
    assert len(gas) == 476 and gas.times[-1] == "1995-08" and gas.values[0, 0] == 1709
    gold = load_extra("gold")
    assert len(gold) == 1108 and int(gold.missing.sum()) == 34 and gold.values[0, 0] == 306.25
    taylor = load_extra("taylor")
    assert len(taylor) == 4032 == 12 * 336 and taylor.values[0, 0] == 22262
    assert taylor.times[-1] == "2000-08-27T23:30"
    # A weekly cycle: demand one week later correlates far better than half a week later.
    y = taylor.values[:, 0] - taylor.values[:, 0].mean()
    assert np.corrcoef(y[:-336], y[336:])[0, 1] > 0.9 > np.corrcoef(y[:-168], y[168:])[0, 1]


@pytest.mark.slow
def test_real_tseries_nino_and_ice_river():
    nino = load_extra("nino")
    assert len(nino) == 598 and nino.columns == ["nino3", "nino3.4"]
    assert nino.times[0] == "1950-01" and nino.times[-1] == "1999-10" and nino.timed
    assert 20 < nino.values.min() and nino.values.max() < 30  # tropical Pacific sea temperature, deg C
    ice = load_extra("ice_river")
    assert len(ice) == 366 + 365 + 365 and ice.times[-1] == "1974-12-31"
    assert ice.columns == ["flow.vat", "flow.jok", "prec", "temp"]
    january, july = ice.values[0:31], ice.values[181:212]
    assert july[:, 3].mean() > january[:, 3].mean() + 5  # Icelandic summer is warmer
    assert july[:, 1].mean() > 2 * january[:, 1].mean()  # the glacier river swells with the melt


@pytest.mark.slow
def test_real_pmdarima_ausbeer_and_heartrate():
    beer = load_extra("ausbeer")
    assert len(beer) == 211 and beer.times[-1] == "2008-07" and beer.values[:2, 0].tolist() == [284, 213]
    assert not beer.missing.any()
    heartrate = load_extra("heartrate")
    assert len(heartrate) == 150 and not heartrate.timed  # no time stamps known: row numbers


@pytest.mark.slow
def test_real_sentiment_sets():
    tweets = load_extra("vader_tweets")
    assert len(tweets) == 4200 and Counter(label for _, label in tweets) == {2: 2300, 0: 1062, 1: 838}
    assert tweets[1] == ("Yay. Another good phone interview.", 2)
    wider = extra.load_vader_tweets(neutral_band=1.0)
    assert Counter(label for _, label in wider) == {2: 1784, 1: 1601, 0: 815}
    assert len(load_extra("vader_nyt")) == 5190 and len(load_extra("vader_amazon")) == 3708
    reviews = load_extra("movie_reviews")
    assert Counter(label for _, label in reviews) == {1: 750, 0: 750}
    assert np.median([len(text.split()) for text, _ in reviews]) > 500
    bol = load_extra("bol_reviews")
    assert Counter(label for _, label in bol) == {1: 1500, 0: 1500}
    assert bol[0][0].startswith("Geen geld terug.")


@pytest.mark.slow
def test_real_bibles():
    kjv = load_extra("kjv").split("\n")
    assert len(kjv) == 31102  # verses in the KJV versification
    assert kjv[0] == "In the beginning God created the heaven and the earth."
    assert "Jesus wept." in kjv and kjv[-1].endswith("Amen.")
    rv = load_extra("reina_valera").split("\n")
    assert rv[0] == "EN el principio crió Dios los cielos y la tierra."
    assert "Y lloró Jesús." in rv and len(rv) > 31000
    assert not any("<" in line or ">" in line for line in kjv + rv)


@pytest.mark.slow
def test_real_fortunes():
    text = load_extra("fortunes")
    assert "\x08" not in text and 2_400_000 < len(text) < 2_600_000
    assert (
        "I *knew* I had some reason for not logging you off... If I could just\nremember what it was." in text
    )
