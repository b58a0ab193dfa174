"""State verified before work: broken memory files, missing agent branches, foreign files,
bad configs, and memory commits that say what they carry (findings 3-6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from darwin_bot.errors import BrokenState
from tests.engine.test_engine import FakeEvaluator, _cfg, _engine


def _darwin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "darwin_bot", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        timeout=120,
    )


@pytest.fixture(scope="module")
def evolved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository after one generation (fake evaluator), copied by each test that breaks it."""
    from darwin_bot.cli import make_scratch_repo

    root = tmp_path_factory.mktemp("checks") / "repo"
    make_scratch_repo(root, "[evolution]\npopulation = 4\nsurvivors = 2\nseed = 3\n")
    _engine(root, _cfg(), FakeEvaluator()).run(1)
    return root


@pytest.fixture
def repo(evolved: Path, tmp_path: Path) -> Path:
    import shutil

    dest = tmp_path / "repo"
    shutil.copytree(evolved, dest, symlinks=True)
    return dest


def _one_line_exit_2(res: subprocess.CompletedProcess[str], *needles: str) -> str:
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1, res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_status_reads_a_healthy_repository(repo: Path) -> None:
    res = _darwin("status", "--repo", str(repo))
    assert res.returncode == 0, res.stderr
    assert "agents (2)" in res.stdout


def test_a_hand_deleted_agent_branch_is_caught_before_any_training(repo: Path) -> None:
    engine = _engine(repo, _cfg(), FakeEvaluator())
    survivor = next(a for a in engine.repo.agents() if a != "seed")
    head = engine.repo.rev(engine.repo.branch(survivor))
    engine.repo.git("branch", "-D", engine.repo.branch(survivor))

    line = _one_line_exit_2(_darwin("status", "--repo", str(repo)), survivor)
    assert f"git branch darwin/{survivor} {head}" in line  # the fix, ready to paste

    counting = FakeEvaluator()
    with pytest.raises(BrokenState, match=survivor):
        _engine(repo, _cfg(), counting).run(1)
    assert counting.smokes == 0 and not counting.calls  # nothing was mutated or trained


@pytest.mark.parametrize(
    ("rel", "text"),
    [
        ("memory/g001/offspring/g001-000.json", '{"agent": "g001-0'),  # truncated
        ("memory/g001/plan.json", "[1, 2, 3]"),  # JSON, but not a plan
        ("memory/run.json", '{"target": "three"}'),
    ],
)
def test_a_broken_engine_file_is_one_line_naming_it(repo: Path, rel: str, text: str) -> None:
    (repo / rel).write_text(text, encoding="utf-8")
    _one_line_exit_2(_darwin("status", "--repo", str(repo)), rel)


def test_a_truncated_eval_cache_file_is_one_line_naming_it(repo: Path) -> None:
    path = next((repo / "memory" / "evals").rglob("*.json"))
    path.write_text(path.read_text(encoding="utf-8")[:40], encoding="utf-8")
    _one_line_exit_2(_darwin("status", "--repo", str(repo)), path.name, "restore it from git")


def test_files_darwin_did_not_write_are_never_committed(repo: Path) -> None:
    engine = _engine(repo, _cfg(), FakeEvaluator())
    (repo / "memory" / "notes.txt").write_text("mine\n", encoding="utf-8")
    (repo / "memory" / "g001" / "scratch.json").write_text("{}", encoding="utf-8")
    (repo / "memory" / "mine").mkdir()
    (repo / "memory" / "mine" / "data.json").write_text("[]", encoding="utf-8")
    engine.run(1)
    tracked = engine.repo.git("ls-tree", "-r", "--name-only", "darwin/memory", "memory").split()
    assert "memory/g002/summary.json" in tracked
    assert not {"memory/notes.txt", "memory/g001/scratch.json", "memory/mine/data.json"} & set(
        tracked
    )
    assert (repo / "memory" / "notes.txt").read_text(encoding="utf-8") == "mine\n"  # left alone


def test_memory_commits_say_what_they_carry(repo: Path) -> None:
    log = _engine(repo, _cfg(), FakeEvaluator()).repo.git(
        "log", "--format=%s%n%b%x00", "darwin/memory"
    )
    commits = [c.strip() for c in log.split("\x00") if c.strip()]
    assert commits[0].startswith("darwin: record generation 1\n")
    assert "- 1 generation summary" in commits[0] and "mutation record" in commits[0]
    assert commits[1].startswith("darwin: record the baseline (generation 0)\n")


def test_a_summary_written_but_not_committed_is_committed_as_its_generation(repo: Path) -> None:
    engine = _engine(repo, _cfg(), FakeEvaluator())
    # as if killed before that commit
    engine.repo.git("update-ref", "refs/heads/darwin/memory", "darwin/memory~1")
    engine.run(1)  # finishes the interrupted run: commits generation 1, adds nothing
    subjects = engine.repo.git("log", "--format=%s", "darwin/memory").splitlines()
    assert subjects[:2] == [
        "darwin: record generation 1",
        "darwin: record the baseline (generation 0)",
    ]
    assert engine.completed() == 1


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"[evolution]\npopulation = \xff\xfe\n", "not UTF-8"),
        (b"[evolution\npopulation = 3\n", "not valid TOML"),
    ],
)
def test_a_bad_config_file_is_one_line_exit_2(repo: Path, content: bytes, needle: str) -> None:
    (repo / "darwin.toml").write_bytes(content)
    _one_line_exit_2(_darwin("status", "--repo", str(repo)), "darwin.toml", needle)
