"""The run lock: a second darwin process is refused in one line (exit 2) or waits with --wait."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from darwin_bot.cli import make_scratch_repo
from darwin_bot.errors import RunLocked
from darwin_bot.git import runlock as lock

HOLD = """
import sys, time
from pathlib import Path
from darwin_bot.git import runlock as lock
lock.hold_run_lock(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _holder(git_dir: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(git_dir), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _darwin(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    return subprocess.run(
        [sys.executable, "-m", "darwin_bot", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    make_scratch_repo(root, "")
    return root


def test_a_second_run_is_refused_in_one_line_naming_the_holder(repo: Path) -> None:
    holder = _holder(repo / ".git", 60)
    try:
        res = _darwin("run", "--repo", str(repo), "--generations", "1")
    finally:
        holder.kill()
        holder.wait()
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert f"pid {holder.pid}" in lines[0] and "--wait" in lines[0]
    assert not (repo / "memory").exists()  # nothing was done


def test_wait_blocks_until_the_holder_is_gone(repo: Path) -> None:
    holder = _holder(repo / ".git", 3)
    started = time.monotonic()
    # No corpus: once the lock is free, the run stops at its first real check.
    res = _darwin("run", "--repo", str(repo), "--generations", "1", "--wait")
    waited = time.monotonic() - started
    holder.wait()
    assert res.returncode == 2 and "no corpus" in res.stderr, res.stderr
    assert waited >= 1.0, "it must have waited for the holder"


def test_a_killed_holder_never_leaves_a_stale_lock(repo: Path) -> None:
    holder = _holder(repo / ".git", 60)
    with pytest.raises(RunLocked):
        _check_from_child(repo / ".git")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert _check_from_child(repo / ".git") == "free"


def _check_from_child(git_dir: Path) -> str:
    code = "import sys; from pathlib import Path; from darwin_bot.git import runlock; runlock.hold_run_lock(Path(sys.argv[1])); print('free')"
    res = subprocess.run(
        [sys.executable, "-c", code, str(git_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    if res.returncode != 0:
        assert "RunLocked" in res.stderr and "another darwin run holds the lock" in res.stderr
        raise RunLocked(res.stderr)
    return res.stdout.strip()


def test_the_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    first = lock.hold_run_lock(tmp_path)
    assert lock.hold_run_lock(tmp_path) == first
    holder = lock.read_holder(first)
    assert holder is not None and holder.pid == os.getpid()
    lock.release(tmp_path)
    assert lock.read_holder(first) is None
