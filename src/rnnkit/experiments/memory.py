"""The long-memory experiments: the adding problem and the copy-memory task for five cells at several lengths.

* **Adding problem** (Hochreiter & Schmidhuber 1997; the variant of Le et al. 2015): each step carries a value
  in [0, 1] and a marker; exactly two steps are marked, one in each half; the target is the sum of the two
  marked values, read from the final state. Always answering 1 gives MSE 1/6 = 0.167 — the baseline. A run
  *solves* a length when its test MSE is below 0.01.
* **Copy memory** (Arjovsky et al. 2016): 10 symbols from an alphabet of 8, then ``T - 1`` blanks, a
  delimiter and 10 more blanks; the model must output blanks and then, after the delimiter, the 10 symbols.
  Chance accuracy on the 10 symbols is 1/8; a run *solves* a length when it copies >= 95% of them.

Cells: RNN-tanh, IRNN (ReLU RNN with identity recurrent init, Le et al. 2015), LSTM (forget bias 1), GRU and
MinGRU (Feng et al. 2024). Every run is trained by :class:`rnnkit.train.Trainer` with the gradient-flow
monitor on, so the results include ||dL/dh_t|| through time at the start and the end of training.

Runs are independent; they go to a pool of worker processes with one torch thread each (small models on a
few cores train faster as parallel single-threaded jobs than as one multi-threaded one).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rnnkit._errors import RnnkitError
from rnnkit.config import config_from_dict, option
from rnnkit.models import (
    EncoderConfig,
    RegressorConfig,
    SequenceRegressor,
    SequenceTagger,
    TaggerConfig,
)
from rnnkit.models.io import atomic_write_bytes, atomic_write_json

__all__ = ["MemoryConfig", "PRESETS", "CELLS", "adding_batch", "copy_batch", "run_memory", "results_table"]

log = logging.getLogger("rnnkit.experiments")

#: the cells compared, as encoder configs (hidden size filled in per run)
CELLS: dict[str, dict[str, Any]] = {
    "RNN-tanh": {"cell": "rnn"},
    "IRNN": {"cell": "rnn", "cell_options": {"activation": "relu", "recurrent_init": "identity"}},  # lr x 0.1
    "LSTM": {"cell": "lstm", "cell_options": {"forget_bias": 1.0}},
    "GRU": {"cell": "gru"},
    "MinGRU": {"cell": "mingru"},
}
#: learning-rate factors: the unbounded ReLU recurrence of the IRNN diverges at the others' rate (Le et al. 2015
#: also train it with a smaller learning rate than the LSTM)
LR_SCALE = {"IRNN": 0.1}
TASKS = ("adding", "copy")
ADDING_BASELINE = 1.0 / 6.0
ADDING_SOLVED = 0.01
COPY_SOLVED = 0.95
COPY_SYMBOLS, COPY_LEN = 8, 10  # alphabet 1..8, blank 0, delimiter 9


@dataclass
class MemoryConfig:
    """What to run. The presets below fill it; every field is also a flag of ``rnnkit experiment memory``."""

    tasks: tuple[str, ...] = option(TASKS, "tasks to run: adding and/or copy")
    cells: tuple[str, ...] = option(tuple(CELLS), f"cells to compare, from {', '.join(CELLS)}")
    adding_lengths: tuple[int, ...] = option(
        (50, 100, 200), "sequence lengths T of the adding problem", low=2
    )
    copy_lengths: tuple[int, ...] = option((10, 20, 50), "blank-gap lengths T of the copy task", low=1)
    steps: int = option(2000, "training steps per run", low=1)
    evals: int = option(10, "validation points per run (the learning curve)", low=1)
    batch_size: int = option(50, "sequences per step", low=1)
    hidden_size: int = option(64, "hidden units of every cell", low=1)
    lr: float = option(1e-2, "Adam learning rate", low=1e-12)
    clip_norm: float = option(1.0, "clip the global gradient norm to this; 0 = no clipping", low=0.0)
    test_size: int = option(1000, "held-out sequences per run", low=1)
    monitor_every: int = option(0, "steps between gradient-flow records; 0 = steps / 10", low=0)
    seed: int = option(0, "one seed for data and initialisation", low=0)
    jobs: int = option(2, "parallel worker processes (one torch thread each)", low=1)

    def check(self) -> None:
        bad = [t for t in self.tasks if t not in TASKS]
        if bad:
            raise RnnkitError(f"unknown task(s) {bad}; choose from {list(TASKS)}")
        bad = [c for c in self.cells if c not in CELLS]
        if bad:
            raise RnnkitError(f"unknown cell(s) {bad}; choose from {list(CELLS)}")


PRESETS: dict[str, dict[str, Any]] = {
    "quick": dict(
        adding_lengths=(25, 50),
        copy_lengths=(5, 10),
        steps=600,
        evals=3,
        hidden_size=32,
        batch_size=32,
        test_size=500,
    ),
    "medium": dict(steps=1000, evals=5),
    "full": dict(),
}


# -- tasks -----------------------------------------------------------------------------------------------------
def adding_batch(batch: int, length: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """``{"inputs" (B, T, 2), "targets" (B, 1)}``: values and markers; target = sum of the marked values."""
    values = torch.rand(batch, length, generator=gen)
    marks = torch.zeros(batch, length)
    first = torch.randint(0, length // 2, (batch,), generator=gen)
    second = torch.randint(length // 2, length, (batch,), generator=gen)
    rows = torch.arange(batch)
    marks[rows, first] = 1.0
    marks[rows, second] = 1.0
    return {"inputs": torch.stack([values, marks], -1), "targets": (values * marks).sum(1, keepdim=True)}


def copy_batch(batch: int, gap: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """``{"inputs" (B, gap + 20), "targets" (B, gap + 20)}`` token ids of the copy-memory task."""
    T = gap + 2 * COPY_LEN
    symbols = torch.randint(1, COPY_SYMBOLS + 1, (batch, COPY_LEN), generator=gen)
    x = torch.zeros(batch, T, dtype=torch.long)
    y = torch.zeros(batch, T, dtype=torch.long)
    x[:, :COPY_LEN] = symbols
    x[:, COPY_LEN + gap - 1] = COPY_SYMBOLS + 1  # the delimiter: "now repeat"
    y[:, -COPY_LEN:] = symbols
    return {"inputs": x, "targets": y}


def _build(task: str, cell: str, cfg: MemoryConfig):
    enc = EncoderConfig(hidden_size=cfg.hidden_size, **CELLS[cell])
    if task == "adding":
        return SequenceRegressor(RegressorConfig(output_size=1, input_size=2, encoder=enc, pooling="last"))
    return SequenceTagger(
        TaggerConfig(num_outputs=COPY_SYMBOLS + 2, vocab_size=COPY_SYMBOLS + 2, embedding_dim=16, encoder=enc)
    )


def _batch(task: str, B: int, T: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    return adding_batch(B, T, gen) if task == "adding" else copy_batch(B, T, gen)


# -- one run -----------------------------------------------------------------------------------------------------
def _run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Train one (task, cell, T) and measure it. Runs in a worker process."""
    from rnnkit.train import Reporter, Trainer, TrainerConfig, seed_everything

    torch.set_num_threads(1)
    cfg = MemoryConfig(**job["config"])
    task, cell, T = job["task"], job["cell"], job["length"]
    seed_everything(cfg.seed)
    model = _build(task, cell, cfg)
    per_eval = max(cfg.steps // cfg.evals, 1)
    base = cfg.seed * 1_000_003 + T * 7 + TASKS.index(task)

    def train_data(epoch: int):
        gen = torch.Generator().manual_seed(base + 10_007 * (epoch + 1))
        return (_batch(task, cfg.batch_size, T, gen) for _ in range(per_eval))

    test = _batch(task, cfg.test_size, T, torch.Generator().manual_seed(base))
    val = [_batch(task, 200, T, torch.Generator().manual_seed(base + 1))]
    probe = _batch(task, 100, T, torch.Generator().manual_seed(base + 2))
    monitor_every = cfg.monitor_every or max(cfg.steps // 10, 1)
    tcfg = TrainerConfig(
        epochs=cfg.evals,
        lr=cfg.lr * LR_SCALE.get(cell, 1.0),
        clip_norm=cfg.clip_norm,
        grad_monitor_every=monitor_every,
        progress=False,
        seed=cfg.seed,
        lr_backoff=0.5,
        max_skips=20,
    )
    reporter = Reporter(None, progress=False)  # the experiment writes its own summary and plots
    trainer = Trainer(model, tcfg, reporter=reporter)
    t0 = time.perf_counter()
    diverged = None
    try:
        trainer.fit(train_data, val, probe_batch=probe)
    except RnnkitError as e:  # "training diverged": every update non-finite; report it, keep the others going
        diverged = f"step {trainer.state.step}: {e}"
    seconds = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        if diverged:
            metric, solved = float("nan"), False
        elif task == "adding":
            pred = model(test["inputs"])
            metric = float(torch.nn.functional.mse_loss(pred, test["targets"]))
            solved = metric < ADDING_SOLVED
        else:
            out, _ = model(test["inputs"])
            guess = out[:, -COPY_LEN:].argmax(-1)
            metric = float((guess == test["targets"][:, -COPY_LEN:]).float().mean())
            solved = metric >= COPY_SOLVED
    recs = trainer.monitor.records
    return {
        "task": task,
        "cell": cell,
        "length": T,
        "metric": metric,
        "solved": bool(solved),
        "seconds": round(seconds, 1),
        "skipped": trainer.state.skipped,
        "diverged": diverged,
        "lr": tcfg.lr,
        "backend": str(model.encoder.backend),
        "history": [{k: r.get(k) for k in ("step", "train_loss", "val_loss")} for r in trainer.state.history],
        "grad_flow": [{"step": r["step"], "time_norms": r["time_norms"]} for r in recs],
    }


# -- the whole experiment ------------------------------------------------------------------------------------------
def make_config(preset: str = "full", **overrides: Any) -> MemoryConfig:
    """The preset's config with ``overrides`` (``None`` values ignored), checked like a TOML file."""
    if preset not in PRESETS:
        raise RnnkitError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    return config_from_dict(MemoryConfig, values, f"preset {preset}")


def run_memory(cfg: MemoryConfig, out_dir: str | Path, progress=None) -> dict[str, Any]:
    """Run every (task, cell, length); write ``results.json``, ``table.md`` and ``img/*.png`` into ``out_dir``.

    ``progress(done, total, result)`` is called as runs finish. Returns the results document.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for task in cfg.tasks:
        lengths = cfg.adding_lengths if task == "adding" else cfg.copy_lengths
        for T in lengths:
            for cell in cfg.cells:
                jobs.append(
                    {
                        "task": task,
                        "cell": cell,
                        "length": T,
                        "config": dataclasses.asdict(cfg),
                    }
                )
    # the longest runs first, so that the pool is not left waiting on one straggler at the end
    jobs.sort(key=lambda j: -(j["length"] + (2 * COPY_LEN if j["task"] == "copy" else 0)))
    t0 = time.perf_counter()
    results = []
    if cfg.jobs == 1:
        for j in jobs:
            results.append(_run_job(j))
            if progress:
                progress(len(results), len(jobs), results[-1])
    else:
        ctx = mp.get_context("spawn")  # fresh interpreters: no forked torch thread pools
        with ProcessPoolExecutor(max_workers=cfg.jobs, mp_context=ctx) as pool:
            futures = [pool.submit(_run_job, j) for j in jobs]
            for f in as_completed(futures):
                results.append(f.result())
                if progress:
                    progress(len(results), len(jobs), results[-1])
    wall = time.perf_counter() - t0
    order = {c: i for i, c in enumerate(cfg.cells)}
    results.sort(key=lambda r: (TASKS.index(r["task"]), r["length"], order[r["cell"]]))
    doc = {
        "config": dataclasses.asdict(cfg),
        "wall_seconds": round(wall, 1),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "results": results,
    }
    atomic_write_json(out_dir / "results.json", doc)
    atomic_write_bytes(out_dir / "table.md", (results_table(doc) + "\n").encode())
    try:
        plot_results(doc, out_dir / "img")
    except ImportError:
        log.info("matplotlib is not installed (extra 'plot'): plots skipped")
    return doc


def results_table(doc: dict[str, Any]) -> str:
    """A Markdown table: one row per cell, one column per (task, length)."""
    results = doc["results"]
    cells = list(dict.fromkeys(r["cell"] for r in results))
    cols = list(dict.fromkeys((r["task"], r["length"]) for r in results))
    by = {(r["task"], r["length"], r["cell"]): r for r in results}
    head = ["cell"] + [
        f"adding T={T} (MSE)" if task == "adding" else f"copy T={T} (acc.)" for task, T in cols
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell in cells:
        row = [cell]
        for task, T in cols:
            r = by.get((task, T, cell))
            if r is None:
                row.append("")
                continue
            if r.get("diverged"):
                row.append("diverged ✗")
                continue
            mark = "✓" if r["solved"] else "✗"
            value = f"{r['metric']:.4f}" if task == "adding" else f"{100 * r['metric']:.1f}%"
            row.append(f"{value} {mark}")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append(
        f"✓ = solved (adding: test MSE < {ADDING_SOLVED}, baseline {ADDING_BASELINE:.3f}; copy: >= "
        f'{100 * COPY_SOLVED:.0f}% of the 10 symbols copied, chance 12.5%). "diverged": every update had '
        "a non-finite gradient, even after the learning-rate back-off."
    )
    return "\n".join(lines)


def plot_results(doc: dict[str, Any], img_dir: str | Path) -> list[Path]:
    """Gradient norm through time (start and end of training) per cell at the longest length of each task,
    heatmaps (time step x training step) per cell, and learning curves."""
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt
    import numpy as np

    img_dir = Path(img_dir)
    paths = []
    results = doc["results"]

    def save(fig, name):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        atomic_write_bytes(img_dir / name, buf.getvalue())
        paths.append(img_dir / name)

    for task in TASKS:
        rs = [r for r in results if r["task"] == task]
        if not rs:
            continue
        T = max(r["length"] for r in rs)
        rs = [r for r in rs if r["length"] == T]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
        for ax, which, title in ((axes[0], 0, "at initialisation"), (axes[1], -1, "after training")):
            for r in rs:
                n = np.asarray(r["grad_flow"][which]["time_norms"], dtype=float)
                n = np.maximum(n / max(n[-1], 1e-30), 1e-30)
                dist = np.arange(len(n))[::-1]  # steps between h_t and the last step
                ax.semilogy(dist, n, label=r["cell"])
            ax.set_xlabel("distance from the last step (T - 1 - t)")
            ax.set_title(f"{task}, T={T}: {title}")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel(r"$\|\partial L/\partial h_t\| \,/\, \|\partial L/\partial h_{T-1}\|$")
        axes[1].legend()
        fig.tight_layout()
        save(fig, f"memory_{task}_T{T}_gradnorm.png")

        grids = [
            np.array([np.log10(np.maximum(np.asarray(x["time_norms"]), 1e-30)) for x in r["grad_flow"]]).T
            for r in rs
        ]
        vmax = max(g.max() for g in grids)
        vmin = max(min(g.min() for g in grids), vmax - 20)  # one colour scale for all cells
        fig, axes = plt.subplots(
            1, len(rs), figsize=(2.8 * len(rs) + 1.2, 3.6), sharey=True, layout="constrained"
        )
        axes = np.atleast_1d(axes)
        for ax, r, grid in zip(axes, rs, grids):
            recs = r["grad_flow"]
            im = ax.imshow(grid, aspect="auto", origin="lower", cmap="viridis", vmin=vmin, vmax=vmax)
            steps = [x["step"] for x in recs]
            ticks = np.linspace(0, len(steps) - 1, min(len(steps), 4)).astype(int)
            ax.set_xticks(ticks, [str(steps[i]) for i in ticks])
            ax.set_title(r["cell"])
            ax.set_xlabel("training step")
        axes[0].set_ylabel("time step t")
        fig.colorbar(im, ax=list(axes), fraction=0.03)
        where = "the loss is at the last step" if task == "adding" else "the loss covers every step"
        fig.suptitle(
            rf"{task}, T={T}: log$_{{10}}\|\partial L/\partial h_t\|$ ({where}; darkest: tiny or exactly 0)"
        )
        save(fig, f"memory_{task}_T{T}_heatmaps.png")

        fig, ax = plt.subplots(figsize=(6, 4))
        for r in rs:
            h = r["history"]
            ax.semilogy([x["step"] for x in h], [x["val_loss"] for x in h], marker="o", label=r["cell"])
        if task == "adding":
            ax.axhline(ADDING_BASELINE, color="grey", ls="--", label="baseline 0.167")
        else:
            ax.axhline(
                COPY_LEN * math.log(COPY_SYMBOLS) / (T + 2 * COPY_LEN),
                color="grey",
                ls="--",
                label="baseline",
            )
        ax.set_xlabel("training step")
        ax.set_ylabel("validation loss")
        ax.set_title(f"{task}, T={T}")
        ax.legend()
        fig.tight_layout()
        save(fig, f"memory_{task}_T{T}_curves.png")
    return paths


def load_results(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
