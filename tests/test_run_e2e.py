"""End to end: ``darwin run`` as a user types it, on a scratch repository, and its resume.

One uninterrupted run (2 generations, heuristic mutator, synthetic corpus,
tiny preset with a short budget) is checked for agreement between git (branches,
commits, trailers, archived heads), the memory records and the printed
leaderboard. A second run of the same configuration is killed with SIGKILL in
the middle of generation 1 and started again; its final state must equal the
uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from darwin_bot.cli import make_scratch_repo
from darwin_bot.git import GitRepo
from darwin_bot.git.trailers import parse_trailers
from darwin_bot.program import prepare_synthetic
from darwin_bot.store import MemoryStore

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

TOML = """\
[evolution]
population = 3
survivors = 2
generations = 2
seed = 7

[budget]
preset = "tiny"
iters = 8
repeats = 2
smoke_iters = 2
data = "data/corpus"
# The cost limit is a measured wall time: on a shared CPU it would let timing noise decide
# which offspring are over budget, and two runs of this reproducibility test would differ.
max_cost_ratio = 1000.0

[fitness]
mfu_weight = 0.0   # timing noise must not decide the ranking in a reproducibility test

[llm]
backend = "heuristic"

[sandbox]
timeout_s = 120.0
smoke_timeout_s = 60.0
"""


def _scratch(root: Path) -> Path:
    make_scratch_repo(root, TOML)
    prepare_synthetic(root / "data" / "corpus", seed=0, tokens=60_000)
    return root


def _run_cmd(root: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "darwin_bot",
        "run",
        "--repo",
        str(root),
        "--generations",
        "2",
        "--workers",
        "1",
    ]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "OPENAI_API_KEY")}
    env["DARWIN_THREADS"] = "1"
    # The runs compared are in different repositories, each with its own window secret:
    # one secret for all of them, so the same trees score the same.
    env["DARWIN_WINDOW_SECRET"] = "the-same-windows-for-every-run-of-this-test"
    return env


def _state(root: Path) -> dict:
    """Everything that must agree between two runs with the same seed (no timings, no shas)."""
    repo = GitRepo(root)
    memory = MemoryStore(root / "memory")
    branches = {a: repo.tree_id(repo.branch(a), ["seed/"]) for a in repo.agents()}
    gens = [
        {
            "generation": s["generation"],
            "survivors": s["survivors"],
            "culled": s["culled"],
            "ranking": [
                (r["agent"], r["status"], round(r["perplexity"] or 0.0, 4)) for r in s["ranking"]
            ],
        }
        for s in memory.generations()
    ]
    muts = sorted((m["id"], m["summary"], m["outcome"], m["chunk"]) for m in memory.mutations())
    return {"branches": branches, "generations": gens, "mutations": muts}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = _scratch(tmp_path_factory.mktemp("run") / "repo")
    proc = subprocess.run(_run_cmd(root), capture_output=True, text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, proc.stdout


def test_run_leaves_branches_commits_memory_and_leaderboard_that_agree(
    uninterrupted: tuple[Path, str],
) -> None:
    root, stdout = uninterrupted
    repo = GitRepo(root)
    memory = MemoryStore(root / "memory")
    gens = memory.generations()
    assert [g["generation"] for g in gens] == [0, 1, 2]
    last = gens[-1]

    # Survivors are exactly the agent branches; the culled are archived, not lost.
    assert set(repo.agents()) == set(last["survivors"])
    for g in gens[1:]:
        for agent in g["culled"]:
            assert repo.rev(repo.branch(agent)) is None
            assert repo.archived(agent) is not None, f"lineage of culled {agent} lost"

    # Every mutation commit of an offspring carries trailers naming it.
    for g in gens[1:]:
        offspring = [
            r for r in g["ranking"] if r["agent"] != "seed" and r["generation"] == g["generation"]
        ]
        assert offspring, "each generation proposes offspring"
        for row in offspring:
            if row["status"] == "rejected":
                continue
            head = repo.rev(repo.branch(row["agent"])) or repo.archived(row["agent"])
            assert head is not None
            message = repo.git("log", "-1", "--format=%B", head)
            trailers = parse_trailers(message)
            assert trailers["Darwin-Agent"] == row["agent"]
            assert trailers["Darwin-Generation"] == str(g["generation"])
            assert trailers["Darwin-Kind"] in ("mutate", "repair", "crossover")
            assert trailers["Darwin-Parents"].split(",") == row["parents"]

    # Memory records point at commits that exist, with the metrics of the ranking.
    records = memory.mutations()
    assert records, "mutation events are recorded"
    for rec in records:
        if rec["commit"]:
            assert repo.rev(rec["commit"]) == rec["commit"]
    ranked = {(g["generation"], r["agent"]): r for g in gens for r in g["ranking"]}
    for rec in records:
        row = ranked.get((rec["generation"], rec["agent"]))
        if row and row["status"] == "ok" and rec["outcome"] != "rejected" and rec["metrics_after"]:
            assert rec["metrics_after"]["perplexity"] == pytest.approx(row["perplexity"])

    # The printed leaderboard is the recorded one.
    for row in last["ranking"]:
        assert row["agent"] in stdout
    assert "fitness plot:" in stdout
    assert (root / ".darwin" / "report" / "fitness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Memory is committed on its own branch, never on the user's.
    assert "memory/g002/summary.json" in repo.git("ls-tree", "-r", "--name-only", "darwin/memory")
    assert "memory/" not in repo.git("ls-tree", "-r", "--name-only", "main")


def test_killed_run_resumes_to_the_same_state(
    uninterrupted: tuple[Path, str], tmp_path: Path
) -> None:
    root = _scratch(tmp_path / "repo")
    proc = subprocess.Popen(
        _run_cmd(root),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
        start_new_session=True,
    )
    # Kill it mid-generation 1: once at least one offspring of g1 has an outcome.
    deadline = time.monotonic() + 300
    marker = root / "memory" / "g001" / "offspring"
    while time.monotonic() < deadline and proc.poll() is None:
        if marker.is_dir() and any(marker.glob("*.json")):
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the run finished before it could be killed; slow the budget down"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (root / "memory" / "g001" / "summary.json").exists()

    again = subprocess.run(_run_cmd(root), capture_output=True, text=True, env=_env(), timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.dumps(_state(root), sort_keys=True) == json.dumps(
        _state(uninterrupted[0]), sort_keys=True
    )
    # No worktree or temporary branch was left behind by the killed run.
    assert GitRepo(root).git("worktree", "list").count("\n") == 0
