"""The image-captioning application: data and splits, scores, decoding, a tiny training run, the CLI, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sacrebleu")
PIL = pytest.importorskip("PIL")

from PIL import Image, ImageDraw  # noqa: E402

from rnnkit._errors import RnnkitError  # noqa: E402
from rnnkit.apps.caption import CaptionConfig, caption_ids, load, load_data, split, train  # noqa: E402
from rnnkit.apps.caption.data import EMOJI_FONT, NUMBER_WORDS, TONES, as_tensor, tone_family  # noqa: E402
from rnnkit.apps.caption.report import nearest_neighbour, scores  # noqa: E402
from test_cli import assert_no_runs, assert_one_line_error, run_cli  # noqa: E402


# -- scores and baselines --------------------------------------------------------------------------------------
def test_scores_use_every_reference_and_match_sacrebleu():
    import sacrebleu

    hyps = ["a red square", "two blue circles here", "one green dot"]
    refs = [["a red square", "red box"], ["two blue circles"], ["green dot", "one green dot", "a dot"]]
    s = scores(hyps, refs)
    # any reference counts for exact match: the first and the third match one of theirs
    assert s["exact_match"] == pytest.approx(200 / 3, abs=0.01)
    streams = [["a red square", "two blue circles", "green dot"], ["red box", None, "one green dot"]]
    streams.append([None, None, "a dot"])
    assert s["bleu"] == round(sacrebleu.corpus_bleu(hyps, streams).score, 2)
    # dropping the matching second reference of image 3 lowers BLEU: the extra references are used
    assert scores(hyps, [refs[0], refs[1], ["green dot"]])["bleu"] < s["bleu"]


def test_nearest_neighbour_by_pixels_is_the_brute_force_argmin():
    rng = np.random.default_rng(0)
    train_images = rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    test_images = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    refs = [[f"caption {i}"] for i in range(20)]
    got = nearest_neighbour(train_images, refs, test_images)
    for j, t in enumerate(test_images):
        d = [((t.astype(float) - x.astype(float)) ** 2).sum() for x in train_images]
        assert got[j] == refs[int(np.argmin(d))][0]


# -- built-in data ---------------------------------------------------------------------------------------------
def test_tone_family_strips_every_skin_tone():
    assert tone_family("man cartwheeling medium-dark skin tone") == ("man cartwheeling", 1)
    assert tone_family("kiss woman man dark skin tone light skin tone") == ("kiss woman man", 2)
    assert tone_family("chocolate bar") == ("chocolate bar", 0)


@pytest.mark.skipif(not EMOJI_FONT.is_file(), reason="needs Debian's fonts-noto-color-emoji")
def test_emoji_compositional_split_holds_out_unseen_combinations():
    cfg = CaptionConfig(data="emoji")
    data = load_data(cfg)
    assert len(data) > 3500 and data.images.shape[1:] == (32, 32, 3)
    tr, va, te = split(cfg, data)
    assert not set(tr) & set(te) and not set(va) & set(te) and len(te) > 250
    train_caps = {data.refs[i][0] for i in tr}
    train_words = {w for c in train_caps for w in c.split()}
    train_families = {data.families[i] for i in tr}
    for i in te:
        cap = data.refs[i][0]
        assert cap not in train_caps  # never seen whole ...
        assert data.families[i] in train_families  # ... but the figure was, with other tones
        assert any(t in cap for t in TONES) and set(cap.split()) <= train_words
    assert "grinning face" in train_caps  # emoji without a skin tone train
    rtr, _, rte = split(CaptionConfig(data="emoji", split="random"), data)
    assert not set(rtr) & set(rte) and len(rte) == round(0.1 * len(data))


def test_digit_strings_use_test_digit_images_never_seen_in_training():
    cfg = CaptionConfig(data="digits", digit_strings=300, test_strings=50)
    data = load_data(cfg)
    tr, va, te = split(cfg, data)
    assert (len(tr), len(va), len(te)) == (300, 50, 50)
    seen = {d for i in tr for d in data.digit_images[i]}
    assert not seen & {d for i in te for d in data.digit_images[i]}
    for i in tr + te:
        words = data.refs[i][0].split()
        assert 2 <= len(words) <= 4 and set(words) <= set(NUMBER_WORDS)
        assert len(words) == len(data.digit_images[i])


def _as_scan(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A drawn digit string (light ink on black, uint8) as dark ink on white at three times the size, with
    random white borders: grey values 0-1."""
    ink = Image.fromarray(255 - image[:, :, 0]).resize(
        (image.shape[1] * 3, image.shape[0] * 3), Image.BILINEAR
    )
    t, b, left, right = (int(v) for v in rng.integers(10, 80, 4))
    return np.pad(np.asarray(ink), ((t, b), (left, right)), constant_values=255) / 255.0


