"""Translation data: the built-in pairs, the user's files, the split, and the subword vocabularies.

* ``num2words``: the numbers ``0..max_number`` written out by the `num2words` package in two languages
  (``"one thousand, nine hundred and ninety-nine"`` -> ``"mille neuf cent quatre-vingt-dix-neuf"``); with
  several target languages every source starts with a tag such as ``<2de>`` (Johnson et al. 2017). The
  split is by number, so a test number is never seen in training, in any language.
* ``bible``: King James (English, 1769) <-> Reina-Valera (Spanish, 1909) verse pairs
  (:func:`rnnkit.datasets.extra.load_bible_verse_pairs`). The default split holds out whole books
  (:data:`TEST_BOOKS`, :data:`VAL_BOOKS`): a seeded verse shuffle would put near-copies of most test verses
  in training (refrains such as Psalm 136's "for his mercy endureth for ever", the repeated offerings of
  Numbers 7, the neighbouring verses of one story), and score memory rather than translation. The held-out
  books span narrative, wisdom, prophecy, a gospel with little synoptic overlap, and a letter.
* a user file: CSV/TSV/JSONL with a source and a target column, or two line-aligned UTF-8 text files.

Subword units come from SentencePiece (Kudo & Richardson 2018), trained on the training part only and
saved as its own model files (protocol buffers, no pickle). Ids 0-3 are ``<pad> <unk> <s> </s>``, the
ids :class:`rnnkit.models.Seq2Seq` expects.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import split_indices
from rnnkit.apps.translate.config import TranslateConfig

__all__ = [
    "APP",
    "PAD",
    "UNK",
    "BOS",
    "EOS",
    "TEST_BOOKS",
    "VAL_BOOKS",
    "PairData",
    "SubwordVocab",
    "batches",
    "collate",
    "encode_sources",
    "encode_targets",
    "load_pairs",
    "split",
    "train_vocabularies",
]

APP = "translate"
PAD, UNK, BOS, EOS = 0, 1, 2, 3

#: Bible books held out for the reported scores (book split): Ruth, Esther, Ecclesiastes, Jonah, John, James
TEST_BOOKS = ("Ruth", "Esth", "Eccl", "Jonah", "John", "Jas")
#: Bible books held out for early stopping (book split): Lamentations, Obadiah, Philippians, Titus
VAL_BOOKS = ("Lam", "Obad", "Phil", "Titus")

_PILCROW = re.compile(r"\s*¶\s*")


@dataclass
class PairData:
    """Parallel sentences: ``sources[i]`` translates to ``targets[i]``.

    ``groups[i]`` says what must stay on one side of the split (the number of a num2words pair, the book
    of a verse); ``None`` when pairs are independent. ``spelling_of[i]`` is the index of the pair whose
    source pair ``i`` spells another way (``i`` itself for the data set's own spelling; num2words' English
    numbers only), ``None`` when every pair is its own.
    """

    sources: list[str]
    targets: list[str]
    groups: list[str] | None
    name: str  # e.g. "num2words en->fr", "bible en->es", "pairs.tsv"
    spelling_of: list[int] | None = None

    def __len__(self) -> int:
        return len(self.sources)


# -- the data sets ---------------------------------------------------------------------------------------------
def _num2words_pairs(cfg: TranslateConfig) -> PairData:
    try:
        from num2words import num2words
    except ImportError:
        raise RnnkitError(
            "data 'num2words' needs the num2words package: pip install 'rnnkit[apps]'"
        ) from None

    def words(n: int, lang: str) -> str:
        return str(n) if lang == "num" else num2words(n, lang=lang)

    targets = cfg.target_langs()
    multi = len(targets) > 1
    src, tgt, groups = [], [], []
    for lang in targets:
        for n in range(cfg.max_number + 1):
            s = words(n, cfg.source_lang)
            src.append(f"<2{lang}> {s}" if multi else s)
            tgt.append(words(n, lang))
            groups.append(str(n))
    name = f"num2words {cfg.source_lang}->{','.join(targets)}"
    if cfg.source_lang != "en":
        return PairData(src, tgt, groups, name)
    # the other spellings follow every pair of num2words' own, so those keep their indices (and so the split
    # and the scored test pairs of runs made before the other spellings existed)
    spelling_of = list(range(len(src)))
    for i in range(len(spelling_of)):
        tag, _, plain = src[i].rpartition("> ") if multi else ("", "", src[i])
        for other in english_spellings(plain)[1:]:
            src.append(f"{tag}> {other}" if multi else other)
            tgt.append(tgt[i])
            groups.append(groups[i])
            spelling_of.append(i)
    return PairData(src, tgt, groups, name, spelling_of)


def english_spellings(number: str) -> list[str]:
    """The ways people write a number that num2words spells ``number``: its own spelling first, then every
    combination of dropping its commas, dropping "and", hyphens as spaces and a capital first letter
    (distinct ones only).

    Example::

        english_spellings("twenty-one")
        # ['twenty-one', 'twenty one', 'Twenty-one', 'Twenty one']
    """
    forms = [number]
    for change in (
        lambda s: s.replace(",", ""),
        lambda s: s.replace(" and ", " "),
        lambda s: s.replace("-", " "),
        lambda s: s[:1].upper() + s[1:],
    ):
        forms += [change(f) for f in forms]
    return list(dict.fromkeys(forms))


def _bible_pairs(cfg: TranslateConfig) -> PairData:
    from rnnkit.datasets.extra import load_bible_verse_pairs

    src, tgt, groups = [], [], []
    for ref, en, es in load_bible_verse_pairs():
        en, es = _PILCROW.sub(" ", en).strip(), _PILCROW.sub(" ", es).strip()
        src.append(es if cfg.reverse else en)
        tgt.append(en if cfg.reverse else es)
        groups.append(ref.split(".")[0])
    return PairData(src, tgt, groups, "bible es->en" if cfg.reverse else "bible en->es")


def _user_table(cfg: TranslateConfig) -> PairData:
    # the readers' table parsing (format sniffing, header, JSON records) with source/target roles
    from rnnkit.datasets.readers import _column_index, _csv_rows, _json_records, _read_utf8, _table_format

    p = Path(cfg.data)
    name = p.name
    _, text = _read_utf8(p, f"data {name}")
    fmt, delim = _table_format(p, text, None)
    sc, tc = cfg.source_column, cfg.target_column
    src: list[str] = []
    tgt: list[str] = []
    if fmt == "csv":
        header, rows = _csv_rows(text, delim, name)
        si, ti = _column_index(header, sc, name, "source"), _column_index(header, tc, name, "target")
        for line, fields in rows:
            if len(fields) <= max(si, ti):
                raise RnnkitError(
                    f"{name} line {line}: expected at least {max(si, ti) + 1} fields "
                    f"({delim!r}-separated, like the header), got {len(fields)}"
                )
            src.append(fields[si].strip())
            tgt.append(fields[ti].strip())
            _check_pair(src[-1], tgt[-1], f"{name} line {line}")
    else:
        unit = "item" if fmt == "json" else "line"
        for where, record in _json_records(text, fmt, name):
            loc = f"{name} {unit} {where}"
            for column, role in ((sc, "source"), (tc, "target")):
                if column not in record:
                    raise RnnkitError(f"{loc}: expected a {role} key {column!r}, got keys {list(record)}")
                if not isinstance(record[column], str):
                    raise RnnkitError(
                        f"{loc}: expected a string in {column!r}, got {type(record[column]).__name__}"
                    )
            src.append(record[sc].strip())
            tgt.append(record[tc].strip())
            _check_pair(src[-1], tgt[-1], loc)
    return _finish_user(cfg, src, tgt, name)


def _user_text_files(cfg: TranslateConfig) -> PairData:
    from rnnkit.datasets.readers import _read_utf8

    def lines(path: str) -> list[str]:
        return _read_utf8(Path(path), f"data {Path(path).name}")[1].splitlines()

    src, tgt = lines(cfg.data), lines(cfg.target_file)
    a, b = Path(cfg.data).name, Path(cfg.target_file).name
    if len(src) != len(tgt):
        raise RnnkitError(
            f"expected line-aligned files, got {len(src)} lines in {a} and {len(tgt)} lines in {b}"
        )
    for i, (s, t) in enumerate(zip(src, tgt), start=1):
        if bool(s.strip()) != bool(t.strip()):
            raise RnnkitError(f"line {i}: one of {a} and {b} is empty and the other is not")
    kept = [(s.strip(), t.strip()) for s, t in zip(src, tgt) if s.strip()]
    return _finish_user(cfg, [s for s, _ in kept], [t for _, t in kept], f"{a}+{b}")


def _check_pair(source: str, target: str, loc: str) -> None:
    if not source or not target:
        role = "source" if not source else "target"
        raise RnnkitError(f"{loc}: expected a non-empty {role} sentence, got an empty cell")


def _finish_user(cfg: TranslateConfig, src: list[str], tgt: list[str], name: str) -> PairData:
    if len(src) < 3:
        raise RnnkitError(
            f"{name}: expected at least 3 sentence pairs (train, validation, test), got {len(src)}"
        )
    if cfg.reverse:
        src, tgt = tgt, src
    return PairData(src, tgt, None, name + (" (reversed)" if cfg.reverse else ""))


def load_pairs(cfg: TranslateConfig) -> PairData:
    """The configured sentence pairs, in the configured direction, filtered by ``max_words``."""
    if cfg.data == "num2words":
        data = _num2words_pairs(cfg)
    elif cfg.data == "bible":
        data = _bible_pairs(cfg)
    elif cfg.target_file is not None:
        data = _user_text_files(cfg)
    else:
        data = _user_table(cfg)
    limit = max_words(cfg)
    if limit:
        keep = [
            i
            for i, (s, t) in enumerate(zip(data.sources, data.targets))
            if len(s.split()) <= limit and len(t.split()) <= limit
        ]
        if not keep:
            raise RnnkitError(f"{data.name}: no pair has at most max_words={limit} words on each side")
        if data.spelling_of is not None:  # another spelling goes with its pair
            kept = set(keep)
            keep = [i for i in keep if data.spelling_of[i] in kept]
            new = {old: k for k, old in enumerate(keep)}
        data = PairData(
            [data.sources[i] for i in keep],
            [data.targets[i] for i in keep],
            None if data.groups is None else [data.groups[i] for i in keep],
            data.name,
            None if data.spelling_of is None else [new[data.spelling_of[i]] for i in keep],
        )
    return data


def max_words(cfg: TranslateConfig) -> int:
    """The length filter in force (0 = none): ``cfg.max_words`` or its automatic value."""
    if cfg.max_words is not None:
        return cfg.max_words
    return 20 if cfg.data == "bible" else 0


def split(cfg: TranslateConfig, data: PairData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(train, val, test)`` index arrays; fixed for a given config and data set.

    num2words: a seeded shuffle of the numbers (all pairs of one number on one side); bible with
    ``split="book"``: the books :data:`TEST_BOOKS` / :data:`VAL_BOOKS`; otherwise a seeded shuffle of pairs.
    """
    n = len(data)
    if cfg.data == "bible" and cfg.split == "book":
        books = np.array(data.groups)
        te = np.flatnonzero(np.isin(books, TEST_BOOKS))
        va = np.flatnonzero(np.isin(books, VAL_BOOKS))
        tr = np.flatnonzero(~np.isin(books, TEST_BOOKS + VAL_BOOKS))
        return tr, va, te
    if cfg.data == "num2words":
        names = sorted(set(data.groups), key=lambda g: (len(g), g))
        gtr, gva, gte = split_indices(len(names), cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
        side = np.zeros(len(names), dtype=np.int64)
        side[gva], side[gte] = 1, 2
        where = {g: side[i] for i, g in enumerate(names)}
        sides = np.array([where[g] for g in data.groups])
        return tuple(np.flatnonzero(sides == k) for k in (0, 1, 2))  # type: ignore[return-value]
    return split_indices(n, cfg.val_fraction, cfg.test_fraction, cfg.split_seed)


def own_spelling(data: PairData, idx) -> list[int]:
    """The pairs of ``idx`` in the data set's own spelling (all of them when it has no other spellings)."""
    if data.spelling_of is None:
        return list(idx)
    return [int(i) for i in idx if data.spelling_of[i] == i]


def spelling_units(data: PairData, idx, every: bool) -> list[list[int]]:
    """``idx`` grouped by the pair they spell: one list per own-spelling pair of ``idx``, that pair first,
    then (with ``every``) its other spellings in ``idx``."""
    units = {i: [i] for i in own_spelling(data, idx)}
    if every and data.spelling_of is not None:
        for i in idx:
            j = data.spelling_of[i]
            if j != i and j in units:
                units[j].append(int(i))
    return list(units.values())


def other_spellings(data: PairData, idx, seed: int) -> list[int]:
    """One other spelling of each own-spelling pair of ``idx`` that has any, drawn with ``seed`` (the split
    seed, so that a run and its ``evaluate`` score the same pairs)."""
    rng = np.random.default_rng(seed)
    units = spelling_units(data, range(len(data)), every=True)
    by_pair = {u[0]: u[1:] for u in units if len(u) > 1}
    return [int(rng.choice(by_pair[i])) for i in own_spelling(data, idx) if i in by_pair]


def scored_test_pairs(cfg: TranslateConfig, data: PairData, te) -> tuple[list[int], list[int]]:
    """What a run scores of its test part ``te``: the first ``eval_sentences`` pairs of the data set's own
    spelling (all with 0), and one other spelling of each of them (num2words' English numbers; else none)."""
    own = own_spelling(data, te)
    own = own[: cfg.eval_sentences] if cfg.eval_sentences else own
    return own, other_spellings(data, own, cfg.split_seed)


# -- subword vocabularies --------------------------------------------------------------------------------------
class SubwordVocab:
    """A SentencePiece model: text <-> subword ids, with ``<pad> <unk> <s> </s>`` at ids 0-3.

    Args:
        proto: the serialized SentencePiece model (what :meth:`save` writes).

    Example::

        vocab = SubwordVocab.train(["the house", "the blue house"], vocab_size=30)
        vocab.decode(vocab.encode("the house"))   # 'the house'
    """

    def __init__(self, proto: bytes):
        import sentencepiece as spm

        self.proto = bytes(proto)
        self.sp = spm.SentencePieceProcessor(model_proto=self.proto)
        if [self.sp.pad_id(), self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id()] != [PAD, UNK, BOS, EOS]:
            raise RnnkitError("a subword model must have <pad> <unk> <s> </s> at ids 0-3")

    @classmethod
    def train(
        cls, texts: list[str], vocab_size: int, model_type: str = "unigram", symbols: tuple[str, ...] = ()
    ) -> SubwordVocab:
        """Learn a vocabulary of at most ``vocab_size`` pieces (fewer when the texts are small)."""
        try:
            import sentencepiece as spm
        except ImportError:
            raise RnnkitError("subword vocabularies need sentencepiece: pip install 'rnnkit[apps]'") from None
        texts = [t for t in texts if t.strip()]
        if not texts:
            raise RnnkitError("cannot learn a subword vocabulary from no text")
        buf = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(texts),
                model_writer=buf,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=1.0,
                hard_vocab_limit=False,  # a small corpus gets the pieces it has
                pad_id=PAD,
                unk_id=UNK,
                bos_id=BOS,
                eos_id=EOS,
                user_defined_symbols=list(symbols),
                num_threads=1,
                minloglevel=2,
            )
        except RuntimeError as exc:
            raise RnnkitError(f"SentencePiece could not learn a vocabulary: {exc}") from None
        return cls(buf.getvalue())

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def pieces(self, text: str) -> list[str]:
        return self.sp.encode(text, out_type=str)

    def id_pieces(self, ids: list[int]) -> list[str]:
        return [self.sp.id_to_piece(int(i)) for i in ids]

    def decode(self, ids: list[int]) -> str:
        return self.sp.decode([i for i in ids if i > EOS])

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self.proto)

    @classmethod
    def load(cls, path: str | Path) -> SubwordVocab:
        p = Path(path)
        if not p.is_file():
            raise RnnkitError(f"expected a subword model file {p}, but it is missing")
        try:
            return cls(p.read_bytes())
        except RuntimeError:
            raise RnnkitError(f"{p} is not a SentencePiece model (damaged run?)") from None
        except RnnkitError as exc:  # an empty file parses as a model without the special pieces
            raise RnnkitError(f"{p} is not a subword model of a run (damaged run?): {exc}") from None


