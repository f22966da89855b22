"""Shared plumbing of the applications: threads and seeds, the trainer set-up, splits, inputs, tables."""

from __future__ import annotations

import math
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit._errors import RnnkitError
from rnnkit.apps.config import AppConfig
from rnnkit.datasets.extra import EXTRA_DATASETS

__all__ = [
    "MIX_WEIGHTS",
    "check_share",
    "lowest_share",
    "EpochBatches",
    "build_trainer",
    "finish_training",
    "fit_member",
    "format_table",
    "format_value",
    "per_epoch_generator",
    "read_inputs",
    "save_run_files",
    "training_summary",
    "setup_torch",
    "split_indices",
]

MIX_WEIGHTS = tuple(i / 20 for i in range(21))
"""The network's shares tried on validation when an app mixes it with a classical model: 0, 0.05, ..., 1
(the classical model alone and the network alone included)."""


def check_share(share: float) -> float:
    """``share`` as a float, or one clear error when it is not a network's share in [0, 1]."""
    if not 0.0 <= share <= 1.0:
        raise RnnkitError(f"mixture share: expected a number in [0, 1], got {share}")
    return float(share)


def stored_share(value) -> float | None:
    """A share read back from a run's JSON: None stays None (a run without the mixture); a number in [0, 1]
    (not ``true``/``false``, which JSON would let through as 1 and 0) becomes a float; anything else is a
    ``ValueError`` saying what came."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"expected the network's share, a number in [0, 1], got {value!r}")
    return float(value)


def lowest_share(scores: dict[float, float]) -> float:
    """The share with the lowest validation score (bits, log loss, MASE); on a tie the larger share: no more
    of the classical model than the data ask for."""
    return min(sorted(scores, reverse=True), key=scores.get)


def setup_torch(threads: int) -> None:
    """Use ``threads`` intra-op threads (0 keeps torch's default).

    One thread is the default of the applications: their models are small, and on a busy 2-core machine
    torch's spinning OpenMP workers can make two threads far slower than one.
    """
    if threads > 0:
        torch.set_num_threads(threads)


def split_indices(n: int, val_fraction: float, test_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """A fixed, seeded shuffle of ``range(n)`` cut into ``(train, val, test)`` index arrays.

    The test part comes first in the shuffled order, so changing ``val_fraction`` never changes the test
    set. Non-zero fractions give at least one item.
    """
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
    n_val = max(1, round(n * val_fraction)) if val_fraction > 0 else 0
    if n - n_test - n_val < 1:
        raise RnnkitError(
            f"expected enough examples for train/validation/test, got {n}: {n_val} validation + {n_test} "
            "test leave none for training"
        )
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]


class EpochBatches:
    """The training data for the trainer: ``make(epoch)`` -> that epoch's batches.

    ``len()`` is the number of batches per epoch, so the progress bar can show the total and an ETA.
    """

    def __init__(self, make: Callable[[int], list], batches_per_epoch: int):
        self.make, self.n = make, batches_per_epoch

    def __len__(self) -> int:
        return self.n

    def __call__(self, epoch: int) -> Iterable:
        return self.make(epoch)


def build_trainer(
    model: torch.nn.Module, cfg: AppConfig, out_dir: Path, *, grad_monitor_every: int, **config_overrides: Any
):
    """The shared :class:`rnnkit.train.Trainer` for the application config ``cfg``, writing into ``out_dir``.

    ``cfg`` is a :class:`~rnnkit.train.TrainerConfig` (every application's config extends it); the
    application only fills in the automatic gradient-monitor interval when the config leaves it open. When
    ``out_dir`` is an interrupted run adopted by ``rnnkit train --resume``, ``fit`` continues from its latest
    checkpoint. ``config_overrides`` go to :func:`~rnnkit.train.trainer.trainer_config` (e.g.
    ``scheduler_interval="step"`` for a scheduler the application sets on the returned trainer).
    """
    from rnnkit.apps.rundir import resuming
    from rnnkit.train import Reporter, Trainer
    from rnnkit.train.trainer import trainer_config

    _record_training_data(cfg, Path(out_dir))
    config = trainer_config(
        cfg, grad_monitor_every=cfg.grad_monitor_every or grad_monitor_every, **config_overrides
    )
    reporter = Reporter(out_dir, progress=config.progress, log_every=config.log_every)
    trainer = Trainer(model, config, reporter=reporter)
    # a resumed run, or a network of a resumed ensemble that had been checkpointed (one that had not starts afresh)
    resume = resuming(out_dir) and (Path(out_dir) / "checkpoints" / "latest.json").is_file()
    if trainer.dist is not None:  # distributed: rank 0's run decides, and every rank reads its checkpoints
        from rnnkit.train.distributed import broadcast_text

        where = broadcast_text(str(Path(out_dir) / "checkpoints") if resume else "", trainer.dist.ctx)
        trainer.resume_from = Path(where) if where else None
    elif resume:
        trainer.resume_from = Path(out_dir) / "checkpoints"
    return trainer


def app_encoder(cfg: Any, **overrides: Any):
    """The recurrent encoder an application's settings describe (``cell``, ``hidden_size``, ``num_layers``,
    ``bidirectional`` where the application has it) with ``cfg.dropout`` between stacked layers only (the
    application puts it on its embeddings and heads itself); ``overrides`` set any other field."""
    from rnnkit.models import EncoderConfig

    fields = {
        "cell": cfg.cell,
        "hidden_size": cfg.hidden_size,
        "num_layers": cfg.num_layers,
        "bidirectional": getattr(cfg, "bidirectional", False),
        "dropout": cfg.dropout if cfg.num_layers > 1 else 0.0,
    }
    return EncoderConfig(**{**fields, **overrides})


BUILTIN_DATA = frozenset(
    {"polarity", "austen", "co2", "sunspots", "fsdd", "digits", "fonts", "folk", "bible", "num2words"}
    | {"emoji"}  # caption
    | {"digits-ctc", "phrases"}  # speech, connected
    | {"chorales"}  # music
    | set(EXTRA_DATASETS)
)
"""The built-in and held-out data sets of the applications (``--data NAME``); any other value is a file."""

DATA_FILE = "data.json"
"""The file of a run that identifies its training data: the path as given, the absolute path, its sha256."""


def data_fingerprint(data: Any) -> dict[str, Any] | None:
    """What identifies the user's data file ``data`` (None for a built-in data set)."""
    from rnnkit.files import sha256_file

    if not isinstance(data, str) or data in BUILTIN_DATA or not Path(data).is_file():
        return None
    p = Path(data).resolve()
    return {"data": data, "path": str(p), "sha256": sha256_file(p), "bytes": p.stat().st_size}


def _record_training_data(cfg, out_dir: Path) -> None:
    """Write ``data.json`` (see :data:`DATA_FILE`) into the run; a resumed run must find the same data."""
    from rnnkit.apps.rundir import read_json, write_json_atomic

    now = data_fingerprint(getattr(cfg, "data", None))
    if now is None:
        return
    if (out_dir / DATA_FILE).is_file():  # a resumed run: it must go on with the data it started with
        before = read_json(out_dir / DATA_FILE, "run data")
        if isinstance(before, dict) and before.get("sha256") != now["sha256"]:
            raise RnnkitError(
                f"--resume: the training data {now['path']!r} changed since the run was interrupted (its sha256 "
                "differs); resume with the same data, or start afresh with --discard-interrupted"
            )
    write_json_atomic(out_dir / DATA_FILE, now)


def finish_training(trainer, out_dir: Path) -> None:
    """Load the best checkpoint's weights and remove the checkpoints (the run keeps only the final model)."""
    if trainer.is_main and trainer.state.best_checkpoint is not None:
        trainer.restore_best()
    if trainer.dist is not None:  # every rank goes on with rank 0's final model
        trainer.dist.broadcast_module(trainer.model)
    shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
    trainer.model.eval()


class MemberTraining:
    """How one network of an ensemble trained: its validation history, and how its training ended
    (``state.epoch``, ``state.stop_reason``, as a trainer has them)."""

    def __init__(self, history: list, epochs: int, stop_reason: str | None):
        from types import SimpleNamespace

        self.history = history
        self.state = SimpleNamespace(epoch=epochs, stop_reason=stop_reason)


def member_finished(out_dir: Path, run_path: Path) -> bool:
    """Whether a resumed run holds the ensemble member of ``out_dir`` finished (:func:`fit_member` reads it)."""
    from rnnkit.apps.rundir import member_done, resuming

    return resuming(run_path) and member_done(out_dir)


def fit_member(model, out_dir: Path, run_path: Path, make_trainer: Callable, fit: Callable) -> MemberTraining:
    """Train one network of an ensemble in ``out_dir``, or, in a resumed run, read it back if it had finished.

    ``make_trainer()`` builds its trainer (:func:`build_trainer`, which continues from ``out_dir``'s checkpoint
    when resuming) and ``fit(trainer)`` trains it and returns the history. A finished member's weights and
    summary are kept in ``out_dir/finished`` until the run is written (:func:`save_members` removes them), so
    that ``rnnkit train --resume`` after an interruption in a later member does not train the earlier ones again
    (without it, their checkpoints gone, nothing would be left to resume from).
    """
    from rnnkit.apps.rundir import FINISHED
    from rnnkit.files import read_json, read_safetensors, write_json, write_safetensors

    done = Path(out_dir) / FINISHED
    if member_finished(out_dir, run_path):
        info = read_json(done / "member.json", "a finished ensemble member")
        try:
            tensors, _ = read_safetensors(done / "weights.safetensors", info["sha256"])
            model.load_state_dict(tensors)
            history, epochs, stop_reason = info["history"], int(info["epochs"]), info["stop_reason"]
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise RnnkitError(f"cannot read the finished ensemble member in {done}: {exc}") from None
        model.eval()
        return MemberTraining(history, epochs, stop_reason)
    trainer = make_trainer()
    history = fit(trainer)
    finish_training(trainer, out_dir)
    if trainer.is_main:
        done.mkdir(parents=True, exist_ok=True)
        weights = {k: v.detach().clone() for k, v in model.state_dict().items()}  # tied weights: own copies
        digest = write_safetensors(done / "weights.safetensors", weights, {})
        state = trainer.state
        summary = {
            "history": history,
            "epochs": state.epoch,
            "stop_reason": state.stop_reason,
            "sha256": digest,
        }
        write_json(done / "member.json", summary)  # last: its presence says the member is complete
    return MemberTraining(history, trainer.state.epoch, trainer.state.stop_reason)


TRAINER_FILES = (
    "metrics.csv",
    "history.json",
    "grad_flow.json",
    "grad_flow_heatmap.png",
    "grad_flow_curve.png",
)
"""Files the trainer's reporter writes into the run (those that exist are listed in ``run.json``)."""


def training_summary(model, trainer, train_seconds: float, seconds: float, networks=None) -> dict[str, Any]:
    """The part of ``metrics.json`` every application shares: time, size and backend of the run.

    ``parameters`` counts one network (``model``); for an ensemble, pass all its ``networks`` and
    ``parameters_all_networks`` counts every weight the run keeps."""
    out = {
        "stopped_by_time_budget": trainer.state.stop_reason == "time_budget",
        "stop_reason": trainer.state.stop_reason,  # early_stopping, max_steps, time_budget, ...; None: all epochs
        "train_seconds": round(train_seconds, 2),
        "seconds": round(seconds, 2),
        "parameters": sum(p.numel() for p in model.parameters()),
        "backend": str(model.encoder.backend),
    }
    if networks is not None and len(networks) > 1:
        out["parameters_all_networks"] = sum(p.numel() for n in networks for p in n.parameters())
    return out


def save_run_files(run, model, cfg, app: str, metrics: dict[str, Any]) -> None:
    """The files every run has: the model, ``config.json``, ``config.toml``, ``metrics.json``, the trainer's,
    and ``data.json`` (which file it was trained on: absolute path and sha256; see ``rnnkit evaluate``)."""
    from rnnkit.config import config_to_dict, config_to_toml

    model.save(run.path)
    run.file("model.safetensors")
    run.file("model.json")
    run.write_json("config.json", config_to_dict(cfg))
    header = f"settings of run {run.final.name}; repeat it with: rnnkit train {app} --config config.toml"
    run.write_text("config.toml", f'app = "{app}"\n' + config_to_toml(cfg, header))
    run.write_json("metrics.json", metrics)
    for name in (*TRAINER_FILES, DATA_FILE):
        if (run.path / name).exists():
            run.file(name)


def save_members(run, members, folder: str = "") -> None:
    """Ensemble members after the first (which :func:`save_run_files` writes as the run's model) into
    ``members/K/`` of the run, ``K = 1 ..``; :func:`rnnkit.apps.base.load_members` reads them back. With a
    ``folder`` (e.g. :data:`FEEDFORWARD_DIR`: a second ensemble of the run) every member goes there, the first
    into ``folder`` itself. The members' resume copies (:func:`fit_member`) go."""
    from rnnkit.apps.rundir import FINISHED, member_dir

    base = run.path / folder
    for k, member in enumerate(members):
        if k == 0 and not folder:
            continue
        member.save(member_dir(base, k))
        rel = member_dir(Path(folder), k).as_posix()
        for f in ("model.safetensors", "model.json"):
            run.file(f"{rel}/{f}" if rel != "." else f)
    for k in range(len(members)):
        shutil.rmtree(member_dir(base, k) / FINISHED, ignore_errors=True)


FEEDFORWARD_DIR = "feedforward"
"""The folder of a run that holds its feed-forward counterpart (``model.safetensors``, ``model.json``)."""
FF_CTC = "feed-forward (time-delay + CTC)"
"""The report's name of a CTC application's feed-forward counterpart (handwriting, connected speech)."""
FF_SEQ2SEQ = "feed-forward (time-delay + attention)"
"""The report's name of an encoder-decoder application's feed-forward counterpart (translate, caption)."""


def fit_feedforward(model, cfg, run_path: Path, fit: Callable) -> dict[str, Any]:
    """Train the feed-forward counterpart ``model`` of a run (:class:`~rnnkit.apps.config.TimeDelayOptions`) with
    the run's trainer settings ``cfg`` in ``run_path / FEEDFORWARD_DIR``; ``fit(trainer)`` trains it on the
    network's batches and returns the history. Like an ensemble member (:func:`fit_member`), a finished
    counterpart is read back by ``rnnkit train --resume``. It has no recurrence, so no gradient flow through time
    is recorded. Returns what ``metrics.json`` says of it: size, settings, epochs, stop reason, best validation
    loss, seconds."""
    import dataclasses
    import time

    out_dir = Path(run_path) / FEEDFORWARD_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    quiet = dataclasses.replace(cfg, grad_monitor_every=0)
    t0 = time.perf_counter()
    done = fit_member(
        model, out_dir, run_path, lambda: build_trainer(model, quiet, out_dir, grad_monitor_every=0), fit
    )
    losses = [r["val_loss"] for r in done.history if r.get("val_loss") is not None]
    settings = {"layers": cfg.ff_layers, "width": cfg.ff_width}
    if hasattr(cfg, "ff_context"):
        settings["context"] = cfg.ff_context
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        **settings,
        "epochs": done.state.epoch,
        "stop_reason": done.state.stop_reason,
        "best_val_loss": min(losses) if losses else None,
        "train_seconds": round(time.perf_counter() - t0, 2),
    }


