"""GitHubForge under failure: faults injected by the loopback proxy in front of the emulator."""

from __future__ import annotations

import time

import pytest
from forge_emulator import Fault, free_port
from forge_harness import GitHubHarness

from darwin_bot.errors import (
    ForgeAuthError,
    ForgeError,
    ForgeNotFound,
    ForgeTransientError,
    RunStopped,
)
from darwin_bot.forge import DRAFT_LABEL

pytestmark = pytest.mark.timeout(60)

BRANCH = "darwin/g001-000"


def _answered(github: GitHubHarness, method: str, fragment: str) -> list[int]:
    return [s for m, p, s in github.emulator.proxy.log if m == method and fragment in p]


def test_a_502_then_success_is_retried(github: GitHubHarness) -> None:
    github.make_branch(BRANCH, "lr = 1e-4\n")
    github.emulator.proxy.inject(Fault(502, method="POST", path=r"/pulls$"))

    pr = github.forge.upsert_pr(BRANCH, "g001-000", "body")

    assert _answered(github, "POST", "/pulls") == [502, 201]
    assert len(github.sleeps) == 1 and github.sleeps[0] < 1.0  # backoff, not a server wait
    assert [p.number for p in github.forge.list_prs()] == [pr.number]


def test_a_secondary_rate_limit_honours_retry_after(github: GitHubHarness) -> None:
    issue = github.forge.upsert_issue("test=rate", "t", "b", labels=("darwin:test",))
    github.emulator.proxy.inject(
        Fault(
            403,
            method="POST",
            path=r"/comments$",
            headers={"Retry-After": "7"},
            body={"message": "You have exceeded a secondary rate limit. Please wait."},
        )
    )

    github.forge.upsert_comment(issue.number, "note", "after the limit")

    assert _answered(github, "POST", "/comments") == [403, 201]
    assert github.sleeps == [7.0]
    assert len(github.forge.list_comments(issue.number)) == 1


def test_the_primary_limit_waits_for_its_reset(github: GitHubHarness) -> None:
    reset = int(time.time()) + 20
    github.emulator.proxy.inject(
        Fault(
            403,
            method="GET",
            path=r"/issues",
            headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
            body={"message": "API rate limit exceeded for user."},
        )
    )
    assert github.forge.list_issues(label="darwin:test") == []
    assert len(github.sleeps) == 1 and 15.0 <= github.sleeps[0] <= 22.0


def test_a_wait_over_the_limit_gives_up_at_once(github: GitHubHarness) -> None:
    forge = github.make_forge(max_wait_s=60.0)
    github.emulator.proxy.inject(
        Fault(429, path=r"/issues", headers={"Retry-After": "3600"}, body={"message": "slow down"})
    )
    with pytest.raises(RunStopped, match="wait 3600s"):
        forge.list_issues(label="darwin:test")
    assert github.sleeps == []


def test_persistent_5xx_becomes_a_transient_error(github: GitHubHarness) -> None:
    github.emulator.proxy.inject(Fault(503, path=r"/issues", times=10))
    with pytest.raises(ForgeTransientError, match="gave up after 4 attempts"):
        github.forge.list_issues(label="darwin:test")
    assert len(github.sleeps) == 3
    assert github.sleeps == sorted(github.sleeps)  # exponential backoff grows


@pytest.mark.parametrize(
    ("status", "message", "error"),
    [
        (401, "Bad credentials", ForgeAuthError),
        (403, "Resource not accessible by integration", ForgeAuthError),
        (404, "Not Found", ForgeNotFound),
        (422, "Validation Failed", ForgeError),
    ],
)
def test_permanent_errors_map_to_the_darwin_tree_without_retry(
    github: GitHubHarness, status: int, message: str, error: type[ForgeError]
) -> None:
    github.emulator.proxy.inject(Fault(status, path=r"/issues", body={"message": message}))
    with pytest.raises(error, match=str(status)) as info:
        github.forge.list_issues(label="darwin:test")
    assert type(info.value) is error
    assert github.sleeps == []
    assert info.value.__cause__ is not None  # mapped with `raise ... from exc`


def test_an_unreachable_server_is_transient(github: GitHubHarness) -> None:
    from darwin_bot.forge import GitHubForge
    from darwin_bot.forge.retry import RetryPolicy

    sleeps: list[float] = []
    forge = GitHubForge(
        github.repository,
        "token",
        base_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        retry=RetryPolicy(attempts=2, base_delay_s=0.01, sleep=sleeps.append),
        seconds_between_requests=0,
        seconds_between_writes=0,
        timeout_s=2,
    )
    with pytest.raises(ForgeTransientError, match="cannot reach GitHub"):
        forge.list_issues()
    assert len(sleeps) == 1


def test_draft_prs_unsupported_degrade_to_a_label(github: GitHubHarness) -> None:
    github.make_branch(BRANCH, "lr = 5e-4\n")
    github.emulator.proxy.inject(
        Fault(
            422,
            method="POST",
            path=r"/pulls$",
            body={"message": "Draft pull requests are not supported in this repository."},
        )
    )
    pr = github.forge.upsert_pr(BRANCH, "g001-000", "body", labels=("darwin:agent",), draft=True)
    assert not pr.draft and DRAFT_LABEL in pr.labels and "darwin:agent" in pr.labels

    ready = github.forge.mark_ready(BRANCH)
    assert DRAFT_LABEL not in ready.labels and "darwin:agent" in ready.labels


def test_config_errors_say_what_to_do() -> None:
    from darwin_bot.errors import ConfigError
    from darwin_bot.forge import GitHubForge

    with pytest.raises(ConfigError, match="GITHUB_REPOSITORY"):
        GitHubForge.from_env(env={"GITHUB_TOKEN": "x"})
    with pytest.raises(ConfigError, match="GITHUB_TOKEN"):
        GitHubForge.from_env(env={"GITHUB_REPOSITORY": "o/r"})
    forge = GitHubForge.from_env(
        env={"GITHUB_TOKEN": "x", "GITHUB_REPOSITORY": "o/r", "GITHUB_API_URL": "http://h:1"}
    )
    assert forge.repository == "o/r" and forge.owner == "o"
