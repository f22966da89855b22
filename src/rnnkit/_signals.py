"""SIGINT and SIGTERM for long commands: finish the step in flight, checkpoint, stop with a resumable run.

``timeout``, ``docker stop``, Slurm and Kubernetes stop a job with SIGTERM; a person presses Ctrl-C (SIGINT).
Inside :func:`graceful_signals` both are handled alike:

* while a :class:`~rnnkit.train.Trainer` is in ``fit`` (it registers itself with :func:`fitting`), the first
  signal asks it to stop after the current step; it writes a checkpoint and raises :class:`Interrupted`;
* anywhere else (start-up, evaluation, saving), or on a second signal, :class:`Interrupted` is raised at once.

:class:`Interrupted` is a ``KeyboardInterrupt``, so code that already cleans up after Ctrl-C cleans up after
SIGTERM too. The command line turns it into one line on stderr and exit status ``128 + signal`` (130, 143).
This module imports nothing heavy, so a command can install the handlers before it loads torch.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Interrupted", "deferred_signals", "fitting", "graceful_signals", "ignore_signals"]

_SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s)
_fitting: list[Any] = []  # trainers inside fit(), innermost last
_held: list[int] | None = None  # inside deferred_signals(): the signals received so far


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupted(KeyboardInterrupt):
    """Raised when a signal stops a command. ``signum`` is the signal; ``hint`` tells how to go on."""

    def __init__(self, signum: int = signal.SIGINT, detail: str = ""):
        super().__init__(signum, detail)
        self.signum = int(signum)
        self.detail = detail
        self.hint = ""

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextmanager
def fitting(trainer: Any) -> Iterator[None]:
    """Mark ``trainer`` as training, so that a signal asks it to stop after its current step."""
    _fitting.append(trainer)
    try:
        yield
    finally:
        _fitting.remove(trainer)


def _handler(signum: int, frame: Any) -> None:
    if _held is not None:  # inside deferred_signals(): acted on when the block ends
        _held.append(signum)
        return
    trainer = _fitting[-1] if _fitting else None
    if trainer is not None and getattr(trainer, "_signal", None) is None:
        trainer._signal = signum
        sys.stderr.write(
            f"rnnkit: {signal_name(signum)} received: stopping after the current step and saving a checkpoint "
            "(send it again to stop at once)\n"
        )
        sys.stderr.flush()
        return
    raise Interrupted(signum)


def ignore_signals() -> None:
    """Ignore SIGINT and SIGTERM from now on (until :func:`graceful_signals` restores the previous handlers):
    for the last moments of a command that is already stopping."""
    if threading.current_thread() is threading.main_thread():
        for s in _SIGNALS:
            signal.signal(s, signal.SIG_IGN)


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then raise :class:`Interrupted` for the first one.

    For loading native libraries (torch, numpy): an exception raised by a signal handler while a C extension
    initialises can leave it half-imported, and the command then fails later with an unrelated error
    (``module 'numpy' has no attribute ...``, ``cannot load module more than once per process``) instead of
    stopping. Holding the signal for the second or so an import takes keeps the one-line exit. Nested blocks
    act once, at the outermost end; outside :func:`graceful_signals` the handler is not ours, so this holds
    nothing.
    """
    global _held
    outer = _held is not None
    if not outer:
        _held = []
    try:
        yield
    finally:
        if not outer:
            got, _held = _held, None
            if got:
                raise Interrupted(got[0], "while loading")


@contextmanager
def graceful_signals() -> Iterator[None]:
    """Handle SIGINT and SIGTERM as described in the module docstring (main thread only; else a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in _SIGNALS}
    for s in _SIGNALS:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
