"""``rnnkit export RUN --format onnx``: a saved run's model as an ONNX graph with its state as input and output.

Plain LSTM/GRU/RNN layers become ONNX's own operators, every other cell an ONNX ``Loop``; the graph is checked
against PyTorch in onnxruntime before it is written (see ``docs/export.md``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "export"
HELP = "export a saved run's model to ONNX (state as input/output, for streaming runtimes)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="a run directory written by 'rnnkit train'")
    p.add_argument("--format", default="onnx", choices=("onnx",), help="output format (default: onnx)")
    p.add_argument(
        "--out",
        metavar="FILE",
        help="output file (default: NAME.onnx in the current folder, NAME being the run's folder name)",
    )
    p.add_argument(
        "--ops",
        default="auto",
        choices=("auto", "loop"),
        help="auto: ONNX's LSTM/GRU/RNN operators where they match exactly, else a Loop; loop: always a Loop",
    )


def run(args: argparse.Namespace) -> int:
    import json

    from rnnkit.export import _require_onnx, export_run

    out = Path(args.out) if args.out else Path(Path(args.run).resolve().name + ".onnx")
    paths = export_run(args.run, out, ops=args.ops)
    for path in paths:
        print(path)
    # what the run predicts with beside the graph, as export_run recorded it in the graph's metadata (onnx is
    # there: export_run needed it)
    meta = {p.key: p.value for p in _require_onnx().load(str(paths[0])).metadata_props}
    if "rnnkit.left_out" in meta:
        left_out = json.loads(meta["rnnkit.left_out"])
        print("note: the graph leaves out " + "; ".join(left_out), file=sys.stderr)
    return 0
