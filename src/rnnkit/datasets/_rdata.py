"""A small, stdlib-only reader for R's XDR serialization and lazy-load databases.

Enough of R's ``serialize()`` format (binary XDR, versions 2 and 3) to read data objects: vectors
(logical, integer, double, complex, character, raw, generic lists), pairlists with tags and
attributes, symbols, back-references and the common ALTREP compact sequences. Code objects
(closures, byte code, external pointers) are refused with a clear error.

A lazy-load database is the pair ``NAME.rdx`` (index) and ``NAME.rdb`` (records) that R packages use
for their data sets::

    objects = read_lazyload_db(rdx_bytes, rdb_bytes)   # {"emma": RVector(["EMMA", ...]), ...}
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import zlib
from typing import Any

from rnnkit._errors import RnnkitError

# SEXP type codes (R internals, serialize.c).
_NILSXP, _SYMSXP, _LISTSXP, _CLOSXP, _ENVSXP, _PROMSXP, _LANGSXP = 0, 1, 2, 3, 4, 5, 6
_CHARSXP, _LGLSXP, _INTSXP, _REALSXP, _CPLXSXP, _STRSXP = 9, 10, 13, 14, 15, 16
_DOTSXP, _VECSXP, _EXPRSXP, _RAWSXP, _S4SXP = 17, 19, 20, 24, 25
_ALTREP_SXP, _ATTRLISTSXP, _ATTRLANGSXP = 238, 239, 240
_BASEENV_SXP, _EMPTYENV_SXP = 241, 242
_PERSISTSXP, _PACKAGESXP, _NAMESPACESXP, _BASENAMESPACE_SXP = 247, 248, 249, 250
_MISSINGARG_SXP, _UNBOUNDVALUE_SXP, _GLOBALENV_SXP, _NILVALUE_SXP, _REFSXP = 251, 252, 253, 254, 255

_PAIR_TYPES = {_LISTSXP, _LANGSXP, _CLOSXP, _PROMSXP, _DOTSXP, _ATTRLISTSXP, _ATTRLANGSXP}
_TYPE_NAMES = {
    _LGLSXP: "logical",
    _INTSXP: "integer",
    _REALSXP: "double",
    _CPLXSXP: "complex",
    _STRSXP: "character",
    _VECSXP: "list",
    _EXPRSXP: "expression",
    _RAWSXP: "raw",
}
_NA_INTEGER = -(2**31)
# CHARSXP encoding flags, stored in the "levels" bits of the item header.
_BYTES_MASK, _LATIN1_MASK, _UTF8_MASK, _ASCII_MASK = 1 << 1, 1 << 2, 1 << 3, 1 << 6


class RVector(list):
    """An R vector as a Python list, plus its R type name and attributes.

    ``NA`` values become ``None``; integers and doubles stay Python ``int``/``float``.
    """

    def __init__(self, items: Any = (), rtype: str = "list", attributes: dict[str, Any] | None = None):
        super().__init__(items)
        self.rtype = rtype
        self.attributes = attributes or {}

    @property
    def names(self) -> list[str] | None:
        """The ``names`` attribute, or ``None``."""
        names = self.attributes.get("names")
        return list(names) if names is not None else None

    def as_dict(self) -> dict[str, Any]:
        """A named R list as a Python dict (names must be present)."""
        names = self.names
        if names is None:
            raise RnnkitError(f"expected a named R {self.rtype} vector, got one without names")
        return dict(zip(names, self))


class RSymbol(str):
    """An R symbol (name)."""


class RPairList(list):
    """An R pairlist as a list of ``(tag or None, value)`` pairs, plus attributes."""

    def __init__(self, items: Any = (), rtype: str = "pairlist", attributes: dict[str, Any] | None = None):
        super().__init__(items)
        self.rtype = rtype
        self.attributes = attributes or {}


class RSpecial:
    """A singleton R value such as the global environment or the missing argument."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<R {self.name}>"


class REnvironment:
    """An R environment: its variables (frame) and enclosing environment."""

    def __init__(self) -> None:
        self.variables: dict[str, Any] = {}
        self.enclosure: Any = None
        self.attributes: dict[str, Any] = {}


