r"""Attention and pooling over encoder outputs, with padding masks respected.

* :class:`AdditiveAttention` — Bahdanau et al. (2015): :math:`e_j = v^\top \tanh(W q + U k_j)`.
* :class:`LuongAttention` — Luong et al. (2015): ``"dot"`` :math:`e_j = q^\top k_j` or ``"general"``
  :math:`e_j = q^\top W k_j`.
* :class:`Pooling` — a sequence (B, T, C) to a vector (B, C): ``last | mean | max | attention``.

All take ``keys`` (B, S, C) and ``mask`` (B, S) True at valid positions and return ``(context (B, C),
weights (B, S))``; weights are exactly 0 at padded positions.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit._errors import RnnkitError

__all__ = ["AdditiveAttention", "LuongAttention", "Pooling", "masked_softmax", "POOLINGS", "ATTENTIONS"]

POOLINGS = ("last", "mean", "max", "attention")
ATTENTIONS = ("none", "bahdanau", "dot", "general")


def masked_softmax(scores: Tensor, mask: Tensor | None) -> Tensor:
    """Softmax over the last dim with padded positions (``mask`` False) given weight 0."""
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1)


class AdditiveAttention(nn.Module):
    r"""Bahdanau (additive) attention: :math:`e_j = v^\top \tanh(W_q q + W_k k_j)`, ``a = softmax(e)``.

    Args: ``query_size``, ``key_size``, ``attention_dim`` (the size of the tanh layer).
    Shape: query (B, Q), keys (B, S, K), mask (B, S) -> context (B, K), weights (B, S).
    ``precompute(keys)`` caches ``W_k k`` once per source sequence for step-by-step decoding.
    """

    def __init__(self, query_size: int, key_size: int, attention_dim: int):
        super().__init__()
        self.query = nn.Linear(query_size, attention_dim, bias=False)
        self.key = nn.Linear(key_size, attention_dim, bias=True)
        self.v = nn.Linear(attention_dim, 1, bias=False)

    def precompute(self, keys: Tensor) -> Tensor:
        return self.key(keys)  # (B, S, A)

    def forward(
        self, query: Tensor, keys: Tensor, mask: Tensor | None = None, projected: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        pk = self.precompute(keys) if projected is None else projected
        scores = self.v(torch.tanh(pk + self.query(query).unsqueeze(1))).squeeze(-1)  # (B, S)
        weights = masked_softmax(scores, mask)
        return torch.bmm(weights.unsqueeze(1), keys).squeeze(1), weights


class LuongAttention(nn.Module):
    r"""Luong (multiplicative) attention: ``"dot"`` :math:`e_j = q^\top k_j`; ``"general"`` :math:`q^\top W k_j`.

    ``dot`` needs ``query_size == key_size``. Shape as :class:`AdditiveAttention`.
    """

    def __init__(self, query_size: int, key_size: int, score: str = "general"):
        super().__init__()
        if score not in ("dot", "general"):
            raise RnnkitError(f"Luong score must be 'dot' or 'general', got {score!r}")
        if score == "dot" and query_size != key_size:
            raise RnnkitError(
                f"dot attention needs decoder and encoder output sizes to match: decoder {query_size}, "
                f"encoder {key_size} (use 'general')"
            )
        self.score = score
        self.weight = nn.Linear(key_size, query_size, bias=False) if score == "general" else None

    def precompute(self, keys: Tensor) -> Tensor:
        return keys if self.weight is None else self.weight(keys)  # (B, S, Q)

    def forward(
        self, query: Tensor, keys: Tensor, mask: Tensor | None = None, projected: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        pk = self.precompute(keys) if projected is None else projected
        scores = torch.bmm(pk, query.unsqueeze(-1)).squeeze(-1)  # (B, S)
        weights = masked_softmax(scores, mask)
        return torch.bmm(weights.unsqueeze(1), keys).squeeze(1), weights


class Pooling(nn.Module):
    """A sequence to one vector.

    * ``last`` — the final hidden state (each sequence's own last valid step; for a bidirectional encoder,
      the forward direction's last step and the reverse direction's first, merged like the outputs);
    * ``mean`` / ``max`` — over valid steps only;
    * ``attention`` — a learned query scores every step (additive, Yang et al. 2016 style), softmax over valid
      steps; the weights are returned.

    ``forward(outputs (B, T, C), mask (B, T), last (B, C)) -> (pooled (B, C), weights (B, T) or None)``.
    """

    def __init__(self, kind: str, size: int, attention_dim: int = 64):
        super().__init__()
        if kind not in POOLINGS:
            raise RnnkitError(f"unknown pooling: expected one of {POOLINGS}, got {kind!r}")
        self.kind = kind
        if kind == "attention":
            self.proj = nn.Linear(size, attention_dim)
            self.query = nn.Linear(attention_dim, 1, bias=False)

    def forward(self, outputs: Tensor, mask: Tensor, last: Tensor) -> tuple[Tensor, Tensor | None]:
        if self.kind == "last":
            return last, None
        m = mask.unsqueeze(-1)  # (B, T, 1)
        if self.kind == "mean":
            return (outputs * m).sum(1) / m.sum(1).clamp(min=1), None
        if self.kind == "max":
            return outputs.masked_fill(~m, float("-inf")).max(1).values, None
        scores = self.query(torch.tanh(self.proj(outputs))).squeeze(-1)  # (B, T)
        weights = masked_softmax(scores, mask)
        return torch.bmm(weights.unsqueeze(1), outputs).squeeze(1), weights
