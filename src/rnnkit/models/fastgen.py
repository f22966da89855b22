"""Fast sampling from a :class:`~rnnkit.models.LanguageModel`: a compiled step-and-sample loop.

:meth:`LanguageModel.generate` runs every step through Python and some forty torch calls (embedding,
input projection, recurrent product, gates, output layer, log-softmax, the filters of
:func:`~rnnkit.models.decoding.sample_tokens`, ``torch.multinomial``, the decoding loop's bookkeeping): at
the demo's size (character LSTM-256, ~90 tokens) that is 260-380 µs a step, almost all of it overhead
around ~0.3 M multiply-adds (``docs/benchmarks.md`` has the breakdown). Here
the whole loop runs in C++ (``rnnkit/fused/csrc/fastgen.cpp``, built with the fused engine):

* the embedding followed by layer 0's input projection is one table, ``T[v] = W_ih e_v + b_ih`` (V, G·H),
  so a step of layer 0 is a row lookup plus the recurrent product ``W_hh h``;
* the output layer (with a tied embedding's projection folded in: ``W_out (W_p h + b_p) + b_out``) gives
  the logits, and the next token is chosen in the same loop.

Sampling is :func:`~rnnkit.models.decoding.sample_tokens`'s: ``temperature`` (0 = greedy), ``top_k``,
``top_p``. ``torch.multinomial`` draws one sample from probabilities ``p`` as ``argmax p / q`` with
``q ~ Exp(1)`` drawn from the generator per token; the loop draws the same ``q`` from the same generator,
so a seeded generator gives the Python path's tokens (up to float rounding of the probabilities, which
changes a choice only when two candidates tie to ~1e-6; the tests hold the two to the same sequences).

Covered: a :class:`LanguageModel` in float32 on CPU whose encoder is unidirectional, without zoneout, of
plain LSTM cells (no projection, peepholes, layer norm or cell clipping), GRU cells with ``reset_after``
(no layer norm) or RNN cells with ``tanh``/``relu``, any number of layers, tied or untied output (a full
softmax, not the adaptive one), and no ``eos_id``. Dropout does not apply (generation runs in eval mode).
Anything else, CUDA tensors included, and a machine where the engine cannot be built, uses the Python path: :func:`fast_support` says which and
why, and ``backend="fast"`` on an unsupported model is an error.

Two entry points:

* :class:`FastGenerator` — one stream: ``generate`` a whole continuation in one call, or ``tokens`` one at
  a time (for streaming to a client);
* :class:`StreamBatch` — many concurrent streams advanced together: streams join (each with its own prompt
  state, sampling settings and generator) and leave at any time, and one :meth:`StreamBatch.step` call
  gives every stream its next token, with the weights read once per step for all of them.

The slow twin of both is :func:`python_tokens` (the model's own ``step`` and ``sample_tokens``), which in
turn equals :meth:`LanguageModel.generate`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from rnnkit._errors import RnnkitError
from rnnkit.models.decoding import DecodingConfig, sample_tokens

__all__ = ["FastGenerator", "StreamBatch", "fast_support", "prompt_state", "python_tokens"]

BACKENDS = ("auto", "fast", "python")
_CELL_CODES = {"lstm": 0, "gru": 1, "rnn_tanh": 2, "rnn_relu": 3}
_CHUNK = 16  # tokens per compiled call when tokens are handed out one at a time


def _check_sampling(temperature: float, top_k: int, top_p: float) -> None:
    DecodingConfig(strategy="sample", temperature=temperature, top_k=top_k, top_p=top_p).validate()


def _cell_kind(layer) -> tuple[str | None, str]:
    from rnnkit.cells import GRUCell, LSTMCell, RNNCell

    cell = layer.cell
    if isinstance(cell, LSTMCell):
        extras = [n for n in ("peephole", "layer_norm") if getattr(cell, n)]
        if cell.proj_size:
            extras.append("proj_size")
        if cell.cell_clip is not None:
            extras.append("cell_clip")
        if extras:
            return None, f"the fast loop has plain LSTM cells only, not {', '.join(extras)}"
        return "lstm", "LSTM"
    if isinstance(cell, GRUCell):
        if not cell.reset_after or cell.layer_norm:
            return None, "the fast loop has GRU cells with reset_after=True and no layer norm only"
        return "gru", "GRU"
    if isinstance(cell, RNNCell):
        if cell.activation not in ("tanh", "relu"):
            return None, f"the fast loop has RNN cells with tanh or relu only, not {cell.activation!r}"
        return f"rnn_{cell.activation}", f"RNN ({cell.activation})"
    return None, f"the fast loop has no {type(cell).__name__}"


def fast_support(model) -> tuple[bool, str]:
    """``(ok, reason)``: whether :class:`FastGenerator` can run ``model``, and why (not)."""
    from rnnkit.models.lm import LanguageModel

    if not isinstance(model, LanguageModel):
        return False, f"the fast loop runs a LanguageModel, got {type(model).__name__}"
    enc = model.encoder
    kind, what = _cell_kind(enc)
    if kind is None:
        return False, what
    if enc.bidirectional:
        return False, "the fast loop needs a unidirectional encoder"
    if enc.zoneout:
        return False, "the fast loop has no zoneout"
    if model.config.eos_id is not None:
        return False, "the fast loop runs to the full length and does not stop at eos_id"
    if getattr(model.config, "softmax", "full") != "full":
        return False, "the fast loop has a full softmax output only, not the adaptive softmax"
    params = list(model.parameters())
    if any(p.device.type != "cpu" for p in params):
        return False, f"the fast loop runs on CPU; the model is on {params[0].device}"
    if any(p.dtype != torch.float32 for p in params):
        return False, "the fast loop computes in float32; the model has other parameters"
    from rnnkit import fused

    ok, reason = fused.load()
    if not ok:
        return False, reason
    if not hasattr(torch.ops.rnnkit_fused, "fastgen_run"):
        return False, "the compiled engine has no fastgen_run (an old build)"
    layers = f"{enc.num_layers} layers" if enc.num_layers > 1 else "1 layer"
    return True, f"compiled step-and-sample loop ({what}, {layers})"


def prompt_state(model, ids: Sequence[int]) -> tuple[Any, int]:
    """The state after all but the last prompt token, and that last token (the first decoding input).

    As :meth:`LanguageModel.generate` does for one prompt of ``len(ids) >= 1`` tokens.
    """
    if len(ids) < 1:
        raise RnnkitError("expected a prompt of at least one token, got none")
    V = model.config.vocab_size
    bad = [i for i in ids if not 0 <= int(i) < V]
    if bad:
        raise RnnkitError(f"prompt token ids must lie in [0, {V}), got {bad[0]}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            state = model.encoder.start_state(1, model.embedding.weight)
            if len(ids) > 1:
                x = model.embedding(torch.tensor([list(ids[:-1])]))  # (1, T-1, E)
                _, state = model.encoder(x, state, torch.tensor([len(ids) - 1]))
    finally:
        model.train(was_training)
    return state, int(ids[-1])


@torch.no_grad()
def python_tokens(
    model,
    ids: Sequence[int],
    length: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> Iterator[int]:
    """The slow twin: ``length`` tokens after ``ids`` through ``model.step`` and ``sample_tokens``, one by one.

    The same loop as :func:`~rnnkit.models.decoding.greedy_search` for one sequence (stopping at the
    model's ``eos_id``, which is not yielded), so it yields :meth:`LanguageModel.generate`'s tokens.
    """
    _check_sampling(temperature, top_k, top_p)
    state, first = prompt_state(model, ids)
    prev = torch.tensor([first])
    eos = model.config.eos_id
    was_training = model.training
    model.eval()
    try:
        for _ in range(length):
            log_probs, state = model.step(prev, state)  # (1, V)
            if temperature == 0:
                nxt = log_probs.argmax(-1)
            else:
                nxt = sample_tokens(log_probs, temperature, top_k, top_p, generator)
            token = int(nxt[0])
            if eos is not None and token == eos:
                return
            yield token
            prev = nxt
    finally:
        model.train(was_training)


_PANEL = 64  # columns per panel of a packed weight (fastgen.cpp's kPW)


def _pad(b: Tensor) -> Tensor:
    """A bias (N,) zero-padded to a multiple of the panel width."""
    n = -(-b.numel() // _PANEL) * _PANEL
    return torch.cat([b.detach().float(), b.new_zeros(n - b.numel())]).contiguous()


def _pack(wt: Tensor) -> Tensor:
    """A (K, N) matrix as panels of 64 columns, (ceil(N / 64), K, 64), zero-padded: read front to back."""
    K, N = wt.shape
    P = -(-N // _PANEL)
    out = wt.new_zeros(K, P * _PANEL)
    out[:, :N] = wt
    return out.view(K, P, _PANEL).transpose(0, 1).contiguous()


class _Weights:
    """The model's weights laid out for the compiled loop (see ``fastgen.cpp``), float32 and contiguous."""

    def __init__(self, model):
        enc = model.encoder
        self.kind = _cell_kind(enc)[0]
        self.params = list(model.parameters())
        self.versions = self._versions()
        with torch.no_grad():
            cells = list(enc.cells)
            zeros = torch.zeros(cells[0].weight_hh.shape[0])
            c0 = cells[0]
            # layer 0's input projection of every token, computed as the layer computes it
            self.table = c0.project_input(model.embedding.weight).contiguous()  # (V, G*H)
            self.w_ih_t = [torch.empty(0)] + [_pack(c.weight_ih.t()) for c in cells[1:]]  # (G*H/64, H, 64)
            self.b_ih = [torch.empty(0)] + [
                _pad(zeros if c.bias_ih is None else c.bias_ih) for c in cells[1:]
            ]
            self.w_hh_t = [_pack(c.weight_hh.t()) for c in cells]
            self.b_hh = [_pad(zeros if c.bias_hh is None else c.bias_hh) for c in cells]
            w_out, b_out = model.output.weight, model.output.bias
            if model.proj is not None:
                # W_out (W_p h + b_p) + b_out: fold the projection in, in float64 to keep the rounding small
                wp, bp = model.proj.weight.double(), model.proj.bias.double()
                b_out = (w_out.double() @ bp + b_out.double()).float()
                w_out = (w_out.double() @ wp).float()
            self.w_out_t = _pack(w_out.t())  # (V/64, H, 64)
            self.b_out = _pad(b_out)
        self.hidden_size = enc.hidden_size
        self.num_layers = enc.num_layers
        self.vocab_size = self.table.shape[0]

    def _versions(self) -> tuple[int, ...]:
        return tuple(p._version for p in self.params)

    def stale(self) -> bool:
        """Whether a parameter changed in place (an optimiser step) since the layout was made."""
        return self._versions() != self.versions

    def run(
        self,
        h: Tensor,
        c: Tensor | None,
        prev: Tensor,
        temperature: Tensor,
        top_k: Tensor,
        top_p: Tensor,
        generators: list[torch.Generator | None],
        steps: int,
    ) -> Tensor:
        """``steps`` tokens for each of the B streams (B, steps); ``h``, ``c`` and ``prev`` advance in place."""
        return torch.ops.rnnkit_fused.fastgen_run(
            self.table, self.w_ih_t, self.b_ih, self.w_hh_t, self.b_hh, self.w_out_t, self.b_out,
            _CELL_CODES[self.kind], h, c, prev, temperature, top_k, top_p, generators, steps,
        )  # fmt: skip


def _split_state(kind: str, state: Any) -> tuple[Tensor, Tensor | None]:
    """The encoder's state (L, B, H) (or ``(h, c)``) as contiguous float32 copies the loop may update."""
    if kind == "lstm":
        h, c = state
        return h.detach().float().contiguous().clone(), c.detach().float().contiguous().clone()
    return state.detach().float().contiguous().clone(), None


class FastGenerator:
    """One stream of tokens from a :class:`LanguageModel`, sampled by the compiled loop.

    Per step, for an LSTM (torch's gate order; ``T`` the table of layer 0's input projections)::

        a = T[x_t] + W_hh h + b_hh;   c' = σ(a_f) c + σ(a_i) tanh(a_g);   h' = σ(a_o) tanh(c')
        logits = W_out h' + b_out;   x_{t+1} ~ softmax(filter(logits) / temperature)

    Args:
        model: the language model (its weights are read when this is made, and again whenever a
            parameter has changed in place since).

    Raises :class:`~rnnkit.RnnkitError` with the reason when :func:`fast_support` rejects the model.

    Shape: ``ids`` a list of token ids (the prompt, at least one); returns a list of ``length`` ids.

    Example::

        >>> lm = LanguageModel(LanguageModelConfig(vocab_size=60, embedding_dim=16,
        ...                    encoder=EncoderConfig("lstm", 32)))
        >>> fast = FastGenerator(lm)
        >>> g = torch.Generator().manual_seed(0)
        >>> out = fast.generate([5, 7, 9], 20, temperature=0.8, top_p=0.9, generator=g)
        >>> g = torch.Generator().manual_seed(0)
        >>> out == lm.generate(torch.tensor([[5, 7, 9]]), strategy="sample", max_length=20,
        ...                    temperature=0.8, top_p=0.9, generator=g).to_lists()[0]
        True
    """

    def __init__(self, model):
        ok, reason = fast_support(model)
        if not ok:
            raise RnnkitError(f"fast generation does not cover this model: {reason}")
        self.model = model
        self.reason = reason
        self._w = _Weights(model)

    def _weights(self) -> _Weights:
        if self._w.stale():
            self._w = _Weights(self.model)
        return self._w

    def tokens(
        self,
        ids: Sequence[int],
        length: int,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
        chunk: int = _CHUNK,
    ) -> Iterator[int]:
        """Yield ``length`` tokens after ``ids`` one at a time (computed ``chunk`` at a time)."""
        _check_sampling(temperature, top_k, top_p)
        w = self._weights()
        state, first = prompt_state(self.model, ids)
        h, c = _split_state(w.kind, state)
        prev = torch.tensor([first])
        settings = (
            torch.tensor([float(temperature)]),
            torch.tensor([int(top_k)]),
            torch.tensor([float(top_p)]),
        )
        done = 0
        while done < length:
            n = min(chunk, length - done)
            out = w.run(h, c, prev, *settings, [generator], n)  # (1, n)
            done += n
            yield from out[0].tolist()

    def generate(
        self,
        ids: Sequence[int],
        length: int,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> list[int]:
        """``length`` tokens after ``ids``, in one compiled call."""
        return list(self.tokens(ids, length, temperature, top_k, top_p, generator, chunk=max(1, length)))


class StreamBatch:
    """Concurrent streams of one :class:`LanguageModel`, advanced together one token per :meth:`step`.

    Each stream has its own prompt state, sampling settings and generator (its draws come from its own
    generator in its own order, so a stream's tokens do not depend on which other streams share its
    steps: they equal :meth:`FastGenerator.generate`'s with the same seed). One step runs the recurrent
    layers and the output layer for all streams as one batch, so the cost of reading the weights is
    shared and the aggregate throughput grows with the number of streams.

    Args:
        model: the language model (as for :class:`FastGenerator`).

    Shape: ``step()`` returns ``{stream id: next token id}`` for every stream in the batch.

    Example::

        >>> batch = StreamBatch(lm)
        >>> a = batch.add([5, 7, 9], temperature=0.8, generator=torch.Generator().manual_seed(1))
        >>> b = batch.add([3], temperature=0)            # greedy
        >>> first = batch.step()                          # {a: ..., b: ...}
        >>> batch.remove(b)
        >>> second = batch.step()                         # {a: ...}
    """

    def __init__(self, model):
        self.fast = FastGenerator(model)
        self._ids: list[int] = []
        self._gens: list[torch.Generator | None] = []
        self._next_id = 0
        w = self.fast._w
        L, H = w.num_layers, w.hidden_size
        self._h = torch.zeros(L, 0, H)
        self._c = torch.zeros(L, 0, H) if w.kind == "lstm" else None
        self._prev = torch.zeros(0, dtype=torch.long)
        self._temp = torch.zeros(0, dtype=torch.float64)
        self._top_k = torch.zeros(0, dtype=torch.long)
        self._top_p = torch.zeros(0, dtype=torch.float64)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def streams(self) -> list[int]:
        """The ids of the streams in the batch, in the order they joined."""
        return list(self._ids)

    def add(
        self,
        ids: Sequence[int],
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> int:
        """A new stream continuing ``ids`` (its prompt is read now); returns its id."""
        _check_sampling(temperature, top_k, top_p)
        w = self.fast._weights()
        state, first = prompt_state(self.fast.model, ids)
        h, c = _split_state(w.kind, state)
        self._h = torch.cat([self._h, h], 1).contiguous()
        if self._c is not None:
            self._c = torch.cat([self._c, c], 1).contiguous()
        self._prev = torch.cat([self._prev, torch.tensor([first])])
        self._temp = torch.cat([self._temp, torch.tensor([float(temperature)], dtype=torch.float64)])
        self._top_k = torch.cat([self._top_k, torch.tensor([int(top_k)])])
        self._top_p = torch.cat([self._top_p, torch.tensor([float(top_p)], dtype=torch.float64)])
        sid = self._next_id
        self._next_id += 1
        self._ids.append(sid)
        self._gens.append(generator)
        return sid

    def remove(self, stream: int) -> None:
        """Take stream ``stream`` out of the batch (its state is dropped)."""
        if stream not in self._ids:
            raise RnnkitError(f"expected the id of a stream in the batch {self._ids}, got {stream!r}")
        i = self._ids.index(stream)
        keep = torch.tensor([j for j in range(len(self._ids)) if j != i], dtype=torch.long)
        self._h = self._h.index_select(1, keep).contiguous()
        if self._c is not None:
            self._c = self._c.index_select(1, keep).contiguous()
        for name in ("_prev", "_temp", "_top_k", "_top_p"):
            setattr(self, name, getattr(self, name).index_select(0, keep))
        del self._ids[i]
        del self._gens[i]

    def step(self) -> dict[int, int]:
        """Advance every stream by one token; ``{stream id: token}``."""
        return {sid: tokens[0] for sid, tokens in self.advance(1).items()}

    def advance(self, steps: int) -> dict[int, list[int]]:
        """Advance every stream by ``steps`` tokens in one compiled call (the same tokens as ``steps``
        calls of :meth:`step`); ``{stream id: [token, ...]}``."""
        if not self._ids:
            return {}
        w = self.fast._weights()
        out = w.run(self._h, self._c, self._prev, self._temp, self._top_k, self._top_p, self._gens, steps)
        return dict(zip(self._ids, out.tolist()))
