"""The music report: bits per token next to the Kneser-Ney n-gram and the unigram, the share of valid
generated tunes, and how close the generated tunes' histograms are to the held-out tunes'.

*Valid* means: music21 parses the tune's ABC text and writes it as MIDI without an error, every bar music21
finds is no longer than the meter, and every bar between two plain bar lines fills it (a shorter bar is
allowed only next to the start, the end or a section line — pick-ups). Where Debian's ``abc2midi`` is
installed, whether it converts the tune without an error is reported too. A tune whose bars break those rules
on its own tokens (:func:`~rnnkit.apps.music.abc.check_bars`) is invalid without asking music21, whose parse of
such a tune can take minutes (a user's 40 tunes: 28-117 s for one); and a parse is given at most
:data:`PARSE_SECONDS`.

The histograms are of pitch classes (12, relative to the tonic C of the token form), melodic intervals
(-12..+12 semitones, wider ones in the end bins) and note lengths (in eighths); the distance is the
Jensen-Shannon distance (base 2, in [0, 1]) from SciPy. Its yardstick is the same distance between two
halves of the held-out tunes.
"""

from __future__ import annotations

import contextlib
import io
import math
import shutil
import subprocess
import tempfile
import time
import warnings
from collections import Counter
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit._errors import RnnkitError
from rnnkit.apps import plots
from rnnkit.apps.base import ResultRow
from rnnkit.apps.music.abc import check_bars, meter_length, tokens_to_abc
from rnnkit.apps.music.render import tune_notes

__all__ = [
    "DURATION_BINS",
    "GOAL_VALID",
    "check_tune",
    "feedforward_bits",
    "histograms",
    "histogram_distances",
    "load_ngram",
    "ngram_bits",
    "save_ngram",
    "stream_bits",
    "result_rows",
    "unigram_bits",
]

GOAL_VALID = 0.95
DURATION_BINS = (
    Fraction(1, 2),
    Fraction(2, 3),
    Fraction(1),
    Fraction(3, 2),
    Fraction(2),
    Fraction(3),
    Fraction(4),
)


# ------------------------------------------------------------------------------------------- baselines
def _stream(tunes: list[list[str]]) -> list[str]:
    out: list[str] = []
    for t in tunes:
        out += ["<bos>", *t, "<eos>"]
    return out


def ngram_bits(
    train: list[list[str]], val: list[list[str]], test: list[list[str]], max_order: int
) -> dict[str, Any]:
    """Kneser-Ney (:class:`rnnkit.baselines.ngram.KneserNeyLM`) bits per token, order chosen on validation.

    The tunes are one stream with ``<bos>``/``<eos>`` around each; the ``<bos>`` positions are not scored,
    so the scored tokens are those the LSTM scores (every token after ``<bos>``, ``<eos>`` included).
    """
    from rnnkit.baselines.ngram import KneserNeyLM

    lm = KneserNeyLM(max_order=max_order).fit(_stream(train))
    by_order = _select(lm, _stream(val), max_order)
    return {"bits": stream_bits(lm, test), "order": lm.order, "val_bits_by_order": by_order}


NGRAM_FILE = "ngram.safetensors"
"""A music run's Kneser-Ney baseline: the training stream it is refitted from, its order (``ngram.json``: sha256)."""


def save_ngram(path, train: list[list[str]], order: int, max_order: int) -> str:
    """Write what :func:`load_ngram` refits the run's n-gram from: the training tunes as one stream (UTF-8, one
    token a line), the order chosen on validation and the largest order fitted (safetensors, no pickle);
    returns the file's sha256."""
    import torch

    from rnnkit.files import write_safetensors

    stream = _stream(train)
    if any("\n" in t for t in stream):  # tokens come from ABC lines: never happens
        raise RnnkitError("music n-gram: a token holds a line break; it cannot be saved one token a line")
    data = np.frombuffer("\n".join(stream).encode("utf-8"), dtype=np.uint8).copy()
    meta = {"order": str(order), "max_order": str(max_order)}
    return write_safetensors(path, {"tokens": torch.from_numpy(data)}, meta)


def load_ngram(path, sha256: str):
    """The n-gram saved by :func:`save_ngram`, fitted again on its stream with its orders: the same
    probabilities as the one training scored with. A file whose checksum differs is a one-line error."""
    from rnnkit.baselines.ngram import KneserNeyLM
    from rnnkit.files import read_safetensors

    try:
        tensors, meta = read_safetensors(path, sha256)
        stream = tensors["tokens"].numpy().tobytes().decode("utf-8").split("\n")
        order, max_order = int(meta["order"]), int(meta["max_order"])
    except (RnnkitError, KeyError, ValueError, UnicodeDecodeError) as exc:
        raise RnnkitError(f"damaged n-gram file {Path(path).name}: {exc}") from None
    if not 1 <= order <= max_order:
        raise RnnkitError(f"damaged n-gram file {Path(path).name}: order {order}, largest {max_order}")
    lm = KneserNeyLM(max_order=max_order).fit(stream)
    lm.order = order
    return lm


