"""The sentiment model, built from :mod:`rnnkit.models`, and its class probabilities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import app_encoder
from rnnkit.apps.sentiment.config import SentimentConfig
from rnnkit.apps.sentiment.data import chunk, collate
from rnnkit.apps.sentiment.subword import HashedNgramEmbedding
from rnnkit.models import ClassifierConfig, SequenceClassifier
from rnnkit.models._base import Model, as_batch, check_lengths, check_tokens, require, step_mask, top_hidden
from rnnkit.models.attention import POOLINGS, Pooling
from rnnkit.models.classifier import make_head

__all__ = ["SentimentNet", "SentimentNetConfig", "build_model", "predict_proba", "pooling_kinds"]


def pooling_kinds(pooling: str) -> list[str]:
    """The pooled summaries ``pooling`` names: one of last/mean/max/attention, or several joined by ``+``."""
    kinds = pooling.split("+")
    bad = [k for k in kinds if k not in POOLINGS]
    if bad or len(set(kinds)) != len(kinds):
        raise RnnkitError(
            f"pooling must be one of {list(POOLINGS)} or several of them joined by '+' (each once), "
            f"e.g. 'mean+max'; got {pooling!r}"
        )
    return kinds


@dataclass
class SentimentNetConfig(ClassifierConfig):
    """:class:`~rnnkit.models.ClassifierConfig` plus subword features, word dropout and joined pooling."""

    subword_buckets: int = 0  # hashed character n-gram rows added to each word's vector; 0 = words only
    ngram_min: int = 3  # shortest character n-gram (of the word with boundary marks '<w>')
    ngram_max: int = 6  # longest character n-gram
    word_dropout: float = 0.0  # training only: a word's own vector is replaced by <unk>'s (n-grams kept)


class SentimentNet(SequenceClassifier):
    """The sentiment classifier: words (and their hashed character n-grams) -> BiRNN -> pooling -> head.

    As :class:`~rnnkit.models.SequenceClassifier`, with three additions:

    * ``subword_buckets > 0``: each word's vector is the mean of its word embedding and its hashed
      character n-gram embeddings (:class:`~rnnkit.apps.sentiment.subword.HashedNgramEmbedding`), so rare
      and unseen words get vectors; batches then carry ``subwords`` (B, T, G);
    * ``word_dropout``: while training, each word id is replaced by ``<unk>`` with this probability;
    * ``pooling`` may join several summaries, ``"mean+max"``: their concatenation feeds the head.

    Args: ``config`` — a :class:`SentimentNetConfig` (or its dict).

    Shape: inputs (B, T) ids, lengths (B,), subwords (B, T, G) n-gram rows + 1 (0 = none) -> logits (B, K).

    Example::

        >>> net = SentimentNet(SentimentNetConfig(num_classes=2, vocab_size=50, embedding_dim=8,
        ...                    subword_buckets=100, pooling="mean+max"))
        >>> net(torch.tensor([[4, 5]]), torch.tensor([2]), torch.tensor([[[3, 7], [9, 0]]])).shape
        torch.Size([1, 2])
    """

    config_class = SentimentNetConfig
    batch_keys = ("inputs", "targets", "lengths", "subwords")

    def __init__(self, config: SentimentNetConfig | dict[str, Any]):
        Model.__init__(self, config)
        c = self.config
        kinds = pooling_kinds(c.pooling)
        for name, v in (("dropout", c.dropout), ("word_dropout", c.word_dropout)):
            if not 0.0 <= v < 1.0:
                raise RnnkitError(f"{name} must be in [0, 1), got {v}")
        if c.vocab_size < 2 or c.num_classes < 1:
            raise RnnkitError(
                f"vocab_size must be >= 2 and num_classes >= 1, got {c.vocab_size}, {c.num_classes}"
            )
        if c.subword_buckets:
            if not 1 <= c.ngram_min <= c.ngram_max:
                raise RnnkitError(f"need 1 <= ngram_min <= ngram_max, got {c.ngram_min}, {c.ngram_max}")
            self.embed = HashedNgramEmbedding(c.vocab_size, c.subword_buckets, c.embedding_dim)
        else:
            self.embed = nn.Embedding(c.vocab_size, c.embedding_dim)
        self.drop = nn.Dropout(c.dropout)
        self.encoder = c.encoder.build(c.embedding_dim)
        size = self.encoder.output_size
        self.pools = nn.ModuleList([Pooling(k, size, c.attention_dim) for k in kinds])
        self.head = make_head(size * len(kinds), c.num_classes, c.head_hidden, c.dropout)

    def embed_words(self, inputs: Tensor, subwords: Tensor | None = None) -> Tensor:
        """Word vectors (B, T, E) after word dropout (training) and dropout."""
        c = self.config
        x = check_tokens(inputs, c.vocab_size, "inputs")
        if self.training and c.word_dropout:
            drop = (torch.rand(x.shape, device=x.device) < c.word_dropout) & (x != 0)
            x = x.masked_fill(drop, 1)  # 1 = <unk>
        if c.subword_buckets:
            if subwords is None:
                raise RnnkitError(
                    "this model reads hashed character n-grams: batches need 'subwords' (B, T, G); "
                    "build them with rnnkit.apps.sentiment.Subwords.collate (an ONNX export of it takes them as "
                    "its third input, 'subwords')"
                )
            sub = check_tokens(subwords, c.subword_buckets + 1, "subwords", dims=3)
            if sub.shape[:2] != x.shape:
                raise RnnkitError(f"subwords must have shape {tuple(x.shape)} + (G,), got {tuple(sub.shape)}")
            v = self.embed(x, sub)
        else:
            v = self.embed(x)  # (B, T, E)
        return self.drop(v)

    def encode(self, inputs: Tensor, lengths: Tensor | None = None, subwords: Tensor | None = None):
        """``(pooled (B, P*C), attention weights (B, T) or None)``."""
        x = self.embed_words(inputs, subwords)
        B, T = x.shape[0], x.shape[1]
        lengths = check_lengths(lengths, B, T)
        out, state = self.encoder(x, None, lengths)  # (B, T, C)
        mask, last = step_mask(lengths, B, T, x.device), top_hidden(self.encoder, state)
        parts, weights = [], None
        for pool in self.pools:
            v, w = pool(out, mask, last)
            parts.append(v)
            weights = w if w is not None else weights
        return torch.cat(parts, -1), weights  # (B, P*C)

    def forward(
        self, inputs: Tensor, lengths: Tensor | None = None, subwords: Tensor | None = None
    ) -> Tensor:
        pooled, _ = self.encode(inputs, lengths, subwords)
        return self.head(pooled)

    def loss(self, batch: Any, state: Any = None):
        from rnnkit.models._base import LossOutput

        b = as_batch(batch, self.batch_keys)
        logits = self(require(b, "inputs"), b.get("lengths"), b.get("subwords"))
        y = require(b, "targets")
        if not isinstance(y, Tensor) or y.is_floating_point() or y.shape != (logits.shape[0],):
            raise RnnkitError(f"targets must be ({logits.shape[0]},) integer class ids")
        loss = F.cross_entropy(logits, y)
        return LossOutput(loss, y.shape[0], None, {"accuracy": float((logits.argmax(-1) == y).sum())})

    @torch.no_grad()
    def predict(
        self, inputs: Tensor, lengths: Tensor | None = None, subwords: Tensor | None = None
    ) -> Tensor:
        """Class probabilities (B, num_classes)."""
        return self(inputs, lengths, subwords).softmax(-1)


def uses_subwords(cfg: SentimentConfig) -> bool:
    """Hashed character n-grams apply to word tokens only (a character is its own smallest piece)."""
    return cfg.subword_buckets > 0 and cfg.level == "word"


def build_model(cfg: SentimentConfig, vocab_size: int, num_classes: int) -> SentimentNet:
    return SentimentNet(
        SentimentNetConfig(
            num_classes=num_classes,
            vocab_size=vocab_size,
            embedding_dim=cfg.embedding_dim,
            encoder=app_encoder(cfg),
            pooling=cfg.pooling,
            dropout=cfg.dropout,
            subword_buckets=cfg.subword_buckets if uses_subwords(cfg) else 0,
            ngram_min=cfg.ngram_min,
            ngram_max=cfg.ngram_max,
            word_dropout=cfg.word_dropout,
        )
    )


@torch.no_grad()
def predict_proba(
    model,
    ids: list[list[int]],
    batch_size: int = 256,
    limit: int | None = None,
    long_texts: str = "chunks",
    collate_fn=collate,
) -> np.ndarray:
    """Class probabilities ``(N, K)`` of token-id lists.

    With ``limit``, a longer text is read in pieces (:func:`~rnnkit.apps.sentiment.data.chunk`) and its
    probabilities are the mean of its pieces' probabilities. ``collate_fn`` makes the batches
    (:meth:`~rnnkit.apps.sentiment.subword.Subwords.collate` for a model that reads character n-grams).
    """
    model.eval()
    pieces, owner = chunk(ids, limit, long_texts) if limit is not None else (ids, list(range(len(ids))))
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))  # similar lengths: little padding
    proba = np.zeros((len(pieces), model.config.num_classes))
    for s in range(0, len(order), batch_size):
        part = order[s : s + batch_size]
        proba[part] = model.predict(**collate_fn([pieces[i] for i in part])).numpy()
    out = np.zeros((len(ids), proba.shape[1]))
    np.add.at(out, np.asarray(owner, dtype=np.int64), proba)
    return out / np.bincount(owner, minlength=len(ids))[:, None]


def pretrain_lm(
    model, pieces: list[list[int]], cfg, seconds: float, say=None, collate_fn=collate
) -> dict[str, float]:
    """Language-model pretraining of the classifier's embedding and encoder on its (unlabelled) training texts.

    ULMFiT-style (Howard & Ruder, 2018), with both directions at once (as ELMo): the forward direction's
    output at step ``t`` predicts token ``t + 1``, the reverse direction's predicts token ``t - 1``,

    .. math:: L = -\\tfrac{1}{N} \\textstyle\\sum_t \\log p(x_{t+1} \\mid \\vec h_t) + \\log p(x_{t-1} \\mid \\overleftarrow h_t)

    through a temporary linear output layer per direction (dropped afterwards). Runs ``cfg.pretrain_epochs``
    epochs or ``seconds`` at most, with AdamW; returns the first and last epochs' mean loss (nats/token).
    """
    import math
    import time

    from rnnkit.apps._common import per_epoch_generator

    enc = model.encoder
    directions = 2 if cfg.bidirectional else 1
    hidden = enc.output_size // directions
    vocab = model.config.vocab_size
    heads = torch.nn.ModuleList([torch.nn.Linear(hidden, vocab) for _ in range(directions)])
    params = list(model.embed.parameters()) + list(enc.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, fused=True)  # one kernel: much faster on the CPU
    model.train()
    t0, losses = time.perf_counter(), []
    for epoch in range(cfg.pretrain_epochs):
        order = torch.randperm(len(pieces), generator=per_epoch_generator(cfg.seed + 7919, epoch)).tolist()
        total, count = 0.0, 0
        for s in range(0, len(order), cfg.batch_size):
            b = collate_fn([pieces[i] for i in order[s : s + cfg.batch_size]])
            x, lengths = b["inputs"], b["lengths"]
            if x.shape[1] < 2:
                continue
            out, _ = enc(model.embed_words(x, b.get("subwords")), None, lengths)  # (B, T, D*H)
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
