"""The fused engine against the reference loop and torch.nn, in one run: ``rnnkit bench`` as a script.

    python benchmarks/fused_engine.py            # full run (~3-5 min on 2 cores), writes docs/benchmarks.*
    python benchmarks/fused_engine.py --quick    # one small shape, a few seconds, prints only

Flags are those of ``rnnkit bench`` (see ``rnnkit bench --help``); the measurement is documented in
:mod:`rnnkit.bench`.
"""

from __future__ import annotations

import sys

from rnnkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", *sys.argv[1:]]))