def save_feedforward(run, model) -> None:
    """The feed-forward counterpart's weights and config into ``FEEDFORWARD_DIR/`` of the run (``Model.load``
    reads them); its resume copy goes."""
    from rnnkit.apps.rundir import FINISHED

    model.save(run.path / FEEDFORWARD_DIR)
    for f in ("model.safetensors", "model.json"):
        run.file(f"{FEEDFORWARD_DIR}/{f}")
    shutil.rmtree(run.path / FEEDFORWARD_DIR / FINISHED, ignore_errors=True)


def save_baseline_net(run, model, name: str) -> None:
    """A fitted baseline network of :mod:`rnnkit.baselines` with ``save``/``load`` (the feed-forward counterpart
    of textgen and music, :class:`~rnnkit.baselines.FixedContextLM`, or of sentiment,
    :class:`~rnnkit.baselines.MLPTextClassifier`) into ``FEEDFORWARD_DIR/<name>.safetensors`` of the run being
    built, its sha256 into ``<name>.json`` beside it; :func:`load_baseline_net` reads it back."""
    (run.path / FEEDFORWARD_DIR).mkdir(exist_ok=True)
    digest = model.save(run.file(f"{FEEDFORWARD_DIR}/{name}.safetensors"))
    run.write_json(f"{FEEDFORWARD_DIR}/{name}.json", {"sha256": digest})


