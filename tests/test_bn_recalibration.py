"""Batch-norm recalibration before validation (``TrainerConfig.bn_recalibration``, "precise BN"), against
:func:`torch.optim.swa_utils.update_bn`."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import update_bn

from rnnkit import RnnkitError
from rnnkit.train import Trainer, TrainerConfig

pytestmark = pytest.mark.usefixtures("one_thread")


class Net(nn.Module):
    """A small CNN classifier with batch norm (dropout in front of the second one when ``p`` > 0)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6)
        self.drop = nn.Dropout(p)
        self.conv2, self.bn2 = nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(self.drop(x))))
        return self.head(x.mean((2, 3)))

    def loss(self, batch, state=None):
        return F.cross_entropy(self(batch["x"]), batch["y"])


def _batches(seed: int, n: int = 6, shift: float = 0.0):
    g = torch.Generator().manual_seed(seed)
    return [
        {"x": torch.randn(8, 1, 6, 6, generator=g) * 3 + shift, "y": torch.randint(0, 3, (8,), generator=g)}
        for _ in range(n)
    ]


def _stats(model):
    return [t.clone() for m in (model.bn1, model.bn2) for t in (m.running_mean, m.running_var)]


def test_recalibration_equals_update_bn_over_the_same_batches_and_changes_nothing_else():
    torch.manual_seed(0)
    model = Net()
    trainer = Trainer(model, TrainerConfig(progress=False))
    data = _batches(1, shift=2.0)
    reference = copy.deepcopy(model)
    update_bn([b["x"] for b in data[:4]], reference)
    params = [p.clone() for p in model.parameters()]
    rng = torch.get_rng_state()
    model.train()
    assert trainer.recalibrate_batch_norm(data, 4) == 4
    for a, b in zip(_stats(model), _stats(reference)):
        torch.testing.assert_close(a, b)
    assert model.bn1.momentum == 0.1 and model.training  # restored
    assert all(torch.equal(p, q) for p, q in zip(params, model.parameters()))
    assert torch.equal(rng, torch.get_rng_state())
    # the exponential average over the same batches is another thing (so the comparison above can fail)
    ema = Net()
    ema.load_state_dict(reference.state_dict())
    ema.bn1.reset_running_stats()
    ema.train()
    with torch.no_grad():
        for b in data[:4]:
            ema(b["x"])
    assert not torch.allclose(ema.bn1.running_mean, model.bn1.running_mean, atol=1e-3)


def test_the_rest_of_the_model_is_in_eval_mode_while_recalibrating():
    torch.manual_seed(0)
    model = Net(p=0.5)
    trainer = Trainer(model, TrainerConfig(progress=False))
    data = _batches(2)
    torch.manual_seed(1)
    trainer.recalibrate_batch_norm(data, 3)
    first = _stats(model)
    torch.manual_seed(2)  # dropout in training mode would draw other masks and other statistics
    trainer.recalibrate_batch_norm(data, 3)
    assert all(torch.equal(a, b) for a, b in zip(first, _stats(model)))
    reference = copy.deepcopy(model).eval()
    for m in (reference.bn1, reference.bn2):
        m.train()
        m.reset_running_stats()
        m.momentum = None
    with torch.no_grad():
        for b in data[:3]:
            reference(b["x"])
    for a, b in zip(_stats(model), _stats(reference)):
        torch.testing.assert_close(a, b)


def test_fit_with_recalibration_trains_identically_and_validates_with_the_recalibrated_statistics():
    data = lambda epoch: _batches(10 + epoch, shift=1.0)  # noqa: E731
    val = _batches(99, n=2, shift=1.0)
    runs = {}
    for k in (0, 3):
        torch.manual_seed(0)
        model = Net()
        trainer = Trainer(model, TrainerConfig(epochs=3, lr=0.05, bn_recalibration=k, progress=False))
        history = trainer.fit(data, val)
        runs[k] = (model, trainer, history)
    plain, recal = runs[0][0], runs[3][0]
    for p, q in zip(plain.parameters(), recal.parameters()):  # nothing trained and no random draw taken
        assert torch.equal(p, q)
    assert [h["train_loss"] for h in runs[0][2]] == [h["train_loss"] for h in runs[3][2]]
    # the last validation ran on statistics averaged over the first 3 batches of the last epoch (epoch index 2)
    reference = copy.deepcopy(recal)
    update_bn([b["x"] for b in data(2)[:3]], reference)
    for a, b in zip(_stats(recal), _stats(reference)):
        torch.testing.assert_close(a, b)
    assert runs[3][2][-1]["val_loss"] == pytest.approx(runs[3][1].evaluate(val)["loss"])
    assert runs[0][2][-1]["val_loss"] != pytest.approx(runs[3][2][-1]["val_loss"])


def test_recalibration_needs_data_it_can_read_again():
    model = Net()
    trainer = Trainer(model, TrainerConfig(epochs=1, bn_recalibration=2, progress=False))
    with pytest.raises(RnnkitError, match="iterated more than once.*generator"):
        trainer.fit(b for b in _batches(3))
    Trainer(Net(), TrainerConfig(epochs=1, bn_recalibration=2, progress=False)).fit(
        _batches(3)
    )  # a list is fine
    model.bn1.running_mean.fill_(0.5)  # not what a reset would give
    before = _stats(model)
    assert trainer.recalibrate_batch_norm([], 3) == 0  # nothing read: the statistics stay
    assert all(torch.equal(a, b) for a, b in zip(before, _stats(model)))
    no_bn = Trainer(nn.Linear(2, 1), TrainerConfig(progress=False), loss_fn=lambda m, b, s: m(b).sum())
    assert no_bn.recalibrate_batch_norm([torch.zeros(1, 2)], 1) == 0
