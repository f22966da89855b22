"""The ``rnnkit`` command line: one sub-command per module in :mod:`rnnkit.commands`.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
Bad input (:class:`~rnnkit.RnnkitError`, a missing file, bad flags) prints one line on stderr and exits 2;
an interruption prints one line and exits 128 + the signal (130 for Ctrl-C, 143 for SIGTERM).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rnnkit._errors import RnnkitError
from rnnkit._signals import deferred_signals, graceful_signals, ignore_signals

# sub-command modules, in the order ``rnnkit --help`` lists them
COMMANDS = ("train", "evaluate", "predict", "generate", "export", "serve", "demo", "experiment", "bench")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        sys.stderr.write(f"rnnkit: error: {message}\n")
        raise SystemExit(2)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; given the command line ``argv``, only the command it names gets its arguments.

    A command's arguments can need heavy imports (``train`` reads every application's settings, and with
    them torch): ``rnnkit --help`` or a mistyped command should not wait seconds for them.
    """
    chosen = None if argv is None else next((a for a in argv if not a.startswith("-")), "")
    parser = _Parser(prog="rnnkit", description="Recurrent neural networks on PyTorch.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        mod = importlib.import_module(f"rnnkit.commands.{name}")
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        if chosen is None or chosen == mod.NAME:
            mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


def main(argv: list[str] | None = None) -> int:
    # The handlers go in first, before any command (or torch) is imported, so that a Ctrl-C or a SIGTERM at
    # any moment from here on ends in one line and 130/143, never a traceback. (``import rnnkit`` and this
    # module load nothing heavy, so the moments before this line are the interpreter's own start-up.)
    try:
        with graceful_signals():
            try:
                return _main(argv)
            except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM turned into Interrupted by the handler
                return _interrupted(e)
    except KeyboardInterrupt as e:  # a signal in the instant the handlers were being put in or taken out
        return _interrupted(e)


def _main(argv: list[str] | None) -> int:
    try:
        with deferred_signals():  # the named command may import torch and numpy: a signal waits until loaded
            argv = sys.argv[1:] if argv is None else list(argv)
            parser = build_parser(argv)
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a bad flag (2, already reported on one line)
        return e.code if isinstance(e.code, int) else 2
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except RnnkitError as e:
        sys.stderr.write(f"rnnkit: error: {_one_line(e)}\n")
        return 2
    except FileNotFoundError as e:
        sys.stderr.write(f"rnnkit: error: file not found: {e.filename}\n")
        return 2
    except BrokenPipeError:  # the reader went away (`rnnkit ... | head`): stop quietly, as Unix tools do
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error while Python flushes
        return 141  # 128 + SIGPIPE, what a shell reports for a tool that a closed pipe stopped
    except OSError as e:  # permission denied, disk full, ...: the system's reason and the file
        where = f": {e.filename}" if e.filename else ""
        sys.stderr.write(f"rnnkit: error: {_one_line(e.strerror or e)}{where}\n")
        return 2


def _interrupted(e: KeyboardInterrupt) -> int:
    """One line for an interruption (which signal, where, how to go on); exit status 128 + signal."""
    ignore_signals()  # we are stopping: a second signal must not cut the line short with a traceback
    signum = int(getattr(e, "signum", 2))
    name = {2: "Ctrl-C (SIGINT)", 15: "SIGTERM"}.get(signum, f"signal {signum}")
    detail = getattr(e, "detail", "")
    hint = getattr(e, "hint", "")
    text = f"rnnkit: interrupted by {name}" + (f" {detail}" if detail else "") + (f"; {hint}" if hint else "")
    sys.stderr.write(_one_line(text) + "\n")
    return 128 + signum


if __name__ == "__main__":
    raise SystemExit(main())
