"""A saved music run, loaded: tunes in a chosen meter and key as ABC, MIDI and piano roll; held-out scores."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import load_baseline_net
from rnnkit.apps.base import load_app_config, load_run_model
from rnnkit.apps.music.abc import AbcSkip, parse_key, tokens_to_abc, transpose_tokens
from rnnkit.apps.music.config import GenerateMusicConfig
from rnnkit.apps.music.data import APP
from rnnkit.apps.music.model import check_prefix, sample_tunes
from rnnkit.apps.rundir import open_run, read_json
from rnnkit.config import validate_config
from rnnkit.datasets import Vocabulary

__all__ = ["MusicGenerator", "generate", "load", "write_tunes"]

_log = logging.getLogger("rnnkit.music")


class MusicGenerator:
    """A trained music run, loaded: ``tunes(meter, key, ...)`` returns token lists, ``generate`` writes files."""

    def __init__(self, path):
        from rnnkit.models import LanguageModel

        self.run, self.manifest, self.config = _open_music_run(path)
        self.model = load_run_model(self.run, LanguageModel)
        try:
            self.vocab = Vocabulary.from_json(self.run / "vocab.json")
        except RnnkitError as exc:
            raise RnnkitError(f"run {self.run.name}: damaged vocabulary: {exc}") from None
        if len(self.vocab) != self.model.config.vocab_size:
            raise RnnkitError(f"run {self.run.name}: vocab.json does not match the model (damaged run?)")

    def tunes(self, gen: GenerateMusicConfig) -> list[list[str]]:
        """``gen.num_samples`` tunes as token lists, in ``gen.key`` when given (else in C)."""
        meter = gen.meter.replace(" ", "")
        meter = {"C": "4/4", "C|": "2/2"}.get(meter, meter)
        key_token = ""
        if gen.key:
            try:
                mode = parse_key(gen.key)[2]
            except AbcSkip:
                raise RnnkitError(
                    f"--key: expected a key such as G, Dmix, Ador, Em or Bb, got {gen.key!r}"
                ) from None
            key_token = f"K:C{mode}"
        check_prefix(self.vocab, meter, key_token)
        prefix = [f"M:{meter}"] if meter else []
        if key_token and prefix:
            prefix.append(key_token)
        # a key without a meter: the meter is drawn first, then the key follows it
        out = sample_tunes(self.model, self.vocab, [prefix] * gen.num_samples, gen, key=key_token)
        if gen.key:
            moved = []
            for t in out:
                try:
                    moved.append(transpose_tokens(t, gen.key)[0])
                except AbcSkip as exc:  # a pitch that cannot be spelled in the key: keep the tune in C
                    del exc
                    moved.append(t)
            out = moved
        return out

    def evaluate(self, data: str | Path | None = None, samples: int | None = None) -> dict[str, Any]:
        """Bits per token of the run's held-out test tunes, or of every tune of ``data`` (an ABC or MIDI
        file or folder, read as training read its data), computed again with the current code. On the same
        tokens: the Kneser-Ney n-gram as training fitted it (``kneser_ney``, the order chosen on the run's
        validation tunes: ``kneser_ney_order``; refitted from the stream saved in the run, so ``data`` needs no
        access to the run's own data; a run saved before 4 Dec 2026 fits it again on its training tunes) and the
        run's feed-forward counterpart (``feedforward``)
        where it has one. ``samples`` tunes are generated with the test tunes' meters and keys and checked
        (validity, histograms; default: the run's ``eval_samples``; 0: none)."""
        from rnnkit.apps.music.data import load_tunes, split_tunes_by_index
        from rnnkit.apps.music.model import bits, encode_tune, tune_nats
        from rnnkit.apps.music.report import NGRAM_FILE, load_ngram, ngram_bits, stream_bits
        from rnnkit.apps.music.train import score_generation
        from rnnkit.baselines import FixedContextLM

        cfg = self.config
        if samples is not None:
            cfg = replace(cfg, eval_samples=samples)
        saved = self.run / "ngram.json"  # runs since 4 Dec 2026 keep the n-gram's stream
        train = val = test = []
        if data is None or not saved.is_file():  # else the run's own data are not needed
            train, val, test = split_tunes_by_index(load_tunes(cfg)[0], cfg)
        where = f"held-out test tunes of {cfg.data}"
        if data is not None:
            test, _ = load_tunes(replace(cfg, data=str(data), max_tunes=0))
            where = Path(data).name
            if not test:
                raise RnnkitError(f"{where}: expected tunes to score, found none that could be read")
        test_tokens = [t["tokens"] for t in test]
        nats = tune_nats(self.model, [encode_tune(t, self.vocab) for t in test_tokens])
        out: dict[str, Any] = {
            "data": f"{where} ({len(test):,} tunes, {len(nats):,} tokens scored)",
            "bits_per_token": bits(nats),
        }
        # the n-gram as training fitted it (order chosen on the validation tunes, or on training ones without)
        if saved.is_file():
            try:
                lm = load_ngram(
                    self.run / NGRAM_FILE, str(read_json(saved, f"run {self.run.name}")["sha256"])
                )
            except (RnnkitError, KeyError, TypeError) as exc:
                raise RnnkitError(f"run {self.run.name}: cannot load its n-gram: {exc}") from None
            out["kneser_ney"], out["kneser_ney_order"] = stream_bits(lm, test_tokens), lm.order
        else:  # an older run: fitted again on its training tunes
            train_tokens, val_tokens = [t["tokens"] for t in train], [t["tokens"] for t in val]
            ngram = ngram_bits(
                train_tokens, val_tokens or train_tokens[:50], test_tokens, cfg.ngram_max_order
            )
            out["kneser_ney"], out["kneser_ney_order"] = ngram["bits"], ngram["order"]
        ff = load_baseline_net(self.run, FixedContextLM, "lm")
        if ff is not None:
            out["feedforward"] = stream_bits(ff, test_tokens)
        if cfg.eval_samples:  # no samples: no generation scores (as in training)
            gen = score_generation(self.model, self.vocab, cfg, test_tokens, lambda *_: None)
            out["generated_valid_share"] = gen["valid_share"]
            out["generated_unconstrained_valid_share"] = gen["unconstrained_valid_share"]
            out["generated_samples"] = gen["samples"]
        return out

    def generate(self, out_dir, gen: GenerateMusicConfig) -> list[Path]:
        """Write ``tune_N.abc``, ``tune_N.mid``, ``tune_N.png`` and (``gen.wav``, a synthesiser installed)
        ``tune_N.wav`` for each tune into ``out_dir``."""
        return write_tunes(self.tunes(gen), Path(out_dir), title=f"rnnkit {self.run.name}", wav=gen.wav)


def _open_music_run(path):
    """``(run path, manifest, MusicConfig)``; like :func:`rnnkit.apps.base.open_app_run`, which needs the
    application in ``rnnkit.apps.APP_NAMES`` (the CLI's list, which music joins when it is wired in)."""
    run, manifest = open_run(path, APP)
    return run, manifest, load_app_config(run, manifest)


def write_tunes(
    tunes: list[list[str]], out_dir: Path, title: str = "rnnkit", wav: bool = False
) -> list[Path]:
    """ABC text, MIDI (mido), a piano-roll PNG (matplotlib) and, with ``wav`` and a synthesiser installed
    (:func:`.render.synthesizer`), a WAV per tune; returns the paths written.

    Everything is written into a temporary folder first and moved into ``out_dir`` only when every file is
    done, so a failure leaves no partial output; tune files of an earlier call in ``out_dir`` are replaced
    (all of them, so that the folder never mixes two calls' tunes). Without a synthesiser the WAVs are skipped
    with a logged note.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise RnnkitError(f"--out: expected a folder for the tunes, got {str(out_dir)!r}, which is a file")
    try:
        return _write_tunes(tunes, out_dir, title, wav)
    except OSError as exc:
        raise RnnkitError(
            f"--out: cannot write the tunes into {str(out_dir)!r}: {exc.strerror or exc}"
        ) from None


_TUNE_FILE = re.compile(r"tune_\d+\.(abc|mid|png|wav)")


def _write_tunes(tunes: list[list[str]], out_dir: Path, title: str, wav: bool) -> list[Path]:
    import shutil
    import tempfile

    from rnnkit.apps.music.render import synthesizer, write_midi, write_piano_roll, write_wav

    command = None
    if wav:
        command, why = synthesizer()
        if command is None:
            _log.warning("music: no WAV files written: %s", why)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staged = []
    with tempfile.TemporaryDirectory(prefix=".rnnkit-tunes-", dir=out_dir.parent) as tmp:
        for i, t in enumerate(tunes, 1):
            stem = Path(tmp) / f"tune_{i}"
            abc_path = stem.with_suffix(".abc")
            abc_path.write_text(tokens_to_abc(t, f"{title} {i}", i), encoding="utf-8")
            staged.append(abc_path)
            staged.append(write_midi(t, stem.with_suffix(".mid")))
            staged.append(
                write_piano_roll(t, stem.with_suffix(".png"), f"{title} {i}: {t[0][2:]}, {t[1][2:]}")
            )
            if command is not None:
                staged.append(write_wav(stem.with_suffix(".mid"), stem.with_suffix(".wav"), command))
        out_dir.mkdir(parents=True, exist_ok=True)
        # the tunes of an earlier call go (into the temporary folder, removed with it): the folder then holds
        # this call's tunes only, not a mix of two calls' numbering
        old = Path(tmp) / "earlier"
        old.mkdir()
        for p in out_dir.iterdir():
            if _TUNE_FILE.fullmatch(p.name) and p.is_file():
                shutil.move(str(p), str(old / p.name))
        written = []
        for p in staged:
            shutil.move(str(p), str(out_dir / p.name))  # same file system: a rename
            written.append(out_dir / p.name)
    return written


def load(path) -> MusicGenerator:
    """The saved run at ``path``, ready to generate tunes."""
    return MusicGenerator(path)


def generate(
    run, meter: str = "", key: str = "", num_samples: int = 1, out_dir=None, **options: Any
) -> list[list[str]] | list[Path]:
    """Tunes from a saved run: token lists, or (with ``out_dir``) the ABC/MIDI/PNG/WAV files written there.

    ``options`` are the other fields of :class:`GenerateMusicConfig` (temperature, top_k, top_p,
    constrained, max_length, seed, wav). Example::

        files = generate("runs/music", meter="6/8", key="Dmix", num_samples=5, out_dir="tunes")
    """
    unknown = sorted(set(options) - set(GenerateMusicConfig.__dataclass_fields__))
    if unknown:
        raise RnnkitError(f"unknown generate options {unknown}: expected fields of GenerateMusicConfig")
    gen = validate_config(
        replace(GenerateMusicConfig(), meter=meter, key=key, num_samples=num_samples, **options)
    )
    g = load(run)
    return g.generate(out_dir, gen) if out_dir is not None else g.tunes(gen)
