"""The FastAPI application: routes per loaded model, errors as one-line 4xx answers, limits, the page.

Inference runs in worker threads (``anyio.to_thread``) behind one capacity limiter, so the event loop only
parses requests and writes answers; each request has a time limit. Nothing here unpickles anything: runs
are read by their applications' ``load`` (safetensors and JSON), uploads by the applications' readers.
"""

import contextlib
import inspect
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from rnnkit._errors import RnnkitError
from rnnkit.serve._handlers import (
    HANDLERS,
    Endpoint,
    ModelHandler,
    _TooManyPixels,
    temporary_folder,
    upload_path,
)
from rnnkit.serve._limits import ServeLimits
from rnnkit.serve._sessions import SessionLimit, SessionMissing, SessionStore
from rnnkit.serve._stream import GenerationTimeout

log = logging.getLogger("rnnkit.serve")


class _TooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"request body too large: the limit is {limit:,} bytes (--max-body-mb)")


class _Timeout(RnnkitError):
    pass


@dataclass
class _Loaded:
    name: str
    app: str
    run: Path
    model: Any
    handler: ModelHandler


def load_runs(runs: Sequence[str | Path], limits: ServeLimits) -> list[_Loaded]:
    """Load every run once; a bad path, a damaged run or two runs of one name is an :class:`RnnkitError`."""
    from rnnkit.apps import APP_NAMES, app_module
    from rnnkit.apps.rundir import open_run

    loaded: list[_Loaded] = []
    for path in runs:
        run, manifest = open_run(path, APP_NAMES)
        app = manifest["app"]
        if app not in HANDLERS:
            raise RnnkitError(f"run {run.name}: rnnkit serve has no endpoints for application {app!r} yet")
        name = run.resolve().name
        if any(m.name == name for m in loaded):
            raise RnnkitError(f"two runs are named {name!r}: give runs with different folder names")
        model = app_module(app).load(run)
        loaded.append(_Loaded(name, app, run, model, HANDLERS[app](name, model, limits)))
    if not loaded:
        raise RnnkitError("expected at least one run to serve, got none")
    return loaded


