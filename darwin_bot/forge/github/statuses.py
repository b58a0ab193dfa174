"""Commit statuses, or check runs where the server has no statuses API."""

from __future__ import annotations

from typing import Any

from github import GithubException

from darwin_bot.forge.base import STATUS_STATES, Status, StatusState, check_choice
from darwin_bot.forge.github.client import GitHubClient

_STATE_PREFIX = "darwin-state:"


class Statuses(GitHubClient):
    """``set_status``/``get_statuses`` on the statuses API, else on check runs (found on first use)."""

    # -- statuses -----------------------------------------------------------------------------

    def set_status(
        self, sha: str, context: str, state: str, description: str, *, new: bool = False
    ) -> None:
        check_choice("status state", state, STATUS_STATES)
        description = description[:140]  # GitHub's limit

        def op() -> None:
            if self._status_api != "checks":
                try:
                    self._gh.requester.requestJsonAndCheck(
                        "POST",
                        f"{self._repo.url}/statuses/{sha}",
                        input={"state": state, "context": context, "description": description},
                    )
                    self._status_api = "statuses"
                    return
                except GithubException as exc:
                    if exc.status != 404 or self._status_api == "statuses":
                        raise
                    self._status_api = "checks"
            self._set_check_run(sha, context, state, description, new=new)

        self._call(f"set status {context} on {sha[:12]}", op)

    def _set_check_run(
        self, sha: str, context: str, state: str, description: str, *, new: bool = False
    ) -> None:
        fields: dict[str, Any] = {
            "external_id": f"{_STATE_PREFIX}{state}",
            "output": {"title": description or state, "summary": description or state},
        }
        if state == StatusState.PENDING:
            fields["status"] = "in_progress"
        else:
            fields["status"] = "completed"
            fields["conclusion"] = "success" if state == StatusState.SUCCESS else "failure"
        key = (sha, context)
        run_id = self._check_runs.get(key)
        if run_id is None and not new:  # new: the caller vouches there is none to find
            runs = list(self._repo.get_commit(sha).get_check_runs(check_name=context))
            run_id = runs[0].id if runs else None
        if run_id is None:
            made = self._rest("POST", "check-runs", {"name": context, "head_sha": sha, **fields})
            run_id = int(made["id"])
        else:
            self._rest("PATCH", f"check-runs/{run_id}", fields)
        self._check_runs[key] = run_id

    def get_statuses(self, sha: str) -> list[Status]:
        def op() -> list[Status]:
            if self._status_api != "checks":
                try:
                    combined = self._repo.get_commit(sha).get_combined_status()
                    statuses = {
                        s.context: Status(s.context, s.state, s.description or "")
                        for s in combined.statuses
                    }
                    return [statuses[c] for c in sorted(statuses)]
                except GithubException as exc:
                    if exc.status != 404 or self._status_api == "statuses":
                        raise
                    self._status_api = "checks"
            found: dict[str, Status] = {}
            for run in self._repo.get_commit(sha).get_check_runs():
                ext = run.external_id or ""
                if ext.startswith(_STATE_PREFIX):
                    state = ext[len(_STATE_PREFIX) :]
                elif run.status != "completed":
                    state = StatusState.PENDING
                else:
                    state = (
                        StatusState.SUCCESS if run.conclusion == "success" else StatusState.FAILURE
                    )
                found.setdefault(run.name, Status(run.name, state, run.output.title or ""))
            return [found[c] for c in sorted(found)]

        return self._call(f"read statuses of {sha[:12]}", op)
