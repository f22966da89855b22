"""``rnnkit predict RUN [INPUT ...]``: use a saved run on new input.

* sentiment runs: each input is a text -> its label and class probabilities;
* time-series runs: a CSV of recent values (``--file recent.csv``, or CSV text on stdin) or the recent values
  of a one-column series as arguments -> the next ``horizon`` values, with time stamps when the times are
  evenly spaced;
* text-generation runs: each input is a text -> its bits per character under the model; with ``--next K``
  (word-level runs) the inputs are pieces of one text typed in order -> the K most likely next words after
  each piece, the model's state carried from piece to piece (stdin is read line by line as it comes).

Inputs come from the arguments, else from ``--file`` (``-`` = stdin), else from stdin when it is piped.
``--json`` prints machine-readable output.
"""

from __future__ import annotations

import argparse
import inspect
import io
import json
import sys
from pathlib import Path

import numpy as np

from rnnkit._errors import RnnkitError

NAME = "predict"
HELP = "use a saved run on new input from arguments, a file or stdin"


class _Intermixed:
    """Options before, between or after the inputs (``predict RUN --json TEXT``): argparse's intermixed parsing."""

    _inside = False

    def parse_known_args(self, args=None, namespace=None):
        if self._inside:  # parse_known_intermixed_args calls back into parse_known_args
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.__class__ = type("PredictParser", (_Intermixed, type(p)), {})
    p.add_argument(
        "run", metavar="RUN", help="a run directory written by 'rnnkit train' (e.g. runs/sentiment)"
    )
    p.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="texts (sentiment, textgen) or recent values (timeseries)"
    )
    p.add_argument(
        "--file",
        metavar="FILE",
        help="read inputs from FILE (one text per line; a CSV for timeseries; for sentiment runs a .csv/.tsv/.jsonl "
        "with the run's text column is read by that column); - = stdin",
    )
    p.add_argument(
        "--next",
        type=int,
        default=0,
        metavar="K",
        help="textgen word-level runs: the K most likely next words after each input (inputs continue one text)",
    )
    p.add_argument(
        "--beam",
        type=int,
        metavar="N",
        help="beam width: translate runs (default: greedy), speech CTC and handwriting runs (default: the run's)",
    )
    p.add_argument("--n-best", type=int, metavar="K", help="translate runs: list the K best translations")
    p.add_argument(
        "--stream",
        action="store_true",
        default=None,
        help="speech CTC runs (unidirectional): feed the audio in chunks, print the transcript as it grows",
    )
    p.add_argument(
        "--lexicon",
        action="store_true",
        default=None,
        help="speech CTC and handwriting runs: spell only words of the training texts, ranked with their word "
        "n-gram LM (the search keeps the run's lexicon_beam prefixes, 64, unless --beam is given)",
    )
    p.add_argument(
        "--cut",
        action="store_true",
        default=None,
        help="handwriting runs: cut each image to its ink first, keeping the blank the run's lines have around "
        "theirs (a scan or photo with wide borders; runs trained with --cut-lines always do); caption runs on "
        "digit strings: draw every image again like their strings (by default only an image unlike them; emoji "
        "runs frame every image by default)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")


def _stdin_text() -> str:
    try:
        return sys.stdin.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise RnnkitError(f"cannot read stdin: {exc}") from None


