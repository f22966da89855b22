"""Training a forecasting run: data, model, the shared trainer, the report, the run directory."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from rnnkit.apps import plots
from rnnkit.apps._common import (
    FEEDFORWARD_DIR,
    MIX_WEIGHTS,
    EpochBatches,
    build_trainer,
    fit_member,
    format_value,
    per_epoch_generator,
    save_baseline_net,
    save_members,
    save_run_files,
    setup_torch,
    training_summary,
)
from rnnkit.apps.base import ResultRow, TrainResult, mix_task
from rnnkit.apps.metrics import mase_scale
from rnnkit.apps.rundir import RunBuilder, member_dir
from rnnkit.apps.timeseries import baselines, report
from rnnkit.apps.timeseries.config import TimeSeriesConfig
from rnnkit.apps.timeseries.data import (
    APP,
    Scaler,
    futures_at,
    load_series,
    make_batches,
    part_sizes,
    preset_of,
    resolve_noted,
)
from rnnkit.apps.timeseries.es import PanelESForecaster, initial_season
from rnnkit.apps.timeseries.mixture import PARTNERS, choose_pool, classical_at, mix_forecasts, pool_bounds
from rnnkit.apps.timeseries.model import (
    Ensemble,
    build_es,
    build_model,
    es_start,
    forecast_at,
    member_windows,
)
from rnnkit.apps.timeseries.panel import (
    GLOBAL_LOSS,
    PANELS,
    fit_series_scalers,
    is_global,
    load_panel,
    mase_scales,
    panel_forecasts,
    panel_tensors,
    resolve_global_noted,
    sample_series,
    series_forecasts,
    series_split,
)

__all__ = ["train", "train_global"]


def train(cfg: TimeSeriesConfig, overwrite: bool = False, say=print) -> TrainResult:
    """Train and evaluate a forecaster and the baselines; write the run ``cfg.runs_dir/cfg.name``."""
    from rnnkit.config import validate_config
    from rnnkit.train import seed_everything

    # a config built in Python gets the checks the flags get (bounds, choices, baselines)
    validate_config(cfg)
    if is_global(cfg):
        return train_global(cfg, overwrite, say)
    t_start = time.perf_counter()
    name = cfg.name or (cfg.data if preset_of(cfg.data)[3] else APP)
    setup_torch(cfg.threads)
    with RunBuilder(cfg.runs_dir, name, overwrite) as run:
        ts = load_series(cfg)
        cfg, inferred = resolve_noted(cfg, ts)
        n = len(ts)
        n_tr, n_val, n_test = part_sizes(cfg, n)
        values = ts.values.astype(np.float64)
        t_idx = ts.columns.index(cfg.target)
        target = values[:, t_idx]
        scaler = Scaler.fit(values[:n_tr], cfg, t_idx)
        scale = mase_scale(target[:n_tr], cfg.season)
        all_steps = cfg.structure == "many-to-many"
        train_origins = np.arange(
            cfg.window, n_tr - cfg.horizon + 1, max(1, cfg.window // 4) if all_steps else 1
        )
        val_origins = np.arange(n_tr, n_tr + n_val - cfg.horizon + 1, cfg.stride)
        test_origins = np.arange(n_tr + n_val, n - cfg.horizon + 1, cfg.stride)
        no_time = ts.times[0] == "0" and ts.times[-1] == str(n - 1)
        clock = "no time column (rows are the steps)" if no_time else f"time {ts.times[0]} .. {ts.times[-1]}"
        filled = {c: int(k) for c, k in zip(ts.columns, ts.missing.sum(0)) if k}  # empty / NA cells
        if filled:
            clock += f"; missing cells filled by linear interpolation: {filled}"
        if ts.inserted:
            clock += f" ({len(ts.inserted)} row(s) the file left out among them: {', '.join(ts.inserted[:5])}"
            clock += ", ...)" if len(ts.inserted) > 5 else ")"
        say(
            f"timeseries: {cfg.data}: {n} steps x {len(ts.columns)} column(s) {ts.columns}, {clock}, "
            f"target {cfg.target!r}; "
            f"split {n_tr}/{n_val}/{n_test}; window {cfg.window}, horizon {cfg.horizon}, season {cfg.season}"
            + (f" ({inferred})" if inferred else "")
            + f"; {len(train_origins)} training windows, {len(test_origins)} test origins"
        )
        es = cfg.normalize == "es"
        z_seen = scaler.transform(values[: n_tr + n_val])  # (n_tr + n_val, C): what ES training may read

        def new_model(mcfg, w, net=None):  # net: the recurrent network (None) or the counterpart's MLP
            if not es:
                return build_model(mcfg, len(ts.columns)) if net is None else net
            model = build_es(mcfg, len(ts.columns), scaler, target[:n_tr], w, net)
            model.use_series(torch.tensor(z_seen))
            return model

        def batches_of(origins, w, batch_size, order=None):
            if es:
                return _es_batches(z_seen[:, t_idx], origins, cfg.horizon, batch_size, order)
            return make_batches(values, target, origins, cfg, scaler, all_steps, batch_size, order, window=w)

        seed_everything(cfg.seed)
        untrained = report.evaluate_origins(
            new_model(cfg, cfg.window), scaler, values, target, test_origins, cfg, scale
        )["model"]
        val_batches = lambda w: batches_of(val_origins, w, 512) if len(val_origins) else None  # noqa: E731
        steps_per_epoch = -(-len(train_origins) // cfg.batch_size)
        windows = member_windows(cfg)
        t_train = time.perf_counter()

        def member_batches(w: int, seed: int) -> EpochBatches:
            def epoch_batches(epoch: int):
                order = torch.randperm(len(train_origins), generator=per_epoch_generator(seed, epoch)).numpy()
                return batches_of(train_origins, w, cfg.batch_size, order)

            return EpochBatches(epoch_batches, steps_per_epoch)

        members, trained = _train_members(
            cfg,
            run.path,
            windows,
            new_model,
            member_batches,
            val_batches,
            lambda w: batches_of(train_origins[:32], w, 32)[0],
            steps_per_epoch,
            say,
        )
        history, epochs_run = trained[0].history, [len(t.history) for t in trained]
        ensemble = Ensemble(members)
        train_seconds = time.perf_counter() - t_train
        # the feed-forward counterpart (the mlp baseline): window MLPs trained exactly like the networks (the same
        # normalisation, loss and training windows); a many-to-many run's is an MLP on the raw window instead
        ff_members, feedforward = [], None
        if "mlp" in cfg.baselines and not all_steps:
            ff_members, feedforward = _train_counterpart(
                cfg,
                run.path,
                windows,
                lambda mcfg, w: new_model(mcfg, w, _window_mlp(mcfg, w, len(ts.columns), "mse")),
                member_batches,
                val_batches,
                lambda w: batches_of(train_origins[:32], w, 32)[0],
                steps_per_epoch,
                say,
            )

        test = report.evaluate_origins(ensemble, scaler, values, target, test_origins, cfg, scale)
        m, nv, sn = test["model"], test["naive"], test["seasonal_naive"]
        interval = report.interval_scores(ensemble, scaler, values, target, val_origins, test_origins, cfg)

        # every baseline at the comparison origins (non-overlapping horizons at the start of the test part)
        t_base = time.perf_counter()
        cmp = baselines.comparison_origins(n_tr + n_val, n, cfg.horizon, cfg.baseline_origins)
        say(f"baselines: {', '.join(cfg.baselines)} at {len(cmp)} origin(s) of the test part")
        classical = [b for b in cfg.baselines if b != "mlp"]
        mlp = None
        base_fc, base_configs, base_bounds = baselines.classical_forecasts(
            target, n_tr, cmp, cfg.horizon, cfg.season, methods=classical, level=interval.get("level")
        )
        counterpart = Ensemble(ff_members) if ff_members else None
        if counterpart is not None:
            base_fc["mlp"] = forecast_at(counterpart, scaler, values, cmp, cfg.window)
        elif "mlp" in cfg.baselines:
            base_fc["mlp"], mlp = baselines.mlp_forecasts(
                target, n_tr, n_val, cmp, cfg.window, cfg.horizon, cfg.seed
            )
        actual_cmp = futures_at(target, cmp, cfg.horizon)
        model_fc_cmp = forecast_at(ensemble, scaler, values, cmp, cfg.window)
        model_cmp, base_scores, best = report.compare(actual_cmp, model_fc_cmp, base_fc, scale)
        if counterpart is not None:  # the counterpart over every test origin too, as the network is scored
            ff_test = report.evaluate_origins(counterpart, scaler, values, target, test_origins, cfg, scale)
            feedforward["test"] = ff_test["model"]
        mixture = pooled = None
        partners = _partners(cfg, base_fc, global_model=False)
        if partners:
            mixture, pooled = _single_mixture(
                cfg,
                ensemble,
                scaler,
                values,
                target,
                n_tr,
                n_val,
                model_fc_cmp,
                partners,
                actual_cmp,
                scale,
                say,
            )
        if interval:  # the same interval at the comparison origins, next to ETS's and ARIMA's own
            mine = {
                "model": report.interval_bounds(
                    model_fc_cmp, interval["offsets"], interval["kind"], scaler.nonnegative
                )
            }
            if pooled is not None:
                mine["mixture"] = pool_bounds(
                    mixture, mine["model"], base_bounds, pooled, interval, scaler.nonnegative
                )
            interval_cmp = report.interval_comparison(
                actual_cmp, {**mine, **base_bounds}, scale, interval["level"]
            )
            say(report.interval_line(interval["level"], interval_cmp))
        else:
            interval_cmp = {}
        baseline_seconds = time.perf_counter() - t_base
        seconds = time.perf_counter() - t_start
        metric, goal = report.goal_of(cfg, n)
        metrics: dict[str, Any] = {
            "app": APP,
            "data": cfg.data,
            "columns": ts.columns,
            "missing_filled": filled,  # empty / NA cells per column, filled by linear interpolation
            "rows_added": list(ts.inserted),  # time stamps the file left out, added as rows of missing cells
            "target": cfg.target,
            "structure": cfg.structure,
            "normalize": cfg.normalize,
            "window": cfg.window,
            "horizon": cfg.horizon,
            "season": cfg.season,
            "split": {"train": n_tr, "val": n_val, "test": n_test},
            "test_origins": len(test_origins),
            "mase_scale": scale,
            "test": m,
            "naive": nv,
            "seasonal_naive": sn,
            "untrained": untrained,
            "mae_by_step": test["mae_by_step"],
            "comparison": {
                "origins": [int(o) for o in cmp],
                "times": [ts.times[o] for o in cmp],
                "model": model_cmp,
                "baselines": base_scores,
                "strongest": best,
                "configs": base_configs,
                "interval": interval_cmp,
                "seconds": baseline_seconds,
            },
            "goal": f"{metric} {goal}",
            "goal_met": report.goal_met(model_cmp["mase"], base_scores[best]["mase"], n),
            "interval": interval,
            "mixture": mixture,
            "ensemble": {
                "windows": windows,
                "epochs_run": epochs_run,
                "stop_reasons": [t.state.stop_reason for t in trained],  # the top-level one is the first's
            },
            "feedforward": feedforward,
            "epochs_run": len(history),
            **training_summary(members[0][0], trained[0], train_seconds, seconds, [m for m, _ in members]),
            "history": history,
        }
        nets = [m.net if es else m for m, _ in members]
        if es:
            metrics["es"] = [m.state() for m, _ in members]
        save_run_files(run, nets[0], cfg, APP, metrics)
        save_members(run, nets)
        if ff_members:
            save_members(run, [m.net if es else m for m, _ in ff_members], FEEDFORWARD_DIR)
        if mlp is not None:  # `rnnkit evaluate` scores it again
            save_baseline_net(run, mlp, "mlp")
        run.write_json(
            "scaler.json",
            {
                **scaler.to_dict(),
                "columns": ts.columns,
                "target": cfg.target,
                "window": cfg.window,
                "windows": windows,
                "horizon": cfg.horizon,
                "interval": interval.get("offsets"),
                "interval_kind": interval.get("kind"),
                **_pool_info(mixture),
                "times": ts.times[-3:],
                **({"es": metrics["es"], "es_head": members[0][0].head} if es else {}),
                # the counterpart (evaluate reads it from feedforward/), with its smoothing coefficients
                "feedforward": _ff_info(ff_members, es),
            },
        )
        label = report.label_of(cfg)
        written = [
            _plot_curves(run, history, label, es),
            report.plot_forecast(
                cfg,
                ts,
                target,
                test_origins,
                test,
                n_tr + n_val,
                run.file("forecast.png"),
                label,
                None if pooled is None else (mixture, cmp, pooled),
            ),
        ]
        samples = report.samples(ts, target, test_origins, test, cfg)
        run.commit({"app": APP, "name": name, "data": cfg.data})
    final = run.final
    rows = report.result_rows(cfg, model_cmp, base_scores, best, n, seconds)
    if mixture is not None:
        mix = mixture["test"]["mase"]
        met = report.goal_met(mix, base_scores[best]["mase"], n)
        rows.append(replace(rows[0], task=_pool_task(rows[0].task, mixture), value=mix, met=met))
    return TrainResult(final, metrics, rows, samples, [final / p.name for p in written if p is not None])


def _partners(cfg: TimeSeriesConfig, base_fc: dict, global_model: bool) -> dict[str, Any]:
    """The pool's candidate partners ``{name: test forecasts}`` among the baselines computed (``--pool-with``;
    ``auto``: ETS and ARIMA for one series (pooled with the network in equal weights), ETS for a global
    model); empty without ``--ets-mix``."""
    if not cfg.ets_mix:
        return {}
    wanted = (("ets",) if global_model else PARTNERS) if cfg.pool_with == "auto" else (cfg.pool_with,)
    return {k: base_fc[k] for k in wanted if k in base_fc}


def _pool_info(mixture: dict | None) -> dict[str, Any]:
    """What scaler.json keeps of the pool: the network's share and its partner (None: no pool)."""
    return {
        "pool_share": None if mixture is None else mixture["share"],
        "pool_with": None if mixture is None else mixture["with"],
    }


