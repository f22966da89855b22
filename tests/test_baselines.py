"""Baselines (rnnkit.baselines) against outside references: NLTK, a dict-based Kneser-Ney, real CO2 data."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
import torch

from rnnkit._errors import RnnkitError
from rnnkit.baselines import (
    FixedContextLM,
    KneserNeyLM,
    MLPForecaster,
    MLPTextClassifier,
    TfidfLogisticRegression,
    arima_forecast,
    ets_forecast,
    forecast_baselines,
    naive,
    seasonal_naive,
)
from rnnkit.baselines import forecast as forecast_mod

_PARA = (
    "the cat sat on the mat. the dog sat on the log. a cat and a dog met on a mat by the log. "
    "then the dog ran off and the cat sat still, as cats do, on the warm mat by the door. "
)


# ----------------------------------------------------------------------------- Kneser-Ney
@pytest.mark.parametrize("order", [2, 3, 4])
def test_kneser_ney_matches_nltk(order):
    """Single discount, undiscounted order 1: NLTK's KneserNeyInterpolated gives the same probabilities.

    NLTK's lower-order back-off weight counts the units seen after a context, where the normalised form
    counts those with a non-zero continuation count; the two differ only for n-grams seen solely at the
    very start of the training text. Writing the text twice removes that case, so they must agree exactly.
    """
    from nltk.lm import KneserNeyInterpolated
    from nltk.util import everygrams

    text = _PARA + _PARA
    ours = KneserNeyLM(max_order=order, discount=0.1, unigram_discount=0.0).fit(text)
    ref = KneserNeyInterpolated(order, discount=0.1)
    ref.fit([list(everygrams(list(text), max_len=order))], vocabulary_text=list(text))
    test = "the dog sat by the cat on a warm log. then they ran."
    mine = 2.0 ** ours.log2_probs(test)
    theirs = [ref.score(test[t], list(test[max(0, t - order + 1) : t])) for t in range(len(test))]
    np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-12)


def _dict_modified_kn(train: str, order: int, test: str) -> list[float]:
    """Interpolated modified Kneser-Ney written plainly with dictionaries (Chen & Goodman 1998)."""
    vocab = sorted(set(train))
    grams = [Counter(train[i : i + k] for i in range(len(train) - k + 1)) for k in range(order + 1)]
    cont = [Counter(g[1:] for g in grams[k + 1]) for k in range(order)]  # cont[k][w-gram of length k]

    def counts(k, top):  # counts used at length k: raw at the top order, continuation below
        return grams[k] if k == top else cont[k]

    def discounts(c):
        n = Counter(min(v, 5) for v in c.values())
        y = n[1] / (n[1] + 2 * n[2])
        d = [1 - 2 * y * n[2] / n[1], 2 - 3 * y * n[3] / n[2], 3 - 4 * y * n[4] / n[3]]
        return [0.0] + d

    def prob(w, ctx, top):
        k = len(ctx) + 1
        c = counts(k, top)
        d = discounts(c)
        if k == 1:
            total = sum(c.values())
            mass = sum(d[min(v, 3)] for v in c.values() if v > 0)
            return max(c[w] - d[min(c[w], 3)], 0) / total + mass / total / (len(vocab) + 1)
        lower = prob(w, ctx[1:], top)
        follow = {g: v for g, v in c.items() if g[:-1] == ctx and v > 0}
        total = sum(follow.values())
        if total == 0:
            return lower
        mass = sum(d[min(v, 3)] for v in follow.values())
        cw = c.get(ctx + w, 0)
        return max(cw - d[min(cw, 3)], 0) / total + mass / total * lower

    return [prob(test[t], test[max(0, t - order + 1) : t], order) for t in range(len(test))]


def test_modified_kneser_ney_matches_plain_implementation():
    rng = np.random.default_rng(0)  # varied text, so every count-of-count in the discount formula is > 0
    text = " ".join(rng.choice(_PARA.split(), size=600))
    ours = KneserNeyLM(max_order=3).fit(text)
    test = "the cat ran to the dog by the mat."
    np.testing.assert_allclose(2.0 ** ours.log2_probs(test), _dict_modified_kn(text, 3, test), rtol=1e-10)


def test_kneser_ney_distribution_sums_to_one_and_unknowns_get_mass():
    lm = KneserNeyLM(max_order=4).fit(_PARA)
    for ctx in ["the c", "zzz", "", "og sa"]:
        p = lm.next_distribution(ctx)
        assert abs(p.sum() - 1.0) < 1e-12 and p.min() > 0
    # a character never seen in training is <unk>: finite, and rarer than any seen character
    lp = lm.log2_probs("the Q")
    assert np.isfinite(lp).all() and lp[-1] < lp[:-1].min()


def test_kneser_ney_words_and_order_selection():
    words = (_PARA * 4).split()
    lm = KneserNeyLM(max_order=4).fit(words)
    scores = lm.select_order("the dog sat on the mat .".split())
    assert lm.order == min(scores, key=scores.get) and scores[lm.order] < scores[1]
    top = lm.next_topk(["sat", "on", "the"], k=3, order=3)
    assert top[0][0] in {"mat.", "warm", "log."} and top[0][1] >= top[1][1] >= top[2][1] > 0
    with pytest.raises(RnnkitError):
        lm.bits_per_unit("a string, not words")


def test_kneser_ney_next_topk_never_offers_an_unk_word():
    """A word model's rare words come as the word ``<unk>``, counted like any word: next_topk leaves it out
    as it leaves out the model's own unit for the unseen (it would be the first guess here)."""
    words = ("the <unk> sat on the <unk> . the <unk> ran . the cat sat . " * 20).split()
    lm = KneserNeyLM(max_order=2).fit(words)
    assert lm.next_distribution(["the"])[lm.vocab.index("<unk>", 1)] > 0.5  # the likeliest next word
    assert "<unk>" not in [u for u, _ in lm.next_topk(["the"], k=5)]
    assert [u for u, _ in lm.next_topk(["the"], k=1)] == ["cat"]
    assert lm.next_topk(["the"], k=1, unk=True)[0][0] == "<unk>"


