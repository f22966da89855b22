"""The language model, built from :mod:`rnnkit.models`: per-token scores and sampled continuations."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit.apps.textgen.config import GenerateConfig, TextGenConfig
from rnnkit.apps.textgen.data import EVAL_STREAMS, streams
from rnnkit.datasets import Vocabulary

__all__ = ["build_model", "generate", "token_nats"]


def build_model(cfg: TextGenConfig, vocab_size: int):
    from rnnkit.models import EncoderConfig, LanguageModel, LanguageModelConfig

    # with tie_weights and embedding_dim != hidden_size the model inserts a projection H -> E before the output
    encoder = EncoderConfig(
        cell=cfg.cell,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
    )
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
