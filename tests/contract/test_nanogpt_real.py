"""Opt-in, end to end: a real checkout of karpathy/nanoGPT, its files unchanged.

Set ``DARWIN_NANOGPT=/path/to/nanoGPT`` to run it. CI has no checkout of the
public repository, so without the variable the test is deselected (``tests/conftest.py``):
an opt-in test, not a skip. It copies ``model.py``,
``train.py``, ``configurator.py`` and ``config/`` into a scratch repository,
writes ``darwin init --contract nanogpt``'s darwin.toml with a short budget,
and checks the issue's acceptance: ``darwin check`` passes, ``darwin evaluate``
is ok with a held-out perplexity, and ``darwin run -g 2`` commits mutations
that touch only model.py/train.py and ranks them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SHARED_CORPUS

NANOGPT = os.environ.get("DARWIN_NANOGPT")
BENCH = Path(__file__).parents[2] / "benchmarks" / "nanogpt_contract.py"
pytestmark = [
    pytest.mark.nanogpt_checkout,
    pytest.mark.slow,
    pytest.mark.timeout(3600),
    pytest.mark.usefixtures("bwrap"),
]


def _bench():  # the benchmark's repository builder, so both run the same thing
    spec = importlib.util.spec_from_file_location("bench_nanogpt_contract", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_nanogpt_as_it_is_checks_evaluates_and_evolves(tmp_path: Path, corpus: Path):
    assert SHARED_CORPUS.exists() or corpus.exists()
    bench = _bench()
    repo = bench.make_repo(Path(NANOGPT), tmp_path / "repo", data=corpus, iters=10,
                           population=3, repeats=2, smoke_iters=2)  # fmt: skip
    for name in ("model.py", "train.py", "configurator.py"):  # copied byte for byte
        assert (repo / name).read_bytes() == (Path(NANOGPT) / name).read_bytes()

    check = bench.darwin("check", str(repo), cwd=repo)
    assert check.returncode == 0, check.stdout + check.stderr
    assert not [ln for ln in check.stdout.splitlines() if ln.startswith("MISS")]

    ev = bench.darwin("evaluate", str(repo), "--json", cwd=repo)
    assert ev.returncode == 0, ev.stderr
    result = json.loads(ev.stdout.strip().splitlines()[-1])
    assert result["status"] == "ok", result["reason"] + result["log_tail"][-2000:]
    assert 1.0 < result["metrics"]["perplexity"] < 80.0  # near or below a uniform guess (65)
    assert result["extra"]["iterations"] == 10 and result["extra"]["causality_probes"] == 4

    run = bench.darwin("run", "-g", "2", "--repo", str(repo), "--quiet", cwd=repo)
    assert run.returncode == 0, run.stderr[-3000:]
    touched = bench.touched_files(repo)
    assert touched and set(touched) <= {"model.py", "train.py"}, touched
    summary = bench.evolution_summary(repo)
    assert summary["generations"] == 2 and summary["ranked_agents"] >= 2, summary
    status = bench.darwin("status", "--repo", str(repo), cwd=repo)
    assert status.returncode == 0 and "agents (" in status.stdout
    head = subprocess.run(["git", "-C", str(repo), "show", "main:train.py"],
                          capture_output=True, check=True).stdout  # fmt: skip
    assert head == (Path(NANOGPT) / "train.py").read_bytes()  # main is never rewritten
