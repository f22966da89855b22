"""The settings of the translation application (one dataclass: flags, TOML keys and the run's config.json).

Every field is one flag of ``rnnkit train translate`` and one key of its TOML file. Fields whose default is
``None`` are automatic: the application picks them from the data set, as their help says.
"""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit._errors import RnnkitError
from rnnkit.apps.config import AppConfig, FeedForwardSeq2SeqOptions, check_fractions
from rnnkit.config import option

__all__ = ["TranslateConfig", "NUM2WORDS_LANGS"]

#: the num2words languages offered (any num2words language works; these were checked); "num" = the digits
NUM2WORDS_LANGS = ("num", "en", "fr", "de", "es", "it", "pt", "nl")


@dataclass
class TranslateConfig(AppConfig, FeedForwardSeq2SeqOptions):
    """Machine translation: a bidirectional GRU/LSTM encoder and an attention decoder over subword units."""

    data: str = option(
        "bible",
        "'bible' (King James <-> Reina-Valera verse pairs), 'num2words' (numbers written out), or a "
        "CSV/TSV/JSONL file of pairs, or a text file of source lines (with --target-file)",
    )
    target_file: str | None = option(
        None, "a text file of target lines, line-aligned with the text file named by --data"
    )
    source_column: str = option("source", "column (or JSON key) of the source sentences in a user file")
    target_column: str = option("target", "column (or JSON key) of the target sentences in a user file")
    reverse: bool = option(
        False, "translate the other way (bible: Spanish -> English; a user file: target -> source)"
    )
    source_lang: str = option("en", "num2words: the language of the source numbers ('num' = digits)")
    target_lang: str = option(
        "fr",
        "num2words: the target language; several (comma-separated, e.g. 'fr,de,es') train one model "
        "whose source starts with a <2xx> tag naming the target language",
    )
    max_number: int = option(9999, "num2words: the numbers 0..MAX_NUMBER make the data set", low=10)
    spellings: str = option(
        "variants",
        "num2words, English sources: 'variants' trains on every way of writing a number (num2words' own, and "
        "without its commas, without 'and', with spaces for hyphens, with a capital first letter), one drawn "
        "at random per number each epoch; 'num2words' on the package's spelling alone. The test scores "
        "num2words' spelling and, apart, one other spelling of each test number",
        choices=("variants", "num2words"),
    )
    split: str = option(
        "book",
        "bible: 'book' holds out whole books (no near-copies of test verses in training), 'random' a "
        "seeded shuffle of the pairs (the only choice for num2words and user files)",
        choices=("book", "random"),
    )
    val_fraction: float = option(
        0.05, "random split: share of the pairs for early stopping", low=0.0, below=1.0
    )
    test_fraction: float = option(0.1, "random split: share of the pairs for the scores", low=0.0, below=1.0)
    split_seed: int = option(0, "seed of the shuffle that makes the random split", low=0)
    max_words: int | None = option(
        None,
        "keep pairs with at most this many words on each side (default: 20 for bible, no limit otherwise)",
        low=1,
    )
    tokenizer: str = option(
        "unigram",
        "SentencePiece subword model: unigram (Kudo 2018), bpe, or char",
        choices=("unigram", "bpe", "char"),
    )
    vocab_size: int | None = option(
        None, "subword vocabulary size per side (default: 4000 bible, 200 num2words, 2000 a user file)", low=8
    )
    shared_vocab: bool = option(False, "one subword vocabulary for both sides (else one per side)")
    max_tokens: int = option(
        100, "longest source accepted, in subword tokens (longer pairs are dropped from training)", low=1
    )
    cell: str = option("gru", "recurrent cell of the encoder and the decoder", choices=("gru", "lstm"))
    embedding_dim: int = option(128, "size of the subword embeddings", low=1)
    hidden_size: int = option(256, "hidden units of the decoder and of each encoder direction", low=1)
    num_layers: int = option(1, "stacked layers in the encoder and in the decoder", low=1)
    attention: str = option(
        "bahdanau",
        "bahdanau (additive) or Luong's general / dot score",
        choices=("bahdanau", "general", "dot"),
    )
    attention_dim: int = option(128, "size of the additive attention's tanh layer", low=1)
    copy_attention: bool = option(
        False,
        "copy attention (a pointer-generator, See et al. 2017): each step may copy a source subword through its "
        "attention (into the target subword of the same spelling) instead of generating one; helps with names",
    )
    dropout: float = option(0.2, "dropout on the embeddings and before the output layer", low=0.0, below=1.0)
    recurrent_dropout: float = option(
        0.0,
        "variational dropout on the decoder's hidden state, one mask per sentence (Gal & Ghahramani 2016)",
        low=0.0,
        below=1.0,
    )
    label_smoothing: float = option(
        0.1,
        "share of each target's probability spread over the vocabulary (Szegedy et al. 2016)",
        low=0.0,
        below=1.0,
    )
    teacher_forcing: float = option(
        0.8,
        "scheduled sampling: the probability of feeding the true previous token falls linearly from 1 in "
        "the first epoch to this in the last (1 = always teacher forcing)",
        low=0.0,
        high=1.0,
    )
    beam: int = option(5, "beam width of the reported beam-search scores", low=1)
    length_penalty: float = option(
        1.0, "beam search ranks hypotheses by log p / length ** this (0 = raw log p)", low=0.0
    )
    eval_sentences: int = option(
        0, "score at most this many test pairs (the first of the test part); 0 = all", low=0
    )
    ibm1_iterations: int = option(5, "EM iterations of the IBM Model 1 baseline", low=1)
    epochs: int = option(30, "passes over the training pairs at most", low=1)
    batch_size: int = option(64, "pairs per batch", low=1)

    # runs saved before these settings existed trained without them (read by rnnkit.config.saved_run_settings)
    added_since = (("ff_layers", 0), ("copy_attention", False), ("spellings", "num2words"))

    def check(self) -> None:
        super(AppConfig, self).check()  # the trainer's checks; the fractions matter for a random split only
        self.check_time_delay()
        if self.split == "random" or self.data != "bible":
            check_fractions(self)
        if self.data != "num2words":
            return
        langs = [self.source_lang, *self.target_langs()]
        bad = [x for x in langs if x not in NUM2WORDS_LANGS]
        if bad:
            raise RnnkitError(f"num2words languages: expected some of {list(NUM2WORDS_LANGS)}, got {bad}")
        if self.source_lang in self.target_langs():
            raise RnnkitError(f"num2words: source and target language are both {self.source_lang!r}")

    def target_langs(self) -> list[str]:
        """The num2words target languages, in the order given."""
        return [x.strip() for x in self.target_lang.split(",") if x.strip()]
