"""The evaluate step's fail-closed check of which paths an agent branch changed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from darwin_bot.evaluate.provenance import allowed_path, unverified_reason

EVOLVABLE = ("seed/",)


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd, check=True, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return out.stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str) -> None:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit(root, {"seed/train.py": "lr = 1\n", "darwin_bot/x.py": "", "action.yml": ""}, "seed")
    return root


def test_allowed_path_is_a_folder_or_a_file_prefix() -> None:
    assert allowed_path("seed/train.py", EVOLVABLE)
    assert allowed_path("seed", EVOLVABLE)
    assert not allowed_path("seedling.py", EVOLVABLE)
    assert allowed_path("cfg/a.toml", ("cfg/a.toml", "cfg"))
    assert not allowed_path("darwin_bot/engine.py", EVOLVABLE)


def test_an_honest_branch_passes_even_after_the_default_branch_moved_on(repo: Path) -> None:
    git(repo, "switch", "-q", "-c", "darwin/a")
    commit(repo, {"seed/train.py": "lr = 2\n"}, "mutate a")
    git(repo, "switch", "-q", "-c", "darwin/b", "main")
    commit(repo, {"seed/model.py": "x = 1\n"}, "mutate b")
    git(repo, "merge", "-q", "--no-edit", "darwin/a")  # a crossover is a merge commit
    git(repo, "switch", "-q", "main")
    commit(repo, {"memory/g001.json": "{}", "darwin_bot/x.py": "changed on main"}, "memory")
    git(repo, "switch", "-q", "--detach", "darwin/b")
    assert unverified_reason(repo, "main", EVOLVABLE) is None


def test_a_branch_that_changes_anything_else_is_rejected(repo: Path) -> None:
    git(repo, "switch", "-q", "-c", "darwin/a")
    commit(repo, {"seed/train.py": "lr = 2\n", "darwin.toml": "x = 1\n"}, "sneaky")
    reason = unverified_reason(repo, "main", EVOLVABLE)
    assert reason is not None and "darwin.toml" in reason and "seed/train.py" not in reason


def test_a_checkout_without_the_default_branch_is_rejected(repo: Path, tmp_path: Path) -> None:
    assert "no 'trunk'" in (unverified_reason(repo, "trunk", EVOLVABLE) or "")
    plain = tmp_path / "plain"
    plain.mkdir()
    assert "not a git checkout" in (unverified_reason(plain, "main", EVOLVABLE) or "")