def test_kneser_ney_on_real_text_beats_lower_orders():
    from rnnkit.datasets import load_austen_books

    try:
        books = load_austen_books(download=False)
    except Exception as err:  # noqa: BLE001 - the data may not be cached on this machine
        pytest.skip(f"Austen books not cached: {err}")
    text = books["emma"]
    lm = KneserNeyLM(max_order=6).fit(text[:300_000])
    scores = lm.select_order(text[300_000:350_000])
    # published character n-gram results on English: ~4.4 bits at order 1, ~2.3 or less by order 5-6
    assert 4.0 < scores[1] < 4.8 and scores[lm.order] < 2.6 and lm.order >= 4


# ----------------------------------------------------------------------------- forecasting
def _co2_monthly() -> np.ndarray:
    from rnnkit.datasets import load_co2

    try:
        ts = load_co2(download=False)
    except Exception as err:  # noqa: BLE001
        pytest.skip(f"CO2 data not cached: {err}")
    _, inv = np.unique([t[:7] for t in ts.times], return_inverse=True)
    return np.bincount(inv, weights=ts.values[:, 0]) / np.bincount(inv)


def test_ets_and_arima_beat_seasonal_naive_on_co2():
    y = _co2_monthly()[-180:]  # 15 years of monthly means; the last year is the test part
    out = forecast_baselines(y[:-24], y[-24:-12], horizon=12, season=12)
    mae = {k: float(np.abs(f.values - y[-12:]).mean()) for k, f in out.items()}
    # seasonal naive misses the ~1.5 ppm/year trend; both models should be far better
    assert mae["ets"] < 0.5 * mae["seasonal_naive"] and mae["arima"] < 0.5 * mae["seasonal_naive"]
    assert out["ets"].criterion == "val_mae" and out["ets"].config in out["ets"].scores


def test_forecasts_of_counts_stay_non_negative_and_failures_are_skipped(monkeypatch):
    rng = np.random.default_rng(0)
    t = np.arange(96)
    y = np.maximum(0, np.round(1 + 2 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.7, len(t))))
    real_fit = forecast_mod._fit_arima

    def flaky(history, cfg):
        if cfg[0] == (1, 1, 1):
            raise np.linalg.LinAlgError("singular matrix")
        return real_fit(history, cfg)

    monkeypatch.setattr(forecast_mod, "_fit_arima", flaky)
    out = forecast_baselines(y[:-24], y[-24:-12], horizon=12, season=12)
    for f in out.values():
        assert f.values.shape == (12,) and f.values.min() >= 0
    assert any("singular" in why for why in out["arima"].skipped.values())
    assert all("mul" not in cfg for cfg in out["ets"].scores)  # data has zeros: no multiplicative forms
    out = forecast_baselines(y[:-24], y[-24:-12], horizon=12, season=12, methods=("ets", "arima"), level=0.9)
    assert all(f.lower.min() >= 0 for f in out.values())  # nor do their intervals


