"""Connected speech: what the recurrence buys. A feed-forward CTC model (a time-delay network: the app's conv
front end, then 1-D convolutions over the subsampled steps, no recurrence) trained on the split, features,
augmentation, optimiser and decoders of ``rnnkit train speech --data digits-ctc`` (or ``phrases``), scored on the
same seen- and unseen-voice test parts.

Waibel et al. (1989) introduced the time-delay network for speech; with CTC it is the feed-forward counterpart of
the app's conv + BiGRU + CTC model. Each step sees a window of about half a second (``--layers`` convolutions of
width 5 over 30-ms steps, plus the front end), where the BiGRU sees the whole utterance. The networks' numbers to
set beside it are in docs/speech.md.

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/speech_feedforward.py digits-ctc --time-budget 600
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
from torch import nn

from rnnkit._machine import machine_line


class TDNNCTC(nn.Module):
    """Log-mels (B, T, 40) -> per-step log-probabilities (B, T', num_labels + 1): the front end of
    :class:`rnnkit.apps.speech.model.SpeechCTC` (conv width 5, then width and stride 3), then ``layers``
    convolutions of width 5 over the steps (ReLU, dropout), then a linear layer."""

    def __init__(
        self, num_labels: int, channels: int = 128, hidden: int = 256, layers: int = 4, dropout: float = 0.2
    ):
        super().__init__()
        self.conv1 = nn.Conv1d(40, channels, 5)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=3)
        body, width = [], channels
        for _ in range(layers):
            body += [nn.Conv1d(width, hidden, 5, padding=2), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        self.body = nn.Sequential(*body)
        self.head = nn.Linear(width, num_labels + 1)

    @staticmethod
    def steps(frames: torch.Tensor) -> torch.Tensor:
        return ((frames - 7).clamp(min=-3) // 3 + 1).clamp(min=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv2(torch.relu(self.conv1(x.transpose(1, 2)))))
        return torch.log_softmax(self.head(self.body(h).transpose(1, 2)), -1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", choices=("digits-ctc", "phrases"))
    ap.add_argument("--time-budget", type=float, default=600.0, help="seconds of training at most")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from rnnkit.apps.speech.config import SpeechConfig
    from rnnkit.apps.speech.data import LETTERS, collate_ctc, encode_texts, spec_augment
    from rnnkit.apps.speech.model import transcribe, word_models
    from rnnkit.apps.speech.report import error_rates
    from rnnkit.apps.speech.synth import load_corpus

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    cfg = SpeechConfig(data=args.data)  # the app's augmentation, batch, rate, patience and decoder settings
    print(machine_line())
    corpus = load_corpus(args.data, cfg.train_size, cfg.split_seed, say=lambda *_: None)
    tr, va = corpus.indices("train"), corpus.indices("val")
    tests = {p: corpus.indices(p) for p in ("test", "unseen")}
    stacked = np.concatenate([corpus.features[i] for i in tr])
    mean, std = stacked.mean(0), stacked.std(0) + 1e-5
    feats = [(f - mean) / std for f in corpus.features]
    targets = encode_texts(corpus.texts, LETTERS)
    model = TDNNCTC(len(LETTERS), hidden=args.hidden, layers=args.layers)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)

    def loss_of(batch) -> torch.Tensor:
        lp = model(batch["inputs"])  # (B, T', C)
        steps = TDNNCTC.steps(batch["lengths"]).clamp(max=lp.shape[1])
        return ctc(lp.transpose(0, 1), batch["targets"], steps, batch["target_lengths"])

    val = [
        collate_ctc([feats[i] for i in va[s : s + 64]], [targets[i] for i in va[s : s + 64]])
        for s in range(0, len(va), 64)
    ]
    g = torch.Generator().manual_seed(args.seed)
    best, best_state, bad, epoch, t0 = float("inf"), None, 0, 0, time.perf_counter()
    while time.perf_counter() - t0 < args.time_budget and bad < cfg.early_stopping and epoch < cfg.epochs:
        epoch += 1
        model.train()
        order = tr[torch.randperm(len(tr), generator=g).numpy()]
        for s in range(0, len(order), cfg.batch_size):
            idx = order[s : s + cfg.batch_size]
            batch = collate_ctc([feats[i] for i in idx], [targets[i] for i in idx])
            batch["inputs"] = spec_augment(batch["inputs"], batch["lengths"], cfg, g)
            loss = loss_of(batch)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            if time.perf_counter() - t0 > args.time_budget:
                break
        model.eval()
        with torch.no_grad():
            v = sum(float(loss_of(b)) * len(b["lengths"]) for b in val) / len(va)
        if v < best:
            best, best_state, bad = v, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
        print(f"epoch {epoch}: validation CTC loss {v:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    model.load_state_dict(best_state)
    model.eval()
    lexicon, lm = word_models([corpus.texts[i] for i in tr], LETTERS, cfg.lm_order)
    print(f"{args.data}: TDNN + CTC, {params:,} parameters, {epoch} epochs, best validation loss {best:.4f}")
    for part, ix in tests.items():
        with torch.no_grad():
            lps = []
            for i in ix:
                lp = model(torch.from_numpy(feats[i]).float()[None])[0]
                lps.append(lp[: int(TDNNCTC.steps(torch.tensor(len(feats[i]))))])
        refs = [corpus.texts[i] for i in ix]
        greedy = error_rates(refs, transcribe(lps, LETTERS, 1))
        fused = error_rates(refs, transcribe(lps, LETTERS, cfg.lexicon_beam, lexicon, lm, cfg))
        print(
            f"  {part:<7} WER greedy {greedy['wer']:.4f}  beam {cfg.lexicon_beam} + lexicon + LM {fused['wer']:.4f}"
        )


if __name__ == "__main__":
    main()
