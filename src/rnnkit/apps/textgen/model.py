"""The language model, built from :mod:`rnnkit.models`: per-token scores and sampled continuations."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import app_encoder
from rnnkit.apps.textgen.config import GenerateConfig, TextGenConfig
from rnnkit.apps.textgen.data import EVAL_STREAMS, stream_count, streams
from rnnkit.datasets import Vocabulary

__all__ = [
    "ADAPTIVE_FROM",
    "build_model",
    "softmax_kind",
    "generate",
    "generation_backend",
    "next_word_hits",
    "stream",
    "token_nats",
]


ADAPTIVE_FROM = 2000
"""``softmax="auto"`` uses the adaptive softmax for word vocabularies of at least this many tokens (measured
with ``benchmarks/word_lm_speed.py``: 1.36 times the full softmax's training tokens/s at 1,934 words, 2.27 at
7,632)."""


def softmax_kind(cfg: TextGenConfig, vocab_size: int) -> str:
    """``"full"`` or ``"adaptive"``: the output layer ``cfg.softmax`` asks for with this vocabulary."""
    if cfg.softmax != "auto":
        return cfg.softmax
    # with tie_weights the adaptive softmax is the tied one (rnnkit.models.lm.TiedAdaptiveSoftmax)
    return "adaptive" if cfg.level == "word" and vocab_size >= ADAPTIVE_FROM else "full"


def build_model(cfg: TextGenConfig, vocab_size: int):
    from rnnkit.models import LanguageModel, LanguageModelConfig
    from rnnkit.models.lm import adaptive_cutoffs

    # with tie_weights and embedding_dim != hidden_size the model inserts a projection H -> E before the output
    # (full softmax: the output matrix is the embedding; adaptive: the head's and clusters' word vectors are)
    encoder = app_encoder(cfg)
    kind = softmax_kind(cfg, vocab_size)
    return LanguageModel(
        LanguageModelConfig(
            vocab_size=vocab_size,
            embedding_dim=cfg.embedding_dim,
            encoder=encoder,
            tie_embeddings=cfg.tie_weights,
            dropout=cfg.dropout,
            softmax=kind,
            # written out, so a saved run keeps its clusters whatever the rule becomes
            cutoffs=adaptive_cutoffs(vocab_size) if kind == "adaptive" else [],
        )
    )


def stream_logits(
    model, ids: torch.Tensor, num_streams: int = EVAL_STREAMS, chunk: int = 1000
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """``(start, logits (B, T, V), targets (B, T))`` of each ``chunk`` of steps of ``ids`` read as
    :func:`~rnnkit.apps.textgen.data.stream_count` parallel streams, the state carried, no gradients: the
    one reading of held-out text that :func:`token_nats`, :func:`next_word_hits` and the n-gram mixture's
    ranks share (so their positions are :func:`~rnnkit.apps.textgen.data.scored_positions`)."""
    model.eval()
    x, y = streams(ids, stream_count(len(ids), num_streams))
    state = None
    for a in range(0, x.shape[1], chunk):
        with torch.no_grad():
            logits, state = model(x[:, a : a + chunk], state)
        yield a, logits, y[:, a : a + chunk]


def token_nats(model, ids: torch.Tensor, num_streams: int = EVAL_STREAMS, chunk: int = 1000) -> np.ndarray:
    """Negative log-likelihood (nats) of every predicted token of ``ids``, read as parallel streams.

    Returns a flat array in text order (the ``len(ids) - 1`` tokens after the first, cut to a multiple of
    the number of streams).
    """
    out = [
        F.cross_entropy(logits.transpose(1, 2), y, reduction="none")  # (B, T)
        for _, logits, y in stream_logits(model, ids, num_streams, chunk)
    ]
    return torch.cat(out, 1).reshape(-1).double().numpy()


def generation_backend(model, backend: str = "auto") -> tuple[str, str]:
    """``(name, reason)``: ``"fast"`` (the compiled loop of :mod:`rnnkit.models.fastgen`) or ``"python"``.

    ``backend``: ``"auto"`` (fast where it covers the model, else python), ``"fast"`` (an error where it does
    not) or ``"python"`` (:meth:`LanguageModel.generate`, the reference).
    """
    from rnnkit.models.fastgen import BACKENDS, fast_support

    if backend not in BACKENDS:
        raise RnnkitError(f"unknown generation backend: expected one of {BACKENDS}, got {backend!r}")
    if backend == "python":
        return "python", "the Python decoding loop, as asked"
    ok, reason = fast_support(model)
    if ok:
        return "fast", reason
    if backend == "fast":
        raise RnnkitError(f"fast generation does not cover this model: {reason}")
    return "python", f"the Python decoding loop ({reason})"


def _prompt_ids(vocab: Vocabulary, prompt: str) -> list[int]:
    ids = vocab.encode(prompt) if prompt else []
    return ids or vocab.encode("\n") or [vocab.unk_id]


def _generator(gen: GenerateConfig, sample: int) -> torch.Generator:
    # sample i of a prompt draws from its own seeded stream, so samples do not depend on each other
    return torch.Generator().manual_seed(gen.seed * 7919 + sample)


def _fast(model, backend: str, fast):
    """The FastGenerator to use (``fast`` when given), or None for the Python loop."""
    if fast is not None:
        return fast
    if generation_backend(model, backend)[0] != "fast":
        return None
    from rnnkit.models.fastgen import FastGenerator

    return FastGenerator(model)


def generate(
    model,
    vocab: Vocabulary,
    prompt: str,
    gen: GenerateConfig,
    sample: int = 0,
    backend: str = "auto",
    fast=None,
) -> str:
    """Continue ``prompt`` with ``gen.length`` tokens (sampling with temperature / top-k / top-p).

    Sample ``sample`` draws from a generator seeded with ``gen.seed * 7919 + sample``. ``backend`` as in
    :func:`generation_backend`; ``fast`` a :class:`~rnnkit.models.fastgen.FastGenerator` of ``model`` to reuse.
    Both backends give the same text.
    """
    from rnnkit.models import DecodingConfig

    ids = _prompt_ids(vocab, prompt)
    g = _generator(gen, sample)
    runner = _fast(model, backend, fast)
    if runner is not None:
        tokens = runner.generate(ids, gen.length, gen.temperature, gen.top_k, gen.top_p, g)
    else:
        strategy = "greedy" if gen.temperature == 0 else "sample"
        config = DecodingConfig(
            strategy=strategy,
            max_length=gen.length,
            temperature=gen.temperature or 1.0,
            top_k=gen.top_k,
            top_p=gen.top_p,
        )
        tokens = model.generate(torch.tensor([ids]), config, generator=g).to_lists()[0]
    text = vocab.decode(tokens)
    return " " + text if vocab.level == "word" and prompt.strip() and text else text


def stream(
    model, vocab: Vocabulary, prompt: str, gen: GenerateConfig, backend: str = "auto", fast=None
) -> Iterator[str]:
    """The text of each token of :func:`generate`'s sample 0, as it is sampled; joined, they are its text.

    Special tokens (``<pad>``, ...) give no text and are skipped; at word level each word after the first
    (or after a non-blank prompt) comes with its leading space.
    """
    from rnnkit.models.fastgen import python_tokens

    ids = _prompt_ids(vocab, prompt)
    g = _generator(gen, 0)
    runner = _fast(model, backend, fast)
    args = (ids, gen.length, gen.temperature, gen.top_k, gen.top_p, g)
    tokens = runner.tokens(*args) if runner is not None else python_tokens(model, *args)
    return _pieces(vocab, tokens, bool(prompt.strip()))


def _pieces(vocab: Vocabulary, tokens: Iterator[int], spaced: bool) -> Iterator[str]:
    words = vocab.level == "word"
    for token in tokens:
        piece = vocab.decode([token])
        if not piece:
            continue
        if words:
            piece, spaced = (" " + piece if spaced else piece), True
        yield piece


@torch.no_grad()
def next_word_hits(
    model, ids: torch.Tensor, never: list[int], k: int = 5, num_streams: int = EVAL_STREAMS, chunk: int = 1000
) -> np.ndarray:
    """The rank (0 = most likely; ``k`` = not among the first ``k``) of every scored next token.

    Same positions and order as :func:`token_nats`. The ids in ``never`` (``<unk>``, ``<pad>``) are never
    guessed, so an ``<unk>`` target is a miss: a keyboard cannot offer an unknown word. Top-``j`` accuracy is ``(ranks < j).mean()`` for ``j <= k``.
    """
    out = []
    for _, logits, y in stream_logits(model, ids, num_streams, chunk):  # (B, T, V), (B, T)
        logits[..., never] = -float("inf")
        top = logits.topk(k, dim=-1).indices  # (B, T, k)
        hit = top == y[..., None]
        rank = torch.where(
            hit.any(-1), hit.float().argmax(-1), torch.full_like(hit[..., 0], k, dtype=torch.long)
        )
        out.append(rank)
    return torch.cat(out, 1).reshape(-1).numpy()
