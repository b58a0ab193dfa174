"""The scoring sandbox started before training: it starts up held, is charged only from the
handover, scores as a sandbox started at the handover does, and ends quietly without a job."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from darwin_bot.core import Status
from darwin_bot.evaluate import Limits, resolve_backend, score_run
from darwin_bot.evaluate.proctree import tree_cpu_s
from darwin_bot.evaluate.scoring import plan_probes
from tests.evaluate.test_graph_archive import VOCAB, Tiny, exported

T = 16


def _job(tmp: Path, archive: Path, name: str, limits: Limits) -> score_run.ScoreJob:
    backend = resolve_backend("auto")
    return score_run.ScoreJob(backend, "cpu", tmp / name, archive, tmp / "none.pt", "", limits)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return exported(Tiny(), tmp_path_factory.mktemp("g") / "tiny.pt2", T)


def _held_cpu(sandbox: score_run.ScoreSandbox, within_s: float) -> float:
    """The CPU seconds of the held worker's start-up, once it blocks for its job."""
    deadline, last = time.monotonic() + within_s, -1.0
    while time.monotonic() < deadline:
        time.sleep(0.5)
        cpu = tree_cpu_s(sandbox.gate.pid) if sandbox.gate.pid else 0.0
        if cpu > 0.5 and cpu == last:
            return cpu
        last = cpu
    return 0.0


@pytest.mark.slow
def test_an_early_sandbox_scores_like_a_late_one_and_is_charged_from_the_handover(
    archive, tmp_path
):
    val = (np.arange(4000, dtype=np.uint16) * 7919) % VOCAB
    plan = plan_probes(val, T, VOCAB, 8, 3, n_probes=32, rng=np.random.default_rng(0))
    limits = Limits(120.0, 4096, 64)
    early = score_run.ScoreSandbox(_job(tmp_path, archive, "early", limits), T, 300.0).start()
    # its folder is empty while it is held: nothing the agent could write is there to read
    assert sorted(p.name for p in (tmp_path / "early").iterdir()) == ["home"]
    startup = _held_cpu(early, 120.0)  # torch's import, while "training" runs
    assert startup >= 0.5
    out = score_run.score_graph(_job(tmp_path, archive, "early", limits), plan, VOCAB, early)
    late = score_run.score_graph(_job(tmp_path, archive, "late", limits), plan, VOCAB)
    assert out.status is Status.OK and late.status is Status.OK, (out.reason, late.reason)
    assert out.scorer.val_loss == late.scorer.val_loss  # the same graph, the same logits
    # the start-up is held apart: not in the charged scoring figures
    assert out.startup_wall_s > 0 and out.cpu_s < startup


def test_an_early_sandbox_that_gets_no_job_ends_quietly(tmp_path):
    job = _job(tmp_path, tmp_path / "never.pt2", "s", Limits(60.0))
    sandbox = score_run.ScoreSandbox(job, T, 120.0).start()
    sandbox.close()  # training failed: no graph comes
    assert not sandbox._thread.is_alive()
    assert sandbox._result is not None and sandbox._result.returncode == 0


@pytest.mark.slow
def test_an_early_sandbox_is_held_to_the_scoring_limits_from_the_handover(archive, tmp_path):
    # held with a generous bound (it must outlast training), the job gets scoring's own limit
    # enough windows that scoring is still running when a 0.05 s limit is checked
    val = (np.arange(80000, dtype=np.uint16) * 7919) % VOCAB
    plan = plan_probes(val, T, VOCAB, 4000, 3, n_probes=2048, rng=np.random.default_rng(0))
    held = Limits(300.0, 4096, 64)
    early = score_run.ScoreSandbox(_job(tmp_path, archive, "early", held), T, 300.0).start()
    assert _held_cpu(early, 120.0) >= 0.5
    tight = Limits(0.05, 4096, 64)
    out = score_run.score_graph(_job(tmp_path, archive, "early", tight), plan, VOCAB, early)
    assert out.status is Status.TIMEOUT, (out.status, out.reason)
