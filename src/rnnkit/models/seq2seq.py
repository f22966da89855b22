"""Many-to-many, unaligned: :class:`Seq2Seq` — an encoder-decoder with attention.

Shape convention (batch first): src (B, S) ids or (B, S, I) features with ``src_lengths``; tgt (B, T) ids;
logits (B, T, V); attention weights (B, T, S), zero at padded source positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit._errors import RnnkitError
from rnnkit.layers import RecurrentMasks
from rnnkit.models._base import (
    EncoderConfig,
    InputEmbedding,
    LossOutput,
    Model,
    as_batch,
    check_lengths,
    check_tokens,
    no_bidirectional,
    positive,
    require,
    step_mask,
    top_hidden,
)
from rnnkit.models.attention import ATTENTIONS, AdditiveAttention, LuongAttention
from rnnkit.models.decoding import DecodeResult, DecodingConfig, decode, make_decoding, reorder_state
from rnnkit.models.tdnn import TimeDelayEncoder

__all__ = ["Seq2SeqConfig", "Seq2Seq"]


@dataclass
class Seq2SeqConfig:
    """An encoder-decoder: source sequence -> target sequence of another length."""

    src_vocab_size: int = 32  # > 0: source token ids; 0: float source features of src_input_size
    src_input_size: int = 0  # source features per step when src_vocab_size == 0
    tgt_vocab_size: int = 32  # target tokens are ints in [0, tgt_vocab_size)
    embedding_dim: int = 64  # source and target embedding size
    encoder: EncoderConfig = field(
        default_factory=lambda: EncoderConfig(bidirectional=True)
    )  # may be bidirectional
    decoder: EncoderConfig = field(default_factory=EncoderConfig)  # autoregressive: must be unidirectional
    attention: str = "bahdanau"  # none | bahdanau (additive) | dot | general (Luong)
    attention_dim: int = 64  # size of the additive attention's tanh layer
    teacher_forcing: float = (
        1.0  # training: probability of feeding the true previous token (scheduled sampling)
    )
    dropout: float = 0.0  # on embeddings and before the output layer
    # > 0: the feed-forward counterpart, no recurrence anywhere: a TimeDelayEncoder of this many convolutions
    # reads the source, and each decoder step sees only the last `decoder_context` target tokens (`encoder` and
    # the decoder's cell are not used; its hidden_size is the query size)
    time_delay_layers: int = 0
    time_delay_width: int = 5  # frames each of its convolutions spans (odd)
    time_delay_size: int = 256  # channels of each of its convolutions
    decoder_context: int = 4  # previous target tokens the feed-forward decoder sees
    # copy attention (pointer-generator): each step may also copy a source token through its attention weights;
    # a source id copies into the target id copy_map[id] (Seq2Seq.set_copy_map; by default the same id)
    copy_attention: bool = False
    bos_id: int = 2  # the decoder's first input (rnnkit.datasets.Vocabulary's <bos>)
    eos_id: int = 3  # the end token (Vocabulary's <eos>)
    pad_id: int = 0  # fills generated sequences after their end (Vocabulary's <pad>)


class Seq2Seq(Model):
    r"""Encoder-decoder with attention (Bahdanau et al. 2015; Luong et al. 2015).

    The encoder (any cell, bidirectional allowed) reads the source; a bridge ``tanh(W h_enc)`` sets the
    decoder's initial state from the encoder's final state. At decoder step ``t`` with previous token
    :math:`y_{t-1}`:

    * ``bahdanau``: :math:`c_t = \mathrm{attn}(s_{t-1}, H)`, :math:`s_t = \mathrm{RNN}([e(y_{t-1}); c_t],
      s_{t-1})`, :math:`o_t = \tanh(W_o [s_t; c_t])`;
    * ``dot`` / ``general`` (Luong, with input feeding): :math:`s_t = \mathrm{RNN}([e(y_{t-1});
      \tilde h_{t-1}], s_{t-1})`, :math:`c_t = \mathrm{attn}(s_t, H)`, :math:`\tilde h_t = \tanh(W_c [s_t;
      c_t])` = :math:`o_t`;
    * ``none``: :math:`o_t = s_t`;

    and :math:`p(y_t) = \mathrm{softmax}(W_v o_t)`. With ``copy_attention`` (a pointer-generator, See et al.
    2017; OpenNMT's copy attention) the step may also copy a source token: with :math:`a_t` the attention weights,
    :math:`g_t = \sigma(w_g^\top [o_t; c_t] + b_g)` and :math:`m_t` the attention mass on source tokens that have
    a target id (``copy_map``, see :meth:`set_copy_map`),
    :math:`p(w) = (1 - (1 - g_t) m_t)\,\mathrm{softmax}(W_v o_t)_w + (1 - g_t) \sum_{j: \mathrm{map}(x_j) = w}
    a_{t,j}` (the attention on tokens that cannot be copied goes back to generating); the model's "logits" are
    then :math:`\log p`, which every loss and decoder reads as logits (log-softmax leaves them unchanged).

    With ``time_delay_layers > 0`` it is the feed-forward counterpart: a
    :class:`~rnnkit.models.tdnn.TimeDelayEncoder` gives :math:`H`, and step ``t`` sees only the last
    :math:`k` = ``decoder_context`` tokens (``bos`` before the start); with :math:`H` the encoder's outputs
    normalised per step (layer norm), :math:`q_t = \tanh(W_q [e(y_{t-k});
    \dots; e(y_{t-1})])`, :math:`c_t = \mathrm{attn}(q_t, H)`, :math:`o_t = \tanh(W_o [q_t; c_t])`: the
    same attention, output layer, training and decoding, with no state carried from step to step but the
    tokens themselves. Training uses teacher forcing; with
    ``teacher_forcing < 1`` each sequence feeds back its own previous prediction with probability
    ``1 - teacher_forcing`` at each step (scheduled sampling, Bengio et al. 2015; lower it during training
    with :meth:`set_teacher_forcing`). Decoding: greedy or beam search with length normalisation.

    Batches: ``{"src", "tgt" (B, T) ending in eos_id, "src_lengths", "tgt_lengths"}``.

    Example::

        >>> cfg = Seq2SeqConfig(src_vocab_size=14, tgt_vocab_size=14, embedding_dim=16,
        ...                     encoder=EncoderConfig("gru", 32, bidirectional=True),
        ...                     decoder=EncoderConfig("gru", 32), attention="general")
        >>> model = Seq2Seq(cfg)
        >>> out = model.generate(torch.randint(4, 14, (2, 6)), beam_size=3, strategy="beam")
        >>> out.extras.shape[-1]    # attention over the 6 source positions
        6
    """

    config_class = Seq2SeqConfig
    batch_keys = ("src", "tgt", "src_lengths", "tgt_lengths")

    def __init__(self, config: Seq2SeqConfig | dict[str, Any]):
        super().__init__(config)
        c = self.config
        positive("tgt_vocab_size", c.tgt_vocab_size)
        positive("embedding_dim", c.embedding_dim)
        no_bidirectional(c.decoder, "a Seq2Seq decoder (autoregressive)")
        if c.attention not in ATTENTIONS:
            raise RnnkitError(f"unknown attention: expected one of {ATTENTIONS}, got {c.attention!r}")
        if not 0.0 <= c.teacher_forcing <= 1.0:
            raise RnnkitError(f"teacher_forcing must be in [0, 1], got {c.teacher_forcing}")
        if not 0.0 <= c.dropout < 1.0:
            raise RnnkitError(f"dropout must be in [0, 1), got {c.dropout}")
        for name in ("bos_id", "eos_id", "pad_id"):
            v = getattr(c, name)
            if not 0 <= v < c.tgt_vocab_size:
                raise RnnkitError(f"{name} must lie in [0, tgt_vocab_size={c.tgt_vocab_size}), got {v}")
        self.src_embed = InputEmbedding(c.src_vocab_size, c.src_input_size, c.embedding_dim, c.dropout)
        positive("time_delay_layers", c.time_delay_layers, zero_ok=True)
        ff = bool(c.time_delay_layers)  # the feed-forward counterpart
        if ff:
            if c.attention == "none":
                raise RnnkitError(
                    "the feed-forward Seq2Seq (time_delay_layers > 0) reads the source only through attention: "
                    "expected attention bahdanau, dot or general, got 'none'"
                )
            positive("decoder_context", c.decoder_context)
            self.encoder = TimeDelayEncoder(
                self.src_embed.size, c.time_delay_size, c.time_delay_layers, c.time_delay_width, c.dropout
            )
            # the residual ReLU stack is unbounded where a recurrent encoder's outputs lie in (-1, 1): normalised
            # per step, its outputs cannot grow until tanh(W_o [q; c]) saturates (they did, on emoji captions)
            self.memory_norm = nn.LayerNorm(self.encoder.output_size)
            Y = c.decoder.hidden_size
        else:
            self.encoder = c.encoder.build(self.src_embed.size)
            Y = c.decoder.cell_options.get("proj_size") or c.decoder.hidden_size  # the decoder's output size
        E = self.encoder.output_size
        # (modules are made in this order so that a seeded recurrent model starts from the same weights as before)
        self.tgt_embedding = nn.Embedding(c.tgt_vocab_size, c.embedding_dim)
        if ff:
            self.decoder = None
            self.query = nn.Linear(c.decoder_context * c.embedding_dim, Y)
        else:
            extra = {"bahdanau": E, "dot": Y, "general": Y, "none": 0}[c.attention]
            self.decoder = c.decoder.build(c.embedding_dim + extra)
        if c.attention == "bahdanau":
            self.attention = AdditiveAttention(Y, E, c.attention_dim)
        elif c.attention in ("dot", "general"):
            self.attention = LuongAttention(Y, E, c.attention)
        else:
            self.attention = None
        self.combine = nn.Linear(Y + E, Y) if self.attention is not None else None
        if ff:
            self.bridge = None
        else:
            L = self.decoder.num_layers
            self.bridge = nn.ModuleList([nn.Linear(E, L * s) for s in self.decoder.cell.state_sizes()])
        self.drop = nn.Dropout(c.dropout)
        self.output = nn.Linear(Y, c.tgt_vocab_size)
        self.teacher_forcing = c.teacher_forcing
        self.copy_gate = None
        if c.copy_attention:
            if self.attention is None or c.src_vocab_size <= 0:
                raise RnnkitError(
                    "copy_attention copies source tokens through the attention: expected attention bahdanau, dot "
                    f"or general and source token ids, got attention {c.attention!r} and src_vocab_size "
                    f"{c.src_vocab_size}"
                )
            self.copy_gate = nn.Linear(Y + E, 1)
            same = torch.arange(c.src_vocab_size)
            same[
                (same >= c.tgt_vocab_size) | torch.isin(same, torch.tensor([c.pad_id, c.bos_id, c.eos_id]))
            ] = -1
            self.register_buffer("copy_map", same)

    def set_teacher_forcing(self, ratio: float) -> None:
        """The scheduled-sampling ratio used from now on in training (not saved: the config keeps the start)."""
        if not 0.0 <= ratio <= 1.0:
            raise RnnkitError(f"teacher_forcing must be in [0, 1], got {ratio}")
        self.teacher_forcing = float(ratio)

    def set_copy_map(self, mapping: Tensor) -> None:
        """Which target id each source id copies into (copy attention): ``mapping`` (src_vocab_size,) of ids in
        ``[0, tgt_vocab_size)``, or -1 for a source token that cannot be copied. Saved with the weights. The
        default copies id ``i`` into id ``i`` (source and target share one vocabulary), the special ids excepted;
        separate vocabularies map each source subword to the target id of the same string."""
        if self.copy_gate is None:
            raise RnnkitError("set_copy_map needs a model built with copy_attention=True")
        m = torch.as_tensor(mapping)
        V = self.config.tgt_vocab_size
        if m.shape != self.copy_map.shape or m.dtype.is_floating_point or bool(((m < -1) | (m >= V)).any()):
            raise RnnkitError(
                f"copy map: expected {self.copy_map.shape[0]} integer target ids in [-1, {V}), got "
                f"{m.dtype} of shape {tuple(m.shape)} with values in [{int(m.min())}, {int(m.max())}]"
                if m.numel()
                else f"copy map: expected {self.copy_map.shape[0]} integer target ids, got none"
            )
        self.copy_map.copy_(m.to(self.copy_map))

    def _copy(self, logits: Tensor, out: Tensor, ctx: Tensor, weights: Tensor, st: dict[str, Any]) -> Tensor:
        """log p of the copy-attention mixture (see the class docstring): ``logits`` (N, V) of generating,
        ``out`` (N, Y), ``ctx`` (N, E), ``weights`` (N, S); from the state (:meth:`_copy_state`, made once per
        source) ``copy_ids`` (N, S), the target id each source token copies into (-1: none), and ``copy_share``
        (N, S), 1 / the number of source tokens with that id -> (N, V)."""
        # In log space, so that only the (at most S) copied ids are touched beyond one log-softmax over the
        # vocabulary: log p = log a + log_softmax(logits), lifted at each copied id w to log(a p_gen(w) + c(w)).
        tgt = st["copy_ids"]
        keep = torch.sigmoid(self.copy_gate(torch.cat([out, ctx], -1)))  # (N, 1): the share of generating
        c = (1 - keep) * weights * (tgt >= 0)  # (N, S): each source token's copy mass (none if uncopyable)
        a = 1 - c.sum(-1, keepdim=True)  # (N, 1): generating's share, >= keep > 0
        base = logits.log_softmax(-1) + a.log()  # (N, V)
        idx = tgt.clamp(min=0)  # an uncopyable token adds nothing (c = 0) wherever it points
        c_id = torch.zeros_like(base).scatter_add(1, idx, c).gather(1, idx)  # (N, S): the copy mass of its id
        b = base.gather(1, idx)
        lift = torch.logaddexp(b, c_id.clamp(min=torch.finfo(c.dtype).tiny).log()) - b
        # each of an id's n tokens adds 1/n of its lift (so the gradient is not counted n times)
        return base.scatter_add(1, idx, lift * st["copy_share"])

    def _copy_state(self, src: Tensor) -> dict[str, Tensor]:
        """What copy attention needs of the source, computed once (not at every decoder step): ``copy_ids``
        (B, S) and ``copy_share`` (B, S), see :meth:`_copy`."""
        ids = self.copy_map[src]
        idx = ids.clamp(min=0)
        same = (idx[:, :, None] == idx[:, None, :]).sum(-1)  # (B, S): source tokens sharing this one's id
        return {"copy_ids": ids, "copy_share": 1.0 / same.float()}

    # -- pieces -------------------------------------------------------------------------------------------
    def encode(self, src: Tensor, src_lengths: Tensor | None = None) -> dict[str, Any]:
        """The decoder's starting point: memory (B, S, E), its mask, projected keys and initial state."""
        x = self.src_embed(src, "src")
        B, S = x.shape[0], x.shape[1]
        src_lengths = check_lengths(src_lengths, B, S, name="src_lengths")
        memory, state = self.encoder(x, None, src_lengths)  # (B, S, E)
        mask = step_mask(src_lengths, B, S, x.device)
        if self.decoder is None:  # feed-forward: the decoder's only state is its window of previous tokens
            memory = self.memory_norm(memory)
            window = torch.full((B, self.config.decoder_context), self.config.bos_id, device=x.device)
            st = {"window": window, "memory": memory, "mask": mask, "keys": self.attention.precompute(memory)}
            if self.copy_gate is not None:
                st.update(self._copy_state(src))
            return st
        h = top_hidden(self.encoder, state)  # (B, E)
        L = self.decoder.num_layers
        parts = tuple(torch.tanh(lin(h)).view(B, L, -1).transpose(0, 1).contiguous() for lin in self.bridge)
        dec_state = parts if self.decoder.cell.paired_state else parts[0]  # (L, B, n)
        st: dict[str, Any] = {
            "rnn": dec_state,
            "memory": memory,
            "mask": mask,
        }
        if self.attention is not None:
            st["keys"] = self.attention.precompute(memory)
        if self.config.attention in ("dot", "general"):
            st["feed"] = memory.new_zeros(B, self.output.in_features)
        if self.copy_gate is not None:
            st.update(self._copy_state(src))
        return st

    def _step(
        self, prev: Tensor, st: dict[str, Any], masks: RecurrentMasks | None = None
    ) -> tuple[Tensor, dict[str, Any], Tensor | None]:
        """One decoder step: previous tokens (N,) -> ``(logits (N, V), state, attention (N, S) or None)``.

        ``masks``: this step's decoder masks (drawn once per sequence in training, see :meth:`forward`).
        """
        st = dict(st)
        if self.decoder is None:  # feed-forward: the last decoder_context tokens, attention, output
            window = torch.cat([st["window"][:, 1:], prev[:, None]], 1)  # (N, k)
            q = torch.tanh(self.query(self.drop(self.tgt_embedding(window)).flatten(1)))  # (N, Y)
            ctx, weights = self.attention(q, st["memory"], st["mask"], st["keys"])
            st["window"] = window
            out = torch.tanh(self.combine(torch.cat([q, ctx], -1)))
            logits = self.output(self.drop(out))
            if self.copy_gate is not None:
                logits = self._copy(logits, out, ctx, weights, st)
            return logits, st, weights
        emb = self.drop(self.tgt_embedding(prev))  # (N, E_emb)
        rnn = st["rnn"]
        kind = self.config.attention
        weights = None
        if kind == "bahdanau":
            h_prev = (rnn[0] if isinstance(rnn, tuple) else rnn)[-1]  # top layer (N, Y)
            ctx, weights = self.attention(h_prev, st["memory"], st["mask"], st["keys"])
            y, rnn = self.decoder.step(torch.cat([emb, ctx], -1), rnn, masks)
            out = torch.tanh(self.combine(torch.cat([y, ctx], -1)))
        elif kind in ("dot", "general"):
            y, rnn = self.decoder.step(torch.cat([emb, st["feed"]], -1), rnn, masks)
            ctx, weights = self.attention(y, st["memory"], st["mask"], st["keys"])
            out = torch.tanh(self.combine(torch.cat([y, ctx], -1)))
            st["feed"] = out
        else:
            y, rnn = self.decoder.step(emb, rnn, masks)
            out = y
        st["rnn"] = rnn
        logits = self.output(self.drop(out))
        if self.copy_gate is not None:
            logits = self._copy(logits, out, ctx, weights, st)
        return logits, st, weights

    @staticmethod
    def _reorder(st: dict[str, Any], idx: Tensor) -> dict[str, Any]:
        return {k: reorder_state(v, idx, dim=1 if k == "rnn" else 0) for k, v in st.items()}

    # -- training -----------------------------------------------------------------------------------------
    def forward(
        self, src: Tensor, tgt_in: Tensor, src_lengths: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Decoder inputs ``tgt_in`` (B, T) (``[bos] + tgt[:-1]``) -> ``(logits (B, T, V), attention (B, T, S))``.

        In training mode with ``teacher_forcing < 1``, some steps feed the model's own previous prediction
        instead of ``tgt_in`` (scheduled sampling).
        """
        tgt_in = check_tokens(tgt_in, self.config.tgt_vocab_size, "tgt")
        st = self.encode(src, src_lengths)
        if tgt_in.shape[0] != st["memory"].shape[0]:
            raise RnnkitError(f"src has {st['memory'].shape[0]} sequences but tgt has {tgt_in.shape[0]}")
        ratio = self.teacher_forcing if self.training else 1.0
        # the decoder's recurrent-dropout / zoneout masks last the whole target sequence (variational)
        B, T = tgt_in.shape
        masks = self.decoder.sample_masks(B, T) if self.training and self.decoder is not None else None
        logits, attn = [], []
        prev = tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            if t > 0:
                prev = tgt_in[:, t]
                if ratio < 1.0:
                    own = logits[-1].detach().argmax(-1)
                    use_truth = torch.rand(prev.shape[0], device=prev.device) < ratio
                    prev = torch.where(use_truth, prev, own)
            lg, st, w = self._step(prev, st, None if masks is None else masks.at(t))
            logits.append(lg)
            if w is not None:
                attn.append(w)
        return torch.stack(logits, 1), (torch.stack(attn, 1) if attn else None)

    def loss(self, batch: Any, state: Any = None) -> LossOutput:
        b = as_batch(batch, self.batch_keys)
        tgt = check_tokens(require(b, "tgt"), self.config.tgt_vocab_size, "tgt")
        B, T = tgt.shape
        tgt_lengths = check_lengths(b.get("tgt_lengths"), B, T, name="tgt_lengths")
        bos = torch.full((B, 1), self.config.bos_id, dtype=torch.long, device=tgt.device)
        logits, _ = self(require(b, "src"), torch.cat([bos, tgt[:, :-1]], 1), b.get("src_lengths"))
        mask = step_mask(tgt_lengths, B, T, logits.device)
        loss = F.cross_entropy(logits[mask], tgt[mask])
        pred = logits.argmax(-1)
        correct = float((pred[mask] == tgt[mask]).sum())
        return LossOutput(loss, int(mask.sum()), None, {"accuracy": correct})

    # -- decoding -----------------------------------------------------------------------------------------
    def generate(
        self,
        src: Tensor,
        src_lengths: Tensor | None = None,
        config: DecodingConfig | None = None,
        **kwargs,
    ) -> DecodeResult:
        """Greedy or beam-search translations; ``result.extras`` holds the attention weights (B, L, S)."""
        config = make_decoding(config, kwargs)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                st = self.encode(src, src_lengths)
                B = st["memory"].shape[0]
                first = torch.full((B,), self.config.bos_id, dtype=torch.long, device=st["memory"].device)

                def step_fn(prev, s):
                    lg, s, w = self._step(prev, s)
                    return lg.log_softmax(-1), s, w

                return decode(
                    step_fn, st, first, self.config.eos_id, config, self._reorder, self.config.pad_id
                )
        finally:
            self.train(was_training)
