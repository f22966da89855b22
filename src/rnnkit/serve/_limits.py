"""The server's limits (no FastAPI import here: the CLI builds its flags from this class at start-up)."""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit.config import option


@dataclass
class ServeLimits:
    """What one request, and the server as a whole, may ask for (``rnnkit serve`` flags of the same names).

    A request over a per-request limit gets 422 (413 for the body size, 504 for the time); a session beyond
    ``max_sessions`` gets 429. Example::

        from rnnkit.serve import ServeLimits, create_app
        app = create_app(["runs/demo-austen"], ServeLimits(max_tokens=500, timeout_s=20, workers=1))
    """

    max_text_chars: int = option(10_000, "characters per text, prompt or chunk", low=1)
    max_batch: int = option(64, "texts (or sentences) per request", low=1)
    max_values: int = option(100_000, "values per forecast request or session chunk", low=1)
    max_tokens: int = option(2_000, "tokens generated per sample", low=1)
    max_samples: int = option(4, "samples per generation request", low=1)
    max_beam: int = option(8, "beam width of a translation or a caption", low=1)
    max_image_pixels: int = option(4_000_000, "pixels (width x height) of an image to caption", low=1)
    max_sessions: int = option(64, "streaming sessions open at once", low=1)
    session_idle_s: float = option(600.0, "seconds after which an unused session is dropped", low=1e-3)
    max_body_mb: float = option(10.0, "megabytes per request body (uploads included)", low=1e-3)
    timeout_s: float = option(60.0, "seconds a request (or a whole stream) may take", low=1e-3)
    workers: int = option(2, "requests computed at once (worker threads); others wait their turn", low=1)
    generation: str = option(
        "auto",
        "how text generation runs: 'batched' (the concurrent requests of a model advance together, one step "
        "for all), 'per-request' (each request steps alone) or 'auto' (batched where the compiled loop "
        "covers the model)",
        choices=("auto", "batched", "per-request"),
    )
    max_streams: int = option(
        64, "generation streams of one model batched at once; more wait their turn", low=1
    )
