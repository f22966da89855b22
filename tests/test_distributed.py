"""Data-parallel training with real processes (gloo on CPU, 2 ranks): the same steps as one process.

The reference is always the plain one-process :class:`~rnnkit.train.Trainer` on the same global batches; the
distributed runs start two real processes (``torch.multiprocessing.spawn``, or the CLI's ``--nproc`` and
``torchrun``) and must end with the same weights, to float rounding (1e-6).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

import rnnkit
from rnnkit.models import (
    ClassifierConfig,
    EncoderConfig,
    LanguageModel,
    LanguageModelConfig,
    SequenceClassifier,
)
from rnnkit.train import Trainer, TrainerConfig
from test_cli import write_series

SRC = str(Path(rnnkit.__file__).resolve().parents[1])
TOL = dict(rtol=0, atol=1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the models and data of the library-level tests ------------------------------------------------------------
def _classifier() -> SequenceClassifier:
    torch.manual_seed(0)
    return SequenceClassifier(
        ClassifierConfig(num_classes=3, vocab_size=20, embedding_dim=8, encoder=EncoderConfig("gru", 12))
    )


def _classifier_batches() -> list[dict]:
    """One global batch of 5 sequences of different lengths: 2 rows on rank 0, 3 on rank 1."""
    g = torch.Generator().manual_seed(1)
    return [
        {
            "inputs": torch.randint(0, 20, (5, 9), generator=g),
            "targets": torch.tensor([0, 2, 1, 1, 0]),
            "lengths": torch.tensor([9, 4, 7, 2, 9]),
        }
    ]


def _lm() -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel(
        LanguageModelConfig(vocab_size=11, embedding_dim=8, encoder=EncoderConfig("lstm", 10))
    )


def _lm_batches() -> list[dict]:
    """4 contiguous streams read in 4 segments of 6 tokens (stateful truncated BPTT)."""
    ids = torch.randint(0, 11, (4, 25), generator=torch.Generator().manual_seed(2))
    x, y = ids[:, :-1], ids[:, 1:]
    return [{"inputs": x[:, a : a + 6], "targets": y[:, a : a + 6]} for a in range(0, 24, 6)]


CASES = {
    # one step of full BPTT over a batch with unequal shards and padding
    "classifier": (_classifier, _classifier_batches, dict(max_steps=1)),
    # stateful truncated BPTT (k1 = 3 in 6-step segments): streams split over the ranks, state carried
    "lm": (_lm, _lm_batches, dict(max_steps=4, tbptt_k1=3, stateful=True)),
}


def _config(extra: dict, out: bool = False) -> TrainerConfig:
    return TrainerConfig(epochs=1, lr=0.01, progress=False, **extra)


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def _worker(rank: int, world: int, port: int, job: str, out: str) -> None:
    """One rank: join the group, run ``job``, rank 0 saves the weights to ``out``."""
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = _run_job(job, out)
        if rank == 0:
            save_file(_weights(model), out)
    finally:
        dist.destroy_process_group()


def _run_job(job: str, out: str):
    name, _, phase = job.partition(":")
    make_model, make_batches, extra = CASES[name]
    model = make_model()
    if phase == "":
        Trainer(model, _config(extra)).fit(make_batches())
        return model
    # the resume cases: 2 steps, stop (checkpoint), then the rest in another world size
    ckpt = Path(out).with_suffix(".run")
    if phase == "first":
        stop = dict(extra, max_steps=0)
        t = Trainer(model, _config(stop), out_dir=ckpt, stop_when=lambda tr: tr.state.step >= 2)
        t.fit(make_batches())
        return model
    t = Trainer(model, _config(extra), out_dir=ckpt)
    t.fit(make_batches(), resume=True)
    return model


def _spawn(world: int, job: str, out: Path) -> dict[str, torch.Tensor]:
    mp.spawn(_worker, args=(world, _free_port(), job, str(out)), nprocs=world, join=True)
    return load_file(str(out))


def _one_process(job: str, out: Path) -> dict[str, torch.Tensor]:
    return _weights(_run_job(job, str(out)))


def _assert_close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], **TOL, msg=k)


@pytest.mark.parametrize("case", sorted(CASES))
def test_two_processes_train_the_same_steps_as_one(tmp_path, case):
    reference = _one_process(case, tmp_path / "one.safetensors")
    start = _weights(CASES[case][0]())
    assert any(not torch.equal(reference[k], start[k]) for k in start)  # the step moved the weights
    _assert_close(_spawn(2, case, tmp_path / "two.safetensors"), reference)


@pytest.mark.parametrize("first, then", [(2, 1), (1, 2)])
def test_resume_at_another_world_size(tmp_path, first, then):
    """Stateful LM: 2 steps at one world size, checkpoint, the last 2 at another == 4 steps in one process."""
    reference = _one_process("lm", tmp_path / "ref.safetensors")
    out = tmp_path / "w.safetensors"
    run = _spawn if first > 1 else lambda w, j, o: _one_process(j, o)
    run(first, "lm:first", out)
    ck = out.with_suffix(".run") / "checkpoints"
    assert (ck / "latest.json").is_file()
    run = _spawn if then > 1 else lambda w, j, o: _one_process(j, o)
    _assert_close(run(then, "lm:resume", out), reference)
