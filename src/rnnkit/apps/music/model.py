"""The tune model, built from :mod:`rnnkit.models`: vocabulary, batches of whole tunes, per-token scores and
sampling with temperature / top-k / top-p and, optionally, the bar grammar (:mod:`.grammar`).

Conditioning on meter and key is by prefix: every tune is ``<bos> M:.. K:.. body <eos>``, so generation that
starts from ``<bos> M:6/8 K:Cmix`` continues a tune in 6/8 and C mixolydian.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import app_encoder
from rnnkit.apps.music.config import GenerateMusicConfig, MusicConfig
from rnnkit.apps.music.grammar import BarGrammar, BarState
from rnnkit.datasets import Vocabulary

__all__ = ["build_model", "build_vocab", "encode_tune", "sample_tunes", "tune_batches", "tune_nats"]


def build_vocab(train_tunes: list[dict]) -> Vocabulary:
    """A word-level :class:`~rnnkit.datasets.Vocabulary` (with ``<bos>``/``<eos>``) of the training tokens."""
    from collections import Counter

    counts = Counter(tok for t in train_tunes for tok in t["tokens"])
    ranked = sorted(counts, key=lambda t: (-counts[t], t))
    return Vocabulary(ranked, level="word", bos_eos=True)


def encode_tune(tokens: list[str], vocab: Vocabulary) -> list[int]:
    """``<bos> tokens <eos>`` as ids (unknown tokens -> ``<unk>``)."""
    return [vocab.bos_id, *(vocab.token_to_id(t) for t in tokens), vocab.eos_id]


def build_model(cfg: MusicConfig, vocab_size: int, bos_id: int, eos_id: int):
    from rnnkit.models import LanguageModel, LanguageModelConfig

    encoder = app_encoder(cfg)
    return LanguageModel(
        LanguageModelConfig(
            vocab_size=vocab_size,
            embedding_dim=cfg.embedding_dim,
            encoder=encoder,
            dropout=cfg.dropout,
            bos_id=bos_id,
            eos_id=eos_id,
        )
    )


def tune_batches(
    encoded: list[list[int]], batch_size: int, generator: torch.Generator | None = None
) -> list[dict]:
    """Batches ``{"inputs", "targets", "lengths"}`` of whole tunes, padded with 0.

    With a generator the tunes are shuffled, then grouped by length within windows of 50 batches (less
    padding), and the batches shuffled again; without one the order is kept (evaluation).
    """
    n = len(encoded)
    if generator is not None:
        order = torch.randperm(n, generator=generator).tolist()
        window = batch_size * 50
        order = [
            i
            for a in range(0, n, window)
            for i in sorted(order[a : a + window], key=lambda k: len(encoded[k]))
        ]
    else:
        order = list(range(n))
    batches = []
    for a in range(0, n, batch_size):
        rows = [encoded[i] for i in order[a : a + batch_size]]
        T = max(len(r) for r in rows) - 1
        x = torch.zeros(len(rows), T, dtype=torch.long)
        y = torch.zeros(len(rows), T, dtype=torch.long)
        for b, r in enumerate(rows):
            x[b, : len(r) - 1] = torch.tensor(r[:-1])
            y[b, : len(r) - 1] = torch.tensor(r[1:])
        batches.append({"inputs": x, "targets": y, "lengths": torch.tensor([len(r) - 1 for r in rows])})
    if generator is not None:
        perm = torch.randperm(len(batches), generator=generator).tolist()
        batches = [batches[i] for i in perm]
    return batches


@torch.no_grad()
def tune_nats(model, encoded: list[list[int]], batch_size: int = 64) -> np.ndarray:
    """Negative log-likelihood (nats) of every token after ``<bos>`` of every tune, in tune order."""
    model.eval()
    out = []
    for b in tune_batches(encoded, batch_size):
        logits, _ = model(b["inputs"], None, b["lengths"])
        nll = F.cross_entropy(logits.transpose(1, 2), b["targets"], reduction="none")  # (B, T)
        for row, n in zip(nll, b["lengths"].tolist()):
            out.append(row[:n])
    return torch.cat(out).double().numpy()


@torch.no_grad()
def sample_tunes(
    model,
    vocab: Vocabulary,
    prefixes: list[list[str]],
    gen: GenerateMusicConfig,
    seed_offset: int = 0,
    key: str = "",
) -> list[list[str]]:
    """Token lists (header + body, no specials) continuing each prefix (``[]``, ``["M:6/8"]`` or
    ``["M:6/8", "K:Cmaj"]``; a missing meter or key is drawn from the model, except that ``key`` (a token such
    as ``"K:Cdor"``) is the key of a tune whose meter is drawn).

    Tokens are drawn with ``gen.temperature``, ``gen.top_k`` and ``gen.top_p``; with ``gen.constrained``
    the bar grammar masks tokens that would overfill a bar before the top-k/top-p cut. A tune that reaches
    ``gen.max_length`` tokens without ``<eos>`` is returned as it stands (and is not a valid tune).
    """
    from rnnkit.models.decoding import filter_logits

    model.eval()
    tokens = vocab.tokens
    meters = torch.tensor([t.startswith("M:") for t in tokens])
    keys = torch.tensor([t.startswith("K:") for t in tokens])
    special = torch.zeros(len(tokens), dtype=torch.bool)
    special[[vocab.pad_id, vocab.unk_id, vocab.bos_id]] = True
    grammar = BarGrammar(tokens, vocab.EOS)
    g = torch.Generator().manual_seed(gen.seed * 7919 + seed_offset)
    B = len(prefixes)
    seqs: list[list[str]] = [list(p) for p in prefixes]
    states: list[BarState | None] = [None] * B
    done = [False] * B
    ids = torch.full((B,), vocab.bos_id, dtype=torch.long)
    state = None
    log_probs, state = model.step(ids, state)
    # feed the given prefixes (they may differ in length: step each row's own tokens, hold the others)
    width = max((len(p) for p in prefixes), default=0)
    for t in range(width):
        nxt = torch.tensor([vocab.token_to_id(p[t]) if t < len(p) else vocab.pad_id for p in prefixes])
        new_lp, new_state = model.step(nxt, state)
        keep = torch.tensor([t < len(p) for p in prefixes])
        log_probs = torch.where(keep[:, None], new_lp, log_probs)
        state = _where_state(keep, new_state, state)
    for _ in range(gen.max_length):
        mask = torch.zeros(B, len(tokens), dtype=torch.bool)
        for b in range(B):
            if done[b]:
                mask[b, vocab.pad_id] = True
                continue
            n = len(seqs[b])
            if n == 0:
                mask[b] = meters
            elif n == 1:
                mask[b] = keys if not key else torch.tensor([t == key for t in tokens])
            elif gen.constrained:
                if states[b] is None:
                    states[b] = BarState(seqs[b][0][2:])
                mask[b] = grammar.allowed(states[b])
            else:
                mask[b] = ~(special | meters | keys)
            if not mask[b].any():  # cannot happen with the grammar's rules; end the tune rather than loop
                mask[b, vocab.eos_id] = True
        logits = log_probs.masked_fill(~mask, float("-inf"))
        logits = filter_logits(logits, gen.temperature, gen.top_k, gen.top_p)
        nxt = torch.multinomial(logits.softmax(-1), 1, generator=g).squeeze(1)
        for b in range(B):
            if done[b]:
                continue
            i = int(nxt[b])
            st = states[b]
            if i == vocab.eos_id and st is not None and gen.constrained and not grammar.ends_well(st):
                st.closing = True  # the tune ends after this bar is full: draw one of its notes instead
                allowed = grammar.allowed(st)
                if allowed.any() and not allowed[vocab.eos_id]:
                    row = log_probs[b : b + 1].masked_fill(~allowed, float("-inf"))
                    row = filter_logits(row, gen.temperature, gen.top_k, gen.top_p)
                    i = int(torch.multinomial(row.softmax(-1), 1, generator=g))
                    nxt[b] = i
            if i == vocab.eos_id:
                done[b] = True
                continue
            tok = tokens[i]
            seqs[b].append(tok)
            if states[b] is not None:
                states[b].update(tok)
        if all(done):
            break
        log_probs, state = model.step(nxt, state)
    return seqs


def _where_state(keep: torch.Tensor, new, old):
    if isinstance(new, torch.Tensor):
        shape = [1] * new.dim()
        shape[1] = -1  # states are (layers, B, H)
        return torch.where(keep.view(shape), new, old)
    return type(new)(_where_state(keep, n, o) for n, o in zip(new, old))


def bits(nats: np.ndarray) -> float:
    return float(nats.mean() / math.log(2))


def check_prefix(vocab: Vocabulary, meter: str, key_token: str) -> None:
    """One clear error when the model never saw the meter or the mode asked for."""
    have_m = sorted(t[2:] for t in vocab.tokens if t.startswith("M:"))
    if meter and f"M:{meter}" not in vocab:
        raise RnnkitError(f"unknown meter: expected one of {have_m}, got {meter!r}")
    have_k = sorted(t[3:] for t in vocab.tokens if t.startswith("K:"))
    if key_token and key_token not in vocab:
        raise RnnkitError(f"unknown mode for --key: the model knows {have_k}, got {key_token[3:]!r}")
