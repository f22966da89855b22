"""A corpus of bad inputs through the command line: every reader (CSV, TSV, JSON lines, plain text) against
empty, truncated, wrongly encoded, binary and huge files, adversarial names and special files.

Each case asserts what docs/promises.md promises: exit status 2, one line on stderr that starts with
``rnnkit: error:`` and says what was wrong, and nothing written (no run, no temporary folder, no lock).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from test_cli import assert_no_runs, assert_one_line_error, run_cli

SENTIMENT = ["--text-column", "review", "--label-column", "sentiment"]
APPS = {  # app -> (file suffix, extra flags)
    "sentiment": SENTIMENT,
    "timeseries": [],
    "textgen": [],
}

GOOD_CSV = "review,sentiment\n" + "".join(f"text number {i},{'pos' if i % 2 else 'neg'}\n" for i in range(40))

# (case id, app, file name, content, fragments of the one-line message)
CASES = [
    ("empty-csv", "sentiment", "r.csv", b"", ["empty file"]),
    ("empty-tsv", "sentiment", "r.tsv", b"", ["empty file"]),
    ("empty-jsonl", "sentiment", "r.jsonl", b"", ["empty file"]),
    ("empty-series", "timeseries", "s.csv", b"", ["empty file"]),
    ("empty-text", "textgen", "t.txt", b"", ["empty file"]),
    ("blank-lines", "timeseries", "s.csv", b"\n \n\t\n", ["empty file"]),
    ("header-only", "timeseries", "s.csv", b"date,load\n", ["at least 2 data rows", "got 0"]),
    (
        "header-only-sentiment",
        "sentiment",
        "r.csv",
        b"review,sentiment\n",
        ["r.csv", "at least one data row"],
    ),
    (
        "truncated-quote",
        "sentiment",
        "r.csv",
        GOOD_CSV.encode() + b'"an unterminated quote,pos\n',
        ["r.csv", "line 42"],
    ),
    (
        "truncated-jsonl",
        "sentiment",
        "r.jsonl",
        b'{"review": "fine", "sentiment": "pos"}\n{"review": "cut',
        ["r.jsonl", "line 2"],
    ),
    (
        "truncated-row",
        "timeseries",
        "s.csv",
        b"date,load,temp\n2000-01,1,2\n2000-02,3\n2000-03,4,5\n",
        ["line 3", "fields"],
    ),
    (
        "latin-1",
        "sentiment",
        "r.csv",
        GOOD_CSV.replace("text", "caf\u00e9").encode("latin-1"),
        ["expected UTF-8", "0xe9"],
    ),
    ("utf-16", "textgen", "t.txt", "some text\n".encode("utf-16"), ["expected UTF-8", "0xff"]),
    ("binary-png", "timeseries", "s.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)), ["expected UTF-8"]),
    ("binary-nul", "textgen", "t.txt", b"plain ascii\x00with NUL bytes\x00\n" * 4, ["binary", "NUL"]),
    (
        "huge-field",
        "sentiment",
        "r.csv",
        b"review,sentiment\n" + b"x" * 300_000 + b",pos\n",
        ["r.csv", "field larger"],
    ),
    (
        "huge-number",
        "timeseries",
        "s.csv",
        b"date,load\n" + b"".join(b"%d,%s\n" % (i, b"9" * 400) for i in range(30)),
        ["s.csv", "expected a number", "(400 characters)"],
    ),
    ("text-as-series", "timeseries", "s.csv", GOOD_CSV.encode(), ["s.csv", "expected a number", "'neg'"]),
    ("json-array-series", "timeseries", "s.json", b"[1, 2, 3]", ["expected a CSV"]),
]


def _train(capsys, app: str, data: Path | str, runs: Path, *extra):
    return run_cli(
        capsys,
        "train",
        app,
        "--data",
        data,
        "--runs-dir",
        runs,
        "--epochs",
        "1",
        "--no-progress",
        *APPS[app],
        *extra,
    )


@pytest.mark.parametrize("case, app, name, content, fragments", CASES, ids=[c[0] for c in CASES])
def test_a_bad_file_is_one_line_and_writes_nothing(tmp_path, capsys, case, app, name, content, fragments):
    path = tmp_path / name
    path.write_bytes(content)
    runs = tmp_path / "runs"
    rc, out, err = _train(capsys, app, path, runs)
    assert_one_line_error(rc, err, *fragments)
    assert out == ""
    assert_no_runs(runs)


def _loop(t: Path) -> Path:
    (t / "a.csv").symlink_to(t / "b.csv")
    (t / "b.csv").symlink_to(t / "a.csv")
    return t / "a.csv"


def _fifo(t: Path) -> Path:
    os.mkfifo(t / "pipe.csv")  # opening it would block for ever: it must be refused before that
    return t / "pipe.csv"


def _broken(t: Path) -> Path:
    (t / "gone.csv").symlink_to(t / "nowhere.csv")
    return t / "gone.csv"


def _dir_link(t: Path) -> Path:
    (t / "d").mkdir()
    (t / "d.csv").symlink_to(t / "d")
    return t / "d.csv"


SPECIAL = [
    ("symlink-loop", _loop, ["symbolic link loop"]),
    ("fifo", _fifo, ["FIFO"]),
    ("broken-symlink", _broken, ["broken symbolic link"]),
    ("link-to-directory", _dir_link, ["directory"]),
    ("directory", lambda t: t, ["directory"]),
    ("dev-zero", lambda t: Path("/dev/zero"), ["device"]),
    ("missing", lambda t: t / "missing.csv", ["does not exist"]),
]


@pytest.mark.skipif(os.name != "posix", reason="FIFOs, /dev/zero and symbolic links as on POSIX")
@pytest.mark.parametrize("app", list(APPS))
@pytest.mark.parametrize("case, make, fragments", SPECIAL, ids=[c[0] for c in SPECIAL])
def test_a_path_that_is_not_a_regular_file_is_named_for_what_it_is(
    tmp_path, capsys, app, case, make, fragments
):
    path = make(tmp_path)
    runs = tmp_path / "runs"
    rc, _, err = _train(capsys, app, path, runs)
    assert_one_line_error(rc, err, str(path), *fragments)
    assert_no_runs(runs)


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".hidden", "-flag", "/abs", "x\ny", "a b"])
def test_a_run_name_cannot_leave_the_runs_folder(tmp_path, capsys, name):
    data = tmp_path / "s.csv"
    data.write_text("date,load\n" + "".join(f"{i},{i % 7}\n" for i in range(60)))
    runs = tmp_path / "runs"
    rc, _, err = _train(capsys, "timeseries", data, runs, f"--name={name}")
    assert_one_line_error(rc, err, "run name")
    assert_no_runs(runs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "s.csv"] or not runs.exists()


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["--epochs", "0"], ["epochs"]),
        (["--epochs", "-1"], ["epochs"]),
        (["--lr", "nan"], ["lr"]),
        (["--batch-size", "0"], ["batch"]),
        (["--threads", "-2"], ["threads"]),
        (["--epochs", "many"], ["epochs"]),
    ],
)
def test_flags_beyond_their_bounds_are_one_line(tmp_path, capsys, argv, fragments):
    data = tmp_path / "s.csv"
    data.write_text("date,load\n" + "".join(f"{i},{i % 7}\n" for i in range(60)))
    runs = tmp_path / "runs"
    rc, _, err = _train(capsys, "timeseries", data, runs, *argv)
    assert_one_line_error(rc, err, *fragments)
    assert_no_runs(runs)
