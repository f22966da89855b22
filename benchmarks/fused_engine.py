"""``rnnkit bench``: rnnkit's backends against torch's kernels, measured in one run on this machine.

    rnnkit bench                                  # full run (~3-5 min on 2 cores), writes docs/benchmarks.*
    rnnkit bench --quick                          # one small shape, a few seconds, prints only
    python benchmarks/fused_engine.py --quick     # the same, as a script

The flags are the fields of :class:`BenchOptions` (through :mod:`rnnkit.config`); ``rnnkit bench`` finds
this file in the source checkout (it is not part of the installed library).

For each cell and shape the bench times the forward pass (under ``torch.no_grad()``) and forward+backward
(a training step without the optimizer) of

* ``fused`` — rnnkit's compiled engine (``backend="fused"``),
* ``default`` — ``backend="auto"``, what a user gets (reported with the backend it chose),
* ``reference`` — the Python time loop,
* ``torch.nn.LSTM`` of the same input and hidden size, and ``torch.nn.GRU`` / ``torch.nn.RNN`` for the GRU
  and RNN cells,

all in training mode (recurrent dropout active), float32, batch-first input, interleaved round-robin; the
reported time is the minimum over the rounds (the least disturbed run on a shared machine). By default on
one thread, timed in process CPU seconds (``threads=None`` uses torch's thread count and wall time). Ratios are
computed from those times. GFLOP/s count the matrix products only (see :func:`matmul_flops`) and are
divided by the fp32 GEMM peak the bench measures first (the best of ``torch.mm`` and the engine's own GEMM
on a large square product).

It also times MinGRU training against ``torch.nn.GRU`` of the same hidden size at long sequence lengths,
and checks the targets of the fused-engine issue. Results go to JSON and a markdown report.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

import rnnkit
from rnnkit._errors import RnnkitError
from rnnkit._machine import machine_info
from rnnkit.config import add_config_arguments, config_from_args
from rnnkit.files import atomic_write_text

__all__ = [
    "BenchConfig",
    "BenchOptions",
    "CELLS",
    "FULL_SHAPES",
    "QUICK_SHAPES",
    "add_arguments",
    "run",
    "run_from_args",
    "to_markdown",
    "write_outputs",
]

REPO = Path(__file__).resolve().parents[1]

#: (T, B, I, H) of the issue
FULL_SHAPES: tuple[tuple[int, int, int, int], ...] = (
    (1000, 8, 32, 64),
    (100, 32, 128, 256),
    (200, 64, 256, 512),
)
QUICK_SHAPES: tuple[tuple[int, int, int, int], ...] = ((100, 8, 32, 64),)


@dataclass(frozen=True)
class CellSpec:
    """A benchmarked configuration: how to build the rnnkit layer and which torch.nn kernel to compare."""

    title: str
    build: Callable[[int, int, str], rnnkit.Recurrent]
    torch_twin: str | None = None  # "GRU" or "RNN": also time torch.nn.GRU / torch.nn.RNN


CELLS: dict[str, CellSpec] = {
    "lstm": CellSpec("LSTM", lambda i, h, b: rnnkit.LSTM(i, h, backend=b)),
    "ln_lstm": CellSpec("LSTM, layer norm", lambda i, h, b: rnnkit.LSTM(i, h, layer_norm=True, backend=b)),
    "peephole_lstm": CellSpec("LSTM, peepholes", lambda i, h, b: rnnkit.LSTM(i, h, peephole=True, backend=b)),
    "rdrop_lstm": CellSpec(
        "LSTM, recurrent dropout 0.25", lambda i, h, b: rnnkit.LSTM(i, h, recurrent_dropout=0.25, backend=b)
    ),
    "gru": CellSpec("GRU", lambda i, h, b: rnnkit.GRU(i, h, backend=b), "GRU"),
    "ln_gru": CellSpec(
        "GRU, layer norm", lambda i, h, b: rnnkit.GRU(i, h, layer_norm=True, backend=b), "GRU"
    ),
    "rnn": CellSpec("RNN, tanh", lambda i, h, b: rnnkit.RNN(i, h, backend=b), "RNN"),
    "sigmoid_rnn": CellSpec(
        "RNN, sigmoid", lambda i, h, b: rnnkit.RNN(i, h, activation="sigmoid", backend=b), "RNN"
    ),
}


@dataclass
class BenchConfig:
    """What to run. The CLI maps its flags onto these fields."""

    cells: Sequence[str] = tuple(CELLS)  # keys of CELLS
    shapes: Sequence[tuple[int, int, int, int]] = FULL_SHAPES  # (T, B, I, H)
    rounds: int = 5  # interleaved rounds per shape; the minimum is reported
    min_gru_lengths: Sequence[int] = (512, 2048, 8192)  # T of the MinGRU-vs-torch.nn.GRU comparison
    min_gru_size: tuple[int, int, int] = (8, 32, 64)  # (B, I, H)
    reference_max_steps: int = 1000  # skip the Python loop above T * layers of this (it only gets slower)
    threads: int | None = 1  # torch.set_num_threads (None: torch's default); see _clock

    seed: int = 0
    candidates: Sequence[str] = field(
        default_factory=lambda: ("fused", "default", "reference", "nn.LSTM", "nn.twin")
    )


@dataclass
class BenchOptions:
    """The command line of ``rnnkit bench``: one flag per field (``--rounds 3``, ``--cells lstm gru``)."""

    quick: bool = field(
        default=False, metadata={"help": "one small shape, few rounds, short MinGRU runs (< 1 minute)"}
    )
    cells: list[str] = field(
        default_factory=lambda: list(CELLS),
        metadata={"help": "cells to time (names or a comma-separated list): " + ", ".join(CELLS)},
    )
    rounds: int | None = field(
        default=None, metadata={"help": "interleaved timing rounds (auto: 5, quick 2)", "low": 1}
    )
    threads: int = field(
        default=1,
        metadata={
            "help": "torch threads (1 is timed in CPU seconds; 0: torch's default, wall time)",
            "low": 0,
        },
    )
    json: str | None = field(
        default=None, metadata={"help": "JSON output (auto: docs/benchmarks.json; none with --quick)"}
    )
    markdown: str | None = field(
        default=None, metadata={"help": "markdown output (auto: docs/benchmarks.md; none with --quick)"}
    )

    def check(self) -> None:
        self.cells = [c.strip() for item in self.cells for c in item.split(",") if c.strip()]
        unknown = [c for c in self.cells if c not in CELLS]
        if unknown or not self.cells:
            raise RnnkitError(f"--cells: expected names from {list(CELLS)}, got {unknown or self.cells}")

    def bench_config(self) -> BenchConfig:
        cfg = BenchConfig(cells=tuple(self.cells), threads=self.threads or None)
        if self.quick:
            cfg.shapes, cfg.rounds, cfg.min_gru_lengths = QUICK_SHAPES, 2, (256,)
        if self.rounds is not None:
            cfg.rounds = self.rounds
        return cfg

    def outputs(self) -> tuple[Path | None, Path | None]:
        """Where the JSON and markdown reports go (the docs of this checkout unless ``--quick``)."""
        json_path = Path(self.json) if self.json else None
        md_path = Path(self.markdown) if self.markdown else None
        if not self.quick:
            json_path = json_path or REPO / "docs" / "benchmarks.json"
            md_path = md_path or REPO / "docs" / "benchmarks.md"
        return json_path, md_path


# -- timing --------------------------------------------------------------------------------------------------
# On one thread the bench times CPU seconds of the process, which a shared machine's other jobs disturb far
# less than wall time (a descheduled step does not count); with more threads, wall time.
_clock: Callable[[], float] = time.perf_counter


def _timed(fn: Callable[[], None]) -> float:
    t0 = _clock()
    fn()
    return _clock() - t0


def _interleaved(fns: dict[str, Callable[[], None]], rounds: int, slow_s: float = 0.5) -> dict[str, float]:
    """Minimum seconds of each callable over round-robin rounds (after one warm-up call each).

    A callable whose warm-up took longer than ``slow_s`` runs in two rounds only (the Python loop at the
    largest shapes): its minimum moves little, and the bench has to finish.
    """
    warm = {k: _timed(fn) for k, fn in fns.items()}
    best = {k: math.inf for k in fns}
    for r in range(rounds):
        for k, fn in fns.items():
            if r < 2 or warm[k] <= slow_s:
                best[k] = min(best[k], _timed(fn))
    return best


def _fwd(module: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def f():
        with torch.no_grad():
            module(x)

    return f


def _fwd_bwd(module: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    params = [p for p in module.parameters()]

    def f():
        for p in params:
            p.grad = None
        y, _ = module(x)
        y.sum().backward()

    return f


def measure_peak(seconds: float = 1.0) -> dict[str, float]:
    """GFLOP/s of a large fp32 matrix product: torch.mm and (when built) the fused engine's GEMM."""
    n = 1536
    a, b = torch.randn(n, n), torch.randn(n, n)
    flops = 2 * n**3
    out = {}

    def best_of(fn):
        fn()
        best, t_end = math.inf, time.perf_counter() + seconds
        while time.perf_counter() < t_end:
            best = min(best, _timed(fn))
        return flops / best / 1e9

    out["torch.mm"] = best_of(lambda: torch.mm(a, b))
    from rnnkit import fused

    if fused.available():
        out["fused GEMM"] = best_of(lambda: torch.ops.rnnkit_fused.linear_forward(a, b, None))
    out["peak"] = max(out.values())
    return out


