"""rnnkit training: a model-agnostic trainer for backpropagation through time, and gradient-health tools.

* :class:`Trainer` / :class:`TrainerConfig` — full BPTT and truncated BPTT (Williams & Peng's k1, k2),
  clipping, non-finite step skipping with learning-rate back-off, torch optimisers and schedulers, early
  stopping, best checkpoint, resumable safetensors + JSON checkpoints, deterministic seeding.
* :class:`LossOutput` — the protocol: ``model.loss(batch, state) -> LossOutput`` (:mod:`rnnkit.train.protocol`;
  the trainer imports nothing from :mod:`rnnkit.models`, which implements this protocol).
* :class:`Reporter` — the one place that prints and writes (progress bar, CSV, checkpoints, plots).
* :class:`GradientFlowMonitor` / :func:`measure_gradient_flow` — per-time-step ||dL/dh_t|| and per-layer
  gradient norms, with heatmap and curve plots.
"""

from rnnkit.train.checkpoint import read_checkpoint, resolve_checkpoint
from rnnkit.train.monitor import GradientFlowMonitor, measure_gradient_flow, plot_gradient_flow
from rnnkit.train.protocol import LossOutput
from rnnkit.train.reporter import Reporter
from rnnkit.train.state import seed_everything
from rnnkit.train.trainer import Trainer, TrainerConfig, TrainState

__all__ = [
    "Trainer",
    "TrainerConfig",
    "TrainState",
    "LossOutput",
    "Reporter",
    "GradientFlowMonitor",
    "measure_gradient_flow",
    "plot_gradient_flow",
    "seed_everything",
    "read_checkpoint",
    "resolve_checkpoint",
]
