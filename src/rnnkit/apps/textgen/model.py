"""The language model, built from :mod:`rnnkit.models`: per-token scores and sampled continuations."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit.apps._common import app_encoder
from rnnkit.apps.textgen.config import GenerateConfig, TextGenConfig
from rnnkit.apps.textgen.data import EVAL_STREAMS, streams
from rnnkit.datasets import Vocabulary

__all__ = ["build_model", "generate", "next_word_hits", "token_nats"]


def build_model(cfg: TextGenConfig, vocab_size: int):
    from rnnkit.models import LanguageModel, LanguageModelConfig

    # with tie_weights and embedding_dim != hidden_size the model inserts a projection H -> E before the output
    encoder = app_encoder(cfg)
    return LanguageModel(
        LanguageModelConfig(
            vocab_size=vocab_size,
            embedding_dim=cfg.embedding_dim,
            encoder=encoder,
            tie_embeddings=cfg.tie_weights,
            dropout=cfg.dropout,
        )
    )


@torch.no_grad()
def token_nats(model, ids: torch.Tensor, num_streams: int = EVAL_STREAMS, chunk: int = 1000) -> np.ndarray:
    """Negative log-likelihood (nats) of every predicted token of ``ids``, read as parallel streams.

    Returns a flat array in text order (the ``len(ids) - 1`` tokens after the first, cut to a multiple of
    the number of streams).
    """
    model.eval()
    num = max(1, min(num_streams, (len(ids) - 1) // 2))
    x, y = streams(ids, num)
    state = None
    out = []
    for a in range(0, x.shape[1], chunk):
        logits, state = model(x[:, a : a + chunk], state)
        nll = F.cross_entropy(logits.transpose(1, 2), y[:, a : a + chunk], reduction="none")  # (B, T)
        out.append(nll)
    return torch.cat(out, 1).reshape(-1).double().numpy()


def generate(model, vocab: Vocabulary, prompt: str, gen: GenerateConfig, sample: int = 0) -> str:
    """Continue ``prompt`` with ``gen.length`` tokens (sampling with temperature / top-k / top-p)."""
    from rnnkit.models import DecodingConfig

    ids = vocab.encode(prompt) if prompt else []
    if not ids:
        ids = vocab.encode("\n") or [vocab.unk_id]
    strategy = "greedy" if gen.temperature == 0 else "sample"
    config = DecodingConfig(
        strategy=strategy,
        max_length=gen.length,
        temperature=gen.temperature or 1.0,
        top_k=gen.top_k,
        top_p=gen.top_p,
    )
    g = torch.Generator().manual_seed(gen.seed * 7919 + sample)
    out = model.generate(torch.tensor([ids]), config, generator=g)
    text = vocab.decode(out.to_lists()[0])
    return " " + text if vocab.level == "word" and prompt.strip() and text else text


@torch.no_grad()
def next_word_hits(
    model, ids: torch.Tensor, never: list[int], k: int = 5, num_streams: int = EVAL_STREAMS, chunk: int = 1000
) -> np.ndarray:
    """The rank (0 = most likely; ``k`` = not among the first ``k``) of every scored next token.

    Same positions and order as :func:`token_nats`. The ids in ``never`` (``<unk>``, ``<pad>``) are never
    guessed, so an ``<unk>`` target is a miss: a keyboard cannot offer an unknown word. Top-``j`` accuracy is ``(ranks < j).mean()`` for ``j <= k``.
    """
    model.eval()
    num = max(1, min(num_streams, (len(ids) - 1) // 2))
    x, y = streams(ids, num)
    state = None
    out = []
    for a in range(0, x.shape[1], chunk):
        logits, state = model(x[:, a : a + chunk], state)  # (B, T, V)
        logits[..., never] = -float("inf")
        top = logits.topk(k, dim=-1).indices  # (B, T, k)
        hit = top == y[:, a : a + chunk, None]
        rank = torch.where(
            hit.any(-1), hit.float().argmax(-1), torch.full_like(hit[..., 0], k, dtype=torch.long)
        )
        out.append(rank)
    return torch.cat(out, 1).reshape(-1).numpy()
