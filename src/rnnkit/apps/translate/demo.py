"""Machine translation in ``rnnkit demo``: numbers written out in English -> French (num2words).

The demo scale is the small, fast set of the issue: the numbers 0..1,999 written out by ``num2words``, a
seeded split by number (no test number is seen in training), scored by exact match, BLEU and chrF next to
copying the source and an IBM Model 1 word-by-word lexicon. ``rnnkit demo translate`` alone trains the
documented num2words configuration (0..9,999).
"""

from __future__ import annotations

from dataclasses import replace

from rnnkit.apps.base import DemoStage

DATA = "num2words (PyPI)"


def fetch() -> str:
    import num2words  # noqa: F401  (the pairs are made on the fly; this checks the package is there)

    return "numbers 0..1,999 in words"


def stages(common: dict, scale: str) -> list[DemoStage]:
    from rnnkit.apps.translate.config import TranslateConfig

    cfg = TranslateConfig(
        data="num2words",
        target_lang="fr",
        max_number=1999,
        name="demo-translate",
        hidden_size=96,
        embedding_dim=48,
        attention_dim=48,
        epochs=30,
        early_stopping=4,
        time_budget=35,
        beam=3,
        eval_sentences=200,
        **common,
    )
    if scale == "quick":
        cfg = replace(
            cfg,
            max_number=200,
            hidden_size=16,
            embedding_dim=8,
            attention_dim=8,
            epochs=1,
            time_budget=0,
            eval_sentences=20,
        )
    elif scale == "full":  # the documented num2words configuration (docs/translate.md)
        cfg = replace(
            cfg,
            max_number=9999,
            hidden_size=128,
            embedding_dim=64,
            attention_dim=64,
            epochs=20,
            time_budget=1800,
            beam=5,
            eval_sentences=0,
        )
    return [
        DemoStage(
            "translate", "machine translation: numbers en -> fr, BiGRU encoder + attention decoder", cfg
        )
    ]


def show(results: dict) -> list[str]:
    from rnnkit.apps.translate.report import OTHER_SPELLINGS

    samples = results["translate"].samples
    cut = samples.index(OTHER_SPELLINGS) if OTHER_SPELLINGS in samples else len(samples)
    first = samples[: samples.index("") + 1] if "" in samples[:cut] else samples[:cut]  # one whole example
    return ["Translation: held-out numbers (source, reference, outputs)"] + [
        "  " + s for s in first + samples[cut:]
    ]
