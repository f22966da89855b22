"""``--tensorboard``: the trainer's event files, read back with TensorBoard's own reader, hold the CSV's numbers."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from rnnkit._errors import RnnkitError
from rnnkit.models import ClassifierConfig, EncoderConfig, SequenceClassifier
from rnnkit.train import Trainer, TrainerConfig

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _batches(n: int, seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        x = torch.randint(0, 12, (6, 7), generator=g)
        out.append({"inputs": x, "targets": (x[:, 0] > 5).long(), "lengths": torch.full((6,), 7)})
    return out


def _read(run_dir):
    acc = event_accumulator.EventAccumulator(
        str(run_dir / "tensorboard"),
        size_guidance={event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0},
    )
    acc.Reload()
    return acc


def test_event_files_hold_the_csv_values_and_the_heat_map(tmp_path):
    torch.manual_seed(0)
    model = SequenceClassifier(
        ClassifierConfig(num_classes=2, vocab_size=12, embedding_dim=6, encoder=EncoderConfig("gru", 8))
    )
    # an lr schedule, so that the learning-rate column changes from row to row
    cfg = TrainerConfig(
        epochs=3,
        lr=0.01,
        progress=False,
        tensorboard=True,
        grad_monitor_every=2,
        validate_every=2,
        scheduler="steplr",
        scheduler_options={"step_size": 1, "gamma": 0.5},
    )
    Trainer(model, cfg, out_dir=tmp_path).fit(_batches(3, 1), _batches(2, 2))
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert len(rows) >= 4
    acc = _read(tmp_path)
    tags = acc.Tags()
    columns = [k for k in rows[0] if k not in ("epoch", "step")]
    assert {"train_loss", "val_loss", "val_accuracy", "lr", "grad_norm", "skipped"} <= set(columns)
    for col in columns:
        events = acc.Scalars(col)
        assert [e.step for e in events] == [int(r["step"]) for r in rows], col
        for e, r in zip(events, rows):
            assert math.isclose(e.value, float(r[col]), rel_tol=1e-6, abs_tol=1e-7), (col, e.value, r[col])
    assert len({r["lr"] for r in rows}) > 1
    # the loss of every step, and the gradient-flow heat map at each validation
    assert [e.step for e in acc.Scalars("step/train_loss")] == list(range(1, 10))
    images = acc.Images("grad_flow/heatmap")
    assert "grad_flow/heatmap" in tags["images"] and len(images) == len(rows)
    assert images[-1].width > 100 and images[-1].height > 100


def test_a_resumed_run_continues_the_event_files(tmp_path):
    """Stopped after step 4, resumed from the checkpoint of step 2: the events of steps 3 and 4 that the first
    run wrote are dropped for the resumed run's (one value per step)."""
    torch.manual_seed(0)
    make = lambda: SequenceClassifier(  # noqa: E731
        ClassifierConfig(num_classes=2, vocab_size=12, embedding_dim=6, encoder=EncoderConfig("gru", 8))
    )
    cfg = TrainerConfig(
        epochs=2, lr=0.01, progress=False, tensorboard=True, checkpoint_every=1, keep_checkpoints=10
    )
    Trainer(make(), cfg, out_dir=tmp_path, stop_when=lambda t: t.state.step >= 4).fit(_batches(3, 1))
    (at_2,) = (tmp_path / "checkpoints").glob("ckpt-*-step-00000002")
    before = {e.step: e.value for e in _read(tmp_path).Scalars("step/train_loss")}
    assert sorted(before) == [1, 2, 3, 4]
    Trainer(make(), cfg, out_dir=tmp_path).fit(_batches(3, 1), resume=at_2)
    after = [(e.step, e.value) for e in _read(tmp_path).Scalars("step/train_loss")]
    assert [s for s, _ in after] == list(range(1, 7))
    # the resume is exact, so the replayed steps 3 and 4 have the first run's losses
    assert [v for s, v in after if s <= 4] == [before[s] for s in (1, 2, 3, 4)]


def test_missing_tensorboard_package_is_one_clear_error(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_tensorboard(name, *a, **k):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(RnnkitError, match="--tensorboard needs the 'tensorboard' package"):
        TrainerConfig(tensorboard=True).check()
