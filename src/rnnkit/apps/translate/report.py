"""The translation run's report: BLEU and chrF (sacrebleu), exact match, the baselines, plots, the table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rnnkit._errors import RnnkitError
from rnnkit.apps import plots
from rnnkit.apps._common import FF_SEQ2SEQ
from rnnkit.apps.base import ResultRow
from rnnkit.apps.translate.baselines import IBMModel1, copy_baseline, words
from rnnkit.apps.translate.config import TranslateConfig
from rnnkit.files import write_figure

__all__ = ["baselines", "result_rows", "samples", "scores", "write_plots"]


def scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Corpus BLEU and chrF from sacrebleu (default settings: 13a tokenisation, chrF with n=6, beta=2)
    and the share of exact matches (after stripping surrounding white space), all in percent."""
    try:
        import sacrebleu
    except ImportError:
        raise RnnkitError("translation scores need sacrebleu: pip install 'rnnkit[apps]'") from None
    exact = sum(h.strip() == r.strip() for h, r in zip(hypotheses, references))
    return {
        "bleu": round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 2),
        "chrf": round(sacrebleu.corpus_chrf(hypotheses, [references]).score, 2),
        "exact_match": round(100.0 * exact / max(1, len(references)), 2),
    }


def baselines(
    cfg: TranslateConfig,
    train_src: list[str],
    train_tgt: list[str],
    test_src: list[str],
    test_tgt: list[str],
    other: tuple[list[str], list[str]] = ([], []),
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Copy-the-source and IBM Model 1 word-by-word, trained on the training pairs, scored on the test pairs.

    Returns ``(metrics, outputs)``: per baseline its scores (and seconds), and its test translations. IBM
    Model 1 also scores ``other`` (sources, references; the test numbers spelt another way) when given, and its
    translations of them are ``outputs["ibm1_other"]``.
    """
    n_test = len(test_src)
    test_src, test_tgt = test_src + other[0], test_tgt + other[1]
    t0 = time.perf_counter()
    # several target languages (sources tagged "<2xx> ..."): one lexicon per language, the tag removed
    tags = sorted({_tag(s) for s in train_src})
    ibm_out = [""] * len(test_src)
    entries = 0
    for tag in tags:
        rows = [i for i, s in enumerate(train_src) if _tag(s) == tag]
        ibm = IBMModel1(cfg.ibm1_iterations).fit(
            [words(_untagged(train_src[i])) for i in rows], [words(train_tgt[i]) for i in rows]
        )
        entries += len(ibm.lexicon)
        todo = [j for j, s in enumerate(test_src) if _tag(s) == tag]
        for j, out in zip(todo, ibm.translate_sentences([_untagged(test_src[j]) for j in todo])):
            ibm_out[j] = out
    ibm_seconds = time.perf_counter() - t0
    ibm_out, ibm_other = ibm_out[:n_test], ibm_out[n_test:]
    test_src, test_tgt = test_src[:n_test], test_tgt[:n_test]
    copy_out = copy_baseline(test_src)
    metrics = {
        "copy": {"name": "copy the source", **scores(copy_out, test_tgt)},
        "ibm1": {
            "name": "IBM Model 1 word-by-word",
            "iterations": cfg.ibm1_iterations,
            "lexicon_entries": entries,
            "lexicons": len(tags),
            "seconds": round(ibm_seconds, 2),
            **scores(ibm_out, test_tgt),
        },
    }
    outputs = {"copy": copy_out, "ibm1": ibm_out}
    if other[0]:
        metrics["ibm1"]["other_spellings"] = scores(ibm_other, other[1])
        outputs["ibm1_other"] = ibm_other
    return metrics, outputs


def _tag(source: str) -> str:
    """The target-language tag a multilingual source starts with (``<2de>``), or ``""``."""
    first = source.split(" ", 1)[0]
    return first if first.startswith("<2") and first.endswith(">") else ""


def _untagged(source: str) -> str:
    return source.split(" ", 1)[1] if _tag(source) else source


#: the line in a run's samples before those of the test numbers written another way
OTHER_SPELLINGS = "the same test numbers written another way (the longest of them):"


def samples(
    sources: list[str], references: list[str], outputs: dict[str, list[str]], k: int = 5
) -> list[str]:
    """A few test sentences with the reference and each system's translation, for people."""
    out = []
    for j in range(min(k, len(sources))):
        out.append(f"source:    {sources[j]}")
        out.append(f"reference: {references[j]}")
        for name, hyps in outputs.items():
            out.append(f"{name + ':':<10} {hyps[j]}")
        out.append("")
    return out


@plots._guard
def plot_attention(plt, items: list[tuple[list[str], list[str], Any]], path: Path, title: str) -> Path:
    """Attention heat maps: per item the source pieces (x), the output pieces (y) and the weights."""
    n = len(items)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.2), squeeze=False)
    for ax, (src, out, weights) in zip(axes[0], items):
        ax.imshow(weights, cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(len(src)))
        ax.set_xticklabels(src, rotation=90, fontsize=7)
        ax.set_yticks(range(len(out)))
        ax.set_yticklabels(out, fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return write_figure(fig, path)


def write_plots(run, cfg: TranslateConfig, data_name: str, history, attention_items) -> list[Path]:
    written = [
        plots.plot_curves(
            history,
            run.file("curves.png"),
            "epoch",
            f"translate ({data_name}): training curves",
            left=["train_loss", "val_loss"],
            right=["train_accuracy", "val_accuracy"],
            right_label="subword accuracy",
        )
    ]
    if attention_items:
        written.append(
            plot_attention(attention_items, run.file("attention.png"), "attention (test sentences, greedy)")
        )
    return [p for p in written if p is not None]


FEEDFORWARD = FF_SEQ2SEQ


def result_rows(data_name: str, model_scores: dict, base: dict, seconds: float) -> list[ResultRow]:
    """BLEU and chrF of beam search next to the stronger of IBM Model 1 and the feed-forward counterpart (where
    it ran; beam search too), and exact match for num2words."""
    task = f"translate ({data_name})"
    strong = {"IBM Model 1": base["ibm1"]} | (
        {FEEDFORWARD: base["feedforward"]} if "feedforward" in base else {}
    )
    rows = []
    for key in ("bleu", "chrf"):
        scored = {name: b[key] for name, b in strong.items()}
        best = max(scored, key=scored.get)
        value = model_scores["beam"][key]
        rows.append(
            ResultRow(
                task,
                f"{key} (beam)",
                value,
                best,
                scored[best],
                ">= baseline",
                value >= scored[best],
                seconds,
                scored,
            )
        )
    if data_name.startswith("num2words"):
        value = model_scores["beam"]["exact_match"]
        scored = {name: b["exact_match"] for name, b in strong.items()}
        rows.append(
            ResultRow(
                task, "exact match % (beam)", value, "IBM Model 1", base["ibm1"]["exact_match"], ">= 95", value >= 95,
                seconds, scored,
            )
        )  # fmt: skip
    if "other_spellings" in model_scores:  # the test numbers as people also write them
        value = model_scores["other_spellings"]["beam"]["exact_match"]
        scored = {
            name: b["other_spellings"]["exact_match"] for name, b in strong.items() if "other_spellings" in b
        }
        best = max(scored, key=scored.get)
        rows.append(
            ResultRow(
                task, "exact % (beam, other spellings)", value, best, scored[best], ">= 95", value >= 95, seconds,
                scored,
            )
        )  # fmt: skip
    return rows