class _Reader:
    def __init__(self, data: bytes):
        self.data = memoryview(data)
        self.pos = 0
        self.refs: list[Any] = []
        self.native_encoding = "utf-8"

    # -- primitives -----------------------------------------------------------------------------------
    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise RnnkitError(
                f"truncated R serialized data: wanted {n} bytes at offset {self.pos}, "
                f"only {len(self.data) - self.pos} left"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def length(self) -> int:
        n = self.int()
        if n == -1:  # long vector: two more 32-bit words
            upper, lower = struct.unpack(">II", self.take(8))
            n = (upper << 32) + lower
        if n < 0:
            raise RnnkitError(f"bad vector length {n} in R serialized data at offset {self.pos}")
        return n

    # -- header -----------------------------------------------------------------------------------------
    def header(self) -> None:
        magic = bytes(self.take(2))
        if magic != b"X\n":
            raise RnnkitError(
                f"expected R binary XDR serialization (starts with b'X\\n'), got {magic!r}; "
                "ASCII and native-binary R files are not supported"
            )
        version = self.int()
        self.int()  # R version that wrote it
        self.int()  # minimal R version to read it
        if version == 3:
            self.native_encoding = bytes(self.take(self.int())).decode("ascii", "replace") or "utf-8"
        elif version != 2:
            raise RnnkitError(f"expected R serialization version 2 or 3, got {version}")

    # -- items ------------------------------------------------------------------------------------------
    def item(self) -> Any:
        flags = self.int()
        sxp = flags & 0xFF
        levels = flags >> 12
        has_attr = bool(flags & (1 << 9))
        has_tag = bool(flags & (1 << 10))

        if sxp == _NILVALUE_SXP:
            return None
        if sxp == _REFSXP:
            index = flags >> 8 or self.int()
            if not 1 <= index <= len(self.refs):
                raise RnnkitError(f"bad R back-reference {index} (table has {len(self.refs)} entries)")
            return self.refs[index - 1]
        if sxp in _SPECIALS:
            return _SPECIALS[sxp]
        if sxp == _SYMSXP:
            symbol = RSymbol(self.item() or "")
            self.refs.append(symbol)
            return symbol
        if sxp in (_PACKAGESXP, _NAMESPACESXP, _PERSISTSXP):
            self.int()  # always 0
            names = [self.item() for _ in range(self.int())]
            value = RVector(
                names, {_PACKAGESXP: "package", _NAMESPACESXP: "namespace"}.get(sxp, "persistent")
            )
            self.refs.append(value)
            return value
        if sxp == _ENVSXP:
            return self.environment()
        if sxp in _PAIR_TYPES:
            return self.pairlist(sxp, has_attr, has_tag)
        if sxp == _ALTREP_SXP:
            return self.altrep()
        if sxp == _CHARSXP:
            return self.charsxp(levels)

        value: Any
        if sxp in (_LGLSXP, _INTSXP):
            n = self.length()
            raw = struct.unpack(f">{n}i", self.take(4 * n))
            if sxp == _LGLSXP:
                items: list[Any] = [None if x == _NA_INTEGER else bool(x) for x in raw]
            else:
                items = [None if x == _NA_INTEGER else x for x in raw]
            value = RVector(items, _TYPE_NAMES[sxp])
        elif sxp == _REALSXP:
            n = self.length()
            value = RVector(struct.unpack(f">{n}d", self.take(8 * n)), "double")
        elif sxp == _CPLXSXP:
            n = self.length()
            parts = struct.unpack(f">{2 * n}d", self.take(16 * n))
            value = RVector([complex(parts[i], parts[i + 1]) for i in range(0, 2 * n, 2)], "complex")
        elif sxp == _STRSXP:
            n = self.length()
            value = RVector([self.item() for _ in range(n)], "character")
        elif sxp in (_VECSXP, _EXPRSXP):
            n = self.length()
            value = RVector([self.item() for _ in range(n)], _TYPE_NAMES[sxp])
        elif sxp == _RAWSXP:
            n = self.length()
            value = RVector(bytes(self.take(n)), "raw")
        elif sxp == _S4SXP:
            value = RVector([], "S4")
        else:
            raise RnnkitError(
                f"unsupported R object type {sxp} at offset {self.pos - 4}: only data objects "
                "(vectors, lists, pairlists, symbols) can be read, not code"
            )
        if has_attr:
            value.attributes = self.attributes_of(self.item())
        return value

    def charsxp(self, levels: int) -> str | bytes | None:
        n = self.int()
        if n == -1:
            return None  # NA_character_
        raw = bytes(self.take(n))
        if levels & _BYTES_MASK:
            return raw
        if levels & _LATIN1_MASK:
            return raw.decode("latin-1")
        encoding = "utf-8" if levels & (_UTF8_MASK | _ASCII_MASK) else self.native_encoding
        try:
            return raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            return raw.decode("latin-1")

    def pairlist(self, sxp: int, has_attr: bool, has_tag: bool) -> RPairList:
        # Walk the CDR chain in a loop: long pairlists would otherwise recurse once per element.
        rtype = "language" if sxp in (_LANGSXP, _ATTRLANGSXP) else "pairlist"
        result = RPairList(rtype=rtype)
        while True:
            attributes = self.item() if has_attr else None
            tag = self.item() if has_tag else None
            if sxp in (_CLOSXP, _PROMSXP):
                raise RnnkitError("R closures and promises (code) are not supported; only data objects")
            result.append((None if tag is None else str(tag), self.item()))
            if attributes is not None and len(result) == 1:
                result.attributes = self.attributes_of(attributes)
            flags = self.int()
            sxp = flags & 0xFF
            if sxp not in _PAIR_TYPES:
                self.pos -= 4  # not a pair cell: let item() read the tail (usually NULL)
                tail = self.item()
                if tail is not None:
                    result.append((None, tail))
                return result
            has_attr = bool(flags & (1 << 9))
            has_tag = bool(flags & (1 << 10))

    def environment(self) -> REnvironment:
        env = REnvironment()
        self.refs.append(env)  # registered before its contents, which may refer back to it
        self.int()  # locked flag
        env.enclosure = self.item()
        frame = self.item()
        hashtab = self.item()
        attributes = self.item()
        if isinstance(frame, RPairList):
            env.variables.update((tag, value) for tag, value in frame if tag is not None)
        if isinstance(hashtab, RVector):
            for bucket in hashtab:
                if isinstance(bucket, RPairList):
                    env.variables.update((tag, value) for tag, value in bucket if tag is not None)
        env.attributes = self.attributes_of(attributes)
        return env

    def altrep(self) -> Any:
        info = self.item()
        state = self.item()
        attributes = self.item()
        class_name = str(info[0][1]) if isinstance(info, RPairList) and info else "?"
        if class_name in ("compact_intseq", "compact_realseq"):
            n, start, step = (state[0], state[1], state[2]) if len(state) >= 3 else (0, 0, 1)
            items = [start + step * i for i in range(int(n))]
            if class_name == "compact_intseq":
                value = RVector([int(x) for x in items], "integer")
            else:
                value = RVector([float(x) for x in items], "double")
        elif class_name.startswith("wrap_") and isinstance(state, RVector) and state:
            inner = state[0]
            value = RVector(inner, getattr(inner, "rtype", "list"), dict(getattr(inner, "attributes", {})))
        elif class_name == "deferred_string" and isinstance(state, RPairList) and state:
            source = state[0][1]
            value = RVector([None if x is None else _format_number(x) for x in source], "character")
        else:
            raise RnnkitError(f"unsupported R ALTREP class {class_name!r} in serialized data")
        if attributes is not None:
            value.attributes = self.attributes_of(attributes)
        return value

    @staticmethod
    def attributes_of(pairs: Any) -> dict[str, Any]:
        if pairs is None:
            return {}
        if not isinstance(pairs, RPairList):
            raise RnnkitError(f"expected an R attribute pairlist, got {type(pairs).__name__}")
        return {str(tag): value for tag, value in pairs if tag is not None}


def _format_number(x: Any) -> str:
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


_SPECIALS = {
    _GLOBALENV_SXP: RSpecial("global environment"),
    _EMPTYENV_SXP: RSpecial("empty environment"),
    _BASEENV_SXP: RSpecial("base environment"),
    _BASENAMESPACE_SXP: RSpecial("base namespace"),
    _UNBOUNDVALUE_SXP: RSpecial("unbound value"),
    _MISSINGARG_SXP: RSpecial("missing argument"),
}


def unserialize(data: bytes) -> Any:
    """Decode one R object serialized in XDR format (what ``serialize(x, NULL)`` returns).

    Example: ``unserialize(raw)`` -> ``RVector(["a", "b"], rtype="character")``.
    """
    reader = _Reader(data)
    reader.header()
    return reader.item()


def _raw_lzma2(payload: bytes) -> bytes:
    """R's xz records: a raw LZMA2 stream, no container (R's ``R_compress3``)."""
    return lzma.LZMADecompressor(
        lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 9}]
    ).decompress(payload)


