"""Music's baselines on the built-in data, without training the network: Kneser-Ney and the feed-forward
counterpart on the split ``rnnkit train music`` makes (the same tunes, the same scored tokens).

The networks' numbers to set beside them are in docs/music.md.

    PYTHONPATH=src .venv/bin/python benchmarks/music_baselines.py folk
    PYTHONPATH=src .venv/bin/python benchmarks/music_baselines.py chorales --set '{"val_fraction": 0.1, "test_fraction": 0.1, "ngram_max_order": 10}'
"""

from __future__ import annotations

import argparse
import json

from rnnkit._machine import machine_line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="folk, chorales or a folder")
    ap.add_argument("--set", default="{}", metavar="JSON", help="other MusicConfig settings")
    args = ap.parse_args()
    from rnnkit.apps.music import report
    from rnnkit.apps.music.config import MusicConfig
    from rnnkit.apps.music.data import load_tunes, split_tunes_by_index
    from rnnkit.config import settings_from_json

    cfg = MusicConfig(**settings_from_json(MusicConfig, args.set, {"data": args.data}, reserved=("data",)))
    print(machine_line())
    tunes, _ = load_tunes(cfg, lambda *_: None)
    parts = [[t["tokens"] for t in p] for p in split_tunes_by_index(tunes, cfg)]
    train, val, test = parts
    print(f"{args.data}: {len(train)} / {len(val)} / {len(test)} tunes")
    ng = report.ngram_bits(train, val or train[:50], test, cfg.ngram_max_order)
    print(f"Kneser-Ney: order {ng['order']}, {ng['bits']:.4f} bits/token")
    ff, _ = report.feedforward_bits(train, val or train[:50], test, cfg.ff_context, cfg.ff_epochs, cfg.seed)
    print(f"feed-forward: {json.dumps(ff)}")
    print(f"unigram: {report.unigram_bits(train, test):.4f} bits/token")


if __name__ == "__main__":
    main()