def test_a_scan_of_a_digit_string_is_drawn_again_like_the_strings():
    from rnnkit.apps.caption.data import DIGIT_ROWS, _canvas_width, drawn_like_digit_strings, redraw_digits

    size = (DIGIT_ROWS, _canvas_width(4))  # the canvas's own shape
    data = load_data(
        CaptionConfig(
            data="digits", digit_strings=20, test_strings=5, image_height=size[0], image_width=size[1]
        )
    )
    rng = np.random.default_rng(0)
    for image in data.images[:10]:
        drawn, scan = image[:, :, 0] / 255.0, _as_scan(image, rng)
        # a string as the run draws it reads as it is; a scan of it does not
        assert drawn_like_digit_strings(drawn) and not drawn_like_digit_strings(scan)
        again, from_scan = redraw_digits(drawn, size, 4), redraw_digits(scan, size, 4)
        # the scan drawn again is the string drawn again (both cut, centred, digits 20 rows high) ...
        assert np.abs(again / 255.0 - from_scan / 255.0).mean() < 0.05
        # ... with its ink centred and about MNIST's height (digits 20 rows, a string 20-26)
        rows = np.flatnonzero((from_scan[:, :, 0] > 76).any(1))
        cols = np.flatnonzero((from_scan[:, :, 0] > 76).any(0))
        assert 19 <= rows[-1] - rows[0] + 1 <= 27 and abs((rows[0] + rows[-1]) / 2 - (size[0] - 1) / 2) <= 2
        assert abs((cols[0] + cols[-1]) / 2 - (size[1] - 1) / 2) <= 2
    blank = redraw_digits(np.ones((40, 90)), (24, 48), 2)  # white paper: nothing drawn, no error
    assert blank.shape == (24, 48, 3) and blank.max() == 0


def test_a_picture_with_margins_is_framed_like_the_emoji():
    from rnnkit.apps.caption.data import frame_like_emoji

    yy, xx = np.mgrid[:90, :60]
    tight = np.full((90, 60, 3), 255, np.uint8)
    tight[((yy - 45) / 44) ** 2 + ((xx - 30) / 29) ** 2 <= 1] = (
        230,
        180,
        20,
    )  # a yellow oval, taller than wide
    tight[40:50, 15:45] = (90, 40, 10)
    wide = np.full((300, 400, 3), 255, np.uint8)
    wide[37:127, 201:261] = tight
    a, b = (frame_like_emoji(Image.fromarray(x), (32, 32)) for x in (tight, wide))
    # the same picture with wide margins frames to the same square: the oval centred, white either side
    assert np.array_equal(a, b)
    assert (a[:, :3] > 250).all() and (a[:, -3:] > 250).all() and (a[14:18, 14:18] < 200).any()
    blank = frame_like_emoji(Image.new("RGB", (40, 20), (255, 255, 255)), (32, 32))
    assert blank.shape == (32, 32, 3) and (blank == 255).all()


