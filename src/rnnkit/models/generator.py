"""One-to-many: :class:`SequenceGenerator` — one conditioning input (features, a class, a seed) to a sequence.

Shape convention: cond (B, cond_size) floats or (B,) class ids; tokens (B, T); logits (B, T, V).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit._errors import RnnkitError
from rnnkit.models._base import (
    EncoderConfig,
    LossOutput,
    Model,
    as_batch,
    check_batch_size,
    check_lengths,
    check_tokens,
    no_bidirectional,
    positive,
    require,
    step_mask,
)
from rnnkit.models.decoding import DecodeResult, DecodingConfig, decode, make_decoding

__all__ = ["GeneratorConfig", "SequenceGenerator"]

CONDITIONINGS = ("state", "input", "both")


@dataclass
class GeneratorConfig:
    """A conditional sequence generator (e.g. image features -> caption, class -> example sequence)."""

    cond_size: int = 16  # size of the conditioning vector
    cond_classes: int = 0  # > 0: the condition is a class id, embedded in cond_size; 0: a float vector
    vocab_size: int = 32  # output tokens are ints in [0, vocab_size)
    embedding_dim: int = 32  # token embedding size
    encoder: EncoderConfig = field(default_factory=EncoderConfig)  # the recurrent decoder; unidirectional
    conditioning: str = "both"  # state (initial state from cond) | input (cond fed at every step) | both
    dropout: float = 0.0  # on the token embeddings and the recurrent outputs
    bos_id: int = 2  # first input token of every sequence (rnnkit.datasets.Vocabulary's <bos>)
    eos_id: int = 3  # the end token: generation stops there (Vocabulary's <eos>)
    pad_id: int = 0  # fills generated sequences after their end (Vocabulary's <pad>)


class SequenceGenerator(Model):
    """One-to-many: from one conditioning input to a token sequence.

    Conditioning through the initial state (``h0 = tanh(W c)``, per layer and per state tensor), through
    every step's input (``[embed(y_{t-1}); c]``), or both. Trained with teacher forcing; decoded greedily,
    by sampling (temperature, top-k, top-p) or by beam search (:mod:`rnnkit.models.decoding`).

    Shape: ``forward(cond, tokens_in (B, T), lengths)`` -> ``(logits (B, T, V), state)``. Batches:
    ``{"cond", "targets" (B, T) ending in eos_id, "lengths"}``; the inputs are ``[bos] + targets[:-1]``.

    Example::

        >>> gen = SequenceGenerator(GeneratorConfig(cond_size=8, vocab_size=20, encoder=EncoderConfig("gru", 32)))
        >>> out = gen.generate(torch.randn(3, 8), strategy="beam", beam_size=4, max_length=12)
        >>> out.tokens.shape[0]
        3
    """

    config_class = GeneratorConfig
    batch_keys = ("cond", "targets", "lengths")

    def __init__(self, config: GeneratorConfig | dict[str, Any]):
        super().__init__(config)
        c = self.config
        positive("cond_size", c.cond_size)
        positive("cond_classes", c.cond_classes, zero_ok=True)
        positive("vocab_size", c.vocab_size)
        positive("embedding_dim", c.embedding_dim)
        no_bidirectional(c.encoder, "a sequence generator's decoder")
        if c.conditioning not in CONDITIONINGS:
            raise RnnkitError(
                f"unknown conditioning: expected one of {CONDITIONINGS}, got {c.conditioning!r}"
            )
        for name in ("bos_id", "eos_id", "pad_id"):
            v = getattr(c, name)
            if not 0 <= v < c.vocab_size:
                raise RnnkitError(f"{name} must lie in [0, vocab_size={c.vocab_size}), got {v}")
        self.cond_embedding = nn.Embedding(c.cond_classes, c.cond_size) if c.cond_classes else None
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim)
        feed = c.conditioning in ("input", "both")
        self.decoder = c.encoder.build(c.embedding_dim + (c.cond_size if feed else 0))
        n = self.decoder.num_layers
        self.init_state = (
            nn.ModuleList([nn.Linear(c.cond_size, n * s) for s in self.decoder.cell.state_sizes()])
            if c.conditioning in ("state", "both")
            else None
        )
        self.drop = nn.Dropout(c.dropout)
        self.output = nn.Linear(self.decoder.output_size, c.vocab_size)

    # -- pieces -------------------------------------------------------------------------------------------
    def condition(self, cond: Tensor) -> Tensor:
        """The conditioning vector (B, cond_size) from floats or class ids."""
        c = self.config
        if self.cond_embedding is not None:
            return self.cond_embedding(check_tokens(cond, c.cond_classes, "cond", dims=1))
        if not isinstance(cond, Tensor) or not cond.is_floating_point():
            raise RnnkitError(
                f"cond must be a float tensor (batch, {c.cond_size}), got {getattr(cond, 'dtype', cond)}"
            )
        if cond.dim() != 2 or cond.shape[1] != c.cond_size:
            raise RnnkitError(
                f"cond must have shape (batch, cond_size={c.cond_size}), got {tuple(cond.shape)}"
            )
        check_batch_size(cond, "cond")
        return cond

    def initial_state(self, c: Tensor) -> Any:
        B = c.shape[0]
        if self.init_state is None:
            return self.decoder.zeros_state(B, c.device, c.dtype)
        n = self.decoder.num_layers
        parts = tuple(
            torch.tanh(lin(c)).view(B, n, -1).transpose(0, 1).contiguous() for lin in self.init_state
        )
        return parts if self.decoder.cell.paired_state else parts[0]  # (L, B, n)

    def _inputs(self, tokens: Tensor, c: Tensor) -> Tensor:
        x = self.drop(self.embedding(tokens))  # (B, T, E) or (B, E)
        if self.config.conditioning == "state":
            return x
        cc = c.unsqueeze(1).expand(-1, x.shape[1], -1) if x.dim() == 3 else c
        return torch.cat([x, cc], dim=-1)

    # -- training -----------------------------------------------------------------------------------------
    def forward(self, cond: Tensor, tokens_in: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Any]:
        """Teacher-forced: cond and the input tokens (B, T) -> ``(logits (B, T, V), final_state)``."""
        c = self.condition(cond)
        tokens_in = check_tokens(tokens_in, self.config.vocab_size, "tokens")
        if tokens_in.shape[0] != c.shape[0]:
            raise RnnkitError(f"cond has {c.shape[0]} rows but tokens have {tokens_in.shape[0]}")
        lengths = check_lengths(lengths, tokens_in.shape[0], tokens_in.shape[1])
        out, state = self.decoder(self._inputs(tokens_in, c), self.initial_state(c), lengths)
        return self.output(self.drop(out)), state

    def loss(self, batch: Any, state: Any = None) -> LossOutput:
        b = as_batch(batch, self.batch_keys)
        targets = check_tokens(require(b, "targets"), self.config.vocab_size, "targets")
        B, T = targets.shape
        bos = torch.full((B, 1), self.config.bos_id, dtype=torch.long, device=targets.device)
        logits, _ = self(require(b, "cond"), torch.cat([bos, targets[:, :-1]], 1), b.get("lengths"))
        lengths = b.get("lengths")
        mask = step_mask(None if lengths is None else torch.as_tensor(lengths), B, T, logits.device)
        loss = F.cross_entropy(logits[mask], targets[mask])
        correct = float((logits[mask].argmax(-1) == targets[mask]).sum())
        return LossOutput(loss, int(mask.sum()), None, {"accuracy": correct})

    # -- generation ---------------------------------------------------------------------------------------
    def generate(
        self,
        cond: Tensor,
        config: DecodingConfig | None = None,
        generator: torch.Generator | None = None,
        **kwargs,
    ) -> DecodeResult:
        """Sequences for each condition; ``config`` or keyword arguments of :class:`DecodingConfig`."""
        config = make_decoding(config, kwargs)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                c = self.condition(cond)
                B = c.shape[0]
                state = (self.initial_state(c), c)

                def step_fn(prev, st):
                    rnn_state, cc = st
                    y, rnn_state = self.decoder.step(self._inputs(prev, cc), rnn_state)
                    return self.output(y).log_softmax(-1), (rnn_state, cc), None

                def reorder(st, idx):
                    rnn_state, cc = st
                    rs = (
                        tuple(s.index_select(1, idx) for s in rnn_state)
                        if isinstance(rnn_state, tuple)
                        else (rnn_state.index_select(1, idx))
                    )
                    return rs, cc.index_select(0, idx)

                first = torch.full((B,), self.config.bos_id, dtype=torch.long, device=c.device)
                return decode(
                    step_fn, state, first, self.config.eos_id, config, reorder, self.config.pad_id, generator
                )
        finally:
            self.train(was_training)
