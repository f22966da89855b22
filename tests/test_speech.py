"""Tests for rnnkit.apps.speech: the DTW baseline against a plain loop, the feature-file reader and its errors,
the splits, SpecAugment masking, and training end to end (synthetic sequences, and the real spoken digits
under ``slow``) past thresholds an untrained model fails."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit import RnnkitError
from rnnkit.apps.speech import SpeechConfig, Utterances, dtw_distances, load, read_features, split, train
from rnnkit.apps.speech.data import spec_augment

pytestmark = pytest.mark.usefixtures("one_thread")


def dtw_loop(a: np.ndarray, b: np.ndarray, window: int = 0) -> float:
    """Textbook DTW: cost = squared Euclidean distance of two frames, distance = sqrt(cheapest path).

    With a window, frames i and j may be paired when -window < j - i - shift < window, where the band is
    widened on one side by the length difference (shift in [min(0, m - n), max(0, m - n)]).
    """
    n, m = len(a), len(b)
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(n):
        lo = max(0, i - max(0, n - m) - window + 1) if window else 0
        hi = min(m, i + max(0, m - n) + window) if window else m
        for j in range(lo, hi):
            cost = float(((a[i] - b[j]) ** 2).sum())
            acc[i + 1, j + 1] = cost + min(acc[i, j + 1], acc[i + 1, j], acc[i, j])
    return float(np.sqrt(acc[n, m]))


@pytest.mark.parametrize("window", [0, 3])
def test_dtw_distances_match_a_plain_loop(window):
    rng = np.random.default_rng(1)
    queries = [rng.normal(size=(rng.integers(4, 12), 3)) for _ in range(3)]
    refs = [rng.normal(size=(rng.integers(4, 12), 3)) for _ in range(4)]
    got = dtw_distances(queries, refs, window)
    want = np.array([[dtw_loop(q, r, window) for r in refs] for q in queries])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    # a sequence and a time-stretched copy of it are at distance 0 only under warping
    a = rng.normal(size=(5, 3))
    assert dtw_distances([a], [np.repeat(a, 2, axis=0)])[0, 0] == pytest.approx(0.0, abs=1e-12)


def _write_npz(path, seqs, y=None, **extra):
    arrays = {"X": np.concatenate(seqs).astype(np.float32), "lengths": np.array([len(s) for s in seqs])}
    if y is not None:
        arrays["y"] = np.asarray(y)
    arrays.update(extra)
    np.savez(path, **arrays)
    return path


def test_read_features_round_trip_and_bad_files(tmp_path):
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(n, 4)).astype(np.float32) for n in (3, 7, 5)]
    p = _write_npz(tmp_path / "ok.npz", seqs, [1, 0, 1], speaker=np.array(["a", "b", "a"]))
    got, y, speakers = read_features(p)
    assert [g.tolist() for g in got] == [s.tolist() for s in seqs]
    assert y.tolist() == [1, 0, 1] and speakers == ["a", "b", "a"]

    with pytest.raises(RnnkitError, match="missing"):
        read_features(_write_npz(tmp_path / "nolabels.npz", seqs))
    assert len(read_features(tmp_path / "nolabels.npz", labelled=False)[0]) == 3
    bad = {"X": np.zeros((10, 4)), "lengths": np.array([3, 3]), "y": np.array([0, 1])}
    np.savez(tmp_path / "sum.npz", **bad)
    with pytest.raises(RnnkitError, match="sum to the frames of X: expected 10, got 6"):
        read_features(tmp_path / "sum.npz")
    np.savez(
        tmp_path / "obj.npz", X=np.zeros((2, 1)), lengths=np.array([2]), y=np.array([{"a": 1}], dtype=object)
    )
    with pytest.raises(RnnkitError, match="never unpickled"):
        read_features(tmp_path / "obj.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(RnnkitError, match="not a readable"):
        read_features(tmp_path / "junk.npz")
    with pytest.raises(RnnkitError, match="no such file"):
        read_features(tmp_path / "absent.npz")
    nan = [np.full((2, 4), np.nan, dtype=np.float32)]
    with pytest.raises(RnnkitError, match="NaN"):
        read_features(_write_npz(tmp_path / "nan.npz", nan, [0]))


def _utts(n_per_class=20, classes=3, speakers=None):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(classes), n_per_class)
    seqs = [rng.normal(size=(5, 2)).astype(np.float32) for _ in labels]
    return Utterances(seqs, labels, [str(k) for k in range(classes)], speakers)


def test_stratified_split_is_per_class_disjoint_and_keeps_test_when_val_changes():
    utts = _utts()
    tr, va, te = split(SpeechConfig(test_fraction=0.1, val_fraction=0.1), utts)
    assert sorted([*tr, *va, *te]) == list(range(60))
    assert np.bincount(utts.labels[te]).tolist() == [2, 2, 2]
    assert np.bincount(utts.labels[va]).tolist() == [2, 2, 2]
    _, _, te2 = split(SpeechConfig(test_fraction=0.1, val_fraction=0.3), utts)
    assert te.tolist() == te2.tolist()


def test_speaker_split_holds_out_exactly_one_speaker():
    speakers = ["ann", "bob", "cy"] * 20
    utts = _utts(speakers=speakers)
    tr, va, te = split(SpeechConfig(split="speaker", test_speaker="bob"), utts)
    assert {speakers[i] for i in te} == {"bob"} and len(te) == 20
    assert "bob" not in {speakers[i] for i in [*tr, *va]}
    with pytest.raises(RnnkitError, match="test_speaker: expected one of"):
        split(SpeechConfig(split="speaker", test_speaker="dan"), utts)
    with pytest.raises(RnnkitError, match="needs speaker labels"):
        split(SpeechConfig(split="speaker", test_speaker="bob"), _utts())


def test_spec_augment_masks_inside_the_utterance_only():
    x = torch.ones(4, 30, 13)
    lengths = torch.tensor([30, 20, 10, 5])
    x[1, 20:] = 7.0  # padding must stay as it is
    cfg = SpeechConfig(time_masks=2, time_mask_fraction=0.2, feature_masks=1, feature_mask_width=3)
    out = spec_augment(x, lengths, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(out[1, 20:], x[1, 20:])
    for b, T in enumerate(lengths.tolist()):
        zero_rows = int((out[b, :T] == 0).all(-1).sum())
        assert zero_rows <= 2 * int(T * 0.2)
        zero_cols = int((out[b, :T] == 0).all(0).sum())
        assert zero_cols <= 3 or zero_rows == T
    off = SpeechConfig(time_masks=0, feature_masks=0)
    assert torch.equal(spec_augment(x, lengths, off, torch.Generator()), x)


def _order_task(path, n=180, seed=0):
    """3 classes told apart only by the order of two bumps (feature 0 then 1, 1 then 0, both at once)."""
    rng = np.random.default_rng(seed)
    seqs, y = [], []
    for i in range(n):
        k = i % 3
        T = int(rng.integers(12, 25))
        s = rng.normal(scale=0.3, size=(T, 4))
        a, b = sorted(rng.choice(np.arange(2, T - 3), size=2, replace=False))
        first, second = [(a, b), (b, a), (a, a)][k]
        s[first : first + 2, 0] += 3.0
        s[second : second + 2, 1] += 3.0
        seqs.append(s)
        y.append(k)
    return _write_npz(path, seqs, y)


def test_train_on_a_user_file_beats_chance_and_round_trips(tmp_path, runs_dir):
    data = _order_task(tmp_path / "order.npz")
    cfg = SpeechConfig(
        data=str(data),
        name="order",
        runs_dir=str(runs_dir),
        epochs=10,
        hidden_size=16,
        early_stopping=0,
        progress=False,
        lr=1e-2,
    )
    result = train(cfg, say=lambda *_: None)
    m = result.metrics
    assert m["untrained"]["accuracy"] < 0.6
    assert m["test"]["accuracy"] >= 0.9, m["test"]
    assert m["baseline"]["accuracy"] > 0.5  # DTW ran on the same split
    # the feed-forward counterpart (the same frames at a fixed length, an MLP) too; each row is judged against
    # the stronger of the two
    assert m["feedforward"]["frames"] == 32 and 0.0 <= m["feedforward"]["accuracy"] <= 1.0
    for r, key in zip(result.rows, ("accuracy", "f1")):
        every = {"DTW 1-NN": m["baseline"][key], "MLP (no recurrence)": m["feedforward"][key]}
        assert r.baselines == every and r.baseline_value == max(every.values())
    rec = load(result.run)
    seqs, y, _ = read_features(data)
    probs = rec.predict(seqs[:5])
    from_file = rec.predict_file(data)
    assert [p["label"] for p in probs] == [p["label"] for p in from_file[:5]]
    assert [p["file"] for p in from_file[:2]] == [f"{data.name}[0]", f"{data.name}[1]"]  # which sequence
    assert rec.evaluate(str(data))["count"] == len(seqs)
    assert rec.evaluate()["accuracy"] == pytest.approx(m["test"]["accuracy"])
    # the saved feed-forward counterpart scores the test split as the report did
    assert rec.evaluate()["feedforward_accuracy"] == pytest.approx(m["feedforward"]["accuracy"])
    with pytest.raises(RnnkitError, match=r"expected an array \(frames >= 1, 4 features\)"):
        rec.predict([np.zeros((5, 13))])
    with pytest.raises(RnnkitError, match="only runs trained on 13 MFCCs"):
        rec.predict_file(tmp_path / "a.wav")
    with pytest.raises(RnnkitError, match="expected an audio file"):
        rec.predict_file(tmp_path / "a.txt")


@pytest.mark.slow
def test_spoken_digits_short_training_beats_untrained(runs_dir):
    cfg = SpeechConfig(name="digits", runs_dir=str(runs_dir), epochs=5, early_stopping=0, progress=False)
    m = train(cfg, say=lambda *_: None).metrics
    assert m["split"]["test"] == 300 and m["untrained"]["accuracy"] < 0.3
    assert m["test"]["accuracy"] >= 0.93, m["test"]
    assert m["baseline"]["accuracy"] >= 0.95  # DTW 1-NN on the same MFCCs
    assert m["feedforward"]["accuracy"] >= 0.85  # the MLP on fixed-length frames: 0.95 on this split


def test_audio_features_frames_and_bad_audio(tmp_path):
    sf = pytest.importorskip("soundfile")
    from rnnkit.apps.speech.data import audio_features

    rate = 16000
    t = np.arange(int(0.5 * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    sf.write(tmp_path / "tone.wav", np.stack([tone, tone], 1), rate)  # stereo is averaged to mono
    feats = audio_features(tmp_path / "tone.wav")
    # 0.5 s at 22,050 Hz with hop 512 (centred frames): 1 + 11025 // 512 = 22 frames of 13 MFCCs
    assert feats.shape == (22, 13) and np.isfinite(feats).all()

    sf.write(tmp_path / "silent.wav", np.zeros(rate, dtype=np.float32), rate)
    with pytest.raises(RnnkitError, match="silent"):
        audio_features(tmp_path / "silent.wav")
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), rate)
    with pytest.raises(RnnkitError, match="empty"):
        audio_features(tmp_path / "empty.wav")
    (tmp_path / "junk.wav").write_bytes(b"RIFF but not really")
    with pytest.raises(RnnkitError, match="not a readable audio file"):
        audio_features(tmp_path / "junk.wav")
    with pytest.raises(RnnkitError, match="no such audio file"):
        audio_features(tmp_path / "absent.flac")


def test_config_round_trips_and_rejects_bad_settings():
    from rnnkit.config import config_from_dict, config_to_dict, validate_config

    cfg = SpeechConfig(data="mine.npz", split="speaker", test_speaker="ann", hidden_size=32, time_masks=0)
    assert config_from_dict(SpeechConfig, config_to_dict(cfg)) == cfg
    with pytest.raises(RnnkitError, match="needs test_speaker"):
        validate_config(SpeechConfig(split="speaker"))
    with pytest.raises(RnnkitError, match="split"):
        validate_config(SpeechConfig(split="by-voice"))
    with pytest.raises(RnnkitError, match="must be < 1"):
        validate_config(SpeechConfig(val_fraction=0.5, test_fraction=0.5))


def test_cli_train_predict_evaluate_round_trip(tmp_path, capsys):
    """``rnnkit train speech --data FILE.npz`` then ``predict`` (options before or after the files) and
    ``evaluate``: the command line gives what the Python API gives."""
    import json

    from test_cli import run_cli

    data = _order_task(tmp_path / "order.npz", n=60)
    runs = tmp_path / "runs"
    rc, _, err = run_cli(
        capsys, "train", "speech", "--data", data, "--runs-dir", runs, "--name", "sp", "--epochs", "2",
        "--hidden-size", "8", "--no-progress",
    )  # fmt: skip
    assert rc == 0, err
    rc, out, err = run_cli(capsys, "predict", runs / "sp", data, "--json")
    assert rc == 0, err
    got = json.loads(out)
    want = load(runs / "sp").predict_file(data)
    assert [r["label"] for r in got] == [r["label"] for r in want] and len(got) == 60
    rc, out, err = run_cli(capsys, "evaluate", runs / "sp", "--json")
    assert rc == 0, err
    assert json.loads(out)["accuracy"] == pytest.approx(load(runs / "sp").evaluate()["accuracy"])


def test_a_tiny_user_file_gets_both_baselines(tmp_path, runs_dir):
    """15 recordings: the MLP baseline trains without early stopping (a held-out tenth of 11 recordings cannot
    hold every class, which scikit-learn refuses) instead of failing the run."""
    data = _order_task(tmp_path / "tiny.npz", n=15)
    cfg = SpeechConfig(
        data=str(data), name="tiny", runs_dir=str(runs_dir), epochs=1, hidden_size=8, progress=False
    )
    m = train(cfg, say=lambda *_: None).metrics
    assert m["feedforward"]["early_stopping"] is False and 0.0 <= m["feedforward"]["accuracy"] <= 1.0
    assert m["split"]["train"] < 15 and m["baseline"]["accuracy"] >= 0.0


@pytest.mark.parametrize("classes", [2, 3])
def test_the_saved_frame_mlp_predicts_as_scikit_learn_does(tmp_path, classes):
    """The counterpart read back without scikit-learn (NumPy forward pass) gives scikit-learn's predictions, for
    two classes (one logistic output) and more (softmax); a foreign file is one line."""
    from rnnkit.apps.speech.data import normalise
    from rnnkit.apps.speech.report import FrameMLP, feedforward

    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(int(rng.integers(5, 20)), 4)) + (i % classes) for i in range(90)]
    labels = np.arange(90) % classes
    normed = [normalise(s) + 0.3 * (i % classes) for i, s in enumerate(seqs)]
    idx = np.arange(90)
    cfg = SpeechConfig(seed=0)
    pred, info, model = feedforward(cfg, normed, labels, idx[:60], idx[60:70], idx[70:])
    np.testing.assert_array_equal(model.predict([normed[i] for i in idx[70:]]), pred)
    digest = model.save(tmp_path / "mlp.safetensors")
    back = FrameMLP.load(tmp_path / "mlp.safetensors", digest)
    np.testing.assert_array_equal(back.predict([normed[i] for i in idx[70:]]), pred)
    with pytest.raises(RnnkitError, match="corrupted"):
        FrameMLP.load(tmp_path / "mlp.safetensors", "0" * 64)
    from rnnkit.files import read_safetensors, write_safetensors

    t, meta = read_safetensors(tmp_path / "mlp.safetensors")
    write_safetensors(tmp_path / "bad.safetensors", {k: v for k, v in t.items() if k != "mean"}, meta)
    with pytest.raises(RnnkitError, match="bad.safetensors: not a saved feed-forward counterpart"):
        FrameMLP.load(tmp_path / "bad.safetensors")