def load_baseline_net(run: Path, cls: type, name: str):
    """The run's ``cls`` saved by :func:`save_baseline_net`, or None for a run without one (trained without
    it, or saved before 4 Dec 2026); a damaged one is a one-line ``RnnkitError``."""
    from rnnkit.files import read_json

    info, path = run / FEEDFORWARD_DIR / f"{name}.json", run / FEEDFORWARD_DIR / f"{name}.safetensors"
    if not info.is_file() and not path.is_file():
        return None
    try:
        return cls.load(path, str(read_json(info)["sha256"]))
    except (RnnkitError, KeyError, TypeError) as exc:
        raise RnnkitError(f"run {run.name}: cannot load its feed-forward counterpart: {exc}") from None


def read_inputs(values: Sequence[str], file: str | None, what: str) -> list[str]:
    """Inputs from arguments, else from ``file`` (``-`` = stdin), else from stdin when it is not a terminal.

    Each non-blank line of a file or of stdin is one input.
    """
    if values and file:
        raise RnnkitError(f"give the {what} as arguments or with --file, not both")
    if values:
        blank = next((i for i, v in enumerate(values) if not v.strip()), None)
        if blank is not None:
            raise RnnkitError(f"expected non-blank {what}, got a blank one (argument {blank + 1})")
        return list(values)
    if file and file != "-":
        from rnnkit.datasets.readers import _read_utf8

        text = _read_utf8(file, "--file")[1]  # names the file, a non-UTF-8 byte's line, a binary file
    elif file == "-" or not sys.stdin.isatty():
        try:
            text = sys.stdin.read()
        except UnicodeDecodeError:
            raise RnnkitError("stdin: expected UTF-8 text, got undecodable bytes") from None
        except OSError as exc:
            raise RnnkitError(f"cannot read stdin: {exc.strerror or exc}") from None
    else:
        raise RnnkitError(f"no {what}: give them as arguments, with --file FILE, or on stdin")
    if "\x00" in text:
        raise RnnkitError("stdin: expected text, got binary data (it holds NUL bytes)")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise RnnkitError(f"no {what}: the input is empty")
    return lines


