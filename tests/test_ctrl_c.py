"""Ctrl-C on a real ``darwin demo`` mid-training: one line at once, the sandboxes gone, exit 3,
and the same command resumes (the interrupted run is not recorded as a result)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from darwin_bot.cli.live import STOP_LINE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _descendants(root: int) -> set[int]:
    """Every live process below ``root`` (the sandboxes run in sessions of their own)."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(stat.parent.name)] = int(fields[1])
    out, frontier = set(), {root}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - out
        out |= frontier
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_ctrl_c_mid_training_stops_at_once_and_resumes(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "OPENAI_API_KEY")}
    argv = [sys.executable, "-m", "darwin_bot", "demo", "--dir", "demo", "--synthetic",
            "--generations", "1", "--population", "2", "--survivors", "1", "--iters", "400"]  # fmt: skip
    log = tmp_path / "stderr.txt"
    with log.open("w") as err:
        proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=err)
        deadline = time.monotonic() + 600
        while "training runs: 3 runs to go" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        time.sleep(3.0)  # inside the first training run
        children = _descendants(proc.pid)
        assert children, "the sandbox is running"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        took = time.monotonic() - sent
    text = log.read_text()
    assert proc.returncode == 3, text[-2000:]
    assert took < 10.0, f"Ctrl-C took {took:.1f} s"
    assert STOP_LINE in text and "run the same command again to resume" in text
    time.sleep(1.0)
    assert not [p for p in children if _alive(p)], "a sandbox outlived the stop"
    evals = tmp_path / "demo" / "memory" / "evals"
    cached = list(evals.rglob("*.json")) if evals.exists() else []
    assert not cached, "a run cut short was recorded as a result"
