"""Fixtures for the evaluator's tests: a corpus, agent trees built from test programs, a runner.

Every agent tree gets a ``darwin.toml`` with tight sandbox limits, so a test
whose sandbox failed still cannot take the machine: small memory, few
processes, a short timeout. The programs bound themselves too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from darwin_bot.cli import cli
from tests.evaluate.agent_tree import build_agent_tree


@pytest.fixture
def make_tree(tmp_path: Path) -> Callable[..., Path]:
    """An agent tree: the honest bigram program, with train.py and/or model.py swapped."""

    def make(
        train: str | None = None,
        model: str | None = None,
        target: str | None = None,
        memory_mb: int = 2048,
        max_procs: int = 64,
        timeout_s: float = 40.0,
        allowance_s: float = 15.0,
    ) -> Path:
        tree = tmp_path / f"agent{len(list(tmp_path.glob('agent*')))}"
        build_agent_tree(tree, train, model, target)
        (tree / "darwin.toml").write_text(
            f"[sandbox]\nmemory_mb = {memory_mb}\nmax_procs = {max_procs}\n"
            f"timeout_s = {timeout_s}\nsmoke_timeout_s = {timeout_s}\n"
            f"allowance_s = {allowance_s}\n"
        )
        return tree

    return make


@dataclass
class Evaluated:
    result: dict[str, Any]
    seconds: float
    output: str


@pytest.fixture
def evaluate(corpus: Path) -> Callable[..., Evaluated]:
    """Run ``darwin evaluate TREE --json`` in-process (the real harness and sandbox)."""

    def run(tree: Path, *args: str) -> Evaluated:
        argv = ["evaluate", str(tree), "--data", str(corpus), "--json", *args]
        if not {"--iters", "--seconds", "--smoke"} & set(args):
            argv += ["--iters", "5"]
        if "--sandbox" not in args:
            argv += ["--sandbox", "bwrap"]
        start = time.monotonic()
        res = CliRunner().invoke(cli, argv, catch_exceptions=False)
        seconds = time.monotonic() - start
        assert res.exit_code == 0, res.output
        return Evaluated(json.loads(res.output.strip().splitlines()[-1]), seconds, res.output)

    return run
