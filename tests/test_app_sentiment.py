"""The sentiment application: length limit, reading long texts in pieces, early stopping, data names, baselines."""

from __future__ import annotations

import csv
import json
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rnnkit import RnnkitError
from rnnkit.apps import sentiment
from rnnkit.apps.sentiment import SentimentConfig
from rnnkit.apps.sentiment.data import chunk, extra_names, token_limit
from rnnkit.apps.sentiment.train import _StopOnceLearnt


def test_chunk_reads_every_token_in_nearly_equal_pieces():
    ids = [list(range(10)), list(range(3)), list(range(7))]
    pieces, owner = chunk(ids, 4)
    # 10 tokens at limit 4 -> 3 pieces of 3/4/3 (no short tail); 3 -> one piece; 7 -> 4/3 (round-half-even)
    assert pieces == [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9], [0, 1, 2], [0, 1, 2, 3], [4, 5, 6]]
    assert owner == [0, 0, 0, 1, 2, 2]
    cut, owner = chunk(ids, 4, "cut")
    assert cut == [[0, 1, 2, 3], [0, 1, 2], [0, 1, 2, 3]] and owner == [0, 1, 2]


def test_token_limit_comes_from_the_training_lengths():
    cfg = SentimentConfig()
    assert token_limit(cfg, [3, 17, 9]) == 17  # the longest training text
    assert token_limit(cfg, [3, 5000]) == cfg.max_tokens_cap  # capped
    assert token_limit(SentimentConfig(max_tokens=8), [3, 5000]) == 8  # the user's choice wins


def test_predict_proba_averages_the_pieces_of_a_long_text():
    torch.manual_seed(0)
    cfg = SentimentConfig(hidden_size=6, embedding_dim=5, dropout=0.0, subword_buckets=0)
    model = sentiment.build_model(cfg, 30, 3).eval()
    rng = random.Random(0)
    ids = [[rng.randrange(2, 30) for _ in range(n)] for n in (11, 4, 1, 9)]
    got = sentiment.predict_proba(model, ids, limit=4)
    # reference: each piece alone (no padding), softmax of the model's logits, mean over a text's pieces
    pieces, owner = chunk(ids, 4)
    with torch.no_grad():
        each = [model(torch.tensor([p])).softmax(-1)[0].numpy() for p in pieces]
    want = np.stack([np.mean([e for e, o in zip(each, owner) if o == i], axis=0) for i in range(len(ids))])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _trainer(accs, epoch):
    rows = [{"val_accuracy": a} for a in accs]
    return SimpleNamespace(state=SimpleNamespace(history=rows, epoch=epoch))


def test_early_stopping_waits_until_validation_beats_the_majority_class():
    def stop():
        return _StopOnceLearnt(patience=2, min_epochs=3, majority=0.6)

    # a long plateau at the majority class never stops the run
    assert not stop()(_trainer([0.6, 0.6, 0.6, 0.6, 0.6, 0.6], 6))
    # learnt at validation 4; best 0.7 there, then two validations without a better one -> stop
    assert stop()(_trainer([0.6, 0.6, 0.6, 0.7, 0.65, 0.7], 6)) == "early_stopping"
    assert not stop()(_trainer([0.6, 0.6, 0.6, 0.7, 0.65], 5))  # one validation only
    once = stop()
    assert not once(_trainer([0.6, 0.6, 0.6, 0.6], 4))
    assert once(_trainer([0.6, 0.6, 0.6, 0.6, 0.7, 0.6, 0.6], 7)) == "early_stopping"
    # the same history before min_epochs: keep going
    assert not _StopOnceLearnt(2, 10, 0.6)(_trainer([0.6, 0.6, 0.6, 0.7, 0.65, 0.7], 6))
    # patience 0 = never
    assert not _StopOnceLearnt(0, 0, 0.6)(_trainer([0.7, 0.6, 0.6, 0.6], 4))


