"""``rnnkit experiment memory``: the adding problem and the copy-memory task for five cells at several lengths.

Writes ``results.json``, ``table.md`` and ``img/*.png`` (gradient norm through time, heatmaps, learning
curves) into ``--out`` and prints the table. ``--quick`` runs a small preset in under two minutes on two
cores; ``--preset full`` is the one documented in ``docs/memory.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rnnkit._errors import RnnkitError

NAME = "experiment"
HELP = "reproduce experiments from the literature (memory: adding problem and copy task)"

EXPERIMENTS = ("memory",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from rnnkit.config import add_config_arguments
    from rnnkit.experiments.memory import MemoryConfig

    p.add_argument("name", choices=EXPERIMENTS, help="which experiment")
    p.add_argument("--preset", default="full", help="quick | medium | full (default full)")
    p.add_argument("--quick", action="store_true", help="same as --preset quick (under 2 minutes on 2 cores)")
    p.add_argument("--out", default="runs/memory", help="output directory (default runs/memory)")
    p.add_argument("--overwrite", action="store_true", help="allow an existing non-empty --out")
    add_config_arguments(p, MemoryConfig)  # one flag per field; unset flags keep the preset's value


def run(args: argparse.Namespace) -> int:
    from rnnkit.config import flag_values
    from rnnkit.experiments.memory import MemoryConfig, make_config, results_table, run_memory

    preset = "quick" if args.quick else args.preset
    cfg = make_config(preset, **flag_values(MemoryConfig, args))
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise RnnkitError(f"{out} exists and is not empty (pass --overwrite to reuse it)")
    n = len(cfg.cells) * (
        (len(cfg.adding_lengths) if "adding" in cfg.tasks else 0)
        + (len(cfg.copy_lengths) if "copy" in cfg.tasks else 0)
    )
    print(
        f"memory experiment, preset {preset}: {n} runs of {cfg.steps} steps on {cfg.jobs} worker(s)",
        flush=True,
    )
    t0 = time.perf_counter()

    def progress(done, total, r):
        value = f"MSE {r['metric']:.4f}" if r["task"] == "adding" else f"acc {100 * r['metric']:.1f}%"
        sys.stderr.write(
            f"[{done}/{total}] {r['task']} T={r['length']} {r['cell']}: {value} "
            f"({r['seconds']:.0f}s; {time.perf_counter() - t0:.0f}s elapsed)\n"
        )
        sys.stderr.flush()

    doc = run_memory(cfg, out, progress)
    print(results_table(doc))
    print(f"\nwall time {doc['wall_seconds']:.0f}s on {doc['cpu_count']} cores; results in {out}")
    return 0
