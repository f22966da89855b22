"""What the server offers for each application: its endpoints, request schemas and sessions.

A handler is a function ``(name, model, limits) -> ModelHandler`` registered in :data:`HANDLERS` under the
application's name. The app factory (:mod:`rnnkit.serve._app`) turns each :class:`Endpoint` into a route
``/models/{name}/{endpoint}``, runs its ``call`` in a worker thread and, for a handler with a
:class:`SessionKind`, adds ``/models/{name}/sessions[/{id}]``. A new application needs one more function
here and one line in :data:`HANDLERS`.

This module does not use ``from __future__ import annotations``: the request schemas are built per server
(their limits are the server's), and pydantic reads their field types from the class bodies.
"""

import contextlib
import math
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rnnkit._errors import RnnkitError


@dataclass
class Endpoint:
    """One route of a model. ``kind``: ``json`` (a JSON body -> a JSON answer), ``stream`` (a JSON body ->
    server-sent events, ``call`` returns an iterator of text pieces) or ``upload`` (one file -> JSON).

    ``call`` runs in a worker thread, except a coroutine function (json: ``await call(body, deadline)``)
    or an async generator function (stream: ``call(body, deadline)`` yields lists of pieces), which run on
    the event loop because their work is done elsewhere (the batched generation's worker thread)."""

    name: str
    summary: str
    call: Callable[
        ..., Any
    ]  # json: (body) -> dict; stream: (body, deadline) -> Iterator[str]; upload: (path)
    body: type[BaseModel] | None = None
    kind: str = "json"
    example: dict[str, Any] | None = None
    suffixes: tuple[str, ...] = ()  # upload: accepted file name endings (json: those of files_field)
    files_field: str | None = None  # json: the body's list of files as base64 (the page fills it)
    deadline: bool = False  # json: call(body, deadline) stops itself at time.monotonic() == deadline


@dataclass
class SessionKind:
    """A stateful stream: ``open()`` makes the per-session state, ``feed(state, body)`` reads one chunk."""

    summary: str
    open: Callable[[], Any]
    feed: Callable[[Any, Any], dict[str, Any]]
    body: type[BaseModel]
    example: dict[str, Any]


@dataclass
class ModelHandler:
    endpoints: list[Endpoint]
    session: SessionKind | None = None
    info: dict[str, Any] = field(default_factory=dict)  # shown by GET /models
    status: Callable[[], dict[str, Any]] | None = None  # shown by GET /health (what is running now)
    close: Callable[[], None] | None = None  # called when the server stops


def _strict() -> ConfigDict:
    return ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------------------------
# sentiment
# ---------------------------------------------------------------------------------------------------------
def _sentiment(name: str, model, lim) -> ModelHandler:
    Text = Annotated[str, Field(min_length=1, max_length=lim.max_text_chars)]

    class ClassifyRequest(BaseModel):
        model_config = _strict()
        texts: list[Text] = Field(min_length=1, max_length=lim.max_batch, description="texts to classify")

    def classify(body: ClassifyRequest) -> dict[str, Any]:
        return {"results": model.predict(list(body.texts))}

    return ModelHandler(
        [
            Endpoint(
                "classify",
                "Label and class probabilities of each text",
                classify,
                ClassifyRequest,
                example={"texts": ["a warm, funny and wise film", "dull and far too long"]},
            )
        ],
        info={"classes": model.classes},
    )


