"""A saved translation run, loaded: ``translate(sentences, beam=N)`` with n-best lists and scores.

:func:`format_translations` is all that ``rnnkit predict RUN "sentence" ... [--beam N] [--json]`` needs
besides :func:`load`.
"""

from __future__ import annotations

import json
from typing import Any

from rnnkit._errors import RnnkitError
from rnnkit.apps.base import load_feedforward, load_run_model, open_app_run
from rnnkit.apps.rundir import read_json
from rnnkit.apps.translate.data import APP, SubwordVocab, encode_sources
from rnnkit.apps.translate.model import translate_ids

__all__ = ["Translator", "format_translations", "load"]


class Translator:
    """A trained translation run: ``translate(sentences, beam=1, n_best=1)``.

    Example::

        tr = load("runs/num2words")
        tr.translate(["one hundred and one"], beam=4, n_best=2)
        # [{'source': 'one hundred and one', 'translation': 'cent un', 'score': -0.01,
        #   'n_best': [{'translation': 'cent un', 'score': -0.01}, {'translation': 'cent', 'score': -2.3}]}]
    """

    def __init__(self, path):
        from rnnkit.models import Seq2Seq

        self.run, self.manifest, self.config = open_app_run(path, APP)
        self.model = load_run_model(self.run, Seq2Seq)
        info = read_json(self.run / "translate.json", f"run {self.run.name}")
        if not isinstance(info, dict) or "max_tokens" not in info:
            raise RnnkitError(f"run {self.run.name}: translate.json is damaged (no 'max_tokens')")
        self.max_tokens = int(info["max_tokens"])
        if info.get("shared_vocab"):
            self.source_vocab = self.target_vocab = SubwordVocab.load(self.run / "vocab.spm")
        else:
            self.source_vocab = SubwordVocab.load(self.run / "source.spm")
            self.target_vocab = SubwordVocab.load(self.run / "target.spm")
        mc = self.model.config
        if (len(self.source_vocab), len(self.target_vocab)) != (mc.src_vocab_size, mc.tgt_vocab_size):
            raise RnnkitError(
                f"run {self.run.name}: the subword models do not match the model (damaged run?)"
            )

    def translate(
        self, sentences: list[str], beam: int = 1, n_best: int = 1, length_penalty: float | None = None
    ) -> list[dict[str, Any]]:
        """Per sentence ``{"source", "translation", "score", "n_best": [{"translation", "score"}, ...]}``.

        ``beam = 1`` is greedy; ``n_best <= beam`` hypotheses are listed, best first. A score is the
        length-normalised log-probability the beam search ranks by (``length_penalty``, default the run's).
        """
        if isinstance(sentences, str) or not all(isinstance(s, str) for s in sentences):
            raise RnnkitError("expected a list of sentences (strings)")
        if not isinstance(beam, int) or beam < 1:
            raise RnnkitError(f"beam must be a positive int, got {beam!r}")
        if not isinstance(n_best, int) or not 1 <= n_best <= beam:
            raise RnnkitError(f"n_best must be an int in [1, beam={beam}], got {n_best!r}")
        for k, s in enumerate(sentences):
            if not s.strip():
                raise RnnkitError(f"sentence {k + 1}: expected text, got an empty sentence")
        ids = encode_sources(self.source_vocab, [s.strip() for s in sentences])
        for k, x in enumerate(ids):
            if len(x) > self.max_tokens:
                raise RnnkitError(
                    f"sentence {k + 1} is too long: the model reads at most {self.max_tokens} subword "
                    f"tokens, got {len(x)}"
                )
        lp = self.config.length_penalty if length_penalty is None else length_penalty
        results = translate_ids(self.model, ids, beam=beam, length_penalty=lp)
        out = []
        for s, r in zip(sentences, results):
            hyps = [
                {"translation": self.target_vocab.decode(t), "score": round(sc, 4)}
                for t, sc in r["hypotheses"][:n_best]
            ]
            out.append({"source": s, **hyps[0], "n_best": hyps})
        return out

    def predict_inputs(
        self, inputs: list[str], beam: int | None = None, n_best: int | None = None
    ) -> list[dict[str, Any]]:
        """``rnnkit predict RUN "sentence" ... [--beam N] [--n-best K]``: :meth:`translate` of the inputs.

        ``beam`` defaults to the run's (``config.beam``, the width its scores were measured with; wider when
        ``n_best`` asks for more) and ``n_best`` to 1; each result is a dict with ``source``, ``translation``,
        ``score`` and the ``n_best`` list.
        """
        from rnnkit.apps._common import beam_and_n_best

        beam, n_best = beam_and_n_best(beam, n_best, self.config.beam)
        return self.translate(list(inputs), beam=beam, n_best=n_best)

    def evaluate(self, data: str | None = None) -> dict[str, Any]:
        """BLEU, chrF and exact match (greedy and beam ``config.beam``) on the run's held-out test pairs
        (the first ``eval_sentences`` of them, as in training), or on every pair of a CSV/TSV/JSONL file
        with the run's ``source_column`` / ``target_column``; a run with a feed-forward counterpart scores it
        too (keys ending in `` (feed-forward)``). Of num2words' English numbers, one other spelling of each test
        number is scored too (keys ending in `` (other spellings)``), as in training."""
        import dataclasses
        from pathlib import Path

        from rnnkit.apps.translate import report
        from rnnkit.apps.translate.data import load_pairs, scored_test_pairs, split
        from rnnkit.models import Seq2Seq

        other: list[int] = []
        if data is None:
            pairs = load_pairs(self.config)
            _, _, te = split(self.config, pairs)
            te, other = scored_test_pairs(self.config, pairs, te)
            where = f"held-out test pairs of {pairs.name} ({len(te)} pairs)"
        else:
            cfg = dataclasses.replace(self.config, data=str(data), target_file=None, reverse=False)
            pairs = load_pairs(cfg)
            te = list(range(len(pairs)))
            where = f"{Path(data).name} ({len(te)} pairs)"
        out: dict[str, Any] = {"data": where}
        feedforward = load_feedforward(self.run, self.config, Seq2Seq)
        # the test pairs, and (num2words' English numbers) one other spelling of each, scored apart
        for part, label in ((te, ""), (other, " (other spellings)")):
            if not part:
                continue
            ids = encode_sources(self.source_vocab, [pairs.sources[i] for i in part])
            refs = [pairs.targets[i] for i in part]
            for model, who in ((self.model, ""), (feedforward, " (feed-forward)")):
                if model is None:
                    continue
                for name, beam in (("greedy", 1), (f"beam{self.config.beam}", self.config.beam)):
                    results = translate_ids(model, ids, beam=beam, length_penalty=self.config.length_penalty)
                    hyps = [self.target_vocab.decode(r["hypotheses"][0][0]) for r in results]
                    out.update({f"{k}_{name}{who}{label}": v for k, v in report.scores(hyps, refs).items()})
        return out


def load(path) -> Translator:
    """The saved translation run at ``path``, ready to ``translate``."""
    return Translator(path)


def format_translations(results: list[dict[str, Any]], as_json: bool = False) -> str:
    """What ``rnnkit predict`` prints: JSON lines (with the n-best lists), or one translation a line."""
    if as_json:
        return "\n".join(json.dumps(r, ensure_ascii=False) for r in results)
    lines = []
    for r in results:
        if len(r["n_best"]) > 1:
            lines += [f"{h['score']:8.3f}  {h['translation']}" for h in r["n_best"]]
            lines.append("")
        else:
            lines.append(r["translation"])
    return "\n".join(lines).rstrip("\n")
