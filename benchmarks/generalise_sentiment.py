"""The sentiment application's defaults on data they were not tuned on, next to the baselines.

Trains ``rnnkit train sentiment`` with its default settings (only the data set, the run folder, one thread
and a training-time cap change) on each named data set, and prints a markdown table: the recurrent
model's test accuracy next to TF-IDF word+char n-gram logistic regression, bag-of-words logistic
regression and the feed-forward MLP on pooled embeddings, all fitted on the same split. The goal of issue
14: at least the TF-IDF model's accuracy on short texts, at least 0.95 of it on documents of 500+ words
(median length). The networks mixed with the TF-IDF model (``--tfidf-mix``, the share chosen on validation;
what ``rnnkit predict`` answers with) has its own columns, judged against the same goal.

    PYTHONPATH=src python benchmarks/generalise_sentiment.py                 # polarity + held-out sets
    PYTHONPATH=src python benchmarks/generalise_sentiment.py vader_tweets --time-budget 120
    PYTHONPATH=src python benchmarks/generalise_sentiment.py polarity --split-seeds 0 1 2   # three splits

With several ``--split-seeds`` each set is trained on each split (the same defaults; ``split_seed`` draws the
train / validation / test shuffle) and a summary line gives, per set, the mean difference to TF-IDF of the
networks and of the mixture over the splits, with its standard error (a single 10 % test part of a few
hundred texts leaves about one standard error, 0.01-0.02, on one split's comparison).

Defaults were chosen on 'polarity' only; the other sets are held out (rnnkit.datasets.extra).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from rnnkit._machine import machine_line

LONG_WORDS = 500  # a data set whose median text has at least this many tokens counts as long documents


def run_one(data: str, runs_dir: str, time_budget: float, split_seed: int = 0) -> dict:
    from rnnkit.apps import sentiment

    cfg = sentiment.SentimentConfig(
        data=data, runs_dir=runs_dir, name=data, threads=1, progress=False, split_seed=split_seed
    )
    cfg.time_budget = time_budget * cfg.ensemble  # the budget is per network of the default ensemble
    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    m = sentiment.train(cfg, overwrite=True, say=lambda s: None).metrics
    long = m["lengths"]["tokens_median"] >= LONG_WORDS
    tfidf = m["baselines"]["tfidf"]["accuracy"]
    need = 0.95 * tfidf if long else tfidf
    return {
        "data": data,
        "split_seed": split_seed,
        "classes": len(m["classes"]),
        "texts": sum(m["split"][k] for k in ("train", "val", "test")),
        "median_tokens": m["lengths"]["tokens_median"],
        "limit": m["lengths"]["limit"],
        "longer": sum(m["lengths"]["longer_than_limit"].values()),
        "cut": m["lengths"]["cut"],
        "rnnkit": m["test"]["accuracy"],
        "networks": m["ensemble"]["members"],
        "first": m["ensemble"]["member_test_accuracy"][0],
        "members_mean": sum(m["ensemble"]["member_test_accuracy"]) / m["ensemble"]["members"],
        "tfidf": tfidf,
        "bow": m["baselines"]["bow"]["accuracy"],
        "mlp": m["baselines"]["mlp"]["accuracy"],
        "mixture": m["mixture"]["test"]["accuracy"],
        "share": m["mixture"]["share"],
        "goal": ">= 0.95 x TF-IDF (500+ words)" if long else ">= TF-IDF (short texts)",
        "met": m["test"]["accuracy"] >= need,
        "mixture_met": m["mixture"]["test"]["accuracy"] >= need,
        "epochs": "+".join(str(e) for e in m["ensemble"]["epochs_run"]),
        "stop": m["stop_reason"],
        "seconds": round(time.perf_counter() - t0),
        "load": [round(load0, 1), round(os.getloadavg()[0], 1)],  # 1-minute load average, start and end
    }


def table(rows: list[dict]) -> str:
    head = (
        "| data (classes, texts, median tokens) | rnnkit | one network (first; mean of the networks) |"
        " TF-IDF LR | BoW LR | MLP | goal | met | networks + TF-IDF mix (share) | met |"
        " texts longer than the limit (cut) | epochs, s | load |"
    )
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        name = r["data"] + (f", split {r['split_seed']}" if r.get("split_seed") else "")
        lines.append(
            f"| {name} ({r['classes']}, {r['texts']}, {r['median_tokens']:.0f}) | {r['rnnkit']:.3f} | "
            f"{r['first']:.3f} ({r['members_mean']:.3f}) | "
            f"{r['tfidf']:.3f} | {r['bow']:.3f} | {r['mlp']:.3f} | {r['goal']} | {'yes' if r['met'] else 'no'} | "
            f"{r['mixture']:.3f} ({r['share']:.2f}) | {'yes' if r['mixture_met'] else 'no'} | {r['longer']} of limit {r['limit']} ({r['cut']}) | {r['epochs']}, {r['seconds']} | "
            f"{r['load'][0]}-{r['load'][1]} |"
        )
    return "\n".join(lines)


def summary(rows: list[dict]) -> str:
    """Per set, over its splits: the mean difference to TF-IDF (networks, mixture) and its standard error."""
    out = []
    for data in dict.fromkeys(r["data"] for r in rows):
        got = [r for r in rows if r["data"] == data]
        parts = []
        for key, label in (("rnnkit", "networks"), ("mixture", "mixture")):
            d = [r[key] - r["tfidf"] for r in got]
            mean = sum(d) / len(d)
            se = (
                (sum((x - mean) ** 2 for x in d) / (len(d) - 1) / len(d)) ** 0.5
                if len(d) > 1
                else float("nan")
            )
            parts.append(f"{label} - TF-IDF {mean:+.3f} (standard error {se:.3f})")
        out.append(f"{data}, {len(got)} splits: " + "; ".join(parts))
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", nargs="*", default=["polarity", "vader_tweets", "movie_reviews"])
    p.add_argument(
        "--time-budget",
        type=float,
        default=240.0,
        help="training seconds per network (x the ensemble) at most",
    )
    p.add_argument(
        "--split-seeds",
        type=int,
        nargs="+",
        default=[0],
        metavar="SEED",
        help="train / validation / test shuffles to run each set on (default: 0, the app's default split)",
    )
    p.add_argument("--json", help="also write the rows to this JSON file")
    args = p.parse_args()
    if any(s < 0 for s in args.split_seeds):
        p.error(f"--split-seeds: expected seeds >= 0, got {args.split_seeds}")
    rows = []
    with tempfile.TemporaryDirectory() as runs:
        for data in args.data:
            for seed in args.split_seeds:
                rows.append(run_one(data, runs, args.time_budget, seed))
                print(json.dumps(rows[-1]), flush=True)
    print(table(rows))
    if len(args.split_seeds) > 1:
        print(summary(rows))
    print(machine_line())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
