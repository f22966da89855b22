"""Concurrent text generation of one model batched into one step: a worker thread around a ``StreamBatch``.

Each generation request (streamed or not, each sample of it) is a :class:`Ticket`: its prompt, sampling
settings, seed, length and deadline. :class:`GenerationBatcher` hands tickets to one worker thread per
loaded textgen run. The worker owns a :class:`rnnkit.models.fastgen.StreamBatch`: a ticket joins it (its
prompt read into its own recurrent state, its own seeded generator), every :meth:`StreamBatch.advance`
call then gives each stream in the batch its next few tokens (8: one call of the compiled loop costs
about what 8 steps of Python bookkeeping would), and a stream leaves when it has its length, when its
deadline passes or when its client has gone (:meth:`Ticket.cancel`). The weights are read once per step
for all streams, so the tokens per second of all clients together grow with their number.

A stream's tokens come from its own generator in its own order, so they do not depend on the other
streams in the batch: they equal :meth:`rnnkit.apps.textgen.TextGenerator.generate`'s for the same seed
(the tests check it, alone and in company). The text of each token goes to the ticket's list, which the
request's coroutine drains on the event loop. The worker wakes that coroutine twice per request (for the
first pieces and at the end, ``call_soon_threadsafe``); in between the coroutine takes what has come every
20 ms, so a write to the client carries many tokens and the worker pays no system call (and no GIL
hand-over) per token.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator

import torch

from rnnkit._errors import RnnkitError
from rnnkit.serve._stream import GenerationTimeout

log = logging.getLogger("rnnkit.serve")

_STEPS = 8  # tokens per stream per compiled call (a stream joins or leaves between two calls)
_CHECK_EVERY = 2  # calls between two looks at the deadlines and cancellations of the streams in the batch
_POLL_S = 0.02  # after its first pieces, a request's coroutine takes the new ones this often


class Ticket:
    """One stream of generated text: filled by the worker thread, drained by a request's coroutine.

    ``ids``: the prompt's token ids (at least one); ``seed``: the seed of the stream's generator;
    ``spaced``: word level, whether the first word gets a leading space (as ``TextGenerator.stream``).
    """

    def __init__(
        self,
        ids: list[int],
        length: int,
        temperature: float,
        top_k: int,
        top_p: float,
        seed: int,
        deadline: float,
        spaced: bool | None = None,
    ):
        self.ids, self.length, self.deadline = ids, length, deadline
        self.settings = (temperature, top_k, top_p)
        self.seed = seed
        self.spaced = spaced  # None: character level (no spaces added)
        self.left = length
        self.cancelled = False
        self._lock = threading.Lock()
        self._pieces: list[str] = []
        self._end: BaseException | bool = False  # True: finished; an exception: failed
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future] | None = None
        self._sent = False  # whether the first pieces have come

    # -- the worker's side -------------------------------------------------------------------------------
    def _wake(self) -> None:
        # called with the lock held
        if self._waiter is not None:
            loop, future = self._waiter
            self._waiter = None
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # the loop has closed: nobody is waiting any more
                pass

    def push(self, pieces: list[str]) -> None:
        """Add pieces (empty ones are skipped); only the stream's first ones wake the waiting coroutine,
        which after that looks every ``_POLL_S`` (a wake from this thread costs a system call and a GIL
        hand-over, too much to pay per token)."""
        pieces = [p for p in pieces if p]
        if not pieces:
            return
        with self._lock:
            self._pieces.extend(pieces)
            if not self._sent:
                self._sent = True
                self._wake()

    def finish(self, error: BaseException | None = None) -> None:
        with self._lock:
            if self._end is False:
                self._end = error if error is not None else True
            self._wake()

    # -- the request's side ------------------------------------------------------------------------------
    def cancel(self) -> None:
        """The client has gone: the worker drops the stream at its next look (within a few steps)."""
        self.cancelled = True

    async def batches(self) -> AsyncIterator[list[str]]:
        """The pieces of text as they come, several at a time; raises the stream's error, if any."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                with self._lock:
                    pieces, self._pieces = self._pieces, []
                    end = self._end
                    future = None
                    if not pieces and end is False:
                        future = loop.create_future()
                        self._waiter = (loop, future)
                if pieces:
                    yield pieces
                elif end is True:
                    return
                elif end is not False:
                    raise end
                elif not self._sent:
                    await future  # the first pieces, or the end, wake it
                else:
                    await asyncio.wait([future], timeout=_POLL_S)  # the end wakes it
        finally:
            self.cancel()  # a no-op once finished; stops the stream when the client left early

    async def text(self) -> str:
        return "".join([p async for batch in self.batches() for p in batch])


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class GenerationBatcher:
    """The worker thread of one language model: streams join one :class:`StreamBatch` and leave it.

    Args:
        model: the :class:`~rnnkit.models.LanguageModel` (``fast_support`` must accept it).
        pieces: the text of each token id (``""`` for tokens without text, which are not sent).
        max_streams: streams in the batch at once; later tickets wait their turn (their deadline runs).
    """

    def __init__(self, model, pieces: list[str], max_streams: int):
        from rnnkit.models.fastgen import StreamBatch

        self._batch = StreamBatch(model)  # made here, so an unsupported model fails at start
        self._pieces = pieces
        self.max_streams = max_streams
        self._cond = threading.Condition()
        self._waiting: list[Ticket] = []
        self._active: dict[int, Ticket] = {}  # stream id in the batch -> ticket
        self._thread: threading.Thread | None = None
        self._closed = False
        self.peak = 0  # the most streams one step has advanced together so far

    def __len__(self) -> int:
        """Streams in the batch or waiting to join it."""
        return len(self._active) + len(self._waiting)

    def submit(self, ticket: Ticket) -> Ticket:
        with self._cond:
            if self._closed:
                raise RnnkitError("the server is shutting down")
            self._waiting.append(ticket)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="rnnkit-generate", daemon=True)
                self._thread.start()
            self._cond.notify()
        return ticket

    def close(self) -> None:
        """Stop the worker; streams still running end with an error."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- the worker thread -----------------------------------------------------------------------------------
    def _run(self) -> None:
        steps = 0
        while True:
            with self._cond:
                while not self._waiting and not self._active and not self._closed:
                    self._cond.wait()
                if self._closed:
                    break
                room = self.max_streams - len(self._active)
                joining, self._waiting = self._waiting[:room], self._waiting[room:]
            for t in joining:
                self._join(t)
            if steps % _CHECK_EVERY == 0 or joining:
                self._prune()
            if not self._active:  # none joined (all gone or failed): the next pass admits any still waiting
                continue
            try:
                out = self._batch.advance(_STEPS)
            except Exception as exc:  # every stream of the batch fails with it; the next ones start afresh
                log.exception("generation step failed")
                for sid in list(self._active):
                    self._leave(sid, RnnkitError(f"generation failed ({type(exc).__name__})"))
                continue
            steps += 1
            for sid, tokens in out.items():
                t = self._active[sid]
                mine = tokens[: t.left]  # a stream that ends within the call drops what comes after
                pieces = [self._pieces[token] for token in mine]
                if t.spaced is not None:  # word level: a space before each word but a first one
                    pieces = [p for p in pieces if p]
                    if pieces:
                        first = [" " + pieces[0]] if t.spaced else pieces[:1]
                        pieces, t.spaced = first + [" " + p for p in pieces[1:]], True
                t.push(pieces)
                t.left -= len(mine)
                if t.left == 0:
                    self._leave(sid)
        for sid in list(self._active):
            self._leave(sid, RnnkitError("the server is shutting down"))
        for t in self._waiting:
            t.finish(RnnkitError("the server is shutting down"))

    def _join(self, t: Ticket) -> None:
        if t.cancelled:
            t.finish()
            return
        if time.monotonic() > t.deadline:
            t.finish(GenerationTimeout("generation stopped: it waited past the request time limit"))
            return
        temperature, top_k, top_p = t.settings
        generator = torch.Generator().manual_seed(t.seed)
        try:
            sid = self._batch.add(t.ids, temperature, top_k, top_p, generator)
        except RnnkitError as exc:
            t.finish(exc)
            return
        except Exception as exc:
            log.exception("a stream could not join the batch")
            t.finish(RnnkitError(f"generation failed ({type(exc).__name__})"))
            return
        self._active[sid] = t
        self.peak = max(self.peak, len(self._active))

    def _prune(self) -> None:
        now = time.monotonic()
        for sid, t in list(self._active.items()):
            if t.cancelled:
                self._leave(sid)
            elif now > t.deadline:
                self._leave(sid, GenerationTimeout("generation stopped: it ran past the request time limit"))
        with self._cond:
            expired = [t for t in self._waiting if t.cancelled or now > t.deadline]
            self._waiting = [t for t in self._waiting if t not in expired]
        for t in expired:
            t.finish(None if t.cancelled else GenerationTimeout("generation stopped: it waited too long"))

    def _leave(self, sid: int, error: BaseException | None = None) -> None:
        t = self._active.pop(sid)
        self._batch.remove(sid)
        t.finish(error)
