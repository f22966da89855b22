"""The applications' plots, as PNG files (matplotlib, the ``plot`` extra; without it plots are skipped).

Every function returns the path it wrote, or ``None`` when matplotlib is not installed. Files are written
atomically (:func:`rnnkit.files.write_figure`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.files import write_figure

__all__ = [
    "have_matplotlib",
    "plot_bits_by_class",
    "plot_confusion",
    "plot_curves",
    "plot_forecast",
]

log = logging.getLogger("rnnkit.apps")


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _guard(fn):
    def wrapper(*args, **kwargs):
        if not have_matplotlib():
            log.info("matplotlib is not installed (pip install 'rnnkit[plot]'): %s skipped", fn.__name__)
            return None
        plt = _pyplot()
        try:
            return fn(plt, *args, **kwargs)
        except Exception as e:  # a figure is a by-product: it must never cost the run it illustrates
            log.warning("%s skipped: %s: %s", fn.__name__, type(e).__name__, e)
            return None
        finally:
            plt.close("all")

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@_guard
def plot_curves(
    plt,
    history: Sequence[dict[str, Any]],
    path: Path,
    x_key: str,
    title: str,
    left: Sequence[str],
    right: Sequence[str] = (),
    left_label: str = "loss",
    right_label: str = "",
) -> Path:
    """Training curves: the ``left`` columns of ``history`` on the left axis, ``right`` ones on the right."""
    rows = [r for r in history if r.get(x_key) is not None]
    xs = [r[x_key] for r in rows]

    def series(k):
        return [np.nan if r.get(k) is None else r[k] for r in rows]

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, k in enumerate(left):
        ax.plot(xs, series(k), marker="o", ms=3, color=f"C{i}", label=k)
    ax.set_xlabel(x_key)
    ax.set_ylabel(left_label)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if right:
        ax2 = ax.twinx()
        for i, k in enumerate(right):
            ax2.plot(xs, series(k), ls="--", color=f"C{len(left) + i}", label=k)
        ax2.set_ylabel(right_label or ", ".join(right))
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="best", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return write_figure(fig, path)


@_guard
def plot_confusion(
    plt, matrices: dict[str, np.ndarray], classes: Sequence[str], path: Path, title: str
) -> Path:
    """Confusion matrices side by side (rows: true class, columns: predicted class)."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.6 * len(matrices) + 0.6, 3.6), squeeze=False)
    for ax, (name, cm) in zip(axes[0], matrices.items()):
        cm = np.asarray(cm)
        ax.imshow(cm, cmap="Blues")
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                color = "white" if cm[i, j] > cm.max() / 2 else "black"
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", color=color)
        ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        acc = np.trace(cm) / max(cm.sum(), 1)
        ax.set_title(f"{name}: accuracy {acc:.3f}", fontsize=10)
    fig.suptitle(title)
    fig.tight_layout()
    return write_figure(fig, path)


@_guard
def plot_forecast(
    plt,
    times: np.ndarray,
    values: np.ndarray,
    test_start: int,
    forecasts: Sequence[tuple[int, np.ndarray]],
    baselines: dict[str, tuple[int, np.ndarray]],
    path: Path,
    title: str,
    ylabel: str,
    history: int,
    pool: tuple[str, Sequence[tuple[int, np.ndarray]]] | None = None,
) -> Path:
    """The series (``history`` steps before the test part, then the test part) with forecasts.

    ``forecasts``: ``(origin index, H values)`` pairs of the model; ``baselines``: ``{name: (origin, values)}``;
    ``pool``: ``(label, [(origin, values), ...])`` of the forecast a run gives when it is not the model's alone
    (the model's line is then labelled "rnnkit network").
    """
    x = np.arange(len(values)) if times is None else times
    start = max(test_start - history, 0)
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(x[start:test_start], values[start:test_start], color="0.3", lw=1, label="history")
    ax.plot(x[test_start:], values[test_start:], color="black", lw=1.2, label="actual (held out)")
    ax.axvline(x[test_start], color="0.6", ls=":", lw=1)
    own = "rnnkit network" if pool else "rnnkit forecast"
    for i, (origin, f) in enumerate(forecasts):
        ax.plot(x[origin : origin + len(f)], f, color="C3", lw=1.6, label=own if i == 0 else None)
    for i, (origin, f) in enumerate(pool[1] if pool else []):
        ax.plot(x[origin : origin + len(f)], f, color="C2", lw=1.8, label=pool[0] if i == 0 else None)
    styles = iter(["--", "-."])
    for name, (origin, f) in baselines.items():
        ax.plot(x[origin : origin + len(f)], f, ls=next(styles, ":"), lw=1.2, label=name)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title)
    fig.autofmt_xdate()
    fig.tight_layout()
    return write_figure(fig, path)


@_guard
def plot_bits_by_class(
    plt, table: dict[str, dict[str, float]], counts: dict[str, int], path: Path, title: str
) -> Path:
    """Bits per character by character class (``table[model][class]``), with each class's share of the text."""
    classes = list(counts)
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(len(table), 1)
    for i, (name, bits) in enumerate(table.items()):
        ax.bar(np.arange(len(classes)) + i * width, [bits.get(c, np.nan) for c in classes], width, label=name)
    total = max(sum(counts.values()), 1)
    labels = [f"{c}\n{100 * counts[c] / total:.1f}%" for c in classes]
    ax.set_xticks(np.arange(len(classes)) + width * (len(table) - 1) / 2, labels, fontsize=8)
    ax.set_ylabel("bits per character")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return write_figure(fig, path)
