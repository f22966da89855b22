"""Global forecasting runs: the network's ensemble, its feed-forward counterpart's, and the median of both.

A global run (``rnnkit train timeseries --data tourism-quarterly``, ...) keeps its GRU ensemble and, with the
``mlp`` baseline, the window MLPs trained the same way (``feedforward/``). This scores, on each run's test
parts exactly as ``rnnkit evaluate`` does, the GRUs' median, the MLPs' median and the median over all members
of both (the hybrid ensemble docs/applications.md measures), from the saved runs: nothing is trained.

    PYTHONPATH=src python benchmarks/hybrid_global_ensemble.py runs/tourism-quarterly runs/m3-quarterly ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rnnkit.apps.timeseries import load
from rnnkit.apps.timeseries.model import Ensemble
from rnnkit.apps.timeseries.panel import (
    mase_scales,
    panel_forecasts,
    resolve_global,
    sample_series,
    series_split,
)
from rnnkit.apps.timeseries.report import series_scores, summarize


def score(run: str) -> dict[str, dict]:
    g = load(run)
    if g.feedforward is None:
        raise SystemExit(
            f"{run}: no feed-forward counterpart (a global run trained with the mlp baseline has one)"
        )
    cfg = g.config
    panel = sample_series(g._panel(None, None), cfg.max_series, cfg.seed)
    checked = resolve_global(cfg, panel)
    splits = [series_split(len(y), checked) for y in panel.values]
    scalers = [g.scalers[sid] for sid in panel.ids]
    origins = [sp.test_origin for sp in splits]
    actual = [y[o : o + cfg.horizon] for y, o in zip(panel.values, origins)]
    scales = mase_scales(checked, panel, splits)
    models = {
        "network": g.model,
        "counterpart": g.feedforward,
        "both": Ensemble(g.model.members + g.feedforward.members),
    }
    out = {
        k: summarize(series_scores(actual, panel_forecasts(m, cfg, panel, scalers, origins), scales))
        for k, m in models.items()
    }
    reported = json.loads((Path(run) / "metrics.json").read_text())["test"]["mase_mean"]
    assert abs(out["network"]["mase_mean"] - reported) < 1e-6, (
        out["network"],
        reported,
    )  # scored as training did
    return out


def main(runs: list[str]) -> None:
    for run in runs:
        out = score(run)
        cells = " ".join(f"{k} {v['mase_mean']:.3f} ({v['mase_median']:.3f})" for k, v in out.items())
        print(
            f"{Path(run).name}: mean (median) MASE {cells}; both / network {out['both']['mase_mean'] / out['network']['mase_mean']:.4f}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