# -- a tiny training run --------------------------------------------------------------------------------------
TINY = dict(
    data="digits",
    digit_strings=1500,
    test_strings=100,
    min_digits=1,
    max_digits=2,
    image_height=24,
    image_width=48,
    conv_blocks=3,
    channels=32,
    hidden_size=64,
    embedding_dim=16,
    attention_dim=32,
    epochs=6,
    lr=4e-3,
    early_stopping=0,
    beam=3,
    progress=False,
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    return train(CaptionConfig(runs_dir=str(runs), name="digits", **TINY), say=lambda *_: None)


def test_tiny_digit_training_captions_unseen_handwriting(tiny_run):
    m = tiny_run.metrics
    # the untrained network writes no correct caption; six short epochs read a good part of the unseen
    # digit strings, more than the caption of the nearest training image by pixels
    assert m["baselines"]["untrained"]["exact_match"] == 0 and m["baselines"]["untrained"]["bleu"] < 5
    assert m["test"]["greedy"]["exact_match"] >= 25, m["test"]
    assert m["test"]["beam"]["exact_match"] > m["baselines"]["nn_pixels"]["exact_match"], m["test"]
    assert m["test"]["beam"]["chrf"] > m["baselines"]["nn_pixels"]["chrf"], m["baselines"]
    # the feed-forward counterpart (the same CNN; time-delay convolutions over the grid, a decoder that sees its
    # last four words) trained as long: past the untrained network (8 % exact, chrF 9.1 here), a baseline of
    # every row
    ff = m["baselines"]["feedforward"]
    assert ff["exact_match"] >= 3 and ff["chrf"] > 1.5 * m["baselines"]["untrained"]["chrf"], ff
    assert ff["epochs"] == 6 and all(ff["name"] in r.baselines for r in tiny_run.rows)
    for name in ("model.safetensors", "caption.json", "metrics.json", "curves.png", "captions.png"):
        assert (tiny_run.run / name).is_file(), name
    assert (tiny_run.run / "feedforward" / "model.safetensors").is_file()
    assert not (tiny_run.run / "finished").exists()
    assert not any(p.suffix in (".pt", ".pkl", ".pickle") for p in tiny_run.run.iterdir())


def test_beam_one_is_greedy_and_batched_beam_is_one_by_one(tiny_run):
    cap = load(tiny_run.run)
    data = load_data(cap.config)
    _, _, te = split(cap.config, data)
    images = data.images[te[:6]]
    greedy = caption_ids(cap.model, images, beam=1)
    res = cap.model.generate(as_tensor(images), strategy="beam", beam_size=1, max_length=25)
    assert [g["hypotheses"][0][0] for g in greedy] == res.to_lists()
    batched = caption_ids(cap.model, images, beam=4)
    for k in range(len(images)):
        alone = caption_ids(cap.model, images[k : k + 1], beam=4)[0]
        assert [t for t, _ in alone["hypotheses"]] == [t for t, _ in batched[k]["hypotheses"]]
        np.testing.assert_allclose(
            [s for _, s in alone["hypotheses"]],
            [s for _, s in batched[k]["hypotheses"]],
            rtol=1e-4,
            atol=1e-5,
        )


def test_attention_covers_the_grid(tiny_run):
    cap = load(tiny_run.run)
    data = load_data(cap.config)
    out = cap.caption(data.images[:3], attention=True)
    for r in out:
        att = r["attention"]
        assert att.shape == (len(r["caption"].split()), 3, 6)  # 24x48 images, three halvings
        np.testing.assert_allclose(att.sum(axis=(1, 2)), 1.0, rtol=1e-5)


# -- the user's images and the CLI -------------------------------------------------------------------------------
SHAPES = {"square": "rectangle", "circle": "ellipse"}
COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 170, 60)}


