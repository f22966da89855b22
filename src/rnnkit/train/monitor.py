r"""The gradient-flow monitor: per-time-step :math:`\lVert \partial L / \partial h_t \rVert` and per-layer norms.

Vanishing and exploding gradients are a statement about :math:`\partial L / \partial h_t` as ``t`` moves away
from where the loss is taken. The monitor measures exactly that on a fixed probe batch:

* it runs the model inside :func:`rnnkit.use_backend` ``("reference")`` (the Python time loop) and in eval
  mode (no dropout: no random draws, so training is not perturbed);
* it observes each monitored layer's time loop (:meth:`~rnnkit.Recurrent.observe`) to collect every new
  hidden state ``h_t`` (for an LSTM, the ``h`` of ``(h, c)``) — the tensors the next step consumes — and
  asks autograd for
  :math:`\partial L / \partial h_t` of all of them at once (``torch.autograd.grad``: the training gradients in
  ``.grad`` are not touched). This is the *total* derivative through the recurrence, not only the direct
  gradient an output receives from the head;
* it also records the gradient norm of every module's parameters (``encoder.cells.0``, ``head.0``, ...).

Per-time-step norms are Frobenius norms over batch and features; a layer with several cells (layers,
directions) is combined as the root of the sum of squares. :meth:`GradientFlowMonitor.save` writes
``grad_flow.json`` and, with matplotlib, ``grad_flow_heatmap.png`` (time step x training step, log10 colour)
and ``grad_flow_curve.png`` (norm vs time step for some recorded training steps).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit._errors import RnnkitError
from rnnkit.backends import use_backend
from rnnkit.files import write_figure, write_json
from rnnkit.layers import Recurrent

__all__ = ["GradientFlowMonitor", "measure_gradient_flow"]

log = logging.getLogger("rnnkit.train")


def _find_layers(model: nn.Module, layers: list[Recurrent] | None) -> list[Recurrent]:
    if layers is not None:
        return list(layers)
    found = [m for m in model.modules() if isinstance(m, Recurrent)]
    if not found:
        raise RnnkitError(f"no rnnkit Recurrent layer in {type(model).__name__} to monitor")
    return found[:1]  # the first one: the encoder of every rnnkit model


def measure_gradient_flow(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Any], Tensor],
    batch: Any,
    layers: list[Recurrent] | None = None,
) -> dict[str, Any]:
    """One measurement: ``{"time_norms": [T floats], "cell_norms": [[T floats] per cell], "param_norms": {...},
    "loss": float}`` for ``loss_fn(model, batch) -> scalar loss``; see the module docstring."""
    layers = _find_layers(model, layers)
    # records[li][k][t]: the state h_t of cell k of layer li, as the loop's observer saw it
    records: list[list[dict[int, Tensor]]] = [[{} for _ in layer.cells] for layer in layers]

    def keep(store: list[dict[int, Tensor]], k: int, t: int, state) -> None:
        store[k][t] = state[0] if isinstance(state, tuple) else state

    was_training = model.training
    try:
        model.eval()
        with ExitStack() as scope, torch.enable_grad():
            scope.enter_context(use_backend("reference"))
            for li, layer in enumerate(layers):
                scope.enter_context(layer.observe(partial(keep, records[li])))
            loss = loss_fn(model, batch)
        if not isinstance(loss, Tensor) or loss.dim() != 0:
            raise RnnkitError("the gradient monitor needs a scalar loss")
        hs = [cell_rec[t] for layer_rec in records for cell_rec in layer_rec for t in sorted(cell_rec)]
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, hs + [p for _, p in params], allow_unused=True, retain_graph=False)
    finally:
        model.train(was_training)
    n_h = len(hs)
    h_grads = grads[:n_h]
    cell_norms: list[list[float]] = []
    k = 0
    for layer_rec in records:
        for cell_rec in layer_rec:
            T = len(cell_rec)  # in time order, whichever way the direction ran
            cell_norms.append([0.0 if g is None else float(g.norm()) for g in h_grads[k : k + T]])
            k += T
    T = max((len(c) for c in cell_norms), default=0)
    time_norms = [math.sqrt(sum(c[t] ** 2 for c in cell_norms if t < len(c))) for t in range(T)]
    groups: dict[str, float] = {}
    for (name, _), g in zip(params, grads[n_h:]):
        module = name.rsplit(".", 1)[0] if "." in name else name
        sq = 0.0 if g is None else float(g.pow(2).sum())
        groups[module] = groups.get(module, 0.0) + sq
    return {
        "loss": float(loss.detach()),
        "time_norms": time_norms,
        "cell_norms": cell_norms,
        "param_norms": {k: math.sqrt(v) for k, v in groups.items()},
    }


class GradientFlowMonitor:
    """Records :func:`measure_gradient_flow` on a fixed probe batch every ``every`` training steps.

    Example::

        monitor = GradientFlowMonitor(every=50)
        monitor.record(step, model, lambda m, b: m.loss(b).loss, probe_batch)
        monitor.save("runs/x")     # grad_flow.json, grad_flow_heatmap.png, grad_flow_curve.png
    """

    def __init__(self, every: int = 0, layers: list[Recurrent] | None = None):
        self.every = every
        self.layers = layers
        self.records: list[dict[str, Any]] = []

    def due(self, step: int) -> bool:
        return bool(self.every) and (step == 1 or step % self.every == 0)

    def record(self, step: int, model: nn.Module, loss_fn: Callable, batch: Any) -> dict[str, Any]:
        rec = {"step": step, **measure_gradient_flow(model, loss_fn, batch, self.layers)}
        self.records.append(rec)
        return rec

    def state_dict(self) -> dict[str, Any]:
        return {"every": self.every, "records": self.records}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.records = list(state.get("records", []))

    def save(self, directory: str | Path, title: str = "", plots: bool = True) -> list[Path]:
        """Write ``grad_flow.json`` and (with ``plots`` and matplotlib installed) the two PNGs."""
        directory = Path(directory)
        out = [directory / "grad_flow.json"]
        write_json(out[0], {"records": self.records})
        if not self.records or not plots:
            return out
        try:
            out += plot_gradient_flow(self.records, directory, title)
        except ImportError:
            log.info("matplotlib is not installed (extra 'plot'): gradient-flow plots skipped")
        return out


def plot_gradient_flow(records: list[dict[str, Any]], directory: str | Path, title: str = "") -> list[Path]:
    """The heatmap (time step x training step) and the curve (norm vs time step) as PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    directory = Path(directory)
    fig = _heatmap_figure(records, title)
    heat = directory / "grad_flow_heatmap.png"
    _save_fig(fig, heat)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4))
    picks = sorted({0, len(records) // 2, len(records) - 1})
    for j in picks:
        r = records[j]
        ax.semilogy(np.maximum(np.asarray(r["time_norms"]), 1e-30), label=f"step {r['step']}")
    ax.set_xlabel("time step t")
    ax.set_ylabel(r"$\|\partial L/\partial h_t\|$")
    ax.set_title(title or "gradient norm through time")
    ax.legend()
    fig.tight_layout()
    curve = directory / "grad_flow_curve.png"
    _save_fig(fig, curve)
    plt.close(fig)
    return [heat, curve]


def _log_grid(records: list[dict[str, Any]]):
    """log10 of the per-time-step norms as a (T, records) array (NaN where a record is shorter)."""
    import numpy as np

    T = max(len(r["time_norms"]) for r in records)
    grid = np.full((T, len(records)), np.nan)
    for j, r in enumerate(records):
        v = np.asarray(r["time_norms"], dtype=float)
        grid[: len(v), j] = np.log10(np.maximum(v, 1e-30))
    return grid


def _heatmap_figure(records: list[dict[str, Any]], title: str = ""):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = _log_grid(records)
    steps = [r["step"] for r in records]
    fig, ax = plt.subplots(figsize=(7, 4))
    im = ax.imshow(grid, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest")
    ax.set_xlabel("training step")
    ax.set_ylabel("time step t")
    ticks = np.linspace(0, len(steps) - 1, min(len(steps), 8)).astype(int)
    ax.set_xticks(ticks, [str(steps[i]) for i in ticks])
    fig.colorbar(im, ax=ax, label=r"log$_{10}\,\|\partial L/\partial h_t\|$")
    ax.set_title(title or "gradient flow through time")
    fig.tight_layout()
    return fig


def heatmap_image(records: list[dict[str, Any]], title: str = ""):
    """The heat map as a (3, H, W) uint8 array (what TensorBoard's ``add_image`` takes): the PNG's figure
    with matplotlib, else the bare grid in grey (time step 0 at the bottom, brighter = larger norm)."""
    import numpy as np

    try:
        import matplotlib.pyplot as plt

        fig = _heatmap_figure(records, title)
    except ImportError:
        grid = _log_grid(records)[::-1]
        lo, hi = np.nanmin(grid), np.nanmax(grid)
        grey = np.nan_to_num((grid - lo) / (hi - lo) if hi > lo else grid * 0.0)
        return np.repeat((grey * 255).astype(np.uint8)[None], 3, axis=0)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    plt.close(fig)
    return np.ascontiguousarray(rgba[..., :3].transpose(2, 0, 1))


def _save_fig(fig, path: Path) -> None:
    write_figure(fig, path)
