"""The memory branch and the atomic push, against a bare origin that refuses what GitHub would.

``origin_hook.protect`` gives the origin a pre-receive hook with GitHub's
"GH006: Protected branch update failed" refusal; the CI steps' push of one
generation (:meth:`GitRepo.push_generation`) must then either land whole or not
at all, and never need the default branch.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from origin_hook import protect

from darwin_bot.errors import GitError
from darwin_bot.git import GitRepo


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
        cwd=cwd, check=True, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return out.stdout.strip()


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, GitRepo]:
    """A bare origin with ``main`` (protected) and a clone of it, as a CI job has."""
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    (seed / "seed").mkdir()
    (seed / "seed" / "train.py").write_text("lr = 1\n")
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "seed")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(origin))
    protect(origin, "main")
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(origin), str(work))
    return origin, GitRepo(work, remote="origin")


def _agent(repo: GitRepo, agent: str) -> str:
    head = repo.git("rev-parse", "HEAD")
    tree = repo.git("rev-parse", "HEAD^{tree}")
    sha = repo.git("commit-tree", tree, "-p", head, "-m", f"mutate {agent}")
    repo.set_branch(agent, sha)
    return sha


def _write_memory(repo: GitRepo, name: str, data: object) -> None:
    folder = repo.root / "memory"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(json.dumps(data), encoding="utf-8")


def test_the_origin_refuses_pushes_to_the_default_branch(world: tuple[Path, GitRepo]) -> None:
    origin, repo = world
    (repo.root / "x").write_text("x")
    repo.git("add", "x")
    repo.git("-c", "user.name=T", "-c", "user.email=t@e", "commit", "-q", "-m", "x")
    with pytest.raises(GitError, match="GH006: Protected branch update failed"):
        repo.git("push", "origin", "HEAD:refs/heads/main")


def test_a_generation_lands_on_its_own_branches(world: tuple[Path, GitRepo]) -> None:
    origin, repo = world
    main = git(origin, "rev-parse", "main")
    head = _agent(repo, "g001-000")
    _write_memory(repo, "summary.json", {"generation": 1})
    first = repo.commit_memory("memory", "darwin: select generation 1")
    assert first is not None
    repo.push_generation([repo.branch("g001-000")])
    assert git(origin, "rev-parse", "darwin/g001-000") == head
    assert git(origin, "rev-parse", "darwin/memory") == first
    assert git(origin, "ls-tree", "-r", "--name-only", "darwin/memory") == "memory/summary.json"
    assert git(origin, "rev-parse", "main") == main
    # The checked-out branch, its index and its files are untouched by the memory commit.
    assert repo.git("status", "--porcelain", "--", "seed") == ""
    assert repo.git("rev-parse", "HEAD") == main
    # Nothing changed: no new commit, and a rerun's push changes nothing on origin.
    assert repo.commit_memory("memory", "again") is None
    repo.push_generation([repo.branch("g001-000")])
    assert git(origin, "rev-parse", "darwin/memory") == first
    # The memory branch is not an agent, here or on the remote.
    assert repo.agents() == ["g001-000"]
    assert repo.remote_branches() == {"darwin/g001-000"}
    with pytest.raises(GitError, match="reserved"):
        repo.set_branch("memory", head)


def test_memory_moves_forward_and_is_restored_by_the_next_job(
    world: tuple[Path, GitRepo], tmp_path: Path
) -> None:
    origin, repo = world
    _write_memory(repo, "a.json", {"n": 1})
    first = repo.commit_memory("memory", "one")
    _write_memory(repo, "b.json", {"n": 2})
    second = repo.commit_memory("memory", "two")
    assert repo.git("rev-parse", f"{second}^") == first
    repo.push_generation([])
    # A fresh job: a clone of the default branch, the memory fetched and restored.
    job = tmp_path / "job"
    git(tmp_path, "clone", "-q", str(origin), str(job))
    (job / "memory").mkdir()
    (job / "memory" / "stale.json").write_text("{}")  # e.g. an old copy on main
    fresh = GitRepo(job, remote="origin")
    fresh.fetch()
    assert fresh.restore_memory("memory")
    assert sorted(p.name for p in (job / "memory").iterdir()) == ["a.json", "b.json"]
    assert fresh.agents() == []


def test_a_refused_ref_fails_the_whole_push(world: tuple[Path, GitRepo]) -> None:
    """GitHub cannot put a GITHUB_TOKEN on a ruleset's bypass list: if a rule refuses
    the memory branch, no agent branch may land without its record."""
    origin, repo = world
    protect(origin, "main", "darwin/memory")
    _agent(repo, "g001-000")
    _write_memory(repo, "summary.json", {"generation": 1})
    repo.commit_memory("memory", "darwin: select generation 1")
    with pytest.raises(GitError, match="GH006"):
        repo.push_generation([repo.branch("g001-000")])
    assert git(origin, "for-each-ref", "--format=%(refname)", "refs/heads/darwin/") == ""


def test_a_memory_branch_moved_by_someone_else_is_not_overwritten(
    world: tuple[Path, GitRepo], tmp_path: Path
) -> None:
    origin, repo = world
    _write_memory(repo, "a.json", {"n": 1})
    repo.commit_memory("memory", "one")
    repo.push_generation([])
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(origin), str(other))
    rival = GitRepo(other, remote="origin")
    rival.fetch()
    rival.restore_memory("memory")
    _write_memory(rival, "rival.json", {"n": 9})
    rival.commit_memory("memory", "rival")
    rival.push_generation([])
    _agent(repo, "g001-000")
    _write_memory(repo, "mine.json", {"n": 2})
    repo.commit_memory("memory", "mine")
    with pytest.raises(GitError):
        repo.push_generation([repo.branch("g001-000")])  # not a fast-forward: refused, atomically
    assert "rival.json" in git(origin, "ls-tree", "-r", "--name-only", "darwin/memory")
    assert git(origin, "for-each-ref", "--format=%(refname)", "refs/heads/darwin/g001-000") == ""
