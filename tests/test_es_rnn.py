"""Smyl's ES-RNN smoothing (rnnkit.apps.timeseries.es): the fast recursion against the step-by-step one and
against statsmodels' Holt-Winters, forward and backward, and the forecaster built on it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from rnnkit.apps.timeseries.es import ESForecaster, es_smooth, es_smooth_reference, initial_season

CASES = [(12, 50), (4, 37), (7, 7), (None, 150), (None, 3)]  # (season or None, length): partial last blocks


def _inputs(m, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, generator=g, dtype=torch.float64).cumsum(0).requires_grad_()
    alpha = torch.tensor(0.35, dtype=torch.float64, requires_grad=True)
    gamma = torch.tensor(0.2, dtype=torch.float64, requires_grad=True) if m else None
    init = (0.3 * torch.randn(m, generator=g, dtype=torch.float64)).requires_grad_() if m else None
    return z, alpha, gamma, init


@pytest.mark.parametrize("m,n", CASES)
def test_blockwise_smoothing_equals_the_step_by_step_recursion_forward_and_backward(m, n):
    z, alpha, gamma, init = _inputs(m, n)
    leaves = [t for t in (z, alpha, gamma, init) if t is not None]
    fast = es_smooth(z, alpha, gamma, init)
    slow = es_smooth_reference(z, alpha, gamma, init)
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    w = [
        torch.randn(t.shape, dtype=torch.float64) for t in fast
    ]  # a random linear functional of both outputs
    g_fast = torch.autograd.grad(sum((o * c).sum() for o, c in zip(fast, w)), leaves)
    g_slow = torch.autograd.grad(sum((o * c).sum() for o, c in zip(slow, w)), leaves)
    for a, b in zip(g_fast, g_slow):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("m,n", [(4, 13), (None, 9)])
def test_blockwise_smoothing_passes_gradcheck(m, n):
    z, alpha, gamma, init = _inputs(m, n, seed=1)
    args = tuple(t for t in (z, alpha, gamma, init) if t is not None)

    def f(*a):
        zz, aa = a[0], a[1]
        return es_smooth(zz, aa, a[2] if m else None, a[3] if m else None)

    assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-6)


def test_smoothing_matches_statsmodels_holt_winters():
    """statsmodels writes the seasonal update against the previous level (Hyndman's form); with
    gamma* = gamma (1 - alpha) it is the same recursion (FPP 2nd ed., 7.3)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    rng = np.random.default_rng(3)
    m, n, a, g = 4, 40, 0.3, 0.25
    z = 0.1 * np.cumsum(rng.standard_normal(n)) + np.resize([0.2, -0.1, 0.05, -0.15], n)
    s0 = np.array([0.1, -0.1, 0.02, -0.02])
    level, season = es_smooth(torch.tensor(z), torch.tensor(a), torch.tensor(g), torch.tensor(s0))
    model = ExponentialSmoothing(
        z, seasonal="add", seasonal_periods=m, initialization_method="known",
        initial_level=z[0] - s0[0], initial_seasonal=s0,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit(smoothing_level=a, smoothing_seasonal=g * (1 - a), optimized=False)
    np.testing.assert_allclose(level.numpy(), res.level, atol=1e-6)
    np.testing.assert_allclose(season.numpy()[m:], res.season, atol=1e-6)


def _net(h, c=1):
    from rnnkit.models import RegressorConfig, SequenceRegressor

    torch.manual_seed(0)
    return SequenceRegressor(RegressorConfig(output_size=h, input_size=c, pooling="last"))


def test_forecaster_reproduces_a_pure_seasonal_series_and_trains_its_smoothing():
    """With the true starting indices, a noiseless seasonal series smooths to a constant level: the
    bases (network output 0) are the future values exactly, and the window the network reads is all zeros.
    The forecast loss then reaches both coefficients and the indices."""
    m, h, w = 4, 6, 8
    pattern = np.array([0.3, -0.2, 0.1, -0.2])
    z = 2.0 + np.resize(pattern, 60)
    es = ESForecaster(_net(h), m, h, w, 0, [0.5], pattern, alpha=0.4, gamma=0.3)
    es.use_series(torch.tensor(z[:, None]))
    origins = torch.tensor([10, 23, 41])
    out, base, level = es.outputs(origins)
    future = np.stack([z[o : o + h] for o in origins.tolist()])
    np.testing.assert_allclose(base.detach().numpy(), future, atol=1e-6)
    np.testing.assert_allclose(level.detach().numpy(), 2.0, atol=1e-6)
    loss = es.loss({"origins": origins, "future": torch.tensor(future + 0.05, dtype=torch.float32)}).loss
    loss.backward()
    for p in (es.alpha_p, es.gamma_p, es.init_season):
        assert p.grad is not None and torch.all(torch.isfinite(p.grad))
    assert float(es.init_season.grad.abs().sum()) > 0


def test_initial_season_is_the_centred_mean_profile():
    y = np.resize([1.0, 3.0, 2.0, 6.0], 12) + np.repeat([0.0, 10.0, 20.0], 4)
    np.testing.assert_allclose(initial_season(y, 4), [-2.0, 0.0, -1.0, 3.0])


# ---------------------------------------------------------------------------------------------------------
# the global ES-RNN: a batch of series with shared coefficients
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("per_row", [False, True])
def test_batched_smoothing_equals_each_row_step_by_step_forward_and_backward(per_row):
    g = torch.Generator().manual_seed(4)
    m, n, B = 4, 23, 3
    z = torch.randn(B, n, generator=g, dtype=torch.float64).cumsum(1).requires_grad_()
    shape = (B,) if per_row else ()
    alpha = (0.2 + 0.5 * torch.rand(shape, generator=g, dtype=torch.float64)).requires_grad_()
    gamma = (0.1 + 0.5 * torch.rand(shape, generator=g, dtype=torch.float64)).requires_grad_()
    init = (0.3 * torch.randn(B, m, generator=g, dtype=torch.float64)).requires_grad_()
    level, season = es_smooth(z, alpha, gamma, init)
    assert level.shape == (B, n) and season.shape == (B, n + m)
    rows = [
        es_smooth_reference(z[i], alpha[i] if per_row else alpha, gamma[i] if per_row else gamma, init[i])
        for i in range(B)
    ]
    torch.testing.assert_close(level, torch.stack([r[0] for r in rows]), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(season, torch.stack([r[1] for r in rows]), rtol=1e-12, atol=1e-12)
    w1, w2 = torch.randn(level.shape, dtype=torch.float64), torch.randn(season.shape, dtype=torch.float64)
    leaves = (z, alpha, gamma, init)
    fast = torch.autograd.grad((level * w1).sum() + (season * w2).sum(), leaves)
    slow = torch.autograd.grad(
        sum((r[0] * w1[i]).sum() + (r[1] * w2[i]).sum() for i, r in enumerate(rows)), leaves
    )
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_panel_forecaster_reads_a_series_like_the_single_series_forecaster():
    """With the same coefficients and starting indices, the global ES-RNN's view of each row, its loss
    and its gradients equal the single-series forecaster's (tested above against statsmodels) on that
    series alone, however the batch's rows are padded."""
    from rnnkit.apps.timeseries.es import PanelESForecaster

    m, h, w = 4, 4, 8
    rng = np.random.default_rng(5)
    series = [
        np.cumsum(0.1 * rng.standard_normal(n)) + np.resize([0.2, -0.1, 0.05, -0.15], n) for n in (30, 41)
    ]
    panel = PanelESForecaster(_net(h), m, h, w, alpha=0.4, gamma=0.15)
    origins, rows, inits, scales, futures, singles = [], [], [], [], [], []
    for z, o, r in zip(series, (22, 33), (0.3, 0.7)):
        init = initial_season(z[:o], m)
        single = ESForecaster(_net(h), m, h, w, 0, [r], init, alpha=0.4, gamma=0.15)
        single.use_series(torch.tensor(z[:, None]))
        singles.append((single, o, z[o : o + h]))
        origins.append(o)
        rows.append(np.pad(z, (0, 41 - len(z)), constant_values=99.0))  # padding the recursion never reads
        inits.append(init)
        scales.append(r)
        futures.append(z[o : o + h])
    f32 = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    batch = {
        "z": f32(rows), "init": f32(inits), "origins": torch.tensor(origins), "scale": f32(scales),
        "future": f32(futures),
    }  # fmt: skip
    out, base = panel.outputs(batch["z"], batch["init"], batch["origins"], batch["scale"])
    for i, (single, o, _fut) in enumerate(singles):
        s_out, s_base, _ = single.outputs(torch.tensor([o]))
        torch.testing.assert_close(out[i], s_out[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(base[i], s_base[0], rtol=1e-6, atol=1e-6)
    # the loss is the mean of the rows' single-series losses; so are the coefficients' gradients
    loss = panel.loss(batch).loss
    loss.backward()
    total_loss = total_alpha = 0.0
    for single, o, fut in singles:
        s_loss = single.loss({"origins": torch.tensor([o]), "future": f32(fut[None])}).loss / len(singles)
        s_loss.backward()
        total_loss += s_loss.item()
        total_alpha += single.alpha_p.grad.item()
    assert loss.item() == pytest.approx(total_loss, rel=1e-5)
    assert panel.alpha_p.grad.item() == pytest.approx(total_alpha, rel=1e-4, abs=1e-7)
    assert panel.alpha_p.grad.item() != 0.0


def test_panel_forecasts_of_a_batch_equal_one_series_at_a_time():
    """Rows of different lengths forecast together give each row's own forecast (nothing leaks through
    the padding), and an ensemble's forecast is its members' median in the data's units."""
    from dataclasses import replace as _replace

    from rnnkit.apps.timeseries.config import TimeSeriesConfig
    from rnnkit.apps.timeseries.data import Scaler
    from rnnkit.apps.timeseries.es import PanelESForecaster
    from rnnkit.apps.timeseries.model import Ensemble, es_history_forecasts

    rng = np.random.default_rng(6)
    m, h = 4, 4
    cfg = _replace(TimeSeriesConfig(horizon=h, season=m), normalize="es")
    hist = [np.exp(np.cumsum(0.05 * rng.standard_normal(n)) + 3) for n in (17, 30, 25)]
    scalers = [Scaler.fit(y[:, None], cfg, 0) for y in hist]
    members = []
    for k in range(3):
        torch.manual_seed(k)
        from rnnkit.models import RegressorConfig, SequenceRegressor

        net = SequenceRegressor(RegressorConfig(output_size=h, input_size=1, pooling="last"))
        members.append((PanelESForecaster(net, m, h, 8 if k % 2 == 0 else 6), 8 if k % 2 == 0 else 6))
    together = es_history_forecasts(Ensemble(members), hist, scalers)
    for i, (y, sc) in enumerate(zip(hist, scalers)):
        each = [es_history_forecasts(mm, [y], [sc])[0] for mm, _ in members]
        np.testing.assert_allclose(together[i], np.median(each, 0), rtol=1e-5)
        assert np.all(together[i] > 0)  # a log-transformed series stays positive


def test_the_level_starts_nearer_the_last_value_without_a_season():
    """Starting coefficients: alpha 0.3 with a season, 0.6 for one series without one (a short run ends near
    where it starts, and a wandering level smoothed at 0.3 lags); the global model keeps 0.3; given ones win."""
    from rnnkit.apps.timeseries.es import ALPHA_START, ALPHA_START_NO_SEASON, PanelESForecaster

    assert (ALPHA_START, ALPHA_START_NO_SEASON) == (0.3, 0.6)
    seasonal = ESForecaster(_net(4), 4, 4, 8, 0, [1.0], np.zeros(4))
    plain = ESForecaster(_net(4), 1, 4, 8, 0, [1.0], np.zeros(1))
    assert float(seasonal.alpha.detach()) == pytest.approx(0.3) and float(
        seasonal.gamma.detach()
    ) == pytest.approx(0.2)
    assert float(plain.alpha.detach()) == pytest.approx(0.6) and plain.gamma is None
    assert float(
        ESForecaster(_net(4), 1, 4, 8, 0, [1.0], np.zeros(1), alpha=0.2).alpha.detach()
    ) == pytest.approx(0.2)
    assert float(PanelESForecaster(_net(4), 1, 4, 8).alpha.detach()) == pytest.approx(0.3)
    # the level it gives a random walk: nearer its last value than the old start's (the smoothing itself)
    z = torch.tensor(np.random.default_rng(1).normal(size=60).cumsum())
    near = es_smooth(z, plain.alpha.detach().double(), None, None)[0][-1]
    old = es_smooth(z, torch.tensor(0.3, dtype=torch.float64), None, None)[0][-1]
    assert abs(float(near - z[-1])) < abs(float(old - z[-1]))


def test_starting_coefficients_can_be_set_and_are_checked():
    """``--es-alpha`` / ``--es-gamma`` replace the defaults above for one series and a global model alike;
    values outside (0, 1) are refused with the flag's name."""
    from rnnkit._errors import RnnkitError
    from rnnkit.apps.timeseries import TimeSeriesConfig
    from rnnkit.apps.timeseries.es import PanelESForecaster
    from rnnkit.apps.timeseries.model import es_start
    from rnnkit.config import config_from_dict

    assert es_start(TimeSeriesConfig()) == {}
    cfg = config_from_dict(TimeSeriesConfig, {"es_alpha": 0.45, "es_gamma": 0.1})
    assert es_start(cfg) == {"alpha": 0.45, "gamma": 0.1}
    one = ESForecaster(_net(4), 4, 4, 8, 0, [1.0], np.zeros(4), **es_start(cfg))
    assert (float(one.alpha.detach()), float(one.gamma.detach())) == pytest.approx((0.45, 0.1))
    assert float(
        ESForecaster(_net(4), 1, 4, 8, 0, [1.0], np.zeros(1), **es_start(cfg)).alpha.detach()
    ) == pytest.approx(0.45)
    assert float(PanelESForecaster(_net(4), 1, 4, 8, **es_start(cfg)).alpha.detach()) == pytest.approx(0.45)
    with pytest.raises(RnnkitError, match=r"es_alpha \(--es-alpha\): expected a value <= 0.99, got 1.5"):
        config_from_dict(TimeSeriesConfig, {"es_alpha": 1.5})
    with pytest.raises(RnnkitError, match=r"es_gamma \(--es-gamma\): expected a value >= 0.01, got 0"):
        config_from_dict(TimeSeriesConfig, {"es_gamma": 0})
    # where they would do nothing they are refused, one series and many alike
    from rnnkit.apps.timeseries import resolve, resolve_global
    from rnnkit.apps.timeseries.panel import Panel
    from rnnkit.datasets import TimeSeries

    y = np.exp(np.sin(np.arange(300.0)) + 3)
    ts = TimeSeries([str(i) for i in range(300)], y[:, None], ["y"], np.zeros((300, 1), bool))
    single = TimeSeriesConfig(data="x.csv", horizon=4, season=4, window=12)
    assert (
        resolve(TimeSeriesConfig(**{**single.__dict__, "es_alpha": 0.5, "normalize": "es"}), ts).es_alpha
        == 0.5
    )
    with pytest.raises(
        RnnkitError, match=r"--es-alpha: expected --normalize es .* got --normalize seasonal \(what auto"
    ):
        resolve(TimeSeriesConfig(**{**single.__dict__, "es_alpha": 0.5}), ts)  # 300 values: auto is seasonal
    with pytest.raises(RnnkitError, match=r"--es-gamma: expected a season"):
        resolve(TimeSeriesConfig(**{**single.__dict__, "es_gamma": 0.5, "season": 1, "normalize": "es"}), ts)
    panel = Panel(["a", "b"], [[str(t) for t in range(40)]] * 2, [y[:40], y[40:80]], "y")
    many = TimeSeriesConfig(data="x.csv", id_column="id", horizon=4, season=4, window=8, normalize="level")
    with pytest.raises(RnnkitError, match=r"--es-alpha: expected --normalize es"):
        resolve_global(TimeSeriesConfig(**{**many.__dict__, "es_alpha": 0.5}), panel)
