"""The sentiment model, built from :mod:`rnnkit.models`, and its class probabilities."""

from __future__ import annotations

import numpy as np
import torch

from rnnkit.apps._common import app_encoder
from rnnkit.apps.sentiment.config import SentimentConfig
from rnnkit.apps.sentiment.data import chunk, collate

__all__ = ["build_model", "predict_proba"]


def build_model(cfg: SentimentConfig, vocab_size: int, num_classes: int):
    from rnnkit.models import ClassifierConfig, SequenceClassifier

    encoder = app_encoder(cfg)
    return SequenceClassifier(
        ClassifierConfig(
            num_classes=num_classes,
            vocab_size=vocab_size,
            embedding_dim=cfg.embedding_dim,
            encoder=encoder,
            pooling=cfg.pooling,
            dropout=cfg.dropout,
        )
    )


@torch.no_grad()
def predict_proba(
    model, ids: list[list[int]], batch_size: int = 256, limit: int | None = None, long_texts: str = "chunks"
) -> np.ndarray:
    """Class probabilities ``(N, K)`` of token-id lists.

    With ``limit``, a longer text is read in pieces (:func:`~rnnkit.apps.sentiment.data.chunk`) and its
    probabilities are the mean of its pieces' probabilities.
    """
    model.eval()
    pieces, owner = chunk(ids, limit, long_texts) if limit is not None else (ids, list(range(len(ids))))
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))  # similar lengths: little padding
    proba = np.zeros((len(pieces), model.config.num_classes))
    for s in range(0, len(order), batch_size):
        part = order[s : s + batch_size]
        proba[part] = model.predict(**collate([pieces[i] for i in part])).numpy()
    out = np.zeros((len(ids), proba.shape[1]))
    np.add.at(out, np.asarray(owner, dtype=np.int64), proba)
    return out / np.bincount(owner, minlength=len(ids))[:, None]


def pretrain_lm(model, pieces: list[list[int]], cfg, seconds: float, say=None) -> dict[str, float]:
    """Language-model pretraining of the classifier's embedding and encoder on its (unlabelled) training texts.

    ULMFiT-style (Howard & Ruder, 2018), with both directions at once (as ELMo): the forward direction's
    output at step ``t`` predicts token ``t + 1``, the reverse direction's predicts token ``t - 1``,

    .. math:: L = -\\tfrac{1}{N} \\textstyle\\sum_t \\log p(x_{t+1} \\mid \\vec h_t) + \\log p(x_{t-1} \\mid \\overleftarrow h_t)

    through a temporary linear output layer per direction (dropped afterwards). Runs ``cfg.pretrain_epochs``
    epochs or ``seconds`` at most, with AdamW; returns the first and last epochs' mean loss (nats/token).
    """
    import math
    import time

    from torch.nn import functional as F

    from rnnkit.apps._common import per_epoch_generator

    enc = model.encoder
    directions = 2 if cfg.bidirectional else 1
    hidden = enc.output_size // directions
    vocab = model.config.vocab_size
    heads = torch.nn.ModuleList([torch.nn.Linear(hidden, vocab) for _ in range(directions)])
    params = list(model.embed.parameters()) + list(enc.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr)
    model.train()
    t0, losses = time.perf_counter(), []
    for epoch in range(cfg.pretrain_epochs):
        order = torch.randperm(len(pieces), generator=per_epoch_generator(cfg.seed + 7919, epoch)).tolist()
        total, count = 0.0, 0
        for s in range(0, len(order), cfg.batch_size):
            b = collate([pieces[i] for i in order[s : s + cfg.batch_size]])
            x, lengths = b["inputs"], b["lengths"]
            if x.shape[1] < 2:
                continue
            out, _ = enc(model.embed(x), None, lengths)  # (B, T, D*H)
            valid = torch.arange(x.shape[1])[None, :] < lengths[:, None]  # (B, T)
            nxt = valid[:, 1:]  # pairs (t, t+1) inside the text
            loss = F.cross_entropy(heads[0](out[:, :-1, :hidden][nxt]), x[:, 1:][nxt])
            if directions == 2:
                loss = loss + F.cross_entropy(heads[1](out[:, 1:, hidden:][nxt]), x[:, :-1][nxt])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            total, count = total + float(loss.detach()) / directions, count + 1
            if time.perf_counter() - t0 > seconds:
                break
        losses.append(total / max(count, 1))
        if say:
            say(f"language-model pretraining epoch {epoch + 1}: {losses[-1]:.3f} nats/token")
        if time.perf_counter() - t0 > seconds:
            break
    model.eval()
    return {
        "epochs": len(losses),
        "first_loss": losses[0] if losses else math.nan,
        "last_loss": losses[-1] if losses else math.nan,
        "seconds": round(time.perf_counter() - t0, 2),
    }
