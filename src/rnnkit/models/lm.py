"""Many-to-many, aligned: :class:`LanguageModel` — the next token at every step, and text generation.

Shape convention: tokens (B, T) ids, logits (B, T, V); the state is the encoder's
(``h_n`` (L, B, H) or ``(h_n, c_n)``).

The output layer is a full softmax or the adaptive softmax of Grave et al. (2017, "Efficient softmax
approximation for GPUs", torch's :class:`~torch.nn.AdaptiveLogSoftmaxWithLoss`): frequent tokens in a head,
rarer ones in clusters of smaller dimension, so an update of a large-vocabulary model costs a fraction of
the full ``H x V`` product. With ``tie_embeddings`` the adaptive softmax shares the embedding
(:class:`TiedAdaptiveSoftmax`): the head's words and every cluster's words are scored by their embedding rows,
so a rare word's output vector learns from its inputs too (Press & Wolf 2017; Baevski & Auli 2019 tie an
adaptive softmax to adaptive inputs the same way, with smaller embeddings for the rarer clusters).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit._errors import RnnkitError
from rnnkit.models._base import (
    EncoderConfig,
    LossOutput,
    Model,
    as_batch,
    check_lengths,
    check_tokens,
    no_bidirectional,
    positive,
    require,
    step_mask,
)
from rnnkit.models.decoding import DecodeResult, DecodingConfig, decode, make_decoding

__all__ = [
    "LanguageModelConfig",
    "LanguageModel",
    "SOFTMAXES",
    "TiedAdaptiveSoftmax",
    "adaptive_argmax",
    "adaptive_cutoffs",
]


@dataclass
class LanguageModelConfig:
    """A recurrent language model: embedding -> unidirectional encoder -> (projection) -> softmax."""

    vocab_size: int = 256  # tokens are ints in [0, vocab_size)
    embedding_dim: int = 128  # embedding size (and the output projection's size when tied)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)  # must be unidirectional
    tie_embeddings: bool = False  # share the output matrix with the embedding (Press & Wolf 2017)
    dropout: float = 0.0  # on the embeddings and on the encoder outputs
    bos_id: int | None = None  # the start token generate() begins with when no prompt is given
    eos_id: int | None = None  # generation stops at this token; None = run to max_length
    # "full": one V-way softmax; "adaptive": Grave et al.'s head + tail clusters (ids must be sorted by
    # falling frequency, as Vocabulary.build makes them; with tie_embeddings: TiedAdaptiveSoftmax)
    softmax: str = "full"
    cutoffs: list[int] = field(default_factory=list)  # adaptive: cluster boundaries; [] = adaptive_cutoffs(V)
    div_value: float = 4.0  # adaptive: each tail cluster's dimension is the previous one's / div_value


SOFTMAXES = ("full", "adaptive")


def adaptive_cutoffs(vocab_size: int) -> list[int]:
    """Cluster boundaries for an adaptive softmax over ``vocab_size`` frequency-sorted tokens.

    The head keeps the most frequent ``min(2000, V / 8)`` tokens (Grave et al. used 2,000 of text8's 44k);
    each further cluster is five times larger than the previous boundary, the last one takes the rest.
    Example: 7,632 tokens -> ``[954, 4770]``; 44,000 -> ``[2000, 10000]``.
    """
    first = max(1, min(2000, vocab_size // 8))
    cuts = [first]
    while cuts[-1] * 5 < vocab_size:
        cuts.append(cuts[-1] * 5)
    return [c for c in cuts if c < vocab_size - 1] or [max(1, vocab_size // 2)]


class AdaptiveOutput(NamedTuple):
    """What :meth:`TiedAdaptiveSoftmax.forward` returns (the fields torch's adaptive softmax returns)."""

    output: Tensor  # (N,) log p(target)
    loss: Tensor  # mean negative log-likelihood, nats


class TiedAdaptiveSoftmax(nn.Module):
    r"""An adaptive softmax whose word vectors are the embedding's rows (``weight`` is shared, not copied).

    The vocabulary, sorted by falling frequency, is cut at ``cutoffs`` ``[c_1, ..., c_k]`` into a head
    ``[0, c_1)`` and tail clusters ``[c_i, c_{i+1})`` (with ``c_{k+1} = V``). For features :math:`f`
    (``(N, E)``, the embedding size) and embedding rows :math:`e_w`:

    .. math::
        p(w \mid f) = \operatorname{softmax}_{\text{head}}(f e_w^\top + b_w)
        \quad (w < c_1), \qquad
        p(w \mid f) = \operatorname{softmax}_{\text{head}}(f u_i^\top + a_i)\,
        \operatorname{softmax}_{c_i \le v < c_{i+1}}(f e_v^\top + b_v)[w] \quad (w \text{ in cluster } i)

    where the head's softmax runs over the ``c_1`` frequent words and one entry per cluster (vectors
    :math:`u_i`, biases :math:`a_i`). Unlike Grave et al.'s untied version, a cluster's words are scored in
    the full embedding size (their vectors are the embedding's); training evaluates only the head and the
    clusters that hold targets, and :meth:`log_prob` gives the exact normalised distribution.

    Shapes: features (N, E), targets (N,) -> ``(output (N,), loss ())``; :meth:`log_prob` (N, E) -> (N, V).

    Example::

        >>> emb = nn.Embedding(100, 8)
        >>> out = TiedAdaptiveSoftmax(emb.weight, [10, 40])
        >>> f = torch.randn(5, 8)
        >>> bool(torch.allclose(out.log_prob(f).exp().sum(-1), torch.ones(5)))
        True
        >>> out(f, torch.tensor([0, 9, 10, 50, 99])).loss.shape
        torch.Size([])
    """

    def __init__(self, weight: nn.Parameter, cutoffs: list[int]):
        super().__init__()
        V, E = weight.shape
        self.weight = weight  # (V, E), the embedding's own Parameter
        self.cutoffs = list(cutoffs)
        self.bounds = [0, *self.cutoffs, V]
        self.bias = nn.Parameter(torch.zeros(V, dtype=weight.dtype, device=weight.device))
        self.cluster = nn.Linear(E, len(self.cutoffs), dtype=weight.dtype, device=weight.device)

    def _head(self, f: Tensor) -> Tensor:
        """(N, E) -> (N, c_1 + clusters): the head's log-probabilities."""
        c1 = self.cutoffs[0]
        words = f @ self.weight[:c1].t() + self.bias[:c1]
        return torch.cat([words, self.cluster(f)], dim=-1).log_softmax(-1)

    def _inner(self, f: Tensor, i: int) -> Tensor:
        """(N, E) -> (N, size of cluster i): log-probabilities within tail cluster ``i`` (0-based)."""
        return self._logits_in(f, i).log_softmax(-1)

    def log_prob(self, f: Tensor) -> Tensor:
        """(N, E) -> (N, V): exact log-probabilities of every word (they sum to 1)."""
        head = self._head(f)
        c1 = self.cutoffs[0]
        parts = [head[:, :c1]]
        for i in range(len(self.cutoffs)):
            parts.append(head[:, c1 + i : c1 + i + 1] + self._inner(f, i))
        return torch.cat(parts, dim=-1)

    def forward(self, f: Tensor, target: Tensor) -> AdaptiveOutput:
        """Log-probability of each target (N,) and their mean negative log-likelihood; only the clusters that
        hold targets are scored."""
        head = self._head(f)
        c1 = self.cutoffs[0]
        cluster = torch.bucketize(target, torch.as_tensor(self.cutoffs, device=target.device), right=True)
        head_index = torch.where(cluster == 0, target, c1 + cluster - 1)
        out = head.gather(1, head_index.unsqueeze(1)).squeeze(1)
        for i in range(len(self.cutoffs)):
            rows = (cluster == i + 1).nonzero().squeeze(1)
            if rows.numel():
                inner = self._inner(f.index_select(0, rows), i)
                local = (target.index_select(0, rows) - self.bounds[i + 1]).unsqueeze(1)
                out = out.index_add(0, rows, inner.gather(1, local).squeeze(1))
        return AdaptiveOutput(out, -out.mean())

    def predict(self, f: Tensor) -> Tensor:
        """(N, E) -> (N,): the most likely word (exact; :func:`adaptive_argmax`)."""
        return adaptive_argmax(
            self._head(f), self.bounds, lambda i, rows: self._logits_in(f.index_select(0, rows), i)
        )

    def _logits_in(self, f: Tensor, i: int) -> Tensor:
        """(R, E) -> (R, size of cluster i): the logits within tail cluster ``i``."""
        a, b = self.bounds[i + 1], self.bounds[i + 2]
        return f @ self.weight[a:b].t() + self.bias[a:b]


def adaptive_argmax(
    head: Tensor, bounds: list[int], cluster_logits: Callable[[int, Tensor], Tensor]
) -> Tensor:
    r"""The exact argmax of an adaptive softmax's full distribution, without building the (N, V) matrix.

    ``head`` (N, c_1 + k): the head's log-probabilities (the ``c_1`` frequent words, then one entry per
    cluster); ``bounds`` ``[0, c_1, ..., c_k, V]``; ``cluster_logits(i, rows)`` -> (R, size of cluster i) the
    logits within cluster ``i`` for the given rows. A word of cluster ``i`` has log-probability
    :math:`\log p_{\text{head}}(i) + z_w - \operatorname{logsumexp}(z)`, at most the cluster's head entry,
    so cluster ``i`` is scored only on rows where that entry beats the best word so far; its best word is its
    largest logit. Ties go to the lower id, as ``argmax`` over the full distribution does.

    Shapes: head (N, c_1 + k) -> (N,) word ids.
    """
    c1 = bounds[1]
    best_lp, best = head[:, :c1].max(-1)
    for i in range(len(bounds) - 2):
        rows = (head[:, c1 + i] > best_lp).nonzero().squeeze(1)
        if not rows.numel():
            continue
        z = cluster_logits(i, rows)  # (R, size)
        top, where = z.max(-1)
        lp = head[rows, c1 + i] + top - z.logsumexp(-1)
        wins = lp > best_lp[rows]
        rows = rows[wins]
        best_lp = best_lp.index_put((rows,), lp[wins])
        best = best.index_put((rows,), where[wins] + bounds[i + 1])
    return best


class LanguageModel(Model):
    r"""Next-token prediction :math:`p(x_{t+1} \mid x_{\le t})` with a recurrent encoder.

    With ``tie_embeddings`` the output layer reuses the embedding matrix; when the encoder's output size
    differs from ``embedding_dim`` a linear projection (H -> E) is inserted before it.

    With ``softmax="adaptive"`` (Grave et al. 2017) the vocabulary, sorted by falling frequency, is cut at
    ``cutoffs`` :math:`c_1 < \dots < c_n`: the head scores the :math:`c_1` most frequent tokens and one entry
    per tail cluster, and cluster :math:`i` (tokens :math:`[c_i, c_{i+1})`) has its own softmax on an
    :math:`H / d^i` projection (``d`` = ``div_value``):

    .. math:: \log p(w \mid h) = \log \mathrm{softmax}(W_0 h)_{w} \;(w < c_1), \qquad
              \log p(w \mid h) = \log \mathrm{softmax}(W_0 h)_{c_1 + i - 1}
              + \log \mathrm{softmax}(U_i P_i h)_{w - c_i} \;(w \in \text{cluster } i).

    Training (:meth:`loss`) evaluates only the head and the clusters of the batch's targets; :meth:`forward`
    and :meth:`step` return the exact full log-probabilities (normalised, so a log-softmax of them changes
    nothing), and everything that reads them (scores, top-k, sampling) is exact. Both ``softmax="adaptive"``
    and ``tie_embeddings``: :class:`TiedAdaptiveSoftmax` (the same clusters, word vectors = embedding rows, on
    the projected features; ``div_value`` unused).

    Shape: tokens (B, T) -> ``(logits (B, T, V), state)`` (log-probabilities with the adaptive softmax).
    Batches: ``{"inputs" (B, T), "targets" (B, T), "lengths"}`` (targets = inputs shifted by one); truncated
    BPTT is supported (the trainer carries the state between chunks). Adaptive example:
    ``LanguageModel(LanguageModelConfig(vocab_size=10000, softmax="adaptive"))`` (cutoffs ``[1250, 6250]``).

    Example::

        >>> lm = LanguageModel(LanguageModelConfig(vocab_size=60, embedding_dim=32,
        ...                    encoder=EncoderConfig("lstm", 32), tie_embeddings=True))
        >>> logits, state = lm(torch.randint(0, 60, (2, 10)))
        >>> out = lm.generate(torch.randint(0, 60, (1, 5)), DecodingConfig("sample", max_length=20, top_p=0.9))
        >>> out.tokens.shape[1] <= 20
        True
    """

    config_class = LanguageModelConfig
    time_keys = ("inputs", "targets")

    def __init__(self, config: LanguageModelConfig | dict[str, Any]):
        super().__init__(config)
        c = self.config
        positive("vocab_size", c.vocab_size)
        positive("embedding_dim", c.embedding_dim)
        no_bidirectional(c.encoder, "a language model's encoder (autoregressive)")
        if not 0.0 <= c.dropout < 1.0:
            raise RnnkitError(f"dropout must be in [0, 1), got {c.dropout}")
        for name in ("bos_id", "eos_id"):
            v = getattr(c, name)
            if v is not None and not 0 <= v < c.vocab_size:
                raise RnnkitError(f"{name} must lie in [0, vocab_size={c.vocab_size}), got {v}")
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim)
        self.encoder = c.encoder.build(c.embedding_dim)
        self.drop = nn.Dropout(c.dropout)
        if c.softmax not in SOFTMAXES:
            raise RnnkitError(f"softmax must be one of {SOFTMAXES}, got {c.softmax!r}")
        H = self.encoder.output_size
        self.proj = nn.Linear(H, c.embedding_dim) if c.tie_embeddings and H != c.embedding_dim else None
        self.adaptive = c.softmax == "adaptive"
        if self.adaptive:
            cutoffs = list(c.cutoffs) or adaptive_cutoffs(c.vocab_size)
            if sorted(set(cutoffs)) != cutoffs or cutoffs[0] < 1 or cutoffs[-1] > c.vocab_size - 1:
                raise RnnkitError(
                    f"cutoffs must be increasing integers in [1, vocab_size - 1 = {c.vocab_size - 1}], "
                    f"got {cutoffs}"
                )
            if c.div_value < 1.0:
                raise RnnkitError(f"div_value must be >= 1, got {c.div_value}")
            if c.tie_embeddings:  # features in the embedding size (self.proj), word vectors = embedding rows
                self.output = TiedAdaptiveSoftmax(self.embedding.weight, cutoffs)
            else:
                self.output = nn.AdaptiveLogSoftmaxWithLoss(
                    H, c.vocab_size, cutoffs, c.div_value, head_bias=True
                )
        else:
            self.output = nn.Linear(c.embedding_dim if c.tie_embeddings else H, c.vocab_size)
            if c.tie_embeddings:
                self.output.weight = self.embedding.weight

    def _features(self, h: Tensor) -> Tensor:
        """The output layer's input: dropout, then the tied projection if any."""
        h = self.drop(h)
        return self.proj(h) if self.proj is not None else h

    def _logits(self, h: Tensor) -> Tensor:
        """(..., H) -> (..., V): logits, or (adaptive) the exact log-probabilities."""
        h = self._features(h)
        if not self.adaptive:
            return self.output(h)
        return self.output.log_prob(h.reshape(-1, h.shape[-1])).view(*h.shape[:-1], -1)

    def _predict(self, f: Tensor) -> Tensor:
        """Adaptive softmax: features (N, ...) -> the most likely token of each row (N,), exact."""
        out = self.output
        if isinstance(out, TiedAdaptiveSoftmax):
            return out.predict(f)
        bounds = [0, *out.cutoffs]  # torch's cutoffs end with V
        return adaptive_argmax(
            out.head(f).log_softmax(-1), bounds, lambda i, rows: out.tail[i](f.index_select(0, rows))
        )

    def forward(self, tokens: Tensor, state: Any = None, lengths: Tensor | None = None) -> tuple[Tensor, Any]:
        """Tokens (B, T) -> ``(logits (B, T, V), final_state)``; ``state`` continues a previous call."""
        out, state = self._hidden(tokens, state, lengths, "tokens")
        return self._logits(out), state

    def _hidden(self, tokens: Tensor, state: Any, lengths: Tensor | None, what: str) -> tuple[Tensor, Any]:
        """Tokens (B, T) -> the top layer's outputs (B, T, H) and the final state."""
        tokens = check_tokens(tokens, self.config.vocab_size, what)
        lengths = check_lengths(lengths, tokens.shape[0], tokens.shape[1], allow_zero=state is not None)
        x = self.drop(self.embedding(tokens))  # (B, T, E)
        return self.encoder(x, state, lengths)  # (B, T, H)

    def loss(self, batch: Any, state: Any = None) -> LossOutput:
        """Mean cross-entropy (nats per token) over valid steps; metric ``accuracy``.

        Only the valid steps reach the output layer; with the adaptive softmax only the head and the clusters
        of the targets are evaluated, and the accuracy (the exact argmax, :func:`adaptive_argmax`, which scores
        the clusters on most rows) is computed in eval mode only: in training it would add about a fifth to an
        update (Austen's words, 7,632 tokens: 14.8 s against 13.1 s for 200 updates), so ``train_accuracy``
        is absent from the history of an adaptive model while ``val_accuracy`` is there.
        """
        b = as_batch(batch, self.batch_keys)
        inputs, targets, lengths = require(b, "inputs"), require(b, "targets"), b.get("lengths")
        out, state = self._hidden(inputs, state, lengths, "inputs")
        B, T = out.shape[:2]
        if not isinstance(targets, Tensor) or targets.shape != (B, T):
            got = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
            raise RnnkitError(f"targets must have the inputs' shape {(B, T)}, got {got}")
        valid = step_mask(None if lengths is None else torch.as_tensor(lengths), B, T, out.device)
        # padded positions may hold anything: only the valid targets are checked
        y = check_tokens(targets[valid].view(1, -1), self.config.vocab_size, "targets").view(-1).long()
        n = int(y.numel())
        # the adaptive accuracy would add a fifth to a training update: it is reported in evaluation only
        accuracy = not (self.adaptive and self.training)
        if n == 0:
            return LossOutput(out.sum() * 0.0, 0, state, {"accuracy": 0.0} if accuracy else {})
        h = self._features(out[valid])  # (N, H)
        if not self.adaptive:
            logits = self.output(h)  # (N, V)
            loss = F.cross_entropy(logits, y)
            return LossOutput(loss, n, state, {"accuracy": float((logits.argmax(-1) == y).sum())})
        loss = self.output(h, y).loss
        if not accuracy:
            return LossOutput(loss, n, state, {})
        with torch.no_grad():
            correct = float((self._predict(h.detach()) == y).sum())
        return LossOutput(loss, n, state, {"accuracy": correct})

    # -- generation ---------------------------------------------------------------------------------------
    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One step: tokens (B,) -> ``(log_probs (B, V), state)``."""
        x = self.drop(self.embedding(tokens))  # (B, E)
        y, state = self.encoder.step(x, state)
        return self._logits(y).log_softmax(-1), state

    def generate(
        self,
        prompt: Tensor | None = None,
        config: DecodingConfig | None = None,
        lengths: Tensor | None = None,
        num_samples: int = 1,
        generator: torch.Generator | None = None,
        **kwargs,
    ) -> DecodeResult:
        """Continue ``prompt`` (B, T) ids (right-padded, ``lengths``) or start from ``bos_id``.

        ``config`` (or keyword arguments of :class:`~rnnkit.models.DecodingConfig`) picks greedy, sampling
        (temperature / top-k / top-p) or beam search. Returns the new tokens only (end token excluded).
        """
        config = make_decoding(config, kwargs)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                if prompt is None:
                    if self.config.bos_id is None:
                        raise RnnkitError("generate() without a prompt needs bos_id in the config")
                    first = torch.full((num_samples,), self.config.bos_id, dtype=torch.long)
                    state = self.encoder.start_state(num_samples, self.embedding.weight)
                else:
                    if isinstance(prompt, Tensor) and prompt.dim() == 1:
                        prompt = prompt.unsqueeze(0)
                    prompt = check_tokens(prompt, self.config.vocab_size, "prompt")
                    B, T = prompt.shape
                    lengths = check_lengths(lengths, B, T, name="prompt lengths")
                    if lengths is None:
                        lengths = torch.full((B,), T, dtype=torch.long)
                    # all but the last prompt token set the state; the last one is the first decoding input
                    state = self.encoder.start_state(B, self.embedding.weight)
                    if T > 1:
                        x = self.embedding(prompt[:, :-1])
                        _, state = self.encoder(x, state, lengths - 1)
                    first = prompt.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)

                def step_fn(prev, st):
                    lp, st = self.step(prev, st)
                    return lp, st, None

                return decode(step_fn, state, first, self.config.eos_id, config, generator=generator)
        finally:
            self.train(was_training)
