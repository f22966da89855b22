"""Word-level language model: training throughput of the full vs the adaptive softmax (and other settings).

Times ``--updates`` optimiser updates (forward, backward, Adam) of the textgen word model on Austen's
training words, for each setting in alternating rounds (so the load of a shared machine hits each about
equally), and prints tokens per second and the ratio to the first setting. Timings belong here, not in
the tests.

    PYTHONPATH=src .venv/bin/python benchmarks/word_lm_speed.py [--min-freq 3 20] [--updates 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from rnnkit._machine import machine_line


def _settings(base):
    return {
        "full softmax": replace(base, softmax="full"),
        "adaptive softmax": replace(base, softmax="adaptive"),
        "full, tied": replace(base, softmax="full", tie_weights=True),
        "adaptive, tied": replace(base, softmax="adaptive", tie_weights=True),
        "adaptive, k1=20": replace(base, softmax="adaptive", tbptt_k1=20, tbptt_k2=20),
        "adaptive, 64 streams": replace(base, softmax="adaptive", batch_size=64),
    }


def main() -> None:
    from rnnkit.apps.textgen import TextGenConfig, load_text, split_text, streams
    from rnnkit.apps.textgen.model import build_model
    from rnnkit.datasets import Vocabulary

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--min-freq", type=int, nargs="+", default=[3])
    p.add_argument("--updates", type=int, default=20)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    # dropout 0 as when the table in docs/applications.md was measured (the word defaults have 0.2 since 3 Dec)
    base = TextGenConfig(level="word", embedding_dim=128, dropout=0.0)
    train_text, _, _ = split_text(load_text(base), base)
    for min_freq in args.min_freq:
        vocab = Vocabulary.build([train_text], level="word", min_freq=min_freq)
        ids = torch.tensor(vocab.encode(train_text))
        settings = _settings(replace(base, min_freq=min_freq))
        seconds = {k: 0.0 for k in settings}
        tokens = {k: 0 for k in settings}
        for _ in range(args.rounds):
            for name, cfg in settings.items():
                torch.manual_seed(0)
                model = build_model(cfg, len(vocab))
                opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
                x, y = streams(ids, cfg.batch_size)
                k = cfg.tbptt_k1
                state = None
                model.train()
                t = time.perf_counter()
                for i in range(args.updates):
                    out = model.loss(
                        {"inputs": x[:, i * k : (i + 1) * k], "targets": y[:, i * k : (i + 1) * k]}, state
                    )
                    opt.zero_grad()
                    out.loss.backward()
                    opt.step()
                    state = tuple(s.detach() for s in out.state)
                seconds[name] += time.perf_counter() - t
                tokens[name] += args.updates * k * cfg.batch_size
        first = next(iter(settings))
        ref = tokens[first] / seconds[first]
        print(
            f"vocabulary {len(vocab):,} words (min_freq {min_freq}), {args.updates} updates x {args.rounds} rounds"
        )
        print("| setting | tokens/s | updates/s | tokens/s vs full softmax |")
        print("|---|---|---|---|")
        for name in settings:
            rate = tokens[name] / seconds[name]
            ups = args.updates * args.rounds / seconds[name]
            print(f"| {name} | {rate:,.0f} | {ups:.2f} | {rate / ref:.2f} |")
        print()
    print(machine_line())


if __name__ == "__main__":
    main()
