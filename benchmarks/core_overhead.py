"""Overhead of rnnkit's layer over torch's kernels: rnnkit (backend="native") time / torch.nn time.

One run, one process; the two sides alternate repetition by repetition so that machine noise hits both
alike, and the ratio of medians is reported. Target (issue 2): ratio <= 1.05.

    .venv/bin/python benchmarks/core_overhead.py [--reps 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

import rnnkit

SHAPES = [(100, 32, 128, 256), (1000, 8, 32, 64)]  # (T, B, I, H)
KINDS = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN": nn.RNN}


def _time(fn, module) -> float:
    t0 = time.perf_counter()
    fn(module)
    return time.perf_counter() - t0


def measure(kind: str, T: int, B: int, I: int, H: int, reps: int) -> dict:
    tmod = KINDS[kind](I, H, batch_first=True)
    ours = rnnkit.from_torch(tmod, backend="native")
    x = torch.randn(B, T, I)

    def fwd(m):
        with torch.no_grad():
            m(x)

    def fwd_bwd(m):
        y, _ = m(x)
        y.sum().backward()

    out = {"kind": kind, "T": T, "B": B, "I": I, "H": H}
    for label, fn in (("forward", fwd), ("forward+backward", fwd_bwd)):
        fn(ours), fn(tmod)  # warm-up
        a, b = [], []
        for _ in range(reps):
            a.append(_time(fn, ours))
            b.append(_time(fn, tmod))
        ra, rb = statistics.median(a), statistics.median(b)
        out[label] = {"rnnkit_ms": ra * 1e3, "torch_ms": rb * 1e3, "ratio": ra / rb}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.manual_seed(0)
    rows = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ratio = rnnkit / torch.nn (median)")
    print(
        f"{'cell':<6}{'T':>6}{'B':>4}{'I':>5}{'H':>5}   {'fwd ms':>16} {'ratio':>6}   {'fwd+bwd ms':>16} {'ratio':>6}"
    )
    for T, B, I, H in SHAPES:
        for kind in KINDS:
            r = measure(kind, T, B, I, H, args.reps)
            rows.append(r)
            f, fb = r["forward"], r["forward+backward"]
            print(
                f"{kind:<6}{T:>6}{B:>4}{I:>5}{H:>5}   {f['rnnkit_ms']:>7.2f} /{f['torch_ms']:>7.2f} {f['ratio']:>6.3f}"
                f"   {fb['rnnkit_ms']:>7.2f} /{fb['torch_ms']:>7.2f} {fb['ratio']:>6.3f}"
            )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