_RECORD_KINDS = {b"Z": _raw_lzma2, b"2": bz2.decompress, b"1": zlib.decompress, b"0": bytes}
"""The type byte after the size of a record compressed by method 2 (bzip2) or 3 (xz), as R writes it."""


def _decompress_record(record: bytes, method: int) -> bytes:
    """One lazy-load record: 4-byte big-endian uncompressed size, then the payload: zlib for method 1 (R's
    ``compress = TRUE``); for methods 2 and 3 a type byte first (``Z``: raw LZMA2, ``2``: bzip2, ``1``:
    zlib, ``0``: stored), as R's base packages use (``datasets`` is method 3)."""
    if len(record) < 4:
        raise RnnkitError(f"lazy-load record too short ({len(record)} bytes)")
    size = struct.unpack(">I", record[:4])[0]
    if method == 1:
        payload, decompress = record[4:], zlib.decompress
    else:
        kind, payload = record[4:5], record[5:]
        decompress = _RECORD_KINDS.get(kind)
        if decompress is None:
            raise RnnkitError(
                f"unknown lazy-load compression type {kind!r}; expected one of "
                f"{', '.join(map(repr, _RECORD_KINDS))}"
            )
    try:
        out = decompress(payload)
    except (zlib.error, OSError, ValueError, EOFError, lzma.LZMAError) as exc:
        raise RnnkitError(f"corrupt lazy-load record: cannot decompress ({exc})") from None
    if len(out) != size:
        raise RnnkitError(
            f"corrupt lazy-load record: expected {size} bytes after decompression, got {len(out)}"
        )
    return out


