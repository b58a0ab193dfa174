"""Fixtures for the mutation tests: a copy of the real seed/ and tiny data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from darwin_bot.core import Budget, EvalResult, Status
from darwin_bot.mutation import write_tiny_data


@pytest.fixture
def tree(tmp_path: Path, repo_root: Path) -> Path:
    t = tmp_path / "tree"
    shutil.copytree(repo_root / "seed", t / "seed", ignore=shutil.ignore_patterns("__pycache__"))
    (t / "README.md").write_text("not evolvable\n")
    return t


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_data(tmp_path_factory.mktemp("data"))


class FakeSmoke:
    """A smoke test that passes unless told otherwise; it also checks the files compile."""

    def __init__(self, results: list[bool] | None = None) -> None:
        self.results = list(results or [])
        self.calls = 0

    def __call__(self, tree: Path) -> EvalResult:
        self.calls += 1
        for p in sorted((tree / "seed").glob("*.py")):
            compile(p.read_text(), str(p), "exec")  # a broken file must never reach a smoke test
        ok = self.results.pop(0) if self.results else True
        if ok:
            return EvalResult(Status.OK, "", None, "cpu", 0, Budget(iters=2), "fake", "")
        return EvalResult(
            Status.FAILED,
            "RuntimeError: boom",
            None,
            "cpu",
            0,
            Budget(iters=2),
            "fake",
            "",
            log_tail=f'File "{tree}/seed/model.py", line 85, in forward\nRuntimeError: boom',
        )


@pytest.fixture
def fake_smoke() -> FakeSmoke:
    return FakeSmoke()