def test_data_accepts_the_held_out_sets(monkeypatch):
    import rnnkit.datasets.extra as extra

    assert {"vader_tweets", "movie_reviews", "bol_reviews"} <= set(extra_names())
    monkeypatch.setattr(extra, "load_extra", lambda name: [("good", 2), ("meh", 1), ("bad", 0)])
    texts, labels, classes = sentiment.load_texts(SentimentConfig(data="vader_tweets"))
    assert texts == ["good", "meh", "bad"] and labels == [2, 1, 0]
    assert classes == ["negative", "neutral", "positive"]


def _long_documents(path, n=360, length=90, seed=0):
    """Documents of filler words whose only sentiment words sit in their last 25 tokens."""
    rng = random.Random(seed)
    filler = [f"w{i}" for i in range(60)]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            label = i % 2
            words = [rng.choice(filler) for _ in range(length)]
            for j in rng.sample(range(length - 25, length), 4):
                words[j] = rng.choice(["great", "superb", "lovely"] if label else ["awful", "dull", "poor"])
            w.writerow([" ".join(words), "pos" if label else "neg"])


def test_long_documents_are_read_in_full_and_the_report_counts_them(tmp_path):
    data = tmp_path / "long.csv"
    _long_documents(data)
    common = dict(
        data=str(data), runs_dir=str(tmp_path), max_tokens=30, hidden_size=16, embedding_dim=16,
        epochs=8, min_epochs=8, lr=1e-2, progress=False, batch_size=16,
    )  # fmt: skip
    full = sentiment.train(SentimentConfig(name="full", **common), say=lambda s: None).metrics
    cut = sentiment.train(SentimentConfig(name="cut", long_texts="cut", **common), say=lambda s: None).metrics
    assert full["lengths"]["longer_than_limit"] == {"train": 288, "val": 36, "test": 36}
    assert full["lengths"]["cut"] == 0 and cut["lengths"]["cut"] == 360
    assert full["lengths"]["training_pieces"] == 288 * 3  # 90 tokens in 3 pieces of 30
    # the sentiment words lie beyond the first 30 tokens: cutting leaves chance, reading in full learns
    assert cut["test"]["accuracy"] <= 0.7
    assert full["test"]["accuracy"] >= 0.85
    # every baseline is in the report; met is judged against the strongest
    assert set(full["baselines"]) == {"tfidf", "bow", "mlp"}
    best = max(full["baselines"].values(), key=lambda b: b["accuracy"])
    assert full["baselines"][full["strongest_baseline"]]["accuracy"] == best["accuracy"]
    loaded = sentiment.load(tmp_path / "full")  # the saved run reads in pieces too
    assert loaded.evaluate()["accuracy"] == pytest.approx(full["test"]["accuracy"])


def test_language_model_pretraining_learns_both_directions():
    import math

    from rnnkit.apps.sentiment.model import pretrain_lm

    torch.manual_seed(0)
    cfg = SentimentConfig(
        hidden_size=16,
        embedding_dim=8,
        dropout=0.0,
        pretrain_epochs=30,
        lr=1e-2,
        batch_size=8,
        subword_buckets=0,
    )
    model = sentiment.build_model(cfg, 12, 2)
    # a cycle 2..11: each token fixes both its successor and its predecessor
    pieces = [[2 + (s + t) % 10 for t in range(12)] for s in range(16)]
    out = pretrain_lm(model, pieces, cfg, seconds=60.0)
    assert out["epochs"] == 30
    assert out["first_loss"] > 0.8 * math.log(12)  # starts near uniform over the vocabulary
    assert out["last_loss"] < 0.1  # both directions learnt their (deterministic) neighbour


# ------------------------------------------------------------------------------------------------------
# subword (hashed character n-gram) features, joined pooling, the lr schedule
# ------------------------------------------------------------------------------------------------------
def test_char_ngrams_of_a_word_with_boundary_marks():
    from rnnkit.apps.sentiment.subword import char_ngrams

    got = char_ngrams("cat", 3, 5)
    assert sorted(got) == sorted(["<ca", "cat", "at>", "<cat", "cat>", "<cat>"])
    assert char_ngrams("a", 3, 6) == ["<a>"]