def matmul_flops(layer: rnnkit.Recurrent, T: int, B: int) -> dict[str, float]:
    """FLOPs (2 per multiply-add) of the matrix products of one forward pass and of forward+backward.

    Backward repeats each product twice (the weight gradient and the input gradient), except the input
    gradient of the first layer, which the benchmark input does not need.
    """
    cell = layer.cell
    G = cell.gates * cell.hidden_size
    P = cell.output_size
    proj = 2.0 * T * B * cell.input_size * G  # input projection
    rec = 0.0
    if cell.has_recurrence_matmul:
        rec = 2.0 * T * B * P * G
        if getattr(cell, "proj_size", 0):
            rec += 2.0 * T * B * cell.hidden_size * P
    return {"fwd": proj + rec, "fwd_bwd": 2 * proj + 3 * rec}


# -- the bench -----------------------------------------------------------------------------------------------
def _torch_twin(kind: str, I: int, H: int) -> nn.Module:
    return {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN": nn.RNN}[kind](I, H, batch_first=True)


def bench_cell(key: str, shape: tuple[int, int, int, int], cfg: BenchConfig, peak: float) -> dict:
    from rnnkit import fused

    spec = CELLS[key]
    T, B, I, H = shape
    torch.manual_seed(cfg.seed)
    x = torch.randn(B, T, I)
    modules: dict[str, nn.Module] = {}
    fused_layer = spec.build(I, H, "fused")
    if "fused" in cfg.candidates:
        modules["fused"] = fused_layer
    default = spec.build(I, H, "auto")
    choice = default.backend  # what auto picks for a training step, and why (rnnkit.backends)
    with torch.no_grad():
        forward_choice = default.backend  # ... and for a forward pass without autograd
    default_backend = str(choice)
    if "default" in cfg.candidates and default_backend != "fused":
        modules["default"] = default
    if "reference" in cfg.candidates and T <= cfg.reference_max_steps:
        modules["reference"] = spec.build(I, H, "reference")
    if "nn.LSTM" in cfg.candidates:
        modules["nn.LSTM"] = _torch_twin("LSTM", I, H)
    if spec.torch_twin and "nn.twin" in cfg.candidates:
        modules[f"nn.{spec.torch_twin}"] = _torch_twin(spec.torch_twin, I, H)
    for m in modules.values():
        m.train()
    fwd = _interleaved({k: _fwd(m, x) for k, m in modules.items()}, cfg.rounds)
    fb = _interleaved({k: _fwd_bwd(m, x) for k, m in modules.items()}, cfg.rounds)
    if "default" not in modules and default_backend == "fused" and "fused" in modules:
        fwd["default"], fb["default"] = fwd["fused"], fb["fused"]
    times = {k: {"fwd_ms": fwd[k] * 1e3, "fwd_bwd_ms": fb[k] * 1e3} for k in fwd}
    flops = matmul_flops(fused_layer, T, B)
    ratios: dict[str, float] = {}

    def ratio(name: str, num: str, den: str, phase: str = "fwd_bwd_ms"):
        if num in times and den in times:
            ratios[name] = times[num][phase] / times[den][phase]

    for phase, tag in (("fwd_ms", "fwd"), ("fwd_bwd_ms", "fwd_bwd")):
        ratio(f"fused/nn.LSTM {tag}", "fused", "nn.LSTM", phase)
        ratio(f"reference/fused {tag}", "reference", "fused", phase)
        if spec.torch_twin:
            twin = f"nn.{spec.torch_twin}"
            ratio(f"{twin}/fused {tag}", twin, "fused", phase)
            ratio(f"{twin}/default {tag}", twin, "default", phase)
    gflops = {
        k: {
            "fwd": flops["fwd"] / (v["fwd_ms"] * 1e-3) / 1e9,
            "fwd_bwd": flops["fwd_bwd"] / (v["fwd_bwd_ms"] * 1e-3) / 1e9,
        }
        for k, v in times.items()
    }
    saved = fused.saved_floats_per_step(fused_layer.cell) * B * x.element_size()
    cudnn = (4 + 1 + 1) * H * B * x.element_size()  # a cuDNN-style LSTM step: i, f, g, o, c, h
    return {
        "cell": key,
        "title": spec.title,
        "saved_bytes_per_step": {"fused": saved, "cudnn_style_lstm": cudnn},
        "shape": {"T": T, "B": B, "I": I, "H": H},
        "default_backend": default_backend,
        "default_reason": choice.reason,
        "default_backend_forward": str(forward_choice),
        "default_reason_forward": forward_choice.reason,
        "times": times,
        "ratios": ratios,
        "gflops": gflops,
        "peak_fraction": {k: {p: g / peak for p, g in v.items()} for k, v in gflops.items()},
        "matmul_gflop": {p: f / 1e9 for p, f in flops.items()},
    }


def bench_min_gru(T: int, cfg: BenchConfig) -> dict:
    B, I, H = cfg.min_gru_size
    torch.manual_seed(cfg.seed)
    x = torch.randn(B, T, I)
    modules: dict[str, nn.Module] = {
        "MinGRU default": rnnkit.Recurrent(rnnkit.MinGRU(I, H)),
        "MinGRU fused": rnnkit.Recurrent(rnnkit.MinGRU(I, H), backend="fused"),
        "MinGRU scan": rnnkit.Recurrent(rnnkit.MinGRU(I, H), backend="scan"),
        "nn.GRU": nn.GRU(I, H, batch_first=True),
    }
    choice = modules["MinGRU default"].backend
    default_backend = str(choice)
    fb = _interleaved({k: _fwd_bwd(m, x) for k, m in modules.items()}, max(1, cfg.rounds // 2))
    times = {k: v * 1e3 for k, v in fb.items()}
    return {
        "T": T,
        "B": B,
        "I": I,
        "H": H,
        "default_backend": default_backend,
        "default_reason": choice.reason,
        "fwd_bwd_ms": times,
        "ratios": {
            "nn.GRU/MinGRU default": times["nn.GRU"] / times["MinGRU default"],
            "scan/fused": times["MinGRU scan"] / times["MinGRU fused"],
        },
    }


def _targets(results: list[dict], min_gru: list[dict], peak: float) -> list[dict]:
    """The targets of the fused-engine issue, checked against this run's numbers."""
    out = []

    def add(name: str, value: float | None, limit: float, ok: bool | None):
        out.append({"target": name, "value": value, "limit": limit, "met": ok})

    by = {(r["cell"], tuple(r["shape"].values())): r for r in results}
    for (cell, shape), r in by.items():
        t = r["times"]
        rs = r["ratios"]
        if (
            cell in ("ln_lstm", "peephole_lstm", "rdrop_lstm", "ln_gru", "sigmoid_rnn")
            and "fused/nn.LSTM fwd_bwd" in rs
        ):
            v = rs["fused/nn.LSTM fwd_bwd"]
            add(f"{cell} {shape}: fused fwd+bwd / nn.LSTM <= 1.5", v, 1.5, v <= 1.5)
        if cell == "lstm" and "fused/nn.LSTM fwd_bwd" in rs:
            v = rs["fused/nn.LSTM fwd_bwd"]
            add(f"lstm {shape}: fused fwd+bwd / nn.LSTM <= 1.2", v, 1.2, v <= 1.2)
        if cell in ("gru", "rnn"):
            twin = "nn.GRU" if cell == "gru" else "nn.RNN"
            key = f"{twin}/default fwd_bwd"
            if key in rs:
                need = 4.0 if shape == (1000, 8, 32, 64) else 1.0
                add(f"{cell} {shape}: {twin} / default fwd+bwd >= {need}", rs[key], need, rs[key] >= need)
        if shape == (1000, 8, 32, 64):
            if cell == "ln_lstm" and "fused" in t:
                v = t["fused"]["fwd_bwd_ms"]
                add("ln_lstm (1000, 8, 32, 64): fused fwd+bwd <= 30 ms", v, 30.0, v <= 30.0)
            if "reference/fused fwd_bwd" in rs:
                v = rs["reference/fused fwd_bwd"]
                add(f"{cell} (1000, 8, 32, 64): reference / fused fwd+bwd >= 5", v, 5.0, v >= 5.0)
        if shape == (200, 64, 256, 512) and "fused" in r["peak_fraction"]:
            v = r["peak_fraction"]["fused"]["fwd_bwd"]
            add(f"{cell} (200, 64, 256, 512): fused fwd+bwd fraction of GEMM peak >= 0.6", v, 0.6, v >= 0.6)
    for m in min_gru:
        if m["T"] == 8192:
            v = m["ratios"]["nn.GRU/MinGRU default"]
            add("MinGRU training at T=8192 faster than nn.GRU (ratio > 1)", v, 1.0, v > 1.0)
    return out


def run(cfg: BenchConfig, log: Callable[[str], None] = lambda s: None) -> dict:
    """Run the bench; returns the JSON-able report."""
    global _clock
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    _clock = time.process_time if torch.get_num_threads() == 1 else time.perf_counter
    from rnnkit import fused

    fused_ok, fused_reason = fused.load()
    peak = measure_peak()
    log(f"fp32 GEMM peak: {peak['peak']:.1f} GFLOP/s ({', '.join(f'{k} {v:.1f}' for k, v in peak.items())})")
    results = []
    for shape in cfg.shapes:
        for key in cfg.cells:
            t0 = time.perf_counter()
            r = bench_cell(key, shape, cfg, peak["peak"])
            results.append(r)
            f = r["times"].get("fused", {})
            log(
                f"{key:14s} T,B,I,H={shape}: fused fwd+bwd {f.get('fwd_bwd_ms', float('nan')):8.2f} ms; "
                + ", ".join(f"{k} {v:.2f}" for k, v in r["ratios"].items() if "fwd_bwd" in k)
                + f" ({time.perf_counter() - t0:.0f}s)"
            )
    min_gru = []
    for T in cfg.min_gru_lengths:
        m = bench_min_gru(T, cfg)
        min_gru.append(m)
        log(f"MinGRU T={T}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in m["fwd_bwd_ms"].items()))
    cfg_dict = asdict(cfg)
    return {
        "machine": {
            **machine_info(),
            "clock": "process CPU time" if _clock is time.process_time else "wall time",
        },
        "fused": {"available": fused_ok, "reason": fused_reason},
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg_dict.items()},
        "gemm_peak_gflops": peak,
        "results": results,
        "min_gru": min_gru,
        "targets": _targets(results, min_gru, peak["peak"]),
    }


# -- reports ---------------------------------------------------------------------------------------------------
def _fmt(v: float | None, digits: int = 2) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def to_markdown(report: dict) -> str:
    m = report["machine"]
    peak = report["gemm_peak_gflops"]
    lines = [
        "# rnnkit benchmarks",
        "",
        "Written by `rnnkit bench` (see `benchmarks/fused_engine.py` for what is measured and how). float32, training",
        "mode, batch-first, min over interleaved rounds; forward under `torch.no_grad()`. Times in ms.",
        "",
        f"Machine: {m['processor']}, {m['cpu_count']} CPUs, torch {m['torch']} ({m['torch_threads']} threads, "
        f"{m['cpu_capability']}; timed by {m['clock']}). fp32 GEMM peak measured: **{peak['peak']:.1f} GFLOP/s** "
        f"({', '.join(f'{k} {v:.1f}' for k, v in peak.items() if k != 'peak')}).",
        f"Fused engine: {report['fused']['reason']}.",
        "",
        "The fused engine (`rnnkit.fused`, C++ in `src/rnnkit/fused/csrc/`): the input projection of all steps",
        "is one GEMM; each step is one GEMM with the recurrent weights (two for a GRU with `reset_after=False`)",
        "into a preallocated buffer, then one vectorised pass over the gates of each row (layer norm, peepholes,",
        "clipping, zoneout and the padding mask included); backward is one reverse loop that writes the gate",
        "gradients of every step, and each weight gradient is one GEMM over all T*B rows at the end. The GEMMs",
        "run a register-blocked kernel on weights packed once per call (float64 uses the BLAS). Double",
        "backward is refused (`once_differentiable`). Floats saved per step and batch row: LSTM 4H + H + P",
        "(gates, c, h), +4H+1 with layer norm; GRU 5H (`reset_after=True`: r, z, n, W_hn h + b_hn, h) or 4H,",
        "+3H+2 with layer norm; RNN H (+H with zoneout); MinGRU/MinLSTM H plus their projections.",
        "",
    ]
    shapes = []
    for r in report["results"]:
        s = tuple(r["shape"].values())
        if s not in shapes:
            shapes.append(s)
    for s in shapes:
        T, B, I, H = s
        lines += [
            f"## T={T}, B={B}, I={I}, H={H}",
            "",
            "| cell | default | fused fwd | fused fwd+bwd | nn.LSTM fwd+bwd | torch twin fwd+bwd | reference "
            "fwd+bwd | fused / nn.LSTM | twin / default | reference / fused | fused GFLOP/s | % of peak |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in report["results"]:
            if tuple(r["shape"].values()) != s:
                continue
            t, rs = r["times"], r["ratios"]
            twin = next((k for k in t if k in ("nn.GRU", "nn.RNN")), None)

            def fb(k: str, t: dict = t) -> str:
                return _fmt(t[k]["fwd_bwd_ms"]) if k in t else "–"

            twin_ratio = rs.get(f"{twin}/default fwd_bwd") if twin else None
            g = r["gflops"].get("fused", {}).get("fwd_bwd")
            pf = r["peak_fraction"].get("fused", {}).get("fwd_bwd")
            lines.append(
                f"| {r['title']} | {r['default_backend']} | {_fmt(t.get('fused', {}).get('fwd_ms'))} | {fb('fused')} "
                f"| {fb('nn.LSTM')} | {(twin + ' ' + fb(twin)) if twin else '–'} | {fb('reference')} "
                f"| {_fmt(rs.get('fused/nn.LSTM fwd_bwd'))} | {_fmt(twin_ratio)} "
                f"| {_fmt(rs.get('reference/fused fwd_bwd'), 1)} | {_fmt(g, 1)} | {_fmt(None if pf is None else 100 * pf, 0)} |"
            )
        lines.append("")
    if report["min_gru"]:
        lines += [
            "## MinGRU training (forward+backward) vs torch.nn.GRU",
            "",
            "| T | B, I, H | default backend | MinGRU default | MinGRU fused | MinGRU scan | nn.GRU | nn.GRU / MinGRU |",
            "|---:|---|---|---:|---:|---:|---:|---:|",
        ]
        for mg in report["min_gru"]:
            t = mg["fwd_bwd_ms"]
            lines.append(
                f"| {mg['T']} | {mg['B']}, {mg['I']}, {mg['H']} | {mg['default_backend']} | {_fmt(t['MinGRU default'])} "
                f"| {_fmt(t['MinGRU fused'])} | {_fmt(t['MinGRU scan'])} | {_fmt(t['nn.GRU'])} "
                f"| {_fmt(mg['ratios']['nn.GRU/MinGRU default'], 1)} |"
            )
        lines.append("")
    lines += _policy_section(report)
    if report["targets"]:
        lines += ["## Targets", "", "| target | value | met |", "|---|---:|---|"]
        for tg in report["targets"]:
            lines.append(f"| {tg['target']} | {_fmt(tg['value'], 3)} | {'yes' if tg['met'] else 'NO'} |")
        lines.append("")
    return "\n".join(lines)


def _policy_section(report: dict) -> list[str]:
    """What ``backend="auto"`` chose per cell and shape, and whether that was the fastest measured path."""
    lines = [
        "## Dispatch: what `auto` picks, and the evidence",
        "",
        'What each benchmarked layer with `backend="auto"` said it would use (`layer.backend`, from',
        "`rnnkit.backends.auto_order`) for a training step and for a forward pass under `torch.no_grad()`, next",
        "to the fastest path measured above among those that compute the same function (fused, reference and,",
        "for a plain LSTM/GRU/tanh RNN, torch's kernel). The reasons the layers gave follow the table.",
        "",
        "| cell | T, B, I, H | auto (training) | auto (no grad) | fastest fwd+bwd | fastest forward |",
        "|---|---|---|---|---|---|",
    ]
    same_model = {"lstm": "nn.LSTM", "gru": "nn.GRU", "rnn": "nn.RNN"}  # torch kernels of the same function
    for r in report["results"]:
        twin = same_model.get(r["cell"])
        t = {k: v for k, v in r["times"].items() if k in ("fused", "reference", twin)}
        fb = min(t, key=lambda k: t[k]["fwd_bwd_ms"])
        fw = min(t, key=lambda k: t[k]["fwd_ms"])
        shape = ", ".join(str(v) for v in r["shape"].values())
        forward = r.get("default_backend_forward", "–")
        lines.append(f"| {r['title']} | {shape} | {r['default_backend']} | {forward} | {fb} | {fw} |")
    reasons: dict[str, None] = {}
    for r in report["results"]:
        for mode, key in (("training", "default_reason"), ("no grad", "default_reason_forward")):
            if r.get(key):
                reasons[f"- {r['title']}, {mode}: {r[key]}"] = None
    for mg in report["min_gru"]:
        if mg.get("default_reason"):
            reasons[f"- MinGRU, training: {mg['default_reason']}"] = None
    if reasons:
        lines += ["", *reasons]
    lines += [
        "",
        "## Saved activations per step",
        "",
        "Bytes kept between forward and backward per time step for the whole batch (float32), next to a",
        "cuDNN-style LSTM of the same size (gates i, f, g, o, the cell c and the output h: 6H floats per row):",
        "",
        "| cell | T, B, I, H | fused | cuDNN-style LSTM |",
        "|---|---|---:|---:|",
    ]
    for r in report["results"]:
        sv = r["saved_bytes_per_step"]
        shape = ", ".join(str(v) for v in r["shape"].values())
        lines.append(f"| {r['title']} | {shape} | {sv['fused']:,} | {sv['cudnn_style_lstm']:,} |")
    lines.append("")
    return lines


def write_outputs(report: dict, json_path: Path | None, md_path: Path | None) -> None:
    if json_path is not None:
        atomic_write_text(json_path, json.dumps(report, indent=1) + "\n")
    if md_path is not None:
        atomic_write_text(md_path, to_markdown(report) + "\n")


# -- command line ----------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per field of :class:`BenchOptions`."""
    add_config_arguments(parser, BenchOptions)


def run_from_args(args: argparse.Namespace) -> int:
    opts = config_from_args(BenchOptions, args)
    json_path, md_path = opts.outputs()
    t0 = time.perf_counter()
    report = run(opts.bench_config(), log=lambda s: print(s, flush=True))
    write_outputs(report, json_path, md_path)
    print()
    print(to_markdown(report))
    written = [str(p) for p in (json_path, md_path) if p is not None]
    print(
        f"\nbench took {time.perf_counter() - t0:.0f} s"
        + (f"; wrote {', '.join(written)}" if written else "")
    )
    return 0


if __name__ == "__main__":
    from rnnkit.cli import main

    raise SystemExit(main(["bench", *sys.argv[1:]]))