def test_random_walk_arima_is_the_naive_forecast():
    """ARIMA(0,1,0) forecasts the last value and (0,0,0)(0,1,0)[4] the value one season back, exactly."""
    y = np.random.default_rng(3).normal(size=40).cumsum() + 50
    np.testing.assert_allclose(arima_forecast(y, 6, order=(0, 1, 0)), naive(y, 6), atol=1e-6)
    np.testing.assert_allclose(
        arima_forecast(y, 6, order=(0, 0, 0), seasonal_order=(0, 1, 0, 4)), seasonal_naive(y, 6, 4), atol=1e-6
    )
    # simple exponential smoothing's forecast is flat at the last smoothed level
    fc = ets_forecast(y, 5)
    assert np.ptp(fc) < 1e-9 and abs(fc[0] - y[-1]) < 3 * np.std(np.diff(y))


def test_arima_drift_is_the_mean_step_and_is_chosen_on_a_trend():
    """ARIMA(0,1,0) with drift is the random walk with drift: last value + h x the mean step (its maximum
    likelihood estimate), exactly. The grid decides a drift by the AICc of the two fits (as auto.arima): on a
    trending series it takes one and its forecast goes on rising at the trend's slope, on a random walk without
    a trend it takes none; the Fourier ARIMA of a long season decides the same way."""
    from rnnkit.apps.timeseries.baselines import fourier_arima

    rng = np.random.default_rng(0)
    y = np.cumsum(0.5 + rng.normal(size=60)) + 10
    want = y[-1] + np.arange(1, 6) * np.diff(y).mean()
    np.testing.assert_allclose(arima_forecast(y, 5, order=(0, 1, 0), drift=True), want, rtol=1e-6)
    with pytest.raises(RnnkitError, match="d \\+ D = 1"):
        arima_forecast(y, 5, order=(0, 2, 1), drift=True)
    assert forecast_mod._arima_name(((0, 1, 1), (0, 0, 0, 0), True)) == "ARIMA(0,1,1) with drift"
    assert forecast_mod._arima_name(((0, 1, 1), (0, 0, 0, 0), None)) == "ARIMA(0,1,1), drift by AICc"
    cands = forecast_mod._arima_candidates(np.ones(60), 12)
    assert {c[:2] for c in cands if c[2] is None} == {((1, 0, 0), (0, 1, 1, 12)), ((1, 0, 0), (1, 1, 0, 12))}
    assert not any(c[2] for c in cands)  # the drift is not a candidate of its own

    t = np.arange(120)
    y = 0.8 * t + np.cumsum(rng.normal(0, 1, 120))
    got = forecast_mod.select_arima(y[:100], y[100:110], 10)
    assert got.config.endswith("with drift") and abs(np.diff(got.values).mean() - 0.8) < 0.25
    assert all(k.endswith("drift by AICc") for k in got.scores if ",1," in k)  # one score per order
    # the decision is the lower AICc of the two fits, whichever it is
    walk = np.cumsum(rng.normal(0, 1, 100))
    for series in (y, walk):
        cfg = ((0, 1, 1), (0, 0, 0, 0))
        fits = [forecast_mod._fit_arima(series, (*cfg, d)) for d in (False, True)]
        chosen = forecast_mod._fit_arima(series, (*cfg, None))
        assert chosen.aicc == min(f.aicc for f in fits)
    assert forecast_mod._fit_arima(y, (*cfg, None)).model.trend == "c"
    assert forecast_mod._fit_arima(walk, (*cfg, None)).model.trend is None
    t = np.arange(300)
    z = 0.05 * t + np.sin(2 * np.pi * t / 30) + rng.normal(0, 0.2, 300)
    got = fourier_arima(z[:240], z[240:270], 30, 30)
    assert "with drift" in got.config and np.abs(got.values - z[270:]).mean() < 0.3