# ---------------------------------------------------------------------------------------------------------
# timeseries
# ---------------------------------------------------------------------------------------------------------
class _ForecastStream:
    """The recent values of one client's series. The forecaster reads a fixed window of the last ``window``
    values (it was trained on windows; an ES-RNN run smooths over all of them, up to its ``memory``), so
    those values, not a hidden state, are what carries over."""

    def __init__(self, model):
        self.model = model
        self.window = model.config.window
        self.keep = getattr(model, "memory", self.window)  # an ES-RNN run smooths over all it was given
        self.values = np.zeros((0, len(model.columns)))
        self.times: list[str] | None = []  # None once a chunk came without times
        self.count = 0

    def feed(self, values: np.ndarray, times: list[str] | None) -> dict[str, Any]:
        v = _as_columns(values, self.model)
        if times is not None and len(times) != len(v):
            raise RnnkitError(f"expected one time per value row: {len(v)} rows, got {len(times)} times")
        self.values = np.concatenate([self.values, v])[-self.keep :]
        self.times = None if times is None or self.times is None else (self.times + list(times))[-self.keep :]
        self.count += len(v)
        out: dict[str, Any] = {"received": len(v), "total": self.count}
        if self.count < self.window:
            out.update(forecast=None, needed=self.window - self.count)
            return out
        out.update(self.model.predict(self.values, self.times or None))
        return out


def _as_columns(values, model) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2 or v.shape[1] != len(model.columns):
        raise RnnkitError(
            f"expected rows of {len(model.columns)} value(s) {model.columns}, got shape {tuple(v.shape)}"
        )
    return v