def beam_and_n_best(beam: int | None, n_best: int | None, run_beam: int) -> tuple[int, int]:
    """``(beam width, hypotheses listed)`` for ``predict --beam N --n-best K``: the run's own beam (the one its
    scores were measured with) unless ``--beam`` is given, and wide enough for ``K``; one line for a value out
    of range, naming the flag."""
    for flag, value in (("--beam", beam), ("--n-best", n_best)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise RnnkitError(f"{flag}: expected a whole number >= 1, got {value!r}")
    n = n_best or 1
    if beam is None:
        return max(run_beam, n), n
    if n > beam:
        raise RnnkitError(f"--n-best: expected at most the beam width (--beam {beam}), got {n}")
    return beam, n


def format_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain-text table with columns padded to their widest cell (numbers right-aligned)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [
        max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h)) for i, h in enumerate(header)
    ]
    numeric = [all(_is_num(row[i]) for row in rows) and rows for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    out = [line([str(h) for h in header]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool)


def format_value(v: float) -> str:
    """A number as the tables print it: 4 significant digits below 10,000, every digit of the whole number
    above (a count near 3e7 reads ``30118850``, not ``3.012e+07``), ``-`` when not finite."""
    if not math.isfinite(v):
        return "-"
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"


def _cell(v: Any) -> str:
    return format_value(float(v)) if isinstance(v, (float, np.floating)) else str(v)


def per_epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A torch generator seeded by ``(seed, epoch)``: the batch order of an epoch, reproducible on resume."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)
