"""The speech run's report: held-out accuracy next to dynamic-time-warping 1-nearest-neighbour, plots, table.

The baseline is the classical template matcher for isolated words: every test utterance takes the label of
the training utterance at the smallest DTW distance (``dtaidistance``'s C implementation, multivariate:
the cost of a frame pair is their squared Euclidean distance and the distance is the square root of the
cheapest warping path's total). Whether it reads the raw or the per-utterance normalised features is chosen
on the validation part, so the baseline gets the better of the two.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit._errors import RnnkitError
from rnnkit.apps import plots
from rnnkit.apps._common import FF_CTC
from rnnkit.apps.base import ResultRow
from rnnkit.apps.metrics import accuracy, confusion_matrix, f1_score
from rnnkit.apps.speech.config import SpeechConfig

__all__ = [
    "GOAL_ACCURACY",
    "TEMPLATES",
    "FEEDFORWARD",
    "baseline",
    "dtw_distances",
    "result_rows",
    "samples",
    "scores",
    "write_plots",
]

GOAL_ACCURACY = 0.97


def scores(labels, pred, num_classes: int) -> dict[str, float]:
    """Accuracy and macro F1."""
    # f1_score gives the positive class's F1 for 2 classes; asking for >= 3 keeps the macro average (a class
    # that is neither present nor predicted adds nothing to it)
    return {"accuracy": accuracy(labels, pred), "f1": f1_score(labels, pred, max(num_classes, 3))}


def dtw_distances(queries: list[np.ndarray], references: list[np.ndarray], window: int = 0) -> np.ndarray:
    """DTW distances (len(queries), len(references)) between multivariate sequences (frames, features).

    ``window`` > 0 restricts the warping path to a Sakoe-Chiba band of that many frames.
    """
    try:
        from dtaidistance import dtw_ndim
    except ImportError:
        raise RnnkitError(
            "the DTW baseline needs dtaidistance: pip install 'rnnkit[apps]' (or set baseline = false)"
        ) from None
    series = [np.ascontiguousarray(s, dtype=np.float64) for s in [*queries, *references]]
    q, r = len(queries), len(references)
    full = dtw_ndim.distance_matrix_fast(
        series, window=window or None, block=((0, q), (q, q + r)), compact=False, parallel=False
    )
    return np.asarray(full[:q, q:])


def baseline(cfg: SpeechConfig, raw, normed, labels, tr, va, te):
    """DTW 1-NN on the same split: ``(test predictions, info dict)``."""
    t0 = time.perf_counter()
    variants = {"raw": raw, "normalised": normed}
    chosen, val_acc = "normalised", {}
    if len(va):
        for name, feats in variants.items():
            d = dtw_distances([feats[i] for i in va], [feats[i] for i in tr], cfg.dtw_window)
            val_acc[name] = accuracy(labels[va], labels[tr][d.argmin(1)])
        chosen = max(val_acc, key=lambda k: (val_acc[k], k == "normalised"))
    feats = variants[chosen]
    d = dtw_distances([feats[i] for i in te], [feats[i] for i in tr], cfg.dtw_window)
    pred = labels[tr][d.argmin(1)]
    info = {
        "name": "DTW 1-nearest-neighbour (dtaidistance)",
        "features": chosen,
        "val_accuracy": val_acc,
        "window": cfg.dtw_window,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return pred, info


def short_name(data: str) -> str:
    return data if data == "fsdd" else Path(data).name


def best_epoch(history: list[dict[str, Any]]) -> int | None:
    """The epoch whose weights were kept: the lowest validation loss (the first on ties)."""
    vals = [(r["val_loss"], r["epoch"]) for r in history if r.get("val_loss") is not None]
    return min(vals)[1] if vals else None


def write_plots(run, cfg: SpeechConfig, history, te_y, pred, base_pred, classes) -> list[Path]:
    k = len(classes)
    matrices = {"rnnkit": confusion_matrix(te_y, pred, k)}
    if base_pred is not None:
        matrices["DTW 1-NN"] = confusion_matrix(te_y, base_pred, k)
    written = [
        plots.plot_curves(
            history,
            run.file("curves.png"),
            "epoch",
            f"speech ({short_name(cfg.data)}): training curves",
            left=["train_loss", "val_loss"],
            right=["train_accuracy", "val_accuracy"],
            right_label="accuracy",
        ),
        plots.plot_confusion(
            matrices, classes, run.file("confusion.png"), f"held-out test set ({len(te_y)})"
        ),
    ]
    return [p for p in written if p is not None]


def samples(te, te_y, proba: np.ndarray, classes, limit: int = 5) -> list[str]:
    """The held-out utterances the model got wrong (or the first few), for people."""
    pred = proba.argmax(1)
    wrong = [j for j in range(len(te)) if pred[j] != te_y[j]]
    picked = (wrong or list(range(len(te))))[:limit]
    return [
        f"#{te[j]:<5} {classes[pred[j]]:>8} ({proba[j].max():.2f})  true {classes[te_y[j]]}" for j in picked
    ]


def feedforward(cfg: SpeechConfig, normed, labels, tr, va, te, frames: int = 32):
    """The feed-forward counterpart on the same split: the same normalised frames, each utterance stretched
    linearly to ``frames`` frames and flattened into one vector, then scikit-learn's MLP (one hidden layer of 256,
    early stopping on a tenth of the training part; its L2 penalty chosen on the validation part). No recurrence:
    it sees the whole utterance at once, at a fixed resolution. Returns ``(test predictions, info dict)``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    from rnnkit.apps.speech.features import stretch_frames

    t0 = time.perf_counter()

    X = np.stack([stretch_frames(np.asarray(s, dtype=np.float64), frames).ravel() for s in normed])
    scale = StandardScaler().fit(X[tr])
    X = scale.transform(X)

    # early stopping holds out a tenth of the training part, stratified: only where every class can spare some
    early = bool(np.bincount(labels[tr], minlength=int(labels.max()) + 1).min() >= 10) if len(tr) else False

    def fit(alpha: float):
        mlp = MLPClassifier(
            hidden_layer_sizes=(256,), alpha=alpha, early_stopping=early, max_iter=300, random_state=cfg.seed
        )
        with warnings.catch_warnings():  # without early stopping, a small set may end at max_iter: fine here
            warnings.simplefilter("ignore", ConvergenceWarning)
            return mlp.fit(X[tr], labels[tr])

    val_acc: dict[str, float] = {}
    alpha = 1e-2
    if len(va):
        fitted = {a: fit(a) for a in (1e-4, 1e-2, 1.0)}
        val_acc = {f"{a:g}": accuracy(labels[va], m.predict(X[va])) for a, m in fitted.items()}
        alpha = max(fitted, key=lambda a: (val_acc[f"{a:g}"], a))  # ties: the stronger penalty
        mlp = fitted[alpha]
    else:
        mlp = fit(alpha)
    info = {
        "name": "MLP on the frames stretched to a fixed length (scikit-learn)",
        "frames": frames,
        "early_stopping": early,
        "alpha": alpha,
        "val_accuracy": val_acc,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return mlp.predict(X[te]), info, FrameMLP.from_sklearn(mlp, scale, frames)


class FrameMLP:
    """The fitted feed-forward counterpart of :func:`feedforward` without scikit-learn: its scaler and layers
    as arrays, the forward pass in NumPy (ReLU hidden layers; the larger output, or for two classes the sign of
    the one logistic output, as scikit-learn decides), saved as safetensors (no pickle).

    ``predict(normed)``: class ids of utterances given as normalised frames (T, F) each.
    """

    def __init__(self, frames: int, mean, scale, weights, biases, classes):
        self.frames, self.mean, self.scale = int(frames), np.asarray(mean), np.asarray(scale)
        self.weights, self.biases = [np.asarray(w) for w in weights], [np.asarray(b) for b in biases]
        self.classes = np.asarray(classes, dtype=np.int64)
        shapes_ok = len(self.weights) == len(self.biases) >= 1 and all(
            w.ndim == 2 and b.shape == (w.shape[1],) for w, b in zip(self.weights, self.biases)
        )
        chained = all(a.shape[1] == b.shape[0] for a, b in zip(self.weights, self.weights[1:]))
        outputs = 1 if len(self.classes) == 2 else len(self.classes)
        if not (
            shapes_ok
            and chained
            and self.weights[0].shape[0] == self.mean.shape[0] == self.scale.shape[0]
            and self.weights[-1].shape[1] == outputs
            and self.frames >= 1
        ):
            raise ValueError("the layers, scaler and classes do not fit together")

    @classmethod
    def from_sklearn(cls, mlp, scaler, frames: int) -> FrameMLP:
        if mlp.activation != "relu":
            raise RnnkitError(f"FrameMLP reads ReLU networks, got {mlp.activation}")
        return cls(frames, scaler.mean_, scaler.scale_, mlp.coefs_, mlp.intercepts_, mlp.classes_)

    def predict(self, normed) -> np.ndarray:
        from rnnkit.apps.speech.features import stretch_frames

        x = np.stack([stretch_frames(np.asarray(s, dtype=np.float64), self.frames).ravel() for s in normed])
        if x.shape[1] != self.mean.shape[0]:
            raise RnnkitError(
                f"the feed-forward counterpart reads {self.mean.shape[0] // self.frames} features a frame, "
                f"got {x.shape[1] // self.frames}"
            )
        h = (x - self.mean) / self.scale
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            h = np.maximum(h @ w + b, 0.0)
        out = h @ self.weights[-1] + self.biases[-1]
        pick = (out[:, 0] > 0).astype(np.int64) if len(self.classes) == 2 else out.argmax(1)
        return self.classes[pick]

    def save(self, path) -> str:
        import json

        import torch

        from rnnkit.files import write_safetensors

        tensors = {"mean": self.mean, "scale": self.scale, "classes": self.classes}
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            tensors[f"weight.{i}"], tensors[f"bias.{i}"] = w, b
        meta = {
            "kind": "FrameMLP",
            "frames": json.dumps(self.frames),
            "layers": json.dumps(len(self.weights)),
        }
        return write_safetensors(
            path, {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}, meta
        )

    @classmethod
    def load(cls, path, sha256: str | None = None) -> FrameMLP:
        import json

        from rnnkit.files import read_safetensors

        t, meta = read_safetensors(path, sha256)
        try:
            if meta.get("kind") != "FrameMLP":
                raise ValueError(f"kind {meta.get('kind')!r}")
            n = int(json.loads(meta["layers"]))
            arrays = {k: v.numpy() for k, v in t.items()}
            return cls(
                int(json.loads(meta["frames"])),
                arrays["mean"],
                arrays["scale"],
                [arrays[f"weight.{i}"] for i in range(n)],
                [arrays[f"bias.{i}"] for i in range(n)],
                arrays["classes"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RnnkitError(f"{path}: not a saved feed-forward counterpart ({exc})") from None


def result_rows(
    cfg: SpeechConfig, model_scores, baselines: dict[str, dict], seconds: float
) -> list[ResultRow]:
    """The accuracy and macro-F1 rows, each judged against the strongest of ``baselines`` ({name: scores}) by
    that metric (and, on FSDD's accuracy, the goal)."""
    task = f"speech ({short_name(cfg.data)}, {cfg.split} split)"
    rows = []
    for key, label in (("accuracy", "accuracy"), ("f1", "macro F1")):
        best = max(baselines, key=lambda n: baselines[n][key]) if baselines else "none"
        base = baselines[best][key] if baselines else float("nan")
        goal = ">= baseline" if baselines else "-"
        met = bool(baselines) and model_scores[key] >= base
        if key == "accuracy" and cfg.data == "fsdd":
            goal = f">= {GOAL_ACCURACY} and >= baseline"
            met = met and model_scores[key] >= GOAL_ACCURACY
        every = {n: sc[key] for n, sc in baselines.items()}
        rows.append(ResultRow(task, label, model_scores[key], best, base, goal, met, seconds, every))
    return rows


# -- connected speech (CTC) --------------------------------------------------------------------------------
GOAL_WER = {"digits-ctc": 0.05, "phrases": 0.15}
"""Word error rate goals on the unseen voices (issue 11)."""


def error_rates(refs: list[str], hyps: list[str]) -> dict[str, float]:
    """Word and character error rates (``jiwer``) and the share of exactly right utterances."""
    import jiwer

    return {
        "wer": float(jiwer.wer(refs, hyps)),
        "cer": float(jiwer.cer(refs, hyps)),
        "exact": float(np.mean([r == h for r, h in zip(refs, hyps)])) if refs else float("nan"),
    }


def voice_group(voice: str) -> str:
    """The accent of an espeak-ng voice (``en-029+m4`` -> ``espeak en-029``) or the flite voice."""
    return voice.replace(":", " ") if voice.startswith("flite:") else "espeak " + voice.split("+")[0]


def voice_table(refs, hyps, voices) -> dict[str, dict[str, float]]:
    """Error rates per voice group (:func:`voice_group`), with the number of utterances."""
    groups: dict[str, list[int]] = {}
    for i, v in enumerate(voices):
        groups.setdefault(voice_group(v), []).append(i)
    return {
        g: {**error_rates([refs[i] for i in idx], [hyps[i] for i in idx]), "count": len(idx)}
        for g, idx in sorted(groups.items())
    }


def ctc_samples(refs, hyps, voices, limit: int = 6) -> list[str]:
    """Unseen-voice utterances the model got wrong (or the first few), for people."""
    wrong = [i for i in range(len(refs)) if refs[i] != hyps[i]]
    picked = (wrong or list(range(len(refs))))[:limit]
    return [f"{voices[i]:<22} heard {hyps[i]!r}  said {refs[i]!r}" for i in picked]


TEMPLATES = "word templates (DTW)"
"""The key of the classical baseline's scores among a connected-speech test part's decoders
(:mod:`rnnkit.apps.speech.templates`)."""
FEEDFORWARD = FF_CTC
"""The key of the feed-forward counterpart's scores, one entry per decoder, in a connected-speech test part."""


def ctc_result_rows(cfg: SpeechConfig, parts: dict[str, dict[str, Any]], seconds: float) -> list[ResultRow]:
    """One row per (test part, decoder) with the WER next to the stronger baseline: the word templates or the
    feed-forward counterpart read by the same decoder (the untrained network where neither ran). Goal: at most
    the baseline's WER where one ran, and on the unseen voices of a built-in task also at most that task's
    :data:`GOAL_WER`."""
    name = cfg.data if not cfg.data.lower().endswith(".csv") else Path(cfg.data).name
    rows = []
    for part, by_decoder in parts.items():
        goal = GOAL_WER.get(cfg.data) if part == "unseen" else None
        templates = {"templates": by_decoder[TEMPLATES]["wer"]} if TEMPLATES in by_decoder else {}
        counterpart = by_decoder.get(FEEDFORWARD, {})
        untrained = {"untrained": by_decoder["untrained"]["wer"]} if "untrained" in by_decoder else {}
        for decoder, s in by_decoder.items():
            if not isinstance(s, dict) or "wer" not in s or decoder in ("untrained", TEMPLATES):
                continue
            strong = templates | (
                {"feed-forward": counterpart[decoder]["wer"]} if decoder in counterpart else {}
            )
            has_base = bool(strong)
            shown = strong or untrained  # the untrained network stands in where no baseline ran
            base = min(shown, key=shown.get) if shown else "none"
            base_wer = shown[base] if shown else float("nan")
            goals = ([f"<= {goal}"] if goal is not None else []) + (["<= baseline"] if has_base else [])
            met = (goal is None or s["wer"] <= goal) and (not has_base or s["wer"] <= base_wer)
            rows.append(
                ResultRow(
                    f"speech ({name}, {part} voices, {decoder})"
                    if part == "unseen"
                    else f"speech ({name}, {part}, {decoder})",
                    "WER",
                    s["wer"],
                    base,
                    base_wer,
                    " and ".join(goals) or "-",
                    bool(goals) and met,
                    seconds,
                    untrained | strong,
                )
            )
    return rows


def write_ctc_plots(run, cfg: SpeechConfig, history) -> list[Path]:
    """Training curves of a connected-speech run (CTC loss; validation character errors)."""
    for r in history:
        if r.get("val_edit_distance") is not None and r.get("val_chars"):
            r.setdefault("val_cer", r["val_edit_distance"] / r["val_chars"])
    p = plots.plot_curves(
        history,
        run.file("curves.png"),
        "epoch",
        f"speech ({short_name(cfg.data)}): training curves",
        left=["train_loss", "val_loss"],
        right=["val_cer"],
        right_label="CER (greedy)",
    )
    return [p] if p is not None else []
