"""Data-parallel training over several processes: ``torchrun -m rnnkit train`` and ``rnnkit train --nproc N``.

One process per rank (gloo on CPU, NCCL on CUDA), each holding a full copy of the model, wrapped in
:class:`torch.nn.parallel.DistributedDataParallel` (DDP), which averages the gradients across ranks during
``backward``. The :class:`~rnnkit.train.Trainer` finds an initialised process group itself and then:

* **shards every batch by rows.** Every rank builds the same *global* batch (same data, same seed, same
  order) and keeps its contiguous slice of rows ``[B r / W, B (r + 1) / W)`` (``B`` rows, rank ``r`` of
  ``W``): the ranks' shards are disjoint and together are the global batch. ``batch_size`` therefore stays
  the global batch size, and a step of ``W`` processes trains on the same items as one process does.
  A rank whose slice is empty (a last batch with fewer than ``W`` rows) runs one row with weight 0, so that
  every rank takes part in every collective operation.
* **weights each rank's loss** by ``n_r W / N`` (``n_r`` items on rank ``r``, ``N = sum n_r``), so that
  DDP's mean of the ranks' gradients is the gradient of the global batch's mean loss, exactly as one process
  computes it (up to float rounding). The same all-reduce makes every rank skip a non-finite update together.
* **partitions stateful streams** (truncated BPTT over contiguous streams, e.g. textgen): a batch's rows are
  streams, so each rank carries the recurrent state of its own streams. A checkpoint stores the state of all
  streams (gathered along the batch dimension, dimension 1 of rnnkit's ``(L*D, B, n)`` state layout), and the
  training sums of the period so far summed over ranks; a resume splits them again for its own world size,
  which may differ from the one that wrote the checkpoint.
* **validates on shards** too and sums the results over ranks, so every rank sees the same history row
  and takes the same early-stopping and checkpoint decisions.
* **agrees on stopping**: after every step the ranks exchange their stop reasons (time budget, a stop hook,
  a signal) and all stop together.
* **writes from rank 0 only**: its :class:`~rnnkit.train.Reporter` prints, writes the CSV and checkpoints
  (atomically, see :mod:`rnnkit.train.checkpoint`); the others wait at a barrier until the checkpoint is
  complete. The other ranks' reporters are silent.

The command line: ``torchrun --nproc-per-node N -m rnnkit train APP ...`` or ``rnnkit train APP --nproc N``,
which starts the N processes itself with torch's elastic launcher (what ``torchrun --standalone`` uses).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit._errors import RnnkitError

__all__ = ["DistContext", "current", "init_from_env", "launch", "check_launch", "resolve_backend"]

log = logging.getLogger("rnnkit.train")

BACKENDS = ("auto", "gloo", "nccl")

# stop reasons exchanged as numbers (the largest wins); any other reason is a stop hook's
_STOP_CODES = {"max_steps": 1, "time_budget": 2}
_STOP_NAMES = {1: "max_steps", 2: "time_budget", 3: "stop_when"}


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a distributed run: ``rank`` of ``world_size``, ``local_rank`` on its machine."""

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


# -- set-up -----------------------------------------------------------------------------------------------
def current() -> DistContext | None:
    """The context of an initialised process group with more than one rank, else None (a plain run)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return DistContext(dist.get_rank(), dist.get_world_size(), local, dist.get_backend())


def resolve_backend(backend: str, device: str) -> str:
    """The process-group backend for ``device``: ``auto`` is NCCL on CUDA and gloo otherwise; an unusable
    choice is an :class:`~rnnkit.RnnkitError`."""
    import torch.distributed as dist

    if backend not in BACKENDS:
        raise RnnkitError(f"--dist-backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    if not dist.is_available():
        raise RnnkitError("distributed training: this torch build has no torch.distributed")
    cuda = str(device).startswith("cuda")
    if backend == "auto":
        backend = "nccl" if cuda else "gloo"
    if backend == "nccl":
        if not cuda:
            raise RnnkitError(
                f"--dist-backend nccl needs --device cuda (NCCL moves CUDA tensors), got --device {device}; "
                "use gloo on CPU"
            )
        if not (torch.cuda.is_available() and dist.is_nccl_available()):
            raise RnnkitError(
                "--dist-backend nccl: NCCL is not available here (no CUDA device or no NCCL build)"
            )
    if backend == "gloo" and not dist.is_gloo_available():
        raise RnnkitError("--dist-backend gloo: this torch build has no gloo backend")
    return backend


def _env_world() -> tuple[int, int, int] | None:
    """``(rank, world_size, local_rank)`` from torchrun's environment, None outside torchrun."""
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return None
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", rank))
    except ValueError:
        raise RnnkitError(
            f"torchrun's RANK/WORLD_SIZE must be integers, got {os.environ['RANK']!r}/{os.environ['WORLD_SIZE']!r}"
        ) from None
    return rank, world, local