def _shapes_folder(folder: Path, copies: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["file,caption"]
    k = 0
    for shape, draw in SHAPES.items():
        for colour, rgb in COLOURS.items():
            for c in range(copies):
                img = Image.new("RGB", (40, 40), (255, 255, 255))
                o = 4 + 3 * c
                getattr(ImageDraw.Draw(img), draw)((o, o, o + 22, o + 22), fill=rgb)
                name = f"img{k}.png"
                img.save(folder / name)
                rows.append(f"{name},a {colour} {shape}")
                rows.append(f"{name},{colour} {shape}")  # a second reference for the same image
                k += 1
    (folder / "captions.csv").write_text("\n".join(rows) + "\n")
    return folder


USER_FLAGS = [
    "--image-height", "16", "--image-width", "16", "--conv-blocks", "2", "--channels", "8",
    "--hidden-size", "16", "--embedding-dim", "8", "--attention-dim", "8", "--epochs", "2",
    "--test-fraction", "0.25", "--val-fraction", "0.1", "--beam", "2", "--no-progress",
]  # fmt: skip


def test_cli_train_predict_evaluate_round_trip(tmp_path, capsys):
    folder = _shapes_folder(tmp_path / "shapes")
    runs = tmp_path / "runs"
    rc, out, err = run_cli(
        capsys, "train", "caption", "--data", folder, *USER_FLAGS, "--runs-dir", runs, "--name", "shapes"
    )
    assert rc == 0, err
    run = runs / "shapes"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["app"] == "caption" and metrics["split"]["training_pairs"] == 2 * metrics["split"]["train"]
    rc, out, err = run_cli(
        capsys, "predict", run, folder / "img0.png", "--beam", "2", "--n-best", "2", "--json"
    )
    assert rc == 0, err
    (result,) = json.loads(out)
    assert result["image"] == str(folder / "img0.png") and len(result["n_best"]) == 2
    assert result == load(run).caption_files([str(folder / "img0.png")], beam=2, n_best=2)[0]
    assert result["n_best"][0]["score"] >= result["n_best"][1]["score"]
    # drawing a picture again like digit strings is for runs trained on them
    rc, _, err = run_cli(capsys, "predict", run, folder / "img0.png", "--cut")
    assert_one_line_error(rc, err, "cut", "digit strings", "shapes")
    # predict decodes with the run's beam (2) unless told; --n-best lists a row per caption; bad values name
    # their flag
    rc, out, err = run_cli(capsys, "predict", run, folder / "img0.png", "--n-best", "2")
    assert rc == 0, err
    assert out.splitlines()[0].split()[:3] == ["image", "rank", "caption"] and len(out.splitlines()) == 4
    rc, out, _ = run_cli(capsys, "predict", run, folder / "img0.png", "--json")
    assert json.loads(out)[0]["caption"] == result["caption"]  # beam 2, as asked above
    for flags, fragment in (
        (["--n-best", "-2"], "--n-best: expected a whole number >= 1, got -2"),
        (["--n-best", "3", "--beam", "2"], "--n-best: expected at most the beam width (--beam 2), got 3"),
        (["--beam", "0"], "--beam: expected a whole number >= 1, got 0"),
    ):
        rc, _, err = run_cli(capsys, "predict", run, folder / "img0.png", *flags)
        assert_one_line_error(rc, err, fragment)
    rc, out, err = run_cli(capsys, "evaluate", run, "--json")
    assert rc == 0, err
    again, test = json.loads(out), metrics["test"]
    assert again["bleu_greedy"] == test["greedy"]["bleu"] and again["chrf_beam2"] == test["beam"]["chrf"]
    # ... and its feed-forward counterpart's, saved in the run's feedforward/
    ff = metrics["baselines"]["feedforward"]
    assert again["bleu_greedy (feed-forward)"] == ff["greedy"]["bleu"]
    assert again["chrf_beam2 (feed-forward)"] == ff["chrf"]
    assert again["exact_match_beam2 (feed-forward)"] == ff["exact_match"]
    # a CSV whose captions are the run's own beam-2 captions scores 100 % exact match
    own = load(run).caption_files([str(folder / f"img{k}.png") for k in range(3)], beam=2)
    (folder / "own.csv").write_text(
        "file,caption\n" + "".join(f"img{k}.png,{r['caption'] or 'x'}\n" for k, r in enumerate(own))
    )
    rc, out, err = run_cli(capsys, "evaluate", run, "--data", folder / "own.csv", "--json")
    assert rc == 0, err
    expected = 100.0 * sum(bool(r["caption"]) for r in own) / 3
    assert json.loads(out)["exact_match_beam2"] == pytest.approx(expected, abs=0.01)


def _bad_folder(tmp_path: Path, case: str) -> Path:
    folder = _shapes_folder(tmp_path / "shapes", copies=2)
    csv_path = folder / "captions.csv"
    if case == "not-an-image":
        (folder / "img0.png").write_text("this is text, not a picture\n")
    elif case == "truncated-image":
        data = (folder / "img1.png").read_bytes()
        (folder / "img1.png").write_bytes(data[: len(data) // 2])
    elif case == "missing-image":
        csv_path.write_text(csv_path.read_text() + "nowhere.png,a ghost\n")
    elif case == "missing-column":
        csv_path.write_text(csv_path.read_text().replace("file,caption", "file,text", 1))
    elif case == "empty-csv":
        csv_path.write_text("")
    return folder


@pytest.mark.parametrize(
    "case, fragments",
    [
        ("not-an-image", ["img0.png", "expected a readable image"]),
        ("truncated-image", ["img1.png", "expected a readable image"]),
        ("missing-image", ["captions.csv line", "nowhere.png", "does not exist"]),
        ("missing-column", ["captions.csv", "expected a column 'caption'", "['file', 'text']"]),
        ("empty-csv", ["captions.csv", "expected a header 'file,caption'", "got an empty file"]),
    ],
)
def test_bad_user_data_is_one_line_and_no_run(tmp_path, capsys, case, fragments):
    folder = _bad_folder(tmp_path, case)
    runs = tmp_path / "runs"
    rc, _, err = run_cli(capsys, "train", "caption", "--data", folder, *USER_FLAGS, "--runs-dir", runs)
    assert_one_line_error(rc, err, *fragments)
    assert_no_runs(runs)


def test_a_digits_run_reads_scans_of_digits_like_its_strings(tiny_run, tmp_path, capsys):
    import dataclasses

    from rnnkit.apps.caption.data import DIGIT_ROWS, _canvas_width

    cap = load(tiny_run.run)
    natural = dataclasses.replace(
        cap.config, image_height=DIGIT_ROWS, image_width=_canvas_width(cap.config.max_digits)
    )
    data = load_data(natural)
    test = split(natural, data)[2][:60]
    refs = [data.refs[i] for i in test]
    rng = np.random.default_rng(1)
    drawn, scans = [], []
    for k, i in enumerate(test):
        drawn.append(tmp_path / f"drawn{k}.png")
        Image.fromarray(data.images[i]).save(drawn[-1])
        scans.append(tmp_path / f"scan{k}.png")
        Image.fromarray(np.round(255 * _as_scan(data.images[i], rng)).astype(np.uint8)).save(scans[-1])

    def chrf(paths, cut=None):
        return scores([r["caption"] for r in cap.caption_files(paths, beam=3, cut=cut)], refs)["chrf"]

    # the strings as the run draws them are read as they are by default; scans are drawn again
    assert np.array_equal(cap.read_images(drawn), cap.read_images(drawn, cut=False))
    assert np.array_equal(cap.read_images(scans), cap.read_images(scans, cut=True))
    plain, scanned, as_they_come = chrf(drawn), chrf(scans), chrf(scans, cut=False)
    # a scan read as it comes is dark on white with borders: far from anything the run has seen
    assert scanned >= plain - 15 and as_they_come <= plain - 20, (plain, scanned, as_they_come)
    # evaluate --data reads a CSV's pictures at the run's size and as predict reads them
    (tmp_path / "scans.csv").write_text(
        "file,caption\n" + "".join(f"{p.name},{r[0]}\n" for p, r in zip(scans, refs))
    )
    ev = cap.evaluate(str(tmp_path / "scans.csv"))
    assert ev["chrf_beam3"] == pytest.approx(scanned, abs=0.01)
    rc, out, err = run_cli(capsys, "predict", tiny_run.run, *scans[:3], "--cut", "--beam", "3", "--json")
    assert rc == 0, err
    assert [r["caption"] for r in json.loads(out)] == [
        r["caption"] for r in cap.caption_files(scans[:3], beam=3, cut=True)
    ]


def test_predict_rejects_files_that_are_not_images(tiny_run, tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    rc, _, err = run_cli(capsys, "predict", tiny_run.run, text)
    assert_one_line_error(rc, err, "notes.txt", "expected a readable image")
    rc, _, err = run_cli(capsys, "predict", tiny_run.run, tmp_path / "missing.png")
    assert_one_line_error(rc, err, "missing.png", "does not exist")
    with pytest.raises(RnnkitError, match="n_best"):
        load(tiny_run.run).caption(np.zeros((1, 24, 48, 3), np.uint8), beam=2, n_best=3)
    with pytest.raises(RnnkitError, match="uint8 images of shape"):
        load(tiny_run.run).caption(np.zeros((1, 32, 32, 3), np.uint8))


def test_the_model_is_a_seq2seq_over_the_cnn_grid():
    """The decoder is rnnkit's Seq2Seq: feeding it the CNN grid by hand gives the captioner's logits."""
    from rnnkit.apps.caption import build_model

    torch.manual_seed(0)
    model = build_model(CaptionConfig(image_height=16, image_width=32, conv_blocks=2, channels=8), 20).eval()
    x = torch.randn(2, 3, 16, 32)
    tgt_in = torch.randint(4, 20, (2, 5))
    grid = model.cnn(x)  # (2, 8, 4, 8)
    cells = grid.permute(0, 2, 3, 1).reshape(2, 32, 8)  # row by row
    ref, att_ref = model.seq2seq(cells, tgt_in)
    logits, att = model(x, tgt_in)
    torch.testing.assert_close(logits, ref)
    torch.testing.assert_close(att, att_ref)
    assert att.shape == (2, 5, 32)
