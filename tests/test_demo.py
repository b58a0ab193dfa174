"""``darwin demo``, the README's main job, as a user types it (shrunk to one small generation):
it opens a request, the user approves it, and the next generation may do more."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # two demo runs on a shared CPU


def _demo(cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "OPENAI_API_KEY")}
    args = ["--synthetic", "--generations", "1", "--population", "3", "--survivors", "1"]
    return subprocess.run(
        [sys.executable, "-m", "darwin_bot", "demo", "--dir", "demo", *args, "--iters", "5", *extra],
        cwd=cwd, capture_output=True, text=True, env=env, timeout=1700,
    )  # fmt: skip


def _darwin(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A darwin command as the user types it in the demo repository."""
    return subprocess.run([sys.executable, "-m", "darwin_bot", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def _request_shown(stdout: str, repo: Path) -> tuple[int, str]:
    """The dependency request the demo printed (checked against the local forge): its number,
    and the command it said approves it."""
    assert "== requests to the humans" in stdout, stdout
    [line] = [x for x in stdout.splitlines() if "dependency: Add dependency: lion_pytorch" in x]
    number = int(line.split()[0].lstrip("#"))
    why, answer = stdout.split(line, 1)[1].splitlines()[1:3]
    assert why.startswith("    why: ") and "Thompson draw" in why and "llm.allowed_imports" in why
    answer = answer.removeprefix("    answer: ").split("  (or:")[0]
    assert answer.startswith("darwin requests --config ") and answer.endswith(f"approve {number}")
    issue = json.loads((repo / ".darwin" / "forge" / "issues" / f"{number}.json").read_text())
    assert "darwin:request" in issue["labels"] and issue["state"] == "open"
    assert "Thompson draw" in issue["body"]
    return number, answer


def test_demo_evolves_a_scratch_repository_and_continues_when_run_again(tmp_path: Path) -> None:
    first = _demo(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "synthetic Markov corpus (--synthetic)" in first.stderr
    assert "== generation 1" in first.stdout and "seed" in first.stdout
    assert "fitness plot:" in first.stdout
    repo = tmp_path / "demo"
    log = subprocess.run(["git", "-C", str(repo), "log", "--format=%s", "darwin/memory"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "darwin: record generation 1" in log

    # The offline mutator asked for a dependency its best-ranked edit needs, with its reason,
    # in the output and as an issue of the local forge.
    number, answer = _request_shown(first.stdout, repo)
    # the approval as printed, typed where the demo ran
    approve = _darwin(tmp_path, *shlex.split(answer)[1:], "--comment", "installed lion")
    assert approve.returncode == 0 and f"approved #{number}" in approve.stdout, approve.stderr

    again = _demo(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "continuing" in again.stderr and "== generation 2" in again.stdout
    # the approval changed what generation 2 may do, visibly: in the output and in the memory
    assert "generation 2: approved requests allow import lion_pytorch" in again.stderr
    assert f"#{number} approved: dependency: Add dependency: lion_pytorch" in again.stdout
    assert "edits the offline mutator may now make: lion_optimizer" in again.stdout
    offspring = sorted((repo / "memory").glob("g00*/offspring/*.json"))
    assert {p.parent.parent.name for p in offspring} == {"g001", "g002"}
    for p in offspring:
        want = ["lion_pytorch"] if p.parent.parent.name == "g002" else []
        assert json.loads(p.read_text())["granted_imports"] == want, p
    [req] = [json.loads(p.read_text()) for p in (repo / "memory" / "requests").glob("*.json")]
    assert req["state"] == "approved" and req["issue"] == number
    listed = _darwin(repo, "requests", "--all")  # in the demo repository, no --config needed
    assert f"#{number:<4} approved" in listed.stdout and "installed lion" in listed.stdout

    elsewhere = tmp_path / "other"
    (elsewhere / "demo").mkdir(parents=True)
    refused = _demo(elsewhere)
    assert refused.returncode == 2
    assert "not a demo repository; pass --force" in refused.stderr
