"""The text-generation defaults on texts they were not tuned on: the generalisation table.

Each text is trained with the demo's settings (the defaults, ``epochs = 3``, a capped time budget) and
scored on its own held-out end next to the unigram, the Kneser-Ney n-gram (order chosen on validation, and
its 5-gram) and the feed-forward fixed-context network, all on the same tokens. Austen is the set the
defaults were chosen on; ``kjv``, ``fortunes`` and ``reina_valera`` (rnnkit.datasets.extra) were not used
for any choice. Prints a Markdown table (the one in docs/applications.md) and writes every run's numbers as
JSON.

With ``--level word`` it trains the word-level defaults instead (``rnnkit train textgen --level word``:
``LEVEL_DEFAULTS["word"]`` of the app's config, words rarer than ``min_freq`` mapped to ``<unk>``, the
adaptive softmax) and reports bits per word, perplexity and top-1 / top-5 next-word accuracy next to the
Kneser-Ney word n-gram.

    .venv/bin/python benchmarks/generalise_textgen.py [--data austen kjv fortunes reina_valera]
        [--level char|word] [--budget 150] [--ff-epochs 4] [--threads 2] [--json generalise_textgen.json]
        [--set '{"optimizer": "adam", "weight_decay": 0}']   # settings other than the defaults
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from rnnkit._errors import RnnkitError
from rnnkit._machine import machine_line
from rnnkit.apps.textgen import TextGenConfig, train
from rnnkit.apps.textgen.demo import DEMO_THREADS
from rnnkit.config import config_from_dict, settings_from_json


def _word_row(name: str, m: dict) -> str:
    b = {k: v["bits_per_word"] for k, v in m["baselines"].items()}
    best = min(b, key=b.get)
    nw = m["next_word"]
    r, kn = nw["rnnkit"], nw["kneser_ney"]
    bits = m["test"]["bits_per_word"]
    order = m["baseline_details"]["kneser_ney"]["order"]
    mix = _mixture_cell(m, "bits_per_word")
    mt = nw.get("mixture")
    mix_top = f"{mt['top1']:.3f} / {mt['top5']:.3f}" if mt else "-"
    return (
        f"| {name} | {m['vocabulary_size']:,} | {bits:.3f} ({2**bits:.0f}) | {b['kneser_ney']:.3f} "
        f"({2 ** b['kneser_ney']:.0f}, order {order}) | {mix} | {b['feedforward']:.3f} | {b['unigram']:.3f} "
        f"| {r['top1']:.3f} / {r['top5']:.3f} | {kn['top1']:.3f} / {kn['top5']:.3f} | {mix_top} "
        f"| {m['updates']:,} updates, {m['train_seconds']:.0f} s | {'yes' if m['goal_met'] else 'no'} ({best}) |"
    )


def _mixture_cell(m: dict, key: str) -> str:
    """The network + n-gram mixture's bits and the network's share, or '-' for a run without it."""
    mix = m.get("mixture")
    return f"{mix[key]:.3f} (share {mix['weight']:.2f})" if mix else "-"


def _row(name: str, m: dict) -> str:
    b = {k: v["bpc"] for k, v in m["baselines"].items()}
    best = min(b, key=b.get)
    verdict = "yes" if m["goal_met"] else "no"
    beats5 = "yes" if m["test"]["bpc"] < b.get("kneser_ney_5", b["kneser_ney"]) else "no"
    return (
        f"| {name} | {m['test']['bpc']:.3f} | {b['kneser_ney']:.3f} (order {m['baseline_details']['kneser_ney']['order']})"
        f" | {b.get('kneser_ney_5', b['kneser_ney']):.3f} | {_mixture_cell(m, 'bpc')} | {b['feedforward']:.3f} | {b['unigram']:.3f}"
        f" | {m['updates']:,} updates, {m['train_seconds']:.0f} s | {beats5} | {verdict} ({best}) |"
    )


SCRIPT_KEYS = (
    "data",
    "name",
    "runs_dir",
    "time_budget",
    "ff_epochs",
    "threads",
    "sample_length",
    "progress",
    "level",
)
"""Settings the script sets itself (from ``--data``, ``--budget``, ``--ff-epochs``, ``--threads``, ``--level``):
refused in ``--set``."""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=["austen", "kjv", "fortunes", "reina_valera"])
    p.add_argument("--budget", type=float, default=150.0, help="seconds of training per text (the demo's)")
    p.add_argument("--ff-epochs", type=int, default=4, help="feed-forward baseline epochs (the demo's)")
    p.add_argument("--threads", type=int, default=DEMO_THREADS, help="torch threads (default: the demo's)")
    p.add_argument("--level", choices=("char", "word"), default="char")
    p.add_argument("--json", default="generalise_textgen.json")
    p.add_argument(
        "--set",
        default="{}",
        help='config overrides as JSON, e.g. \'{"optimizer": "adam", "weight_decay": 0}\'',
    )
    args = p.parse_args()
    try:  # the app's own checks (unknown keys, types, bounds), before any training
        settings = settings_from_json(
            TextGenConfig,
            args.set,
            {"level": "word"} if args.level == "word" else {"epochs": 3},
            reserved=SCRIPT_KEYS,
        )
    except RnnkitError as e:
        p.error(str(e))

    results = {}
    with tempfile.TemporaryDirectory() as runs:
        for name in args.data:
            cfg = config_from_dict(
                TextGenConfig,
                {
                    "data": name,
                    "name": name,
                    "runs_dir": runs,
                    "time_budget": args.budget,
                    "ff_epochs": args.ff_epochs,
                    "threads": args.threads,
                    "sample_length": 0,
                    "progress": False,
                    **settings,
                },
            )
            t = time.perf_counter()
            res = train(cfg, say=lambda s: print("  " + s, flush=True))
            results[name] = {
                k: res.metrics[k]
                for k in (
                    "test",
                    "baselines",
                    "baseline_details",
                    "goal",
                    "goal_met",
                    "updates",
                    "train_seconds",
                    "split",
                    "scored_tokens",
                    "vocabulary_size",
                )
            }
            results[name]["next_word"] = res.metrics.get("next_word")
            results[name]["mixture"] = res.metrics.get("mixture")
            key = "bpc" if args.level == "char" else "bits_per_word"
            print(
                f"{name}: {res.metrics['test'][key]:.3f} {key} in {time.perf_counter() - t:.0f} s", flush=True
            )
    with open(args.json, "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=1)
    print()
    print(machine_line())
    if args.level == "word":
        print(
            "| text | vocabulary | rnnkit LSTM bits/word (perplexity) | Kneser-Ney word n-gram | LSTM + KN mixture "
            "| feed-forward | unigram | top-1 / top-5 rnnkit | top-1 / top-5 KN | top-1 / top-5 mixture | training "
            "| LSTM beats the strongest |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for name, m in results.items():
            print(_word_row(name + (" (tuned on)" if name == "austen" else ""), m))
        return
    print(
        "| text | rnnkit LSTM (bpc) | Kneser-Ney, best order | KN 5-gram | LSTM + KN mixture | feed-forward | unigram "
        "| training | LSTM beats KN 5-gram | LSTM beats the strongest |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, m in results.items():
        print(_row(name + (" (tuned on)" if name == "austen" else ""), m))


if __name__ == "__main__":
    main()
