"""Everything a training run writes or prints, in one object: progress bar, log lines, CSV, checkpoints, plots.

The :class:`~rnnkit.train.Trainer` computes; the :class:`Reporter` talks to the outside world. A distributed
run (one process per rank) makes only rank 0's reporter write by passing ``is_main=False`` to the others —
the trainer itself has no global state and never prints or writes files.
"""

from __future__ import annotations

import csv
import io
import logging
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from rnnkit._errors import RnnkitError
from rnnkit.files import atomic_write_bytes, write_json

__all__ = ["Reporter"]

TENSORBOARD_DIR = "tensorboard"  # under the run directory, next to metrics.csv

log = logging.getLogger("rnnkit.train")


def check_tensorboard() -> None:
    """The ``tensorboard`` package is there (``torch.utils.tensorboard`` writes with it), else one clear error."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise RnnkitError(
            "--tensorboard needs the 'tensorboard' package: pip install 'rnnkit[tensorboard]' (or tensorboard)"
        ) from None


def _fmt_time(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Reporter:
    """Progress bar (stderr), log lines (``logging`` logger ``rnnkit.train``), ``metrics.csv``,
    ``history.json``, checkpoints and gradient-flow files under ``out_dir``.

    Args:
        out_dir: where files go (``None``: write nothing, keep checkpoints off).
        progress: show a progress bar with loss, throughput and ETA (``False``: quiet).
        stream: the bar's stream (default ``sys.stderr``). On a terminal it redraws one line; elsewhere it
            prints a line every ``log_every`` steps.
        is_main: ``False`` silences this reporter (non-zero ranks of a distributed run).
        log_every: steps between lines when the stream is not a terminal.
    """

    def __init__(
        self,
        out_dir: str | Path | None = None,
        progress: bool = True,
        stream: TextIO | None = None,
        is_main: bool = True,
        log_every: int = 50,
    ):
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress = progress and is_main
        self.stream = stream if stream is not None else sys.stderr
        self.is_main = is_main
        self.log_every = max(int(log_every), 1)
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_draw = 0.0
        self._t0 = time.perf_counter()
        self._items = 0
        self._bar_open = False
        self._tb = None  # the TensorBoard writer while a fit with config.tensorboard runs

    # -- where things go ----------------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path | None:
        return None if self.out_dir is None or not self.is_main else self.out_dir / "checkpoints"

    # -- events -------------------------------------------------------------------------------------------
    def on_fit_start(self, trainer, total_steps: int | None) -> None:
        self._t0 = time.perf_counter()
        self._items = 0
        self._total = total_steps
        self._start_step = trainer.state.step
        if self.is_main:
            log.info("training %s for %s steps", type(trainer.model).__name__, total_steps or "?")
        if getattr(trainer.config, "tensorboard", False) and self.is_main and self.out_dir is not None:
            check_tensorboard()
            from torch.utils.tensorboard import SummaryWriter

            # a resumed run drops the events an interrupted run wrote after its checkpoint
            purge = trainer.state.step + 1 if trainer.state.step else None
            self._tb = SummaryWriter(str(self.out_dir / TENSORBOARD_DIR), purge_step=purge)

    def on_step(self, trainer, loss: float, items: int) -> None:
        if self._tb is not None and items:
            self._tb.add_scalar("step/train_loss", loss, trainer.state.step)
        if not self.progress:
            return
        self._items += items
        step = trainer.state.step
        now = time.perf_counter()
        if self._tty and now - self._last_draw < 0.1 and step != self._total:
            return
        if not self._tty and step % self.log_every:
            return
        self._last_draw = now
        elapsed = now - self._t0
        done = step - self._start_step
        rate = self._items / elapsed if elapsed > 0 else 0.0
        eta = ""
        if self._total:
            left = (self._total - step) * (elapsed / done) if done else 0.0
            eta = f" ETA {_fmt_time(left)}"
            frac = min(step / self._total, 1.0)
            bar = "[" + "=" * int(frac * 20) + ">" + " " * (20 - int(frac * 20)) + "]"
            head = f"{bar} {step}/{self._total}"
        else:
            head = f"step {step}"
        line = f"epoch {trainer.state.epoch + 1} {head} loss {loss:.4f} {rate:,.0f} items/s{eta}"
        if trainer.state.skipped:
            line += f" skipped {trainer.state.skipped}"
        if self._tty:
            self.stream.write("\r" + line[:150].ljust(100))
            self._bar_open = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def _end_bar(self) -> None:
        if self._bar_open:
            self.stream.write("\n")
            self.stream.flush()
            self._bar_open = False

    def on_skip(self, trainer, reason: str) -> None:
        # the first three skips, then at 8, 16, 32, ...: a diverging run must not flood the terminal
        n = trainer.state.skipped
        if self.is_main and (n <= 3 or (n & (n - 1) == 0 and n >= 8) or n % 1000 == 0):
            log.warning(
                "step %d skipped: %s (%d skipped so far)",
                trainer.state.step + 1,
                reason,
                trainer.state.skipped,
            )

    def message(self, text: str) -> None:
        """A line for the user (after the progress bar, on its stream)."""
        if not self.is_main:
            return
        log.info(text)
        if self.progress:
            self._end_bar()
            self.stream.write(text + "\n")
            self.stream.flush()

    def on_epoch_end(self, trainer, row: dict[str, Any]) -> None:
        if not self.is_main:
            return
        parts = [f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()]
        self.message("  ".join(parts))
        if self.out_dir is not None:
            self.write_history(trainer.state.history)
        if self._tb is not None:  # the CSV's columns, at the row's step
            for k, v in row.items():
                if k not in ("epoch", "step") and isinstance(v, (int, float)) and not isinstance(v, bool):
                    self._tb.add_scalar(k, v, row["step"])
            self._tb.flush()

    def write_history(self, history: list[dict[str, Any]]) -> None:
        """``metrics.csv`` (one row per epoch; columns are the union over epochs) and ``history.json``."""
        cols: list[str] = []
        for row in history:
            cols += [k for k in row if k not in cols]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols)
        w.writeheader()
        for row in history:
            w.writerow(row)
        atomic_write_bytes(self.out_dir / "metrics.csv", buf.getvalue().encode())
        write_json(self.out_dir / "history.json", history)

    def save_checkpoint(self, trainer, best: bool) -> Path | None:
        """Write a checkpoint of the trainer (and point ``latest``/``best`` at it); None if not writing."""
        root = self.checkpoint_dir
        if root is None:
            return None
        return trainer.write_checkpoint(root, best=best)

    def on_grad_flow(self, trainer, monitor, final: bool = False) -> None:
        """Save the gradient-flow records (JSON every epoch; the PNG plots at the end of the run)."""
        if self.is_main and self.out_dir is not None:
            title = f"{type(trainer.model).__name__}: gradient flow through time"
            monitor.save(self.out_dir, title=title, plots=final)
        if self._tb is not None and monitor.records and not final:
            from rnnkit.train.monitor import heatmap_image

            self._tb.add_image("grad_flow/heatmap", heatmap_image(monitor.records, title), trainer.state.step)
            self._tb.flush()

    def on_fit_end(self, trainer) -> None:
        self._end_bar()
        if trainer.monitor.records:
            self.on_grad_flow(trainer, trainer.monitor, final=True)
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self.is_main:
            s = trainer.state
            log.info("done: %d steps, %d skipped, best %s", s.step, s.skipped, s.best_value)
