"""The trainer's protocol: what a model (or a ``loss_fn``) hands back to :class:`~rnnkit.train.Trainer`.

The trainer trains any ``nn.Module`` with ``loss(batch, state) -> LossOutput``. It lives in ``rnnkit.train``
so that the trainer depends on nothing in :mod:`rnnkit.models`; the models import it from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

__all__ = ["LossOutput"]


@dataclass
class LossOutput:
    """What ``model.loss(batch, state)`` returns to the trainer.

    ``loss`` is the mean over ``count`` items (tokens, sequences, frames) and is what gets backpropagated;
    ``metrics`` are *sums* over those items (the trainer divides by the summed counts); ``state`` is the
    recurrent state after the batch (carried by truncated BPTT; ``None`` when not meaningful).

    Example::

        def loss(self, batch, state=None):
            logits, state = self(batch["inputs"], state)  # (B, C)
            loss = F.cross_entropy(logits, batch["targets"])
            correct = (logits.argmax(-1) == batch["targets"]).sum().item()
            return LossOutput(loss, count=len(logits), state=state, metrics={"correct": correct})
    """

    loss: Tensor
    count: int
    state: Any = None
    metrics: dict[str, float] = field(default_factory=dict)