def test_hashed_ngram_embedding_matches_the_plain_loop_forward_and_backward():
    from rnnkit.apps.sentiment.subword import HashedNgramEmbedding, Subwords, subword_vectors_reference
    from rnnkit.datasets import Vocabulary

    vocab = Vocabulary.build(["a fine film", "a dull film", "fine fine"], level="word", min_freq=1)
    sub = Subwords(vocab, buckets=97, n_min=2, n_max=4)
    texts = ["a fine film", "unseen wordsmithery , fine", "zz"]  # unseen words get ids >= len(vocab)
    ids = sub.encode(texts)
    assert max(ids[1]) >= len(vocab) and ids[1][3] == vocab.token_to_id("fine")
    batch = sub.collate(ids)
    torch.manual_seed(0)
    emb = HashedNgramEmbedding(len(vocab), 97, 5).double()
    got = emb(batch["inputs"], batch["subwords"])  # (B, T, E)
    # reference: word by word, from the word strings, with its own n-gram loop and hash
    words, word_ids, where = [], [], []
    for b, t in enumerate(texts):
        for j, w in enumerate(vocab.tokenize(t)):
            words.append(w)
            word_ids.append(vocab.token_to_id(w))
            where.append((b, j))
    want = subword_vectors_reference(emb.word.weight, emb.ngram.weight, words, word_ids, 2, 4)
    picked = torch.stack([got[b, j] for b, j in where])
    torch.testing.assert_close(picked, want, rtol=1e-12, atol=1e-12)
    # gradients of both tables agree too
    g = torch.randn_like(want)
    (gw_fast, gn_fast) = torch.autograd.grad((picked * g).sum(), [emb.word.weight, emb.ngram.weight])
    (gw_ref, gn_ref) = torch.autograd.grad((want * g).sum(), [emb.word.weight, emb.ngram.weight])
    torch.testing.assert_close(gw_fast, gw_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gn_fast, gn_ref, rtol=1e-12, atol=1e-12)
    assert gn_ref[0].abs().sum() == 0  # the padding row is never used


