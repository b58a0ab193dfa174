"""The request count of a generation, and select's check of it against what GitHub has left."""

from __future__ import annotations

from pathlib import Path

import pytest

from darwin_bot.cli import make_scratch_repo
from darwin_bot.config import load
from darwin_bot.errors import RunStopped
from darwin_bot.forge import (
    REST_PER_HOUR,
    WRITES_PER_HOUR,
    LocalForge,
    generation_budget,
    propose_budget,
    select_budget,
)
from darwin_bot.git import GitRepo
from darwin_bot.publish.publisher import AGENT_LABEL, ForgePublisher
from darwin_bot.store import MemoryStore


def test_the_count_matches_what_the_benchmark_measured_at_population_100() -> None:
    # benchmarks/orchestration.py, population 100: 98 PRs, 59 culled, 457 writes sent.
    measured = propose_budget(98) + select_budget(98 - 59, 59)
    assert abs(measured.writes - 457) <= 5
    steady = generation_budget(100, 40)
    assert steady.writes == 2 * 60 + 1 + 3 * 60 + 3
    assert steady.hours() == max(steady.requests / REST_PER_HOUR, steady.writes / WRITES_PER_HOUR)
    assert steady.hours() < 1.0, "a generation of 100 fits in GitHub's hourly allowance"


class LimitedForge(LocalForge):
    """A local forge that says how many API requests GitHub has left."""

    left: tuple[int, int] | None = None

    def requests_left(self) -> tuple[int, int] | None:
        return self.left


@pytest.fixture
def publisher(tmp_path: Path) -> ForgePublisher:
    root = tmp_path / "repo"
    make_scratch_repo(root, "")
    cfg = load(root / "darwin.toml")
    forge = LimitedForge(tmp_path / "forge", user="darwin-bot")
    repo = GitRepo(root)
    for i in range(30):
        branch = f"darwin/g001-{i:03d}"
        repo.git("branch", branch, "main")
        forge.upsert_pr(branch, f"agent {i}", "body", labels=(AGENT_LABEL,))
    return ForgePublisher(forge, repo, cfg, MemoryStore(root / "memory"))


def test_select_stops_before_writing_when_github_has_too_few_requests_left(
    publisher: ForgePublisher,
) -> None:
    forge = publisher.forge
    assert isinstance(forge, LimitedForge)
    forge.left = (50, 1_700_000_000)
    with pytest.raises(RunStopped, match=r"allows 50 more API requests until \d\d:\d\d UTC"):
        publisher.check_request_budget(1)
    forge.left = (select_budget(0, 30).requests, 1_700_000_000)
    publisher.check_request_budget(1)  # exactly enough
    forge.left = None  # unknown (no answer seen yet): nothing to check against
    publisher.check_request_budget(1)
