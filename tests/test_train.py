"""rnnkit.train: BPTT variants against hand-written loops, exploding-step handling, resume, monitor, checkpoints."""

from __future__ import annotations

import copy
import io
import json
import logging

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from rnnkit import RnnkitError
from rnnkit.experiments.memory import adding_batch
from rnnkit.layers import detach_state
from rnnkit.models import (
    ClassifierConfig,
    EncoderConfig,
    LanguageModel,
    LanguageModelConfig,
    LossOutput,
    RegressorConfig,
    SequenceClassifier,
    SequenceRegressor,
)
from rnnkit.train import Reporter, Trainer, TrainerConfig, measure_gradient_flow, read_checkpoint
from rnnkit.train import checkpoint as ckpt_mod


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


QUIET = dict(progress=False)


def _lm(seed=0, dropout=0.0, cell="lstm", vocab=11):
    torch.manual_seed(seed)
    cfg = LanguageModelConfig(
        vocab_size=vocab, embedding_dim=8, encoder=EncoderConfig(cell, 16), dropout=dropout
    )
    return LanguageModel(cfg)


def _lm_batch(B, T, seed, vocab=11, ragged=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, vocab, (B, T + 1), generator=g)
    b = {"inputs": x[:, :-1], "targets": x[:, 1:]}
    if ragged:
        lengths = torch.randint(1, T + 1, (B,), generator=g)
        lengths[0] = T
        b["lengths"] = lengths
    return b


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same(a, b, exact=True):
    assert a.keys() == b.keys()
    for k in a:
        if exact:
            assert torch.equal(a[k], b[k]), k
        else:
            torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5, msg=k)


def _ce(logits, targets, mask):
    return F.cross_entropy(logits[mask], targets[mask], reduction="sum"), int(mask.sum())


def _mask(lengths, B, T):
    return torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)


# -- BPTT ----------------------------------------------------------------------------------------------------------
def test_tbptt_with_k1_k2_equal_T_gives_full_bptt_gradients():
    batch = _lm_batch(4, 12, seed=1)
    cfg = dict(optimizer="sgd", lr=0.5, clip_norm=None, **QUIET)
    full = _lm()
    Trainer(full, TrainerConfig(**cfg)).train_batch(batch)
    trunc = _lm()
    Trainer(trunc, TrainerConfig(tbptt_k1=12, tbptt_k2=12, **cfg)).train_batch(batch)
    hand = _lm()
    logits, _ = hand(batch["inputs"], lengths=batch["lengths"])
    s, n = _ce(logits, batch["targets"], _mask(batch["lengths"], 4, 12))
    (s / n).backward()
    with torch.no_grad():
        for p in hand.parameters():
            p -= 0.5 * p.grad
    _assert_same(_weights(trunc), _weights(full))
    _assert_same(_weights(trunc), _weights(hand), exact=False)
    assert not torch.equal(
        _weights(hand)["encoder.cells.0.weight_hh"], _weights(_lm())["encoder.cells.0.weight_hh"]
    )