def _morphology(path, n=240, seed=0, noise=0.0):
    """Every word is new (seen once): the class shows only in the stems 'goodly-' / 'badly-'; a share
    ``noise`` of the labels is then flipped."""
    rng = random.Random(seed)
    suffixes = rng.sample(range(6**5), n)  # all different
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            label = i % 2
            stem = "goodly" if label else "badly"
            suffix = "".join("qxzjkv"[suffixes[i] // 6**k % 6] for k in range(5))
            if rng.random() < noise:
                label = 1 - label
            w.writerow([f"the {stem}{suffix} film", "pos" if label else "neg"])


def test_subwords_give_unseen_words_vectors_and_the_saved_run_reads_them(tmp_path):
    data = tmp_path / "morph.csv"
    _morphology(data)
    common = dict(
        data=str(data), runs_dir=str(tmp_path), hidden_size=8, embedding_dim=16, epochs=6, min_epochs=6,
        lr=1e-2, progress=False, batch_size=16, dropout=0.0,
    )  # fmt: skip
    words = sentiment.train(
        SentimentConfig(name="words", subword_buckets=0, **common), say=lambda s: None
    ).metrics
    subs = sentiment.train(
        SentimentConfig(name="subs", subword_buckets=5000, **common), say=lambda s: None
    ).metrics
    assert words["test"]["accuracy"] <= 0.7  # every word is <unk> to the word-only model
    assert subs["test"]["accuracy"] >= 0.9
    assert subs["subwords"]["words_outside_vocabulary"] == 240
    loaded = sentiment.load(tmp_path / "subs")
    assert loaded.evaluate()["accuracy"] == pytest.approx(subs["test"]["accuracy"])
    p = loaded.predict(["the goodlyvvvvv film", "the badlyvvvvv film"])
    assert [r["label"] for r in p] == ["pos", "neg"]


def test_joined_pooling_concatenates_masked_mean_and_max():
    from rnnkit.apps.sentiment.model import SentimentNet, SentimentNetConfig
    from rnnkit.models import EncoderConfig

    torch.manual_seed(0)
    cfg = SentimentNetConfig(
        num_classes=3, vocab_size=20, embedding_dim=6, encoder=EncoderConfig("gru", 5, bidirectional=True),
        pooling="mean+max",
    )  # fmt: skip
    net = SentimentNet(cfg).eval()
    x, lengths = torch.randint(2, 20, (3, 7)), torch.tensor([7, 3, 1])
    # reference: torch's own GRU on each text alone (no padding), its mean and max over the valid steps
    gru = torch.nn.GRU(6, 5, batch_first=True, bidirectional=True)
    w = net.encoder.state_dict()  # cells.0 = forward, cells.1 = reverse (torch's names and gate order)
    gru.load_state_dict(
        {
            f"{k}_l0{'_reverse' if d else ''}": w[f"cells.{d}.{k}"]
            for d in (0, 1)
            for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        }
    )
    for b in range(3):
        with torch.no_grad():
            out, _ = gru(net.embed(x[b : b + 1, : lengths[b]]))  # (1, L, 10)
            want = net.head(torch.cat([out.mean(1), out.max(1).values], -1))
            got = net(x[b : b + 1], lengths[b : b + 1])
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_bad_pooling_and_missing_subwords_say_what_was_expected():
    from rnnkit._errors import RnnkitError
    from rnnkit.apps.sentiment.model import SentimentNet, SentimentNetConfig
    from rnnkit.config import config_from_dict

    with pytest.raises(RnnkitError, match="joined by '\\+'.*got 'mean\\+avg'"):
        config_from_dict(SentimentConfig, {"pooling": "mean+avg"})
    net = SentimentNet(SentimentNetConfig(num_classes=2, vocab_size=10, embedding_dim=4, subword_buckets=50))
    with pytest.raises(RnnkitError, match="batches need 'subwords'"):
        net(torch.tensor([[2, 3]]))


def test_lr_schedule_anneals_over_the_planned_updates():
    from rnnkit.apps.sentiment.train import lr_schedule

    cfg = SentimentConfig(lr_schedule="onecycle", epochs=3, lr=0.01)
    s = lr_schedule(cfg, steps_per_epoch=10)
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, **s["scheduler_options"])
    lrs = []
    for _ in range(30):  # every planned update steps it without running past its end
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert max(lrs) == pytest.approx(0.01, rel=0.05) and lrs[-1] < 1e-4
    assert s["scheduler_interval"] == "step"
    assert lr_schedule(SentimentConfig(), 10) == {}  # constant: the trainer's own setting
    assert lr_schedule(SentimentConfig(lr_schedule="cosine", scheduler="steplr"), 10) == {}  # the user's wins


def test_an_ensemble_predicts_the_mean_of_its_members_and_loads_back(tmp_path):
    """Three seeds: each member is its own network; the run's probabilities are the mean of theirs,
    reported apart per member, and the saved run gives the same mean."""
    from rnnkit.apps.sentiment.model import SentimentNet, predict_proba
    from rnnkit.apps.sentiment.subword import Subwords
    from rnnkit.models import ClassifierEnsemble, load_model

    data = tmp_path / "morph.csv"
    _morphology(data, n=120)
    cfg = SentimentConfig(
        data=str(data), runs_dir=str(tmp_path), name="ens", ensemble=3, hidden_size=8, embedding_dim=8,
        epochs=2, min_epochs=2, progress=False, batch_size=16, subword_buckets=500,
    )  # fmt: skip
    m = sentiment.train(cfg, say=lambda s: None).metrics
    assert m["ensemble"]["members"] == 3 and len(m["ensemble"]["member_test_accuracy"]) == 3
    # every network says why it stopped (two epochs each: all ran out); the run's own is the first's
    assert m["ensemble"]["stop_reasons"] == [None, None, None] and m["stop_reason"] is None
    assert m["parameters_all_networks"] == 3 * m["parameters"]  # three networks of one size
    run = tmp_path / "ens"
    nets = [load_model(run, SentimentNet)] + [
        load_model(run / "members" / str(k), SentimentNet) for k in (1, 2)
    ]
    w = [next(n.parameters()).detach() for n in nets]
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[1], w[2])  # three different seeds
    loaded = sentiment.load(run)
    texts = ["the goodlyabc film", "the badlyxyz film", "the film"]
    s = Subwords(loaded.vocab, 500, 3, 6)
    each = [predict_proba(n, s.encode(texts), limit=loaded.max_tokens, collate_fn=s.collate) for n in nets]
    got = np.array(
        [[r["probabilities"][c] for c in loaded.classes] for r in loaded.predict(texts, mixture=False)]
    )
    np.testing.assert_allclose(got, np.mean(each, 0), atol=1e-4)  # predict rounds to 4 places
    # it predicts through the one model rnnkit export writes (rnnkit.models.ClassifierEnsemble)
    assert isinstance(loaded.ensemble, ClassifierEnsemble) and len(loaded.ensemble.members) == 3
    np.testing.assert_allclose(loaded.proba(texts, mixture=False), np.mean(each, 0), atol=1e-6)
    assert np.abs(each[0] - each[1]).max() > 1e-3  # the mean is not any one member's
    assert loaded.evaluate()["accuracy"] == pytest.approx(m["test"]["accuracy"])
    # a damaged member count is one line naming the run
    labels = json.loads((run / "labels.json").read_text())
    (run / "labels.json").write_text(json.dumps({**labels, "members": 0}))
    with pytest.raises(RnnkitError, match="labels.json is damaged"):
        sentiment.load(run)


