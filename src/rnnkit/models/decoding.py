"""Decoding strategies shared by every autoregressive model: greedy, sampling, beam search.

A model exposes one decoding step and the decoders here do the rest::

    step_fn(prev_tokens (N,), state) -> (log_probs (N, V), new_state, extra (N, ...) or None)
    reorder_fn(state, index (N',)) -> state whose rows are ``state``'s rows at ``index``

``extra`` is anything a model wants recorded per step (``Seq2Seq``'s attention weights); it is reordered
with the beams. ``N`` is the batch size, or batch * beam for beam search.

Strategies (:class:`DecodingConfig`):

* ``greedy`` — the most probable token at every step;
* ``sample`` — sampling from ``softmax(logits / temperature)`` restricted by top-k (the ``k`` most probable
  tokens) and top-p / nucleus sampling (the smallest set whose probability reaches ``p``, Holtzman et al.
  2020); ``temperature=0`` is greedy;
* ``beam`` — beam search with length normalisation: hypotheses are ranked by
  ``sum log p / length ** length_penalty`` (``length_penalty=0`` ranks by the raw sum). A beam stops when it
  emits the end token; a batch row stops once it has ``beam_size`` finished hypotheses and the best live
  beam, ranked at its present length, does not beat the worst of them (a live beam's score only falls, so
  with ``length_penalty=0`` this is exact; with length normalisation a longer beam could still rank higher,
  and the rule is the usual heuristic, e.g. Hugging Face's default); at ``max_length`` unfinished beams compete
  as they are. With ``beam_size=1`` it equals greedy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from rnnkit._errors import RnnkitError

__all__ = [
    "DecodingConfig",
    "DecodeResult",
    "filter_logits",
    "sample_tokens",
    "decode",
    "greedy_search",
    "beam_search",
    "reorder_state",
    "make_decoding",
]

STRATEGIES = ("greedy", "sample", "beam")

StepFn = Callable[[Tensor, Any], tuple[Tensor, Any, Tensor | None]]
ReorderFn = Callable[[Any, Tensor], Any]


@dataclass
class DecodingConfig:
    """How to turn a model's next-token distribution into a sequence."""

    strategy: str = "greedy"  # greedy | sample | beam
    max_length: int = 50  # tokens to generate at most (the end token included)
    temperature: float = 1.0  # sampling: divide logits by this; 0 = greedy
    top_k: int = 0  # sampling: keep the k most probable tokens; 0 = all
    top_p: float = 1.0  # sampling: keep the smallest set with probability >= p; 1 = all
    beam_size: int = 4  # beam: hypotheses kept per batch row
    length_penalty: float = 1.0  # beam: rank by sum log p / length**length_penalty; 0 = raw sum
    min_length: int = 0  # the end token is forbidden before this many tokens

    def validate(self) -> DecodingConfig:
        if self.strategy not in STRATEGIES:
            raise RnnkitError(
                f"unknown decoding strategy: expected one of {STRATEGIES}, got {self.strategy!r}"
            )
        if not isinstance(self.max_length, int) or self.max_length < 1:
            raise RnnkitError(f"max_length must be a positive int, got {self.max_length!r}")
        if self.temperature < 0:
            raise RnnkitError(f"temperature must be >= 0, got {self.temperature}")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise RnnkitError(f"top_k must be an int >= 0, got {self.top_k!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise RnnkitError(f"top_p must be in (0, 1], got {self.top_p}")
        if not isinstance(self.beam_size, int) or self.beam_size < 1:
            raise RnnkitError(f"beam_size must be a positive int, got {self.beam_size!r}")
        if self.min_length < 0 or self.min_length > self.max_length:
            raise RnnkitError(f"min_length must be in [0, max_length], got {self.min_length}")
        return self


@dataclass
class DecodeResult:
    """Generated sequences, end token excluded.

    ``tokens`` (B, L) padded with ``pad_id``; ``lengths`` (B,); ``scores`` (B,) the summed log-probability
    (beam: the normalised score it was ranked by); ``finished`` (B,) whether the end token was produced;
    ``extras`` (B, L, ...) the stacked per-step extras (e.g. attention weights) or None.
    ``hypotheses`` (beam search only): per row, up to ``beam_size`` ``(tokens, score)`` pairs, best first
    (the n-best list; the first is the row of ``tokens``).
    """

    tokens: Tensor
    lengths: Tensor
    scores: Tensor
    finished: Tensor
    extras: Tensor | None = None
    hypotheses: list[list[tuple[list[int], float]]] | None = None

    def to_lists(self) -> list[list[int]]:
        return [self.tokens[i, : int(n)].tolist() for i, n in enumerate(self.lengths)]


def make_decoding(config: DecodingConfig | dict | None, kwargs: dict[str, Any]) -> DecodingConfig:
    """A validated :class:`DecodingConfig` from a config, a dict, or keyword arguments (not both)."""
    if config is not None and kwargs:
        raise RnnkitError("pass a DecodingConfig or keyword arguments, not both")
    if isinstance(config, DecodingConfig):
        return config.validate()
    from rnnkit.models._base import config_from_dict

    return config_from_dict(DecodingConfig, config if config is not None else kwargs).validate()


def reorder_state(state: Any, index: Tensor, dim: int = 1) -> Any:
    """Rows ``index`` of every tensor in ``state`` (nested tuples/lists/dicts) along ``dim``."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.index_select(dim, index.to(state.device))
    if isinstance(state, dict):
        return {k: reorder_state(v, index, dim) for k, v in state.items()}
    return type(state)(reorder_state(s, index, dim) for s in state)


def filter_logits(logits: Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """Logits (N, V) scaled by ``1/temperature`` with tokens outside top-k / top-p set to ``-inf``."""
    if temperature != 1.0 and temperature > 0:
        # shift the best token to 0 first: every scaled logit is then <= 0, so even a temperature of 1e-40
        # gives -inf (never +inf or nan) for the others and the most probable tokens keep probability
        logits = logits - logits.max(dim=-1, keepdim=True).values.nan_to_num(0.0)
        logits = logits / temperature
    V = logits.shape[-1]
    if top_k and top_k < V:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # drop a token when the tokens before it already reach top_p (the most probable one always stays)
        drop_sorted = (probs.cumsum(-1) - probs) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_tokens(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One token per row of ``logits`` (N, V); ``temperature=0`` is the argmax."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = filter_logits(logits, temperature, top_k, top_p).softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _forbid_end(log_probs: Tensor, eos_id: int | None, step: int, min_length: int) -> Tensor:
    if eos_id is not None and step < min_length:
        log_probs = log_probs.clone()
        log_probs[:, eos_id] = float("-inf")
    return log_probs


def greedy_search(
    step_fn: StepFn,
    state: Any,
    first_tokens: Tensor,
    eos_id: int | None,
    config: DecodingConfig,
    pad_id: int = 0,
    generator: torch.Generator | None = None,
) -> DecodeResult:
    """Greedy (``strategy="greedy"``) or sampled (``"sample"``) decoding of a batch."""
    N = first_tokens.shape[0]
    device = first_tokens.device
    prev = first_tokens
    done = torch.zeros(N, dtype=torch.bool, device=device)
    lengths = torch.zeros(N, dtype=torch.long, device=device)
    scores = torch.zeros(N, device=device)
    tokens, extras = [], []
    for t in range(config.max_length):
        log_probs, state, extra = step_fn(prev, state)
        log_probs = _forbid_end(log_probs, eos_id, t, config.min_length)
        if config.strategy == "greedy" or config.temperature == 0:
            nxt = log_probs.argmax(-1)
        else:
            nxt = sample_tokens(log_probs, config.temperature, config.top_k, config.top_p, generator)
        lp = log_probs.gather(1, nxt.unsqueeze(1)).squeeze(1)
        scores = scores + torch.where(done, torch.zeros_like(lp), lp)
        is_end = (nxt == eos_id) if eos_id is not None else torch.zeros_like(done)
        lengths = lengths + (~done & ~is_end).long()
        tokens.append(torch.where(done | is_end, torch.full_like(nxt, pad_id), nxt))
        if extra is not None:
            extras.append(extra)
        done = done | is_end
        prev = nxt
        if bool(done.all()):
            break
    out = torch.stack(tokens, 1)
    L = max(int(lengths.max()), 0) if N else 0
    ex = torch.stack(extras, 1)[:, :L] if extras else None
    return DecodeResult(out[:, :L], lengths, scores, done, ex)


def beam_search(
    step_fn: StepFn,
    state: Any,
    first_tokens: Tensor,
    eos_id: int | None,
    config: DecodingConfig,
    reorder_fn: ReorderFn = reorder_state,
    pad_id: int = 0,
) -> DecodeResult:
    """Batched beam search with length normalisation (see the module docstring)."""
    B = first_tokens.shape[0]
    K = config.beam_size
    device = first_tokens.device
    alpha = config.length_penalty

    def norm(score: float, length: int) -> float:
        return score / (max(length, 1) ** alpha) if alpha else score

    expand = torch.arange(B, device=device).repeat_interleave(K)
    state = reorder_fn(state, expand)
    prev = first_tokens.index_select(0, expand)
    # only the first beam of each row is alive at the start, so the first step does not repeat it K times
    beam_scores = torch.full((B, K), float("-inf"), device=device)
    beam_scores[:, 0] = 0.0
    history = torch.zeros(B * K, 0, dtype=torch.long, device=device)
    extra_hist: Tensor | None = None
    # per batch row: (normalised score, raw score, tokens, extras, ended with the end token)
    finished: list[list[tuple[float, float, list[int], Tensor | None, bool]]] = [[] for _ in range(B)]
    done = [False] * B
    for t in range(config.max_length):
        log_probs, state, extra = step_fn(prev, state)
        log_probs = _forbid_end(log_probs.float(), eos_id, t, config.min_length)
        V = log_probs.shape[-1]
        if extra is not None:
            e = extra.unsqueeze(1)
            extra_hist = e if extra_hist is None else torch.cat([extra_hist, e], 1)
        cand = (beam_scores.view(-1, 1) + log_probs).view(B, K * V)
        top_scores, top_idx = cand.topk(min(2 * K, K * V), dim=-1)
        src_beams = torch.zeros(B, K, dtype=torch.long)
        next_tok = torch.full((B, K), pad_id, dtype=torch.long)
        next_scores = torch.full((B, K), float("-inf"))
        ts, ti = top_scores.cpu(), top_idx.cpu()
        for b in range(B):
            if done[b]:
                continue
            n_alive = 0
            for s, idx in zip(ts[b].tolist(), ti[b].tolist()):
                if s == float("-inf"):
                    break
                beam, tok = divmod(idx, V)
                row = b * K + beam
                if eos_id is not None and tok == eos_id:
                    ex = extra_hist[row] if extra_hist is not None else None
                    finished[b].append((norm(s, t + 1), s, history[row].tolist(), ex, True))
                else:
                    src_beams[b, n_alive] = beam
                    next_tok[b, n_alive] = tok
                    next_scores[b, n_alive] = s
                    n_alive += 1
                if n_alive == K:
                    break
            if len(finished[b]) >= K:
                # done unless the best live beam, ranked at its present length t + 1, beats the K-th best
                # finished hypothesis (its score can only fall as it grows)
                kth = sorted((h[0] for h in finished[b]), reverse=True)[K - 1]
                best_alive = float(next_scores[b, 0])  # the live beams were taken best first
                done[b] = n_alive == 0 or kth >= norm(best_alive, t + 1)
        if all(done):
            break
        rows = (torch.arange(B).unsqueeze(1) * K + src_beams).view(-1).to(device)
        state = reorder_fn(state, rows)
        history = torch.cat([history.index_select(0, rows), next_tok.view(-1, 1).to(device)], 1)
        if extra_hist is not None:
            extra_hist = extra_hist.index_select(0, rows)
        beam_scores = next_scores.to(device)
        prev = next_tok.view(-1).to(device)
    for b in range(B):
        if len(finished[b]) == 0 or not done[b]:
            # unfinished beams compete at max_length (their length excludes no end token)
            for k in range(K):
                s = float(beam_scores[b, k])
                if s > float("-inf"):
                    row = b * K + k
                    ex = extra_hist[row] if extra_hist is not None else None
                    finished[b].append((norm(s, history.shape[1]), s, history[row].tolist(), ex, False))
    best, nbest = [], []
    for b in range(B):
        hyps = sorted(finished[b], key=lambda h: -h[0])  # stable: the first found wins a tie
        best.append(hyps[0])
        nbest.append([(h[2], h[0]) for h in hyps[:K]])
    L = max(len(h[2]) for h in best)
    tokens = torch.full((B, L), pad_id, dtype=torch.long, device=device)
    for b, h in enumerate(best):
        if h[2]:
            tokens[b, : len(h[2])] = torch.tensor(h[2], device=device)
    lengths = torch.tensor([len(h[2]) for h in best], device=device)
    scores = torch.tensor([h[0] for h in best], device=device)
    fin = torch.tensor([h[4] for h in best], device=device)
    extras = None
    if extra_hist is not None:
        exs = [h[3] for h in best]
        shape = exs[0].shape[1:]
        extras = torch.zeros(B, L, *shape, device=device, dtype=exs[0].dtype)
        for b, ex in enumerate(exs):
            n = min(len(best[b][2]), ex.shape[0])
            extras[b, :n] = ex[:n]
    return DecodeResult(tokens, lengths, scores, fin, extras, nbest)


def decode(
    step_fn: StepFn,
    state: Any,
    first_tokens: Tensor,
    eos_id: int | None,
    config: DecodingConfig,
    reorder_fn: ReorderFn = reorder_state,
    pad_id: int = 0,
    generator: torch.Generator | None = None,
) -> DecodeResult:
    """Run ``config.strategy`` from ``first_tokens`` (N,) and ``state``; see the module docstring."""
    config.validate()
    with torch.no_grad():
        if config.strategy == "beam":
            return beam_search(step_fn, state, first_tokens, eos_id, config, reorder_fn, pad_id)
        return greedy_search(step_fn, state, first_tokens, eos_id, config, pad_id, generator)