def test_arima_grid_leaves_out_models_with_too_few_values():
    """A model needs more observations after differencing than parameters + 1 (AICc defined). An 11-year
    tourism series (tourism-yearly Y52) split as a global run splits it leaves 3 training values: before the
    check, ARIMA(2,1,0) with drift was chosen there and forecast about 1e19."""
    drift210 = ((2, 1, 0), (0, 0, 0, 0), True)  # 2 AR + drift + variance = 4 parameters
    assert forecast_mod._arima_fits(7, drift210) and not forecast_mod._arima_fits(6, drift210)
    assert forecast_mod._arima_fits(27, ((1, 0, 0), (0, 1, 1, 12), True))  # 1 + 1 + 1 + 1 < 27 - 12 - 1
    assert not forecast_mod._arima_fits(17, ((1, 0, 0), (0, 1, 1, 12), True))
    y = np.array([66989, 73664, 83359, 86514, 122323, 92176, 23705, 33501, 45827, 47235, 50657.0])
    got = forecast_mod.select_arima(y[:3], y[3:7], 4)
    assert got.config == "naive fallback" and np.all(got.values == y[6])
    got = forecast_mod.select_arima(y[:7], y[7:9], 2)
    assert got.scores and all(
        forecast_mod._arima_fits(7, c) for c in forecast_mod._arima_candidates(y[:7], 1)
    )
    assert np.all(np.abs(got.values - y[8]) < 2 * np.ptp(y))


def test_ets_and_arima_intervals_match_their_forecast_distributions():
    """On a random walk: ARIMA(0,1,0)'s 80 % interval is the last value +- z_0.9 sqrt(h) sigma exactly; simple
    exponential smoothing's simulated one matches +- z_0.9 sigma sqrt(1 + (h - 1) alpha^2) to the simulation's
    noise; the selected models carry bounds around their forecasts only when a level is asked for."""
    from scipy.stats import norm

    y = np.random.default_rng(7).normal(size=80).cumsum() + 100
    h, z = np.arange(1, 7), norm.ppf(0.9)
    res = forecast_mod._fit_arima(y, ((0, 1, 0), (0, 0, 0, 0), False))
    lo, hi = forecast_mod._arima_bounds(res, 6, 0.8)
    half = z * np.sqrt(h * res.params[-1])
    np.testing.assert_allclose(lo, y[-1] - half, rtol=1e-6)
    np.testing.assert_allclose(hi, y[-1] + half, rtol=1e-6)
    res = forecast_mod._fit_ets(y, 1, (None, False, None))
    lo, hi = forecast_mod._ets_bounds(res, 6, 0.8)
    alpha, sigma = res.params["smoothing_level"], np.sqrt(res.sse / len(y))
    half = z * sigma * np.sqrt(1 + (h - 1) * alpha**2)
    np.testing.assert_allclose((hi - lo) / 2, half, rtol=0.1)
    out = forecast_baselines(y[:60], y[60:72], 8, methods=("ets", "arima"), level=0.5)
    wide = forecast_baselines(y[:60], y[60:72], 8, methods=("ets", "arima"), level=0.95)
    for k in ("ets", "arima"):
        f, w = out[k], wide[k]
        assert np.all(w.lower < f.lower) and np.all(f.lower < f.values) and np.all(f.values < f.upper)
        assert np.all(f.upper < w.upper)
    assert forecast_baselines(y[:60], y[60:72], 8, methods=("arima",))["arima"].lower is None  # not asked


def test_interval_comparison_scores_coverage_width_and_msis():
    """Worked by hand: two rows with MASE scales 1 and 2, an 80 % interval (penalty 2 / 0.2 = 10)."""
    from rnnkit.apps.timeseries.report import interval_comparison

    actual = np.array([[1.0, 5.0], [4.0, 0.0]])
    lo, hi = np.array([[0.0, 2.0], [2.0, 2.0]]), np.array([[2.0, 4.0], [6.0, 4.0]])
    got = interval_comparison(actual, {"m": (lo, hi)}, np.array([1.0, 2.0]), 0.8)["m"]
    # inside: (0,0) and (1,0); widths / scale: 2, 2, 2, 1; misses: 1 above (x10 / 1), 2 below (x10 / 2)
    assert got["coverage"] == 0.5 and got["mean_scaled_width"] == pytest.approx(7 / 4)
    assert got["msis"] == pytest.approx((2 + (2 + 10) + 2 + (1 + 10)) / 4)