def test_choose_share_minimises_the_validation_log_loss():
    """Every share's log loss is scikit-learn's (the reference); the chosen share is the smallest of them, and
    the ends are reachable: a perfect network gets share 1, a network that knows nothing share 0."""
    from sklearn.metrics import log_loss as sk_log_loss

    from rnnkit.apps._common import MIX_WEIGHTS
    from rnnkit.apps.sentiment.mixture import choose_share, mix_proba

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    net, tfidf = rng.dirichlet(np.ones(3), 200), rng.dirichlet(np.ones(3), 200)
    net[np.arange(100, 200), y[100:]] += 2.0  # each knows a different half of the texts
    tfidf[np.arange(100), y[:100]] += 2.0
    net, tfidf = net / net.sum(1, keepdims=True), tfidf / tfidf.sum(1, keepdims=True)
    share, losses, accs = choose_share(net, tfidf, y)
    for w in MIX_WEIGHTS:
        p = mix_proba(net, tfidf, w)
        assert losses[w] == pytest.approx(sk_log_loss(y, p, labels=[0, 1, 2]), rel=1e-12)
        assert accs[w] == pytest.approx(float((p.argmax(1) == y).mean()))
    assert losses[share] == min(losses.values()) and 0 < share < 1
    onehot = np.eye(3)[y]
    assert choose_share(0.98 * onehot + 0.01, tfidf, y)[0] == 1.0
    assert choose_share(np.full((200, 3), 1 / 3), 0.98 * onehot + 0.01, y)[0] == 0.0
    with pytest.raises(RnnkitError, match="same texts and classes"):
        mix_proba(net, tfidf[:, :2], 0.5)


