"""GitHubForge against GitHub's rules on the emulator: body size, merge settings, the PR probe."""

from __future__ import annotations

import pytest
from forge_emulator import Fault
from forge_harness import GitHubHarness

from darwin_bot.errors import ForgeAuthError, ForgeError
from darwin_bot.forge import MAX_BODY_CHARS, agent_marker_key, has_marker

BRANCH = "darwin/g001-000"


def test_a_body_over_githubs_limit_is_cut_with_a_note_and_keeps_its_marker(
    github: GitHubHarness,
) -> None:
    github.make_branch(BRANCH, "lr = 3e-4\n")
    pr = github.forge.upsert_pr(BRANCH, "long", "x" * (MAX_BODY_CHARS + 5000))
    assert len(pr.body) <= MAX_BODY_CHARS
    assert "cut here: GitHub takes at most 65536 characters" in pr.body
    assert has_marker(pr.body, agent_marker_key(BRANCH))
    again = github.fresh_forge().upsert_pr(BRANCH, "long", "x" * (MAX_BODY_CHARS + 5000))
    assert again.number == pr.number, "found again by its marker"
    comment = github.forge.upsert_comment(pr.number, "note", "y" * (MAX_BODY_CHARS + 1))
    assert len(comment.body) <= MAX_BODY_CHARS and has_marker(comment.body, "note")


@pytest.mark.parametrize(
    "settings",
    [
        {"allow_merge_commit": False, "allow_rebase_merge": False},  # squash only
        {"allow_merge_commit": False, "allow_squash_merge": False},  # rebase only
    ],
    ids=["squash-only", "rebase-only"],
)
def test_merge_uses_a_method_the_repository_allows_pinned_to_the_evaluated_head(
    github: GitHubHarness, settings: dict[str, bool]
) -> None:
    github.emulator._admin("PATCH", f"/repos/{github.repository}", settings)
    head = github.make_branch(BRANCH, "lr = 3e-4\n")
    github.forge.upsert_pr(BRANCH, "champion", "body", draft=False)
    with pytest.raises(ForgeError, match="not the evaluated commit"):
        github.forge.merge_pr(BRANCH, "promote", sha="0" * 40)
    sha = github.forge.merge_pr(BRANCH, "promote", sha=head)
    assert github.fresh_forge().get_pr(BRANCH).state == "merged"
    assert github.forge.merge_pr(BRANCH, "promote", sha=head) == sha  # idempotent


def test_the_pr_probe_names_the_actions_setting_and_opens_nothing(github: GitHubHarness) -> None:
    github.forge.check_pull_requests()  # the setting is on: no error
    assert github.forge.list_prs(state="all") == []
    github.emulator.proxy.inject(
        Fault(403, "POST", r"/pulls$", body={
            "message": "GitHub Actions is not permitted to create or approve pull requests."})
    )  # fmt: skip
    with pytest.raises(ForgeAuthError, match="Allow GitHub Actions to create and approve"):
        github.forge.check_pull_requests()
    # A 403 for a missing permission is left to the real write, where it is named as such.
    github.emulator.proxy.inject(
        Fault(403, "POST", r"/pulls$", body={"message": "Resource not accessible by integration"})
    )
    github.forge.check_pull_requests()