def test_seasonal_naive_and_bad_input():
    np.testing.assert_array_equal(seasonal_naive([1, 2, 3, 4], 5, season=2), [3, 4, 3, 4, 3])
    with pytest.raises(RnnkitError, match="one series"):
        forecast_baselines(np.zeros((10, 2)), [], horizon=3)


# ----------------------------------------------------------------------------- text classification
def _made_up_words(rng, syllables, n, length):
    return ["".join(rng.choice(syllables, size=length)) for _ in range(n)]


def test_tfidf_character_ngrams_generalise_to_unseen_words():
    """Each class makes up words from its own syllables, 3 syllables long in training and 4 in the test:
    no test word was seen, so only character n-grams can carry over."""
    rng = np.random.default_rng(0)
    sylls = [["ka", "ko", "ku"], ["mi", "me", "ma"], ["zu", "zo", "ze"]]
    filler = ["the", "and", "of", "a", "to"]

    def texts(n, length=3):
        out, labels = [], []
        for _ in range(n):
            k = int(rng.integers(3))
            words = _made_up_words(rng, sylls[k], 3, length) + list(rng.choice(filler, size=4))
            rng.shuffle(words)
            out.append(" ".join(words))
            labels.append(k)
        return out, np.array(labels)

    tr, va, te = texts(150), texts(60), texts(150, length=4)
    full = TfidfLogisticRegression().fit(*tr, *va)
    words_only = TfidfLogisticRegression(char_ngrams=None, min_df=1).fit(*tr, *va)
    assert full.score(*te) >= 0.95
    assert words_only.score(*te) < full.score(*te) - 0.15
    p = full.predict_proba(te[0][:5])
    assert p.shape == (5, 3) and np.allclose(p.sum(1), 1) and full.C in full.val_scores


def _keyword_texts(rng, n, classes):
    words = [["great", "fine", "lovely"], ["awful", "poor", "dull"], ["maybe", "average", "okay"]][:classes]
    filler = "we saw it on a day in town with ü friends".split()
    out, labels = [], []
    for _ in range(n):
        k = int(rng.integers(classes))
        w = list(rng.choice(filler, size=6)) + [str(rng.choice(words[k]))] * int(rng.integers(1, 3))
        if rng.random() < 0.15:  # some label noise: the probabilities are not all 0 or 1
            k = int(rng.integers(classes))
        rng.shuffle(w)
        out.append(" ".join(w))
        labels.append(k)
    return out, np.array(labels)


@pytest.mark.parametrize("classes", [2, 3])
def test_tfidf_probabilities_match_scikit_learn_and_survive_saving(tmp_path, classes):
    """The weights' sigmoid / softmax is scikit-learn's predict_proba (the reference); the saved file
    (no pickle) predicts the same probabilities."""
    rng = np.random.default_rng(classes)
    tr, va, te = (_keyword_texts(rng, n, classes) for n in (120, 40, 30))
    clf = TfidfLogisticRegression().fit(*tr, *va)
    got = clf.predict_proba(te[0])
    ref = clf._model.predict_proba(clf.features(te[0]))
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    assert 0.01 < got.min() and got.max() < 0.99  # not saturated: a real comparison
    clf.save(tmp_path / "tfidf.safetensors")
    back = TfidfLogisticRegression.load(tmp_path / "tfidf.safetensors")
    np.testing.assert_array_equal(back.predict_proba(te[0]), got)
    assert back.C == clf.C and back.num_classes == classes


def test_tfidf_file_damaged_or_foreign_is_one_clear_error(tmp_path):
    import torch

    from rnnkit.files import read_safetensors, write_safetensors

    rng = np.random.default_rng(0)
    clf = TfidfLogisticRegression().fit(*_keyword_texts(rng, 60, 2), *_keyword_texts(rng, 20, 2))
    path = tmp_path / "tfidf.safetensors"
    clf.save(path)
    tensors, meta = read_safetensors(path)
    tensors["coef"] = torch.zeros(1, 3, dtype=torch.float64)  # does not fit the n-grams
    write_safetensors(tmp_path / "bad.safetensors", tensors, meta)
    with pytest.raises(RnnkitError, match="damaged TF-IDF model file: weights of shape"):
        TfidfLogisticRegression.load(tmp_path / "bad.safetensors")
    (tmp_path / "cut.safetensors").write_bytes(path.read_bytes()[:100])
    with pytest.raises(RnnkitError, match="cut.safetensors"):
        TfidfLogisticRegression.load(tmp_path / "cut.safetensors")


