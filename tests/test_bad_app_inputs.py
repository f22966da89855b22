"""The bad-input corpus for the readers of the newer applications: audio (speech), line images and their
``file,text`` CSV (handwriting), ABC (music) and sentence pairs (translate).

Each case goes through the command line and asserts what docs/promises.md promises: exit status 2, one line
on stderr that says what was expected and what came, no traceback, and nothing written under the runs folder
(``train``: no run, no hidden folder, no lock; ``predict``: the run's files unchanged). The music application
reads ABC only (no MIDI reader), so there are no MIDI cases.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from test_cli import assert_no_runs, assert_one_line_error, run_cli


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _loop(folder: Path, name: str) -> Path:
    (folder / name).symlink_to(folder / f"other-{name}")
    (folder / f"other-{name}").symlink_to(folder / name)
    return folder / name


# -- speech: audio files through `rnnkit predict` ----------------------------------------------------------------
RATE = 8000
TONE = (0.3 * np.sin(np.arange(RATE // 2) * 2 * np.pi * 440 / RATE)).astype(np.float32)


def _audio(fmt: str, y: np.ndarray = TONE, rate: int = RATE) -> bytes:
    import io

    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, y, rate, format=fmt)
    return buf.getvalue()


def _rate_zero_wav() -> bytes:
    wav = bytearray(_audio("WAV"))
    assert wav[12:16] == b"fmt " and struct.unpack("<I", wav[24:28])[0] == RATE
    wav[24:28] = struct.pack("<I", 0)  # the sample rate field of the fmt chunk
    return bytes(wav)


@pytest.fixture(scope="module")
def speech_run(tmp_path_factory):
    """A tiny speech run on 13 random features per frame (audio becomes 13 MFCCs, so it takes audio)."""
    pytest.importorskip("soundfile")
    pytest.importorskip("librosa")
    from rnnkit.apps.speech import train
    from rnnkit.apps.speech.config import SpeechConfig

    tmp = tmp_path_factory.mktemp("speech")
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(int(rng.integers(8, 20)), 13)).astype(np.float32) for _ in range(30)]
    lengths = np.array([len(s) for s in seqs])
    np.savez(tmp / "f.npz", X=np.concatenate(seqs), lengths=lengths, y=np.arange(30) % 3)
    cfg = SpeechConfig(
        data=str(tmp / "f.npz"), runs_dir=str(tmp / "runs"), name="sp", epochs=1, hidden_size=8
    )
    result = train(cfg, say=lambda *a: None)
    return Path(result.run)


AUDIO = [  # (case, file name, content, fragments of the message)
    ("empty-wav", "a.wav", lambda: b"", ["a.wav", "expected a WAV, FLAC or OGG", "empty file"]),
    ("empty-flac", "a.flac", lambda: b"", ["a.flac", "empty file"]),
    ("truncated-wav", "a.wav", lambda: _audio("WAV")[:30], ["a.wav", "not a readable audio file"]),
    ("truncated-flac", "a.flac", lambda: _audio("FLAC")[:200], ["a.flac", "not a readable audio file"]),
    ("truncated-ogg", "a.ogg", lambda: _audio("OGG")[:300], ["a.ogg", "not a readable audio file"]),
    ("text-as-wav", "a.wav", lambda: b"this is not audio\n" * 20, ["a.wav", "expected WAV, FLAC or OGG"]),
    ("sample-rate-0", "a.wav", _rate_zero_wav, ["a.wav", "not a readable audio file"]),
    ("silent", "a.wav", lambda: _audio("WAV", np.zeros(4000, np.float32)), ["a.wav", "silent"]),
    ("no-samples", "a.wav", lambda: _audio("WAV", np.zeros(0, np.float32)), ["a.wav", "empty"]),
    ("too-short", "a.wav", lambda: _audio("WAV", TONE[:3]), ["a.wav", "expected at least", "s of sound"]),
    ("silent-ogg", "a.ogg", lambda: _audio("OGG", np.zeros(4000, np.float32)), ["a.ogg", "silent"]),
]


@pytest.mark.parametrize("case, name, content, fragments", AUDIO, ids=[c[0] for c in AUDIO])
def test_a_bad_audio_file_is_one_line(tmp_path, capsys, speech_run, case, name, content, fragments):
    before = _tree(speech_run.parent)
    (tmp_path / name).write_bytes(content())
    rc, out, err = run_cli(capsys, "predict", speech_run, tmp_path / name)
    assert_one_line_error(rc, err, *fragments)
    assert out == ""
    assert _tree(speech_run.parent) == before


def _mkdir(t: Path) -> Path:
    (t / "d.wav").mkdir()
    return t / "d.wav"


def _fifo(t: Path) -> Path:
    os.mkfifo(t / "p.wav")
    return t / "p.wav"


SPECIAL_AUDIO = [
    ("directory", _mkdir, ["d.wav", "which is a directory"]),
    ("symlink-loop", lambda t: _loop(t, "l.wav"), ["l.wav", "symbolic link loop"]),
    ("fifo", _fifo, ["p.wav", "FIFO"]),
    ("missing", lambda t: t / "gone.wav", ["gone.wav", "no such audio file"]),
]


@pytest.mark.skipif(os.name != "posix", reason="FIFOs and symbolic links as on POSIX")
@pytest.mark.parametrize("case, make, fragments", SPECIAL_AUDIO, ids=[c[0] for c in SPECIAL_AUDIO])
def test_an_audio_path_that_is_not_a_file_is_named_for_what_it_is(
    tmp_path, capsys, speech_run, case, make, fragments
):
    rc, _, err = run_cli(capsys, "predict", speech_run, make(tmp_path))
    assert_one_line_error(rc, err, *fragments)


def test_a_good_audio_file_is_read(tmp_path, capsys, speech_run):
    """The cases above fail for the reason given, not because no audio is ever read."""
    for fmt in ("WAV", "FLAC", "OGG"):
        (tmp_path / f"a.{fmt.lower()}").write_bytes(_audio(fmt))
        rc, out, err = run_cli(capsys, "predict", speech_run, tmp_path / f"a.{fmt.lower()}")
        assert rc == 0 and "a." in out, err


def test_a_speech_data_path_that_is_not_a_file_is_named(tmp_path, capsys):
    loop = _loop(tmp_path, "f.npz")
    for path, what in ((loop, "symbolic link loop"), (tmp_path, "directory")):
        rc, _, err = run_cli(capsys, "train", "speech", "--data", path, "--runs-dir", tmp_path / "runs")
        assert_one_line_error(rc, err, what)
        assert_no_runs(tmp_path / "runs")


# -- handwriting: line images and the `file,text` CSV through `rnnkit train` -----------------------------------
def _png(width: int, height: int, pixels: bytes = b"") -> bytes:
    """A grey 8-bit PNG whose header claims ``width`` x ``height`` (the data may be much shorter)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


