"""rnnkit serve: every endpoint answers what the Python API answers for the same input, streams and
sessions equal their one-shot twins, bad requests get one-line 4xx answers, and the page works in a browser."""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rnnkit._errors import RnnkitError
from rnnkit.cli import main

fastapi = pytest.importorskip("fastapi", reason="rnnkit serve needs the 'serve' extra (fastapi)")
from fastapi.testclient import TestClient  # noqa: E402

from rnnkit.apps import load_run  # noqa: E402
from rnnkit.apps.textgen.config import GenerateConfig  # noqa: E402
from rnnkit.serve import ServeLimits, create_app  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

TEXT = "the cat sat on the mat. the dog sat on the log. a cat and a dog sat on a mat. " * 30


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Tiny runs of sentiment, timeseries, char- and word-level textgen and speech (seconds to train)."""
    root = tmp_path_factory.mktemp("serve")
    rows = ["review,sentiment"] + [
        f"{'a fine warm film' if i % 2 else 'a dull long film'} number {i},{'pos' if i % 2 else 'neg'}"
        for i in range(60)
    ]
    (root / "reviews.csv").write_text("\n".join(rows) + "\n")
    t = np.arange(160)
    y = 10 + 0.02 * t + np.sin(2 * np.pi * t / 12) + 0.05 * np.random.default_rng(0).standard_normal(len(t))
    (root / "load.csv").write_text(
        "date,load\n" + "".join(f"{2000 + i // 12}-{i % 12 + 1:02d}-01,{v:.4f}\n" for i, v in enumerate(y))
    )
    (root / "text.txt").write_text(TEXT)
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(int(rng.integers(5, 12)), 4)).astype(np.float32) for _ in range(40)]
    for k, s in enumerate(seqs):
        s[:3, k % 2] += 3.0  # two classes told apart by which feature starts high
    np.savez(
        root / "feats.npz",
        X=np.concatenate(seqs),
        lengths=np.array([len(s) for s in seqs]),
        y=np.array([k % 2 for k in range(40)]),
    )
    R = str(root / "runs")
    common = ["--runs-dir", R, "--epochs", "1", "--no-progress"]
    lm = ["--data", str(root / "text.txt"), "--max-steps", "3", "--sample-length", "0", "--no-baselines",
          "--batch-size", "4", "--runs-dir", R, "--no-progress", "--hidden-size", "16"]  # fmt: skip
    commands = [
        ["train", "sentiment", "--data", str(root / "reviews.csv"), "--text-column", "review",
         "--label-column", "sentiment", "--name", "senti", "--hidden-size", "8", "--embedding-dim", "8", *common],
        ["train", "timeseries", "--data", str(root / "load.csv"), "--horizon", "3", "--season", "12",
         "--window", "12", "--name", "load", "--hidden-size", "8", "--baselines", "naive", *common],
        ["train", "textgen", "--name", "chars", *lm],
        ["train", "textgen", "--name", "words", "--level", "word", *lm],
        ["train", "textgen", "--name", "mingru", "--cell", "mingru", *lm],  # not covered by the fast loop
        ["train", "speech", "--data", str(root / "feats.npz"), "--name", "speech", "--hidden-size", "8", *common],
    ]  # fmt: skip
    for argv in commands:
        assert main(argv) == 0, argv
    out = {p.name: p for p in (root / "runs").iterdir()}
    out["_root"] = root
    return out


@pytest.fixture(scope="module")
def client(runs):
    names = ("senti", "load", "chars", "words", "speech")
    return TestClient(create_app([runs[n] for n in names], ServeLimits(max_tokens=300, max_sessions=3)))


def _events(body: str) -> list[tuple[str, dict]]:
    out = []
    for block in body.split("\n\n"):
        if block.strip():
            lines = dict(line.split(": ", 1) for line in block.splitlines())
            out.append((lines["event"], json.loads(lines["data"])))
    return out


def _stream(client, path: str, body: dict) -> list[tuple[str, dict]]:
    with client.stream("POST", path, json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        return _events("".join(r.iter_text()))


# -- listing ---------------------------------------------------------------------------------------------------
def test_models_lists_each_run_with_its_application_and_endpoints(client, runs):
    models = {m["name"]: m for m in client.get("/models").json()["models"]}
    assert {n: m["app"] for n, m in models.items()} == {
        "senti": "sentiment", "load": "timeseries", "chars": "textgen", "words": "textgen", "speech": "speech",
    }  # fmt: skip
    assert [e["name"] for e in models["chars"]["endpoints"]] == ["score", "generate", "generate/stream"]
    assert models["load"]["sessions"]["open"] == "POST /models/load/sessions"
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["models"] == 5 and health["limits"]["max_tokens"] == 300
    paths = client.get("/openapi.json").json()["paths"]
    assert "/models/senti/classify" in paths and "/models/chars/generate/stream" in paths
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert (
        "EventSource" in client.get("/static/app.js").text or "getReader" in client.get("/static/app.js").text
    )


# -- each endpoint equals the Python API ------------------------------------------------------------------------
def test_classify_equals_the_predictor(client, runs):
    texts = ["a fine warm film", "a dull long film indeed", "number 7"]
    got = client.post("/models/senti/classify", json={"texts": texts}).json()["results"]
    assert got == load_run(runs["senti"]).predict(texts)


def test_forecast_equals_the_forecaster_and_a_chunked_session_equals_the_whole(client, runs):
    lines = (runs["_root"] / "load.csv").read_text().splitlines()[1:]
    values = [float(line.split(",")[1]) for line in lines[-30:]]
    expected = load_run(runs["load"]).predict(np.array(values))
    assert client.post("/models/load/forecast", json={"values": values}).json() == expected

    sid = client.post("/models/load/sessions").json()["session"]
    answers = [
        client.post(f"/models/load/sessions/{sid}", json={"values": values[a:b]}).json()
        for a, b in ((0, 5), (5, 6), (6, 21), (21, 30))
    ]
    assert answers[0]["forecast"] is None and answers[0]["needed"] == 12 - 5
    assert answers[-1]["total"] == 30 and answers[-1]["forecast"] == expected["forecast"]
    assert client.delete(f"/models/load/sessions/{sid}").json() == {"deleted": sid}


def test_score_equals_the_generator_and_a_chunked_session_equals_the_whole(client, runs):
    text = "the dog sat on the mat. a cat sat."
    for name, cuts in (("chars", (0, 3, 4, 17, len(text))), ("words", (0, 6, 9, 20, len(text)))):
        expected = load_run(runs[name]).score([text])[0]
        assert client.post(f"/models/{name}/score", json={"texts": [text]}).json()["results"] == [expected]
        sid = client.post(f"/models/{name}/sessions").json()["session"]
        for a, b in zip(cuts, cuts[1:]):  # "the d|og": a word cut in two is held back
            last = client.post(
                f"/models/{name}/sessions/{sid}", json={"text": text[a:b], "end": b == len(text)}
            ).json()
        assert last["tokens"] == expected["tokens"] and last["pending"] == ""
        assert math.isclose(last["bits_per_token"], expected["bits_per_token"], rel_tol=1e-5)
        client.delete(f"/models/{name}/sessions/{sid}")


@pytest.mark.parametrize("name", ["chars", "words"])
def test_generation_equals_the_generator_and_the_stream_joins_to_it(client, runs, name):
    settings = {"length": 60, "temperature": 0.9, "top_k": 5, "top_p": 0.95, "seed": 11}
    body = {"prompt": "the cat ", **settings}
    expected = load_run(runs[name]).generate("the cat ", GenerateConfig(**settings, num_samples=2))
    got = client.post(f"/models/{name}/generate", json={**body, "num_samples": 2}).json()
    assert got == {"prompt": "the cat ", "samples": expected}
    events = _stream(client, f"/models/{name}/generate/stream", body)
    assert events[-1][0] == "done" and all(e == "token" for e, _ in events[:-1])
    assert "".join(d["text"] for _, d in events[:-1]) == expected[0]
    assert events[-1][1]["tokens"] == len(events) - 1 > 1
    other = client.post(f"/models/{name}/generate", json={**body, "seed": 12}).json()["samples"][0]
    assert other != expected[0]  # the seed is the request's


# -- generation batched across requests --------------------------------------------------------------------------
SETTINGS = [  # (prompt, length, temperature, top_k, top_p, seed): greedy, plain, top-k, top-p, an empty prompt
    ("the cat ", 50, 0.0, 0, 1.0, 0),
    ("the cat ", 70, 0.9, 0, 1.0, 3),
    ("a dog", 40, 1.2, 4, 1.0, 3),
    ("on the", 90, 0.8, 0, 0.9, 5),
    ("", 30, 1.0, 0, 1.0, 8),
]


def _expected(generator, prompt, length, temperature, top_k, top_p, seed) -> str:
    gen = GenerateConfig(length=length, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    return generator.generate(prompt, gen, backend="python")[0]  # the reference loop, not the compiled one


@pytest.mark.parametrize("name", ["chars", "words"])
def test_streams_batched_together_equal_each_stream_alone(runs, name):
    """Streams that join one batch together, and others joining while it runs, each give the text of
    the Python API's reference loop for their own seed and settings."""
    import asyncio

    from rnnkit.apps.textgen.model import _prompt_ids
    from rnnkit.serve._batch import GenerationBatcher, Ticket

    g = load_run(runs[name])
    batcher = GenerationBatcher(g.model, [g.vocab.decode([i]) for i in range(len(g.vocab))], max_streams=64)

    def ticket(prompt, length, temperature, top_k, top_p, seed):
        spaced = bool(prompt.strip()) if name == "words" else None
        ids = _prompt_ids(g.vocab, prompt)
        return Ticket(ids, length, temperature, top_k, top_p, seed * 7919, time.monotonic() + 60, spaced)

    async def run():
        with batcher._cond:  # the worker waits until all five are in: they join one batch together
            first = [batcher.submit(ticket(*s)) for s in SETTINGS]
        texts = [first[1].batches()]
        head = "".join(await texts[0].__anext__())  # the batch is running; three more join it now
        later = [batcher.submit(ticket(p, n + 7, t, k, q, seed + 1)) for p, n, t, k, q, seed in SETTINGS[2:]]
        rest = "".join([p async for b in texts[0] for p in b])
        others = [await t.text() for i, t in enumerate(first) if i != 1]
        return [*others[:1], head + rest, *others[1:]], [await t.text() for t in later]

    together, joined = asyncio.run(run())
    assert batcher.peak >= 5 and len(batcher) == 0
    assert together == [_expected(g, *s) for s in SETTINGS]
    assert joined == [_expected(g, p, n + 7, t, k, q, seed + 1) for p, n, t, k, q, seed in SETTINGS[2:]]
    batcher.close()