# ----------------------------------------------------------------------------- feed-forward counterparts
def test_mlp_forecaster_learns_a_noisy_season():
    rng = np.random.default_rng(0)
    t = np.arange(240)
    truth = 10 + 3 * np.sin(2 * np.pi * t / 12)
    y = truth + rng.normal(0, 0.3, len(t))
    mlp = MLPForecaster(window=24, horizon=12, max_epochs=150, patience=20).fit(y[:-24], y[-24:-12])
    fc = mlp.predict(y[:-12])
    naive_mae = np.abs(y[-13] - truth[-12:]).mean()
    assert np.abs(fc - truth[-12:]).mean() < min(0.35, 0.3 * naive_mae)


def test_mlp_text_classifier_learns_keywords():
    rng = np.random.default_rng(1)
    good, bad, filler = (
        ["great", "fine", "lovely"],
        ["awful", "poor", "dull"],
        "we saw it on a day in town".split(),
    )

    def texts(n):
        out, labels = [], []
        for _ in range(n):
            k = int(rng.integers(2))
            words = list(rng.choice(filler, size=6)) + [str(rng.choice(good if k else bad))]
            rng.shuffle(words)
            out.append(" ".join(words))
            labels.append(k)
        return out, labels

    clf = MLPTextClassifier(max_epochs=20).fit(*texts(300), *texts(100))
    assert clf.score(*texts(200)) >= 0.95


def test_fixed_context_lm_learns_within_its_window_and_not_beyond():
    """Blocks 'x....x' of length 8 over 4 letters: the closing letter repeats one 7 steps back.

    A 3-unit window predicts the dots but not the closing letter (about log2 4 = 2 bits); an 8-unit window
    sees the opening letter and predicts it.
    """
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    letters = "abcd"

    def text(n):
        return "".join(c + "......" + c + " " for c in rng.choice(list(letters), size=n))

    tr, va, te = text(1500), text(200), text(200)
    closing = np.array([i % 9 == 7 for i in range(len(te))])
    bits = {}
    for context in (3, 8):
        lm = FixedContextLM(
            context=context, hidden=64, samples_per_epoch=6000, max_epochs=12, patience=3, lr=5e-3
        )
        lm.fit(tr, va)
        bits[context] = float(-lm.log2_probs(te)[closing].mean())
    assert bits[3] > 1.6 and bits[8] < 0.3
    assert math.isfinite(lm.bits_per_unit(te)) and lm.next_topk("a......", k=1)[0][0] == "a"


def test_fixed_context_lm_saves_and_loads_without_pickle(tmp_path):
    """Characters and words: the loaded model scores and suggests exactly as the fitted one; a file whose
    bytes, kind or vocabulary are wrong is one RnnkitError naming it."""
    from rnnkit.files import read_safetensors, write_safetensors

    words = ("the cat sat on the mat and the dog sat on the log " * 40).split()
    for train, probe in (("abracadabra " * 50, "abracad"), (words, ["the", "cat", "sat", "on", "a", "mat"])):
        lm = FixedContextLM(context=3, hidden=16, samples_per_epoch=500, max_epochs=2).fit(train, train[:40])
        digest = lm.save(tmp_path / "lm.safetensors")
        back = FixedContextLM.load(tmp_path / "lm.safetensors", digest)
        np.testing.assert_array_equal(back.log2_probs(probe), lm.log2_probs(probe))
        assert back.next_topk(probe[:3], k=3) == lm.next_topk(probe[:3], k=3) and back.chars == lm.chars
    tensors, meta = read_safetensors(tmp_path / "lm.safetensors")
    with pytest.raises(RnnkitError, match="corrupted"):
        FixedContextLM.load(tmp_path / "lm.safetensors", "0" * 64)
    write_safetensors(tmp_path / "kind.safetensors", tensors, {**meta, "kind": "Other"})
    with pytest.raises(RnnkitError, match="kind.safetensors: not a saved FixedContextLM"):
        FixedContextLM.load(tmp_path / "kind.safetensors")
    write_safetensors(tmp_path / "vocab.safetensors", tensors, {**meta, "vocab": '["a", "b"]'})
    with pytest.raises(RnnkitError, match="vocab.safetensors.*weights do not fit"):
        FixedContextLM.load(tmp_path / "vocab.safetensors")
    with pytest.raises(RnnkitError, match="not fitted"):
        FixedContextLM().save(tmp_path / "none.safetensors")