def _hand_chunked(model, batches, k, lr, stateful):
    """Chunked truncated BPTT written out by hand: forward k steps, backprop, update, detach, carry."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    state = None
    for batch in batches:
        if not stateful:
            state = None  # sequence boundary: every batch holds new sequences
        T = batch["inputs"].shape[1]
        for a in range(0, T, k):
            e = min(a + k, T)
            lengths = (batch["lengths"] - a).clamp(0, e - a)
            logits, state = model(batch["inputs"][:, a:e], state, lengths)
            s, n = _ce(logits, batch["targets"][:, a:e], _mask(lengths, logits.shape[0], e - a))
            if n:
                opt.zero_grad()
                (s / n).backward()
                opt.step()
            state = detach_state(state)


@pytest.mark.parametrize("stateful", [False, True])
def test_chunked_training_equals_a_hand_written_detach_loop(stateful):
    batches = [_lm_batch(5, 23, seed=s) for s in (2, 3)]  # 23 = 4 chunks of 5 and one of 3; ragged lengths
    if stateful:
        for b in batches:
            del b["lengths"]
            b["lengths"] = torch.full((5,), 23)
    ours = _lm(cell="gru")
    t = Trainer(
        ours, TrainerConfig(optimizer="sgd", lr=0.3, clip_norm=None, tbptt_k1=5, stateful=stateful, **QUIET)
    )
    for b in batches:
        t.train_batch(b)
    assert t.state.updates == 10
    hand = _lm(cell="gru")
    _hand_chunked(hand, batches, 5, 0.3, stateful)
    _assert_same(_weights(ours), _weights(hand), exact=False)
    other = _lm(cell="gru")
    _hand_chunked(other, batches, 5, 0.3, not stateful)  # carrying (or not) across batches matters
    with pytest.raises(AssertionError):
        _assert_same(_weights(ours), _weights(other), exact=False)


def test_tbptt_k2_greater_than_k1_matches_a_step_by_step_reference():
    k1, k2, T = 3, 7, 14
    batch = _lm_batch(3, T, seed=4, ragged=False)
    ours = _lm()
    Trainer(
        ours, TrainerConfig(optimizer="sgd", lr=0.3, clip_norm=None, tbptt_k1=k1, tbptt_k2=k2, **QUIET)
    ).train_batch(batch)
    # reference: one step at a time; window i recomputes from the detached state stored at its start
    ref = _lm()
    opt = torch.optim.SGD(ref.parameters(), lr=0.3)
    ups = list(range(k1, T, k1)) + [T]
    stored = {0: None}
    for i, u in enumerate(ups):
        first = ups[i - 1] if i else 0
        s = max(0, first - (k2 - k1))
        state = stored[s]
        loss_sum, n = 0.0, 0
        for t in range(s, u):
            logits, state = ref(batch["inputs"][:, t : t + 1], state)
            stored[t + 1] = detach_state(state)
            if t >= first:
                loss_sum = loss_sum + F.cross_entropy(logits[:, 0], batch["targets"][:, t], reduction="sum")
                n += logits.shape[0]
        opt.zero_grad()
        (loss_sum / n).backward()
        opt.step()
    _assert_same(_weights(ours), _weights(ref), exact=False)
    # and it is not the same as plain chunking with k1
    plain = _lm()
    Trainer(plain, TrainerConfig(optimizer="sgd", lr=0.3, clip_norm=None, tbptt_k1=k1, **QUIET)).train_batch(
        batch
    )
    with pytest.raises(AssertionError):
        _assert_same(_weights(ours), _weights(plain), exact=False)


def _peak_saved_bytes(fn):
    """The largest amount of tensor memory autograd holds for backward at any moment while ``fn`` runs."""
    live, peak = [0], [0]

    class Held:
        def __init__(self, t):
            self.t = t
            self.n = t.numel() * t.element_size()
            live[0] += self.n
            peak[0] = max(peak[0], live[0])

        def __del__(self):
            live[0] -= self.n

    with torch.autograd.graph.saved_tensors_hooks(Held, lambda h: h.t):
        fn()
    return peak[0]


def test_truncated_bptt_memory_does_not_grow_with_sequence_length():
    peaks = {}
    for T in (40, 160):
        for k in (0, 10):
            model = _lm()
            t = Trainer(model, TrainerConfig(tbptt_k1=k, **QUIET))
            batch = _lm_batch(4, T, seed=5, ragged=False)
            peaks[T, k] = _peak_saved_bytes(lambda t=t, batch=batch: t.train_batch(batch))
    assert peaks[160, 10] <= peaks[40, 10] * 1.05  # truncated: flat in T
    assert peaks[160, 0] >= peaks[40, 0] * 3  # full BPTT: grows with T (so the measurement can see growth)


# -- exploding steps -----------------------------------------------------------------------------------------------
def _classifier(seed=0):
    torch.manual_seed(seed)
    return SequenceClassifier(ClassifierConfig(num_classes=3, input_size=4, encoder=EncoderConfig("gru", 8)))


def _clf_batches(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        {"inputs": torch.randn(6, 5, 4, generator=g), "targets": torch.randint(0, 3, (6,), generator=g)}
        for _ in range(n)
    ]


@pytest.mark.parametrize("where", ["loss", "gradient"])
def test_a_non_finite_step_is_skipped_and_training_goes_on(where, caplog):
    batches = _clf_batches(5)
    calls = [0]

    def poisoned(model, batch, state):
        calls[0] += 1
        out = model.loss(batch)
        if calls[0] == 3:
            w = model.head[0].weight
            if where == "loss":
                return LossOutput(out.loss * float("nan"), out.count)
            # a finite loss whose gradient is inf * 0 = nan: d sqrt(x)/dx at x = 0
            return LossOutput(out.loss + torch.sqrt(0.0 * w.sum()), out.count)
        return out

    model = _classifier()
    t = Trainer(model, TrainerConfig(epochs=1, **QUIET), loss_fn=poisoned)
    with caplog.at_level(logging.WARNING, logger="rnnkit.train"):
        hist = t.fit(batches)
    assert t.state.skipped == 1 and hist[-1]["skipped"] == 1
    assert any("step 3 skipped" in r.message and f"non-finite {where}" in r.message for r in caplog.records)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # a skipped step changes nothing: the result equals training on the other four batches
    clean = _classifier()
    Trainer(clean, TrainerConfig(epochs=1, **QUIET)).fit(batches[:2] + batches[3:])
    _assert_same(_weights(model), _weights(clean))


def test_a_non_finite_window_of_truncated_bptt_is_skipped_and_the_state_still_carries():
    batch = _lm_batch(3, 20, seed=6, ragged=False)
    calls = [0]

    def poisoned(model, b, state):
        calls[0] += 1
        out = model.loss(b, state)
        if calls[0] == 2:  # the second window (steps 5..10) of the first batch
            out.loss = out.loss * float("nan")
        return out

    model = _lm()
    t = Trainer(
        model,
        TrainerConfig(epochs=1, optimizer="sgd", lr=0.3, clip_norm=None, tbptt_k1=5, **QUIET),
        loss_fn=poisoned,
    )
    hist = t.fit([batch])
    assert (t.state.updates, t.state.skipped) == (4, 1)
    assert torch.isfinite(torch.tensor(hist[0]["train_loss"]))
    # equals the hand-written loop that skips the update of that window but keeps running forward
    ref = _lm()
    opt = torch.optim.SGD(ref.parameters(), lr=0.3)
    state = None
    for i, a in enumerate(range(0, 20, 5)):
        logits, state = ref(batch["inputs"][:, a : a + 5], state)
        if i != 1:
            opt.zero_grad()
            F.cross_entropy(logits.reshape(-1, 11), batch["targets"][:, a : a + 5].reshape(-1)).backward()
            opt.step()
        state = detach_state(state)
    _assert_same(_weights(model), _weights(ref), exact=False)


def test_lr_backoff_and_giving_up_after_many_skips():
    model = _classifier()
    t = Trainer(
        model,
        TrainerConfig(
            epochs=1,
            lr=0.01,
            lr_backoff=0.5,
            max_skips=3,
            scheduler="steplr",
            scheduler_options={"step_size": 100},
            **QUIET,
        ),
        loss_fn=lambda m, b, s: m.loss(b).loss * float("inf"),
    )
    with pytest.raises(RnnkitError, match="training diverged: 4 consecutive"):
        t.fit(_clf_batches(6))
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.5**4)
    assert t.scheduler.base_lrs[0] == pytest.approx(0.01 * 0.5**4)


def test_gradient_clipping_by_norm_and_by_value():
    batch = _clf_batches(1)[0]
    for kw, check in (
        (dict(clip_norm=1e-3), lambda d: d.norm() <= 1e-3 * 1.0001),
        (dict(clip_norm=None, clip_value=1e-4), lambda d: d.abs().max() <= 1e-4 * 1.0001),
    ):
        model = _classifier()
        before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        Trainer(model, TrainerConfig(optimizer="sgd", lr=1.0, **kw, **QUIET)).train_batch(batch)
        delta = torch.cat([p.detach().flatten() for p in model.parameters()]) - before
        assert check(delta) and delta.abs().max() > 0
    model = _classifier()
    before = _weights(model)
    Trainer(model, TrainerConfig(optimizer="sgd", lr=1.0, clip_norm=None, **QUIET)).train_batch(batch)
    delta = torch.cat([(model.state_dict()[k] - before[k]).flatten() for k in before])
    assert delta.norm() > 1e-3  # without clipping the same step is larger


# -- resume, seeding, checkpoints ------------------------------------------------------------------------------------
class _Interrupt(Exception):
    pass


class _Interrupting:
    """Passes a DataLoader through, raising after ``after`` batches in total (a simulated crash)."""

    def __init__(self, loader, after):
        self.loader, self.after, self.seen = loader, after, 0

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for b in self.loader:
            if self.seen == self.after:
                raise _Interrupt
            self.seen += 1
            yield b


def _resume_setup(tmp_path, name, seed=0):
    g = torch.Generator().manual_seed(9)
    x = torch.randint(0, 11, (20, 13), generator=g)
    loader = DataLoader(TensorDataset(x[:, :-1], x[:, 1:]), batch_size=4, shuffle=True)
    model = _lm(seed=seed, dropout=0.3)
    cfg = TrainerConfig(
        epochs=3,
        lr=3e-3,
        tbptt_k1=4,
        tbptt_k2=6,
        stateful=True,
        scheduler="steplr",
        scheduler_options={"step_size": 7, "gamma": 0.5},
        scheduler_interval="step",
        checkpoint_every=3,
        grad_monitor_every=4,
        **QUIET,
    )
    return model, Trainer(model, cfg, out_dir=tmp_path / name), loader


def test_resume_after_an_interruption_is_bitwise_identical(tmp_path):
    model_a, ta, loader = _resume_setup(tmp_path, "a")
    ta.fit(loader, loader)
    model_b, tb, _ = _resume_setup(tmp_path, "b")
    with pytest.raises(_Interrupt):
        tb.fit(
            _Interrupting(loader, after=8), loader
        )  # dies in epoch 2, one batch after the step-6 checkpoint
    assert json.loads((tmp_path / "b/checkpoints/latest.json").read_text())["checkpoint"].endswith(
        "step-00000006"
    )
    model_c, tc, _ = _resume_setup(tmp_path, "b", seed=123)  # a fresh process: other initial weights
    tc.fit(loader, loader, resume=True)
    _assert_same(_weights(model_c), _weights(model_a))
    sa, sc = ta.optimizer.state_dict(), tc.optimizer.state_dict()
    for k in sa["state"]:
        for name, v in sa["state"][k].items():
            assert torch.equal(v, sc["state"][k][name])
    assert tc.state.step == ta.state.step == 15 and tc.state.updates == ta.state.updates
    assert [r["val_loss"] for r in tc.state.history] == [r["val_loss"] for r in ta.state.history]
    assert [r["step"] for r in tc.monitor.records] == [r["step"] for r in ta.monitor.records]
    # without restoring the RNG (dropout masks, shuffling) the result would differ
    model_d, td, _ = _resume_setup(tmp_path, "d")
    td.fit(loader, loader)
    _assert_same(_weights(model_d), _weights(model_a))  # same seed, same run: deterministic
    model_e, te, _ = _resume_setup(tmp_path, "e")
    te.config.seed = 1
    te.fit(loader, loader)
    with pytest.raises(AssertionError):
        _assert_same(_weights(model_e), _weights(model_a))


def test_checkpoint_files_and_bad_checkpoints(tmp_path):
    model, t, loader = _resume_setup(tmp_path, "run")
    t.config.epochs = 1
    t.fit(loader)
    root = tmp_path / "run/checkpoints"
    latest = json.loads((root / "latest.json").read_text())["checkpoint"]
    ck = root / latest
    assert sorted(p.name for p in ck.iterdir()) == [
        "model.json",
        "model.safetensors",
        "trainer.json",
        "trainer.safetensors",
    ]
    assert len([p for p in root.iterdir() if p.is_dir()]) <= 3  # pruned: 2 newest + best
    assert not list(root.glob(".*"))  # no temporary leftovers
    assert read_checkpoint(root).path == ck
    # a checkpoint of another model (other config, other class): refused, the model untouched
    for other in (_lm(vocab=12), _classifier()):
        before = _weights(other)
        with pytest.raises(RnnkitError, match="checkpoint of a"):
            Trainer(other, TrainerConfig(**QUIET)).load_checkpoint(root)
        _assert_same(_weights(other), before)
    # truncated / corrupted files: refused before anything changes
    target = _lm(seed=5, dropout=0.3)
    before = _weights(target)
    tt = Trainer(target, TrainerConfig(**QUIET))
    for fname in ("trainer.safetensors", "model.safetensors", "trainer.json"):
        f = ck / fname
        good = f.read_bytes()
        f.write_bytes(good[: len(good) - 10])
        with pytest.raises(RnnkitError, match="corrupted|truncated|not valid JSON"):
            tt.load_checkpoint(ck)
        _assert_same(_weights(target), before)
        assert tt.state.step == 0
        f.write_bytes(good)
    tt.load_checkpoint(ck)
    _assert_same(_weights(target), _weights(model))
    with pytest.raises(RnnkitError, match="no checkpoint there"):
        tt.load_checkpoint(tmp_path / "nowhere")


def test_an_interrupted_checkpoint_write_leaves_the_previous_one_intact(tmp_path, monkeypatch):
    model, t, loader = _resume_setup(tmp_path, "run")
    t.config.epochs = 1
    t.config.checkpoint_every = 0
    t.fit(loader)
    root = tmp_path / "run/checkpoints"
    pointer = (root / "latest.json").read_bytes()
    dirs = sorted(p.name for p in root.iterdir())

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod, "write_safetensors", boom)
    with pytest.raises(OSError, match="disk full"):
        t.write_checkpoint(root)
    assert (root / "latest.json").read_bytes() == pointer
    assert sorted(p.name for p in root.iterdir()) == dirs
    monkeypatch.undo()
    read_checkpoint(root)  # still readable


def test_early_stopping_best_checkpoint_and_restore_best(tmp_path):
    model = _classifier()
    train, val = _clf_batches(4, seed=1), _clf_batches(2, seed=2)
    t = Trainer(model, TrainerConfig(epochs=30, lr=0.05, early_stopping=2, **QUIET), out_dir=tmp_path)
    hist = t.fit(train, val)  # a tiny training set: validation loss soon gets worse
    assert t.state.stopped_early and len(hist) < 30
    vals = [r["val_loss"] for r in hist]
    best_epoch = min(range(len(vals)), key=vals.__getitem__)
    assert len(vals) - 1 - best_epoch == 2  # stopped exactly `patience` epochs after the best
    best = json.loads((tmp_path / "checkpoints/best.json").read_text())
    assert best["value"] == pytest.approx(vals[best_epoch])
    t.restore_best()
    assert t.evaluate(val)["loss"] == pytest.approx(vals[best_epoch], abs=1e-6)
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,step,train_loss,train_accuracy,val_loss,val_accuracy,lr")
    assert len(rows) == len(hist) + 1


def test_progress_bar_and_quiet_mode():
    stream = io.StringIO()
    t = Trainer(_classifier(), TrainerConfig(epochs=2), reporter=Reporter(stream=stream, log_every=1))
    t.fit(_clf_batches(3))
    text = stream.getvalue()
    assert "loss" in text and "items/s" in text and "ETA" in text and "6/6" in text
    quiet = io.StringIO()
    Trainer(_classifier(), TrainerConfig(epochs=1), reporter=Reporter(stream=quiet, progress=False)).fit(
        _clf_batches(2)
    )
    assert quiet.getvalue() == ""


def test_bad_trainer_input_is_a_clear_error():
    with pytest.raises(RnnkitError, match="unknown optimizer 'adamax2'"):
        Trainer(_classifier(), TrainerConfig(optimizer="adamax2"))
    with pytest.raises(RnnkitError, match="tbptt_k2 must be >= tbptt_k1"):
        Trainer(_classifier(), TrainerConfig(tbptt_k1=5, tbptt_k2=3))
    with pytest.raises(RnnkitError, match="truncated BPTT needs"):
        Trainer(_classifier(), TrainerConfig(tbptt_k1=5))
    with pytest.raises(RnnkitError, match="unknown key"):
        Trainer(_classifier(), {"epoch": 3})
    with pytest.raises(RnnkitError, match="yielded no batches"):
        Trainer(_classifier(), TrainerConfig(**QUIET)).fit([])
    with pytest.raises(RnnkitError, match="empty batch"):
        Trainer(_classifier(), TrainerConfig(**QUIET)).fit(
            [{"inputs": torch.zeros(0, 3, 4), "targets": torch.zeros(0, dtype=torch.long)}]
        )
    with pytest.raises(RnnkitError, match=r"lengths must lie in \[1"):
        b = _clf_batches(1)[0]
        b["lengths"] = torch.tensor([5, 0, 5, 5, 5, 5])
        Trainer(_classifier(), TrainerConfig(**QUIET)).fit([b])
    with pytest.raises(RnnkitError, match="bad optimizer_options"):
        Trainer(_classifier(), TrainerConfig(optimizer_options={"momentum": 0.9}))


# -- hooks: stop now, validate every N steps ---------------------------------------------------------------------
def _same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("fire_at", [1, 3, 5])
def test_stop_hook_stops_after_exactly_the_step_it_fires_on(fire_at):
    batches = _clf_batches(5)
    model = _classifier()
    seen = []

    def stop_when(trainer):
        seen.append(trainer.state.step)
        return "enough" if trainer.state.step == fire_at else None

    t = Trainer(model, TrainerConfig(epochs=3, optimizer="sgd", lr=0.3, **QUIET), stop_when=stop_when)
    hist = t.fit(batches, batches[:2])
    assert t.state.step == fire_at and seen == list(range(1, fire_at + 1))
    assert t.state.stop_reason == "enough"
    assert [r["step"] for r in hist] == [fire_at]  # the partial epoch is still validated once
    # the weights are those of training on exactly the first `fire_at` batches (a separate trainer)
    ref = Trainer(_classifier(), TrainerConfig(epochs=1, optimizer="sgd", lr=0.3, **QUIET))
    ref.fit(batches[:fire_at])
    assert _same_weights(t.model, ref.model)
    assert hist[0]["val_loss"] == pytest.approx(ref.evaluate(batches[:2])["loss"])


def test_a_stopped_run_resumes_where_it_stopped(tmp_path):
    model_a, ta, loader = _resume_setup(tmp_path, "a")
    ta.fit(loader, loader)
    model_b, tb, _ = _resume_setup(tmp_path, "b")
    tb.stop_when = lambda t: t.state.step == 7  # in epoch 2 (5 batches an epoch)
    tb.fit(loader, loader)
    assert (tb.state.step, tb.state.epoch, tb.state.batch_in_epoch) == (7, 1, 2)
    model_c, tc, _ = _resume_setup(tmp_path, "b", seed=123)
    tc.fit(loader, loader, resume=True)
    assert tc.state.step == ta.state.step == 15 and tc.state.stop_reason is None
    _assert_same(_weights(model_c), _weights(model_a))


def test_request_stop_and_time_budget_stop_after_the_step_in_flight():
    batches = _clf_batches(6)
    t = Trainer(_classifier(), TrainerConfig(epochs=2, **QUIET))
    t.stop_when = lambda tr: tr.request_stop("from a callback") if tr.state.step == 2 else None
    t.fit(batches)
    assert (t.state.step, t.state.stop_reason) == (2, "from a callback")
    t = Trainer(_classifier(), TrainerConfig(epochs=2, time_budget=1e-9, **QUIET))
    t.fit(batches)  # the budget is spent by the end of the first step
    assert (t.state.step, t.state.stop_reason, len(t.state.history)) == (1, "time_budget", 1)
    t = Trainer(_classifier(), TrainerConfig(epochs=2, **QUIET))
    t.fit(batches)
    assert (t.state.step, t.state.stop_reason) == (12, None)


def test_validate_every_n_steps_validates_at_steps_n_2n_and_at_epoch_ends():
    train, val = _clf_batches(10, seed=1), _clf_batches(2, seed=2)
    cfg = dict(optimizer="sgd", lr=0.2, **QUIET)
    t = Trainer(_classifier(), TrainerConfig(epochs=2, validate_every=4, **cfg))
    hist = t.fit(train, val)
    assert [r["step"] for r in hist] == [4, 8, 10, 12, 16, 20]  # steps N, 2N, ... and the epoch ends
    assert [r["epoch"] for r in hist] == [1, 1, 1, 2, 2, 2]
    # each row holds the validation loss of the weights after that step, from a separate trainer
    for row in hist[:3]:
        ref = Trainer(_classifier(), TrainerConfig(epochs=1, max_steps=row["step"], **cfg))
        ref.fit(train)
        assert row["val_loss"] == pytest.approx(ref.evaluate(val)["loss"], rel=1e-6)
    # the training loss of a row averages the steps since the previous validation (steps 5..8)
    losses = []
    probe = Trainer(_classifier(), TrainerConfig(epochs=1, max_steps=8, **cfg))
    for i, b in enumerate(train[:8]):
        loss_sum, n, _ = probe.train_batch(b)
        if i >= 4:
            losses.append(loss_sum / n)
    assert hist[1]["train_loss"] == pytest.approx(sum(losses) / 4, rel=1e-6)


def test_validating_more_often_does_not_change_training(tmp_path):
    # dropout and a shuffling validation loader: validation must not draw from the training's random numbers
    model_a, ta, loader = _resume_setup(tmp_path, "a")
    ta.fit(loader, loader)
    model_b, tb, _ = _resume_setup(tmp_path, "b")
    tb.config.validate_every = 2
    tb.fit(loader, loader)
    assert [r["step"] for r in tb.state.history] == [2, 4, 5, 6, 8, 10, 12, 14, 15]
    assert [r["step"] for r in ta.state.history] == [5, 10, 15]
    _assert_same(_weights(model_b), _weights(model_a))


def test_early_stopping_counts_validations():
    train, val = _clf_batches(4, seed=1), _clf_batches(2, seed=2)
    t = Trainer(_classifier(), TrainerConfig(epochs=30, lr=0.05, early_stopping=2, validate_every=2, **QUIET))
    hist = t.fit(train, val)
    vals = [r["val_loss"] for r in hist]
    best = min(range(len(vals)), key=vals.__getitem__)
    assert t.state.stop_reason == "early_stopping" and len(vals) - 1 - best == 2
    assert all(r["step"] % 2 == 0 for r in hist)


@pytest.mark.parametrize("patience", [0, 2])
def test_lr_decay_waits_for_its_patience(patience):
    """lr_decay halves the learning rate after more than ``lr_decay_patience`` validations without a lower
    validation loss (the plateau rule, replayed here from the recorded losses)."""
    train, val = _clf_batches(4, seed=1), _clf_batches(2, seed=2)
    cfg = TrainerConfig(epochs=14, lr=0.2, lr_decay=0.5, lr_decay_patience=patience, **QUIET)
    hist = Trainer(_classifier(), cfg).fit(train, val)
    lr, best, bad, expected = 0.2, float("inf"), 0, []
    for row in hist:
        expected.append(lr)
        if row["val_loss"] < best * (1 - 1e-4):  # ReduceLROnPlateau's default relative threshold
            best, bad = row["val_loss"], 0
        else:
            bad += 1
        if bad > patience:
            lr, bad = lr * 0.5, 0
    assert [r["lr"] for r in hist] == pytest.approx(expected)
    assert expected[-1] < 0.2  # the rule cut at least once here


# -- gradient monitor -------------------------------------------------------------------------------------------
def _adding_trainer(encoder, steps, T=30, seed=0, monitor_every=100):
    torch.manual_seed(seed)
    model = SequenceRegressor(RegressorConfig(input_size=2, encoder=encoder))
    g = torch.Generator().manual_seed(seed)
    data = [adding_batch(64, T, g) for _ in range(steps)]
    probe = adding_batch(128, T, torch.Generator().manual_seed(99))
    t = Trainer(model, TrainerConfig(epochs=1, lr=1e-2, grad_monitor_every=monitor_every, **QUIET))
    t.fit(data, probe_batch=probe)
    return t


def test_gradient_monitor_tanh_vanishes_lstm_with_forget_bias_keeps_flowing(tmp_path):
    # the adding problem at T = 40, loss at the last step only; same data, budget and optimiser for both
    T = 40
    tanh = _adding_trainer(EncoderConfig("rnn", 32), 500, T)
    lstm = _adding_trainer(EncoderConfig("lstm", 32, cell_options={"forget_bias": 1.0}), 500, T)
    assert [r["step"] for r in tanh.monitor.records] == [1, 100, 200, 300, 400, 500]
    n_lstm = torch.tensor(lstm.monitor.records[-1]["time_norms"])
    assert len(n_lstm) == T
    # tanh: at every recorded training step, ||dL/dh_t|| shrinks steadily with the distance from the loss,
    # by more than three orders of magnitude over the 40 steps
    ratios_tanh = []
    for rec in tanh.monitor.records:
        n = torch.tensor(rec["time_norms"])
        ratios_tanh.append((n[0] / n[-1]).item())
        assert (n[1:] > n[:-1]).float().mean() > 0.9
    assert max(ratios_tanh) < 1e-3
    # LSTM with forget bias 1: after the same training the gradient reaching every earlier step stays within
    # two orders of magnitude of the last step's: it does not vanish
    ratio_lstm = (n_lstm[:-1].min() / n_lstm[-1]).item()
    assert ratio_lstm > 1e-2
    assert ratio_lstm > 100 * max(ratios_tanh)
    # and the LSTM solved the task while the tanh RNN stayed at the trivial MSE of about 0.167
    assert lstm.monitor.records[-1]["loss"] < 0.05 < 0.15 < tanh.monitor.records[-1]["loss"]
    rec = lstm.monitor.records[-1]["param_norms"]
    assert {"encoder.cells.0", "head.0"} <= set(rec) and all(v > 0 for v in rec.values())
    paths = lstm.monitor.save(tmp_path, "LSTM")
    assert [p.name for p in paths] == ["grad_flow.json", "grad_flow_heatmap.png", "grad_flow_curve.png"]
    assert (tmp_path / "grad_flow_heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gradient_monitor_measures_the_total_gradient_and_leaves_training_untouched(adding_data):
    torch.manual_seed(0)
    model = SequenceRegressor(
        RegressorConfig(input_size=2, encoder=EncoderConfig("gru", 8, num_layers=2, bidirectional=True))
    )
    B, T = 4, 6
    batch = adding_data(B, T)
    for p in model.parameters():
        p.grad = torch.full_like(p, 7.0)
    rng = torch.get_rng_state()
    rec = measure_gradient_flow(model, lambda m, b: m.loss(b).loss, batch)
    assert all(torch.equal(p.grad, torch.full_like(p, 7.0)) for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng) and model.training
    assert model.encoder.requested_backend == "auto" and "step" not in vars(model.encoder.cells[0])
    # reference by hand: a copy in eval mode on the Python loop, with a zero leaf added to the new hidden
    # state of every cell (2 layers x 2 directions) at every step; dL/d(leaf) is the total dL/dh_t
    m2 = copy.deepcopy(model).eval()
    enc = m2.encoder
    enc.requested_backend = "reference"
    leaves = [[torch.zeros(B, 8, requires_grad=True) for _ in range(T)] for _ in enc.cells]

    def perturbed(orig, it):
        def step(xp, st, rec_mask=None):
            _, new = orig(xp, st, rec_mask)
            new = new + next(it)
            return new, new

        return step

    for cell, cell_leaves in zip(enc.cells, leaves):
        cell.step = perturbed(cell.step, iter(cell_leaves))
    loss = m2.loss(batch).loss
    flat = torch.autograd.grad(loss, [e for cl in leaves for e in cl] + list(m2.parameters()))
    h_grads = [list(flat[k * T : (k + 1) * T]) for k in range(len(enc.cells))]
    for k in (1, 3):  # cells.1 and cells.3 run backwards in time: their first step is t = T - 1
        h_grads[k] = h_grads[k][::-1]
    assert len(rec["cell_norms"]) == 4
    for k in range(4):
        assert rec["cell_norms"][k] == pytest.approx([g.norm().item() for g in h_grads[k]], rel=1e-5)
    # the layer-level curve: the norm of dL/dh_t over every cell's h_t at time t, taken in one piece
    want = [torch.cat([h_grads[k][t] for k in range(4)], dim=1).norm().item() for t in range(T)]
    assert rec["time_norms"] == pytest.approx(want, rel=1e-5)
    assert rec["loss"] == pytest.approx(loss.item(), rel=1e-6)
    # per-module parameter gradient norms against autograd's gradient of the same loss
    param_grads = dict(zip([n for n, _ in m2.named_parameters()], flat[4 * T :]))
    for module in ("encoder.cells.0", "encoder.cells.3", "head.0"):
        grads = [g for n, g in param_grads.items() if n.rsplit(".", 1)[0] == module]
        want_norm = torch.sqrt(sum(g.square().sum() for g in grads)).item()
        assert rec["param_norms"][module] == pytest.approx(want_norm, rel=1e-5)


def test_resume_when_killed_between_a_checkpoint_and_its_pointer(tmp_path):
    """A process killed after writing checkpoint N+1 but before moving ``latest`` to it: resuming from N redoes
    that step and writes N+1 again (the stale copy must not block it), with the uninterrupted weights."""
    model_a, ta, loader = _resume_setup(tmp_path, "a")
    ta.fit(loader, loader)
    model_b, tb, _ = _resume_setup(tmp_path, "b")
    with pytest.raises(_Interrupt):
        tb.fit(_Interrupting(loader, after=8), loader)
    root = tmp_path / "b/checkpoints"
    at = json.loads((root / "latest.json").read_text())["checkpoint"]
    later = sorted(p.name for p in root.glob("ckpt-*") if p.name > at)
    earlier = sorted(p.name for p in root.glob("ckpt-*") if p.name < at)
    assert earlier and not later
    # the pointer never moved to the newest checkpoint: point it back one, as such a kill leaves it
    (root / "latest.json").write_text(json.dumps({"checkpoint": earlier[-1]}))
    model_c, tc, _ = _resume_setup(tmp_path, "b", seed=123)
    tc.fit(loader, loader, resume=True)
    _assert_same(_weights(model_c), _weights(model_a))


def test_min_epochs_keeps_early_stopping_from_ending_a_run_sooner():
    """A validation loss that never improves after the first epoch: patience 2 ends the run after 3 epochs, and
    with min_epochs 6 after 6 (the first epoch it may), not later."""

    def flat(model, batch, state=None):
        return (model.weight * 0).sum() + 1.0 + 0.0 * batch.sum()

    epochs = {}
    for m in (0, 6):
        trainer = Trainer(
            torch.nn.Linear(2, 1),
            TrainerConfig(epochs=20, early_stopping=2, min_epochs=m, progress=False),
            loss_fn=flat,
        )
        trainer.fit([torch.ones(1, 2)], [torch.ones(1, 2)])
        epochs[m] = (trainer.state.epoch, trainer.state.stopped_early)
    assert epochs == {0: (3, True), 6: (6, True)}
