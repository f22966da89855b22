"""Load on ``rnnkit serve``: N concurrent clients for a while against classify and streaming generate.

The server runs in its own process (``rnnkit serve``, as a user starts it); the clients are asyncio tasks
in this one (httpx). Half the clients classify a short text again and again; the other half stream a
generation (``--length`` tokens) again and again. Reported per kind: completed requests per second,
p50 / p99 latency (a stream: until its last token, and until its first), tokens per second, and errors
(any non-200 answer, broken stream or ``error`` event).

Without ``--sentiment`` / ``--textgen`` it first trains two tiny runs (seconds) in a temporary folder, so
the numbers then measure the server's overhead more than the models.

``--compare-generation 1,4,16`` measures instead how streamed generation scales with concurrent clients:
two servers of the same textgen run, one with ``--generation per-request`` (each request steps its own
stream) and one with ``--generation batched`` (the concurrent streams advance together, one step for all),
each loaded in turn by N streaming clients for ``--duration`` seconds; it reports the aggregate characters
per second of each and their ratio, measured in the same run.

    .venv/bin/python benchmarks/serve_load.py [--clients 8] [--duration 60] [--sentiment RUN] [--textgen RUN]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/serve_load.py --compare-generation 1,4,16 --duration 8 \
        --hidden-size 256 --length 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def _tiny_runs(root: Path, hidden: int = 64) -> tuple[Path, Path]:
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
        ["train", "textgen", "--data", str(root / "text.txt"), "--name", "chars", "--hidden-size", str(hidden),
         "--max-steps", "5", "--sample-length", "0", "--no-baselines", *quiet],
    ]  # fmt: skip
    for a in argv:
        if main(a) != 0:
            raise SystemExit(f"could not train {a[1]}")
    return runs / "senti", runs / "chars"


_EVENT = re.compile(rb"event: (\w+)\ndata: (.*)\n\n")


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
                    first, tokens, chars, ok, last = None, 0, 0, True, ""
                    async with http.stream("POST", f"/models/{model}/generate/stream", json=body) as r:
                        ok = r.status_code == 200
                        buffer = b""
                        async for chunk in r.aiter_bytes():
                            # whole events only; their texts parsed in one JSON call (a cheap client, so that
                            # the server, not the client, is what is measured)
                            buffer += chunk
                            cut = buffer.rfind(b"\n\n")
                            if cut < 0:
                                continue
                            events, buffer = _EVENT.findall(buffer[: cut + 2]), buffer[cut + 2 :]
                            texts = [d for e, d in events if e == b"token"]
                            if texts:
                                first = first if first is not None else time.monotonic() - t0
                                tokens += len(texts)
                                chars += sum(
                                    len(t["text"]) for t in json.loads(b"[" + b",".join(texts) + b"]")
                                )
                            last = events[-1][0].decode() if events else last
                            ok = ok and all(e != b"error" for e, _ in events)
                    ok = ok and last == "done"  # (tokens without text, such as <pad>, send no event)
            except httpx.HTTPError:
                ok = False
            if not ok:
                out["errors"] += 1
                continue
            out["lat"].append(time.monotonic() - t0)
            out["tokens"] += tokens
            out["chars"] += 0 if kind == "classify" else chars
            if first is not None:
                out["first"].append(first)


async def _load(base: str, senti: str, textgen: str, args) -> dict:
    results = {
        k: {"lat": [], "first": [], "tokens": 0, "chars": 0, "errors": 0} for k in ("classify", "stream")
    }
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


async def _streams(base: str, textgen: str, clients: int, args) -> dict:
    """``clients`` streaming clients for ``args.duration`` seconds: aggregate characters per second etc."""
    r = {"lat": [], "first": [], "tokens": 0, "chars": 0, "errors": 0}
    start = time.monotonic()
    end = start + args.duration
    await asyncio.gather(*[_client("stream", base, textgen, args, end, r) for _ in range(clients)])
    elapsed = time.monotonic() - start
    return {
        "clients": clients,
        "requests": len(r["lat"]),
        "chars_per_s": r["chars"] / elapsed,
        "tokens_per_s": r["tokens"] / elapsed,
        "p50_ms": 1e3 * _percentile(r["lat"], 0.5),
        "first_token_p50_ms": 1e3 * _percentile(r["first"], 0.5),
        "errors": r["errors"],
    }


def _start_server(runs: list[Path], extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "rnnkit.cli", "serve", *map(str, runs), "--port", str(port), *extra],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            raise SystemExit("the server did not start")
        time.sleep(0.1)
    server.terminate()
    raise SystemExit("the server did not answer within a minute")


def _compare_generation(textgen: Path, args) -> dict:
    counts = [int(c) for c in args.compare_generation.split(",")]
    modes = ("per-request", "batched")
    common = ["--workers", str(args.workers), "--max-streams", str(max(counts))]
    servers = {m: _start_server([textgen], [*common, "--generation", m]) for m in modes}
    name = textgen.resolve().name
    rows = []
    try:
        for base in (b for _, b in servers.values()):  # warm up: the first requests build the weights' layout
            asyncio.run(_streams(base, name, 1, argparse.Namespace(**{**vars(args), "duration": 1.0})))
        for n in counts:
            got = {m: asyncio.run(_streams(servers[m][1], name, n, args)) for m in modes}
            rows.append(
                {
                    "clients": n,
                    **got,
                    "ratio": got["batched"]["chars_per_s"] / got["per-request"]["chars_per_s"],
                }
            )
            print(
                f"{n:3d} clients: per-request {got['per-request']['chars_per_s']:9.0f} chars/s "
                f"(errors {got['per-request']['errors']}), batched {got['batched']['chars_per_s']:9.0f} chars/s "
                f"(errors {got['batched']['errors']}), batched / per-request {rows[-1]['ratio']:.2f}",
                flush=True,
            )
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(timeout=30)
    return {"generation": rows, "load_average": os.getloadavg()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (half classify, half stream)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    p.add_argument("--length", type=int, default=100, help="tokens per streamed generation")
    p.add_argument("--workers", type=int, default=2, help="the server's --workers")
    p.add_argument("--sentiment", help="a sentiment run (default: a tiny one trained here)")
    p.add_argument("--textgen", help="a textgen run (default: a tiny one trained here)")
    p.add_argument("--json", help="also write the report here")
    p.add_argument(
        "--compare-generation",
        metavar="N,N,...",
        help="streaming clients only, per-request vs batched generation at each count (e.g. 1,4,16)",
    )
    p.add_argument("--hidden-size", type=int, default=64, help="the tiny textgen run's LSTM width")
    args = p.parse_args()
    if args.compare_generation:
        with tempfile.TemporaryDirectory() as tmp:
            textgen = Path(args.textgen) if args.textgen else _tiny_runs(Path(tmp), args.hidden_size)[1]
            print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
            report = _compare_generation(textgen, args)
        print(f"load average after: {' '.join(f'{x:.2f}' for x in report['load_average'])}")
        report["settings"] = {"duration_s": args.duration, "length": args.length, "cpus": os.cpu_count()}
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))
        return
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
