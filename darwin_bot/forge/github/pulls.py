"""The agents' pull requests: open or update one per branch, close, mark ready, merge."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from github import GithubException
from github.GithubObject import NotSet
from github.PullRequest import PullRequest as GhPull

from darwin_bot.errors import ForgeError, ForgeNotFound
from darwin_bot.forge.base import (
    ANY_STATE,
    CLOSE_COMMENT_KEY,
    DRAFT_LABEL,
    PR_FILTERS,
    PRState,
    PullRequest,
    agent_marker_key,
    check_choice,
    check_prefix,
)
from darwin_bot.forge.github.client import marked_body
from darwin_bot.forge.github.errors import error_message, is_actions_pr_refusal
from darwin_bot.forge.github.threads import Threads


class PullRequests(Threads):
    """One PR per agent branch, found by branch and kept current in what is remembered."""

    # -- pull requests ----------------------------------------------------------------------

    def default_branch(self) -> str:
        if not self._default_branch:
            self._default_branch = self._call(
                "read the default branch", lambda: self._repo.default_branch
            )
        return self._default_branch

    def _pulls(self, branch: str, state: str) -> list[GhPull]:
        """PRs whose head is ``branch`` in this repository, newest first."""
        pulls = self._repo.get_pulls(
            state=state, head=f"{self.owner}:{branch}", sort="created", direction="desc"
        )
        # Servers that ignore ``head`` would hand back every PR: check it.
        return [p for p in pulls if p.head.ref == branch]

    def _open_pr(self, branch: str) -> PullRequest | None:
        """The open PR of ``branch``: from the listing this process keeps, else asked."""
        if self._open_prs is not None:
            return self._open_prs.get(branch)
        pulls = self._pulls(branch, PRState.OPEN)
        return self._pr(pulls[0]) if pulls else None

    def upsert_pr(
        self,
        branch: str,
        title: str,
        body: str,
        labels: Iterable[str] = (),
        draft: bool = True,
    ) -> PullRequest:
        check_prefix(branch, self.branch_prefix)
        body = marked_body(body, agent_marker_key(branch))
        labels = tuple(labels)
        base = self.default_branch()
        fields = {"title": title, "body": body}

        def op(relisted: bool = False) -> PullRequest:
            wanted = list(labels)
            pr = self._open_pr(branch)
            if pr is None:
                try:
                    made = self._rest(
                        "POST", "pulls", {**fields, "head": branch, "base": base, "draft": draft}
                    )
                except GithubException as exc:
                    msg = error_message(exc).lower()
                    if exc.status == 422 and "already exists" in msg and not relisted:
                        self._open_prs = None  # opened since this process listed: ask
                        return op(relisted=True)
                    if not (draft and exc.status == 422 and "draft" in msg):
                        raise
                    # Drafts are not available here: open it ready, labelled as a draft.
                    made = self._rest("POST", "pulls", {**fields, "head": branch, "base": base})
                    wanted.append(DRAFT_LABEL)
                pr = self._pr_from(made)
                self._bot_comments[pr.number] = {}  # a new PR has no comments yet
            elif (pr.title, pr.body) != (title, body):
                pr = self._pr_from(self._rest("PATCH", f"pulls/{pr.number}", fields))
                if pr.state != PRState.OPEN and not relisted:
                    self._open_prs = None  # closed since this process listed: ask
                    return op(relisted=True)
            missing = [name for name in wanted if name not in pr.labels]
            if missing:
                pr = replace(pr, labels=self._add_labels(pr.number, missing))
            return self._remember(pr)

        return self._call(f"open or update the PR of {branch}", op)

    def check_pull_requests(self) -> None:
        """Ask GitHub whether this token may open pull requests, without opening one.

        "Allow GitHub Actions to create and approve pull requests" (Settings, Actions,
        General; an organisation can lock it off) cannot be read with a GITHUB_TOKEN
        (that needs administration rights), so this asks for a PR GitHub can never
        open, from the default branch onto itself: a token that may open PRs is told
        422 (nothing to compare); one that may not is told 403, and that 403 is
        raised as the setting it is. Any other answer is left to the real PR to meet.
        """
        base = self.default_branch()
        probe = {
            "title": "darwin-bot: may this token open pull requests?",
            "head": base,
            "base": base,
            "draft": True,
        }

        def op() -> None:
            try:
                made = self._rest("POST", "pulls", probe)
            except GithubException as exc:
                if exc.status == 422 or (exc.status == 403 and not is_actions_pr_refusal(exc)):
                    return  # the 403 of a missing permission meets the real write, named there
                raise
            # Never expected (head == base); close it rather than leave it open.
            self._rest("PATCH", f"pulls/{made['number']}", {"state": PRState.CLOSED.value})

        self._call("check that pull requests may be opened", op)

    def get_pr(self, branch: str) -> PullRequest | None:
        def op() -> PullRequest | None:
            # An open PR is its branch's newest: the bot opens one PR per agent branch.
            if self._open_prs is not None and branch in self._open_prs:
                return self._open_prs[branch]
            pulls = self._pulls(branch, ANY_STATE)
            return self._pr(pulls[0]) if pulls else None

        return self._call(f"read the PR of {branch}", op)

    def list_prs(self, label: str | None = None, state: str = PRState.OPEN) -> list[PullRequest]:
        check_choice("state", state, PR_FILTERS)
        api_state = PRState.CLOSED if state == PRState.MERGED else state

        def op() -> list[PullRequest]:
            pulls = self._repo.get_pulls(state=api_state, sort="created", direction="asc")
            listed = sorted(
                (self._pr(pr) for pr in pulls if pr.head.ref.startswith(self.branch_prefix)),
                key=lambda p: p.number,
            )
            if api_state != PRState.CLOSED:  # every open PR was listed: keep them for lookups
                self._open_prs = {pr.branch: pr for pr in listed if pr.state == PRState.OPEN}
            return [
                pr
                for pr in listed
                if state in (ANY_STATE, pr.state) and (label is None or label in pr.labels)
            ]

        return self._call("list PRs", op)

    def close_pr(self, branch: str, comment: str = "") -> PullRequest | None:
        def op() -> PullRequest | None:
            pr = self._open_pr(branch)
            if pr is None:
                done = self._pulls(branch, ANY_STATE)
                return self._pr(done[0]) if done else None
            if comment:
                self._upsert_comment(pr.number, CLOSE_COMMENT_KEY, comment)
            closed = self._pr_from(
                self._rest("PATCH", f"pulls/{pr.number}", {"state": PRState.CLOSED.value})
            )
            return self._remember(closed)

        return self._call(f"close the PR of {branch}", op)

    def _ready(self, pr: GhPull) -> None:
        try:
            pr.mark_ready_for_review()  # GraphQL: the only way on github.com
        except GithubException as exc:
            if exc.status != 404:
                raise
            # No GraphQL endpoint (some Enterprise proxies, the emulator): REST field.
            self._gh.requester.requestJsonAndCheck("PATCH", pr.url, input={"draft": False})

    def mark_ready(self, branch: str) -> PullRequest:
        def op() -> PullRequest:
            pulls = self._pulls(branch, ANY_STATE)
            if not pulls:
                raise ForgeNotFound(f"no pull request for branch {branch!r}")
            pr = pulls[0]
            if pr.draft:
                self._ready(pr)
            ready = replace(self._pr(pr), draft=False)
            if DRAFT_LABEL in ready.labels:
                left = self._remove_label(pr.number, DRAFT_LABEL)
                labels = left if left is not None else ready.labels
                ready = replace(ready, labels=tuple(n for n in labels if n != DRAFT_LABEL))
            return self._remember(ready)

        return self._call(f"mark the PR of {branch} ready", op)

    def _merge_methods(self) -> list[str]:
        """The merge methods the repository allows, preferred first (a merge commit keeps
        the champion's own commit in main's history); all three when the server does not say."""
        allowed = [
            method
            for method, flag in (
                ("merge", self._repo.allow_merge_commit),
                ("squash", self._repo.allow_squash_merge),
                ("rebase", self._repo.allow_rebase_merge),
            )
            if flag
        ]
        return allowed or ["merge", "squash", "rebase"]

    def merge_pr(self, branch: str, message: str, *, sha: str | None = None) -> str:
        def op() -> str:
            pulls = self._pulls(branch, ANY_STATE)
            if not pulls:
                raise ForgeNotFound(f"no pull request for branch {branch!r}")
            pr = pulls[0]
            if pr.merged_at is not None:
                return str(pr.merge_commit_sha)
            if pr.state != PRState.OPEN:
                raise ForgeError(f"pull request #{pr.number} is closed; reopen it to merge")
            if sha is not None and pr.head.sha != sha:
                raise ForgeError(
                    f"pull request #{pr.number}: its head {pr.head.sha[:12]} is not the "
                    f"evaluated commit {sha[:12]}; not merged"
                )
            if pr.draft:
                self._ready(pr)
            status = self._merge_allowed(pr, message, sha)
            if not status.merged:
                raise ForgeError(f"pull request #{pr.number} was not merged: {status.message}")
            if self._open_prs is not None:
                self._open_prs.pop(branch, None)
            return str(status.sha)

        return self._call(f"merge the PR of {branch}", op)

    def _merge_allowed(self, pr: GhPull, message: str, sha: str | None) -> Any:
        """Merge with the first method the repository takes; ``sha`` pins the head merged."""
        methods = self._merge_methods()
        for i, method in enumerate(methods):
            try:
                return pr.merge(commit_message=message, merge_method=method, sha=sha or NotSet)
            except GithubException as exc:
                # A setting the server did not report refuses the method: try the next one.
                refused = exc.status in (405, 422) and "not allowed" in error_message(exc)
                if not refused or i + 1 == len(methods):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover
