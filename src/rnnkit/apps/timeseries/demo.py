"""Forecasting in ``rnnkit demo``: weekly CO2 and yearly sunspots vs naive, ETS and ARIMA forecasts."""

from __future__ import annotations

from dataclasses import replace

from rnnkit.apps.base import DemoStage

DATA = "CO2 + sunspots (PyPI statsmodels)"


def fetch() -> str:
    from rnnkit.datasets import load_co2, load_sunspots

    return f"{len(load_co2()):,} weeks, {len(load_sunspots())} years"


def stages(common: dict, scale: str) -> list[DemoStage]:
    from rnnkit.apps.timeseries.config import TimeSeriesConfig

    # ETS on 52-week seasons is slow: CO2's baselines at one test origin
    co2 = TimeSeriesConfig(
        data="co2", name="demo-co2", epochs=30, early_stopping=8, time_budget=40, baseline_origins=1, **common
    )
    sun = TimeSeriesConfig(
        data="sunspots", name="demo-sunspots", epochs=60, early_stopping=15, time_budget=25, **common
    )
    if scale == "quick":
        fast = {"time_budget": 0, "ensemble": 1, "baselines": ["naive", "seasonal naive"]}
        co2 = replace(co2, epochs=1, hidden_size=8, **fast)
        sun = replace(sun, epochs=2, hidden_size=8, **fast)
    elif scale == "full":
        co2 = replace(co2, epochs=100, early_stopping=15, time_budget=600, baseline_origins=3)
        sun = replace(sun, epochs=200, early_stopping=30, time_budget=300)
    return [
        DemoStage("co2", "time series: CO2, 52 weeks ahead (GRU forecaster vs naive, ETS, ARIMA)", co2),
        DemoStage("sunspots", "time series: sunspots, 5 years ahead", sun),
    ]


def show(results: dict) -> list[str]:
    lines = []
    for key, label in (("co2", "CO2 (ppm)"), ("sunspots", "Sunspots")):
        if key in results:
            lines.append(f"{label}: " + results[key].samples[0])
            lines += results[key].samples[1:]
    return lines