def vocab_size(cfg: TranslateConfig) -> int:
    """The subword vocabulary size in force: ``cfg.vocab_size`` or its automatic value."""
    if cfg.vocab_size is not None:
        return cfg.vocab_size
    return {"bible": 4000, "num2words": 200}.get(cfg.data, 2000)


def train_vocabularies(
    cfg: TranslateConfig, sources: list[str], targets: list[str]
) -> tuple[SubwordVocab, SubwordVocab]:
    """``(source vocab, target vocab)`` learnt from training sentences; the same object when shared."""
    tags = tuple(sorted({s.split(" ", 1)[0] for s in sources if s.startswith("<2")}))
    size = vocab_size(cfg)
    if cfg.shared_vocab:
        shared = SubwordVocab.train(sources + targets, 2 * size if size > 8 else size, cfg.tokenizer, tags)
        return shared, shared
    return (
        SubwordVocab.train(sources, size, cfg.tokenizer, tags),
        SubwordVocab.train(targets, size, cfg.tokenizer),
    )


def copy_map(src: SubwordVocab, tgt: SubwordVocab) -> torch.Tensor:
    """Copy attention's map: for each source subword id, the target id of the subword spelt the same, or -1
    (none, and for ``<pad> <unk> <s> </s>`` and the language tags ``<2xx>``). A shared vocabulary maps each
    ordinary subword to itself."""
    ids = torch.full((len(src),), -1, dtype=torch.long)
    for i, piece in enumerate(src.id_pieces(list(range(EOS + 1, len(src))))):
        j = tgt.sp.piece_to_id(piece)
        if (
            not (piece.startswith("<2") and piece.endswith(">"))
            and j > EOS
            and tgt.sp.id_to_piece(j) == piece
        ):
            ids[i + EOS + 1] = j
    return ids


