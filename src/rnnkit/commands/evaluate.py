"""``rnnkit evaluate RUN``: score a saved run again, on its held-out test part or on another data file.

* sentiment: accuracy and F1 (``--data labelled.csv`` scores every row of that file);
* timeseries: MAE, sMAPE, MASE and the naive / seasonal-naive baselines on the last ``test_fraction`` of the
  series (or of ``--data series.csv`` with the run's columns); a global run: every series' last horizon
  (``--data long.csv``, series named by the run's id column or ``--id-column``);
* textgen: bits per character on the held-out text (or on all of ``--data text.txt``).

Without ``--data`` the held-out part is cut again from the file the run was trained on: found by the absolute
path stored in the run (``data.json``), and only if its sha256 is still the one recorded at training time. A
changed or missing file is a one-line error, since its "held-out" part would not be the one held out.
"""

from __future__ import annotations

import argparse
import json

NAME = "evaluate"
HELP = "score a saved run on its held-out test data or on a new data file"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="a run directory written by 'rnnkit train'")
    p.add_argument(
        "--data", metavar="FILE", help="score on this file instead of the run's held-out test part"
    )
    p.add_argument("--text-column", help="sentiment: text column of --data (default: the run's)")
    p.add_argument("--label-column", help="sentiment: label column of --data (default: the run's)")
    p.add_argument(
        "--id-column", help="timeseries global runs: series-name column of --data (default: the run's)"
    )
    p.add_argument(
        "--classical",
        action="store_true",
        help="timeseries global runs: also fit ETS and ARIMA again on every series (as slow as the report's "
        "baselines; one-series runs always do)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from rnnkit.apps import load_run
    from rnnkit.apps._common import format_table
    from rnnkit.apps.sentiment import SentimentPredictor
    from rnnkit.apps.timeseries import GlobalForecaster

    model = load_run(args.run)
    _check_flags(model, args)
    if args.data is None:
        _use_training_data(model)
    if isinstance(model, SentimentPredictor):
        out = model.evaluate(args.data, args.text_column, args.label_column)
    elif isinstance(model, GlobalForecaster):
        out = model.evaluate(args.data, args.id_column, args.classical)
    else:
        out = model.evaluate(args.data)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"{model.run.name}: {out['data']}")
    rows = [(k, v) for k, v in out.items() if k != "data"]
    print(format_table(rows, ("metric", "value")))
    return 0


def _check_flags(model, args: argparse.Namespace) -> None:
    """A column flag that does not apply to this run is an error, not silently ignored: it applies to one
    kind of run, and names a column of ``--data`` (without ``--data`` the run's own columns are read)."""
    from rnnkit._errors import RnnkitError
    from rnnkit.apps.sentiment import SentimentPredictor
    from rnnkit.apps.timeseries import GlobalForecaster

    applies = {
        "text_column": (SentimentPredictor, "sentiment runs"),
        "label_column": (SentimentPredictor, "sentiment runs"),
        "id_column": (GlobalForecaster, "global timeseries runs (trained with --id-column)"),
    }
    if args.classical and not isinstance(model, GlobalForecaster):
        raise RnnkitError(
            f"--classical applies to global timeseries runs; run {model.run.name} is a {_kind_of(model)} run "
            "(a one-series run always fits them again), drop --classical"
        )
    for dest, (cls, kind) in applies.items():
        if getattr(args, dest) is None:
            continue
        flag = "--" + dest.replace("_", "-")
        if not isinstance(model, cls):
            raise RnnkitError(
                f"{flag} applies to {kind}; run {model.run.name} is a {_kind_of(model)} run, drop {flag}"
            )
        if args.data is None:
            raise RnnkitError(
                f"{flag} names a column of --data, but no --data was given (the run's held-out part is "
                f"read with the run's own columns); pass --data FILE or drop {flag}"
            )


def _kind_of(model) -> str:
    from rnnkit.apps import APP_NAMES
    from rnnkit.apps.rundir import open_run
    from rnnkit.apps.timeseries import GlobalForecaster

    app = str(open_run(model.run, APP_NAMES)[1]["app"])
    if app == "timeseries":
        return ("global " if isinstance(model, GlobalForecaster) else "single-series ") + app
    return app


def _use_training_data(model) -> None:
    """Point ``model.config.data`` at the run's training file by its absolute path, once checked unchanged."""
    import dataclasses
    from pathlib import Path

    from rnnkit._errors import RnnkitError
    from rnnkit.apps._common import DATA_FILE
    from rnnkit.apps.rundir import read_json
    from rnnkit.files import sha256_file

    if not (model.run / DATA_FILE).is_file():  # a built-in data set, or a run from before data.json
        return
    info = read_json(model.run / DATA_FILE, f"run {model.run.name}")
    if not isinstance(info, dict) or not isinstance(info.get("path"), str):
        raise RnnkitError(f"run {model.run.name} is damaged: {DATA_FILE} does not name the training data")
    path = Path(info["path"])
    if not path.is_file():
        raise RnnkitError(
            f"run {model.run.name} was trained on {str(path)!r}, which is no longer there; "
            "score a file explicitly with --data FILE"
        )
    if sha256_file(path) != info.get("sha256"):
        raise RnnkitError(
            f"the training data of run {model.run.name} changed since it was trained ({str(path)!r}: sha256 "
            "differs), so its held-out part is not the one held out; score a file explicitly with --data FILE"
        )
    model.config = dataclasses.replace(model.config, data=str(path))
