"""The captioning run's report: BLEU-4 and chrF (sacrebleu), exact match, the baselines, plots, the table.

Baselines on the same split: the caption of the nearest training image by raw pixels (Euclidean distance
between the images scaled to the model's size) and by the trained CNN's features (cosine similarity of the
mean-pooled feature grid), and the untrained model (the same network before training).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit._errors import RnnkitError
from rnnkit.apps import plots
from rnnkit.apps._common import FF_SEQ2SEQ
from rnnkit.apps.base import ResultRow
from rnnkit.apps.caption.data import as_tensor
from rnnkit.files import write_figure

__all__ = ["nearest_neighbour", "result_rows", "samples", "scores", "write_plots"]


def scores(hypotheses: list[str], references: list[list[str]]) -> dict[str, float]:
    """Corpus BLEU-4 and chrF from sacrebleu against every image's references (13a tokenisation, chrF
    n=6, beta=2) and the share of captions equal to one of their references, all in percent."""
    try:
        import sacrebleu
    except ImportError:
        raise RnnkitError("caption scores need sacrebleu: pip install 'rnnkit[apps]'") from None
    n = max((len(r) for r in references), default=1)
    streams = [[r[k] if k < len(r) else None for r in references] for k in range(n)]
    exact = sum(h.strip() in {x.strip() for x in r} for h, r in zip(hypotheses, references))
    return {
        "bleu": round(sacrebleu.corpus_bleu(hypotheses, streams).score, 2),
        "chrf": round(sacrebleu.corpus_chrf(hypotheses, streams).score, 2),
        "exact_match": round(100.0 * exact / max(1, len(references)), 2),
    }


def _pixel_vectors(images: np.ndarray) -> torch.Tensor:
    return as_tensor(images).flatten(1)  # (N, 3*H*W)


@torch.no_grad()
def _cnn_vectors(model, images: np.ndarray, batch: int = 256) -> torch.Tensor:
    model.eval()
    out = [model.features(as_tensor(images[a : a + batch])).mean(1) for a in range(0, len(images), batch)]
    v = torch.cat(out)  # (N, C)
    return v / v.norm(dim=1, keepdim=True).clamp(min=1e-8)


def nearest_neighbour(
    train_images: np.ndarray, train_refs: list[list[str]], test_images: np.ndarray, model=None
) -> list[str]:
    """The first caption of each test image's nearest training image: by raw pixels (Euclidean) when
    ``model`` is None, else by the cosine of the model's mean-pooled CNN features."""
    if model is None:
        a, b = _pixel_vectors(train_images), _pixel_vectors(test_images)
        nearest = torch.cat([torch.cdist(b[s : s + 256], a).argmin(1) for s in range(0, len(b), 256)])
    else:
        a, b = _cnn_vectors(model, train_images), _cnn_vectors(model, test_images)
        nearest = (b @ a.T).argmax(1)
    return [train_refs[i][0] for i in nearest.tolist()]


def samples(refs: list[list[str]], outputs: dict[str, list[str]], k: int = 6) -> list[str]:
    """A few test images' references and each system's caption, for people."""
    out = []
    width = max(len("reference:"), *(len(name) + 1 for name in outputs)) + 1  # names and captions apart
    for j in range(min(k, len(refs))):
        out.append(f"{'reference:':<{width}}{' | '.join(refs[j])}")
        for name, hyps in outputs.items():
            out.append(f"{name + ':':<{width}}{hyps[j]}")
        out.append("")
    return out


@plots._guard
def plot_captions(plt, items: list[tuple[np.ndarray, list[str], Any, str]], path: Path, title: str) -> Path:
    """Per item a row: the image with its generated caption and reference, then one attention overlay a word."""
    from PIL import Image

    cols = 1 + max((len(words) for _, words, _, _ in items), default=0)
    cols = min(cols, 9)
    h, w = items[0][0].shape[:2]
    cell = 1.6 * max(1.0, w / h)
    fig, axes = plt.subplots(len(items), cols, figsize=(cell * cols, 1.9 * len(items)), squeeze=False)
    for row, (img, words, att, ref) in zip(axes, items):
        for ax in row:
            ax.axis("off")
        row[0].imshow(img)
        row[0].set_title(" ".join(words)[:40] + f"\n(ref: {ref[:34]})", fontsize=6)
        for k, word in enumerate(words[: cols - 1]):
            up = Image.fromarray((att[k] / max(float(att[k].max()), 1e-8) * 255).astype(np.uint8))
            up = np.asarray(up.resize((w, h), Image.BILINEAR), np.float32) / 255.0
            row[k + 1].imshow(img)
            row[k + 1].imshow(up, cmap="inferno", alpha=0.6, vmin=0, vmax=1)
            row[k + 1].set_title(word, fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return write_figure(fig, path)


def write_plots(run, data_name: str, history, caption_items) -> list[Path]:
    written = [
        plots.plot_curves(
            history,
            run.file("curves.png"),
            "epoch",
            f"caption ({data_name}): training curves",
            left=["train_loss", "val_loss"],
            right=["train_accuracy", "val_accuracy"],
            right_label="word accuracy",
        )
    ]
    if caption_items:
        written.append(
            plot_captions(
                caption_items,
                run.file("captions.png"),
                f"caption ({data_name}): test images, greedy captions and attention per word",
            )
        )
    return [p for p in written if p is not None]


FEEDFORWARD = FF_SEQ2SEQ


def result_rows(
    data_name: str, split: str, model_scores: dict, base: dict, seconds: float
) -> list[ResultRow]:
    """BLEU-4, chrF and exact match of beam search next to the strongest baseline on each."""
    task = f"caption ({data_name}, {split} split)"
    rows = []
    for key, label in (("bleu", "BLEU-4"), ("chrf", "chrF"), ("exact_match", "exact match %")):
        named = {b["name"]: b[key] for b in base.values()}
        best = max(named, key=lambda k: named[k])
        value = model_scores["beam"][key]
        rows.append(
            ResultRow(
                task,
                f"{label} (beam)",
                value,
                best,
                named[best],
                ">= baseline",
                value >= named[best],
                seconds,
                named,
            )
        )
    return rows