def test_concurrent_http_requests_each_get_their_own_text(runs):
    """Many generate and generate/stream requests at once, batched on the server or each on its own
    (--generation per-request): every answer is the Python API's for its own settings."""
    import asyncio

    import httpx

    g = load_run(runs["chars"])
    expected = [_expected(g, *s) for s in SETTINGS]

    def body(prompt, length, temperature, top_k, top_p, seed):
        return dict(
            prompt=prompt, length=length, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed
        )

    async def ask(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as http:
            streamed = [http.post("/models/chars/generate/stream", json=body(*s)) for s in SETTINGS]
            plain = [http.post("/models/chars/generate", json=body(*s)) for s in SETTINGS]
            answers = await asyncio.gather(*streamed, *plain)
            health = (await http.get("/health")).json()
        streams = ["".join(d["text"] for e, d in _events(r.text) if e == "token") for r in answers[:5]]
        return streams, [r.json()["samples"][0] for r in answers[5:]], health

    for generation in ("batched", "per-request"):
        app = create_app([runs["chars"]], ServeLimits(generation=generation))
        streams, plain, health = asyncio.run(ask(app))
        assert streams == expected and plain == expected, generation
        info = TestClient(app).get("/models").json()["models"][0]["generation"]
        assert info["path"] == generation
        if generation == "batched":
            assert health["running"]["chars"]["generation_streams"] == 0


def test_a_model_outside_the_fast_loop_is_generated_per_request(runs):
    app = create_app([runs["mingru"]])
    c = TestClient(app)
    info = c.get("/models").json()["models"][0]["generation"]
    assert info["path"] == "per-request" and "MinGRU" in info["reason"]
    settings = {"length": 40, "temperature": 0.9, "top_k": 5, "seed": 2}
    expected = load_run(runs["mingru"]).generate("the ", GenerateConfig(**settings))
    assert (
        c.post("/models/mingru/generate", json={"prompt": "the ", **settings}).json()["samples"] == expected
    )
    with pytest.raises(RnnkitError, match="--generation batched: the compiled loop does not cover"):
        create_app([runs["mingru"]], ServeLimits(generation="batched"))
    with pytest.raises(RnnkitError, match="generation"):
        create_app([runs["mingru"]], ServeLimits(generation="sometimes"))


def test_greedy_stream_equals_greedy_generation(client, runs):
    body = {"prompt": "", "length": 40, "temperature": 0}
    expected = load_run(runs["chars"]).generate("", GenerateConfig(length=40, temperature=0))[0]
    events = _stream(client, "/models/chars/generate/stream", body)
    assert "".join(d["text"] for e, d in events if e == "token") == expected


def test_transcribe_an_uploaded_npz_equals_predict_file(client, runs):
    path = runs["_root"] / "feats.npz"
    expected = load_run(runs["speech"]).predict_file(path)
    r = client.post("/models/speech/transcribe", files={"file": ("feats.npz", path.read_bytes())})
    assert r.status_code == 200 and r.json()["results"] == expected
    r = client.post("/models/speech/transcribe", files={"file": ("feats.txt", b"1,2")})
    assert r.status_code == 400 and ".npz" in r.json()["detail"]
    r = client.post("/models/speech/transcribe", files={"file": ("bad.npz", b"not a zip")})
    assert (
        r.status_code == 400 and "bad.npz" in r.json()["detail"] and "rnnkit-serve" not in r.json()["detail"]
    )


@pytest.fixture(scope="module")
def more_runs(tmp_path_factory) -> dict[str, Path]:
    """Tiny translate, handwriting and music runs (about 25 s on one core together)."""
    from PIL import Image

    from rnnkit.apps.handwriting import HandwritingConfig, data
    from rnnkit.apps.handwriting import train as train_handwriting
    from rnnkit.apps.music import MusicConfig
    from rnnkit.apps.music import train as train_music
    from rnnkit.apps.translate import TranslateConfig
    from rnnkit.apps.translate import train as train_translate

    root = tmp_path_factory.mktemp("serve-more")
    R = str(root / "runs")
    quiet = {"runs_dir": R, "progress": False}
    train_translate(
        TranslateConfig(data="num2words", target_lang="fr", max_number=99, hidden_size=16, embedding_dim=8,
                        attention_dim=8, epochs=1, early_stopping=0, beam=2, eval_sentences=10, name="n2w",
                        **quiet),
        say=lambda *_: None,
    )  # fmt: skip
    images, labels, _ = data.load_digit_images()
    lines, texts = data.render_lines(
        images, labels, np.arange(0, 6797, 7), 12, np.random.default_rng(2), 32, 1, 4
    )
    rows = ["file,text"]
    for k, (line, text) in enumerate(zip(lines, texts)):
        Image.fromarray((255 - line * 255).round().astype(np.uint8)).save(root / f"l{k}.png")
        rows.append(f"l{k}.png,{text}")
    (root / "lines.csv").write_text("\n".join(rows) + "\n")
    train_handwriting(
        HandwritingConfig(data=str(root / "lines.csv"), epochs=1, channels=(4, 4, 4), hidden_size=8, num_layers=1,
                          tesseract=False, beam_size=2, name="hw", runs_dir=R),
        say=lambda *_: None,
    )  # fmt: skip
    try:
        train_music(
            MusicConfig(max_tunes=60, epochs=1, hidden_size=16, embedding_dim=8, dropout=0.0, eval_samples=1,
                        eval_max_length=50, ngram_max_order=2, name="tunes", threads=1, **quiet),
            say=lambda *_: None,
        )  # fmt: skip
    except RnnkitError as exc:  # no cached folk tunes and no index to fetch them from
        print(f"no music run: {exc}")
    return {p.name: p for p in (root / "runs").iterdir()} | {"_root": root}


def test_translate_read_and_tunes_equal_the_python_api(more_runs):
    from rnnkit.apps.music.abc import tokens_to_abc
    from rnnkit.apps.music.config import GenerateMusicConfig

    names = [n for n in ("n2w", "hw", "tunes") if n in more_runs]
    c = TestClient(create_app([more_runs[n] for n in names]))
    sentences = ["twenty one", "seven"]
    got = c.post("/models/n2w/translate", json={"sentences": sentences, "beam": 2, "n_best": 2}).json()
    assert got["results"] == load_run(more_runs["n2w"]).translate(sentences, beam=2, n_best=2)
    _fails(
        c.post("/models/n2w/translate", json={"sentences": ["one"], "beam": 1, "n_best": 2}), 400, "n_best"
    )
    _fails(c.post("/models/n2w/translate", json={"sentences": ["one"], "beam": 9}), 422, "beam")

    png = more_runs["_root"] / "l3.png"
    got = c.post("/models/hw/read", files={"file": ("l3.png", png.read_bytes())}).json()["results"]
    assert got == [{"image": "l3.png", "text": load_run(more_runs["hw"]).predict([png])[0]["text"]}]
    _fails(c.post("/models/hw/read", files={"file": ("l3.png", b"not an image")}), 400, "l3.png", "image")

    if "tunes" not in more_runs:
        pytest.skip("no folk tunes in the cache to train the music run")
    body = {"meter": "6/8", "num_samples": 2, "max_length": 80, "seed": 4}
    got = c.post("/models/tunes/generate", json=body).json()["tunes"]
    tunes = load_run(more_runs["tunes"]).tunes(GenerateMusicConfig(**body))
    assert [t["tokens"] for t in got] == tunes
    assert got[1]["abc"] == tokens_to_abc(tunes[1], "rnnkit tunes 2", 2)
    _fails(c.post("/models/tunes/generate", json={"key": "H#"}), 400, "key")


# -- captions of posted images -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def caption_run(tmp_path_factory) -> Path:
    """A tiny caption run on 24 drawn shapes (two epochs, about two seconds)."""
    from PIL import Image, ImageDraw

    from rnnkit.apps.caption import CaptionConfig
    from rnnkit.apps.caption import train as train_caption

    root = tmp_path_factory.mktemp("serve-caption")
    rows = ["file,caption"]
    colours = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 170, 60)}
    for k in range(24):
        shape, (colour, rgb) = ("square", "circle")[k % 2], list(colours.items())[k // 2 % 3]
        img = Image.new("RGB", (40, 40), (255, 255, 255))
        o = 2 + 2 * (k // 6)
        draw = ImageDraw.Draw(img)
        (draw.rectangle if shape == "square" else draw.ellipse)((o, o, o + 24, o + 24), fill=rgb)
        img.save(root / f"s{k}.png")
        rows.append(f"s{k}.png,a {colour} {shape}")
    (root / "captions.csv").write_text("\n".join(rows) + "\n")
    cfg = CaptionConfig(
        data=str(root / "captions.csv"), image_height=16, image_width=16, conv_blocks=2, channels=8, hidden_size=16,
        embedding_dim=8, attention_dim=8, epochs=2, test_fraction=0.25, val_fraction=0.1, beam=2, name="shapes",
        runs_dir=str(root / "runs"), progress=False,
    )  # fmt: skip
    return train_caption(cfg, say=lambda *_: None).run


def test_caption_of_posted_images_equals_the_captioner(caption_run):
    import base64

    from rnnkit.apps.caption import load as load_captioner

    folder = caption_run.parent.parent
    c = TestClient(create_app([caption_run], ServeLimits(max_image_pixels=40 * 40)))
    files = [folder / "s3.png", folder / "s10.png"]
    b64 = [base64.b64encode(f.read_bytes()).decode() for f in files]
    cap = load_captioner(caption_run)
    for beam, n_best in ((1, 1), (3, 2)):
        expected = [
            {k: v for k, v in r.items() if k != "image"}
            for r in cap.caption_files([str(f) for f in files], beam=beam, n_best=n_best)
        ]
        body = {"images": [b64[0], "data:image/png;base64," + b64[1]], "beam": beam, "n_best": n_best}
        got = c.post("/models/shapes/caption", json=body).json()["results"]
        assert got == expected and len(got[1]["n_best"]) == n_best
    example = c.get("/models").json()["models"][0]["endpoints"][0]["example"]
    assert c.post("/models/shapes/caption", json=example).status_code == 200  # the page's example runs

    from PIL import Image

    big = io.BytesIO()
    Image.new("RGB", (41, 40)).save(big, "PNG")
    big64 = base64.b64encode(big.getvalue()).decode()
    _fails(c.post("/models/shapes/caption", json={"images": [big64]}), 413, "41x40", "1,600")
    text64 = base64.b64encode(b"just some text, not a picture").decode()
    _fails(c.post("/models/shapes/caption", json={"images": [text64]}), 400, "images.0", "expected an image")
    _fails(c.post("/models/shapes/caption", json={"images": ["%%%"]}), 400, "images.0", "base64")
    _fails(c.post("/models/shapes/caption", json={"images": ["data:text/plain,hi"]}), 400, "data: URL")
    _fails(c.post("/models/shapes/caption", json={"images": [b64[0]], "beam": 2, "n_best": 3}), 400, "n_best")
    _fails(c.post("/models/shapes/caption", json={"images": [b64[0]], "beam": 0}), 422, "beam")
    _fails(c.post("/models/shapes/caption", json={"images": []}), 422, "images")
    small = TestClient(create_app([caption_run], ServeLimits(max_body_mb=0.001)))
    _fails(small.post("/models/shapes/caption", json={"images": [b64[0] * 8]}), 413, "too large")


# -- a real recording through HTTP --------------------------------------------------------------------------------
@pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="needs the espeak-ng binary (Debian package espeak-ng)"
)
def test_a_spoken_wav_is_transcribed_as_the_python_api_does(tmp_path):
    """WAV files spoken by espeak-ng, a tiny connected-speech (CTC) run trained on them, and one more
    recording posted to its transcribe endpoint: the answer is SpeechTranscriber.transcribe_file's. The run
    is an ensemble of two networks (the single-network path is the ``runs`` fixture's speech run)."""
    import subprocess

    from rnnkit.apps.speech import SpeechConfig
    from rnnkit.apps.speech import train as train_speech

    words = ["zero", "one", "two", "three", "four", "five"]
    rows = ["file,transcript"]
    for i in range(12):
        text = f"{words[i % 6]} {words[(i * 5 + 1) % 6]}"
        wav = tmp_path / f"u{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(150 + 5 * i), "-w", str(wav), text], check=True)
        rows.append(f"u{i}.wav,{text}")
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    cfg = SpeechConfig(
        name="said", runs_dir=str(tmp_path / "runs"), data=str(tmp_path / "data.csv"), bidirectional=False,
        hidden_size=16, conv_channels=8, epochs=1, batch_size=4, early_stopping=0, test_fraction=0.2,
        val_fraction=0.2, time_masks=0, feature_masks=0, dropout=0.0, progress=False, beam_size=2, ensemble=2,
    )  # fmt: skip
    run = train_speech(cfg, say=lambda *_: None).run
    assert len(load_run(run).models) == 2
    wav = tmp_path / "new one.wav"
    subprocess.run(["espeak-ng", "-v", "en-gb", "-w", str(wav), "four two five"], check=True)
    expected = load_run(run).transcribe_file(wav)
    c = TestClient(create_app([run]))
    r = c.post("/models/said/transcribe", files={"file": ("new one.wav", wav.read_bytes(), "audio/wav")})
    assert r.status_code == 200, r.text
    assert r.json() == {"results": [{**expected, "file": "new_one.wav"}]}
    assert expected["file"] == "new one.wav" and {"text", "words"} <= expected.keys()
    _fails(c.post("/models/said/transcribe", files={"file": ("x.npz", b"PK")}), 400, ".wav")
    _fails(c.post("/models/said/transcribe", files={"file": ("x.wav", b"RIFF but not audio")}), 400, "x.wav")


# -- bad requests and limits -------------------------------------------------------------------------------------
def _fails(response, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail
    for f in fragments:
        assert f in detail, detail


def test_bad_requests_get_one_line_4xx_answers(client):
    _fails(client.post("/models/senti/classify", json={"texts": []}), 422, "texts", "at least 1")
    _fails(client.post("/models/senti/classify", json={"text": ["x"]}), 422, "texts: Field required", "text:")
    _fails(client.post("/models/senti/classify", json={"texts": [3]}), 422, "texts.0")
    _fails(
        client.post("/models/senti/classify", content=b"{oops", headers={"content-type": "application/json"}),
        422,
    )
    _fails(client.post("/models/load/forecast", json={"values": [1.0, 2.0]}), 400, "window = 12", "got 2")
    _fails(client.post("/models/load/forecast", json={"values": [[1.0, 2.0]] * 12}), 400, "1 value(s)")
    _fails(
        client.post("/models/load/forecast", json={"values": [1.0] * 12, "times": ["x"]}), 400, "one time per"
    )
    _fails(client.post("/models/chars/generate", json={"length": 301}), 422, "length", "300")
    _fails(client.post("/models/chars/generate", json={"top_p": 0}), 422, "top_p")
    _fails(client.post("/models/chars/generate/stream", json={"num_samples": 2}), 422, "num_samples")
    _fails(client.post("/models/nope/classify", json={}), 404, "/models/nope/classify", "GET /models")
    _fails(client.get("/models/senti/classify"), 405, "GET")
    _fails(client.post("/models/load/sessions/nope", json={"values": [1.0]}), 404, "no session 'nope'")
    _fails(client.delete("/models/load/sessions/nope"), 404, "no session")


def test_session_limit_expiry_and_other_models_sessions(runs):
    from rnnkit.serve._sessions import SessionMissing, SessionStore

    c = TestClient(create_app([runs["load"], runs["chars"]], ServeLimits(max_sessions=2)))
    a = c.post("/models/load/sessions").json()["session"]
    c.post("/models/chars/sessions")
    _fails(c.post("/models/load/sessions"), 429, "limit is 2")
    _fails(c.post(f"/models/chars/sessions/{a}", json={"text": "x"}), 404, "no session")  # another model's
    c.delete(f"/models/load/sessions/{a}")
    assert c.post("/models/load/sessions").status_code == 201

    now = [0.0]
    store = SessionStore(2, idle_s=10, clock=lambda: now[0])
    sid = store.create("m", "state")
    now[0] = 9.0
    assert store.get("m", sid).state == "state"  # a use restarts the idle clock
    now[0] = 18.0
    assert len(store) == 1
    now[0] = 19.5
    assert len(store) == 0
    with pytest.raises(SessionMissing, match="expired"):
        store.get("m", sid)


def test_body_size_and_time_limits(runs):
    c = TestClient(
        create_app([runs["chars"], runs["speech"]], ServeLimits(max_body_mb=0.001, timeout_s=0.05))
    )
    _fails(c.post("/models/chars/score", json={"texts": ["x" * 2000]}), 413, "1,000 bytes")
    _fails(c.post("/models/speech/transcribe", files={"file": ("a.npz", b"0" * 5000)}), 413, "too large")
    slow = TestClient(create_app([runs["chars"]], ServeLimits(timeout_s=0.05, max_tokens=100_000)))
    _fails(slow.post("/models/chars/generate", json={"length": 100_000}), 504, "0.05 s")
    events = _stream(slow, "/models/chars/generate/stream", {"length": 100_000})
    assert events[-1][0] == "error" and "time limit" in events[-1][1]["detail"]


def test_serve_command_fails_at_start_on_a_bad_run(tmp_path, capsys, runs):
    rc = main(["serve", str(runs["chars"]), str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "missing" in err and "does not exist" in err
    twin = tmp_path / "x" / "chars"
    shutil.copytree(runs["chars"], twin)
    rc = main(["serve", str(runs["chars"]), str(twin)])
    err = capsys.readouterr().err
    assert rc == 2 and "two runs are named 'chars'" in err
    # a port another program holds: one line before anything says "serving" (uvicorn logged and exited 3)
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        rc = main(["serve", str(runs["chars"]), "--port", str(port)])
    out, err = capsys.readouterr()
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "serving" not in out
    assert f"127.0.0.1:{port}" in err and "choose another --port" in err


# -- the page in a real browser ----------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serving(app):
    """``app`` on uvicorn in a thread, on a free port (yielded), for as long as the block runs."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        assert server.started
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_client_that_leaves_takes_its_stream_out_of_the_batch(runs):
    """A streaming client that disconnects after a few tokens: its stream leaves the batch (no stream
    left computing for nobody), and the server goes on answering."""
    import httpx

    limits = ServeLimits(max_tokens=10_000_000, timeout_s=600)
    with _serving(create_app([runs["chars"]], limits)) as port:
        base = f"http://127.0.0.1:{port}"
        running = lambda: httpx.get(base + "/health").json()["running"]["chars"]  # noqa: E731
        body = {"prompt": "the ", "length": 10_000_000, "seed": 1}  # minutes of work if nobody stops it
        with httpx.stream("POST", base + "/models/chars/generate/stream", json=body, timeout=30) as r:
            seen = 0
            for line in r.iter_lines():
                seen += line.startswith("event: token")
                if seen == 20:
                    assert running()["generation_streams"] == 1
                    break  # httpx closes the connection of a response left half-read
        for _ in range(100):  # the server notices at its next write
            if running()["generation_streams"] == 0:
                break
            time.sleep(0.05)
        assert running() == {"generation_streams": 0, "most_streams_batched": 1}
        r = httpx.post(base + "/models/chars/generate", json={"length": 20, "seed": 1})
        assert r.status_code == 200 and len(r.json()["samples"][0]) > 0


def test_the_page_streams_generation_and_captions_in_a_real_browser(runs, caption_run):
    chromium = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if chromium is None:
        pytest.skip("no chromium on this machine (Debian package 'chromium'; `make` installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright")

    from rnnkit.apps.caption import load as load_captioner

    image = caption_run.parent.parent / "s5.png"
    captioned = load_captioner(caption_run).caption_files([str(image)], beam=2, n_best=2)[0]
    with _serving(create_app([runs["senti"], runs["chars"], caption_run])) as port:
        expected = load_run(runs["chars"]).generate(
            "the ", GenerateConfig(length=80, temperature=0.7, seed=5)
        )[0]
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{port}/")
                page.select_option("#model", "chars")
                request = {"prompt": "the ", "length": 80, "temperature": 0.7, "seed": 5}
                page.locator(".card", has_text="generate/stream").locator("textarea").fill(
                    json.dumps(request)
                )
                page.click("#send-generate-stream")
                page.wait_for_function(
                    "document.querySelector('#out-generate-stream').dataset.state === 'done'"
                )
                assert page.text_content("#out-generate-stream") == expected
                page.select_option("#model", "senti")
                page.click("#send-classify")
                page.wait_for_function(
                    "document.querySelector('#out-classify').textContent.includes('label')"
                )
                page.select_option("#model", "shapes")  # an image chosen in the page, sent as a data: URL
                page.set_input_files("#files-caption", str(image))
                page.click("#send-caption")
                page.wait_for_function(
                    "document.querySelector('#out-caption').textContent.includes('n_best')"
                )
                (shown,) = json.loads(page.text_content("#out-caption"))["results"]
                assert shown == {k: v for k, v in captioned.items() if k != "image"}
            finally:
                browser.close()