def _pool_task(task: str, mixture: dict) -> str:
    """The report row of the pool: ``"<the network's task> + ETS mix"`` (``+ ARIMA mix``, ``+ ETS+ARIMA mix``)."""
    return mix_task(task, mixture["with"].upper(), mixture["share"])


def _es_batches(z_target: np.ndarray, origins, horizon: int, batch_size: int, order=None) -> list[dict]:
    """ES-RNN batches ``{"origins" (B,), "future" (B, H)}``: the origins index the series the model smooths,
    the futures are the transformed target values it forecasts."""
    origins = np.asarray(origins)
    if order is not None:
        origins = origins[np.asarray(order)]
    out = []
    for s in range(0, len(origins), batch_size):
        o = origins[s : s + batch_size]
        fut = np.stack([z_target[i : i + horizon] for i in o])
        out.append(
            {"origins": torch.tensor(o, dtype=torch.long), "future": torch.tensor(fut, dtype=torch.float32)}
        )
    return out


def _panel_es_samples(cfg, panel, splits, scalers, part: str) -> dict[str, Any] | None:
    """A global ES-RNN's training (``part="train"``) or validation samples: every series' transformed values
    ``z`` (S, n_max, right-padded), and per sample its series, origin, starting indices (from the first
    seasons before the origin, :func:`initial_season`) and future; None when there are none."""
    m = cfg.season
    zs = [sc.transform(y[:, None])[:, 0] for y, sc in zip(panel.values, scalers)]
    sid, origins, init, future = [], [], [], []
    for i, (z, sp) in enumerate(zip(zs, splits)):
        got = sp.train_origins if part == "train" else ([sp.val_origin] if sp.val_origin is not None else [])
        firsts = {}
        for o in got:
            o = int(o)
            k = min(3, o // m)  # initial_season reads at most the first three seasons
            if k not in firsts:
                firsts[k] = initial_season(z[:o], m) if m > 1 else np.zeros(1)
            sid.append(i)
            origins.append(o)
            init.append(firsts[k])
            future.append(z[o : o + cfg.horizon])
    if not origins:
        return None
    padded = np.zeros((len(zs), max(len(z) for z in zs)))
    for i, z in enumerate(zs):
        padded[i, : len(z)] = z
    f32 = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    return {
        "z": f32(padded),
        "scale": f32([float(sc.scale[0]) for sc in scalers]),
        "sid": torch.tensor(sid, dtype=torch.long),
        "origins": torch.tensor(origins, dtype=torch.long),
        "init": f32(init) if m > 1 else None,
        "future": f32(future),
    }


def _panel_es_batches(d: dict[str, Any], batch_size: int, order=None) -> list[dict]:
    """:class:`PanelESForecaster` batches of :func:`_panel_es_samples` in ``order`` (default: as they are);
    each batch's rows are cut after its latest origin."""
    idx = torch.arange(len(d["origins"])) if order is None else torch.as_tensor(order)
    out = []
    for s in range(0, len(idx), batch_size):
        b = idx[s : s + batch_size]
        o, rows = d["origins"][b], d["sid"][b]
        out.append(
            {
                "z": d["z"][rows, : int(o.max())],
                "init": None if d["init"] is None else d["init"][b],
                "origins": o,
                "scale": d["scale"][rows],
                "future": d["future"][b],
            }
        )
    return out


def _tensor_batches(x, y, batch_size: int, order=None) -> list[dict]:
    """``{"inputs", "targets"}`` batches of precomputed tensors, in ``order`` (default: as they are)."""
    idx = torch.arange(len(x)) if order is None else torch.as_tensor(order)
    return [
        {"inputs": x[idx[s : s + batch_size]], "targets": y[idx[s : s + batch_size]]}
        for s in range(0, len(idx), batch_size)
    ]


def train_global(cfg: TimeSeriesConfig, overwrite: bool = False, say=print) -> TrainResult:
    """One network over all the series of a collection (``--id-column`` or a built-in collection).

    Every series is normalised by its own :class:`Scaler` (fitted on its training part); the network is trained
    on the windows of all series at once, with early stopping on every series' validation horizon; each series
    is scored on its last ``horizon`` values next to the per-series baselines (see docs/applications.md). The
    feed-forward counterpart (window MLPs, the same training) is trained with the ``mlp`` baseline or
    ``hybrid``; with ``hybrid`` (the default) the forecast is the median over both ensembles."""
    from rnnkit.config import validate_config
    from rnnkit.train import seed_everything

    validate_config(cfg)
    t_start = time.perf_counter()
    setup_torch(cfg.threads)
    # the data are read and checked before the run's folder exists: bad input leaves nothing behind
    full = load_panel(cfg)
    panel = sample_series(full, cfg.max_series, cfg.seed)
    cfg, inferred = resolve_global_noted(cfg, panel)
    splits = [series_split(len(y), cfg) for y in panel.values]
    scalers = fit_series_scalers(cfg, panel, splits)
    scales = mase_scales(cfg, panel, splits)
    name = cfg.name or (cfg.data if cfg.data in PANELS else APP)
    lengths = np.array([len(y) for y in panel.values])
    windows = member_windows(cfg)
    es = cfg.normalize == "es"
    if es:  # the series themselves: the smoothing runs over each from its start (all members share them)
        es_train = _panel_es_samples(cfg, panel, splits, scalers, "train")
        es_val = _panel_es_samples(cfg, panel, splits, scalers, "val")
        n_train, n_val = len(es_train["origins"]), 0 if es_val is None else len(es_val["origins"])
    else:
        # inputs and targets of every window length the ensemble reads (the members share two lengths)
        data = {w: panel_tensors(cfg, panel, splits, scalers, w, "train") for w in set(windows)}
        val = {w: panel_tensors(cfg, panel, splits, scalers, w, "val") for w in set(windows)}
        n_train = len(data[cfg.window][0])
        n_val = 0 if val[cfg.window] is None else len(val[cfg.window][0])
    say(
        f"timeseries (global): {cfg.data}: {len(panel)} series"
        + (f" (a sample of {len(full)})" if len(panel) < len(full) else "")
        + f", {lengths.min()}..{lengths.max()} values (median {int(np.median(lengths))})"
        + (f"; {full.filled} missing cells filled by linear interpolation" if full.filled else "")
        + (f" ({full.rows_added} of them rows the file left out)" if full.rows_added else "")
        + f"; window {cfg.window}, "
        f"horizon {cfg.horizon}, season {cfg.season}"
        + (f" ({inferred})" if inferred else "")
        + f"; {n_train} training windows, "
        f"{n_val} validation horizons, "
        f"{len(panel)} test horizons"
    )
    with RunBuilder(cfg.runs_dir, name, overwrite) as run:
        test_origins = [sp.test_origin for sp in splits]
        actual = [y[o : o + cfg.horizon] for y, o in zip(panel.values, test_origins)]

        def new_model(mcfg, w, net=None):  # net: the recurrent network (None) or the counterpart's MLP
            net = build_model(mcfg, 1, GLOBAL_LOSS) if net is None else net
            return PanelESForecaster(net, cfg.season, cfg.horizon, w, **es_start(cfg)) if es else net

        seed_everything(cfg.seed)
        untrained = report.summarize(
            report.series_scores(
                actual, panel_forecasts(new_model(cfg, cfg.window), cfg, panel, scalers, test_origins), scales
            )
        )
        steps_per_epoch = -(-n_train // cfg.batch_size)
        t_train = time.perf_counter()

        def member_batches(w: int, seed: int) -> EpochBatches:
            def epoch_batches(epoch: int):
                order = torch.randperm(n_train, generator=per_epoch_generator(seed, epoch))
                if es:
                    return _panel_es_batches(es_train, cfg.batch_size, order)
                return _tensor_batches(*data[w], cfg.batch_size, order)

            return EpochBatches(epoch_batches, steps_per_epoch)

        def val_for(w: int):
            if es:
                return None if es_val is None else _panel_es_batches(es_val, 512)
            return None if val[w] is None else _tensor_batches(*val[w], 512)

        def probe_for(w: int):
            if es:
                return _panel_es_batches(es_train, 32, torch.arange(min(32, n_train)))[0]
            return _tensor_batches(data[w][0][:32], data[w][1][:32], 32)[0]

        members, trained = _train_members(
            cfg, run.path, windows, new_model, member_batches, val_for, probe_for, steps_per_epoch, say
        )
        history, epochs_run = trained[0].history, [len(t.history) for t in trained]
        train_seconds = time.perf_counter() - t_train

        feedforward = network_alone = None
        ff_members: list = []
        base_fc: dict[str, list[np.ndarray]] = {}
        # the counterpart: the same normalisation, loss and windows, an MLP for the GRU
        if "mlp" in cfg.baselines or cfg.hybrid:
            ff_members, feedforward = _train_counterpart(
                cfg,
                run.path,
                windows,
                lambda mcfg, w: new_model(mcfg, w, _window_mlp(mcfg, w, 1, GLOBAL_LOSS)),
                member_batches,
                val_for,
                probe_for,
                steps_per_epoch,
                say,
            )
            if "mlp" in cfg.baselines:
                base_fc["mlp"] = panel_forecasts(Ensemble(ff_members), cfg, panel, scalers, test_origins)
        # the forecast is the median over both ensembles' members (hybrid); the networks alone beside it
        if cfg.hybrid:
            alone = panel_forecasts(Ensemble(members), cfg, panel, scalers, test_origins)
            network_alone = report.summarize(report.series_scores(actual, alone, scales))
        ensemble = Ensemble(members + ff_members if cfg.hybrid else members)
        forecasts = panel_forecasts(ensemble, cfg, panel, scalers, test_origins)
        model_series = report.series_scores(actual, forecasts, scales)
        interval = _panel_interval(cfg, ensemble, panel, splits, scalers, scales, forecasts, actual)

        t_base = time.perf_counter()
        classical = [b for b in cfg.baselines if b != "mlp"]
        say(f"baselines: {', '.join(classical)} on each of the {len(panel)} series")
        level = None if interval is None else cfg.interval
        fitted, base_bounds, configs = baselines.panel_classical(
            panel.values, splits, cfg.horizon, cfg.season, classical, level
        )
        base_fc.update(fitted)
        base_series = {b: report.series_scores(actual, fc, scales) for b, fc in base_fc.items()}
        mixture = pooled = None
        partners = _partners(cfg, base_fc, global_model=True)
        if partners:
            mixture, pooled = _panel_mixture(
                cfg, ensemble, panel, splits, scalers, scales, forecasts, partners, actual, say
            )
        interval_cmp = {}
        if interval is not None:  # next to ETS's and ARIMA's own intervals, where every series has one
            theirs = {
                b: (np.stack([lo for lo, _ in v]), np.stack([hi for _, hi in v]))
                for b, v in base_bounds.items()
                if len(v) == len(panel)
            }
            nonneg = [sc.nonnegative for sc in scalers]
            mine = {"model": report.panel_all_bounds(forecasts, interval, scales, nonneg)}
            if pooled is not None:  # the network's interval, centred on the pooled forecast
                mine["mixture"] = report.panel_all_bounds(pooled, interval, scales, nonneg)
            interval_cmp = report.interval_comparison(actual, {**mine, **theirs}, scales, cfg.interval)
            say(report.interval_line(cfg.interval, interval_cmp))
        baseline_seconds = time.perf_counter() - t_base
        model_sum = report.summarize(model_series)
        base_sum = {b: report.summarize(v) for b, v in base_series.items()}
        best = min(base_sum, key=lambda b: base_sum[b]["mase_mean"])
        typical = int(np.median(lengths))
        metric, goal = report.goal_of(cfg, typical)
        met = report.goal_met(model_sum["mase_mean"], base_sum[best]["mase_mean"], typical)
        wins = int(np.sum(np.asarray(model_series["mase"]) < np.asarray(base_series[best]["mase"])))
        seconds = time.perf_counter() - t_start
        metrics: dict[str, Any] = {
            "app": APP,
            "global": True,
            "data": cfg.data,
            "series": len(panel),
            "series_in_data": len(full),
            "value_column": panel.value_column,
            "structure": cfg.structure,
            "normalize": cfg.normalize,
            "window": cfg.window,
            "horizon": cfg.horizon,
            "season": cfg.season,
            "lengths": {"min": int(lengths.min()), "median": typical, "max": int(lengths.max())},
            "training_windows": n_train,
            "test": model_sum,
            "baselines": base_sum,
            "strongest": best,
            "series_beating_strongest": wins,
            "untrained": untrained,
            "baseline_configs": configs,
            "baseline_seconds": round(baseline_seconds, 2),
            "goal": f"mean {metric} over series {goal}",
            "goal_met": met,
            "ensemble": {
                "windows": windows,
                "epochs_run": epochs_run,
                "stop_reasons": [t.state.stop_reason for t in trained],  # the top-level one is the first's
            },
            "interval": interval,
            "interval_comparison": interval_cmp,
            "mixture": mixture,
            "feedforward": feedforward,
            "hybrid": cfg.hybrid,
            "network_alone": network_alone,
            "epochs_run": len(history),
            **training_summary(members[0][0], trained[0], train_seconds, seconds, [m for m, _ in members]),
            "history": history,
        }
        if es:
            metrics["es"] = [m.state() for m, _ in members]
        nets = [m.net if es else m for m, _ in members]
        save_run_files(run, nets[0], cfg, APP, metrics)
        save_members(run, nets)
        if feedforward is not None:  # `rnnkit evaluate` scores it again
            save_members(run, [m.net if es else m for m, _ in ff_members], FEEDFORWARD_DIR)
        run.write_json(
            "scaler.json",
            {
                "kind": "global",
                **({"es": metrics["es"]} if es else {}),
                "mode": cfg.normalize,
                "structure": cfg.structure,
                "season": cfg.season,
                "trend": cfg.trend == "line",
                "columns": [panel.value_column],
                "target": panel.value_column,
                "window": cfg.window,
                "windows": windows,
                "horizon": cfg.horizon,
                **_pool_info(mixture),
                # the counterpart (evaluate reads it from feedforward/), with its smoothing coefficients
                "feedforward": _ff_info(ff_members, es),
                "interval": None
                if interval is None
                else {k: interval[k] for k in ("level", "kind", "offsets")},
                "series": [
                    {
                        "id": sid,
                        "center": sc.center.tolist(),
                        "scale": sc.scale.tolist(),
                        "log": sc.log.tolist(),
                        "nonnegative": sc.nonnegative,
                        "mase_scale": float(m),
                        "times": t[-3:],
                    }
                    for sid, sc, t, m in zip(panel.ids, scalers, panel.times, scales)
                ],
            },
        )
        names = ["model", *base_series]
        lines = ["series,values," + ",".join(f"{b.replace(' ', '_')}_mase" for b in names) + ",model_smape"]
        for i, sid in enumerate(panel.ids):
            cells = [model_series["mase"][i]] + [base_series[b]["mase"][i] for b in base_series]
            lines.append(
                f"{_csv_cell(sid)},{lengths[i]},"
                + ",".join(f"{v:.6g}" for v in cells)
                + f",{model_series['smape'][i]:.6g}"
            )
        run.write_text("series_scores.csv", "\n".join(lines) + "\n")
        label = (
            f"{PANELS[cfg.data][5] if cfg.data in PANELS else report.label_of(cfg)} ({len(panel):,} series"
            + (")" if len(panel) == len(full) else f", a sample of {len(full):,})")
        )
        written = [_plot_curves(run, history, label, es)]
        samples = [
            f"mean MASE over {len(panel)} series: model {model_sum['mase_mean']:.3f} (median "
            f"{model_sum['mase_median']:.3f}); "
            + ", ".join(f"{b} {v['mase_mean']:.3f}" for b, v in base_sum.items())
            + f"; the model beats {best} on {wins} of {len(panel)} series"
        ]
        for i in range(min(2, len(panel))):
            samples.append(
                f"  {panel.ids[i]}: forecast "
                + " ".join(format_value(v) for v in forecasts[i][:4])
                + " ...  actual "
                + " ".join(format_value(v) for v in actual[i][:4])
                + " ..."
            )
        run.commit({"app": APP, "name": name, "data": cfg.data})
    final = run.final
    row = ResultRow(
        f"{label}, {cfg.horizon}-step",
        f"mean {metric}",
        model_sum["mase_mean"],
        best,
        base_sum[best]["mase_mean"],
        goal,
        met,
        seconds,
        {k: v["mase_mean"] for k, v in base_sum.items()},
    )
    rows = [row]
    if mixture is not None:
        mix = mixture["test"]["mase_mean"]
        rows.append(
            replace(
                row,
                task=_pool_task(row.task, mixture),
                value=mix,
                met=report.goal_met(mix, base_sum[best]["mase_mean"], typical),
            )
        )
    return TrainResult(final, metrics, rows, samples, [final / p.name for p in written if p is not None])


def _single_mixture(
    cfg, model, scaler, values, target, n_tr, n_val, model_fc_cmp, partners, actual_cmp, scale, say
) -> tuple[dict[str, Any] | None, np.ndarray | None]:
    """One series' network pooled with classical models (:mod:`rnnkit.apps.timeseries.mixture`).

    With ``--pool-with auto`` the network and every partner of ``partners`` (``{name: forecasts at the
    comparison origins}``) weigh the same (partner ``"ets+arima"``, share 1/3): on samples of competition
    series the validation part's one to three horizons chose worse weights than these (docs/applications.md,
    *Choosing the pool's partner*). Else the partner and share are chosen at up to ``baseline_origins``
    non-overlapping horizons of the validation part (the partner fitted on every value before each, its form
    by AICc / AIC). Either way the pool is scored at the report's comparison origins next to the baselines,
    and its validation MASE is recorded. Returns the report's ``mixture`` entry and the pooled forecasts at
    those origins (None, None without a validation horizon)."""
    h = cfg.horizon
    val_cmp = baselines.comparison_origins(n_tr, n_tr + n_val, h, cfg.baseline_origins)
    if not len(val_cmp) or not len(actual_cmp):
        return None, None
    weights = MIX_WEIGHTS
    chosen_by = f"mean MASE at {len(val_cmp)} validation origin(s)"
    if cfg.pool_with == "auto":  # no choice: the network and each partner weigh the same (docs: measured)
        partners = {"+".join(partners): [np.mean(f, axis=0) for f in zip(*partners.values(), strict=True)]}
        weights = (1.0 / (1 + len(next(iter(partners)).split("+"))),)
        chosen_by = "equal weights (none chosen)"
    net_val = list(forecast_at(model, scaler, values, val_cmp, cfg.window))
    their_val = {k: [classical_at(target, o, o, h, cfg.season, k) for o in val_cmp] for k in partners}
    val_actual = list(futures_at(target, val_cmp, h))
    out, pooled = _pool(
        net_val,
        their_val,
        val_actual,
        np.full(len(val_cmp), scale),
        model_fc_cmp,
        partners,
        chosen_by,
        weights,
    )
    pooled = np.stack(pooled)
    out["val_origins"] = [int(o) for o in val_cmp]
    out["test"] = report.score(actual_cmp, pooled, scale)
    say(f"{_pool_line(out)}; MASE at the comparison origins {out['test']['mase']:.3f}")
    return out, pooled


def _pool(
    net_val, their_val, val_actual, val_scales, net_test, their_test, chosen_by: str, weights=MIX_WEIGHTS
):
    """The partner and share chosen on the validation horizons
    (:func:`~rnnkit.apps.timeseries.mixture.choose_pool`): the report's ``mixture`` entry without its test
    scores, and the pooled test forecasts (a list of (H,))."""
    name, share, by_partner = choose_pool(net_val, their_val, val_actual, val_scales, weights)
    out = {
        "with": name,
        "share": share,
        "chosen_by": chosen_by,
        "val_mase": by_partner[name],
        "val_mase_by_partner": by_partner,
    }
    return out, mix_forecasts(list(net_test), list(their_test[name]), share)


def _pool_line(out: dict[str, Any]) -> str:
    """The training log's line on the pool's choice (validation MASE of the choice and of each end)."""
    val, share = out["val_mase"], out["share"]
    ends = [f"network alone {val[1.0]:.3f}"] if 1.0 in val else []
    ends += [f"{k.upper()} alone {m[0.0]:.3f}" for k, m in out["val_mase_by_partner"].items() if 0.0 in m]
    return (
        f"pooled with {out['with'].upper()}: the network's share {share:.3g} ({out['chosen_by']}; validation "
        f"MASE {val[share]:.3f}" + "".join(f", {e}" for e in ends) + ")"
    )


def _panel_mixture(
    cfg, model, panel, splits, scalers, scales, forecasts, partners, actual, say
) -> tuple[dict[str, Any] | None, list[np.ndarray] | None]:
    """The global network pooled with a classical model (:mod:`rnnkit.apps.timeseries.mixture`): the partner
    (of ``partners``, ``{name: test forecasts per series}``) and the share chosen on the series' validation
    horizons, and the test scores. Returns the report's ``mixture`` entry and the pooled test forecasts (None,
    None when no series has a validation horizon)."""
    has_val = [i for i, sp in enumerate(splits) if sp.val_origin is not None]
    if not has_val:
        return None, None
    h = cfg.horizon
    ys = [panel.values[i] for i in has_val]
    origins = [splits[i].val_origin for i in has_val]
    net_val = series_forecasts(
        model, [y[:o] for y, o in zip(ys, origins)], [scalers[i] for i in has_val], cfg.window
    )
    their_val = {k: [classical_at(y, o, o, h, cfg.season, k) for y, o in zip(ys, origins)] for k in partners}
    val_actual = [y[o : o + h] for y, o in zip(ys, origins)]
    out, pooled = _pool(
        net_val,
        their_val,
        val_actual,
        scales[has_val],
        forecasts,
        partners,
        f"mean MASE on {len(has_val)} validation horizons",
    )
    out["test"] = report.summarize(report.series_scores(actual, pooled, scales))
    say(f"{_pool_line(out)}; test mean MASE {out['test']['mase_mean']:.3f}")
    return out, pooled


def _csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


def _plot_curves(run, history, label: str, es: bool = False):
    """The training curves of a forecasting run (loss and MAE, in normalised units) as curves.png; an ES-RNN's
    loss is the absolute error, the window networks' the squared error."""
    return plots.plot_curves(
        history,
        run.file("curves.png"),
        "epoch",
        f"{label}: training curves (normalised units)",
        left=["train_loss", "val_loss"],
        right=["train_mae", "val_mae"],
        left_label="loss (absolute error)" if es else "loss (MSE)",
        right_label="MAE",
    )


def _panel_interval(cfg, model, panel, splits, scalers, scales, forecasts, actual) -> dict[str, Any] | None:
    """The global model's forecast interval (:func:`report.panel_interval`) from the series' validation
    horizons, and its coverage of the test values; None without a validation part.

    The errors are always scaled by each series' MASE denominator (``kind = "scaled"``), never taken as log
    ratios: a log-ratio interval's width follows the series' level, a scaled one its variability, which is
    what MASE and MSIS measure in (M3 quarterly, 80 %, symmetric: MSIS 9.34 with log ratios, 6.25 scaled)."""
    keep = [i for i, sp in enumerate(splits) if sp.val_origin is not None]
    if not keep:
        return None
    origins = [splits[i].val_origin for i in keep]
    fc = panel_forecasts(model, cfg, panel.subset(keep), [scalers[i] for i in keep], origins)
    truth = [panel.values[i][o : o + cfg.horizon] for i, o in zip(keep, origins)]
    interval = report.panel_interval(cfg.interval, fc, truth, scales[keep], tails=cfg.interval_tails)
    nonneg = [sc.nonnegative for sc in scalers]
    return {**interval, **report.panel_coverage(forecasts, actual, interval, scales, nonneg)}


def _window_mlp(cfg: TimeSeriesConfig, window: int, channels: int, loss: str):
    """A feed-forward counterpart member's network: :class:`~rnnkit.models.WindowRegressor` (two ReLU layers of
    64, :class:`~rnnkit.baselines.MLPForecaster`'s size) on ``window`` steps of ``channels`` values, trained with
    ``loss`` (the recurrent network's)."""
    from rnnkit.models import WindowRegressor, WindowRegressorConfig

    return WindowRegressor(
        WindowRegressorConfig(
            output_size=cfg.horizon, input_size=channels, window=window, dropout=cfg.dropout, loss=loss
        )
    )


def _train_counterpart(
    cfg, run_path, windows, make_model, member_batches, val_for, probe_for, steps_per_epoch, say
) -> tuple[list, dict[str, Any]]:
    """The feed-forward counterpart: one window MLP (``make_model(cfg, window)``, inside the network's
    normalisation) in place of each recurrent network, trained exactly as they were (:func:`_train_members`: the
    same windows, batches, loss and early stopping) in ``run_path / FEEDFORWARD_DIR``. Returns its members and
    what ``metrics.json`` says of it (``feedforward``)."""
    say(f"feed-forward counterpart: {len(windows)} window MLPs in place of the recurrent networks")
    t0 = time.perf_counter()
    members, trained = _train_members(
        cfg,
        run_path / FEEDFORWARD_DIR,
        windows,
        make_model,
        member_batches,
        val_for,
        probe_for,
        steps_per_epoch,
        say,
        monitor=False,
    )
    return members, {
        "model": "WindowRegressor (window MLP; the network's normalisation, loss and training windows)",
        "parameters": sum(p.numel() for p in members[0][0].parameters()),
        "epochs_run": [len(t.history) for t in trained],
        "stop_reasons": [t.state.stop_reason for t in trained],
        "train_seconds": round(time.perf_counter() - t0, 2),
    }


def _ff_info(ff_members: list, es: bool) -> dict[str, Any] | None:
    """What scaler.json keeps of the counterpart (its networks are in ``feedforward/``): None without one, else
    each member's learnt smoothing with ES (``{"es": [...]}``)."""
    if not ff_members:
        return None
    return {"es": [m.state() for m, _ in ff_members]} if es else {}


def _train_members(
    cfg,
    run_path,
    windows,
    make_model,
    member_batches,
    val_for,
    probe_for,
    steps_per_epoch,
    say,
    monitor: bool = True,
):
    """Train the ensemble's networks one after another, network ``k`` with seed ``cfg.seed + k`` on windows of
    ``windows[k]`` values, in the folder ``run_path`` (``k = 0``) or ``members/k`` in it (see
    :func:`fit_member`: a resumed run reads finished networks back). A time budget is shared equally. Gradient
    flow through time is recorded when ``monitor`` (not for a feed-forward model). Returns ``members =
    [(model, window), ...]`` and how each trained (:class:`~rnnkit.apps._common.MemberTraining`)."""
    from rnnkit.train import seed_everything

    budget = cfg.time_budget / cfg.ensemble if cfg.time_budget else cfg.time_budget
    members, trained = [], []
    for k, w in enumerate(windows):
        mcfg = replace(cfg, seed=cfg.seed + k, time_budget=budget)
        seed_everything(mcfg.seed)
        model = make_model(mcfg, w)
        out_dir = member_dir(run_path, k)
        out_dir.mkdir(parents=True, exist_ok=True)
        every = max(1, steps_per_epoch * max(cfg.epochs, 1) // 12) if monitor else 0
        batches, val, probe = member_batches(w, mcfg.seed), val_for(w), probe_for(w)
        done = fit_member(
            model,
            out_dir,
            run_path,
            lambda m=model, c=mcfg, d=out_dir, e=every: build_trainer(
                m, c if monitor else replace(c, grad_monitor_every=0), d, grad_monitor_every=e
            ),
            lambda t, b=batches, v=val, p=probe: t.fit(b, v, probe_batch=p),
        )
        trained.append(done)
        members.append((model, w))
        if len(windows) > 1:
            say(f"ensemble member {k + 1}/{len(windows)} (window {w}): {len(done.history)} epochs")
    return members, trained
