"""Speed-up of data-parallel training: the same steps in 1 process and in N processes (gloo, CPU).

The model and the steps are textgen's demo: a character LSTM-256 (embedding 64, 80 symbols), 32 contiguous
streams, stateful truncated BPTT with k1 = k2 = 50; each step is one update on a global batch of 32 x 50
characters. In N processes every rank trains 32/N streams and DDP averages the gradients. Every process uses
one thread. A third run, one process on one rank's shard (32/N streams), gives the bound a perfect
N-process run (no communication, no waiting for the slower rank) would reach. The time is that of ``Trainer.fit`` for a fixed number of steps (the slowest rank's), after a
few warm-up steps, so process start-up and imports are left out. The 1-process and N-process runs alternate,
repetition by repetition, so that the machine's noise hits both alike; the ratio of medians is reported.

    .venv/bin/python benchmarks/distributed_speedup.py [--nproc 2] [--steps 40] [--reps 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import time

import torch
import torch.multiprocessing as mp

VOCAB, STREAMS, K1 = 80, 32, 50


def _model():
    from rnnkit.models import EncoderConfig, LanguageModel, LanguageModelConfig

    torch.manual_seed(0)
    return LanguageModel(
        LanguageModelConfig(vocab_size=VOCAB, embedding_dim=64, encoder=EncoderConfig("lstm", 256))
    )


def _batches(steps: int, streams: int = STREAMS) -> list[dict]:
    ids = torch.randint(0, VOCAB, (streams, steps * K1 + 1), generator=torch.Generator().manual_seed(0))
    return [
        {"inputs": ids[:, a : a + K1], "targets": ids[:, a + 1 : a + K1 + 1]}
        for a in range(0, steps * K1, K1)
    ]


def _fit_seconds(steps: int, warmup: int, streams: int = STREAMS) -> float:
    """Warm up, then time ``steps`` steps of fit (a barrier first and last in a distributed run)."""
    import torch.distributed as dist

    from rnnkit.train import Trainer, TrainerConfig

    dist_on = dist.is_initialized()
    cfg = TrainerConfig(epochs=1, lr=5e-3, tbptt_k1=K1, stateful=True, progress=False)
    Trainer(_model(), cfg).fit(_batches(warmup, streams))
    trainer = Trainer(_model(), cfg)
    data = _batches(steps, streams)
    if dist_on:
        dist.barrier()
    t0 = time.perf_counter()
    trainer.fit(data)
    if dist_on:
        dist.barrier()
    return time.perf_counter() - t0


def _worker(rank: int, world: int, port: int, steps: int, warmup: int, out: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        seconds = _fit_seconds(steps, warmup)
        if rank == 0:
            with open(out, "w") as f:
                f.write(str(seconds))
    finally:
        dist.destroy_process_group()


def _one(steps: int, warmup: int, streams: int = STREAMS) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "t")
        _worker_one(steps, warmup, out, streams)
        return float(open(out).read())


def _worker_one(steps: int, warmup: int, out: str, streams: int) -> None:
    """The 1-process side, in a fresh process too (same start conditions as the ranks)."""
    ctx = mp.get_context("spawn")
    p = ctx.Process(target=_single, args=(steps, warmup, out, streams))
    p.start()
    p.join()
    if p.exitcode != 0:
        raise SystemExit(f"the 1-process run failed ({p.exitcode})")


def _single(steps: int, warmup: int, out: str, streams: int) -> None:
    torch.set_num_threads(1)
    with open(out, "w") as f:
        f.write(str(_fit_seconds(steps, warmup, streams)))


def _many(nproc: int, steps: int, warmup: int) -> float:
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        out = os.path.join(tmp, "t")
        mp.spawn(_worker, args=(nproc, port, steps, warmup, out), nprocs=nproc, join=True)
        return float(open(out).read())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    one, many, shard = [], [], []
    load = [os.getloadavg()[0]]
    for _ in range(args.reps):
        one.append(_one(args.steps, args.warmup))
        many.append(_many(args.nproc, args.steps, args.warmup))
        # one process on one rank's shard alone: the N-process time without communication or waiting
        shard.append(_one(args.steps, args.warmup, STREAMS // args.nproc))
        load.append(os.getloadavg()[0])
    tokens = args.steps * STREAMS * K1
    m1, mn = statistics.median(one), statistics.median(many)
    result = {
        "model": "char LSTM-256, embedding 64, 80 symbols; 32 streams, stateful TBPTT k1=k2=50",
        "steps": args.steps,
        "nproc": args.nproc,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "seconds_1": [round(t, 2) for t in one],
        f"seconds_{args.nproc}": [round(t, 2) for t in many],
        "chars_per_s_1": round(tokens / m1),
        f"chars_per_s_{args.nproc}": round(tokens / mn),
        "speedup": round(m1 / mn, 3),
        "seconds_1_on_one_shard": [round(t, 2) for t in shard],
        "speedup_bound": round(m1 / statistics.median(shard), 3),
        "load_average_1min": [round(x, 1) for x in load],
    }
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
