"""What only the local file forge does: locking, atomic files, hooks, limits."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from darwin_bot.config import Config
from darwin_bot.errors import ForgeError, ForgeNotFound
from darwin_bot.forge import LocalForge, open_forge
from darwin_bot.forge.base import (
    MAX_BODY_CHARS,
    CloseReason,
    IssueState,
    PRState,
    Status,
    StatusState,
    marker,
    with_marker,
)


def test_parallel_writers_never_lose_a_write(tmp_path: Path) -> None:
    def writer(tag: str) -> None:
        forge = LocalForge(tmp_path)  # one instance per thread: separate lock handles
        for i in range(15):
            forge.upsert_issue(f"w={tag}-{i}", f"{tag} {i}", "body", labels=("darwin:test",))

    threads = [threading.Thread(target=writer, args=(t,)) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    issues = LocalForge(tmp_path).list_issues(label="darwin:test")
    assert len(issues) == 30
    assert sorted(i.number for i in issues) == list(range(1, 31))
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".") and p.name != ".lock"]


def test_merge_without_a_hook_says_what_to_do(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path)
    forge.upsert_pr("darwin/a", "a", "b")
    with pytest.raises(ForgeError, match="merge the branch with git"):
        forge.merge_pr("darwin/a", "m")
    assert forge.delete_branch("darwin/a") is False  # no git hook: nothing to delete
    with pytest.raises(ForgeNotFound):
        forge.set_labels(42, add=("x",))


def test_bodies_over_the_limit_are_refused(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path)
    with pytest.raises(ForgeError, match="over"):
        forge.upsert_issue("big=1", "big", "x" * (MAX_BODY_CHARS + 1))


def test_markers_are_validated_and_appended_once() -> None:
    assert with_marker(with_marker("body", "k=1"), "k=1").count(marker("k=1")) == 1
    with pytest.raises(ValueError, match="invalid marker key"):
        marker("has space")


def test_open_forge_builds_the_configured_forge(tmp_path: Path, monkeypatch) -> None:
    forge = open_forge(Config(), tmp_path)
    assert isinstance(forge, LocalForge) and forge.root == tmp_path / ".darwin/forge"
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    monkeypatch.setenv("GITHUB_REPOSITORY", "owner/repo")
    gh = open_forge(Config().replace("forge", kind="github"), tmp_path)
    assert type(gh).__name__ == "GitHubForge" and gh.branch_prefix == "darwin/"


def test_states_read_back_as_enums_and_unknown_ones_are_refused(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path)
    pr = forge.upsert_pr("darwin/a", "a", "b")
    assert pr.state is PRState.OPEN
    closed = forge.close_pr("darwin/a", "culled")
    assert closed is not None and closed.state is PRState.CLOSED
    assert LocalForge(tmp_path).get_pr("darwin/a").state is PRState.CLOSED  # from the JSON file
    issue = forge.close_issue(forge.upsert_issue("k=1", "t", "b").number, CloseReason.NOT_PLANNED)
    assert (issue.state, issue.state_reason) == (IssueState.CLOSED, "not_planned")
    forge.set_status("abc123", "ctx", StatusState.SUCCESS, "fine")
    assert forge.get_statuses("abc123")[0].state is StatusState.SUCCESS
    with pytest.raises(ValueError):
        replace(pr, state="reopened")
    with pytest.raises(ValueError):
        Status("ctx", "green", "")