def _good_png() -> bytes:
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray((rng.random((32, 96)) * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _lines_folder(t: Path, rows: list[tuple[str, str]]) -> Path:
    """``lines.csv`` with ``rows`` first, then 11 good line images."""
    good = _good_png()
    for k in range(1, 12):
        (t / f"l{k}.png").write_bytes(good)
    rows = rows + [(f"l{k}.png", str(k) * 3) for k in range(1, 12)]
    (t / "lines.csv").write_text("file,text\n" + "".join(f"{f},{x}\n" for f, x in rows))
    return t / "lines.csv"


def _train_hw(capsys, csv: Path, runs: Path):
    return run_cli(
        capsys, "train", "handwriting", "--data", csv, "--runs-dir", runs, "--epochs", "1",
        "--hidden-size", "8", "--no-tesseract", "--no-progress",
    )  # fmt: skip


IMAGES = [  # (case, file content, fragments)
    ("corrupt", lambda: _good_png()[:80] + bytes(300), ["bad.png", "expected a readable image"]),
    ("truncated", lambda: _good_png()[:60], ["bad.png", "expected a readable image"]),
    ("zero-bytes", lambda: b"", ["bad.png", "expected an image", "empty file"]),
    ("zero-by-zero", lambda: _png(0, 0), ["bad.png", "expected a readable image"]),
    ("decompression-bomb", lambda: _png(20000, 20000, bytes(1000)), ["bad.png", "at most", "pixels"]),
    ("just-below-the-bomb-limit", lambda: _png(12000, 10000, bytes(1000)), ["bad.png", "at most", "pixels"]),
    ("not-an-image", lambda: b"name,text\nsome text\n" * 10, ["bad.png", "expected a readable image"]),
]


@pytest.mark.parametrize("case, content, fragments", IMAGES, ids=[c[0] for c in IMAGES])
def test_a_bad_line_image_is_one_line_naming_the_csv_line(tmp_path, capsys, case, content, fragments):
    pytest.importorskip("PIL")
    (tmp_path / "bad.png").write_bytes(content())
    csv = _lines_folder(tmp_path, [("bad.png", "12")])
    rc, out, err = _train_hw(capsys, csv, tmp_path / "runs")
    assert_one_line_error(rc, err, "lines.csv line 2", *fragments)
    assert_no_runs(tmp_path / "runs")


CSV_ROWS = [  # (case, the first rows, fragments)
    (
        "path-traversal",
        [("../../etc/passwd", "1")],
        ["line 2", "inside the CSV's folder", "'../../etc/passwd'"],
    ),
    ("absolute-path", [("/etc/passwd", "1")], ["line 2", "inside the CSV's folder", "'/etc/passwd'"]),
    ("inner-traversal", [("sub/../../x.png", "1")], ["line 2", "inside the CSV's folder"]),
    ("missing-file", [("nope.png", "1")], ["line 2", "nope.png", "does not exist"]),
    ("a-directory", [(".", "1")], ["line 2", "which is a directory"]),
    ("empty-file-cell", [("", "1")], ["line 2", "expected an image file name", "empty"]),
    ("empty-text", [("l1.png", "")], ["line 2", "expected a non-empty text"]),
    ("duplicate-row", [("l3.png", "333")], ["line 5", "'l3.png' again", "first at line 2"]),
    ("same-file-two-names", [("./l3.png", "333")], ["line 5", "again", "first at line 2"]),
]


@pytest.mark.parametrize("case, rows, fragments", CSV_ROWS, ids=[c[0] for c in CSV_ROWS])
def test_a_bad_row_of_the_lines_csv_is_one_line(tmp_path, capsys, case, rows, fragments):
    pytest.importorskip("PIL")
    csv = _lines_folder(tmp_path, rows)
    rc, _, err = _train_hw(capsys, csv, tmp_path / "runs")
    assert_one_line_error(rc, err, "lines.csv", *fragments)
    assert_no_runs(tmp_path / "runs")


def test_an_image_symlink_loop_in_the_csv_is_named(tmp_path, capsys):
    pytest.importorskip("PIL")
    _loop(tmp_path, "loop.png")
    csv = _lines_folder(tmp_path, [("loop.png", "1")])
    rc, _, err = _train_hw(capsys, csv, tmp_path / "runs")
    assert_one_line_error(rc, err, "lines.csv line 2", "symbolic link loop")
    assert_no_runs(tmp_path / "runs")


def test_a_bad_image_given_to_predict_is_one_line(tmp_path, capsys):
    """`rnnkit predict` on a handwriting run reads images with the same reader: a bomb is refused there too."""
    pytest.importorskip("PIL")
    from rnnkit.apps.handwriting import data

    (tmp_path / "bomb.png").write_bytes(_png(20000, 20000, bytes(1000)))
    from rnnkit._errors import RnnkitError

    with pytest.raises(RnnkitError, match=r"bomb.png: expected an image of at most \d+ pixels"):
        data.read_image(tmp_path / "bomb.png")


# -- music: ABC through `rnnkit train music` ---------------------------------------------------------------------
ABC = [  # (case, content, fragments)
    ("empty", b"", ["a.abc", "expected ABC tunes", "no X: lines"]),
    (
        "unparseable",
        b"X:1\nT:bad\nM:4/4\nL:1/8\nK:G\n|:{{{[[[(((&&&^^^___===///\n",
        ["expected ABC tunes", "not understood"],
    ),
    ("no-notes", b"X:1\nT:nothing\nM:4/4\nL:1/8\nK:G\n", ["expected ABC tunes", "no notes"]),
    ("binary", bytes(range(256)) * 8, ["a.abc", "expected ABC tunes"]),
    ("no-header", b"abc def gab|cde fga|\n", ["expected ABC tunes", "no X: lines"]),
]


def _train_music(capsys, data: Path, runs: Path):
    return run_cli(
        capsys, "train", "music", "--data", data, "--runs-dir", runs, "--epochs", "1", "--no-progress"
    )


@pytest.mark.parametrize("case, content, fragments", ABC, ids=[c[0] for c in ABC])
def test_a_bad_abc_file_is_one_line(tmp_path, capsys, case, content, fragments):
    (tmp_path / "a.abc").write_bytes(content)
    rc, out, err = _train_music(capsys, tmp_path / "a.abc", tmp_path / "runs")
    assert_one_line_error(rc, err, *fragments)
    assert_no_runs(tmp_path / "runs")


def _abc_loop_in_folder(t: Path) -> Path:
    (t / "tunes").mkdir()
    _loop(t / "tunes", "x.abc")
    return t / "tunes"


def _abc_fifo(t: Path) -> Path:
    os.mkfifo(t / "p.abc")
    return t / "p.abc"


SPECIAL_ABC = [
    ("symlink-loop", lambda t: _loop(t, "l.abc"), ["l.abc", "symbolic link loop"]),
    ("symlink-loop-in-a-folder", _abc_loop_in_folder, ["x.abc", "symbolic link loop"]),
    ("fifo", _abc_fifo, ["p.abc", "FIFO"]),
    ("folder-without-abc", lambda t: t, ["expected a folder with .abc, .mid or .midi files"]),
]


@pytest.mark.skipif(os.name != "posix", reason="FIFOs and symbolic links as on POSIX")
@pytest.mark.parametrize("case, make, fragments", SPECIAL_ABC, ids=[c[0] for c in SPECIAL_ABC])
def test_an_abc_path_that_is_not_a_file_is_named_for_what_it_is(tmp_path, capsys, case, make, fragments):
    path = make(tmp_path)
    rc, _, err = _train_music(capsys, path, tmp_path / "runs")
    assert_one_line_error(rc, err, *fragments)
    assert_no_runs(tmp_path / "runs")


# -- translate: a TSV of pairs, or two line-aligned files --------------------------------------------------------
PAIRS = "".join(f"a{i}\tb{i}\n" for i in range(10))
TSV = [  # (case, content, fragments)
    (
        "missing-column",
        "src\tfoo\n" + PAIRS,
        ["p.tsv", "expected a source column 'source'", "['src', 'foo']"],
    ),
    ("empty-target", "source\ttarget\n" + PAIRS + "x\t\n", ["p.tsv line 12", "non-empty target"]),
    ("empty-source", "source\ttarget\n" + PAIRS + "\ty\n", ["p.tsv line 12", "non-empty source"]),
    (
        "short-row",
        "source\ttarget\n" + PAIRS + "x\n",
        ["p.tsv line 12", "expected at least 2 fields", "got 1"],
    ),
    ("header-only", "source\ttarget\n", ["expected at least 3 sentence pairs", "got 0"]),
    ("only-empty-pairs", "source\ttarget\n\t\n\t\n\t\n", ["p.tsv", "at least 3 sentence pairs", "got 0"]),
    ("empty-file", "", ["p.tsv", "empty file"]),
]


def _train_translate(capsys, runs: Path, *data):
    return run_cli(capsys, "train", "translate", *data, "--runs-dir", runs, "--epochs", "1", "--no-progress")


@pytest.mark.parametrize("case, content, fragments", TSV, ids=[c[0] for c in TSV])
def test_a_bad_pairs_table_is_one_line(tmp_path, capsys, case, content, fragments):
    (tmp_path / "p.tsv").write_text(content)
    rc, _, err = _train_translate(capsys, tmp_path / "runs", "--data", tmp_path / "p.tsv")
    assert_one_line_error(rc, err, *fragments)
    assert_no_runs(tmp_path / "runs")


TWO_FILES = [  # (case, source text, target text, fragments)
    ("misaligned", "a\nb\nc\nd\n", "w\nx\ny\n", ["line-aligned", "4 lines in src.txt", "3 lines in tgt.txt"]),
    ("one-side-empty", "a\nb\nc\nd\n", "w\nx\n\nz\n", ["line 3", "empty and the other is not"]),
    ("too-few-pairs", "a\n\nb\n", "w\n\nx\n", ["src.txt+tgt.txt", "at least 3 sentence pairs", "got 2"]),
    ("blank-files", "\n\n\n", "\n\n\n", ["src.txt", "empty file"]),
    ("binary-target", "a\nb\nc\n", "\x00\x01\n" * 3, ["tgt.txt", "binary"]),
]


@pytest.mark.parametrize("case, source, target, fragments", TWO_FILES, ids=[c[0] for c in TWO_FILES])
def test_bad_line_aligned_files_are_one_line(tmp_path, capsys, case, source, target, fragments):
    (tmp_path / "src.txt").write_text(source)
    (tmp_path / "tgt.txt").write_text(target)
    rc, _, err = _train_translate(
        capsys, tmp_path / "runs", "--data", tmp_path / "src.txt", "--target-file", tmp_path / "tgt.txt"
    )
    assert_one_line_error(rc, err, *fragments)
    assert_no_runs(tmp_path / "runs")


@pytest.mark.parametrize("case", ["directory", "missing", "symlink-loop"])
def test_a_target_file_that_is_not_a_file_is_named(tmp_path, capsys, case):
    (tmp_path / "src.txt").write_text("a\nb\nc\n")
    target = {"directory": tmp_path, "missing": tmp_path / "gone.txt"}.get(case) or _loop(tmp_path, "t.txt")
    what = {"directory": "directory", "missing": "does not exist", "symlink-loop": "symbolic link loop"}[case]
    rc, _, err = _train_translate(
        capsys, tmp_path / "runs", "--data", tmp_path / "src.txt", "--target-file", target
    )
    assert_one_line_error(rc, err, what)
    assert_no_runs(tmp_path / "runs")