def init_from_env(device: str, backend: str = "auto") -> DistContext | None:
    """Join the process group that torchrun (or ``--nproc``) described in the environment.

    Returns None when this process is not one of several ranks (no ``WORLD_SIZE``, or a world of 1).
    """
    import torch.distributed as dist

    env = _env_world()
    if env is None or env[1] < 2:
        return None
    backend = resolve_backend(backend, device)
    if not dist.is_initialized():
        if str(device).startswith("cuda"):
            torch.cuda.set_device(env[2])
        dist.init_process_group(backend)
    return current()


def worker_device(device: str, ctx: DistContext | None) -> str:
    """The device of this rank: ``cuda`` becomes ``cuda:<local rank>``; anything else stays."""
    if ctx is not None and device == "cuda":
        return f"cuda:{ctx.local_rank}"
    return device


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_launch(nproc: int, device: str, backend: str, oversubscribe: bool = False) -> str:
    """Check ``--nproc`` and the backend before any process starts; returns the backend to use."""
    if _env_world() is not None:
        raise RnnkitError("--nproc: this process is already one rank of a torchrun job; drop --nproc")
    if nproc < 1:
        raise RnnkitError(f"--nproc: expected a number of processes >= 1, got {nproc}")
    if str(device).startswith("cuda"):
        gpus = torch.cuda.device_count()
        if nproc > gpus:
            raise RnnkitError(
                f"--nproc {nproc} with --device cuda: expected at most one process per GPU ({gpus})"
            )
    else:
        cores = usable_cores()
        if nproc > cores and not oversubscribe:
            raise RnnkitError(
                f"--nproc {nproc}: only {cores} CPU cores are usable here; expected at most {cores} processes "
                "(pass --oversubscribe to start more anyway)"
            )
    return resolve_backend(backend, device)


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``python -m rnnkit <argv>`` in ``nproc`` local processes (ranks 0..nproc-1) and wait for them.

    Uses torch's elastic launcher on a free local port, as ``torchrun --standalone`` does. Rank 0 prints to
    this terminal; the others' output goes to log files, and only the error line of a rank other than 0 that
    failed is shown. Ctrl-C or SIGTERM: the launcher passes the signal on to the ranks, which stop after their
    step with a checkpoint, as one process does. Returns 0, or the exit status of the first process that
    failed (128 + the signal's number after a signal).
    """
    from torch.distributed.elastic.multiprocessing.api import DefaultLogsSpecs, SignalException, Std
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # the launcher logs every failure and signal at length; the failing rank has already said what went wrong
    names = ["torch.distributed.elastic"] + [
        n for n in logging.root.manager.loggerDict if n.startswith("torch.distributed.elastic.")
    ]
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="rnnkit-ranks-") as logs:
        config = LaunchConfig(
            min_nodes=1,
            max_nodes=1,
            nproc_per_node=nproc,
            run_id=f"rnnkit-{uuid.uuid4().hex[:8]}",
            rdzv_backend="c10d",
            rdzv_endpoint="localhost:0",
            max_restarts=0,
            monitor_interval=0.1,
            start_method="spawn",
            logs_specs=DefaultLogsSpecs(log_dir=logs, redirects={r: Std.ALL for r in range(1, nproc)}),
        )
        try:
            elastic_launch(config, entrypoint=sys.executable)("-m", "rnnkit", *argv)
        except ChildFailedError as e:
            failed = sorted(e.failures.items())
            if failed and failed[0][0] != 0:  # rank 0 did not fail first: say what the other said
                _echo_error(Path(logs), failed[0][0])
            codes = [f.exitcode for _, f in failed]
            code = next((c for c in codes if c and c > 0), None)
            if code is None:  # killed by a signal (a negative exit code)
                sig = -min(codes)
                return 128 + sig if sig > 0 else 1
            return code
        except SignalException as e:  # Ctrl-C or SIGTERM to this process; rank 0 has said where the run is
            return 128 + int(e.sigval)
        finally:
            for n, lv in levels.items():
                logging.getLogger(n).setLevel(lv)
    return 0


def _echo_error(logs: Path, rank: int) -> None:
    """The last ``rnnkit:`` line (else the last line) of rank ``rank``'s stderr log, on this stderr."""
    lines: list[str] = []
    for f in sorted(logs.glob(f"**/{rank}/stderr.log")):
        lines += [line for line in f.read_text(errors="replace").splitlines() if line.strip()]
    ours = [line for line in lines if line.startswith("rnnkit:")]
    if ours or lines:
        sys.stderr.write((ours or lines)[-1] + "\n")


def scratch_runs_dir(ctx: DistContext) -> str:
    """A private folder for the run directory of a rank other than 0 (its files are never kept)."""
    return tempfile.mkdtemp(prefix=f"rnnkit-rank{ctx.rank}-")


# -- collectives the trainer uses ----------------------------------------------------------------------------
def broadcast_text(text: str, ctx: DistContext) -> str:
    """Rank 0's ``text`` on every rank (as UTF-8 bytes in a tensor; nothing is pickled)."""
    import torch.distributed as dist

    device = torch.device("cuda", torch.cuda.current_device()) if ctx.backend == "nccl" else "cpu"

    data = torch.tensor(list(text.encode("utf-8")) if ctx.is_main else [], dtype=torch.uint8)
    size = torch.tensor([len(data)], dtype=torch.int64, device=device)
    dist.broadcast(size, 0)
    buf = torch.zeros(int(size.item()), dtype=torch.uint8, device=device)
    if ctx.is_main:
        buf.copy_(data)
    if int(size.item()):
        dist.broadcast(buf, 0)
    return bytes(buf.cpu().tolist()).decode("utf-8")


def barrier() -> None:
    import torch.distributed as dist

    dist.barrier()


class _LossModule(nn.Module):
    """The module DDP wraps: its forward is the trainer's loss, so that DDP sees each forward pass."""

    def __init__(self, model: nn.Module, loss):
        super().__init__()
        self.model = model
        self._loss = loss

    def forward(self, batch, state):
        return self._loss(batch, state)


def _rows(batch_size: int, rank: int, world: int) -> tuple[int, int]:
    return batch_size * rank // world, batch_size * (rank + 1) // world


class DataParallel:
    """The trainer's side of a distributed run (see the module docstring): DDP, shards and collectives."""

    def __init__(
        self, ctx: DistContext, model: nn.Module, loss, device: torch.device, time_keys: tuple[str, ...]
    ):
        self.ctx = ctx
        self.device = device
        self.time_keys = time_keys
        self.ddp = nn.parallel.DistributedDataParallel(
            _LossModule(model, loss),
            device_ids=[device] if device.type == "cuda" else None,
            # a learnt initial state goes unused whenever a state is given (carried streams, truncated BPTT);
            # searching the graph for unused parameters costs a traversal per step, so only then
            find_unused_parameters=any("initial_state" in name for name, _ in model.named_parameters()),
        )
        self._comm = device if ctx.backend == "nccl" else torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.ctx.is_main

    # -- batches ------------------------------------------------------------------------------------------
    def batch_rows(self, batch: Any) -> int | None:
        """The number of rows (items) of a batch: dim 0 of its first time key, else of its first tensor."""
        if isinstance(batch, dict):
            for k in self.time_keys:
                if isinstance(batch.get(k), Tensor):
                    return batch[k].shape[0]
            values = list(batch.values())
        elif isinstance(batch, (tuple, list)):
            values = list(batch)
        else:
            values = [batch]
        for v in values:
            if isinstance(v, Tensor) and v.dim() > 0:
                return v.shape[0]
        return None

    def shard(self, batch: Any) -> tuple[Any, bool]:
        """This rank's rows of a global batch, and whether they are real (False: a stand-in row, weight 0)."""
        B = self.batch_rows(batch)
        if B is None:
            raise RnnkitError(
                "distributed training needs batches of tensors with the items along dimension 0"
            )
        lo, hi = _rows(B, self.ctx.rank, self.ctx.world_size)
        real = hi > lo
        if not real:
            lo, hi = 0, 1
        return _slice_rows(batch, B, lo, hi), real

    # -- collectives --------------------------------------------------------------------------------------
    def weigh_loss(self, loss: Tensor, count: int, finite: bool) -> tuple[Tensor, bool]:
        """``loss * n_r W / N`` (see the module docstring) and whether every rank's loss is finite."""
        import torch.distributed as dist

        bad_here = not finite and count > 0  # a loss over no items (NaN) does not count
        t = torch.tensor([float(count), 1.0 if bad_here else 0.0], dtype=torch.float64, device=self._comm)
        dist.all_reduce(t)
        total, bad = float(t[0]), float(t[1])
        if count == 0:  # no items here (a stand-in row, or all padding): a zero gradient, whatever the loss
            zero = sum((p * 0.0).sum() for p in self.ddp.module.parameters() if p.requires_grad)
            return zero, bad == 0
        return loss * (count * self.ctx.world_size / total), bad == 0

    def agree_stop(self, reason: str | None, signum: int | None) -> tuple[str | None, int | None]:
        """Every rank's stop reason and signal, combined: if one rank stops, all do."""
        import torch.distributed as dist

        code = 0 if not reason else _STOP_CODES.get(reason, 3)
        t = torch.tensor([code, int(signum or 0)], dtype=torch.int64, device=self._comm)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        code, sig = int(t[0]), int(t[1])
        if code and not reason:
            reason = _STOP_NAMES[code]
        if sig and not signum:
            signum = sig
        return reason, signum

    def sum_values(self, values: dict[str, float]) -> dict[str, float]:
        """``values`` summed over ranks (every rank has the same keys)."""
        import torch.distributed as dist

        keys = sorted(values)
        if not keys:
            return {}
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=self._comm)
        dist.all_reduce(t)
        return dict(zip(keys, t.cpu().tolist()))

    def gather_state(self, state: Any, batch_size: int) -> Any:
        """The carried states of all ranks' streams, joined along the batch dimension (see :func:`_state_dim`)."""
        import torch.distributed as dist

        if state is None:
            return None
        if isinstance(state, (tuple, list)):
            return type(state)(self.gather_state(s, batch_size) for s in state)
        W = self.ctx.world_size
        dim = _state_dim(state)
        sizes = [hi - lo for lo, hi in (_rows(batch_size, r, W) for r in range(W))]
        pad_shape = list(state.shape)
        pad_shape[dim] = max(sizes)
        padded = torch.zeros(pad_shape, dtype=state.dtype, device=self._comm)
        padded.narrow(dim, 0, state.shape[dim]).copy_(state)
        parts = [torch.empty_like(padded) for _ in range(W)]
        dist.all_gather(parts, padded)
        return torch.cat([p.narrow(dim, 0, n) for p, n in zip(parts, sizes)], dim).to(state.device)

    def split_state(self, state: Any) -> Any:
        """This rank's streams of a checkpoint's state of all streams (the inverse of :meth:`gather_state`)."""
        if state is None:
            return None
        if isinstance(state, (tuple, list)):
            return type(state)(self.split_state(s) for s in state)
        dim = _state_dim(state)
        lo, hi = _rows(state.shape[dim], self.ctx.rank, self.ctx.world_size)
        if hi <= lo:
            raise RnnkitError(
                f"a checkpoint with {state.shape[dim]} carried streams cannot be shared by "
                f"{self.ctx.world_size} processes; resume with at most {state.shape[dim]}"
            )
        return state.narrow(dim, lo, hi - lo).clone()

    def average_tensors(self, tensors: list[Tensor]) -> None:
        """Each tensor replaced, in place, by its mean over the ranks (e.g. batch-norm statistics)."""
        import torch.distributed as dist

        for t in tensors:
            buf = t.detach().to(self._comm, torch.float64)
            dist.all_reduce(buf)
            with torch.no_grad():
                t.copy_((buf / self.ctx.world_size).to(t.device, t.dtype))

    def broadcast_module(self, model: nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank (after rank 0 restored its best checkpoint)."""
        import torch.distributed as dist

        for t in [*model.parameters(), *model.buffers()]:
            buf = t.detach().to(self._comm)
            dist.broadcast(buf, 0)
            with torch.no_grad():
                t.copy_(buf.to(t.device))


def _state_dim(t: Tensor) -> int:
    """The batch dimension of a state tensor: 1 in rnnkit's ``(L*D, B, n)`` layout, 0 for a vector."""
    return 1 if t.dim() >= 2 else 0


def _slice_rows(batch: Any, B: int, lo: int, hi: int) -> Any:
    if isinstance(batch, Tensor):
        return batch[lo:hi] if batch.dim() > 0 and batch.shape[0] == B else batch
    if isinstance(batch, dict):
        return {k: _slice_rows(v, B, lo, hi) for k, v in batch.items()}
    if isinstance(batch, tuple):
        return tuple(_slice_rows(v, B, lo, hi) for v in batch)
    if isinstance(batch, list):
        if len(batch) == B and not any(isinstance(v, Tensor) for v in batch):
            return batch[lo:hi]  # a list of per-item values (texts, ids)
        return [_slice_rows(v, B, lo, hi) for v in batch]
    return batch
