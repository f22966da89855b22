"""A saved language-model run, loaded: generation, scores of texts and of held-out text."""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import load_baseline_net
from rnnkit.apps.base import load_run_model, open_app_run
from rnnkit.apps.rundir import read_json
from rnnkit.apps.textgen.config import GenerateConfig
from rnnkit.apps.textgen.data import APP, held_out, load_text, scored_positions, split_text
from rnnkit.apps.textgen.mixture import NGRAM_FILE, NGRAM_INFO, NgramMixture, mix_log2
from rnnkit.apps.textgen.model import generate, generation_backend, stream, token_nats
from rnnkit.datasets import Vocabulary, read_text_file

__all__ = ["NextWordStream", "TextGenerator", "load"]


class TextGenerator:
    """A trained language-model run, loaded: ``generate(prompt)``, ``stream(prompt)``, ``score(texts)`` and
    ``evaluate()``.

    Generation runs the compiled loop of :mod:`rnnkit.models.fastgen` where it covers the model, else the
    Python decoding loop; both give the same text for the same settings and seed.
    :attr:`generation_backend` says which one runs and why.
    """

    def __init__(self, path):
        from rnnkit.models import LanguageModel

        self.run, self.manifest, self.config = open_app_run(path, APP)
        self.model = load_run_model(self.run, LanguageModel)
        try:
            self.vocab = Vocabulary.from_json(self.run / "vocab.json")
        except RnnkitError as exc:
            raise RnnkitError(f"run {self.run.name}: damaged vocabulary: {exc}") from None
        if len(self.vocab) != self.model.config.vocab_size:
            raise RnnkitError(f"run {self.run.name}: vocab.json does not match the model (damaged run?)")
        self._fast = None  # the FastGenerator, made on first use
        self._mixture: NgramMixture | None | bool = False  # False: not loaded yet

    @property
    def mixture(self) -> NgramMixture | None:
        """The network interpolated with the run's Kneser-Ney n-gram (:mod:`rnnkit.apps.textgen.mixture`),
        refitted from the run's ``ngram.safetensors`` on first use; None for a run without one (trained with
        ``--no-ngram-mix`` or ``--no-baselines``, or before mixtures existed)."""
        if self._mixture is False:
            path, info = self.run / NGRAM_FILE, self.run / NGRAM_INFO
            sha256 = None  # runs of 1-2 Dec 2026 have no checksum
            if info.is_file():
                try:
                    sha256 = str(read_json(info)["sha256"])
                except (RnnkitError, KeyError, TypeError) as exc:
                    raise RnnkitError(f"run {self.run.name}: {NGRAM_INFO} is damaged ({exc})") from None
            self._mixture = NgramMixture.load(path, self.vocab, sha256) if path.is_file() else None
        return self._mixture

    @property
    def generation_backend(self) -> tuple[str, str]:
        """``(name, reason)``: ``"fast"`` (compiled loop) or ``"python"``, as ``generate``/``stream`` use."""
        return generation_backend(self.model)

    def _runner(self, backend: str):
        if generation_backend(self.model, backend)[0] != "fast":
            return None
        if self._fast is None:
            from rnnkit.models.fastgen import FastGenerator

            self._fast = FastGenerator(self.model)
        return self._fast

    def generate(self, prompt: str, gen: GenerateConfig, backend: str = "auto") -> list[str]:
        """``gen.num_samples`` continuations of ``prompt`` (the prompt itself not included).

        ``backend``: ``"auto"``, ``"fast"`` or ``"python"`` (see :attr:`generation_backend`).
        """
        fast = self._runner(backend)
        return [
            generate(self.model, self.vocab, prompt, gen, i, backend="python", fast=fast)
            for i in range(gen.num_samples)
        ]

    def stream(self, prompt: str, gen: GenerateConfig) -> Iterator[str]:
        """The text of each sampled token of one continuation of ``prompt``, as soon as it is sampled.

        The pieces join to ``generate(prompt, gen)[0]`` (``gen.num_samples`` is not used); tokens without
        text (``<pad>``) are skipped, and at word level a word comes with its leading space. The state is
        carried between tokens, so a piece costs one step of the model. Example::

            for piece in load("runs/austen").stream("It is a truth", GenerateConfig(length=200)):
                print(piece, end="", flush=True)
        """
        return stream(self.model, self.vocab, prompt, gen, backend="python", fast=self._runner("auto"))

    def score(self, texts: list[str]) -> list[dict[str, Any]]:
        """Bits per token of each text under the model (every token after the first)."""
        out = []
        for text in texts:
            ids = self.vocab.encode(text)
            if len(ids) < 2:
                raise RnnkitError(f"expected texts of at least 2 {self.vocab.level}s to score, got {text!r}")
            with torch.no_grad():
                self.model.eval()
                logits, _ = self.model(torch.tensor([ids[:-1]]))
                nll = F.cross_entropy(logits[0], torch.tensor(ids[1:]), reduction="sum")
            unk = sum(1 for i in ids if i == self.vocab.unk_id)
            out.append(
                {
                    "text": text,
                    "bits_per_token": float(nll) / (len(ids) - 1) / math.log(2),
                    "tokens": len(ids),
                    "unknown": unk,
                }
            )
        return out

    def next_words(self, mixture: bool = True) -> NextWordStream:
        """A :class:`NextWordStream` over this word-level model (a keyboard's suggestions as the user types);
        with the run's n-gram mixture where it has one, unless ``mixture=False``."""
        return NextWordStream(self, mixture)

    def evaluate(self, data: str | None = None) -> dict[str, Any]:
        """Bits per token on the run's held-out test part, or on a whole text file: the network's, and on the
        same tokens the run's Kneser-Ney n-gram (``kneser_ney``; the order the run chose), the network + n-gram
        mixture and the feed-forward counterpart (``feedforward``) where the run has them."""
        cfg = self.config
        if data is None:
            _, _, test_text = split_text(load_text(cfg), cfg)
            part, ids = held_out(test_text, cfg.eval_tokens, self.vocab)
            where = f"held-out test part of {cfg.data}"
        else:
            part, ids = held_out(read_text_file(data), 0, self.vocab)
            where = Path(data).name
        if len(ids) < 3:
            raise RnnkitError(f"{where}: expected at least 3 {self.vocab.level}s to score, got {len(ids)}")
        nats = token_nats(self.model, ids)
        key = "bpc" if self.vocab.level == "char" else "bits_per_word"
        out = {"data": f"{where} ({len(nats):,} tokens scored)", key: float(nats.mean() / math.log(2))}
        # the baselines read the same tokens, scored at the positions the network scores
        tokens = part if self.vocab.level == "char" else [self.vocab.id_to_token(int(i)) for i in ids]
        pos = scored_positions(len(tokens))
        mix = self.mixture
        if mix is not None:
            kn = mix.lm.log2_probs(tokens)[pos]
            out["kneser_ney"] = float(-kn.mean())
            out["mixture"] = float(-mix_log2(-nats / math.log(2), kn, mix.weight).mean())
            out["mixture_weight"] = mix.weight
        ff = self.feedforward
        if ff is not None:
            out["feedforward"] = float(-ff.log2_probs(tokens)[pos].mean())
        return out

    @cached_property
    def feedforward(self):
        """The run's feed-forward counterpart (:class:`rnnkit.baselines.FixedContextLM`), or None for a run
        without one (trained with ``--no-baselines``, or before 4 Dec 2026)."""
        from rnnkit.baselines import FixedContextLM

        return load_baseline_net(self.run, FixedContextLM, "lm")


