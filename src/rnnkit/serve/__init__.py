"""``rnnkit serve``: saved runs behind an HTTP API (FastAPI + uvicorn), with streaming and a browser page.

Every run gets the endpoints of its application under ``/models/{name}/`` (``name`` = the run's folder):

==============  ===============================================================================
application     endpoints
==============  ===============================================================================
sentiment       ``classify``
timeseries      ``forecast``; sessions (feed a series chunk by chunk)
textgen         ``score``, ``generate``, ``generate/stream`` (server-sent events); sessions (score a
                text piece by piece, the recurrent state kept on the server). Concurrent generation
                requests are batched into one step of the compiled loop (``generation`` limit)
translate       ``translate``
speech          ``transcribe`` (an uploaded audio file or .npz of features; connected-speech runs: the
                words of a recording with their times)
handwriting     ``read`` (an uploaded line image)
music           ``generate`` (ABC tunes)
caption         ``caption`` (images in base64 or as data: URLs; greedy or beam, n best)
==============  ===============================================================================

Also ``GET /`` (a page to try every model), ``GET /health``, ``GET /models`` and the OpenAPI docs at
``/docs``. Limits (:class:`ServeLimits`) bound every request; bad requests get a 4xx answer whose
``detail`` is one line. Needs the ``serve`` extra: ``pip install 'rnnkit[serve]'``. Example::

    from fastapi.testclient import TestClient
    from rnnkit.serve import ServeLimits, create_app

    client = TestClient(create_app(["runs/demo-austen"], ServeLimits(max_tokens=500)))
    client.post("/models/demo-austen/generate", json={"prompt": "It is", "length": 50, "seed": 3}).json()
"""

from __future__ import annotations

from rnnkit.serve._limits import ServeLimits

__all__ = ["ServeLimits", "create_app"]


def create_app(runs, limits: ServeLimits | None = None):
    """A FastAPI application serving ``runs`` (see :func:`rnnkit.serve._app.create_app`); FastAPI is
    imported here, so ``rnnkit.serve`` itself loads without the ``serve`` extra."""
    from rnnkit.serve._app import create_app as _create

    return _create(runs, limits)
