"""``rnnkit demo`` (``make demo``): rnnkit's main job — its applications trained on real data, in minutes.

Every application that has a module ``rnnkit.apps.<app>.demo`` (see :class:`rnnkit.apps.base.DemoStage`)
takes part, in the order of :data:`DEMO_ORDER`:

1. the data sets are fetched once into the cache;
2. each application trains at a small, time-capped scale on its built-in real data and is scored on held-out
   data next to the baselines a practitioner would use (sentiment: TF-IDF / bag-of-words logistic regression;
   forecasting: naive, seasonal naive, ETS, ARIMA; text: Kneser-Ney n-grams; ...);

then one results table, sample predictions and generated output are printed. Runs go to
``RUNS_DIR/demo-*`` (replaced on every demo run); each has its plots. ``make demo`` ends in under 10 minutes
on 2 CPU cores. ``rnnkit demo APP [APP ...]`` runs only those applications, at a fuller scale.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from rnnkit._errors import RnnkitError

NAME = "demo"
HELP = "rnnkit's main job: train every application on real data next to its baselines (< 10 min)"

# the order of the stages; an application takes part once it has a demo module
DEMO_ORDER = ("sentiment", "timeseries", "textgen", "translate", "caption", "speech", "handwriting", "music")


def demo_modules(apps: list[str] | None = None) -> dict:
    """``{app: its demo module}`` for ``apps`` (default: every application that has one), in demo order."""
    from rnnkit.apps import APP_NAMES

    if apps:
        bad = [a for a in apps if a not in APP_NAMES]
        if bad:
            raise RnnkitError(f"demo: unknown application {bad[0]!r}; expected one of {list(APP_NAMES)}")
    out = {}
    for app in DEMO_ORDER:
        if app not in APP_NAMES or (apps and app not in apps):
            continue
        try:
            out[app] = importlib.import_module(f"rnnkit.apps.{app}.demo")
        except ModuleNotFoundError as exc:
            if exc.name != f"rnnkit.apps.{app}.demo":
                raise
            if apps:
                raise RnnkitError(f"demo: application {app!r} has no demo yet") from None
    return out


def demo_stages(modules: dict, runs_dir: str, scale: str, threads: int | None, progress: bool) -> dict:
    """``{app: [DemoStage, ...]}``: the demo's runs (``scale``: ``quick``, ``demo`` or ``full``).

    ``threads=None`` lets each application choose: its demo module's ``DEMO_THREADS``, else one thread."""
    out = {}
    for app, mod in modules.items():
        t = getattr(mod, "DEMO_THREADS", 1) if threads is None else threads
        out[app] = mod.stages({"runs_dir": runs_dir, "threads": t, "progress": progress}, scale)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "apps",
        nargs="*",
        metavar="APP",
        help="run only these applications, at a fuller scale (default: all of them, at demo scale)",
    )
    p.add_argument("--runs-dir", default="runs", help="where the demo-* runs are written (default: runs)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads of every stage (default: 1, and up to 2 for text generation's LSTM, which they "
        "speed up; 0 = torch's default)",
    )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument(
        "--quick", action="store_true", help="tiny models and budgets: a smoke test in about a minute"
    )
    p.add_argument(
        "--scale",
        choices=("quick", "demo", "full"),
        help="the size of every run: quick (= --quick), demo (make demo's) or full (default: full when "
        "APPs are named, else demo)",
    )


def _stage(n: int, total: int, text: str) -> None:
    sys.stderr.write(f"\n[{n}/{total}] {text}\n")
    sys.stderr.flush()


def _say(text: str) -> None:
    sys.stderr.write("      " + text + "\n")
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    from rnnkit.apps.rundir import interrupted_options

    with interrupted_options(discard=True):  # the demo always starts afresh (its runs are --overwrite too)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from rnnkit.apps import app_module
    from rnnkit.apps._common import format_table

    if args.threads is not None and args.threads < 0:
        raise RnnkitError(f"--threads: expected a value >= 0, got {args.threads}")
    t0 = time.perf_counter()
    modules = demo_modules(args.apps)
    scale = args.scale or ("quick" if args.quick else ("full" if args.apps else "demo"))
    stages = demo_stages(modules, args.runs_dir, scale, args.threads, args.progress)
    total = 1 + sum(len(s) for s in stages.values())
    print(f"rnnkit demo: {', '.join(modules)} on real data")
    print(f"(runs are written to {args.runs_dir}/demo-*; progress on stderr)")
    sys.stdout.flush()

    _stage(1, total, "data: " + "; ".join(mod.DATA for mod in modules.values()))
    t = time.perf_counter()
    from rnnkit.datasets import cache_dir

    sizes = [mod.fetch() for mod in modules.values()]
    _say(f"ready in {time.perf_counter() - t:.1f} s (cache: {cache_dir()}): " + ", ".join(sizes))

    results: dict[str, dict] = {}
    n = 1
    for app, app_stages in stages.items():
        results[app] = {}
        for st in app_stages:
            n += 1
            _stage(n, total, st.title)
            results[app][st.key] = app_module(app).train(st.config, overwrite=True, say=_say)
    wall = time.perf_counter() - t0

    rows = []
    for per_app in results.values():
        for res in per_app.values():
            for r in res.rows:
                base = "-" if r.baseline_value != r.baseline_value else f"{r.baseline_value:.4g}"
                met = "yes" if r.met else "no"
                rows.append(
                    (r.task, r.metric, r.value, f"{base} ({r.baseline})", r.goal, met, f"{r.seconds:.0f} s")
                )
    print("\nResults on held-out data")
    print(format_table(rows, ("task", "metric", "rnnkit", "baseline", "goal", "met", "time")))

    for app, mod in modules.items():
        print()
        print("\n".join(mod.show(results[app])))
    from rnnkit.apps.plots import have_matplotlib

    if have_matplotlib():
        print("Plots:")
        for per_app in results.values():
            for res in per_app.values():
                print("  " + ", ".join(str(p) for p in res.plots + _grad(res.run)))
    else:
        print("Plots skipped: matplotlib is not installed (pip install 'rnnkit[plot]')")
    print(f"\nTotal wall time {int(wall // 60)} min {wall % 60:.0f} s")
    return 0


def _grad(run) -> list:
    p = run / "grad_flow_heatmap.png"
    return [p] if p.exists() else []
