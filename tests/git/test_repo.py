"""The git adapter against real repositories (a working repo and a bare origin)."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from darwin_bot.core import Mutation
from darwin_bot.errors import GitError
from darwin_bot.git import GitRepo
from darwin_bot.git.trailers import format_message, mutation_from_commit, parse_trailers


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    root = tmp_path / "work"
    (root / "seed").mkdir(parents=True)
    (root / "seed" / "train.py").write_text("LR = 1e-3\n")
    (root / "README.md").write_text("hello\n")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    bare = tmp_path / "origin.git"
    _git(tmp_path, "init", "-q", "--bare", str(bare))
    _git(root, "remote", "add", "origin", str(bare))
    _git(root, "push", "-q", "origin", "main")
    return GitRepo(root, prefix="darwin/", remote="origin")


def _mutation(agent: str = "g001-000") -> Mutation:
    return Mutation(
        sha="",
        agent=agent,
        generation=1,
        parents=("seed",),
        kind="mutate",
        summary="raise the learning rate",
        model="heuristic",
        prompt_tokens=10,
        completion_tokens=5,
    )


def test_trailers_round_trip_through_a_commit(repo: GitRepo) -> None:
    m = _mutation()
    with repo.worktree("main") as wt:
        (wt / "seed" / "train.py").write_text("LR = 3e-3\n")
        sha = repo.commit_worktree(
            wt,
            format_message(m.summary, "- seed/train.py::globals", m.trailers()),
            allowed=["seed/"],
        )
    repo.set_branch(m.agent, sha)
    back = repo.lineage(repo.branch(m.agent))
    assert len(back) == 1
    got = back[0]
    assert (got.agent, got.generation, got.parents, got.kind, got.model, got.prompt_tokens) == (
        "g001-000",
        1,
        ("seed",),
        "mutate",
        "heuristic",
        10,
    )
    author = _git(repo.root, "log", "-1", "--format=%an <%ae>", sha).strip()
    assert author == "darwin-bot <darwin-bot@users.noreply.github.com>"


def test_a_commit_outside_the_evolvable_paths_is_refused(repo: GitRepo) -> None:
    with repo.worktree("main") as wt:
        (wt / "README.md").write_text("pwned\n")
        (wt / "seed" / "train.py").write_text("LR = 2e-3\n")
        with pytest.raises(GitError, match="outside the evolvable paths.*README.md"):
            repo.commit_worktree(wt, "x\n", allowed=["seed/"])
    assert _git(repo.root, "rev-list", "--count", "main").strip() == "1"


def test_branches_outside_the_prefix_are_never_touched(repo: GitRepo) -> None:
    with pytest.raises(GitError, match="outside the prefix"):
        repo.delete_branch("main")
    with pytest.raises(GitError, match="outside the prefix"):
        repo.push(["main"])
    assert repo.rev("main") is not None


def test_delete_archives_the_head_so_lineage_survives(repo: GitRepo) -> None:
    head = repo.rev("main")
    assert head
    repo.set_branch("g001-001", head)
    repo.delete_branch(repo.branch("g001-001"), archive_as="g001-001")
    assert repo.agents() == []
    assert repo.archived("g001-001") == head
    repo.delete_branch(repo.branch("g001-001"))  # idempotent


def test_push_and_fetch_agent_branches_through_a_bare_origin(repo: GitRepo, tmp_path: Path) -> None:
    head = repo.rev("main")
    assert head
    repo.set_branch("g001-000", head)
    repo.push([repo.branch("g001-000")])
    assert repo.remote_branches() == {"darwin/g001-000"}
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(clone))
    other = GitRepo(clone, remote="origin")
    other.fetch()
    assert other.agents() == ["g001-000"]
    repo.delete_branch(repo.branch("g001-000"))
    repo.push([], delete=["darwin/g001-000"])
    assert repo.remote_branches() == set()


def test_export_writes_only_the_requested_paths(repo: GitRepo, tmp_path: Path) -> None:
    out = repo.export("main", ["seed/"], tmp_path / "tree")
    assert (out / "seed" / "train.py").read_text() == "LR = 1e-3\n"
    assert not (out / "README.md").exists()


def test_trailer_parsing_ignores_foreign_lines() -> None:
    msg = "subject\n\nbody Darwin-Agent: not-a-trailer\n\nDarwin-Agent: a1\nDarwin-Kind: repair\nSigned-off-by: x\n"
    assert parse_trailers(msg) == {"Darwin-Agent": "a1", "Darwin-Kind": "repair"}
    assert mutation_from_commit("abc", "plain commit\n") is None


# A killed run leaves its worktree registered. 'git worktree add' locks the new worktree
# until its checkout is done, so one killed in between is also locked (a plain
# remove --force and prune skip it), and its folder may be gone already.
@pytest.mark.parametrize("left", ["registered", "locked mid-add", "locked, folder gone"])
def test_stale_worktrees_of_a_killed_run_are_removed(repo: GitRepo, left: str) -> None:
    ctx = repo.worktree("main")
    wt = ctx.__enter__()  # never exited: as if the process was killed
    assert wt.exists()
    if left != "registered":
        _git(repo.root, "worktree", "lock", "--reason", "initializing", str(wt))
    if left == "locked, folder gone":
        shutil.rmtree(wt)
    assert repo.cleanup_worktrees() == 1
    assert not wt.exists()
    assert _git(repo.root, "worktree", "list").count("\n") == 1


def test_a_git_lock_still_being_written_is_left_alone(repo: GitRepo) -> None:
    common = repo.root / ".git"
    live = common / "index.lock"
    live.write_text("")
    touch = threading.Timer(0.1, lambda: live.write_text("still writing"))
    touch.start()
    try:
        assert repo.remove_stale_locks(settle_s=0.5) == []
    finally:
        touch.join()
    assert live.exists()
    live.unlink()
    stale = common / "refs" / "heads" / "main.lock"
    stale.write_text("")
    assert repo.remove_stale_locks(settle_s=0.2) == ["refs/heads/main.lock"]
    assert not stale.exists()


def test_tree_ids_follow_a_moved_branch_and_name_missing_paths(repo: GitRepo) -> None:
    first = repo.rev("main")
    assert first is not None
    tree = _git(repo.root, "rev-parse", "main:seed").strip()
    assert repo.tree_id(first, ["seed/"]) == tree
    assert repo.tree_id(first, ["seed/", "nowhere/"]) == f"{tree}+-"  # a missing path is "-"
    repo.set_branch("g001-000", first)
    assert repo.tree_id("darwin/g001-000", ["seed/"]) == tree
    # The branch moves: a name is looked up again (only full commit ids are kept).
    (repo.root / "seed" / "train.py").write_text("LR = 2e-3\n")
    _git(repo.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "lr")
    second = repo.rev("main")
    assert second is not None and second != first
    repo.set_branch("g001-000", second)
    moved = _git(repo.root, "rev-parse", "main:seed").strip()
    assert moved != tree and repo.tree_id("darwin/g001-000", ["seed/"]) == moved
    assert repo.tree_id(first, ["seed/"]) == tree  # the old commit still has its old tree
    with pytest.raises(GitError, match="no commit"):
        repo.tree_id("darwin/gone", ["seed/"])
    assert repo.rev("0" * 40) is None