class NextWordStream:
    """Next-word suggestions while the text is being typed, with the recurrent state carried forward.

    Each :meth:`feed` reads only the new words (the text before them is never read again). A word still being
    typed (the text ends in letters, not in a space or a punctuation mark) is not read yet: :meth:`suggest`
    then completes it, among the vocabulary's words that start with the letters typed, with probabilities
    renormalised over those words (``p(word | context, the letters typed)``). Otherwise it returns the ``k``
    most likely next words, ``p(word | context)``. ``<unk>`` is never suggested. Before any word, the model
    reads a ``"."`` (a sentence boundary) when the vocabulary has it.

    With ``mixture`` (the default) and a run that has one, ``p(word | context)`` is the network's
    interpolated with the run's Kneser-Ney n-gram (:mod:`rnnkit.apps.textgen.mixture`) at the run's
    suggestion share (the most top-5 hits on validation); the n-gram reads the last ``order - 1`` words, so
    the state carried is the network's plus those words.

    Example::

        s = load("runs/austen-words").next_words()
        s.feed("it is a truth universally ")
        s.suggest(5)          # [("acknowledged", 0.41), ...]
        s.feed("ackn")
        s.suggest(3)          # completions of "ackn"
    """

    def __init__(self, gen: TextGenerator, mixture: bool = True):
        if gen.vocab.level != "word":
            raise RnnkitError(
                f"next-word suggestions need a word-level run (--level word); run {gen.run.name} is "
                f"{gen.vocab.level}-level"
            )
        self.model, self.vocab = gen.model, gen.vocab
        self.mixture = gen.mixture if mixture else None
        self.context: list[str] = []  # the last words read, as many as the n-gram reads
        self.model.eval()
        self.state = None
        self.log_probs: torch.Tensor | None = None  # (V,) after the last word read
        self.pending = ""  # letters of a word still being typed
        self.words_read = 0
        self._tokens = None
        start = "." if "." in self.vocab else None
        if start is not None:
            self._read([self.vocab.token_to_id(start)])
            self.words_read = 0

    @torch.no_grad()
    def _read(self, ids: list[int]) -> None:
        if not ids:
            return
        logits, self.state = self.model(torch.tensor([ids]), self.state)  # (1, T, V)
        self.log_probs = logits[0, -1].log_softmax(-1)
        self.words_read += len(ids)
        if self.mixture is not None and self.mixture.context_size:
            self.context = (self.context + [self.vocab.id_to_token(i) for i in ids])[
                -self.mixture.context_size :
            ]

    def feed(self, text: str) -> None:
        """Append ``text`` to what was typed; read the words it completes."""
        text = self.pending + text
        tokens = self.vocab.tokenize(text)
        self.pending = ""
        if tokens and text and not text[-1].isspace() and tokens[-1][-1:].isalnum():
            # the last word may go on in the next piece: keep its letters, read it later
            self.pending = _tail_word(text)
            tokens = tokens[:-1]
        self._read(self.vocab.encode(" ".join(tokens)) if tokens else [])

    def suggest(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most likely next words (or completions of the word being typed) with probabilities."""
        if k < 1:
            raise RnnkitError(f"--next: expected k >= 1, got {k}")
        if self.log_probs is None:
            p = torch.full((len(self.vocab),), 1.0 / len(self.vocab))
        else:
            p = self.log_probs.exp().clone()
        if self.mixture is not None:
            p = torch.from_numpy(
                self.mixture.mix(p.double().numpy(), self.context, self.mixture.suggest_weight)
            )
        p[self.vocab.unk_id] = 0.0
        for special in ("<pad>", "<bos>", "<eos>"):
            if special in self.vocab:
                p[self.vocab.token_to_id(special)] = 0.0
        if self.pending:
            if self._tokens is None:
                self._tokens = [self.vocab.id_to_token(i) for i in range(len(self.vocab))]
            prefix = self.pending.lower()
            mask = torch.tensor([t.startswith(prefix) for t in self._tokens])
            p = torch.where(mask, p, torch.zeros_like(p))
            total = float(p.sum())
            if total <= 0:
                return []
            p = p / total
        top = p.topk(min(k, int((p > 0).sum())))
        return [(self.vocab.id_to_token(int(i)), float(v)) for v, i in zip(top.values, top.indices)]


def _tail_word(text: str) -> str:
    """The run of word characters (and inner apostrophes) at the end of ``text``."""
    import re

    m = re.search(r"\w+(?:'\w+)*'?$", text)
    return m.group(0) if m else ""


def load(path) -> TextGenerator:
    """The saved run at ``path``, ready to ``generate``, ``score`` and ``evaluate``."""
    return TextGenerator(path)
