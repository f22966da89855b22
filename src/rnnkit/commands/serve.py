"""``rnnkit serve RUN [RUN ...]``: saved runs behind an HTTP API, with a page to try them.

Every run is loaded once, at start (a bad run stops the command with one line). Then open
http://127.0.0.1:8000/ (the page) or http://127.0.0.1:8000/docs (the API). Example::

    rnnkit serve runs/demo-austen runs/sentiment --port 8000 --max-tokens 1000

Needs the ``serve`` extra (FastAPI, uvicorn): ``pip install 'rnnkit[serve]'``. See docs/serve.md.
"""

from __future__ import annotations

import argparse

from rnnkit._errors import RnnkitError

NAME = "serve"
HELP = "serve saved runs over HTTP (JSON endpoints, streaming, a browser page)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from rnnkit.config import add_config_arguments
    from rnnkit.serve import ServeLimits

    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories written by 'rnnkit train'")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per computation (default: 1)")
    p.add_argument("--config", metavar="TOML", help="read the limits from a TOML file")
    add_config_arguments(p, ServeLimits)


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise RnnkitError(
            f"rnnkit serve needs FastAPI and uvicorn ({exc.name} is missing): pip install 'rnnkit[serve]'"
        ) from None
    import torch

    from rnnkit.config import config_from_args
    from rnnkit.serve import ServeLimits, create_app

    if not 0 < args.port < 65536:
        raise RnnkitError(f"--port: expected a port in 1..65535, got {args.port}")
    if args.threads < 1:
        raise RnnkitError(f"--threads: expected at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    limits = config_from_args(ServeLimits, args, args.config)
    app = create_app(args.runs, limits)
    sock = _listen(
        args.host, args.port
    )  # before saying "serving": a port in use is one line, not uvicorn's log
    print(f"serving {len(args.runs)} run(s) on http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    return 0


def _listen(host: str, port: int):
    """A socket listening on ``host:port``; one line when it cannot be had (the port taken, an unknown host)."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        why = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            why += "; another program listens there: stop it or choose another --port"
        raise RnnkitError(
            f"--host/--port: expected an address to listen on, got {host}:{port}: {why}"
        ) from None