def read_lazyload_db(rdx: bytes, rdb: bytes, names: list[str] | None = None) -> dict[str, Any]:
    """Read the objects of an R lazy-load database (``.rdx`` index bytes, ``.rdb`` record bytes).

    Returns ``{name: object}`` for every variable (or just ``names``) in the index.
    """
    if rdx[:2] == b"\x1f\x8b":  # newer R writes the index with gzip
        index_bytes = gzip.decompress(rdx)
    else:
        index_bytes = _decompress_record(rdx, 1)
    index = unserialize(index_bytes)
    if not isinstance(index, RVector) or index.names is None or "variables" not in index.names:
        raise RnnkitError("expected an R lazy-load index (a list with 'variables'), got something else")
    entries = index.as_dict()
    compressed = entries.get("compressed")
    method = 1 if not compressed or compressed[0] is True else int(compressed[0])
    variables = entries["variables"].as_dict()
    wanted = list(variables) if names is None else names
    result = {}
    for name in wanted:
        if name not in variables:
            raise RnnkitError(f"R database has no object {name!r}; it has {sorted(variables)}")
        offset, length = variables[name][:2]
        if offset + length > len(rdb):
            raise RnnkitError(f"R database record {name!r} lies past the end of the .rdb file")
        result[name] = unserialize(_decompress_record(rdb[offset : offset + length], method))
    return result


def read_rda(data: bytes) -> dict[str, Any]:
    """Objects of an ``.rda``/``.RData`` file (what R's ``save()`` writes) as ``{name: object}``.

    The file is gzip-, bzip2- or xz-compressed (or plain), starts with ``RDX2\\n`` or ``RDX3\\n`` and
    then holds one XDR-serialized pairlist of named objects.
    """
    for magic, decompress in (
        (b"\x1f\x8b", gzip.decompress),
        (b"BZh", bz2.decompress),
        (b"\xfd7zXZ", lzma.decompress),
    ):
        if data.startswith(magic):
            try:
                data = decompress(data)
            except (OSError, ValueError, EOFError, lzma.LZMAError) as exc:
                raise RnnkitError(f"corrupt .rda file: cannot decompress ({exc})") from None
            break
    if data[:5] not in (b"RDX2\n", b"RDX3\n"):
        raise RnnkitError(f"expected an R save() file starting with RDX2 or RDX3, got {bytes(data[:5])!r}")
    objects = unserialize(data[5:])
    if not isinstance(objects, RPairList):
        raise RnnkitError(
            f"expected a pairlist of named objects in the .rda file, got {type(objects).__name__}"
        )
    return {tag: value for tag, value in objects if tag is not None}