def _timeseries(name: str, model, lim) -> ModelHandler:
    Row = float | Annotated[list[float], Field(min_length=1, max_length=64)]
    Time = Annotated[str, Field(max_length=64)]

    class ForecastRequest(BaseModel):
        model_config = _strict()
        values: list[Row] = Field(
            min_length=1,
            max_length=lim.max_values,
            description="recent values, oldest first: numbers (one column) or rows of numbers",
        )
        times: list[Time] | None = Field(None, max_length=lim.max_values, description="their time stamps")

    class ChunkRequest(ForecastRequest):
        pass

    def forecast(body: ForecastRequest) -> dict[str, Any]:
        v = _as_columns(body.values, model)
        if body.times is not None and len(body.times) != len(v):
            raise RnnkitError(f"expected one time per value row: {len(v)} rows, got {len(body.times)} times")
        return model.predict(v, body.times)

    window = model.config.window
    example = {"values": [round(math.sin(i / 3), 3) for i in range(window)]}
    return ModelHandler(
        [
            Endpoint(
                "forecast",
                "The next `horizon` values after the given ones",
                forecast,
                ForecastRequest,
                example=example,
            )
        ],
        SessionKind(
            "Feed a series chunk by chunk; each answer forecasts from everything fed so far",
            lambda: _ForecastStream(model),
            lambda s, body: s.feed(body.values, body.times),
            ChunkRequest,
            {"values": example["values"][: max(1, window // 2)]},
        ),
        info={
            "window": window,
            "horizon": model.config.horizon,
            "columns": model.columns,
            "target": model.target,
        },
    )


# ---------------------------------------------------------------------------------------------------------
# textgen
# ---------------------------------------------------------------------------------------------------------
class _ScoreStream:
    """Bits per token of a text fed piece by piece, the language model's state carried between pieces.

    Word-level runs hold back a word that may go on in the next piece (the text does not end in a space or
    a punctuation mark); ``end`` reads it."""

    def __init__(self, generator):
        self.model, self.vocab = generator.model, generator.vocab
        self.state = None
        self.log_probs = None  # (V,) after the last token read
        self.nats = 0.0
        self.tokens = 0
        self.unknown = 0
        self.pending = ""

    def _ids(self, text: str, end: bool) -> list[int]:
        if self.vocab.level == "char":
            return self.vocab.encode(text)
        text = self.pending + text
        self.pending = ""
        tokens = self.vocab.tokenize(text)
        if not end and tokens and text and not text[-1].isspace() and tokens[-1][-1:].isalnum():
            m = re.search(r"\w+(?:'\w+)*'?$", text)
            self.pending = m.group(0) if m else ""
            tokens = tokens[:-1]
        return self.vocab.encode(" ".join(tokens)) if tokens else []

    def feed(self, text: str, end: bool) -> dict[str, Any]:
        import torch

        ids = self._ids(text, end)
        if ids:
            with torch.no_grad():
                self.model.eval()
                if self.log_probs is not None:
                    self.nats -= float(self.log_probs[ids[0]])
                logits, self.state = self.model(torch.tensor([ids]), self.state)  # (1, T, V)
                lp = logits[0].log_softmax(-1)
                target = torch.tensor(ids[1:])
                self.nats -= float(lp[:-1].gather(1, target.unsqueeze(1)).sum()) if len(ids) > 1 else 0.0
                self.log_probs = lp[-1]
            self.tokens += len(ids)
            self.unknown += sum(1 for i in ids if i == self.vocab.unk_id)
        scored = max(self.tokens - 1, 0)
        return {
            "read": len(ids),
            "tokens": self.tokens,
            "unknown": self.unknown,
            "pending": self.pending,
            "bits_per_token": self.nats / scored / math.log(2) if scored else None,
        }


def generation_path(model, choice: str) -> tuple[str, str]:
    """``(path, reason)``: ``"batched"`` (concurrent requests share one :class:`StreamBatch`) or
    ``"per-request"`` for a textgen run, given ``--generation`` ``choice``; ``"batched"`` where the compiled
    loop does not cover the model is an error."""
    from rnnkit.models.fastgen import fast_support

    if choice == "per-request":
        return "per-request", "each request steps its own stream, as asked (--generation per-request)"
    ok, reason = fast_support(model.model)
    if ok:
        return "batched", f"concurrent requests advance together in one {reason}"
    if choice == "batched":
        raise RnnkitError(f"--generation batched: the compiled loop does not cover this model: {reason}")
    return "per-request", f"each request steps its own stream ({reason})"


def _textgen(name: str, model, lim) -> ModelHandler:
    from rnnkit.apps.textgen.config import GenerateConfig
    from rnnkit.apps.textgen.model import _prompt_ids
    from rnnkit.serve._batch import GenerationBatcher, Ticket

    path, why = generation_path(model, lim.generation)
    batcher = None
    if path == "batched":
        texts = [model.vocab.decode([i]) for i in range(len(model.vocab))]
        batcher = GenerationBatcher(model.model, texts, lim.max_streams)

    Text = Annotated[str, Field(min_length=1, max_length=lim.max_text_chars)]
    Prompt = Annotated[str, Field(max_length=lim.max_text_chars)]

    class ScoreRequest(BaseModel):
        model_config = _strict()
        texts: list[Text] = Field(min_length=1, max_length=lim.max_batch, description="texts to score")

    class SamplingSettings(BaseModel):
        model_config = _strict()
        prompt: Prompt = Field("", description="text to continue (empty: start at a new line)")
        length: int = Field(200, ge=1, le=lim.max_tokens, description="tokens to generate")
        temperature: float = Field(0.8, ge=0.0, le=10.0, description="0 = greedy")
        top_k: int = Field(0, ge=0, description="0 = all tokens")
        top_p: float = Field(1.0, gt=0.0, le=1.0)
        seed: int = Field(0, ge=0, lt=2**31, description="the same seed gives the same text")

    class GenerateRequest(SamplingSettings):
        num_samples: int = Field(1, ge=1, le=lim.max_samples)

    class ScoreChunk(BaseModel):
        model_config = _strict()
        text: Prompt = Field(description="the next piece of the text")
        end: bool = Field(False, description="the text ends here (word-level runs read a held-back word)")

    def config(body: SamplingSettings, samples: int = 1) -> GenerateConfig:
        settings = body.model_dump(exclude={"prompt", "num_samples"})
        return GenerateConfig(**settings, num_samples=samples)

    def score(body: ScoreRequest) -> dict[str, Any]:
        return {"results": model.score(list(body.texts))}

    def pieces(body: SamplingSettings, gen: GenerateConfig, deadline: float, sample: int) -> Iterator[str]:
        """Sample ``sample`` token by token, stopped at ``deadline``: the generator's own ``stream`` (a
        compiled loop) where it has one, else :func:`rnnkit.serve._stream.stream_tokens`."""
        from rnnkit.serve._stream import GenerationTimeout, stream_tokens

        if sample == 0 and hasattr(model, "stream"):
            for piece in model.stream(body.prompt, gen):
                if time.monotonic() > deadline:
                    raise GenerationTimeout("generation stopped: it ran past the request time limit")
                yield piece
            return
        yield from stream_tokens(model, body.prompt, gen, deadline, sample)

    def generate(body: GenerateRequest, deadline: float) -> dict[str, Any]:
        # token by token with a deadline (a thread cannot be stopped from outside): the same text as
        # TextGenerator.generate, which the tests check
        gen = config(body, body.num_samples)
        samples = ["".join(pieces(body, gen, deadline, i)) for i in range(body.num_samples)]
        return {"prompt": body.prompt, "samples": samples}

    def stream(body: SamplingSettings, deadline: float) -> Iterator[str]:
        return pieces(body, config(body), deadline, 0)

    def ticket(body: SamplingSettings, sample: int, deadline: float) -> Ticket:
        # the prompt and seed of TextGenerator.generate's sample `sample`
        spaced = bool(body.prompt.strip()) if model.vocab.level == "word" else None
        settings = (body.length, body.temperature, body.top_k, body.top_p)
        return Ticket(
            _prompt_ids(model.vocab, body.prompt), *settings, body.seed * 7919 + sample, deadline, spaced
        )

    async def generate_batched(body: GenerateRequest, deadline: float) -> dict[str, Any]:
        tickets = [batcher.submit(ticket(body, i, deadline)) for i in range(body.num_samples)]
        try:
            samples = [await t.text() for t in tickets]
        finally:
            for t in tickets:
                t.cancel()
        return {"prompt": body.prompt, "samples": samples}

    async def stream_batched(body: SamplingSettings, deadline: float):
        async with contextlib.aclosing(batcher.submit(ticket(body, 0, deadline)).batches()) as ready:
            async for batch in ready:
                yield batch

    sample = {
        "prompt": "It is a truth universally acknowledged",
        "length": 120,
        "temperature": 0.7,
        "seed": 1,
    }
    return ModelHandler(
        [
            Endpoint(
                "score",
                "Bits per token of each text under the model",
                score,
                ScoreRequest,
                example={"texts": ["It was a bright cold day in April."]},
            ),
            Endpoint(
                "generate",
                "Continuations of a prompt (seeded sampling)",
                generate if batcher is None else generate_batched,
                GenerateRequest,
                deadline=True,
                example=sample,
            ),
            Endpoint(
                "generate/stream",
                "The same text as `generate` (one sample), token by token as server-sent events",
                stream if batcher is None else stream_batched,
                SamplingSettings,
                kind="stream",
                example=sample,
            ),
        ],
        SessionKind(
            "Score a text fed piece by piece; the recurrent state stays on the server",
            lambda: _ScoreStream(model),
            lambda s, body: s.feed(body.text, body.end),
            ScoreChunk,
            {"text": "It was a bright cold day"},
        ),
        info={
            "level": model.vocab.level,
            "vocab_size": len(model.vocab),
            "generation": {"path": path, "reason": why},
        },
        status=None
        if batcher is None
        else lambda: {"generation_streams": len(batcher), "most_streams_batched": batcher.peak},
        close=None if batcher is None else batcher.close,
    )


# ---------------------------------------------------------------------------------------------------------
# translate, speech, handwriting, music
# ---------------------------------------------------------------------------------------------------------
def _translate(name: str, model, lim) -> ModelHandler:
    Sentence = Annotated[str, Field(min_length=1, max_length=lim.max_text_chars)]

    class TranslateRequest(BaseModel):
        model_config = _strict()
        sentences: list[Sentence] = Field(min_length=1, max_length=lim.max_batch)
        beam: int = Field(1, ge=1, le=lim.max_beam, description="beam width (1 = greedy)")
        n_best: int = Field(1, ge=1, le=lim.max_beam, description="hypotheses listed per sentence (<= beam)")

    def translate(body: TranslateRequest) -> dict[str, Any]:
        return {"results": model.translate(list(body.sentences), beam=body.beam, n_best=body.n_best)}

    return ModelHandler(
        [
            Endpoint(
                "translate",
                "Translations (greedy or beam search)",
                translate,
                TranslateRequest,
                example={"sentences": ["one hundred and one"], "beam": 2},
            )
        ],
        info={"max_tokens": model.max_tokens},
    )


def _speech(name: str, model, lim) -> ModelHandler:
    from rnnkit.apps.speech.data import AUDIO_SUFFIXES
    from rnnkit.apps.speech.use import SpeechTranscriber

    if isinstance(model, SpeechTranscriber):  # connected speech (CTC): the text of a recording

        def transcript(path: Path) -> dict[str, Any]:
            return {"results": [model.transcribe_file(path)]}

        endpoint = Endpoint(
            "transcribe",
            "The words spoken in an audio file, with their times (the run's beam search)",
            transcript,
            kind="upload",
            suffixes=AUDIO_SUFFIXES,
        )
        return ModelHandler([endpoint], info={"alphabet": model.alphabet, "beam": model.config.beam_size})

    def transcribe(path: Path) -> dict[str, Any]:
        return {"results": model.predict_file(path)}

    return ModelHandler(
        [
            Endpoint(
                "transcribe",
                "The word spoken in an audio file, or in each utterance of an .npz of "
                "features (arrays X, lengths)",
                transcribe,
                kind="upload",
                suffixes=(*AUDIO_SUFFIXES, ".npz"),
            )
        ],
        info={"classes": model.classes, "features": model.num_features},
    )


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class _TooManyPixels(RnnkitError):
    """An image larger than ``--max-image-pixels`` (the server answers 413)."""


def _decode_image(text: str, i: int, folder: str, max_pixels: int) -> Path:
    """Image ``i`` of a request, base64 or a ``data:`` URL, written to ``folder`` once its header shows
    an image of at most ``max_pixels`` pixels."""
    import base64
    import binascii

    from PIL import Image, UnidentifiedImageError

    where = f"images.{i}"
    if text.startswith("data:"):
        head, _, text = text.partition(",")
        if not head.endswith(";base64"):
            raise RnnkitError(
                f"{where}: expected a base64 data: URL (data:image/png;base64,...), got {head!r}"
            )
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RnnkitError(
            f"{where}: expected the bytes of an image file in base64 (or a data: URL), got text that is not base64"
        ) from None
    if not data:
        raise RnnkitError(f"{where}: expected the bytes of an image file, got nothing")
    path = Path(folder) / f"image-{i}"
    path.write_bytes(data)
    try:
        with Image.open(path) as im:  # reads the header only
            w, h = im.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise RnnkitError(
            f"{where}: expected an image (PNG, JPEG, ...), got {len(data):,} bytes that are not one ({exc})"
        ) from None
    if w * h > max_pixels:
        raise _TooManyPixels(
            f"{where}: the image is {w}x{h} = {w * h:,} pixels; the limit is {max_pixels:,} (--max-image-pixels)"
        )
    return path


def _caption(name: str, model, lim) -> ModelHandler:
    Image64 = Annotated[str, Field(min_length=1, description="an image file in base64, or a data: URL")]

    class CaptionRequest(BaseModel):
        model_config = _strict()
        images: list[Image64] = Field(min_length=1, max_length=lim.max_batch, description="images to caption")
        beam: int = Field(1, ge=1, le=lim.max_beam, description="beam width (1 = greedy)")
        n_best: int = Field(1, ge=1, le=lim.max_beam, description="captions listed per image (<= beam)")

    def caption(body: CaptionRequest) -> dict[str, Any]:
        if body.n_best > body.beam:
            raise RnnkitError(f"n_best must be at most beam={body.beam}, got {body.n_best}")
        with temporary_folder() as folder:
            paths = [
                _decode_image(text, i, folder, lim.max_image_pixels) for i, text in enumerate(body.images)
            ]
            images = np.stack([model.read_image(p, f"images.{i}") for i, p in enumerate(paths)])
        return {"results": model.caption(images, beam=body.beam, n_best=body.n_best)}

    # a 2x2 white PNG, so that the example runs as it is
    white = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8//8/AwMDEwMDAwMDAwAkBgMB/DXemwAAAABJRU5ErkJggg=="
    return ModelHandler(
        [
            Endpoint(
                "caption",
                "Captions of images (greedy or beam search, n best with their scores); images in base64",
                caption,
                CaptionRequest,
                example={"images": [white], "beam": 2, "n_best": 2},
                suffixes=IMAGE_SUFFIXES,
                files_field="images",
            )
        ],
        info={"image_size": list(model.image_size), "vocabulary": len(model.vocab)},
    )


def _handwriting(name: str, model, lim) -> ModelHandler:
    def read(path: Path) -> dict[str, Any]:
        return {"results": [{**r, "image": path.name} for r in model.predict([path])]}

    return ModelHandler(
        [
            Endpoint(
                "read",
                "The text of a line image",
                read,
                kind="upload",
                suffixes=IMAGE_SUFFIXES,
            )
        ],
        info={"alphabet": model.alphabet},
    )


def _music(name: str, model, lim) -> ModelHandler:
    from rnnkit.apps.music.abc import tokens_to_abc
    from rnnkit.apps.music.config import GenerateMusicConfig

    class TuneRequest(BaseModel):
        model_config = _strict()
        meter: str = Field("", max_length=8, description="e.g. 6/8 (empty: drawn)")
        key: str = Field("", max_length=8, description="e.g. Dmix, G, Ador (needs a meter)")
        num_samples: int = Field(1, ge=1, le=lim.max_samples)
        temperature: float = Field(1.0, ge=1e-6, le=10.0)
        top_k: int = Field(0, ge=0)
        top_p: float = Field(1.0, gt=0.0, le=1.0)
        constrained: bool = True
        max_length: int = Field(600, ge=8, le=max(8, lim.max_tokens))
        seed: int = Field(0, ge=0, lt=2**31)

    def generate(body: TuneRequest) -> dict[str, Any]:
        tunes = model.tunes(GenerateMusicConfig(**body.model_dump()))
        return {
            "tunes": [
                {"tokens": t, "abc": tokens_to_abc(t, f"rnnkit {name} {i}", i)}
                for i, t in enumerate(tunes, 1)
            ]
        }

    return ModelHandler(
        [
            Endpoint(
                "generate",
                "Folk tunes as ABC (and tokens)",
                generate,
                TuneRequest,
                example={"meter": "6/8", "key": "Dmix", "seed": 1},
            )
        ]
    )


HANDLERS: dict[str, Callable[..., ModelHandler]] = {
    "sentiment": _sentiment,
    "timeseries": _timeseries,
    "textgen": _textgen,
    "translate": _translate,
    "speech": _speech,
    "handwriting": _handwriting,
    "music": _music,
    "caption": _caption,
}


def upload_path(folder: str, filename: str | None, suffixes: tuple[str, ...]) -> Path:
    """Where an upload is written: its own base name (the messages then name it), checked against
    ``suffixes``."""
    base = re.sub(r"[^\w.\-]+", "_", Path(filename or "").name)[-100:] or "upload"
    if not base.lower().endswith(tuple(suffixes)):
        raise RnnkitError(f"expected a file ending in one of {', '.join(suffixes)}, got {filename!r}")
    return Path(folder) / base


def temporary_folder() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="rnnkit-serve-")
