"""The REST client under :class:`~darwin_bot.forge.github.GitHubForge`: the boundary and what it remembers.

Every public method of the forge runs its request through :meth:`GitHubClient._call`
(the one retry policy, library errors mapped with ``raise ... from``); the
conversions from PyGithub objects to the forge's dataclasses, and the open PRs
this process knows (see "Request economy" in the package docstring), live here
so that the PR, issue, comment and status parts share them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import requests
from github import Auth, Consts, Github, GithubException
from github.Issue import Issue as GhIssue
from github.PullRequest import PullRequest as GhPull

from darwin_bot.errors import ConfigError, ForgeError, ForgeTransientError, RunStopped
from darwin_bot.forge.base import (
    MAX_BODY_CHARS,
    Comment,
    Issue,
    PRState,
    PullRequest,
    marker,
    with_marker,
)
from darwin_bot.forge.github.errors import classify, map_error
from darwin_bot.forge.retry import GaveUp, RetryPolicy

T = TypeVar("T")

# Who a GITHUB_TOKEN writes as.
ACTIONS_BOT_LOGIN = "github-actions[bot]"

_REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class GitHubClient:
    """One repository's REST API through PyGithub, under the retry policy."""

    def __init__(
        self,
        repository: str,
        token: str,
        *,
        base_url: str | None = None,
        branch_prefix: str = "darwin/",
        default_branch: str = "",
        retry: RetryPolicy | None = None,
        timeout_s: int = 30,
        seconds_between_requests: float = Consts.DEFAULT_SECONDS_BETWEEN_REQUESTS,
        seconds_between_writes: float = Consts.DEFAULT_SECONDS_BETWEEN_WRITES,
        login: str = "",
    ) -> None:
        if not _REPO_NAME.match(repository or ""):
            raise ConfigError(
                f"GitHub repository {repository!r} is not 'owner/name': set forge.repository "
                "in darwin.toml or GITHUB_REPOSITORY"
            )
        if not token:
            raise ConfigError("no GitHub token: set GITHUB_TOKEN (or use forge.kind = 'local')")
        self.repository = repository
        self.owner = repository.split("/")[0]
        self.branch_prefix = branch_prefix
        self._default_branch = default_branch
        self._retry = retry or RetryPolicy()
        # PyGithub's throttle spaces writes as GitHub asks (fewer secondary limits);
        # tests against the loopback emulator set both to 0.
        self._gh = Github(
            auth=Auth.Token(token),
            base_url=(base_url or Consts.DEFAULT_BASE_URL).rstrip("/"),
            timeout=timeout_s,
            per_page=100,
            retry=None,
            lazy=True,
            seconds_between_requests=seconds_between_requests or None,
            seconds_between_writes=seconds_between_writes or None,
        )
        self._repo = self._gh.get_repo(repository)
        self._labels: set[str] | None = None
        self._login = login  # the bot's own account, asked on first need when not given
        self._status_api: str | None = None  # "statuses" or "checks", found on first use
        # What this process knows (see "Request economy"); ``_forget`` drops it.
        self._open_prs: dict[str, PullRequest] | None = None  # complete once listed
        self._bot_comments: dict[int, dict[str, Comment]] = {}  # by number, then marker key
        self._check_runs: dict[tuple[str, str], int] = {}  # (sha, context) -> check run id

    def __repr__(self) -> str:
        return f"GitHubForge({self.repository!r})"

    # -- the boundary -------------------------------------------------------------------

    def _forget(self) -> None:
        """Drop what this process remembers about PRs, comments and check runs."""
        self._open_prs = None
        self._bot_comments.clear()
        self._check_runs.clear()

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` under the retry policy; map every library error to a ForgeError.

        A retry, and the caller after a failure, start from what the server says:
        the failed attempt may have written before it failed.
        """
        tries = 0

        def attempt() -> T:
            nonlocal tries
            if tries:
                self._forget()
            tries += 1
            return fn()

        try:
            try:
                return self._retry.run(attempt, classify)
            except BaseException:
                self._forget()
                raise
        except GaveUp as exc:
            if exc.transient.wait_s is not None:
                # GitHub said how long to wait (a rate limit) and it is too long to sit
                # through: stop, nothing decided, and resume when the limit resets.
                raise RunStopped(
                    f"{what}: {exc}; run the workflow again then (nothing was lost)"
                ) from exc.__cause__
            raise ForgeTransientError(f"{what}: {exc}") from exc.__cause__
        except GithubException as exc:
            raise map_error(exc, what) from exc
        except requests.RequestException as exc:
            raise ForgeError(f"{what}: request to GitHub failed: {exc}") from exc

    # -- conversions ----------------------------------------------------------------------

    @staticmethod
    def _pr(pr: GhPull) -> PullRequest:
        state = PRState.MERGED if pr.merged_at is not None else pr.state
        return PullRequest(
            number=pr.number,
            branch=pr.head.ref,
            title=pr.title,
            body=pr.body or "",
            state=state,
            draft=bool(pr.draft),
            labels=tuple(sorted(label.name for label in pr.labels)),
            url=pr.html_url,
            head_sha=pr.head.sha,
        )

    def _pr_from(self, data: Any) -> PullRequest:
        """A PR from the JSON the server answered a write with."""
        return self._pr(self._gh.create_from_raw_data(GhPull, data))

    @staticmethod
    def _label_names(data: Any) -> tuple[str, ...]:
        return tuple(sorted(label["name"] for label in data))

    def _rest(self, verb: str, path: str, body: Any = None) -> Any:
        """One request on this repository's API (``path`` under ``/repos/o/r/``); its JSON."""
        _, data = self._gh.requester.requestJsonAndCheck(
            verb, f"{self._repo.url}/{path}", input=body
        )
        return data

    def requests_left(self) -> tuple[int, int] | None:
        """(requests left, the Unix time they reset) as the last answer said; None before one."""
        remaining, limit = self._gh.requester.rate_limiting
        if limit < 0:
            return None
        return remaining, int(self._gh.requester.rate_limiting_resettime)

    def bot_login(self) -> str:
        """The account this token writes as: the only author whose comments the bot edits.

        A personal token answers ``GET /user``; an installation token (GITHUB_TOKEN, an
        App's) is refused there, and writes as ``github-actions[bot]`` or, for an App,
        as ``<slug>[bot]``, which the workflow passes as ``DARWIN_BOT_LOGIN``.
        """
        if not self._login:
            try:
                self._login = str(
                    self._gh.requester.requestJsonAndCheck("GET", "/user")[1]["login"]
                )
            except GithubException as exc:
                if exc.status not in (401, 403, 404):
                    raise
                self._login = ACTIONS_BOT_LOGIN
        return self._login

    @staticmethod
    def _comments(issue: GhIssue) -> tuple[Comment, ...]:
        if not issue.comments:  # the count: skip a request when there are none
            return ()
        return tuple(comment_of(c) for c in issue.get_comments())

    def _issue(self, issue: GhIssue, with_comments: bool = True) -> Issue:
        return Issue(
            number=issue.number,
            title=issue.title,
            body=issue.body or "",
            labels=tuple(sorted(label.name for label in issue.labels)),
            state=issue.state,
            state_reason=issue.state_reason,
            url=issue.html_url,
            comments=self._comments(issue) if with_comments else (),
        )

    # -- what this process knows -------------------------------------------------------

    def _known_pr(self, number: int) -> PullRequest | None:
        if self._open_prs is None:
            return None
        return next((pr for pr in self._open_prs.values() if pr.number == number), None)

    def _remember(self, pr: PullRequest) -> PullRequest:
        """Keep the listing of open PRs current after a write that answered ``pr``."""
        if self._open_prs is not None:
            if pr.state == PRState.OPEN:
                self._open_prs[pr.branch] = pr
            else:
                self._open_prs.pop(pr.branch, None)
        return pr


def comment_of(c: Any) -> Comment:
    """A forge Comment from PyGithub's IssueComment, with its author's association."""
    return Comment(
        id=c.id,
        body=c.body or "",
        author=c.user.login if c.user else "",
        association=str(getattr(c, "author_association", None) or "NONE"),
    )


def login_of(data: Mapping[str, Any]) -> str:
    user = data.get("user") or {}
    return str(user.get("login") or "")


TRUNCATION_NOTE = (
    "\n\n_(cut here: GitHub takes at most {limit} characters; "
    "the full text is in the run's report artifact and under memory/)_\n"
)


def fit_body(body: str, keep_tail: str = "") -> str:
    """``body`` cut to GitHub's limit with a note saying so; ``keep_tail`` (a marker) stays last.

    A body over the limit is refused whole (422), which would stop a step over
    a long LLM summary; a cut one still says what it is and where the rest is.
    """
    if len(body) <= MAX_BODY_CHARS:
        return body
    note = TRUNCATION_NOTE.format(limit=MAX_BODY_CHARS)
    tail = f"\n{keep_tail}\n" if keep_tail else ""
    room = MAX_BODY_CHARS - len(note) - len(tail)
    return body[:room].rstrip() + note + tail


def marked_body(body: str, key: str) -> str:
    """``body`` with the marker for ``key`` last, cut to GitHub's limit with a note if need be."""
    return fit_body(with_marker(body, key), keep_tail=marker(key))
