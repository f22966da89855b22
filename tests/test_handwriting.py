"""Handwriting recognition: the CRNN's CTC loss and decoding against outside references, the digit split,
the baselines' plumbing, bad input, a short training that must learn, and (slow) a real run end to end."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit._errors import RnnkitError
from rnnkit.apps.handwriting import baselines, data, report
from rnnkit.apps.handwriting.config import HandwritingConfig
from rnnkit.apps.handwriting.model import CRNN, CRNNConfig, decode_lines
from rnnkit.models import CTCConfig, EncoderConfig, Model, ctc_greedy_decode, ctc_prefix_beam_search


def tiny_model(num_labels: int = 10, hidden: int = 32, seed: int = 0) -> CRNN:
    torch.manual_seed(seed)
    enc = EncoderConfig("lstm", hidden, 1, bidirectional=True, backend="native")
    return CRNN(
        CRNNConfig(height=32, channels=[8, 16, 16], ctc=CTCConfig(num_labels=num_labels, encoder=enc))
    )


@pytest.fixture(scope="module")
def digits():
    return data.load_digit_images()


# -- CTC loss and decoding ---------------------------------------------------------------------------------------
def test_crnn_loss_equals_torch_ctc_loss_on_its_frames():
    model = tiny_model()
    rng = np.random.default_rng(0)
    lines = [rng.random((32, w)).astype(np.float32) for w in (40, 64, 23)]
    labels = [[1, 2, 2], [3, 4, 5, 6, 7], [9]]
    batch = data.collate(lines, labels)
    model.eval()
    lp = model(batch["images"], batch["widths"])  # (B, T, C)
    frames = torch.tensor([10, 16, 6])  # ceil(width / 4)
    want = F.ctc_loss(
        lp.transpose(0, 1), batch["targets"], frames, batch["target_lengths"], blank=0, reduction="sum"
    ) / len(lines)
    got = model.loss(batch).loss
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # padding never changes a line's result: the 23-pixel line alone gives the same log-probabilities
    alone = model(data.collate(lines[2:])["images"])
    torch.testing.assert_close(lp[2, :6], alone[0, :6], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_ctc_alignment_is_the_most_probable_path_of_the_reading(seed):
    g = torch.Generator().manual_seed(seed)
    T, C = 6, 3
    lp = (torch.randn(T, C, generator=g) * 1.5).log_softmax(-1).double()
    labels = [1, 1, 2] if seed % 2 else [2, 1]
    best, best_p = None, -math.inf
    for path in itertools.product(range(C), repeat=T):  # every path that spells ``labels``
        lab, prev, spans = [], None, []
        for t, c in enumerate(path):
            if c != 0 and c != prev:
                lab.append(c)
                spans.append([t, t])
            elif c != 0:
                spans[-1][1] = t
            prev = c
        p = sum(float(lp[t, c]) for t, c in enumerate(path))
        if lab == labels and p > best_p:
            best, best_p = [tuple(s) for s in spans], p
    assert report.ctc_align(lp.numpy(), labels) == best
    assert report.ctc_align(lp[:2].numpy(), [1, 1, 2]) == []  # 2 frames cannot spell 3 labels


def test_beam_of_one_equals_greedy_on_peaky_outputs():
    # one class dominates every frame, as after training: best path and best prefix coincide
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        T, C = 30, 11
        winners = torch.randint(0, C, (T,), generator=g)
        logits = torch.randn(T, C, generator=g) + 8.0 * F.one_hot(winners, C)
        lp = logits.log_softmax(-1)
        assert ctc_prefix_beam_search(lp, beam_size=1)[0] == ctc_greedy_decode(lp[None])[0]


# -- data ----------------------------------------------------------------------------------------------------
def test_digit_images_are_real_and_balanced(digits):
    images, labels, source = digits
    assert images.shape == (6797, 28, 28)
    assert (source == 0).sum() == 5000 and (source == 1).sum() == 1797
    assert np.bincount(labels).min() >= 674  # about 680 of each digit
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_split_never_shares_digit_images(digits):
    images, labels, _ = digits
    tr, va, te = data.split_digits(len(images), 0.1, 0.2, seed=0)
    assert len(set(tr) | set(va) | set(te)) == len(images)
    assert not (set(tr) & set(te)) and not (set(tr) & set(va)) and not (set(va) & set(te))
    # mark every test image with the label 1 and every other image with 0: lines made from the test pool
    # must then read all 1s, and lines made from the training pool all 0s
    mark = np.zeros(len(images), np.int64)
    mark[te] = 1
    rng = np.random.default_rng(0)
    _, test_texts = data.render_lines(images, mark, te, 50, rng)
    _, train_texts = data.render_lines(images, mark, tr, 50, rng)
    assert set("".join(test_texts)) == {"1"} and set("".join(train_texts)) == {"0"}


def test_render_lines_length_range_and_ctc_room(digits):
    images, labels, _ = digits
    lines, texts = data.render_lines(
        images, labels, np.arange(0, 6797, 50), 60, np.random.default_rng(3), 32, 1, 12
    )
    assert {len(t) for t in texts} <= set(range(1, 13)) and max(len(t) for t in texts) >= 10
    for line, text in zip(lines, texts):
        assert line.shape[0] == 32 and line.dtype == np.float32
        assert math.ceil(line.shape[1] / data.STRIDE) >= 2 * len(text)  # CTC can always align it


def _fonts_or_skip():
    try:
        return data.find_fonts()
    except RnnkitError as exc:
        pytest.skip(str(exc))


def test_font_lines_keep_held_out_fonts_apart_and_leave_ctc_room():
    fonts = _fonts_or_skip()
    seen, held = data.split_fonts(fonts)
    assert sorted(p.name for p in held) == sorted(data.HELD_OUT_FONTS)
    assert not {p.name for p in seen} & set(data.HELD_OUT_FONTS) and len(seen) == len(fonts) - 3
    rng = np.random.default_rng(0)
    lines, texts = data.render_font_lines(["it is a truth", "x", "mr. darcy's"], held, 6, rng)
    for line, text in zip(lines, texts):
        assert line.shape[0] == 32 and line.max() > 0.8
        assert math.ceil(line.shape[1] / data.STRIDE) >= 2 * len(text)


def test_case_variety_draws_capitals_and_keeps_the_lower_case_label():
    rng = np.random.default_rng(0)
    drawn = [data.vary_case("it is a truth", rng) for _ in range(600)]
    kinds = {
        "as written": sum(t == "it is a truth" for t, _ in drawn),
        "first": sum(t == "It is a truth" for t, _ in drawn),
        "words": sum(t == "It Is A Truth" for t, _ in drawn),
        "all": sum(t == "IT IS A TRUTH" for t, _ in drawn),
    }
    assert sum(kinds.values()) == 600  # nothing else is ever drawn
    assert 240 < kinds["as written"] < 360 and all(60 < kinds[k] < 140 for k in ("first", "words", "all"))
    # only capitals are ever scaled by the capitals' height
    assert {b for t, b in drawn if t != "IT IS A TRUTH"} == {"x"}
    assert {b for t, b in drawn if t == "IT IS A TRUTH"} == {"x", "X"}
    fonts = _fonts_or_skip()
    seen, _ = data.split_fonts(fonts)
    texts = ["it is a truth", "mr. darcy's"]
    plain, labels = data.render_font_lines(texts, seen, 12, np.random.default_rng(1))
    varied, varied_labels = data.render_font_lines(
        texts, seen, 12, np.random.default_rng(1), case_variety=True
    )
    # the labels are the texts as given, whatever was drawn
    assert set(varied_labels) <= set(texts) and set(labels) <= set(texts)
    assert any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(plain, varied))


def test_word_gaps_space_the_words_and_leave_one_word_alone():
    fonts = _fonts_or_skip()
    font = data.split_fonts(fonts)[0][0]
    widths = {}
    for gap in (None, 0.3, 1.5):
        line = data.render_text("a truth universally", font, np.random.default_rng(7), gap=gap)
        ink = np.flatnonzero(line.max(axis=0) > 0.5)  # the ink's extent (short lines are padded for CTC)
        widths[gap] = ink[-1] - ink[0]
        one = data.render_text("universally", font, np.random.default_rng(7), gap=gap)
        # one word has no gap to draw: the same pixels as the whole-text drawing
        assert np.array_equal(one, data.render_text("universally", font, np.random.default_rng(7)))
    assert widths[0.3] < widths[None] < widths[1.5]


def test_font_lines_are_cached_once_and_read_back(tmp_path, monkeypatch):
    fonts = _fonts_or_skip()
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    seen, _ = data.split_fonts(fonts)
    texts = ["it is a truth", "universally", "acknowledged, that"]
    lines, out = data.cached_font_lines(texts, seen, 5, [0, 1])
    (path,) = (tmp_path / "handwriting").glob("fonts-*.npz")
    # the same lines as rendering them directly, to 8-bit precision
    want, want_texts = data.render_font_lines(texts, seen, 5, np.random.default_rng([0, 1]))
    assert out == want_texts
    for a, b in zip(lines, want):
        assert a.shape == b.shape and np.abs(a - b).max() <= 0.5 / 255 + 1e-6

    def no_render(*args, **kwargs):
        raise AssertionError("rendered again instead of reading the cache")

    monkeypatch.setattr(data, "render_font_lines", no_render)
    again, again_texts = data.cached_font_lines(texts, seen, 5, [0, 1])
    assert again_texts == out and all(np.array_equal(a, b) for a, b in zip(again, lines))
    with pytest.raises(AssertionError, match="rendered again"):  # another seed is another file
        data.cached_font_lines(texts, seen, 5, [0, 2])
    monkeypatch.undo()
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    path.write_bytes(b"damaged")  # a damaged file is made again
    remade, _ = data.cached_font_lines(texts, seen, 5, [0, 1])
    assert all(np.array_equal(a, b) for a, b in zip(remade, lines))


def test_elastic_distortion_moves_ink_at_most_alpha():
    img = np.zeros((32, 64), np.float32)
    img[14:18, 30:34] = 1.0
    rng = np.random.default_rng(0)
    assert np.array_equal(data._elastic(img, rng, alpha=0.0, sigma=3.0), img)
    ys, xs = np.nonzero(img)
    for _ in range(5):
        out = data._elastic(img, rng, alpha=1.5, sigma=3.0)
        oy, ox = np.nonzero(out > 0.01)
        assert oy.min() >= ys.min() - 2 and oy.max() <= ys.max() + 2
        assert ox.min() >= xs.min() - 2 and ox.max() <= xs.max() + 2
        assert abs(out.sum() - img.sum()) < 0.3 * img.sum()


@pytest.mark.slow
def test_font_run_data_uses_austen_and_both_font_sets():
    from rnnkit.apps.handwriting.train import _prepare

    _fonts_or_skip()
    cfg = HandwritingConfig(data="fonts", train_lines=4, val_lines=4, test_lines=4)
    alphabet, train_lines, _, tests, _, info, train_texts = _prepare(cfg)
    assert alphabet == data.FONT_ALPHABET and set(tests) == {"held-out fonts", "training fonts"}
    assert not set(info["fonts"]["train"]) & set(data.HELD_OUT_FONTS)
    assert len(train_texts) == info["texts"]["train"] > 100_000
    lines, texts = train_lines(0)
    assert len(lines) == 4 and all(set(t) <= set(alphabet) for t in texts)
    # the training lines follow the config: with capitals and gaps off, the plain renderer's lines
    seen, _ = data.split_fonts(data.find_fonts())
    plain = data.render_font_lines(train_texts, seen, 4, np.random.default_rng([cfg.seed, 3, 0]))
    off = _prepare(dataclasses.replace(cfg, case_variety=False, word_gaps=False))[1](0)
    assert off[1] == plain[1] and all(np.array_equal(a, b) for a, b in zip(off[0], plain[0]))
    assert any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(lines, plain[0]))


def test_encode_rejects_characters_outside_the_alphabet():
    assert data.encode(["102"], "0123456789") == [[2, 1, 3]]
    with pytest.raises(RnnkitError, match=r"not in the alphabet"):
        data.encode(["12a"], "0123456789")


def test_user_csv_and_bad_images(tmp_path):
    from PIL import Image

    img = Image.new("L", (60, 20), 255)  # dark ink on white: inverted to bright ink
    img.paste(0, (10, 5, 20, 15))
    img.save(tmp_path / "a.png")
    (tmp_path / "bad.png").write_bytes(b"not a picture")
    (tmp_path / "lines.csv").write_text("file,text\na.png,7\n")
    lines, texts = data.load_line_images(str(tmp_path / "lines.csv"), height=32)
    assert texts == ["7"] and lines[0].shape == (32, 96) and lines[0].max() > 0.9 and lines[0][0, 0] == 0
    (tmp_path / "broken.csv").write_text("file,text\nbad.png,1\n")
    with pytest.raises(RnnkitError, match=r"bad.png: expected a readable image"):
        data.load_line_images(str(tmp_path / "broken.csv"))
    (tmp_path / "missing.csv").write_text("file,text\nnope.png,1\n")
    with pytest.raises(RnnkitError, match=r"does not exist"):
        data.load_line_images(str(tmp_path / "missing.csv"))
    (tmp_path / "nocol.csv").write_text("image,label\na.png,1\n")
    with pytest.raises(RnnkitError, match=r"header 'file,text'"):
        data.load_line_images(str(tmp_path / "nocol.csv"))


def test_a_line_is_cut_to_its_ink_with_the_margin():
    line = np.zeros((40, 100), dtype=np.float32)
    line[10:20, 30:60] = 1.0  # ink 10 rows high
    assert data.ink_margin(line) == pytest.approx((40 - 10) / 20)
    cut = data.crop_to_ink(line, 0.5)  # 5 blank pixels around the ink on every side
    assert cut.shape == (20, 40) and cut[5:15, 5:35].min() == 1.0 and cut.sum() == line.sum()
    assert data.ink_margin(cut) == pytest.approx(0.5)
    edge = np.zeros((30, 50), dtype=np.float32)
    edge[0:10, 0:20] = 1.0  # ink at the image's corner: the margin is made of the image's background
    assert data.crop_to_ink(edge, 0.5).shape == (20, 30) and data.crop_to_ink(edge, 0.5)[:5].max() == 0.0
    blank = np.zeros((8, 8), dtype=np.float32)
    assert data.crop_to_ink(blank, 0.5) is blank and data.ink_margin(blank) is None
    # dark ink on white with wide borders and the same ink tight: one normalised line
    from PIL import Image, ImageDraw

    wide = Image.new("L", (260, 140), 255)
    ImageDraw.Draw(wide).rectangle((100, 60, 160, 80), outline=0, width=3)  # ink 21 pixels high
    tight = wide.crop((95, 55, 166, 86))  # the same ink with 5 pixels of white around it
    a = data.normalize_line(tight, 32, margin=0.25)
    b = data.normalize_line(wide, 32, margin=0.25)
    assert a.shape == b.shape and np.abs(a - b).max() < 1e-5
    ink_rows = lambda x: int((x > 0.5).any(1).sum())  # noqa: E731
    assert ink_rows(b) > 18 and ink_rows(data.normalize_line(wide, 32)) < 8  # without the cut: mostly border


def test_model_rejects_wrong_height():
    with pytest.raises(RnnkitError, match=r"32 pixels high"):
        tiny_model()(torch.zeros(1, 1, 24, 16))


# -- scores and baselines ------------------------------------------------------------------------------------
def test_scores_follow_the_edit_distance():
    from rnnkit.models.ctc import edit_distance

    refs, hyps = ["12345", "7", "000"], ["1245", "1", "0000"]
    s = report.scores(refs, hyps)
    want = sum(edit_distance(list(h), list(r)) for r, h in zip(refs, hyps)) / sum(map(len, refs))
    assert s["cer"] == pytest.approx(want) and s["wer"] == pytest.approx(1.0)
    assert report.scores(refs, refs) == {"cer": 0.0, "wer": 0.0, "line_accuracy": 1.0}


def test_segmentation_finds_separated_digits(digits):
    images, labels, _ = digits
    line = np.zeros((32, 200), np.float32)
    for k, i in enumerate((0, 700, 1400, 2100)):  # four digits with wide gaps
        g = data._glyph(images[i], 20, 0.0)
        line[6 : 6 + g.shape[0], 10 + 45 * k : 10 + 45 * k + g.shape[1]] = g
    crops = baselines.segment_line(line)
    assert len(crops) == 4


@pytest.mark.skipif(baselines.tesseract_available() is not None, reason="tesseract is not installed")
def test_tesseract_reads_printed_digits_in_order():
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=26)
    lines = []
    for text in ("31415", "2718", "90210"):
        img = Image.new("L", (140, 32), 0)
        ImageDraw.Draw(img).text((4, 2), text, fill=255, font=font)
        lines.append(np.asarray(img, np.float32) / 255)
    assert baselines.tesseract_read(lines) == ["31415", "2718", "90210"]


# -- training ------------------------------------------------------------------------------------------------
def _overfit(digits, steps: int, n: int = 16):
    """A small CRNN trained ``steps`` times on one batch of ``n`` real digit lines (1-3 digits)."""
    images, labels, _ = digits
    pool = np.random.default_rng(5).choice(len(images), 400, replace=False)
    lines, texts = data.render_lines(images, labels, pool, n, np.random.default_rng(0), 32, 1, 3)
    model = tiny_model(hidden=64)
    batch = data.collate(lines, data.encode(texts, data.DIGITS))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = model.loss(batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model, lines, texts


def test_short_training_reads_its_lines_and_untrained_does_not(digits):
    torch.set_num_threads(1)
    untrained, lines, texts = _overfit(digits, steps=0)
    before = report.scores(texts, decode_lines(untrained, lines, data.DIGITS, 1))
    model, lines, texts = _overfit(digits, steps=100)
    after = report.scores(texts, decode_lines(model, lines, data.DIGITS, 4))
    assert before["cer"] > 0.8, before
    assert after["cer"] < 0.3, after
    # on a trained model's outputs, a beam of one is the best path, and the model's greedy decode is too
    b = data.collate(lines)
    lp, frames = model.log_probs(b["images"], b["widths"])
    greedy = ctc_greedy_decode(lp, frames)
    assert model.decode(b["images"], b["widths"], beam_size=1) == greedy
    for i in range(len(lines)):
        assert ctc_prefix_beam_search(lp[i, : int(frames[i])], beam_size=1)[0] == greedy[i]


def _user_lines(folder, digits, n: int = 12):
    from PIL import Image

    images, labels, _ = digits
    lines, texts = data.render_lines(
        images, labels, np.arange(0, 6797, 7), n, np.random.default_rng(2), 32, 1, 4
    )
    rows = ["file,text"]
    for k, (line, text) in enumerate(zip(lines, texts)):
        Image.fromarray((255 - line * 255).round().astype(np.uint8)).save(folder / f"l{k}.png")
        rows.append(f"l{k}.png,{text}")
    (folder / "lines.csv").write_text("\n".join(rows) + "\n")
    return lines, texts


def test_train_on_user_lines_writes_a_run_that_reads_png(tmp_path, digits, capsys):
    from rnnkit.apps.handwriting import load, train

    lines, texts = _user_lines(tmp_path, digits)
    cfg = HandwritingConfig(
        data=str(tmp_path / "lines.csv"),
        runs_dir=str(tmp_path / "runs"),
        epochs=1,
        channels=(4, 4, 4),
        hidden_size=8,
        num_layers=1,
        tesseract=False,
        beam_size=2,
        ff_layers=0,
    )
    result = train(cfg, say=lambda *a: None)
    assert result.metrics["lines"] == {"train": 9, "val": 1, "test": 2}
    assert "feedforward" not in result.metrics and not (result.run / "feedforward").exists()
    assert set(result.metrics["alphabet"]) <= set(data.DIGITS)
    reader = load(result.run)
    got = reader.predict([tmp_path / "l0.png", tmp_path / "l1.png"])
    assert [g["image"] for g in got] == [str(tmp_path / "l0.png"), str(tmp_path / "l1.png")]
    arrays = [data.read_image(tmp_path / "l0.png"), data.read_image(tmp_path / "l1.png")]
    assert [g["text"] for g in got] == decode_lines(reader.model, arrays, reader.alphabet, 2)
    assert reader.predict(arrays[0])[0]["text"] == got[0]["text"]  # one array is one image
    with pytest.raises(RnnkitError, match=r"expected a file path, a PIL image or a 2-D array, got int"):
        reader.predict([3])
    # a run with cut_lines learns, is scored on and reads new images cut to their ink, with the blank its
    # validation lines have around theirs
    cut = train(dataclasses.replace(cfg, name="cut", cut_lines=True), say=lambda *a: None)
    margin = cut.metrics["line_margin"]
    assert margin == json.loads((cut.run / "alphabet.json").read_text())["line_margin"] > 0
    cut_reader = load(cut.run)
    arrays = [data.read_image(tmp_path / p, margin=margin) for p in ("l0.png", "l1.png")]
    want = decode_lines(cut_reader.model, arrays, cut_reader.alphabet, 2)
    assert [g["text"] for g in cut_reader.predict([tmp_path / "l0.png", tmp_path / "l1.png"])] == want
    assert cut_reader.evaluate()["cer"] == pytest.approx(cut.metrics["test"]["cer"])  # cut test lines again
    assert set(reader.evaluate()) >= {"cer"} and reader.evaluate()["cer"] == pytest.approx(
        result.metrics["test"]["cer"]
    )
    # bad input: one clear error and no run directory left behind
    (tmp_path / "lines.csv").write_text("file,text\nl0.png,1\ngone.png,2\n")
    cfg.name = "bad"
    with pytest.raises(RnnkitError, match=r"gone.png.*does not exist"):
        train(cfg, say=lambda *a: None)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["cut", "handwriting"]
    # the command line reads the same PNG files the same way
    from test_cli import run_cli

    rc, out, err = run_cli(
        capsys, "predict", tmp_path / "runs" / "handwriting", tmp_path / "l0.png", "--json"
    )
    assert rc == 0, err
    assert [r["text"] for r in json.loads(out)] == [got[0]["text"]]
    rc, out, err = run_cli(
        capsys, "predict", tmp_path / "runs" / "handwriting", tmp_path / "l0.png", "--cut", "--json"
    )
    assert rc == 0, err
    assert json.loads(out) == reader.predict([tmp_path / "l0.png"], cut=True)
    _bad_inputs_at_the_command_line(capsys, tmp_path, tmp_path / "runs" / "handwriting", reader)


def _bad_inputs_at_the_command_line(capsys, folder, run, reader):
    """Each bad input is one line and exit 2, and a failed train leaves no run directory behind."""
    from test_cli import assert_one_line_error, run_cli

    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # a PNG header, then nothing
    rc, _, err = run_cli(capsys, "predict", run, folder / "l0.png", folder / "corrupt.png")
    assert_one_line_error(rc, err, "corrupt.png: expected a readable image")
    rc, _, err = run_cli(capsys, "predict", run, folder / "gone.png")
    assert_one_line_error(rc, err, "gone.png", "does not exist")
    # scoring a CSV whose text the model cannot write (letters, for a digits model)
    a, b = reader.alphabet[:2]
    (folder / "letters.csv").write_text(f"file,text\nl0.png,{a}{b}\nl1.png,{a}x\n")
    rc, _, err = run_cli(capsys, "evaluate", run, "--data", folder / "letters.csv")
    assert_one_line_error(rc, err, "letters.csv line 3", "['x']", "outside the model's alphabet")
    (folder / "good.csv").write_text(f"file,text\nl0.png,{a}\nl1.png,{b}{a}\n")
    rc, out, err = run_cli(capsys, "evaluate", run, "--data", folder / "good.csv", "--json")
    assert rc == 0, err
    scores = json.loads(out)
    hyps = [r["text"] for r in reader.predict([folder / "l0.png", folder / "l1.png"])]
    assert scores["cer"] == pytest.approx(report.scores([a, b + a], hyps)["cer"]) and scores["count"] == 2
    # training on a CSV that names a missing file or a corrupt image
    for bad, want in (("gone.png", "does not exist"), ("corrupt.png", "expected a readable image")):
        (folder / "bad.csv").write_text(f"file,text\nl0.png,1\n{bad},2\n")
        rc, _, err = run_cli(
            capsys,
            "train",
            "handwriting",
            "--data",
            folder / "bad.csv",
            "--runs-dir",
            folder / "runs2",
            "--name",
            "bad",
            "--no-progress",
            "--no-tesseract",
        )
        assert_one_line_error(rc, err, bad, want)
        assert not (folder / "runs2").exists() or not list((folder / "runs2").iterdir())


@pytest.mark.slow
def test_train_real_digit_lines_end_to_end(tmp_path):
    from PIL import Image

    from rnnkit.apps.handwriting import load, train

    cfg = HandwritingConfig(
        runs_dir=str(tmp_path),
        epochs=4,
        train_lines=1600,
        val_lines=100,
        test_lines=150,
        max_digits=6,
        hidden_size=64,
        num_layers=1,
        baseline_epochs=1,
        tesseract=False,
        beam_size=4,
    )
    result = train(cfg, say=lambda *a: None)
    m = result.metrics
    assert m["untrained"]["cer"] > 0.8
    assert m["test"]["cer"] < 0.5, m["test"]
    assert "connected components + CNN" in m["baselines"]
    # the feed-forward counterpart (time-delay convolutions in the BiLSTM's place) trained on the same lines for
    # as many epochs: it reads far better than the untrained CRNN; the rows judge against the strongest baseline
    ff = m["baselines"]["feed-forward (time-delay + CTC)"]
    assert ff["cer"] < 0.7 and m["feedforward"]["epochs"] == 4, (ff, m["feedforward"])
    assert not (result.run / "finished").exists() and not (result.run / "feedforward" / "finished").exists()
    twin = Model.load(result.run / "feedforward")
    assert twin.config.ctc.time_delay_layers == 4 and twin.encoder.backend == "feed-forward"
    strongest = min(m["baselines"].items(), key=lambda kv: kv[1]["cer"])
    row = next(r for r in result.rows if r.metric == "CER" and r.goal == "< baseline")
    assert (row.baseline, row.baseline_value) == (strongest[0], strongest[1]["cer"])
    for name in ("model.safetensors", "metrics.json", "config.json", "alphabet.json", "samples.png"):
        assert (result.run / name).is_file()
    # the saved run reads PNG files as the model read the arrays
    reader = load(result.run)
    images, labels, _ = data.load_digit_images()
    lines, texts = data.render_lines(
        images, labels, np.arange(6000, 6797), 5, np.random.default_rng(9), 32, 1, 6
    )
    paths = []
    for k, line in enumerate(lines):
        p = tmp_path / f"line{k}.png"
        Image.fromarray((255 - line * 255).round().astype(np.uint8)).save(p)
        paths.append(p)
    # read as they come (cut=False), they read as the arrays do
    got = [r["text"] for r in reader.predict(paths, cut=False)]
    assert got == decode_lines(reader.model, lines, reader.alphabet)
    # a digits run learns from lines cut to their ink (cut_lines, on for digits) and so cuts an image to its
    # ink, keeping the blank its validation lines have around theirs: the same lines on a canvas with wide
    # white borders, as a scan gives them, read as the cut lines do
    margin = json.loads((result.run / "alphabet.json").read_text())["line_margin"]
    assert m["cut_lines"] and reader.line_margin == margin == m["line_margin"] and 0.05 < margin < 1.0
    cut = decode_lines(
        reader.model, [data.normalize_line(Image.open(p), 32, margin=margin) for p in paths], "0123456789"
    )
    assert [r["text"] for r in reader.predict(paths)] == cut
    wide = []
    for p in paths:
        im = Image.open(p)
        canvas = Image.new("L", (im.width + 40, im.height + 50), 255)
        canvas.paste(im, (25, 30))
        wide.append(canvas)
    assert [r["text"] for r in reader.predict(wide)] == cut
    as_they_come = report.scores(texts, [r["text"] for r in reader.predict(wide, cut=False)])["cer"]
    assert as_they_come > report.scores(texts, cut)["cer"] + 0.2, (as_they_come, report.scores(texts, cut))
    with pytest.raises(RnnkitError, match=r"does not exist"):
        reader.predict([tmp_path / "nope.png"])
    shutil.rmtree(result.run)


@pytest.mark.slow
def test_lexicon_reading_uses_its_own_wider_beam(monkeypatch):
    """The lexicon search runs ``cfg.lexicon_beam`` wide unless a beam is asked for; plain beam search
    keeps the model's ``beam_size``."""
    from rnnkit.apps.handwriting import model as model_module
    from rnnkit.models import lexicon as lexicon_module
    from rnnkit.models.lexicon import Lexicon

    alphabet = " abc"
    net = tiny_model(num_labels=len(alphabet))
    lines = [np.random.default_rng(k).random((32, 40)).astype(np.float32) for k in range(3)]
    lex = Lexicon(["ab", "cab", "a"], alphabet)
    seen = []
    real = lexicon_module.lexicon_beam_search

    def spy(lp, lexicon, beam_size, **kwargs):
        seen.append(beam_size)
        return real(lp, lexicon, beam_size, **kwargs)

    monkeypatch.setattr(lexicon_module, "lexicon_beam_search", spy)
    cfg = HandwritingConfig(lexicon_beam=64)
    assert HandwritingConfig().lexicon_beam == 64 > HandwritingConfig().beam_size
    texts = model_module.decode_lines(net, lines, alphabet, lexicon=lex, cfg=cfg)
    assert seen == [64] * 3 and all(set(t.split(" ")) <= {"ab", "cab", "a"} for t in texts)
    seen.clear()
    model_module.decode_lines(net, lines, alphabet, 5, lexicon=lex, cfg=cfg)
    assert seen == [5] * 3