def _one_line(errors: Sequence[dict]) -> str:
    parts = []
    for e in errors[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _pull(it: Iterator[str], budget_s: float = 0.02, most: int = 32) -> tuple[list[str], bool]:
    """The pieces ``it`` makes in about ``budget_s`` (one thread hop per batch, not per token)."""
    pieces: list[str] = []
    end = time.monotonic() + budget_s
    for piece in it:
        pieces.append(piece)
        if len(pieces) >= most or time.monotonic() > end:
            return pieces, False
    return pieces, True


class _BodyLimit:
    """ASGI middleware: refuse a body over ``limit`` bytes (by its Content-Length, or as it arrives)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            response = JSONResponse({"detail": _TooLarge(self.limit).detail}, status_code=413)
            return await response(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge(self.limit)
            return message

        return await self.app(scope, counted, send)


def create_app(runs: Sequence[str | Path], limits: ServeLimits | None = None) -> FastAPI:
    """A FastAPI application serving the runs at ``runs`` (each loaded once, here).

    Routes: ``GET /`` (the page), ``GET /health``, ``GET /models``, ``/docs`` (OpenAPI), and per model
    ``POST /models/{name}/{endpoint}`` plus, where the application streams, ``/models/{name}/sessions``.

    Example::

        import uvicorn
        uvicorn.run(create_app(["runs/demo-austen"]), port=8000)
    """
    from rnnkit.config import validate_config

    limits = validate_config(limits or ServeLimits())
    models = load_runs(runs, limits)
    sessions = SessionStore(limits.max_sessions, limits.session_idle_s)
    limiter = anyio.CapacityLimiter(limits.workers)
    body_limit = int(limits.max_body_mb * 1e6)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        for m in models:  # the batched generation's worker threads
            if m.handler.close:
                m.handler.close()

    app = FastAPI(
        lifespan=lifespan,
        title="rnnkit serve",
        description="Recurrent models trained with rnnkit: "
        + ", ".join(f"{m.name} ({m.app})" for m in models),
        version="1",
    )
    app.add_middleware(_BodyLimit, limit=body_limit)

    timeout_message = f"the request took longer than the limit of {limits.timeout_s:g} s (--timeout-s)"

    async def in_thread(fn, *args):
        try:
            with anyio.fail_after(limits.timeout_s):
                return await anyio.to_thread.run_sync(fn, *args, limiter=limiter, abandon_on_cancel=True)
        except TimeoutError:
            raise _Timeout(timeout_message) from None

    # -- errors: one line in "detail", the status saying whose fault it is ---------------------------------
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse({"detail": _one_line(errors), "errors": errors}, status_code=422)

    @app.exception_handler(RnnkitError)
    async def _bad(request: Request, exc: RnnkitError):
        status = 400
        if isinstance(exc, SessionLimit):
            status = 429
        elif isinstance(exc, _TooManyPixels):
            status = 413
        elif isinstance(exc, SessionMissing):
            status = 404
        elif isinstance(exc, (_Timeout, GenerationTimeout)):  # whichever of the two clocks ran out first
            return JSONResponse({"detail": timeout_message}, status_code=504)
        return JSONResponse({"detail": " ".join(str(exc).split())}, status_code=status)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        detail = exc.detail
        if exc.status_code == 404 and detail == "Not Found":
            detail = (
                f"no such endpoint: {request.method} {request.url.path}; GET /models lists the loaded "
                "models and their endpoints"
            )
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}; GET /models lists the endpoints"
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server log"}, 500)

    # -- the page, health, the list of models ---------------------------------------------------------------
    static = resources.files("rnnkit.serve") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return (static / "index.html").read_text(encoding="utf-8")

    @app.get("/health", summary="The server is up; what it serves and its limits")
    def health() -> dict[str, Any]:
        running = {m.name: m.handler.status() for m in models if m.handler.status}
        return {
            "status": "ok",
            "models": len(models),
            "sessions": len(sessions),
            "running": running,
            "limits": asdict(limits),
        }

    listing = []
    for m in models:
        entry: dict[str, Any] = {"name": m.name, "app": m.app, "run": str(m.run), **m.handler.info}
        entry["endpoints"] = [
            {
                "name": ep.name,
                "method": "POST",
                "path": f"/models/{m.name}/{ep.name}",
                "kind": ep.kind,
                "summary": ep.summary,
                **({"example": ep.example} if ep.example is not None else {}),
                **({"accepts": list(ep.suffixes)} if ep.suffixes else {}),
                **({"files_field": ep.files_field} if ep.files_field else {}),
            }
            for ep in m.handler.endpoints
        ]
        if m.handler.session:
            entry["sessions"] = {
                "open": f"POST /models/{m.name}/sessions",
                "feed": f"POST /models/{m.name}/sessions/{{id}}",
                "close": f"DELETE /models/{m.name}/sessions/{{id}}",
                "summary": m.handler.session.summary,
                "example": m.handler.session.example,
            }
        listing.append(entry)

    @app.get("/models", summary="The loaded models, their applications and endpoints")
    def list_models() -> dict[str, Any]:
        return {"models": listing}

    for m in models:
        for ep in m.handler.endpoints:
            _add_route(app, m, ep, in_thread, limiter, limits, body_limit)
        if m.handler.session:
            _add_sessions(app, m, sessions, in_thread, limits)
    return app


def _add_route(
    app: FastAPI, m: _Loaded, ep: Endpoint, in_thread, limiter, limits: ServeLimits, body_limit: int
):
    path = f"/models/{m.name}/{ep.name}"
    opts = {"summary": ep.summary, "tags": [m.name], "name": f"{m.name}:{ep.name}"}
    Body = ep.body

    if ep.kind == "json":

        async def json_route(body: Body) -> dict[str, Any]:
            if inspect.iscoroutinefunction(ep.call):  # its work runs elsewhere; it stops at the deadline too
                try:
                    with anyio.fail_after(limits.timeout_s):
                        return await ep.call(body, time.monotonic() + limits.timeout_s)
                except TimeoutError:
                    raise _Timeout("over the time limit") from None
            if ep.deadline:  # the call stops itself at the deadline too, so no abandoned thread computes on
                return await in_thread(ep.call, body, time.monotonic() + limits.timeout_s)
            return await in_thread(ep.call, body)

        app.post(path, **opts)(json_route)
    elif ep.kind == "upload":
        accepts = "one file ending in " + ", ".join(ep.suffixes)

        async def upload_route(
            file: Annotated[UploadFile, File(description=accepts)],
        ) -> dict[str, Any]:
            upload_path("/", file.filename, ep.suffixes)  # a wrong kind of file fails before it is read
            data = await file.read(body_limit + 1)
            if len(data) > body_limit:
                raise _TooLarge(body_limit)
            if not data:
                raise RnnkitError(f"{file.filename}: expected a file, got an empty upload")

            def work():
                with temporary_folder() as folder:
                    target = upload_path(folder, file.filename, ep.suffixes)
                    target.write_bytes(data)
                    return ep.call(target)

            return await in_thread(work)

        app.post(path, **opts)(upload_route)
    else:

        async def stream_route(body: Body) -> StreamingResponse:
            deadline = time.monotonic() + limits.timeout_s
            pieces = ep.call(body, deadline)

            async def batches():
                if hasattr(pieces, "__aiter__"):  # computed elsewhere (the batched generation's worker)
                    async with contextlib.aclosing(pieces):  # a client gone: its stream leaves the batch now
                        async for batch in pieces:
                            yield batch
                    return
                while True:
                    batch, done = await anyio.to_thread.run_sync(_pull, pieces, limiter=limiter)
                    yield batch
                    if done:
                        return

            async def events():
                count = 0
                try:
                    async with contextlib.aclosing(batches()) as ready:
                        async for batch in ready:
                            count += len(batch)
                            if batch:  # the pieces that are ready go out in one write, each its own event
                                yield "".join(_sse("token", {"text": piece}) for piece in batch)
                    yield _sse("done", {"tokens": count})
                except RnnkitError as exc:
                    yield _sse("error", {"detail": " ".join(str(exc).split()), "tokens": count})
                except Exception as exc:  # the stream's status line is already sent: say it in an event
                    log.exception("stream %s failed", path)
                    yield _sse("error", {"detail": f"internal error ({type(exc).__name__})", "tokens": count})

            headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
            return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

        app.post(path, response_class=StreamingResponse, **opts)(stream_route)


def _add_sessions(app: FastAPI, m: _Loaded, sessions: SessionStore, in_thread, limits: ServeLimits):
    kind = m.handler.session
    Chunk = kind.body
    base = f"/models/{m.name}/sessions"
    tags = [m.name]

    @app.post(
        base, status_code=201, summary=f"Open a session: {kind.summary}", tags=tags, name=f"{m.name}:open"
    )
    def open_session() -> dict[str, Any]:
        sid = sessions.create(m.name, kind.open())
        return {"session": sid, "model": m.name, "idle_expiry_s": limits.session_idle_s}

    @app.post(base + "/{sid}", summary="Feed the next chunk of a session", tags=tags, name=f"{m.name}:feed")
    async def feed(sid: str, body: Chunk) -> dict[str, Any]:
        session = sessions.get(m.name, sid)

        def work():
            with session.lock:
                return kind.feed(session.state, body)

        return {"session": sid, **(await in_thread(work))}

    @app.delete(base + "/{sid}", summary="Close a session", tags=tags, name=f"{m.name}:close")
    def close(sid: str) -> dict[str, Any]:
        sessions.delete(m.name, sid)
        return {"deleted": sid}