def feedforward_bits(
    train: list[list[str]],
    val: list[list[str]],
    test: list[list[str]],
    context: int,
    epochs: int,
    seed: int = 0,
):
    """The feed-forward counterpart (:class:`rnnkit.baselines.FixedContextLM`, Bengio et al. 2003): the same
    tokens, the previous ``context`` of them through an MLP, no recurrence; bits per token on the tokens the
    LSTM scores (the tunes as one stream, as :func:`ngram_bits` reads them). Returns ``(what metrics.json says
    of it, the fitted model)``."""
    from rnnkit.baselines import FixedContextLM

    t0 = time.perf_counter()
    lm = FixedContextLM(context=context, max_epochs=epochs, patience=2, seed=seed, max_val_positions=20_000)
    lm.fit(_stream(train), _stream(val))
    info = {
        "bits": stream_bits(lm, test),
        "context": context,
        "epochs": len(lm.history),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return info, lm


def stream_bits(lm, tunes: list[list[str]]) -> float:
    """Bits per token of a token language model (n-gram or feed-forward) on the tunes read as one stream, on
    the tokens the LSTM scores (every token after ``<bos>``, ``<eos>`` included)."""
    s = _stream(tunes)
    keep = np.array([t != "<bos>" for t in s])
    return float(-lm.log2_probs(s)[keep].mean())


def _select(lm, val_s: list[str], max_order: int) -> dict[int, float]:
    keep = np.array([t != "<bos>" for t in val_s])
    scores = {o: float(-lm.log2_probs(val_s, o)[keep].mean()) for o in range(1, max_order + 1)}
    lm.order = min(scores, key=scores.get)
    return scores


def unigram_bits(train: list[list[str]], test: list[list[str]]) -> float:
    """Bits per token of add-one token frequencies of the training tunes (``<eos>`` counted, ``<bos>`` not)."""
    counts = Counter(tok for t in train for tok in [*t, "<eos>"])
    total = sum(counts.values()) + len(counts) + 1
    n, s = 0, 0.0
    for t in test:
        for tok in [*t, "<eos>"]:
            s -= math.log2((counts.get(tok, 0) + 1) / total)
            n += 1
    return s / n


# ------------------------------------------------------------------------------------------- validity
PARSE_SECONDS = 30
"""The longest music21 may take to read one tune (where a timer can interrupt it: the main thread)."""


class _TooSlow(Exception):
    pass


@contextlib.contextmanager
def _at_most(seconds: float):
    """Raise :class:`_TooSlow` in the block after ``seconds`` (SIGALRM; only in the main thread on Unix)."""
    import signal
    import threading

    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise _TooSlow

    before = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)


def check_tune(tokens: list[str], abc2midi: bool = True) -> dict[str, Any]:
    """Is the tune valid (see the module docstring)? ``{"valid", "music21", "bars", "abc2midi", "problem"}``."""
    import music21

    text = tokens_to_abc(tokens)
    out: dict[str, Any] = {"valid": False, "music21": False, "bars": False, "abc2midi": None, "problem": ""}
    try:
        wrong = check_bars(tokens)
    except (ValueError, IndexError, TypeError, AttributeError) as exc:  # tokens out of order (a length first)
        wrong = f"the tokens do not read as a tune ({type(exc).__name__})"
    if wrong:  # invalid whatever music21 makes of it (and it can take minutes to make anything)
        out["problem"] = f"bars: {wrong}"
        return out
    with tempfile.TemporaryDirectory(prefix="rnnkit-music-") as tmp:
        if abc2midi and shutil.which("abc2midi"):
            src = Path(tmp) / "t.abc"
            src.write_text(text, encoding="utf-8")
            done = subprocess.run(
                ["abc2midi", str(src), "-o", str(Path(tmp) / "a.mid")],
                capture_output=True,
                text=True,
                timeout=60,
            )
            log = done.stdout + done.stderr
            out["abc2midi"] = done.returncode == 0 and "Error" not in log and (Path(tmp) / "a.mid").is_file()
        try:
            # music21 prints some of its complaints ("beam: WARNING: ...") straight to stderr: kept out of ours
            with (
                warnings.catch_warnings(),
                contextlib.redirect_stderr(io.StringIO()),
                _at_most(PARSE_SECONDS),
            ):
                warnings.simplefilter("ignore")
                score = music21.converter.parse(text, format="abc")
                score.write("midi", fp=str(Path(tmp) / "m.mid"))
        except _TooSlow:
            out["problem"] = f"music21: not read within {PARSE_SECONDS} s"
            return out
        except Exception as exc:  # music21 raises many types; any of them makes the tune invalid
            out["problem"] = f"music21: {type(exc).__name__}: {str(exc)[:120]}"
            return out
    out["music21"] = True
    part = score.parts[0] if score.parts else score
    measures = list(part.getElementsByClass("Measure"))
    full = float(meter_length(tokens[0][2:]) * 4)
    for k, m in enumerate(measures):
        ql = float(m.duration.quarterLength)
        if ql > full + 1e-6:
            out["problem"] = f"bar {k + 1} lasts {ql} quarters, more than {full}"
            return out
        plain = m.leftBarline is None and m.rightBarline is None
        prev_plain = k > 0 and measures[k - 1].rightBarline is None
        inner = 0 < k < len(measures) - 1
        if ql < full - 1e-6 and plain and prev_plain and inner:
            out["problem"] = f"bar {k + 1} lasts {ql} quarters, less than {full}"
            return out
    out["bars"] = True
    out["valid"] = bool(measures)
    if not measures:
        out["problem"] = "no bars"
    return out