def test_tiny_font_run_scores_both_font_sets_and_reads_with_its_lexicon(tmp_path):
    from rnnkit.apps.handwriting import load, train

    _fonts_or_skip()
    cfg = HandwritingConfig(
        data="fonts",
        runs_dir=str(tmp_path),
        epochs=1,
        train_lines=32,
        val_lines=8,
        test_lines=8,
        channels=(4, 8, 8),
        hidden_size=8,
        num_layers=1,
        tesseract=False,
        beam_size=2,
    )
    result = train(cfg, say=lambda *a: None)
    m = result.metrics
    assert set(m["test_sets"]) == {"held-out fonts", "training fonts"}
    assert {"greedy", "lexicon"} <= set(m["test_sets"]["training fonts"]["crnn"])
    assert m["lexicon_words"] > 5_000 and (result.run / "samples.png").is_file()
    # the lexicon reader has its own rows in the results, with its own beam
    lex = m["test_sets"]["held-out fonts"]["crnn"]["lexicon"]
    assert lex["beam_size"] == cfg.lexicon_beam
    lex_rows = [r for r in result.rows if r.metric == "CER, lexicon + LM" and "held-out" in r.task]
    assert lex_rows and all(r.value == lex["cer"] for r in lex_rows)
    # ... and its feed-forward counterpart is judged there by its own lexicon + LM reading
    ff = m["test_sets"]["held-out fonts"]["baselines"]["feed-forward (time-delay + CTC)"]
    assert lex_rows[0].baselines["feed-forward (time-delay + CTC)"] == ff["lexicon"]["cer"]
    reader = load(result.run)
    lines = data.render_font_lines(
        ["she said"], data.split_fonts(data.find_fonts())[1], 3, np.random.default_rng(0)
    )[0]
    words = set(reader.lexicon.words)
    assert m["lm"]["order"] == 3 and reader.lm is not None  # the texts' word LM, made again from the config
    assert reader.lm.sentence_log_prob("one of the".split()) > reader.lm.sentence_log_prob(
        "the of one".split()
    )
    for r in reader.predict(lines, lexicon=True):
        assert all(w in words for w in r["text"].split()) and "  " not in r["text"]
    scores = reader.evaluate()
    assert {"cer (held-out fonts)", "cer (training fonts)"} <= set(scores)
    assert scores["cer (held-out fonts)"] == pytest.approx(m["test_sets"]["held-out fonts"]["crnn"]["cer"])
    # ... and the feed-forward counterpart's, read from the run's feedforward/
    assert scores["cer (held-out fonts, feed-forward)"] == pytest.approx(ff["cer"])
    assert "count (held-out fonts, feed-forward)" not in scores


