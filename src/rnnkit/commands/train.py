"""``rnnkit train APP``: train an application on built-in or user data and write ``runs/<name>/``.

Every setting is a flag (``rnnkit train timeseries --help`` lists them) and a key of ``--config run.toml``;
flags win over the file. Example::

    rnnkit train sentiment --cell lstm --hidden-size 96 --name sent-lstm
    rnnkit train timeseries --data power.csv --time-column timestamp --target load --horizon 24
    rnnkit train textgen --config runs/austen/config.toml --name austen2 --epochs 2

Several processes (data-parallel; see ``docs/distributed.md`` and :mod:`rnnkit.train.distributed`)::

    rnnkit train sentiment --nproc 2                      # starts 2 local processes itself
    torchrun --nproc-per-node 2 -m rnnkit train sentiment  # the same under torchrun
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
from pathlib import Path

from rnnkit.config import add_config_arguments, config_from_args

NAME = "train"
HELP = "train an application (sentiment, timeseries, textgen, speech, handwriting, music, translate, caption) and write runs/<name>/"

APP_HELP = {
    "sentiment": "bidirectional GRU/LSTM text classifier vs a bag-of-words baseline (Pang & Lee polarity or your CSV)",
    "timeseries": "multi-step forecaster vs naive / seasonal naive (CO2, sunspots or your CSV)",
    "textgen": "character- or word-level LSTM language model vs Kneser-Ney n-grams; next-word suggestions (Austen or your text)",
    "music": "folk-tune LSTM over ABC tokens with a bar grammar vs Kneser-Ney n-grams (ABC, MIDI, piano rolls)",
    "handwriting": "CRNN line reader with CTC vs Tesseract and segment-and-classify (digit strings, fonts or your PNGs)",
    "speech": "spoken digits (FSDD) vs DTW 1-NN; connected speech with CTC (--data digits-ctc, phrases or your CSV)",
    "translate": "attention encoder-decoder over subwords vs copy and IBM Model 1 (Bible, num2words or your pairs)",
    "caption": "CNN + attention decoder image captions vs nearest neighbour (emoji, digit strings or your images)",
}


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="TOML", help="read settings from a TOML file (flags override it)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing run directory of the same name"
    )
    p.add_argument("--json", action="store_true", help="print metrics.json instead of the results table")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run of this name (or of this app) from its last checkpoint",
    )
    p.add_argument(
        "--discard-interrupted",
        action="store_true",
        help="delete an interrupted run of this name and start afresh",
    )
    # distributed training (rnnkit.train.distributed); under torchrun only --dist-backend applies
    p.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train data-parallel in N local processes (--batch-size stays the global batch); default: 1",
    )
    p.add_argument(
        "--oversubscribe",
        action="store_true",
        help="allow --nproc to exceed the number of usable CPU cores",
    )
    p.add_argument(
        "--dist-backend",
        default="auto",
        metavar="NAME",
        help="process-group backend of a distributed run: auto (NCCL on CUDA, else gloo), gloo or nccl",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    from rnnkit.apps import APP_NAMES, app_config

    sub = p.add_subparsers(dest="app", metavar="APP", required=True)
    for app in APP_NAMES:
        cls = app_config(app)
        q = sub.add_parser(app, help=APP_HELP[app], description=f"{HELP}: {APP_HELP[app]}")
        add_run_arguments(q)
        add_config_arguments(q, cls)


def say_to_stderr(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def print_result(result, as_json: bool) -> None:
    from rnnkit.apps._common import format_table

    if as_json:
        print(json.dumps({k: v for k, v in result.metrics.items() if k != "history"}, indent=1, default=str))
        return
    rows = [
        (
            r.task,
            r.metric,
            r.value,
            f"{r.baseline} {_num(r.baseline_value)}",
            r.goal,
            "yes" if r.met else "no",
            f"{r.seconds:.0f} s",
        )
        for r in result.rows
    ]
    print(format_table(rows, ("task", "metric", "rnnkit", "baseline", "goal", "met", "time")))
    if result.samples:
        print()
        print("\n".join(result.samples))
    print(f"\nrun written to {result.run}/")
    if result.plots:
        print("plots: " + ", ".join(str(p) for p in result.plots))


def _num(v: float) -> str:
    return "-" if v != v else f"{v:.4g}"


def run(args: argparse.Namespace) -> int:
    from rnnkit._signals import graceful_signals

    if args.nproc is not None:
        return _launch(args)
    with graceful_signals():  # Ctrl-C or SIGTERM: one line, and a resumable run once training has begun
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    from rnnkit._errors import RnnkitError
    from rnnkit.apps import app_config, app_module
    from rnnkit.apps.rundir import interrupted_options
    from rnnkit.config import config_to_dict
    from rnnkit.train import distributed

    if args.resume and args.discard_interrupted:
        raise RnnkitError("give --resume or --discard-interrupted, not both")
    cls = app_config(args.app)
    cfg = config_from_args(cls, args, args.config, app=args.app)
    if args.resume:
        cfg = _resumed_config(cls, cfg, args)
    # distributed (torchrun or --nproc): rank 0 builds the run; the others build theirs in a scratch folder
    ctx = distributed.init_from_env(cfg.device, args.dist_backend)
    scratch = None
    if ctx is not None:
        cfg = dataclasses.replace(cfg, device=distributed.worker_device(cfg.device, ctx))
        distributed.barrier()  # every rank has read the interrupted run's settings before rank 0 adopts it
        if not ctx.is_main:
            scratch = distributed.scratch_runs_dir(ctx)
            cfg = dataclasses.replace(cfg, runs_dir=scratch, progress=False)
    main = ctx is None or ctx.is_main
    options = interrupted_options(
        resume=args.resume and main,
        discard=args.discard_interrupted and main,
        app=args.app,
        config=config_to_dict(cfg),
        say=say_to_stderr if main else _quiet,
    )
    try:
        with options:
            result = app_module(args.app).train(
                cfg, overwrite=args.overwrite, say=say_to_stderr if main else _quiet
            )
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        if ctx is not None:
            import torch.distributed as dist

            dist.destroy_process_group()
    if main:
        print_result(result, args.json)
    return 0


def _quiet(text: str) -> None:
    """What ranks other than 0 say: nothing (rank 0 speaks for the run)."""


def _launch(args: argparse.Namespace) -> int:
    """``--nproc N``: check the settings, then run this command without ``--nproc`` in N processes.

    The children read the settings resolved here (flags, --config, a resumed run's) from a TOML file, so they
    all train exactly the same config.
    """
    from rnnkit.apps import app_config
    from rnnkit.config import config_to_toml
    from rnnkit.train import distributed

    cls = app_config(args.app)
    cfg = config_from_args(cls, args, args.config, app=args.app)
    if args.resume:
        if args.discard_interrupted:
            from rnnkit._errors import RnnkitError

            raise RnnkitError("give --resume or --discard-interrupted, not both")
        cfg = _resumed_config(cls, cfg, args)
    backend = distributed.check_launch(args.nproc, cfg.device, args.dist_backend, args.oversubscribe)
    with tempfile.TemporaryDirectory(prefix="rnnkit-launch-") as tmp:
        settings = Path(tmp) / "config.toml"
        settings.write_text(f'app = "{args.app}"\n' + config_to_toml(cfg), encoding="utf-8")
        argv = ["train", args.app, "--config", str(settings), "--dist-backend", backend]
        for flag in ("overwrite", "json", "resume", "discard_interrupted"):
            if getattr(args, flag):
                argv.append("--" + flag.replace("_", "-"))
        if args.nproc == 1:  # nothing to distribute: this process trains
            args = build_child_args(argv)
            return run(args)
        return distributed.launch(args.nproc, argv)


def build_child_args(argv: list[str]) -> argparse.Namespace:
    from rnnkit.cli import build_parser

    return build_parser().parse_args(argv)


def _resumed_config(cls, cfg, args: argparse.Namespace):
    """The settings of the interrupted run that ``--resume`` continues, with the flags given now on top.

    The run is the one named by ``--name``, else the only interrupted run of this application in the runs folder.
    """
    from rnnkit._errors import RnnkitError
    from rnnkit.apps.rundir import find_interrupted
    from rnnkit.config import config_from_dict, flag_values, read_toml, saved_run_settings

    runs = [r for r in find_interrupted(cfg.runs_dir, cfg.name or None) if r.resumable]
    runs = [r for r in runs if r.info.get("app") == args.app]
    names = sorted({str(r.info.get("name")) for r in runs})
    if not runs:
        which = f"named {cfg.name!r}" if cfg.name else f"of {args.app}"
        raise RnnkitError(
            f"--resume: no interrupted run {which} with a checkpoint under {str(cfg.runs_dir)!r}"
        )
    if len(names) > 1:
        raise RnnkitError(
            f"--resume: several interrupted {args.app} runs ({', '.join(names)}); choose one with --name"
        )
    saved = runs[-1].info.get("config")
    # settings added since the run was saved keep the value it trained with (not a new default)
    data = saved_run_settings(cls, saved) if isinstance(saved, dict) else {}
    if args.config:
        data.update({k: v for k, v in read_toml(args.config).items() if k != "app"})
    data.update(flag_values(cls, args))
    data["name"] = names[0]
    return config_from_dict(cls, data, "--resume")
