"""A saved language-model run, loaded: generation, scores of texts and of held-out text."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from rnnkit._errors import RnnkitError
from rnnkit.apps.base import load_run_model, open_app_run
from rnnkit.apps.textgen.config import GenerateConfig
from rnnkit.apps.textgen.data import APP, held_out, load_text, split_text
from rnnkit.apps.textgen.model import generate, token_nats
from rnnkit.datasets import Vocabulary, read_text_file

__all__ = ["TextGenerator", "load"]


class TextGenerator:
    """A trained language-model run, loaded: ``generate(prompt)``, ``score(texts)`` and ``evaluate()``."""

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

    def generate(self, prompt: str, gen: GenerateConfig) -> list[str]:
        """``gen.num_samples`` continuations of ``prompt`` (the prompt itself not included)."""
        return [generate(self.model, self.vocab, prompt, gen, i) for i in range(gen.num_samples)]

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

    def evaluate(self, data: str | None = None) -> dict[str, Any]:
        """Bits per token on the run's held-out test part, or on a whole text file."""
        cfg = self.config
        if data is None:
            _, _, test_text = split_text(load_text(cfg), cfg)
            _, ids = held_out(test_text, cfg.eval_tokens, self.vocab)
            where = f"held-out test part of {cfg.data}"
        else:
            _, ids = held_out(read_text_file(data), 0, self.vocab)
            where = Path(data).name
        if len(ids) < 3:
            raise RnnkitError(f"{where}: expected at least 3 {self.vocab.level}s to score, got {len(ids)}")
        nats = token_nats(self.model, ids)
        key = "bpc" if self.vocab.level == "char" else "bits_per_word"
        return {"data": f"{where} ({len(nats):,} tokens scored)", key: float(nats.mean() / math.log(2))}


def load(path) -> TextGenerator:
    """The saved run at ``path``, ready to ``generate``, ``score`` and ``evaluate``."""
    return TextGenerator(path)
