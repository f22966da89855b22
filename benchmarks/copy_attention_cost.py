"""Copy attention's cost: training updates of a Seq2Seq with and without ``copy_attention``.

Times ``--updates`` optimiser updates (forward, backward, Adam) of translate's default encoder-decoder
(BiGRU 256 + GRU 512, Bahdanau attention, 4,000 target subwords) on random batches, plain and with copy
attention, in alternating rounds (so a shared machine's load hits both alike), and prints the time per
update and the ratio copy / plain. The mixture itself is also timed on its own against the dense formula
(softmax, a full-vocabulary scatter, the mixing and a log; the form it had until 2026-12-04), forward and
backward. Timings belong here, not in the tests.

    PYTHONPATH=src .venv/bin/python benchmarks/copy_attention_cost.py [--vocab 4000] [--updates 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from rnnkit._machine import machine_line


def dense_mixture(logits, keep, weights, tgt):
    """The copy mixture as the class docstring writes it, over the whole vocabulary (the reference form)."""
    w = weights * (tgt >= 0)
    copied = torch.zeros_like(logits).scatter_add(1, tgt.clamp(min=0), w)
    p = (1 - (1 - keep) * w.sum(-1, keepdim=True)) * logits.softmax(-1) + (1 - keep) * copied
    return p.clamp(min=torch.finfo(p.dtype).tiny).log()


def main() -> None:
    from rnnkit.models import EncoderConfig, Seq2Seq, Seq2SeqConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab", type=int, default=4000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--length", type=int, default=40, help="source and target tokens per sentence")
    p.add_argument("--updates", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(machine_line())
    torch.manual_seed(0)
    V, B, T = a.vocab, a.batch, a.length
    src = torch.randint(4, V, (B, T))
    tgt_in = torch.randint(4, V, (B, T))
    tgt = torch.randint(4, V, (B, T))
    models = {}
    for copy in (False, True):
        cfg = Seq2SeqConfig(
            src_vocab_size=V,
            tgt_vocab_size=V,
            embedding_dim=128,
            encoder=EncoderConfig("gru", 256, bidirectional=True),
            decoder=EncoderConfig("gru", 512),
            attention="bahdanau",
            copy_attention=copy,
        )
        m = Seq2Seq(cfg)
        models["copy" if copy else "plain"] = (m, torch.optim.Adam(m.parameters(), 1e-3))

    def update(m, opt):
        logits, _ = m(src, tgt_in)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), tgt.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()

    times = {k: [] for k in models}
    for _ in range(a.rounds):
        for k, (m, opt) in models.items():
            update(m, opt)  # warm-up
            t0 = time.perf_counter()
            for _ in range(a.updates):
                update(m, opt)
            times[k].append((time.perf_counter() - t0) / a.updates)
    plain, copy = min(times["plain"]), min(times["copy"])
    print(
        f"training update, {B} x {T} tokens, {V} subwords: plain {plain * 1e3:.1f} ms, copy attention "
        f"{copy * 1e3:.1f} ms, ratio {copy / plain:.3f}"
    )

    # the mixture alone: one decoder step's worth (B rows), forward and backward
    m = models["copy"][0]
    logits = torch.randn(B, V, requires_grad=True)
    out, ctx = torch.randn(B, 512), torch.randn(B, 512)
    weights = torch.softmax(torch.randn(B, T), -1).requires_grad_()
    st = m._copy_state(src)  # made once per source in encode
    grad = torch.randn(B, V)

    def log_space():
        return m._copy(logits, out, ctx, weights, st)

    def dense():
        keep = torch.sigmoid(m.copy_gate(torch.cat([out, ctx], -1)))
        return dense_mixture(logits, keep, weights, st["copy_ids"])

    assert torch.allclose(log_space(), dense(), atol=1e-4), "the two forms of the mixture disagree"
    mix = {"log space (rnnkit)": log_space, "dense reference": dense}
    mt = {k: [] for k in mix}
    for _ in range(a.rounds):
        for k, f in mix.items():
            t0 = time.perf_counter()
            for _ in range(50):
                (f() * grad).sum().backward()
            mt[k].append((time.perf_counter() - t0) / 50)
    ls, dn = min(mt["log space (rnnkit)"]), min(mt["dense reference"])
    print(
        f"the mixture, {B} rows, forward + backward: log space {ls * 1e3:.2f} ms, dense {dn * 1e3:.2f} ms, "
        f"ratio {ls / dn:.3f}"
    )


if __name__ == "__main__":
    main()