def encode_sources(vocab: SubwordVocab, sources: list[str]) -> list[list[int]]:
    """Subword ids of each source; an empty encoding becomes ``[<unk>]`` (the encoder needs a step)."""
    return [vocab.encode(s) or [UNK] for s in sources]


def encode_targets(vocab: SubwordVocab, targets: list[str]) -> list[list[int]]:
    """Subword ids of each target followed by ``</s>``."""
    return [vocab.encode(t) + [EOS] for t in targets]


def collate(src: list[list[int]], tgt: list[list[int]] | None = None) -> dict[str, torch.Tensor]:
    """Right-padded batch: src (B, S), src_lengths (B,), and tgt (B, T), tgt_lengths (B,) when given."""

    def pad(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = torch.tensor([len(x) for x in seqs])
        out = torch.full((len(seqs), int(lengths.max())), PAD, dtype=torch.long)
        for i, x in enumerate(seqs):
            out[i, : len(x)] = torch.tensor(x)
        return out, lengths

    batch = {}
    batch["src"], batch["src_lengths"] = pad(src)
    if tgt is not None:
        batch["tgt"], batch["tgt_lengths"] = pad(tgt)
    return batch


def batches(
    src: list[list[int]], tgt: list[list[int]], batch_size: int, order: list[int], pool: int = 32
) -> list[dict[str, torch.Tensor]]:
    """Batches in ``order``, except that each run of ``pool`` batches is sorted by source length first.

    Sentences of similar length share a batch, so little time is spent on padding; the batches are then
    put back in the shuffled order of their first sentence, so an epoch still sees them at random.
    """
    out = []
    span = batch_size * pool
    for a in range(0, len(order), span):
        chunk = sorted(order[a : a + span], key=lambda i: len(src[i]))
        group = [chunk[s : s + batch_size] for s in range(0, len(chunk), batch_size)]
        rank = {i: k for k, i in enumerate(order[a : a + span])}
        group.sort(key=lambda b: min(rank[i] for i in b))
        out += [collate([src[i] for i in b], [tgt[i] for i in b]) for b in group]
    return out
