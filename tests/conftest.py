"""Fixtures shared by the test files: seeding, one thread, a runs folder, the compiled engine, small data."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same global RNG state, whatever ran before it."""
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def one_thread():
    """Run a module on one intra-op thread (training tests: the numbers then do not depend on the
    machine's core count), restoring the previous count afterwards.
    Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def runs_dir(tmp_path):
    """An empty folder for the runs (or outputs) a test writes; removed with ``tmp_path``."""
    d = tmp_path / "runs"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def fused_engine():
    """The compiled engine, built or loaded once per session; tests that need it skip where it cannot
    be built (no compiler), with the reason, or fail where ``RNNKIT_REQUIRE_FUSED=1`` (the Makefile's
    runs under each CPU build, which must not pass by skipping)."""
    from rnnkit import fused

    ok, reason = fused.load()
    if not ok:
        if os.environ.get("RNNKIT_REQUIRE_FUSED", "") not in ("", "0"):
            pytest.fail(f"fused engine required (RNNKIT_REQUIRE_FUSED) but unavailable: {reason}")
        pytest.skip(f"fused engine unavailable: {reason}")
    return reason


@pytest.fixture
def adding_data():
    """``make(batch, T, seed)``: a seeded batch of the adding problem (Hochreiter and Schmidhuber 1997)."""
    from rnnkit.experiments.memory import adding_batch

    return lambda batch, T, seed=0: adding_batch(batch, T, torch.Generator().manual_seed(seed))
