"""Machine translation (many-to-many, unaligned): a bidirectional GRU/LSTM encoder and an attention decoder.

Data: the King James <-> Reina-Valera verse pairs (``data="bible"``, split by book), the numbers written
out by num2words in several languages (``data="num2words"``, split by number), or the user's pairs
(CSV/TSV/JSONL with ``source_column``/``target_column``, or two line-aligned text files); either direction.
Subword units come from SentencePiece. The model is :class:`rnnkit.models.Seq2Seq` trained with label
smoothing and scheduled sampling; it is scored with sacrebleu's BLEU and chrF (greedy and beam search)
next to two baselines on the same split: copying the source, and word-by-word translation with an IBM
Model 1 lexicon trained by EM on the training pairs.

Like every application, it has the same parts in the same files: ``config`` (:class:`TranslateConfig`),
``data`` (the data sets, the user's files, the split, the subword vocabularies), ``model`` (built from
:mod:`rnnkit.models`), ``train`` (the shared trainer), ``report`` (scores next to the baselines) and
``use`` (a saved run); ``baselines`` holds IBM Model 1. Example::

    from rnnkit.apps.translate import TranslateConfig, load, train
    result = train(TranslateConfig(data="num2words", target_lang="fr", name="n2w"))
    result.metrics["test"]["beam"]["exact_match"]
    load(result.run).translate(["two hundred and twelve"], beam=4, n_best=2)
"""

from rnnkit.apps.translate.baselines import IBMModel1, copy_baseline
from rnnkit.apps.translate.config import TranslateConfig
from rnnkit.apps.translate.data import (
    APP,
    PairData,
    SubwordVocab,
    load_pairs,
    split,
    train_vocabularies,
)
from rnnkit.apps.translate.model import build_model, translate_ids
from rnnkit.apps.translate.train import train
from rnnkit.apps.translate.use import Translator, format_translations, load

__all__ = [
    "APP",
    "IBMModel1",
    "PairData",
    "SubwordVocab",
    "TranslateConfig",
    "Translator",
    "build_model",
    "copy_baseline",
    "format_translations",
    "load",
    "load_pairs",
    "split",
    "train",
    "train_vocabularies",
    "translate_ids",
]
