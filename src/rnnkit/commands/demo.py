"""``rnnkit demo``: a short, real end-to-end run of the core (until the applications define the main job).

It checks rnnkit's LSTM against ``torch.nn.LSTM`` with copied weights, then trains a layer-norm LSTM, a GRU and
a tanh RNN for a few hundred steps on the adding problem (Hochreiter & Schmidhuber 1997) and prints the
test MSE next to the 0.167 of always answering 1.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import rnnkit

NAME = "demo"
HELP = "run a short end-to-end example of rnnkit's core"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=300, help="training steps per model (default 300)")
    p.add_argument(
        "--length", type=int, default=30, help="sequence length of the adding problem (default 30)"
    )
    p.add_argument("--seed", type=int, default=0)


def adding_batch(batch: int, length: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The adding problem: (B, T, 2) inputs of random values and two markers; target = sum of marked values."""
    values = torch.rand(batch, length, generator=gen)
    marks = torch.zeros(batch, length)
    first = torch.randint(0, length // 2, (batch,), generator=gen)
    second = torch.randint(length // 2, length, (batch,), generator=gen)
    rows = torch.arange(batch)
    marks[rows, first] = 1.0
    marks[rows, second] = 1.0
    return torch.stack([values, marks], dim=-1), (values * marks).sum(1, keepdim=True)


class _Regressor(nn.Module):
    def __init__(self, layer: rnnkit.Recurrent):
        super().__init__()
        self.layer = layer
        self.head = nn.Linear(layer.output_size, 1)

    def forward(self, x):
        _, state = self.layer(x)
        h = state[0] if isinstance(state, tuple) else state
        return self.head(h[-1])


def run(args: argparse.Namespace) -> int:
    if args.steps < 1 or args.length < 4:
        raise rnnkit.RnnkitError(
            f"--steps must be >= 1 and --length >= 4, got {args.steps} and {args.length}"
        )
    torch.manual_seed(args.seed)
    ref = nn.LSTM(2, 32, num_layers=2, batch_first=True)
    ours = rnnkit.from_torch(ref)
    x = torch.randn(4, 20, 2)
    diff = (ours(x)[0] - ref(x)[0]).abs().max().item()
    print(
        f"rnnkit LSTM vs torch.nn.LSTM, copied weights: max |difference| = {diff:.2e} (backend {ours.backend})"
    )

    gen = torch.Generator().manual_seed(args.seed)
    x_test, y_test = adding_batch(1000, args.length, gen)
    models = {
        "LSTM (layer norm)": rnnkit.LSTM(2, 64, layer_norm=True),
        "GRU": rnnkit.GRU(2, 64),
        "RNN (tanh)": rnnkit.RNN(2, 64),
    }
    print(f"\nadding problem, T={args.length}, {args.steps} steps of batch 64; baseline MSE 0.167")
    print(f"{'model':<20}{'backend':<12}{'test MSE':>10}{'time':>9}")
    for name, layer in models.items():
        model = _Regressor(layer)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            xb, yb = adding_batch(64, args.length, gen)
            loss = nn.functional.mse_loss(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        with torch.no_grad():
            mse = nn.functional.mse_loss(model(x_test), y_test).item()
        print(f"{name:<20}{layer.backend:<12}{mse:>10.4f}{time.perf_counter() - t0:>8.1f}s")
    return 0
