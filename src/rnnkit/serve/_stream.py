"""Text generation one token at a time, for the server's event stream.

:meth:`rnnkit.apps.textgen.TextGenerator.stream` is used when the loaded generator has it; otherwise
:func:`stream_tokens` steps the language model here. It draws exactly the tokens that
:func:`rnnkit.apps.textgen.model.generate` draws for the same settings (the same prompt handling, the same
per-sample seed ``seed * 7919``, the same sampling call per step), so the streamed pieces join to the text of
the non-streamed request.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import torch

from rnnkit._errors import RnnkitError
from rnnkit.models.decoding import sample_tokens


class GenerationTimeout(RnnkitError):
    """A stream ran past its deadline (the server ends it with an error event)."""


def stream_tokens(
    generator, prompt: str, gen, deadline: float | None = None, sample: int = 0
) -> Iterator[str]:
    """Yield the text of each sampled token of sample ``sample`` of ``generator.generate(prompt, gen)``.

    ``deadline`` (a :func:`time.monotonic` value) stops the loop between two steps with
    :class:`GenerationTimeout`.
    """
    model, vocab = generator.model, generator.vocab
    ids = vocab.encode(prompt) if prompt else []
    if not ids:
        ids = vocab.encode("\n") or [vocab.unk_id]
    g = torch.Generator().manual_seed(gen.seed * 7919 + sample)
    eos = model.config.eos_id
    word_level = vocab.level == "word"
    model.eval()
    with torch.no_grad():
        prompt_ids = torch.tensor([ids])  # (1, T)
        state = model.encoder.start_state(1, model.embedding.weight)
        if len(ids) > 1:  # every prompt token but the last sets the state, as LanguageModel.generate does
            lengths = torch.tensor([len(ids)])
            _, state = model.encoder(model.embedding(prompt_ids[:, :-1]), state, lengths - 1)
        prev = prompt_ids[:, -1]  # (1,)
        out: list[int] = []
        shown = ""  # word level: the decoded text already yielded
        lead = " " if word_level and prompt.strip() else ""
        for _ in range(gen.length):
            if deadline is not None and time.monotonic() > deadline:
                raise GenerationTimeout("generation stopped: it ran past the request time limit")
            log_probs, state = model.step(prev, state)  # (1, V)
            if gen.temperature == 0:
                nxt = log_probs.argmax(-1)
            else:
                nxt = sample_tokens(log_probs, gen.temperature, gen.top_k, gen.top_p, g)
            token = int(nxt[0])
            if eos is not None and token == eos:
                return
            prev = nxt
            if not word_level:
                yield vocab.decode([token])
                continue
            out.append(token)
            text = vocab.decode(out)
            if text.startswith(shown) and len(text) > len(shown):
                piece, shown = text[len(shown) :], text
                yield lead + piece if lead else piece
                lead = ""