def test_the_mixture_with_tfidf_is_saved_and_used_by_predict_and_evaluate(tmp_path):
    """The run mixes its networks with its TF-IDF baseline at the share chosen on validation; the saved run
    (TF-IDF read back from safetensors) predicts that mixture and evaluates to the training-time scores."""
    from rnnkit.apps.sentiment.data import load_texts, split
    from rnnkit.apps.sentiment.mixture import TFIDF_FILE, mix_proba

    data = tmp_path / "morph.csv"
    _morphology(data, n=200, noise=0.2)
    common = dict(
        data=str(data), runs_dir=str(tmp_path), ensemble=1, hidden_size=8, embedding_dim=8, epochs=3,
        min_epochs=3, progress=False, batch_size=16, subword_buckets=500,
    )  # fmt: skip
    res = sentiment.train(SentimentConfig(name="mix", **common), say=lambda s: None)
    m = res.metrics
    mix = m["mixture"]
    assert mix["share"] == min(sorted(mix["val_log_loss"], reverse=True), key=mix["val_log_loss"].get)
    assert [r.task for r in res.rows].count("sentiment (morph.csv) + TF-IDF mix") == 2
    run = tmp_path / "mix"
    loaded = sentiment.load(run)
    assert loaded.tfidf_share == mix["share"]
    assert 0 < mix["share"] < 1  # neither alone: the pool below is a real test
    got = loaded.evaluate()
    assert got["accuracy"] == pytest.approx(m["test"]["accuracy"])
    assert got["mixture_accuracy"] == pytest.approx(mix["test"]["accuracy"])
    assert got["mixture_f1"] == pytest.approx(mix["test"]["f1"])
    # and the baselines it keeps: TF-IDF alone and the feed-forward counterpart, as the report scored them
    for key, name in (("tfidf", "tfidf"), ("feedforward", "mlp")):
        assert got[f"{key}_accuracy"] == pytest.approx(m["baselines"][name]["accuracy"])
        assert got[f"{key}_f1"] == pytest.approx(m["baselines"][name]["f1"])
    # the TF-IDF model read back is the baseline: its test accuracy is the report's
    cfg = SentimentConfig(**common)
    texts, labels, _ = load_texts(cfg)
    te = split(cfg, len(texts))[2]
    te_texts = [texts[i] for i in te]
    assert loaded.tfidf.score(te_texts, [labels[i] for i in te]) == m["baselines"]["tfidf"]["accuracy"]
    # predict gives the mixture at the run's share, computed here by hand from both models
    by_hand = mix_proba(
        loaded.proba(te_texts, mixture=False), loaded.tfidf.predict_proba(te_texts), mix["share"]
    )
    got_p = np.array([[r["probabilities"][c] for c in loaded.classes] for r in loaded.predict(te_texts)])
    np.testing.assert_allclose(got_p, by_hand, atol=1e-4)
    # without the mixture: no TF-IDF file, no mixture rows, the networks' probabilities
    plain = sentiment.train(SentimentConfig(name="plain", tfidf_mix=False, **common), say=lambda s: None)
    assert plain.metrics["mixture"] is None and not (tmp_path / "plain" / TFIDF_FILE).exists()
    assert all("TF-IDF mix" not in r.task for r in plain.rows)
    p2 = sentiment.load(tmp_path / "plain")
    assert p2.tfidf is None and "mixture_accuracy" not in p2.evaluate()
    # a damaged TF-IDF file or share is one line naming it
    (run / TFIDF_FILE).write_bytes((run / TFIDF_FILE).read_bytes()[:64])
    with pytest.raises(RnnkitError, match=TFIDF_FILE):
        sentiment.load(run).predict(["the film"])
    labels_json = json.loads((run / "labels.json").read_text())
    for bad in (2, True, "0.5"):  # out of range; JSON's true (Python would read it as 1); a string
        (run / "labels.json").write_text(json.dumps({**labels_json, "tfidf_share": bad}))
        with pytest.raises(RnnkitError, match="tfidf_share"):
            sentiment.load(run)
