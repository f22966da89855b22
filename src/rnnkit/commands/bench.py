"""``rnnkit bench``: time rnnkit's backends against torch's kernels on this machine (see :mod:`rnnkit.bench`)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rnnkit._errors import RnnkitError

NAME = "bench"
HELP = "benchmark the fused engine, the reference loop and torch.nn kernels; write JSON and markdown"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--quick", action="store_true", help="one small shape, few rounds, short MinGRU runs (< 1 minute)"
    )
    p.add_argument(
        "--json",
        type=Path,
        default=None,
        help="JSON output (default docs/benchmarks.json; none with --quick)",
    )
    p.add_argument(
        "--markdown",
        type=Path,
        default=None,
        help="markdown output (default docs/benchmarks.md; none with --quick)",
    )
    p.add_argument("--cells", default=None, help="comma-separated subset of: " + ", ".join(_cells()))
    p.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds (default 5, quick 2)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default 1, timed in CPU seconds; 0: torch's default)",
    )


def _cells() -> list[str]:
    from rnnkit.bench import CELLS

    return list(CELLS)


def run(args: argparse.Namespace) -> int:
    from rnnkit import bench

    cfg = bench.BenchConfig()
    if args.quick:
        cfg.shapes = bench.QUICK_SHAPES
        cfg.rounds = 2
        cfg.min_gru_lengths = (256,)
    if args.cells:
        cells = [c.strip() for c in args.cells.split(",") if c.strip()]
        unknown = [c for c in cells if c not in bench.CELLS]
        if unknown or not cells:
            raise RnnkitError(
                f"--cells: expected a comma-separated subset of {list(bench.CELLS)}, got {args.cells!r}"
            )
        cfg.cells = tuple(cells)
    if args.rounds is not None:
        if args.rounds < 1:
            raise RnnkitError(f"--rounds must be >= 1, got {args.rounds}")
        cfg.rounds = args.rounds
    if args.threads is not None:
        if args.threads < 0:
            raise RnnkitError(f"--threads must be >= 0, got {args.threads}")
        cfg.threads = args.threads or None
    json_path, md_path = args.json, args.markdown
    if not args.quick:
        json_path = json_path or Path("docs/benchmarks.json")
        md_path = md_path or Path("docs/benchmarks.md")
    t0 = time.perf_counter()
    report = bench.run(cfg, log=lambda s: print(s, flush=True))
    bench.write_outputs(report, json_path, md_path)
    print()
    print(bench.to_markdown(report))
    written = [str(p) for p in (json_path, md_path) if p is not None]
    print(
        f"\nbench took {time.perf_counter() - t0:.0f} s"
        + (f"; wrote {', '.join(written)}" if written else "")
    )
    return 0
