"""GitHubForge's request economy: what its writes send, and that nothing remembered misleads it.

The requests are read from the loopback proxy's log in front of the emulator.
"""

from __future__ import annotations

import re

import pytest
from forge_emulator import Fault
from forge_harness import GitHubHarness

from darwin_bot.forge import FITNESS_CONTEXT

pytestmark = pytest.mark.timeout(60)

A, B, C = "darwin/g001-000", "darwin/g001-001", "darwin/g001-002"
AGENT = ("darwin:agent",)


def _sent(github: GitHubHarness) -> list[str]:
    """The requests since the last clear, as ``METHOD path`` under the repository."""
    out = []
    for method, path, _ in github.emulator.proxy.log:
        path = re.sub(r"^/repos/[^/]+/[^/]+/?", "", path.split("?", 1)[0])
        out.append(f"{method} " + re.sub(r"/\d+", "/N", path))
    return out


def test_writes_after_a_listing_send_no_reads(github: GitHubHarness) -> None:
    for branch in (A, B, C):
        github.make_branch(branch, f"# {branch}\n")
    forge = github.forge
    a = forge.upsert_pr(A, "a", "body a", labels=AGENT)
    forge.upsert_pr(B, "b", "body b", labels=AGENT)
    github.emulator.proxy.clear()

    assert [p.branch for p in forge.list_prs(label="darwin:agent")] == [A, B]
    made = forge.upsert_pr(C, "c", "body c", labels=AGENT)
    updated = forge.upsert_pr(A, "a", "metrics of a", labels=AGENT)
    unchanged = forge.upsert_pr(A, "a", "metrics of a", labels=AGENT)
    closed = forge.close_pr(B, "Culled in generation 1.")

    assert _sent(github) == [
        "GET pulls",  # the one listing
        "POST pulls",  # a new PR: opened, then labelled (an issues endpoint)
        "POST issues/N/labels",
        "PATCH pulls/N",  # the update answers with the PR: no re-read
        "POST issues/N/comments",  # a PR this process opened has no comment to look for
        "PATCH pulls/N",
    ]
    assert made.labels == AGENT and made.state == "open"
    assert updated.number == a.number and updated.body.startswith("metrics of a")
    assert unchanged == updated
    assert closed is not None and closed.state == "closed"
    assert forge.get_pr(A) == updated and forge.get_pr(C) == made
    fresh = github.fresh_forge()
    assert fresh.get_pr(A) == updated  # what the server holds is what was remembered
    assert [p.branch for p in fresh.list_prs()] == [A, C]
    assert len(fresh.list_comments(closed.number)) == 1


def test_a_retry_after_a_lost_answer_trusts_nothing_remembered(github: GitHubHarness) -> None:
    github.make_branch(A, "# a\n")
    github.make_branch(B, "# b\n")
    forge = github.forge
    b = forge.upsert_pr(B, "b", "body b")  # opened here: its comments are known (none)
    assert [p.branch for p in forge.list_prs()] == [B]  # the listing says: A has no PR
    proxy = github.emulator.proxy
    proxy.clear()
    # The server carries out each write once, then its answer is lost (502).
    proxy.inject(Fault(502, method="POST", path=r"/pulls$", forward=True))
    proxy.inject(Fault(502, method="POST", path=r"/comments$", forward=True))

    a = forge.upsert_pr(A, "a", "body a")
    closed = forge.close_pr(B, "Culled in generation 1.")

    posts = [(p.rsplit("/", 1)[-1], s) for m, p, s in proxy.log if m == "POST"]
    assert posts == [("pulls", 502), ("comments", 502)], "each write was sent once"
    assert sorted((p.branch, p.number) for p in forge.list_prs(state="all")) == [
        (A, a.number),
        (B, b.number),
    ], "one PR per branch: the retry looked before opening again"
    assert closed is not None and closed.state == "closed"
    assert len(forge.list_comments(b.number)) == 1, "the retry found the comment it had posted"


def test_a_pr_closed_since_the_listing_is_not_mistaken_for_open(github: GitHubHarness) -> None:
    github.make_branch(A, "# a\n")
    forge = github.forge
    first = forge.upsert_pr(A, "a", "body a")
    forge.list_prs()
    github.human_repo.get_pull(first.number).edit(state="closed")  # a human closes it meanwhile

    again = forge.upsert_pr(A, "a", "new body")

    assert again.state == "open" and again.number != first.number
    assert github.fresh_forge().get_pr(A) == again


def test_a_check_run_is_remembered_and_never_duplicated(github: GitHubHarness) -> None:
    sha = github.make_branch(A, "# a\n")
    forge = github.forge
    forge.set_status(sha, FITNESS_CONTEXT, "pending", "evaluating")
    github.emulator.proxy.clear()
    forge.set_status(sha, FITNESS_CONTEXT, "success", "rank 1/3")
    assert _sent(github) == ["PATCH check-runs/N"]  # its id is known: no lookup

    fresh = github.fresh_forge()
    fresh.set_status(sha, FITNESS_CONTEXT, "failure", "culled")  # a new process looks it up
    runs = list(github.human_repo.get_commit(sha).get_check_runs(check_name=FITNESS_CONTEXT))
    assert len(runs) == 1
    [status] = forge.get_statuses(sha)
    assert (status.state, status.description) == ("failure", "culled")
