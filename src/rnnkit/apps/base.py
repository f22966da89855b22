"""What every application returns and how a saved run is loaded back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit._errors import RnnkitError
from rnnkit.apps.rundir import member_dir, open_run, read_json

__all__ = ["DemoStage", "ResultRow", "TrainResult", "load_app_config", "load_run_model", "mix_task"]


@dataclass
class ResultRow:
    """One line of a results table: a held-out metric next to the strongest baseline.

    ``baseline``/``baseline_value`` name the strongest of the baselines computed on the same split (the one
    ``goal`` and ``met`` judge against); ``baselines`` holds every baseline's score by name, for the report.
    """

    task: str  # e.g. "sentiment (polarity)"
    metric: str  # e.g. "accuracy"
    value: float  # the trained model's score
    baseline: str  # the baseline's name
    baseline_value: float  # its score on the same data
    goal: str  # what counts as success, e.g. ">= baseline" or "< 0.7"
    met: bool  # whether the goal is met
    seconds: float  # wall time of the run (data, training, evaluation, baseline)
    baselines: dict[str, float] = field(default_factory=dict)  # every baseline's score on the same split

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def mix_task(task: str, partner: str, network_share: float | None) -> str:
    """The results-table name of the network pooled with ``partner`` (``"... + TF-IDF mix"``); where validation
    gave the network a share of 0 the pool is the partner alone, and the name says so, so that its row is not
    read as the network's."""
    name = f"{task} + {partner} mix"
    return f"{name} (network share 0: {partner} alone)" if network_share == 0 else name


@dataclass
class TrainResult:
    """What ``train`` of an application returns."""

    run: Path  # the finished run directory
    metrics: dict[str, Any]  # the content of metrics.json
    rows: list[ResultRow]  # lines for the results table
    samples: list[str] = field(default_factory=list)  # sample predictions / generated text, for people
    plots: list[Path] = field(default_factory=list)  # PNG files written


def load_app_config(run: Path, manifest: dict[str, Any]):
    """The application config saved in a run (validated like a TOML file)."""
    from rnnkit.apps import APP_NAMES, app_config
    from rnnkit.config import config_from_dict, saved_run_settings

    app = manifest.get("app")
    if app not in APP_NAMES:
        raise RnnkitError(f"run {run.name}: unknown application {app!r} in run.json")
    data = read_json(run / "config.json", f"run {run.name}")
    cls = app_config(app)
    if isinstance(data, dict):  # settings added since the run was saved: the values it was made with
        data = saved_run_settings(cls, data)
    try:  # settings saved under an older name are read under the current one (rnnkit.config.RENAMED)
        return config_from_dict(cls, data, f"run {run.name}/config.json")
    except RnnkitError as exc:
        raise RnnkitError(f"run {run.name} is damaged: {exc}") from None


def load_run_model(run: Path, expected: type, name: str | None = None):
    """The model saved in a run (or in a folder of run ``name``); a damaged or missing model file is a one-line
    ``RnnkitError``."""
    from rnnkit.models import load_model

    try:
        return load_model(run, expected)
    except RnnkitError as exc:
        raise RnnkitError(f"run {name or run.name}: cannot load the saved model: {exc}") from None


def load_feedforward(run: Path, config: Any, expected: type):
    """The run's feed-forward counterpart (its ``feedforward/`` folder, see
    :func:`rnnkit.apps._common.save_feedforward`), or None for a run trained without one (``ff_layers`` 0,
    which runs saved before the counterparts existed read). A run that should have one and has not is
    damaged: a one-line ``RnnkitError``."""
    from rnnkit.apps._common import FEEDFORWARD_DIR

    if not getattr(config, "ff_layers", 0):
        return None
    try:
        from rnnkit.models import load_model

        return load_model(run / FEEDFORWARD_DIR, expected)
    except RnnkitError as exc:
        raise RnnkitError(f"run {run.name}: cannot load its feed-forward counterpart: {exc}") from None


def load_members(run: Path, count: int, expected: type, name: str | None = None) -> list:
    """The ``count`` models of an ensemble run: the run's own model, then ``members/1 ..`` (see
    :func:`rnnkit.apps._common.save_members`); ``run`` may be a folder of run ``name`` holding a second
    ensemble."""
    return [load_run_model(member_dir(run, k), expected, name) for k in range(count)]


def open_app_run(path, app: str | tuple[str, ...] | None = None):
    """``(run path, manifest, config)`` of a finished run of ``app``."""
    run, manifest = open_run(path, app)
    return run, manifest, load_app_config(run, manifest)


@dataclass
class DemoStage:
    """One training in ``rnnkit demo``: a run key, the line shown when it starts, and its config.

    Each application with a demo has a module ``rnnkit.apps.<app>.demo`` with ``DATA`` (one line naming the
    data sources), ``fetch() -> str`` (loads/caches the data, returns its sizes),
    ``stages(common, scale) -> list[DemoStage]`` (``scale`` is ``"quick"`` — seconds, for tests —,
    ``"demo"`` — the capped size of ``make demo`` — or ``"full"`` — ``rnnkit demo APP`` alone, fuller) and
    ``show(results) -> list[str]`` (what to print after the results table; ``results`` maps stage keys to
    :class:`TrainResult`). ``common`` holds ``runs_dir``, ``threads`` and ``progress``.
    """

    key: str  # also the run name: demo-<key>
    title: str  # e.g. "time series: CO2, 52 weeks ahead"
    config: Any  # the app's config dataclass (an AppConfig)
