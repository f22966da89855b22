"""Token vocabularies for character-level and word-level models, saved as JSON (never pickled)."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rnnkit._errors import RnnkitError
from rnnkit.files import write_json

__all__ = ["Vocabulary", "tokenize_words"]

_WORD_RE = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
_FORMAT = "rnnkit.vocabulary"
_VERSION = 1
_LEVELS = ("char", "word")


def tokenize_words(text: str) -> list[str]:
    """Lower-case ``text`` and split it into words and punctuation marks.

    A word is a run of letters/digits/underscores, with inner apostrophes kept (``"don't"``); every
    other non-space character is its own token. Example::

        tokenize_words("Hello, World! Don't panic.")
        # ['hello', ',', 'world', '!', "don't", 'panic', '.']
    """
    return _WORD_RE.findall(text.lower())


class Vocabulary:
    """A bidirectional token <-> id map with special tokens.

    Ids: ``<pad>`` = 0, ``<unk>`` = 1, then ``<bos>`` = 2 and ``<eos>`` = 3 when ``bos_eos=True``, then the
    ordinary tokens. ``level="char"`` treats each character as a token; ``level="word"`` uses
    :func:`tokenize_words` (so word vocabularies are lower-case and decode with single spaces).

    Example::

        vocab = Vocabulary.build(["hello world", "help"], level="char")
        ids = vocab.encode("hello")        # [4, 3, 2, 2, 5]: frequent tokens get small ids
        vocab.decode(ids)                  # 'hello'
        vocab.to_json("vocab.json"); Vocabulary.from_json("vocab.json") == vocab   # True
    """

    PAD = "<pad>"
    UNK = "<unk>"
    BOS = "<bos>"
    EOS = "<eos>"
    pad_id = 0
    unk_id = 1

    def __init__(self, tokens: Iterable[str] = (), level: str = "char", bos_eos: bool = False):
        if level not in _LEVELS:
            raise RnnkitError(f"expected level 'char' or 'word', got {level!r}")
        self.level = level
        self.bos_eos = bool(bos_eos)
        specials = [self.PAD, self.UNK] + ([self.BOS, self.EOS] if self.bos_eos else [])
        self._tokens: list[str] = list(specials)
        self._ids: dict[str, int] = {t: i for i, t in enumerate(specials)}
        for token in tokens:
            if not isinstance(token, str) or not token:
                raise RnnkitError(f"expected non-empty string tokens, got {token!r}")
            if level == "char" and len(token) != 1:
                raise RnnkitError(f"expected single characters in a char vocabulary, got {token!r}")
            if token in self._ids:
                raise RnnkitError(f"expected distinct tokens (and no special tokens), got {token!r} twice")
            self._ids[token] = len(self._tokens)
            self._tokens.append(token)
        self._special_ids = frozenset(range(len(specials)))

    # -- construction ---------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        level: str = "char",
        min_freq: int = 1,
        max_size: int | None = None,
        bos_eos: bool = False,
    ) -> Vocabulary:
        """Count tokens in ``texts`` and keep those seen at least ``min_freq`` times.

        Tokens are ordered by decreasing count, ties alphabetically, so the result is deterministic.
        ``max_size`` caps the total size *including* the special tokens.
        """
        if isinstance(texts, str):
            raise RnnkitError("expected an iterable of texts, got a single str (wrap it in a list)")
        if not isinstance(min_freq, int) or min_freq < 1:
            raise RnnkitError(f"expected min_freq >= 1, got {min_freq!r}")
        n_special = 4 if bos_eos else 2
        if max_size is not None and (not isinstance(max_size, int) or max_size < n_special):
            raise RnnkitError(f"expected max_size >= {n_special} (the special tokens), got {max_size!r}")
        probe = cls(level=level, bos_eos=bos_eos)
        counts: Counter[str] = Counter()
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise RnnkitError(f"expected str texts, got {type(text).__name__} at position {i}")
            counts.update(probe.tokenize(text))
        for special in probe._tokens:
            counts.pop(special, None)
        ranked = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[: max_size - n_special]
        return cls(ranked, level=level, bos_eos=bos_eos)

    # -- lookups --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return (self.level, self.bos_eos, self._tokens) == (other.level, other.bos_eos, other._tokens)

    __hash__ = None  # mutable-looking container semantics; compare by content

    def __repr__(self) -> str:
        return f"Vocabulary(level={self.level!r}, size={len(self)}, bos_eos={self.bos_eos})"

    @property
    def tokens(self) -> list[str]:
        """All tokens in id order (a copy), specials first."""
        return list(self._tokens)

    @property
    def bos_id(self) -> int:
        """Id of ``<bos>`` (2); raises ``RnnkitError`` when the vocabulary has no ``<bos>``/``<eos>``."""
        self._need_bos_eos()
        return 2

    @property
    def eos_id(self) -> int:
        """Id of ``<eos>`` (3); raises ``RnnkitError`` when the vocabulary has no ``<bos>``/``<eos>``."""
        self._need_bos_eos()
        return 3

    def _need_bos_eos(self) -> None:
        if not self.bos_eos:
            raise RnnkitError("expected a vocabulary with <bos>/<eos>, got one built with bos_eos=False")

    def token_to_id(self, token: str) -> int:
        """Id of ``token``, or ``unk_id`` for an unknown token."""
        return self._ids.get(token, self.unk_id)

    def id_to_token(self, index: int) -> str:
        """Token with id ``index``; raises ``RnnkitError`` when out of range."""
        i = int(index)
        if not 0 <= i < len(self._tokens):
            raise RnnkitError(f"expected a token id in [0, {len(self._tokens)}), got {i}")
        return self._tokens[i]

    # -- text <-> ids ---------------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[str]:
        """Characters (char level) or :func:`tokenize_words` tokens (word level) of ``text``."""
        return list(text) if self.level == "char" else tokenize_words(text)

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Token ids of ``text`` (length L, plus 1 for each of ``add_bos``/``add_eos``); unknown -> 1."""
        if not isinstance(text, str):
            raise RnnkitError(f"expected a str to encode, got {type(text).__name__}")
        ids = [self._ids.get(t, self.unk_id) for t in self.tokenize(text)]
        if add_bos:
            ids.insert(0, self.bos_id)
        if add_eos:
            ids.append(self.eos_id)
        return ids

    def decode(self, ids: Iterable[Any], skip_special: bool = True) -> str:
        """Text for a 1-D sequence of ids (list, numpy array or tensor).

        ``<pad>``, ``<bos>`` and ``<eos>`` are dropped when ``skip_special`` (``<unk>`` is always shown as
        ``"<unk>"``). Char tokens are concatenated, word tokens joined with one space.
        """
        pieces = []
        for index in ids:
            try:
                i = int(index)
            except (TypeError, ValueError):
                raise RnnkitError(f"expected integer token ids, got {index!r}") from None
            if skip_special and i in self._special_ids and i != self.unk_id:
                continue
            pieces.append(self.id_to_token(i))
        return ("" if self.level == "char" else " ").join(pieces)

    # -- JSON -----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able description: format tag, version, level, bos_eos and the token list."""
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "level": self.level,
            "bos_eos": self.bos_eos,
            "tokens": list(self._tokens),
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "vocabulary data") -> Vocabulary:
        """Rebuild a vocabulary from :meth:`to_dict` output, validating every field."""
        if not isinstance(data, dict):
            raise RnnkitError(f"{source}: expected a JSON object, got {type(data).__name__}")
        if data.get("format") != _FORMAT:
            raise RnnkitError(f"{source}: expected format {_FORMAT!r}, got {data.get('format')!r}")
        if data.get("version") != _VERSION:
            raise RnnkitError(f"{source}: expected version {_VERSION}, got {data.get('version')!r}")
        level, bos_eos, tokens = data.get("level"), data.get("bos_eos"), data.get("tokens")
        if level not in _LEVELS:
            raise RnnkitError(f"{source}: expected level 'char' or 'word', got {level!r}")
        if not isinstance(bos_eos, bool):
            raise RnnkitError(f"{source}: expected bos_eos true/false, got {bos_eos!r}")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise RnnkitError(f"{source}: expected 'tokens' to be a list of strings")
        specials = [cls.PAD, cls.UNK] + ([cls.BOS, cls.EOS] if bos_eos else [])
        if tokens[: len(specials)] != specials:
            raise RnnkitError(
                f"{source}: expected the token list to start with {specials}, got {tokens[: len(specials)]}"
            )
        try:
            return cls(tokens[len(specials) :], level=level, bos_eos=bos_eos)
        except RnnkitError as exc:
            raise RnnkitError(f"{source}: {exc}") from None

    def to_json(self, path: str | os.PathLike) -> None:
        """Write the vocabulary to a UTF-8 JSON file (atomically: temp file then rename)."""
        write_json(path, self.to_dict())

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> Vocabulary:
        """Load a vocabulary written by :meth:`to_json`; ``RnnkitError`` for a missing or invalid file."""
        p = Path(path)
        if not p.is_file():
            raise RnnkitError(f"expected a vocabulary JSON file, got {str(p)!r} which does not exist")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise RnnkitError(f"{p.name}: expected UTF-8 JSON, got undecodable bytes") from None
        except json.JSONDecodeError as exc:
            raise RnnkitError(
                f"{p.name}: expected JSON, got a syntax error at line {exc.lineno}: {exc.msg}"
            ) from None
        return cls.from_dict(data, source=p.name)