def _forecast(model, args) -> dict:
    if args.inputs and args.file:
        raise RnnkitError("give the recent values as arguments or with --file, not both")
    if args.inputs:
        try:
            values = np.array([float(v) for v in args.inputs])
        except ValueError:
            bad = next(v for v in args.inputs if not _is_float(v))
            hint = " (a file: pass it with --file)" if Path(bad).is_file() else ""
            raise RnnkitError(f"expected numbers as recent values, got {bad!r}{hint}") from None
        return model.predict(values)
    if args.file and args.file != "-":
        series = model.read_recent(args.file)
    elif args.file == "-" or not sys.stdin.isatty():
        text = _stdin_text()
        if not text.strip():
            raise RnnkitError("stdin: expected a CSV of recent values, got nothing")
        series = model.read_recent(io.StringIO(text))  # messages name "stdin", not a temporary file
    else:
        raise RnnkitError(
            "no recent values: give a CSV with --file FILE, pipe one on stdin, or list the values"
        )
    out = model.predict(series.values, series.times if series.timed else None)
    if series.missing.any():  # what was filled in, so that a forecast from guessed values says so
        out["filled"] = {"cells": int(series.missing.sum()), "rows_added": list(series.inserted)}
    return out


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def run(args: argparse.Namespace) -> int:
    from rnnkit.apps import load_run
    from rnnkit.apps._common import format_table, format_value, read_inputs
    from rnnkit.apps.rundir import open_run
    from rnnkit.apps.sentiment import SentimentPredictor
    from rnnkit.apps.textgen import TextGenerator

    model = load_run(args.run)
    app = open_run(args.run)[1].get("app", "")
    # the flags of some applications only: given to a run that does not take one, one line (not ignored)
    extra = {
        k: v for k in ("beam", "n_best", "stream", "lexicon", "cut") if (v := getattr(args, k)) is not None
    }
    takes = inspect.signature(model.predict_inputs).parameters if hasattr(model, "predict_inputs") else {}
    refused = [k for k in extra if k not in takes]
    if args.next and not isinstance(model, TextGenerator):
        refused.append("next")
    if refused:
        raise RnnkitError(f"--{refused[0].replace('_', '-')}: a {app} run does not take it")
    if isinstance(model, SentimentPredictor):
        # a table with the run's text column (a .csv of reviews and labels): that column, not its lines
        table = None
        if args.file and args.file != "-" and not args.inputs:
            from rnnkit.datasets.readers import read_text_column

            table = read_text_column(args.file, model.config.text_column)
            if table == []:
                raise RnnkitError(f"--file: expected texts in column {model.config.text_column!r}, got none")
        texts = table if table is not None else read_inputs(args.inputs, args.file, "texts")
        out = model.predict(texts)
        if args.json:
            print(json.dumps(out, indent=1, ensure_ascii=False))
        else:
            rows = [(r["label"], r["probability"], _short(r["text"])) for r in out]
            print(format_table(rows, ("label", "probability", "text")))
        return 0
    if isinstance(model, TextGenerator) and args.next:
        return _next_words(model, args)
    if isinstance(model, TextGenerator):
        texts = read_inputs(args.inputs, args.file, "texts")
        out = model.score(texts)
        if args.json:
            print(json.dumps(out, indent=1, ensure_ascii=False))
        else:
            unit = "bits/char" if model.vocab.level == "char" else "bits/word"
            rows = [(r["bits_per_token"], r["tokens"], _short(r["text"])) for r in out]
            print(format_table(rows, (unit, "tokens", "text")))
        return 0
    if hasattr(model, "predict_inputs"):  # the newer applications: one result (a dict) per input or file
        out = model.predict_inputs(read_inputs(args.inputs, args.file, "inputs"), **extra)
        if args.json:
            print(json.dumps(out, indent=1, ensure_ascii=False))
        else:
            keys = [k for k in (out[0] if out else {}) if not isinstance(out[0][k], (dict, list))]
            if any(len(r.get("n_best", [])) > 1 for r in out):  # --n-best K: a row per hypothesis, ranked
                rows = [
                    [_short(str(r[keys[0]])), rank, *(_short(str(h[k])) for k in keys[1:] if k in h)]
                    for r in out
                    for rank, h in enumerate(r["n_best"], 1)
                ]
                print(
                    format_table(rows, [keys[0], "rank", *(k for k in keys[1:] if k in out[0]["n_best"][0])])
                )
            else:
                print(format_table([[_short(str(r[k])) for k in keys] for r in out], keys))
        return 0
    if not hasattr(model, "read_recent"):  # a music run: what it makes is tunes
        raise RnnkitError(
            f"a {app} run has nothing to predict: `rnnkit generate {args.run}` writes its tunes and "
            f"`rnnkit evaluate {args.run}` scores it"
        )
    out = _forecast(model, args)
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        last = out["last"]
        when = f" at {last['time']}" if last["time"] else ""
        print(
            f"{out['target']}: last value {format_value(last['value'])}{when}; forecast of the next "
            f"{out['horizon']} steps:"
        )
        print(
            format_table(
                [(f["step"], f["time"], f["value"]) for f in out["forecast"]], ("step", "time", "forecast")
            )
        )
        if "filled" in out:
            added = out["filled"]["rows_added"]
            rows = f", {len(added)} of them in rows the file left out ({added[0]} ..)" if added else ""
            print(f"note: {out['filled']['cells']} missing value(s) filled by linear interpolation{rows}")
    return 0


def _next_words(model, args) -> int:
    """Suggestions after each piece of text; the pieces are read once, in order, with the state carried."""
    from rnnkit.apps._common import format_table

    if args.next < 0:
        raise RnnkitError(f"--next: expected K >= 1, got {args.next}")
    stream = model.next_words()
    if args.inputs and args.file:
        raise RnnkitError("give the text as arguments or with --file, not both")
    if args.inputs:
        pieces = iter(args.inputs)
    elif args.file and args.file != "-":
        try:
            with open(args.file, encoding="utf-8") as fh:
                pieces = iter(fh.read().splitlines())
        except (OSError, UnicodeDecodeError) as exc:
            raise RnnkitError(f"cannot read {args.file}: {exc}") from None
    else:
        pieces = (line.rstrip("\n") for line in sys.stdin)
    typed = ""
    for piece in pieces:
        stream.feed(piece + " ")  # each piece ends where a word ends
        typed += piece + " "
        top = stream.suggest(args.next)
        if args.json:
            print(json.dumps({"text": typed, "next": [{"word": w, "probability": p} for w, p in top]}))
        else:
            print(f"after {_short(typed.strip(), 60)!r}:")
            print(format_table(top, ("next word", "probability")))
        sys.stdout.flush()
    return 0


def _short(text: str, n: int = 80) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= n else text[: n - 3] + "..."
