"""The local forge's issues (human requests, the dashboard): a part of :class:`LocalForge`.

Kept apart from the PRs, labels and comments in ``local.py`` only for size; the
storage (``_locked``, ``_load``, ``_save``, ``_all``, ``_issue``) is LocalForge's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from darwin_bot.forge.base import (
    ANY_STATE,
    CLOSE_REASONS,
    ISSUE_FILTERS,
    CloseReason,
    Issue,
    IssueState,
    PRState,
    check_choice,
    has_marker,
    with_marker,
)


class LocalIssues:
    """Issues of a LocalForge, found by marker like GitHub's (see :class:`Forge`)."""

    def _find_issue(self, key: str, label: str | None) -> dict[str, Any] | None:
        for rec in self._all("issues"):
            if (label is None or label in rec["labels"]) and has_marker(rec["body"], key):
                return rec
        return None

    def upsert_issue(self, key: str, title: str, body: str, labels: Iterable[str] = ()) -> Issue:
        labels = tuple(labels)
        body = with_marker(body, key)
        self._check_body(body)
        with self._locked() as meta:
            rec = self._find_issue(key, labels[0] if labels else None)
            if rec is None:
                number = meta["next_number"]
                meta["next_number"] = number + 1
                rec = {
                    "number": number,
                    "state": PRState.OPEN,
                    "state_reason": None,
                    "labels": [],
                    "comments": [],
                }
            rec["title"] = title
            rec["body"] = body
            self._add_labels(meta, rec, labels)
            self._save("issues", rec)
        return self._issue(rec)

    def update_issue(self, number: int, body: str) -> Issue:
        """Replace the body of issue ``number`` (as a human editing it would)."""
        self._check_body(body)
        with self._locked():
            rec = self._load("issues", number)
            rec["body"] = body
            self._save("issues", rec)
        return self._issue(rec)

    def find_issue(self, key: str, label: str | None = None) -> Issue | None:
        rec = self._find_issue(key, label)
        return None if rec is None else self._issue(rec)

    def get_issue(self, number: int) -> Issue:
        return self._issue(self._load("issues", number))

    def list_issues(self, label: str | None = None, state: str = ANY_STATE) -> list[Issue]:
        check_choice("state", state, ISSUE_FILTERS)
        return [
            self._issue(rec)
            for rec in self._all("issues")
            if (label is None or label in rec["labels"]) and state in (ANY_STATE, rec["state"])
        ]

    def close_issue(self, number: int, reason: str = CloseReason.COMPLETED) -> Issue:
        check_choice("close reason", reason, CLOSE_REASONS)
        with self._locked():
            rec = self._load("issues", number)
            if rec["state"] != IssueState.CLOSED:
                rec.update(state=IssueState.CLOSED, state_reason=reason)
                self._save("issues", rec)
        return self._issue(rec)
