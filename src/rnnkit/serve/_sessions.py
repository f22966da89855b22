"""Server-side streaming sessions: a bounded table of per-client state with idle expiry.

A session belongs to one loaded model and holds what that model needs to go on from the last chunk: the
recurrent state of a language model scoring a text piece by piece, or the recent values of a forecaster
(see :mod:`rnnkit.serve._handlers`). The table is bounded (``max_sessions``); a session not used for
``idle_s`` seconds is dropped the next time the table is touched.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from rnnkit._errors import RnnkitError


class SessionLimit(RnnkitError):
    """The table is full (the server answers 429)."""


class SessionMissing(RnnkitError):
    """No such session, or it expired (the server answers 404)."""


@dataclass
class Session:
    model: str  # the name of the loaded model it belongs to
    state: Any  # the handler's own object
    lock: threading.Lock = field(default_factory=threading.Lock)  # one chunk at a time
    last_used: float = field(default_factory=time.monotonic)


class SessionStore:
    """Sessions by id, at most ``max_sessions`` of them, each dropped after ``idle_s`` seconds unused."""

    def __init__(self, max_sessions: int, idle_s: float, clock=time.monotonic):
        self.max_sessions = max_sessions
        self.idle_s = idle_s
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def _expire(self) -> None:
        now = self._clock()
        for sid in [s for s, v in self._sessions.items() if now - v.last_used > self.idle_s]:
            del self._sessions[sid]

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._sessions)

    def create(self, model: str, state: Any) -> str:
        with self._lock:
            self._expire()
            if len(self._sessions) >= self.max_sessions:
                raise SessionLimit(
                    f"too many open sessions: the limit is {self.max_sessions}; DELETE a finished one "
                    f"or wait for idle ones to expire (after {self.idle_s:g} s)"
                )
            sid = secrets.token_urlsafe(12)
            self._sessions[sid] = Session(model, state, last_used=self._clock())
            return sid

    def get(self, model: str, sid: str) -> Session:
        with self._lock:
            self._expire()
            s = self._sessions.get(sid)
            if s is None or s.model != model:
                raise SessionMissing(
                    f"no session {sid!r} for model {model!r} (never opened, deleted, or expired after "
                    f"{self.idle_s:g} s idle)"
                )
            s.last_used = self._clock()
            return s

    def delete(self, model: str, sid: str) -> None:
        with self._lock:
            s = self._sessions.get(sid)
            if s is None or s.model != model:
                raise SessionMissing(f"no session {sid!r} for model {model!r}")
            del self._sessions[sid]
