"""``darwin demo``, the README's main job, as a user types it (shrunk to one small generation)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _demo(cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "OPENAI_API_KEY")}
    args = ["--synthetic", "--generations", "1", "--population", "3", "--survivors", "1"]
    return subprocess.run(
        [sys.executable, "-m", "darwin_bot", "demo", "--dir", "demo", *args, "--iters", "5", *extra],
        cwd=cwd, capture_output=True, text=True, env=env, timeout=800,
    )  # fmt: skip


def test_demo_evolves_a_scratch_repository_and_continues_when_run_again(tmp_path: Path) -> None:
    first = _demo(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "synthetic Markov corpus (--synthetic)" in first.stderr
    assert "== generation 1" in first.stdout and "seed" in first.stdout
    assert "fitness plot:" in first.stdout
    repo = tmp_path / "demo"
    log = subprocess.run(["git", "-C", str(repo), "log", "--format=%s", "main"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "darwin: record generation 1" in log

    again = _demo(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "continuing" in again.stderr and "== generation 2" in again.stdout

    elsewhere = tmp_path / "other"
    (elsewhere / "demo").mkdir(parents=True)
    refused = _demo(elsewhere)
    assert refused.returncode == 2
    assert "not a demo repository; pass --force" in refused.stderr
