"""The model-agnostic trainer: full and truncated BPTT, clipping, exploding-gradient handling, checkpoints.

Protocol: ``loss_fn(model, batch, state) -> LossOutput`` (default: ``model.loss(batch, state)``, which every
:mod:`rnnkit.models` model provides; a plain scalar tensor is accepted too). The trainer computes and keeps
its state in ``trainer.state``; all printing and file writing goes through one
:class:`~rnnkit.train.Reporter`.

Truncated BPTT (Williams & Peng 1990, "BPTT(k2; k1)"): every ``k1`` steps of a batch the trainer updates,
backpropagating through the last ``k2 >= k1`` steps. Window ``i`` covers the new steps ``[u_{i-1}, u_i)`` with
``u_i = min((i+1) k1, T)``: it runs the model from the detached state at ``u_{i-1} - (k2 - k1)``
(recomputing the ``k2 - k1`` steps it shares with the previous window), takes the loss on the new steps only,
and keeps the detached state at ``u_i - (k2 - k1)`` for the next window. A final chunk shorter than ``k1``
still reaches back ``k2 - k1`` steps before its new ones. Only ``k2`` steps of graph are ever alive, so
memory does not grow with the sequence length; with ``k1 = k2`` this is the usual chunked training
(``k2/k1`` is the recomputation factor otherwise). The state
starts fresh for each batch (each batch holds whole sequences) unless ``stateful=True``, which carries it
across batches (contiguous streams, e.g. a language model reading a book) and resets it at every epoch.

Validation (one history row, the early-stopping count, the "epoch" scheduler step and a checkpoint) happens
at each epoch end and, with ``validate_every = N``, after global steps N, 2N, ... as well. Training ends
after ``epochs``, ``max_steps``, early stopping, or a stop from outside: the ``stop_when`` hook, a
:meth:`Trainer.request_stop` call or ``time_budget``; a stopped run is validated, checkpointed and can be
resumed from its next batch. Under :func:`rnnkit._signals.graceful_signals` (as ``rnnkit train`` runs), a
SIGINT or SIGTERM during ``fit`` ends the step in flight, writes a checkpoint without validating (so that a
resume reproduces the uninterrupted run bitwise) and raises :class:`rnnkit._signals.Interrupted`.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit._errors import RnnkitError
from rnnkit._signals import Interrupted, fitting
from rnnkit.config import config_from_dict, option
from rnnkit.files import load_module_tensors as load_weights
from rnnkit.files import module_tensors as model_tensors
from rnnkit.layers import detach_state
from rnnkit.train import distributed
from rnnkit.train.checkpoint import (
    discard_newer,
    prune,
    read_checkpoint,
    resolve_checkpoint,
    update_pointer,
    write_checkpoint,
)
from rnnkit.train.distributed import DataParallel
from rnnkit.train.monitor import GradientFlowMonitor
from rnnkit.train.protocol import LossOutput
from rnnkit.train.reporter import Reporter
from rnnkit.train.state import get_rng_state, seed_everything, set_rng_state

__all__ = ["TrainerConfig", "TrainState", "Trainer", "trainer_config"]

log = logging.getLogger("rnnkit.train")

LossFn = Callable[[nn.Module, Any, Any], "LossOutput | Tensor"]


@dataclass
class TrainerConfig:
    """How to train: the one training config, which every application's config extends.

    Every field is one CLI flag, TOML key and JSON key (see :mod:`rnnkit.config`). Validation and early
    stopping happen at the end of each epoch and, with ``validate_every = N``, also after steps N, 2N, ...;
    ``early_stopping`` and the ``"epoch"`` scheduler interval count validations. Example::

        TrainerConfig(epochs=5, lr=3e-3, tbptt_k1=50, validate_every=200, time_budget=600)
    """

    epochs: int = option(10, "passes over the training data at most", low=1)
    max_steps: int = option(
        0, "stop after this many steps (batches; the last epoch is then partial); 0 = no limit", low=0
    )
    optimizer: str = option("adam", "a torch.optim class, case-insensitive: adam, adamw, sgd, rmsprop, ...")
    lr: float = option(1e-3, "learning rate", low=1e-12)
    weight_decay: float = option(0.0, "the optimiser's weight decay", low=0.0)
    optimizer_options: dict[str, Any] = option({}, 'more optimiser arguments, e.g. {"momentum": 0.9}')
    scheduler: str | None = option(
        None, "a torch.optim.lr_scheduler class (steplr, cosineannealinglr, ...); none = off (see lr_decay)"
    )
    scheduler_options: dict[str, Any] = option({}, 'the scheduler\'s arguments, e.g. {"step_size": 5}')
    scheduler_interval: str = option(
        "epoch",
        "step the scheduler at every validation (epoch) or every optimiser step",
        choices=("epoch", "step"),
    )
    lr_decay: float = option(
        1.0,
        "multiply the learning rate by this when the validation score stops improving "
        "(ReduceLROnPlateau, when no scheduler is named); 1 = constant",
        low=1e-3,
        high=1.0,
    )
    lr_decay_patience: int = option(
        0, "validations without improvement that lr_decay waits for before it cuts the learning rate", low=0
    )
    clip_norm: float = option(1.0, "clip the global gradient norm to this; 0 = no clipping", low=0.0)
    clip_value: float | None = option(None, "clip every gradient element to [-v, v]; none = off", low=0.0)
    tbptt_k1: int = option(
        0, "truncated BPTT: update every k1 time steps; 0 = full BPTT over the batch", low=0
    )
    tbptt_k2: int = option(0, "truncated BPTT: backpropagate through k2 >= k1 steps; 0 = k1", low=0)
    stateful: bool = option(
        False, "carry the recurrent state across batches (contiguous streams); reset at each epoch"
    )
    skip_nonfinite: bool = option(
        True, "skip an update whose loss or gradient is inf/nan (counted and logged)"
    )
    lr_backoff: float = option(
        1.0, "multiply the learning rate by this after each skipped update; 1 = off", low=1e-9, high=1.0
    )
    max_skips: int = option(50, "give up after this many consecutive skipped updates", low=0)
    early_stopping: int = option(
        0, "stop after this many validations without a better monitored score; 0 = never", low=0
    )
    min_epochs: int = option(
        0, "early stopping ends a run no sooner than after this many epochs; 0 = no minimum", low=0
    )
    monitor: str = option(
        "val_loss", "metric for early stopping and the best checkpoint (train_loss without validation data)"
    )
    monitor_mode: str = option(
        "min", "which direction of the monitored metric is better", choices=("min", "max")
    )
    validate_every: int = option(
        0,
        "validate (and check early stopping) every this many steps as well as at each epoch end; 0 = epoch ends only",
        low=0,
    )
    time_budget: float = option(
        0.0,
        "stop training after this many seconds (at the end of a step, then validate); 0 = no limit",
        low=0.0,
    )
    bn_recalibration: int = option(
        0,
        "before each validation, recompute every batch-norm layer's running mean and variance as the plain "
        "average over this many training batches (the exponential average lags behind fast-moving weights: "
        "precise BN, Wu & Johnson 2021); 0 = keep the exponential averages",
        low=0,
    )
    grad_monitor_every: int = option(0, "record the gradient flow through time every N steps; 0 = off", low=0)
    checkpoint_every: int = option(
        0, "checkpoint every N steps as well as at each validation; 0 = at validations only", low=0
    )
    keep_checkpoints: int = option(2, "newest checkpoints kept on disk (the best one is always kept)", low=1)
    seed: int = option(0, "seed of Python, NumPy and torch at the start of a run (not on resume)", low=0)
    deterministic: bool = option(
        False, "torch.use_deterministic_algorithms (GPU); CPU runs are deterministic anyway"
    )
    device: str = option("cpu", "where the model and batches live")
    progress: bool = option(True, "show a progress bar with loss, throughput and ETA while training")
    log_every: int = option(50, "steps between progress lines when stderr is not a terminal", low=1)
    tensorboard: bool = option(
        False,
        "also write TensorBoard event files into <run>/tensorboard: the metrics.csv columns (loss, metrics, "
        "learning rate, gradient norm, skipped steps), the loss of every step and the gradient-flow heat map",
    )

    def __post_init__(self) -> None:
        if self.clip_norm is None:  # the old spelling of "no clipping"
            self.clip_norm = 0.0

    def check(self) -> None:
        if self.tbptt_k2 and not self.tbptt_k1:
            raise RnnkitError("tbptt_k2 needs tbptt_k1 (the update interval)")
        if self.tbptt_k1 and self.tbptt_k2 and self.tbptt_k2 < self.tbptt_k1:
            raise RnnkitError(f"tbptt_k2 must be >= tbptt_k1, got k1={self.tbptt_k1}, k2={self.tbptt_k2}")
        if self.clip_value is not None and not self.clip_value > 0:
            raise RnnkitError(f"clip_value must be positive or None, got {self.clip_value}")
        if self.tensorboard:
            from rnnkit.train.reporter import check_tensorboard

            check_tensorboard()


def trainer_config(cfg: TrainerConfig, **changes: Any) -> TrainerConfig:
    """The :class:`TrainerConfig` part of ``cfg`` (an application's config extends it), with ``changes``.

    A field the application leaves automatic (``None``) where the trainer needs a value keeps the trainer's
    default.
    """
    values = {
        f.name: getattr(cfg, f.name)
        for f in dataclasses.fields(TrainerConfig)
        if getattr(cfg, f.name) is not None or f.default is None
    }
    return TrainerConfig(**{**values, **changes})


@dataclass
class TrainState:
    """Counters and history; saved in every checkpoint."""

    epoch: int = 0  # completed epochs
    step: int = 0  # batches trained on
    batch_in_epoch: int = 0  # batches of the current epoch already trained on
    updates: int = 0  # optimiser updates attempted (several per batch with truncated BPTT)
    skipped: int = 0  # updates skipped for a non-finite loss or gradient
    consecutive_skips: int = 0
    best_value: float | None = None  # best value of config.monitor so far
    best_checkpoint: str | None = None
    bad_epochs: int = 0  # validations since the monitor last improved
    checkpoints: int = 0  # checkpoints written
    stopped_early: bool = False
    stop_reason: str | None = None  # why the last fit ended before its epochs: early_stopping, max_steps, ...
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per validation (epoch end)
    epoch_sums: dict[str, float] = field(default_factory=dict)  # running sums since the last validation


def _find_class(module, name: str, what: str):
    table = {k.lower(): getattr(module, k) for k in dir(module) if isinstance(getattr(module, k), type)}
    cls = table.get(name.lower())
    if cls is None:
        raise RnnkitError(f"unknown {what} {name!r}")
    return cls


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


class Trainer:
    """Train any ``nn.Module`` whose ``loss(batch, state)`` (or a given ``loss_fn``) returns a :class:`LossOutput`.

    Args:
        model: the model (moved to ``config.device``).
        config: a :class:`TrainerConfig` (or its dict).
        out_dir: run directory for ``metrics.csv``, ``history.json``, ``checkpoints/`` and the gradient-flow
            files; ``None`` writes nothing. Ignored when ``reporter`` is given.
        reporter: the :class:`Reporter` that does all output (default: one for ``out_dir``).
        loss_fn: ``loss_fn(model, batch, state) -> LossOutput | scalar`` instead of ``model.loss``.
        optimizer, scheduler: ready-made torch objects instead of the ones the config names.
        time_keys, lengths_key: batch keys cut along time by truncated BPTT (default: the model's).
        stop_when: a hook ``stop_when(trainer) -> bool | str`` asked after every step; a true answer (a
            string names the reason) ends training after that step: the steps since the last validation
            are validated and checkpointed, then :meth:`fit` returns. :meth:`request_stop` does the same
            from anywhere (a callback, another thread). ``config.time_budget`` is such a hook built in.

    Data: ``train_data`` is an iterable of batches, iterated once per epoch, or a callable ``epoch ->
    iterable``. Batches are dicts (or tuples in the model's ``batch_keys`` order) of tensors. For a resume
    in the middle of an epoch to be exact, the data's randomness must come from its own generator or be
    drawn when iteration starts (a ``DataLoader(shuffle=True)`` is fine; so is a callable seeded by epoch).

    Example::

        trainer = Trainer(model, TrainerConfig(epochs=5, lr=3e-3, tbptt_k1=50), out_dir="runs/lm")
        history = trainer.fit(train_batches, val_batches)            # ... interrupted? then:
        trainer.fit(train_batches, val_batches, resume=True)         # continues from runs/lm/checkpoints
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainerConfig | dict[str, Any] | None = None,
        *,
        out_dir: str | Path | None = None,
        reporter: Reporter | None = None,
        loss_fn: LossFn | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
        time_keys: tuple[str, ...] | None = None,
        lengths_key: str | None = None,
        stop_when: Callable[[Trainer], bool | str | None] | None = None,
    ):
        if isinstance(config, TrainerConfig) and type(config) is not TrainerConfig:
            config = trainer_config(config)  # an application's config: its trainer part
        self.config = config_from_dict(TrainerConfig, config if config is not None else {}, "trainer config")
        c = self.config
        self.device = torch.device(c.device)
        self.model = model.to(self.device)
        self.loss_fn = loss_fn
        self.reporter = reporter or Reporter(out_dir, progress=c.progress, log_every=c.log_every)
        self.time_keys = tuple(time_keys if time_keys is not None else getattr(model, "time_keys", ()))
        self.lengths_key = lengths_key or getattr(model, "lengths_key", "lengths")
        if c.tbptt_k1 or c.stateful:
            ok = getattr(model, "supports_tbptt", bool(self.time_keys)) and self.time_keys
            if not ok:
                what = "truncated BPTT" if c.tbptt_k1 else "stateful training"
                raise RnnkitError(
                    f"{what} needs a model whose targets are aligned with its inputs and whose state can be "
                    f"carried forward (LanguageModel, SequenceTagger, StreamingPredictor with a unidirectional "
                    f"encoder); {type(model).__name__} does not support it"
                )
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise RnnkitError(f"{type(model).__name__} has no trainable parameters")
        if optimizer is None:
            cls = _find_class(torch.optim, c.optimizer, "optimizer")
            try:
                optimizer = cls(params, lr=c.lr, weight_decay=c.weight_decay, **c.optimizer_options)
            except TypeError as e:
                raise RnnkitError(f"bad optimizer_options for {c.optimizer}: {e}") from None
        self.optimizer = optimizer
        if scheduler is None and c.scheduler:
            cls = _find_class(torch.optim.lr_scheduler, c.scheduler, "scheduler")
            try:
                scheduler = cls(self.optimizer, **c.scheduler_options)
            except TypeError as e:
                raise RnnkitError(f"bad scheduler_options for {c.scheduler}: {e}") from None
        elif scheduler is None and c.lr_decay < 1:
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, factor=c.lr_decay, patience=c.lr_decay_patience, mode=c.monitor_mode
            )
        self.scheduler = scheduler
        self.state = TrainState()
        self.monitor = GradientFlowMonitor(c.grad_monitor_every)
        self.probe_batch: Any = None
        self._carried: Any = None
        self._epoch_rng: dict[str, Any] | None = None
        self._grad_norm_sum = 0.0
        self._grad_norm_n = 0
        self.stop_when = stop_when
        self._stop_request: str | None = None
        self._signal: int | None = None  # SIGINT/SIGTERM received during fit (see rnnkit._signals)
        self._checkpoint_step = -1  # step of the last checkpoint written
        # fit(resume=None) resumes from here (set by the applications when `rnnkit train --resume` is given)
        self.resume_from: str | Path | None = None
        self._fit_t0 = time.perf_counter()
        self._period_t0 = time.perf_counter()
        self._train_data: Any = None  # fit's training data (bn_recalibration reads it again)
        # distributed: an initialised process group of 2+ ranks makes this a data-parallel trainer (DDP, rows of
        # every batch sharded over the ranks, rank 0 writes); see rnnkit.train.distributed
        self.dist: DataParallel | None = None
        ctx = distributed.current()
        if ctx is not None:
            self.dist = DataParallel(ctx, self.model, self.compute_loss, self.device, self.time_keys)
            if not ctx.is_main:
                self.reporter.is_main = self.reporter.progress = False
        self._carried_rows = 0  # distributed + stateful: the global number of streams carried
        self._global_view: dict[str, Any] | None = None  # distributed: what a checkpoint stores instead

    @property
    def is_main(self) -> bool:
        """Whether this process writes (always, unless it is a rank other than 0 of a distributed run)."""
        return self.dist is None or self.dist.is_main

    def request_stop(self, reason: str = "requested") -> None:
        """End training after the step in flight (validated and checkpointed like an epoch end)."""
        self._stop_request = reason

    def _stop_reason(self) -> str | None:
        """Why training must stop after this step, or None: a request, the stop hook or the time budget."""
        if self.stop_when is not None:
            answer = self.stop_when(self)
            if answer:
                return answer if isinstance(answer, str) else "stop_when"
        if self._stop_request:
            return self._stop_request
        budget = self.config.time_budget
        if budget and time.perf_counter() - self._fit_t0 >= budget:
            return "time_budget"
        return None

    # -- one loss evaluation ------------------------------------------------------------------------------
    def _as_dict(self, batch: Any) -> Any:
        if isinstance(batch, (tuple, list)) and hasattr(self.model, "batch_keys"):
            keys = self.model.batch_keys
            if len(batch) > len(keys):
                raise RnnkitError(
                    f"a batch tuple has at most {len(keys)} entries {list(keys)}, got {len(batch)}"
                )
            return dict(zip(keys, batch))
        return batch

    def compute_loss(self, batch: Any, state: Any = None) -> LossOutput:
        """``loss_fn(model, batch, state)`` as a :class:`LossOutput`."""
        if self.loss_fn is not None:
            out = self.loss_fn(self.model, batch, state)
        elif hasattr(self.model, "loss"):
            out = self.model.loss(batch, state)
        else:
            raise RnnkitError(f"{type(self.model).__name__} has no loss(batch, state); pass loss_fn=")
        if isinstance(out, Tensor):
            out = LossOutput(out, 1)
        if not isinstance(out, LossOutput) or not isinstance(out.loss, Tensor) or out.loss.dim() != 0:
            raise RnnkitError("the loss function must return a scalar tensor or a LossOutput")
        return out

    def _train_loss(self, batch: Any, state: Any = None) -> LossOutput:
        """:meth:`compute_loss` for training: through DDP in a distributed run, so that it syncs the gradients."""
        if self.dist is None:
            return self.compute_loss(batch, state)
        return self.dist.ddp(batch, state)

    # -- updates ------------------------------------------------------------------------------------------
    def _skip(self, reason: str) -> None:
        s = self.state
        s.skipped += 1
        s.consecutive_skips += 1
        self.optimizer.zero_grad(set_to_none=True)
        b = self.config.lr_backoff
        if b < 1.0:
            for g in self.optimizer.param_groups:
                g["lr"] *= b
            if self.scheduler is not None and hasattr(self.scheduler, "base_lrs"):
                self.scheduler.base_lrs = [lr * b for lr in self.scheduler.base_lrs]
            reason += f"; learning rate backed off to {self.optimizer.param_groups[0]['lr']:.3g}"
        self.reporter.on_skip(self, reason)
        if s.consecutive_skips > self.config.max_skips:
            raise RnnkitError(
                f"training diverged: {s.consecutive_skips} consecutive updates had a non-finite loss or "
                "gradient (lower the learning rate or clip harder)"
            )

    def _update(self, loss: Tensor, count: int = 1) -> bool:
        """Backward, clip, step. Returns False if the update was skipped. ``count``: the items ``loss`` averages."""
        c = self.config
        self.state.updates += 1
        local_loss = loss.detach()
        finite = bool(torch.isfinite(local_loss))
        if self.dist is not None:
            # all ranks skip together; weighted so that DDP's mean is the global batch's
            loss, finite = self.dist.weigh_loss(loss, count, finite)
        if c.skip_nonfinite and not finite:
            self._skip(f"non-finite loss ({float(local_loss):.3g})")
            return False
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        if c.clip_norm:
            norm = nn.utils.clip_grad_norm_(params, c.clip_norm)
        else:
            norm = nn.utils.get_total_norm([p.grad for p in params])
        if c.skip_nonfinite and not bool(torch.isfinite(norm)):
            self._skip("non-finite gradient")
            return False
        if c.clip_value is not None:
            nn.utils.clip_grad_value_(params, c.clip_value)
        self.optimizer.step()
        if self.scheduler is not None and c.scheduler_interval == "step":
            self.scheduler.step()
        self.state.consecutive_skips = 0
        self._grad_norm_sum += float(norm)
        self._grad_norm_n += 1
        return True

    def _slice(self, batch: dict[str, Any], a: int, e: int) -> dict[str, Any]:
        d = dict(batch)
        for k in self.time_keys:
            if d.get(k) is not None:
                d[k] = batch[k][:, a:e]
        lengths = batch.get(self.lengths_key)
        if lengths is not None:
            d[self.lengths_key] = (torch.as_tensor(lengths) - a).clamp(0, e - a)
        return d

    def train_batch(self, batch: Any) -> tuple[float, int, dict[str, float]]:
        """One batch: forward, backward and update(s). Returns ``(loss sum, item count, metric sums)``."""
        c = self.config
        real = True
        if self.dist is not None:  # this rank's rows of the global batch
            batch = self._as_dict(batch)
            rows = self.dist.batch_rows(batch)
            if c.stateful and rows is not None and rows < self.dist.ctx.world_size:
                raise RnnkitError(
                    f"stateful training over {self.dist.ctx.world_size} processes needs at least as many "
                    f"streams (batch rows), got {rows}"
                )
            self._carried_rows = rows or 0
            batch, real = self.dist.shard(batch)
        batch = self._as_dict(_to_device(batch, self.device))
        start = self._carried if c.stateful else None
        if not c.tbptt_k1:
            out = self._train_loss(batch, start)
            count = out.count if real else 0
            applied = self._update(out.loss, count)
            if c.stateful:
                self._carried = detach_state(out.state)
            if not applied or not real:  # a skipped update does not count in the epoch's loss and metrics
                return 0.0, 0, {k: 0.0 for k in out.metrics} if applied else {}
            return float(out.loss.detach()) * out.count, out.count, out.metrics
        if not isinstance(batch, dict) or not self.time_keys or batch.get(self.time_keys[0]) is None:
            raise RnnkitError(f"truncated BPTT needs dict batches with the time keys {list(self.time_keys)}")
        T = batch[self.time_keys[0]].shape[1]
        k1, k2 = c.tbptt_k1, c.tbptt_k2 or c.tbptt_k1
        ups = list(range(k1, T, k1)) + [T]  # update points u_i
        state_at_s = start
        total, count, metrics = 0.0, 0, {}
        final = None
        for i, u in enumerate(ups):
            first_loss = ups[i - 1] if i else 0  # the loss covers the new steps [first_loss, u)
            s = max(0, first_loss - (k2 - k1))  # the window starts k2 - k1 steps earlier
            carry = max(0, u - (k2 - k1)) if i + 1 < len(ups) else None  # next window's start
            cuts = sorted({s, first_loss, u} | ({carry} if carry is not None else set()))
            state = state_at_s
            next_start = state_at_s if carry == s else None
            parts: list[LossOutput] = []
            for a, e in zip(cuts, cuts[1:]):
                out = self._train_loss(self._slice(batch, a, e), state)
                if out.state is None:
                    raise RnnkitError(f"{type(self.model).__name__}.loss returned no state: cannot carry it")
                if a >= first_loss:
                    parts.append(out)
                state = out.state
                if e == carry:
                    next_start = detach_state(state)
            n = sum(p.count for p in parts)
            # distributed: every rank takes part in every update (a collective), even with no items
            if n or self.dist is not None:
                loss = parts[0].loss if len(parts) == 1 else sum(p.loss * p.count for p in parts) / max(n, 1)
                n = n if real else 0
                if self._update(loss, n):  # a skipped update does not count in the epoch's loss and metrics
                    total += float(loss.detach()) * n
                    count += n
                    for p in parts:
                        for k, v in p.metrics.items():
                            metrics[k] = metrics.get(k, 0.0) + (v if real else 0.0)
            final = state
            state_at_s = next_start
        if c.stateful:
            self._carried = detach_state(final)
        return total, count, metrics

    # -- evaluation -----------------------------------------------------------------------------------------
    def evaluate(self, data: Iterable | Callable[[int], Iterable]) -> dict[str, float]:
        """Mean loss and metrics over ``data`` in eval mode (state carried across batches if ``stateful``).

        The random-number generators are left as they were (a shuffling validation loader draws from them),
        so validating more or less often never changes what training does.
        """
        rng = get_rng_state()
        if callable(data) and not hasattr(data, "__iter__"):
            data = data(self.state.epoch)
        was_training = self.model.training
        self.model.eval()
        total, n, sums = 0.0, 0, {}
        carried = None
        try:
            with torch.no_grad():
                for batch in data:
                    real = True
                    if self.dist is not None:  # this rank's rows; summed over ranks below
                        batch, real = self.dist.shard(self._as_dict(batch))
                    batch = self._as_dict(_to_device(batch, self.device))
                    out = self.compute_loss(batch, carried if self.config.stateful else None)
                    if self.config.stateful:
                        carried = out.state
                    w = 1.0 if real else 0.0
                    total += float(out.loss) * out.count * w
                    n += out.count if real else 0
                    for k, v in out.metrics.items():
                        sums[k] = sums.get(k, 0.0) + v * w
        finally:
            self.model.train(was_training)
            set_rng_state(rng)
        if self.dist is not None:
            both = self.dist.sum_values({"__loss__": total, "__n__": float(n), **sums})
            total, n = both.pop("__loss__"), int(both.pop("__n__"))
            sums = both
        if n == 0:
            raise RnnkitError("evaluation data yielded no items")
        return {"loss": total / n, **{k: v / n for k, v in sums.items()}}

    def recalibrate_batch_norm(self, data: Iterable | Callable[[int], Iterable], batches: int) -> int:
        """Set every batch-norm layer's running mean and variance to their plain average over the first
        ``batches`` batches of ``data`` (forward passes without gradients, the rest of the model in eval
        mode), as :func:`torch.optim.swa_utils.update_bn` does; returns the number of batches read.

        Nothing is trained and the random-number generators are left as they were, so training goes on
        exactly as without it. In a distributed run each rank reads its rows and the statistics are averaged
        over the ranks.
        """
        bns = [
            m
            for m in self.model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
        ]
        if not bns or batches <= 0:
            return 0
        rng = get_rng_state()
        if callable(data) and not hasattr(data, "__iter__"):
            data = data(self.state.epoch)
        batches_in = iter(data)
        first = next(batches_in, None)
        if first is None:  # no data: the statistics stay as they are
            set_rng_state(rng)
            return 0
        was_training = self.model.training
        momenta = [m.momentum for m in bns]
        self.model.eval()
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches read
            m.train()
        read = 0
        try:
            with torch.no_grad():
                for batch in itertools.chain([first], batches_in):
                    if read >= batches:
                        break
                    if self.dist is not None:
                        batch, _ = self.dist.shard(self._as_dict(batch))
                    self.compute_loss(self._as_dict(_to_device(batch, self.device)))
                    read += 1
        finally:
            for m, mom in zip(bns, momenta):
                m.momentum = mom
            self.model.train(was_training)
            set_rng_state(rng)
        if self.dist is not None:
            self.dist.average_tensors([t for m in bns for t in (m.running_mean, m.running_var)])
        return read

    # -- the loop ---------------------------------------------------------------------------------------------
    def fit(
        self,
        train_data: Iterable | Callable[[int], Iterable],
        val_data: Iterable | Callable[[int], Iterable] | None = None,
        resume: bool | str | Path | None = None,
        probe_batch: Any = None,
    ) -> list[dict[str, Any]]:
        """Train for ``config.epochs`` (or ``max_steps``, or until a stop); returns the history (a row per validation).

        ``resume``: ``True`` continues from the reporter's ``checkpoints/latest``; a path names a checkpoint
        (directory, checkpoint root or pointer file). ``probe_batch``: the batch the gradient monitor
        measures (default: the first training batch).
        """
        c = self.config
        self._fit_t0 = time.perf_counter()
        self._stop_request = None
        self._signal = None
        self.state.stop_reason = None
        if resume is None and self.resume_from is not None:
            resume = self.resume_from
        if resume:
            if resume is True:
                root = self.reporter.checkpoint_dir
                if root is None and self.dist is not None and self.reporter.out_dir is not None:
                    root = self.reporter.out_dir / "checkpoints"  # another rank: read rank 0's checkpoints
                if root is None:
                    raise RnnkitError("resume=True needs an out_dir (or pass the checkpoint path)")
                resume = root
            self.load_checkpoint(resume)
            if self.is_main:
                discard_newer(resolve_checkpoint(resume))
            if self.dist is not None:
                distributed.barrier()
        else:
            seed_everything(c.seed, c.deterministic)
        if c.bn_recalibration and hasattr(train_data, "__next__"):  # an iterator: read once, then empty
            raise RnnkitError(
                "bn_recalibration reads training batches again before each validation: expected training data "
                f"that can be iterated more than once (a list, a DataLoader or a callable epoch -> batches), got "
                f"a one-pass {type(train_data).__name__}"
            )
        self._train_data = train_data
        if probe_batch is not None:
            self.probe_batch = self._as_dict(_to_device(probe_batch, self.device))
        total = None
        n_batches = None
        if not callable(train_data) or hasattr(train_data, "__len__"):
            try:
                n_batches = len(train_data)  # type: ignore[arg-type]
                total = n_batches * c.epochs
            except TypeError:
                pass
        if c.max_steps:
            total = min(total, c.max_steps) if total else c.max_steps
        self.reporter.on_fit_start(self, total)
        try:
            with fitting(self):
                while self.state.epoch < c.epochs and not self.state.stopped_early:
                    if self._run_epoch(train_data, val_data):
                        break
                if self.dist is not None:
                    _, self._signal = self.dist.agree_stop(None, self._signal)
                if self._signal is not None:  # arrived during the last validation
                    self._interrupt()
        finally:
            self.reporter.on_fit_end(self)
        s = self.state
        # diverged: the run ends in a streak of skipped updates that is at least a quarter of all of them (a
        # few bad batches in a long run are not divergence; a model that only produces inf/nan is)
        if c.skip_nonfinite and s.consecutive_skips >= 2 and 4 * s.consecutive_skips >= s.updates:
            what = (
                f"all {s.updates}"
                if s.skipped == s.updates
                else f"the last {s.consecutive_skips} of {s.updates}"
            )
            raise RnnkitError(
                f"training diverged: {what} updates had a non-finite loss or gradient and were skipped "
                "(lower the learning rate or clip the gradient norm)"
            )
        return self.state.history

    def _run_epoch(self, train_data, val_data) -> bool:
        """One epoch (or its remainder after a resume). Returns True when training must stop."""
        c, s = self.config, self.state
        skip = s.batch_in_epoch
        resume_rng = None
        if skip == 0:
            self._epoch_rng = get_rng_state()
            if c.stateful:
                self._carried = None
            s.epoch_sums = {}
            self._grad_norm_sum, self._grad_norm_n = 0.0, 0
        else:
            if self._epoch_rng is None:
                raise RnnkitError("cannot resume mid-epoch: the checkpoint has no epoch-start RNG state")
            resume_rng = get_rng_state()
            set_rng_state(self._epoch_rng)  # replay the data order of this epoch
        data = (
            train_data(s.epoch)
            if callable(train_data) and not hasattr(train_data, "__iter__")
            else train_data
        )
        self.model.train()
        self._period_t0 = time.perf_counter()
        ran = 0
        stop: str | None = None
        for i, batch in enumerate(data):
            if i < skip:
                continue
            if resume_rng is not None:
                set_rng_state(resume_rng)
                resume_rng = None
            if self.probe_batch is None and self.monitor.every:
                self.probe_batch = self._as_dict(_to_device(batch, self.device))
            loss_sum, n, metrics = self.train_batch(batch)
            ran += 1
            s.batch_in_epoch = i + 1
            s.step += 1
            sums = s.epoch_sums
            sums["loss"] = sums.get("loss", 0.0) + loss_sum
            sums["_n"] = sums.get("_n", 0.0) + n
            sums["_steps"] = sums.get("_steps", 0.0) + 1
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v
            self.reporter.on_step(self, loss_sum / n if n else float("nan"), n)
            if self.monitor.due(s.step) and self.is_main:
                self.monitor.record(s.step, self.model, self._probe_loss, self.probe_batch)
            if c.checkpoint_every and s.step % c.checkpoint_every == 0:
                self._save_checkpoint(best=False)
            if c.max_steps and s.step >= c.max_steps:
                stop = "max_steps"
            else:
                stop = self._stop_reason()
            if self.dist is not None:  # one rank stops (or is interrupted): all do
                stop, self._signal = self.dist.agree_stop(stop, self._signal)
            if self._signal is not None:
                self._interrupt()
            if stop:
                break
            if c.validate_every and s.step % c.validate_every == 0:
                self._end_period(val_data)
                if s.stopped_early:
                    break
        if ran == 0 and skip == 0:
            raise RnnkitError("train_data yielded no batches")
        if stop and stop != "max_steps":
            # stopped from outside: validate and checkpoint the steps so far, but leave the epoch open, so
            # that fit(resume=True) goes on with its next batch
            if s.epoch_sums.get("_steps"):
                self._end_period(val_data)
        else:
            self._end_epoch(val_data)
        if stop:
            s.stop_reason = stop
            if stop not in ("max_steps",):
                self.reporter.message(f"training stopped after step {s.step}: {stop}")
        elif s.stopped_early:
            s.stop_reason = "early_stopping"
        return bool(stop) or s.stopped_early

    def _interrupt(self) -> None:
        """A signal arrived: checkpoint the steps so far (no validation, so a resumed run is bitwise the
        run that was never stopped) and raise :class:`rnnkit._signals.Interrupted`."""
        s = self.state
        if self._checkpoint_step != s.step:
            self._save_checkpoint(best=False)
        raise Interrupted(self._signal or signal.SIGINT, f"after step {s.step}")

    def _probe_loss(self, model, batch) -> Tensor:
        return self.compute_loss(batch, None).loss

    def _end_epoch(self, val_data) -> None:
        """The epoch is over: validate the steps since the last validation (if any), count the epoch."""
        s = self.state
        if s.epoch_sums.get("_steps"):
            self._end_period(val_data, epoch_done=True)
        else:  # the epoch ended right after a validation
            s.epoch += 1
            s.batch_in_epoch = 0

    def _end_period(self, val_data, epoch_done: bool = False) -> None:
        """A validation: one history row for the steps since the last one; early stopping; checkpoint."""
        c, s = self.config, self.state
        seconds = time.perf_counter() - self._period_t0
        sums = s.epoch_sums if self.dist is None else self.dist.sum_values(s.epoch_sums)
        n = sums.get("_n", 0.0) or float("nan")
        row: dict[str, Any] = {"epoch": s.epoch + 1, "step": s.step}
        row["train_loss"] = sums.get("loss", float("nan")) / n
        for k, v in sums.items():
            if k not in ("loss", "_n", "_steps"):
                row[f"train_{k}"] = v / n
        if c.bn_recalibration and self._train_data is not None:
            self.recalibrate_batch_norm(self._train_data, c.bn_recalibration)
        if val_data is not None:
            for k, v in self.evaluate(val_data).items():
                row[f"val_{k}"] = v
        row["lr"] = self.optimizer.param_groups[0]["lr"]
        row["grad_norm"] = self._grad_norm_sum / self._grad_norm_n if self._grad_norm_n else float("nan")
        row["skipped"] = s.skipped
        row["seconds"] = round(seconds, 3)
        key = c.monitor if c.monitor in row else ("train_loss" if c.monitor == "val_loss" else None)
        if key is None:
            raise RnnkitError(f"monitor {c.monitor!r} is not among the epoch metrics {sorted(row)}")
        value = row[key]
        if self.scheduler is not None and c.scheduler_interval == "epoch":
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(value)
            else:
                self.scheduler.step()
        better = math.isfinite(value) and (
            s.best_value is None
            or (value < s.best_value if c.monitor_mode == "min" else value > s.best_value)
        )
        if better:
            s.best_value = value
            s.bad_epochs = 0
        else:
            s.bad_epochs += 1
        s.history.append(row)
        if epoch_done:
            s.epoch += 1
            s.batch_in_epoch = 0
        s.epoch_sums = {}
        self._grad_norm_sum, self._grad_norm_n = 0.0, 0
        self._period_t0 = time.perf_counter()
        if c.early_stopping and s.bad_epochs >= c.early_stopping and s.epoch >= c.min_epochs:
            s.stopped_early = True
        self.reporter.on_epoch_end(self, row)
        if self.monitor.records:
            self.reporter.on_grad_flow(self, self.monitor, final=False)
        self._save_checkpoint(best=better)
        if s.stopped_early:
            self.reporter.message(
                f"early stopping: {c.monitor} has not improved for {s.bad_epochs} validations"
            )

    # -- checkpoints ----------------------------------------------------------------------------------------
    def _save_checkpoint(self, best: bool) -> None:
        """A checkpoint through the reporter; in a distributed run, of all ranks' state, written by rank 0."""
        if self.dist is None:
            self.reporter.save_checkpoint(self, best=best)
            return
        # every rank takes part in gathering the streams' states and summing the period's sums
        self._global_view = {
            "carried": self.dist.gather_state(self._carried, self._carried_rows),
            "epoch_sums": self.dist.sum_values(self.state.epoch_sums),
        }
        try:
            self.reporter.save_checkpoint(self, best=best)  # writes on rank 0 only
        finally:
            self._global_view = None
        distributed.barrier()  # the checkpoint is complete before any rank goes on
        self._checkpoint_step = self.state.step

    def state_tree(self) -> dict[str, Any]:
        """Everything a resume needs besides the weights (see :mod:`rnnkit.train.checkpoint`)."""
        if self._global_view is not None:  # distributed: the state of the whole run, not of this rank
            tree = self._local_state_tree()
            tree["carried"] = self._global_view["carried"]
            tree["trainer"]["epoch_sums"] = self._global_view["epoch_sums"]
            return tree
        return self._local_state_tree()

    def _local_state_tree(self) -> dict[str, Any]:
        return {
            "trainer": dataclasses.asdict(self.state),
            "config": dataclasses.asdict(self.config),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": get_rng_state(),
            "epoch_rng": self._epoch_rng,
            "carried": self._carried,
            "monitor": self.monitor.state_dict(),
            "grad_norm": [self._grad_norm_sum, self._grad_norm_n],
        }

    def write_checkpoint(self, root: str | Path, best: bool = False) -> Path:
        """Write a checkpoint under ``root`` and point ``latest`` (and ``best``) at it; prune old ones."""
        s = self.state
        s.checkpoints += 1
        name = f"ckpt-{s.checkpoints:06d}-step-{s.step:08d}"
        if best:
            s.best_checkpoint = name
        path = write_checkpoint(root, name, self.model, self.state_tree())
        self._checkpoint_step = s.step
        update_pointer(root, "latest", path)
        if best:
            update_pointer(root, "best", path, {"monitor": self.config.monitor, "value": s.best_value})
        prune(root, self.config.keep_checkpoints, {s.best_checkpoint} if s.best_checkpoint else set())
        return path

    def load_checkpoint(self, path: str | Path, weights_only: bool = False) -> None:
        """Restore model, optimiser, scheduler, RNG and counters from a checkpoint — all or nothing.

        The checkpoint must come from the same model class and config; otherwise (and for a damaged
        checkpoint) a :class:`~rnnkit.RnnkitError` is raised and nothing is changed.
        """
        ck = read_checkpoint(path)
        name = ck.model_info.get("model")
        if name != type(self.model).__name__:
            raise RnnkitError(
                f"{ck.path}: checkpoint of a {name}, but this trainer's model is a {type(self.model).__name__}"
            )
        if hasattr(self.model, "to_config") and ck.model_info.get("config") != self.model.to_config():
            theirs, ours = ck.model_info.get("config", {}), self.model.to_config()
            diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
            raise RnnkitError(f"{ck.path}: checkpoint of a {name} with another config (differs in {diff})")
        backup_w = {k: v.detach().clone() for k, v in model_tensors(self.model)[0].items()}
        backup_o = self.optimizer.state_dict()
        backup_o = {
            "state": {k: dict(v) for k, v in backup_o["state"].items()},
            "param_groups": backup_o["param_groups"],
        }
        try:
            load_weights(self.model, ck.model_tensors, ck.model_aliases, str(ck.path))
            if weights_only:
                return
            st = ck.state
            self.optimizer.load_state_dict(st["optimizer"])
            if self.scheduler is not None and st.get("scheduler") is not None:
                self.scheduler.load_state_dict(st["scheduler"])
            new_state = config_from_dict(TrainState, st["trainer"])
        except Exception as e:
            load_weights(self.model, backup_w)
            self.optimizer.load_state_dict(backup_o)
            if isinstance(e, RnnkitError):
                raise
            raise RnnkitError(f"{ck.path}: checkpoint does not fit this trainer: {e}") from None
        self.state = new_state
        self._checkpoint_step = new_state.step
        self._epoch_rng = st.get("epoch_rng")
        self._carried = _to_device(st.get("carried"), self.device)
        if self.dist is not None:
            # the checkpoint holds the whole run: take this rank's part, at any world size
            self._carried = self.dist.split_state(self._carried)
            if not self.dist.is_main:  # rank 0 alone carries the period's sums (summed over ranks later)
                new_state.epoch_sums = {k: 0.0 for k in new_state.epoch_sums}
        self.monitor.load_state_dict(st.get("monitor") or {})
        gn = st.get("grad_norm") or [0.0, 0]
        self._grad_norm_sum, self._grad_norm_n = float(gn[0]), int(gn[1])
        set_rng_state(st["rng"])

    @property
    def best_checkpoint(self) -> Path | None:
        root = self.reporter.checkpoint_dir
        if root is None or self.state.best_checkpoint is None:
            return None
        return root / self.state.best_checkpoint

    def restore_best(self) -> None:
        """Load the best checkpoint's weights into the model (optimiser and counters untouched)."""
        root = self.reporter.checkpoint_dir
        if root is None:
            raise RnnkitError("no checkpoints are written without an out_dir")
        self.load_checkpoint(resolve_checkpoint(root, "best"), weights_only=True)
