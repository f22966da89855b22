"""Load on ``rnnkit serve``: N concurrent clients for a while against classify and streaming generate.

The server runs in its own process (``rnnkit serve``, as a user starts it); the clients are asyncio tasks
in this one (httpx). Half the clients classify a short text again and again; the other half stream a
generation (``--length`` tokens) again and again. Reported per kind: completed requests per second,
p50 / p99 latency (a stream: until its last token, and until its first), tokens per second, and errors
(any non-200 answer, broken stream or ``error`` event).

Without ``--sentiment`` / ``--textgen`` it first trains two tiny runs (seconds) in a temporary folder, so
the numbers then measure the server's overhead more than the models.

    .venv/bin/python benchmarks/serve_load.py [--clients 8] [--duration 60] [--sentiment RUN] [--textgen RUN]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def _tiny_runs(root: Path) -> tuple[Path, Path]:
    from rnnkit.cli import main

    rows = ["review,sentiment"] + [
        f"{'a fine warm film' if i % 2 else 'a dull long film'} number {i},{'pos' if i % 2 else 'neg'}"
        for i in range(60)
    ]
    (root / "reviews.csv").write_text("\n".join(rows) + "\n")
    (root / "text.txt").write_text("the cat sat on the mat. the dog sat on the log. " * 40)
    runs = root / "runs"
    quiet = ["--runs-dir", str(runs), "--no-progress"]
    argv = [
        ["train", "sentiment", "--data", str(root / "reviews.csv"), "--text-column", "review",
         "--label-column", "sentiment", "--name", "senti", "--hidden-size", "32", "--epochs", "1", *quiet],
        ["train", "textgen", "--data", str(root / "text.txt"), "--name", "chars", "--hidden-size", "64",
         "--max-steps", "5", "--sample-length", "0", "--no-baselines", *quiet],
    ]  # fmt: skip
    for a in argv:
        if main(a) != 0:
            raise SystemExit(f"could not train {a[1]}")
    return runs / "senti", runs / "chars"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


async def _client(kind: str, base: str, model: str, args, end: float, out: dict) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        while time.monotonic() < end:
            t0 = time.monotonic()
            try:
                if kind == "classify":
                    r = await http.post(
                        f"/models/{model}/classify", json={"texts": ["a fine warm film indeed"]}
                    )
                    ok = r.status_code == 200
                    first = None
                    tokens = 0
                else:
                    body = {
                        "prompt": "the ",
                        "length": args.length,
                        "temperature": 0.8,
                        "seed": len(out["lat"]),
                    }
                    first, tokens, ok = None, 0, True
                    async with http.stream("POST", f"/models/{model}/generate/stream", json=body) as r:
                        ok = r.status_code == 200
                        async for line in r.aiter_lines():
                            if line.startswith("event: token"):
                                tokens += 1
                                first = first if first is not None else time.monotonic() - t0
                            elif line.startswith("event: error"):
                                ok = False
                    ok = ok and tokens == args.length
            except httpx.HTTPError:
                ok = False
            if not ok:
                out["errors"] += 1
                continue
            out["lat"].append(time.monotonic() - t0)
            out["tokens"] += tokens
            if first is not None:
                out["first"].append(first)


async def _load(base: str, senti: str, textgen: str, args) -> dict:
    results = {k: {"lat": [], "first": [], "tokens": 0, "errors": 0} for k in ("classify", "stream")}
    start = time.monotonic()
    end = start + args.duration
    tasks = [
        _client("classify" if i % 2 == 0 else "stream", base, senti if i % 2 == 0 else textgen, args, end,
                results["classify" if i % 2 == 0 else "stream"])
        for i in range(args.clients)
    ]  # fmt: skip
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - start
    report = {}
    for kind, r in results.items():
        report[kind] = {
            "requests": len(r["lat"]),
            "requests_per_s": len(r["lat"]) / elapsed,
            "p50_ms": 1e3 * _percentile(r["lat"], 0.5),
            "p99_ms": 1e3 * _percentile(r["lat"], 0.99),
            "errors": r["errors"],
        }
        if kind == "stream":
            report[kind]["tokens_per_s"] = r["tokens"] / elapsed
            report[kind]["first_token_p50_ms"] = 1e3 * _percentile(r["first"], 0.5)
            report[kind]["first_token_p99_ms"] = 1e3 * _percentile(r["first"], 0.99)
    report["elapsed_s"] = elapsed
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (half classify, half stream)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    p.add_argument("--length", type=int, default=100, help="tokens per streamed generation")
    p.add_argument("--workers", type=int, default=2, help="the server's --workers")
    p.add_argument("--sentiment", help="a sentiment run (default: a tiny one trained here)")
    p.add_argument("--textgen", help="a textgen run (default: a tiny one trained here)")
    p.add_argument("--json", help="also write the report here")
    args = p.parse_args()
    if args.clients < 2:
        p.error("--clients: expected at least 2 (one of each kind)")
    with tempfile.TemporaryDirectory() as tmp:
        if args.sentiment and args.textgen:
            senti, textgen = Path(args.sentiment), Path(args.textgen)
        else:
            senti, textgen = _tiny_runs(Path(tmp))
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "rnnkit.cli", "serve", str(senti), str(textgen), "--port", str(port),
             "--workers", str(args.workers), "--max-sessions", "8"],
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(base + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.1)
            report = asyncio.run(_load(base, senti.resolve().name, textgen.resolve().name, args))
        finally:
            server.terminate()
            server.wait(timeout=30)
    report["settings"] = {
        "clients": args.clients,
        "duration_s": args.duration,
        "length": args.length,
        "workers": args.workers,
        "cpus": os.cpu_count(),
    }
    for kind in ("classify", "stream"):
        r = report[kind]
        line = (
            f"{kind:9s} {r['requests']:6d} requests  {r['requests_per_s']:8.1f}/s  p50 {r['p50_ms']:8.1f} ms  "
            f"p99 {r['p99_ms']:8.1f} ms  errors {r['errors']}"
        )
        if kind == "stream":
            line += (
                f"  tokens {r['tokens_per_s']:.0f}/s  first token p50 {r['first_token_p50_ms']:.1f} ms"
                f" p99 {r['first_token_p99_ms']:.1f} ms"
            )
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
