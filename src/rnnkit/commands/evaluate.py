"""``rnnkit evaluate RUN``: score a saved run again, on its held-out test part or on another data file.

* sentiment: accuracy and F1 (``--data labelled.csv`` scores every row of that file);
* timeseries: MAE, sMAPE, MASE and the naive / seasonal-naive baselines on the last ``test_fraction`` of the
  series (or of ``--data series.csv`` with the run's columns);
* textgen: bits per character on the held-out text (or on all of ``--data text.txt``).
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
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from rnnkit.apps import load_run
    from rnnkit.apps._common import format_table
    from rnnkit.apps.sentiment import SentimentPredictor

    model = load_run(args.run)
    if isinstance(model, SentimentPredictor):
        out = model.evaluate(args.data, args.text_column, args.label_column)
    else:
        out = model.evaluate(args.data)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"{model.run.name}: {out['data']}")
    rows = [(k, v) for k, v in out.items() if k != "data"]
    print(format_table(rows, ("metric", "value")))
    return 0
