"""Issues (the HITL requests and the dashboard): upserted by hidden marker, listed, closed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from github.Issue import Issue as GhIssue

from darwin_bot.errors import ForgeNotFound
from darwin_bot.forge.base import (
    ANY_STATE,
    CLOSE_REASONS,
    ISSUE_FILTERS,
    CloseReason,
    Issue,
    IssueState,
    check_choice,
    has_marker,
    marker,
)
from darwin_bot.forge.github.client import fit_body, marked_body
from darwin_bot.forge.github.threads import Threads


class Issues(Threads):
    """Issues, never PRs (GitHub lists both as issues: PRs are filtered out)."""

    def _find_issue(self, key: str, label: str | None) -> GhIssue | None:
        scope: dict[str, Any] = {"labels": [label]} if label else {}
        for issue in self._repo.get_issues(state=ANY_STATE, **scope):
            if issue.pull_request is None and has_marker(issue.body, key):
                return issue
        return None

    def upsert_issue(self, key: str, title: str, body: str, labels: Iterable[str] = ()) -> Issue:
        labels = tuple(labels)
        body = marked_body(body, key)

        def op() -> Issue:
            self._ensure_labels(labels)
            issue = self._find_issue(key, labels[0] if labels else None)
            if issue is None:
                made = self._repo.create_issue(title=title, body=body, labels=list(labels))
                return self._issue(made, with_comments=False)
            if issue.title != title or (issue.body or "") != body:
                issue.edit(title=title, body=body)
            have = {label.name for label in issue.labels}
            missing = [name for name in labels if name not in have]
            if missing:
                issue.add_to_labels(*missing)
            return self._issue(self._repo.get_issue(issue.number))

        return self._call(f"open or update issue {marker(key)}", op)

    def update_issue(self, number: int, body: str) -> Issue:
        """Replace the body of issue ``number``."""
        body = fit_body(body)

        def op() -> Issue:
            issue = self._repo.get_issue(number)
            issue.edit(body=body)
            return self._issue(issue)

        return self._call(f"update issue #{number}", op)

    def find_issue(self, key: str, label: str | None = None) -> Issue | None:
        def op() -> Issue | None:
            issue = self._find_issue(key, label)
            return None if issue is None else self._issue(issue)

        return self._call(f"find issue {marker(key)}", op)

    def get_issue(self, number: int) -> Issue:
        def op() -> Issue:
            issue = self._repo.get_issue(number)
            if issue.pull_request is not None:
                raise ForgeNotFound(f"#{number} is a pull request, not an issue")
            return self._issue(issue)

        return self._call(f"read issue #{number}", op)

    def list_issues(self, label: str | None = None, state: str = ANY_STATE) -> list[Issue]:
        check_choice("state", state, ISSUE_FILTERS)
        scope: dict[str, Any] = {"labels": [label]} if label else {}

        def op() -> list[Issue]:
            issues = self._repo.get_issues(state=state, direction="asc", **scope)
            found = [self._issue(i) for i in issues if i.pull_request is None]
            return sorted(found, key=lambda i: i.number)

        return self._call(f"list issues labelled {label!r}", op)

    def close_issue(self, number: int, reason: str = CloseReason.COMPLETED) -> Issue:
        check_choice("close reason", reason, CLOSE_REASONS)

        def op() -> Issue:
            issue = self._repo.get_issue(number)
            if issue.state != IssueState.CLOSED:
                issue.edit(state=IssueState.CLOSED.value, state_reason=str(reason))
            return self._issue(issue)

        return self._call(f"close issue #{number}", op)