# ------------------------------------------------------------------------------------------- histograms
def histograms(tunes: list[list[str]]) -> dict[str, np.ndarray]:
    """Normalised pitch-class (12), interval (25: -12..12) and note-length (len(DURATION_BINS) + 1) counts."""
    pc, iv, du = np.zeros(12), np.zeros(25), np.zeros(len(DURATION_BINS) + 1)
    for t in tunes:
        try:
            notes, _ = tune_notes(t)
        except (ValueError, IndexError, AttributeError, TypeError):
            continue  # a malformed generated tune adds nothing
        for k, (p, _, length) in enumerate(notes):
            pc[p % 12] += 1
            eighths = length * 2
            du[DURATION_BINS.index(eighths) if eighths in DURATION_BINS else len(DURATION_BINS)] += 1
            if k:
                iv[int(np.clip(p - notes[k - 1][0], -12, 12)) + 12] += 1
    return {k: v / max(v.sum(), 1) for k, v in (("pitch_class", pc), ("interval", iv), ("duration", du))}


def histogram_distances(a: list[list[str]], b: list[list[str]]) -> dict[str, float | None]:
    """Jensen-Shannon distance (SciPy, base 2) between the histograms of two sets of tunes; ``None`` for a
    histogram that one of the sets leaves empty (no notes, or no two successive notes for the intervals):
    there is no distribution to compare, and SciPy would give NaN, which is not JSON."""
    from scipy.spatial.distance import jensenshannon

    ha, hb = histograms(a), histograms(b)
    return {
        k: float(jensenshannon(ha[k], hb[k], base=2)) if ha[k].any() and hb[k].any() else None for k in ha
    }


# ------------------------------------------------------------------------------------------- table, plots
def label_of(cfg) -> str:
    return {"folk": "folk tunes", "chorales": "Bach chorales"}.get(cfg.data) or Path(cfg.data).name


def result_rows(cfg, metrics: dict[str, Any], seconds: float) -> list[ResultRow]:
    task = f"music ({label_of(cfg)})"
    bits = metrics["test"]["bits_per_token"]
    base = metrics["baselines"]
    ng = base["kneser_ney"]
    scores = {f"Kneser-Ney {ng['order']}-gram": ng["bits"]}
    if base.get("feedforward"):
        scores[f"feed-forward ({base['feedforward']['context']} tokens)"] = base["feedforward"]["bits"]
    strongest = min(scores, key=scores.get)
    rows = [
        ResultRow(
            task,
            "bits/token",
            bits,
            strongest,
            scores[strongest],
            "< strongest baseline",
            bits < scores[strongest],
            seconds,
            {
                **scores,
                "unigram": base["unigram"]["bits"],
                "untrained model": metrics["untrained"]["bits_per_token"],
            },
        )
    ]
    gen = metrics.get("generated")
    if gen:
        rows.append(
            ResultRow(
                task,
                "valid tunes",
                gen["valid_share"],
                "unconstrained sampling",
                gen.get("unconstrained_valid_share", float("nan")),
                f">= {GOAL_VALID}",
                gen["valid_share"] >= GOAL_VALID,
                seconds,
                {"unconstrained sampling": gen.get("unconstrained_valid_share", float("nan"))},
            )
        )
    return rows


def write_plots(run, cfg, history) -> list[Path]:
    for row in history:
        for key in ("train_loss", "val_loss"):
            if row.get(key) is not None:
                row[key.replace("loss", "bits")] = row[key] / math.log(2)
    p = plots.plot_curves(
        history,
        run.file("curves.png"),
        "step",
        f"{label_of(cfg)}: bits per token (train: running mean; validation: held-out tunes)",
        left=["train_bits", "val_bits"],
        left_label="bits per token",
    )
    return [p] if p is not None else []