def test_mlp_text_classifier_saves_and_loads_without_pickle(tmp_path):
    """The loaded classifier gives the fitted one's probabilities (dropout off); a damaged file is one line."""
    texts = [f"good film {i}" for i in range(30)] + [f"bad film {i}" for i in range(30)]
    labels = [1] * 30 + [0] * 30
    clf = MLPTextClassifier(embed=8, hidden=8, max_epochs=3, max_len=5).fit(
        texts, labels, texts[::7], labels[::7]
    )
    digest = clf.save(tmp_path / "mlp.safetensors")
    back = MLPTextClassifier.load(tmp_path / "mlp.safetensors", digest)
    probe = ["a good film", "bad", "unknown words only"]
    np.testing.assert_array_equal(back.predict_proba(probe), clf.predict_proba(probe))
    assert back.num_classes == 2 and back.max_len == 5 and back.words == clf.words
    data = bytearray((tmp_path / "mlp.safetensors").read_bytes())
    data[-1] ^= 1
    (tmp_path / "mlp.safetensors").write_bytes(bytes(data))
    with pytest.raises(RnnkitError, match="mlp.safetensors: corrupted"):
        MLPTextClassifier.load(tmp_path / "mlp.safetensors", digest)
    lm = FixedContextLM(context=2, hidden=4, samples_per_epoch=50, max_epochs=1).fit("abab" * 9, "ab")
    lm.save(tmp_path / "lm.safetensors")
    with pytest.raises(RnnkitError, match="lm.safetensors: not a saved MLPTextClassifier"):
        MLPTextClassifier.load(tmp_path / "lm.safetensors")


def test_mlp_forecaster_saves_and_loads_without_pickle(tmp_path):
    """The loaded forecaster gives the fitted one's forecasts (scale and non-negativity kept)."""
    y = 10 + np.sin(np.arange(120) / 3.0) * 5
    mlp = MLPForecaster(window=12, horizon=4, hidden=8, max_epochs=5).fit(y[:90], y[90:])
    digest = mlp.save(tmp_path / "f.safetensors")
    back = MLPForecaster.load(tmp_path / "f.safetensors", digest)
    np.testing.assert_array_equal(back.predict(y), mlp.predict(y))
    assert (back.mean, back.std, back.nonnegative) == (mlp.mean, mlp.std, mlp.nonnegative)
    from rnnkit.files import read_safetensors, write_safetensors

    tensors, meta = read_safetensors(tmp_path / "f.safetensors")
    sizes = json.loads(meta["sizes"])
    write_safetensors(
        tmp_path / "bad.safetensors", tensors, {**meta, "sizes": json.dumps({**sizes, "window": 0})}
    )
    with pytest.raises(RnnkitError, match="bad.safetensors: not a saved MLPForecaster"):
        MLPForecaster.load(tmp_path / "bad.safetensors")


def test_statsmodels_fits_run_on_one_blas_thread():
    """ETS / ARIMA selection runs with every BLAS (NumPy's and SciPy's OpenBLAS, loaded or not before) on one
    thread, and the caller's settings come back afterwards: threads buy nothing on these small matrices and
    made the fits 16-32 times slower on a busy machine."""
    pytest.importorskip("statsmodels")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from rnnkit.baselines import forecast

    seen = []

    @forecast.one_blas_thread
    def fit():
        seen.extend(d["num_threads"] for d in threadpoolctl.threadpool_info() if d["user_api"] == "blas")
        return 7

    def blas():
        return {
            d["filepath"]: d["num_threads"]
            for d in threadpoolctl.threadpool_info()
            if d["user_api"] == "blas"
        }

    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = blas()
        assert fit() == 7
        after = blas()
    assert seen and set(seen) == {1}
    assert {k: after[k] for k in before} == before  # (SciPy's may have been loaded by the call)
    # the library's selectors are wrapped
    assert forecast.select_arima.__wrapped__ and forecast.select_ets.__wrapped__