def test_a_run_saved_before_capitals_and_gaps_resumes_and_loads_without_them(monkeypatch):
    """A fonts run saved before ``case_variety`` / ``word_gaps`` existed trained without them: resuming it
    (or loading its config) keeps them off unless a flag turns one on; a run saved now keeps its values."""
    import types

    from rnnkit.apps import rundir
    from rnnkit.cli import build_parser
    from rnnkit.commands import train as train_command
    from rnnkit.config import config_to_dict, saved_run_settings

    old = config_to_dict(HandwritingConfig(data="fonts", name="old"))
    added = ("case_variety", "word_gaps")
    for key in added:
        del old[key]
    assert {k: saved_run_settings(HandwritingConfig, old)[k] for k in added} == dict.fromkeys(added, False)
    now = config_to_dict(HandwritingConfig(data="fonts", word_gaps=False))
    assert saved_run_settings(HandwritingConfig, now)["case_variety"] is True
    assert saved_run_settings(HandwritingConfig, now)["word_gaps"] is False
    fake = types.SimpleNamespace(resumable=True, info={"app": "handwriting", "name": "old", "config": old})
    monkeypatch.setattr(rundir, "find_interrupted", lambda *a, **k: [fake])
    for flags, want in (([], (False, False)), (["--word-gaps"], (False, True))):
        args = build_parser().parse_args(["train", "handwriting", "--resume", *flags])
        cfg = train_command._resumed_config(HandwritingConfig, HandwritingConfig(), args)
        assert cfg.data == "fonts" and cfg.name == "old"
        assert (cfg.case_variety, cfg.word_gaps) == want
