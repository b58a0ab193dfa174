"""GitHubForge: the Forge protocol on the GitHub REST API, through PyGithub.

Boundaries:

* PyGithub's own retry is off (``retry=None``): :class:`RetryPolicy` is the one
  policy. 5xx, connection failures, and rate limits (403/429 that say "rate
  limit", carry ``Retry-After``, or show ``X-RateLimit-Remaining: 0``) are
  retried, honouring ``Retry-After`` and ``X-RateLimit-Reset``; anything else
  fails at once.
* Every PyGithub and ``requests`` exception is mapped to the DarwinError tree
  here: ``ForgeNotFound`` (404), ``ForgeAuthError`` (401, 403 that is not a rate
  limit), ``ForgeTransientError`` (retries exhausted), ``ForgeError`` (the rest).
* A public method is retried as a whole, so each one is written as an upsert
  that converges when it runs again after a failure half-way.

Degradations, where a server lacks an API (GitHub Enterprise, the ``emulate``
test server, private repositories on free plans):

* draft PRs refused (422) -> the PR is opened ready, labelled ``darwin:draft``;
* ready-for-review via GraphQL missing (404) -> ``PATCH {"draft": false}``;
* commit statuses missing (404) -> a check run named after the context, the
  exact state kept in its ``external_id``.

Request economy (a generation touches every agent's PR; GitHub meters requests):

* writes use the object the server answered with, never a re-read;
* the open PRs under the prefix, once listed by :meth:`GitHubForge.list_prs`,
  are kept current by every write, so later lookups by branch cost nothing;
* a PR opened by this process has no comments but the ones it posts, and a
  check run it created or found keeps its id: those are remembered too.

What is remembered only saves lookups: a process without it (a fresh CI step)
asks the server, and every write is still an upsert. After any failure, a retry
included, everything remembered is dropped, since the failed attempt may have
written. Requests stay sequential on purpose: GitHub asks integrations not to
make concurrent requests (secondary rate limits).
"""

from __future__ import annotations

import os
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

import requests
from github import Auth, Consts, Github, GithubException
from github.Issue import Issue as GhIssue
from github.PullRequest import PullRequest as GhPull

from darwin_bot.errors import (
    ConfigError,
    ForgeAuthError,
    ForgeError,
    ForgeNotFound,
    ForgeTransientError,
)
from darwin_bot.forge.base import (
    CLOSE_REASONS,
    DRAFT_LABEL,
    MAX_BODY_CHARS,
    STATUS_STATES,
    Comment,
    Issue,
    PullRequest,
    Status,
    agent_marker_key,
    check_choice,
    check_prefix,
    has_marker,
    marker,
    with_marker,
)
from darwin_bot.forge.retry import GaveUp, RetryPolicy, Transient

T = TypeVar("T")

_REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_STATE_PREFIX = "darwin-state:"
# GitHub asks to wait at least a minute after a secondary rate limit that names no wait.
SECONDARY_LIMIT_WAIT_S = 60.0


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def _message(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    msg = str(data.get("message") or exc.message or "")
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        details = [e.get("message") or e.get("code") for e in errors if isinstance(e, dict)]
        msg = f"{msg} ({'; '.join(str(d) for d in details if d)})" if details else msg
    return msg


def classify(exc: Exception, now: Callable[[], float] = time.time) -> Transient | None:
    """Transient (worth a retry, with the server's advice) or None (fail at once)."""
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return Transient(f"cannot reach GitHub: {exc}")
    if not isinstance(exc, GithubException):
        return None
    status, headers, msg = exc.status, exc.headers, _message(exc).lower()
    if status >= 500:
        return Transient(f"GitHub answered {status}")
    if status not in (403, 429):
        return None
    retry_after = _header(headers, "retry-after")
    if retry_after is not None:
        try:
            return Transient(f"GitHub rate limit ({status})", wait_s=float(retry_after))
        except ValueError:  # an HTTP date: rare enough to fall back to the default wait
            return Transient(f"GitHub rate limit ({status})", wait_s=SECONDARY_LIMIT_WAIT_S)
    if _header(headers, "x-ratelimit-remaining") == "0":
        reset = _header(headers, "x-ratelimit-reset")
        wait = max(0.0, float(reset) - now()) + 1.0 if reset and reset.isdigit() else None
        return Transient("GitHub API rate limit exhausted", wait_s=wait)
    if "rate limit" in msg or status == 429:
        return Transient(f"GitHub secondary rate limit ({status})", wait_s=SECONDARY_LIMIT_WAIT_S)
    return None


def map_error(exc: GithubException, what: str) -> ForgeError:
    """The DarwinError for a permanent GitHub failure while doing ``what``."""
    status, msg = exc.status, _message(exc)
    if status == 401:
        return ForgeAuthError(f"{what}: GitHub refused the token (401 {msg}); check GITHUB_TOKEN")
    if status == 403:
        return ForgeAuthError(
            f"{what}: GitHub refused the request (403 {msg}); the token needs "
            "contents, pull-requests, issues and statuses write permission"
        )
    if status == 404:
        return ForgeNotFound(f"{what}: not found on GitHub (404 {msg})")
    return ForgeError(f"{what}: GitHub answered {status}: {msg}")


class GitHubForge:
    """The Forge protocol on GitHub. ``repository`` is ``owner/name``."""

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
        self._status_api: str | None = None  # "statuses" or "checks", found on first use
        # What this process knows (see "Request economy"); ``_forget`` drops it.
        self._open_prs: dict[str, PullRequest] | None = None  # complete once listed
        self._bot_comments: dict[int, dict[str, Comment]] = {}  # by number, then marker key
        self._check_runs: dict[tuple[str, str], int] = {}  # (sha, context) -> check run id

    @classmethod
    def from_env(
        cls,
        repository: str = "",
        base_url: str = "",
        branch_prefix: str = "darwin/",
        default_branch: str = "",
        env: Mapping[str, str] | None = None,
    ) -> GitHubForge:
        """Build from config values, falling back to the environment GitHub Actions sets.

        Token: ``GITHUB_TOKEN`` (or ``GH_TOKEN``); repository: ``GITHUB_REPOSITORY``;
        API URL: ``GITHUB_API_URL`` (GitHub Enterprise runners set it).
        ``DARWIN_GITHUB_THROTTLE=0`` turns off PyGithub's spacing of requests
        (meant for an emulator on loopback; GitHub itself wants the spacing).
        """
        env = os.environ if env is None else env
        throttle = env.get("DARWIN_GITHUB_THROTTLE", "1")
        if throttle not in ("0", "1"):
            raise ConfigError(f"DARWIN_GITHUB_THROTTLE must be 0 or 1, not {throttle!r}")
        spacing = (
            {} if throttle == "1" else {"seconds_between_requests": 0, "seconds_between_writes": 0}
        )
        return cls(
            repository or env.get("GITHUB_REPOSITORY", ""),
            env.get("GITHUB_TOKEN") or env.get("GH_TOKEN", ""),
            base_url=base_url or env.get("GITHUB_API_URL") or None,
            branch_prefix=branch_prefix,
            default_branch=default_branch,
            **spacing,
        )

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
            raise ForgeTransientError(f"{what}: {exc}") from exc.__cause__
        except GithubException as exc:
            raise map_error(exc, what) from exc
        except requests.RequestException as exc:
            raise ForgeError(f"{what}: request to GitHub failed: {exc}") from exc

    # -- conversions ----------------------------------------------------------------------

    @staticmethod
    def _pr(pr: GhPull) -> PullRequest:
        state = "merged" if pr.merged_at is not None else pr.state
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

    @staticmethod
    def _comments(issue: GhIssue) -> tuple[Comment, ...]:
        if not issue.comments:  # the count: skip a request when there are none
            return ()
        return tuple(
            Comment(id=c.id, body=c.body or "", author=c.user.login if c.user else "")
            for c in issue.get_comments()
        )

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

    # -- labels ---------------------------------------------------------------------------

    def _ensure_labels(self, names: Iterable[str]) -> None:
        """Create the missing labels among ``names`` (the repository's labels listed once)."""
        wanted = [name for name in names if name]
        if not wanted:
            return
        if self._labels is None:
            self._labels = {label.name for label in self._repo.get_labels()}
        for name in wanted:
            if name in self._labels:
                continue
            try:
                self._repo.create_label(name, "ededed", "darwin-bot")
            except GithubException as exc:
                # 422 "already_exists": made by someone else since we listed: fine.
                if exc.status != 422:
                    raise
            self._labels.add(name)

    def ensure_label(self, name: str, color: str = "ededed", description: str = "") -> None:
        def op() -> None:
            try:
                self._repo.get_label(name)
            except GithubException as exc:
                if exc.status != 404:
                    raise
                try:
                    self._repo.create_label(name, color, description)
                except GithubException as exc2:
                    if exc2.status != 422:
                        raise
            if self._labels is not None:
                self._labels.add(name)

        self._call(f"ensure label {name!r}", op)

    def _add_labels(self, number: int, names: list[str]) -> tuple[str, ...]:
        """Add ``names`` to issue or PR ``number``; its labels after, from the answer."""
        self._ensure_labels(names)
        return self._label_names(self._rest("POST", f"issues/{number}/labels", names))

    def _remove_label(self, number: int, name: str) -> tuple[str, ...] | None:
        """Remove ``name``; the labels left, or None if it was not there (the wanted state)."""
        try:
            left = self._rest(
                "DELETE", f"issues/{number}/labels/{urllib.parse.quote(name, safe='')}"
            )
        except GithubException as exc:
            if exc.status != 404:
                raise
            return None
        return self._label_names(left)

    def _known_pr(self, number: int) -> PullRequest | None:
        if self._open_prs is None:
            return None
        return next((pr for pr in self._open_prs.values() if pr.number == number), None)

    def set_labels(
        self, number: int, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> tuple[str, ...]:
        add, remove = tuple(add), tuple(remove)

        def op() -> tuple[str, ...]:
            # Straight to the labels endpoints: they serve issues and PRs alike
            # (``GET /issues/N`` of a PR is not served everywhere).
            known = self._known_pr(number)
            labels = None if known is None else known.labels
            missing = [name for name in add if labels is None or name not in labels]
            if missing:
                labels = self._add_labels(number, missing)
            for name in remove:
                if labels is not None and name not in labels:
                    continue
                left = self._remove_label(number, name)
                if left is not None:
                    labels = left
                elif labels is not None:  # not there after all: what was known is stale
                    labels = tuple(n for n in labels if n != name)
            if labels is None:
                labels = self._label_names(self._rest("GET", f"issues/{number}/labels"))
            if known is not None:
                self._remember(replace(known, labels=labels))
            return labels

        return self._call(f"set labels on #{number}", op)

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
        pulls = self._pulls(branch, "open")
        return self._pr(pulls[0]) if pulls else None

    def _remember(self, pr: PullRequest) -> PullRequest:
        """Keep the listing of open PRs current after a write that answered ``pr``."""
        if self._open_prs is not None:
            if pr.state == "open":
                self._open_prs[pr.branch] = pr
            else:
                self._open_prs.pop(pr.branch, None)
        return pr

    def upsert_pr(
        self,
        branch: str,
        title: str,
        body: str,
        labels: Iterable[str] = (),
        draft: bool = True,
    ) -> PullRequest:
        check_prefix(branch, self.branch_prefix)
        body = with_marker(body, agent_marker_key(branch))
        _check_body(body)
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
                    msg = _message(exc).lower()
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
                if pr.state != "open" and not relisted:
                    self._open_prs = None  # closed since this process listed: ask
                    return op(relisted=True)
            missing = [name for name in wanted if name not in pr.labels]
            if missing:
                pr = replace(pr, labels=self._add_labels(pr.number, missing))
            return self._remember(pr)

        return self._call(f"open or update the PR of {branch}", op)

    def get_pr(self, branch: str) -> PullRequest | None:
        def op() -> PullRequest | None:
            # An open PR is its branch's newest: the bot opens one PR per agent branch.
            if self._open_prs is not None and branch in self._open_prs:
                return self._open_prs[branch]
            pulls = self._pulls(branch, "all")
            return self._pr(pulls[0]) if pulls else None

        return self._call(f"read the PR of {branch}", op)

    def list_prs(self, label: str | None = None, state: str = "open") -> list[PullRequest]:
        check_choice("state", state, ("open", "closed", "merged", "all"))
        api_state = "closed" if state == "merged" else state

        def op() -> list[PullRequest]:
            pulls = self._repo.get_pulls(state=api_state, sort="created", direction="asc")
            listed = sorted(
                (self._pr(pr) for pr in pulls if pr.head.ref.startswith(self.branch_prefix)),
                key=lambda p: p.number,
            )
            if api_state != "closed":  # every open PR was listed: keep them for lookups
                self._open_prs = {pr.branch: pr for pr in listed if pr.state == "open"}
            return [
                pr
                for pr in listed
                if state in ("all", pr.state) and (label is None or label in pr.labels)
            ]

        return self._call("list PRs", op)

    def close_pr(self, branch: str, comment: str = "") -> PullRequest | None:
        def op() -> PullRequest | None:
            pr = self._open_pr(branch)
            if pr is None:
                done = self._pulls(branch, "all")
                return self._pr(done[0]) if done else None
            if comment:
                self._upsert_comment(pr.number, "closed", comment)
            closed = self._pr_from(self._rest("PATCH", f"pulls/{pr.number}", {"state": "closed"}))
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
            pulls = self._pulls(branch, "all")
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

    def merge_pr(self, branch: str, message: str) -> str:
        def op() -> str:
            pulls = self._pulls(branch, "all")
            if not pulls:
                raise ForgeNotFound(f"no pull request for branch {branch!r}")
            pr = pulls[0]
            if pr.merged_at is not None:
                return str(pr.merge_commit_sha)
            if pr.state != "open":
                raise ForgeError(f"pull request #{pr.number} is closed; reopen it to merge")
            if pr.draft:
                self._ready(pr)
            status = pr.merge(commit_message=message, merge_method="merge")
            if not status.merged:
                raise ForgeError(f"pull request #{pr.number} was not merged: {status.message}")
            if self._open_prs is not None:
                self._open_prs.pop(branch, None)
            return str(status.sha)

        return self._call(f"merge the PR of {branch}", op)

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
        if state == "pending":
            fields["status"] = "in_progress"
        else:
            fields["status"] = "completed"
            fields["conclusion"] = "success" if state == "success" else "failure"
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
                    state = "pending"
                else:
                    state = "success" if run.conclusion == "success" else "failure"
                found.setdefault(run.name, Status(run.name, state, run.output.title or ""))
            return [found[c] for c in sorted(found)]

        return self._call(f"read statuses of {sha[:12]}", op)

    # -- comments and issues ---------------------------------------------------------------------

    def _upsert_comment(self, number: int, key: str, body: str) -> Comment:
        body = with_marker(body, key)
        _check_body(body)
        known = self._bot_comments.get(number)
        if known is not None and key in known:
            have = known[key]
            if have.body != body:
                try:
                    self._rest("PATCH", f"issues/comments/{have.id}", {"body": body})
                except GithubException as exc:
                    if exc.status != 404:
                        raise
                    del self._bot_comments[number]  # deleted by a human: look again
                    return self._upsert_comment(number, key, body)
            made = Comment(have.id, body, have.author)
        elif known is not None:  # all the bot's comments on it are known: none has the key
            data = self._rest("POST", f"issues/{number}/comments", {"body": body})
            made = Comment(int(data["id"]), data.get("body") or body, _login(data))
        else:
            made = self._find_or_post_comment(number, key, body)
        if known is not None:
            known[key] = made
        return made

    def _find_or_post_comment(self, number: int, key: str, body: str) -> Comment:
        issue = self._repo.get_issue(number)  # lazy: no request of its own
        for existing in issue.get_comments():
            if has_marker(existing.body, key):
                if existing.body != body:
                    existing.edit(body)
                return Comment(existing.id, body, existing.user.login if existing.user else "")
        made = issue.create_comment(body)
        return Comment(made.id, made.body or body, made.user.login if made.user else "")

    def upsert_comment(self, number: int, key: str, body: str) -> Comment:
        marker(key)
        return self._call(f"comment on #{number}", lambda: self._upsert_comment(number, key, body))

    def list_comments(self, number: int) -> tuple[Comment, ...]:
        def op() -> tuple[Comment, ...]:
            return tuple(
                Comment(c.id, c.body or "", c.user.login if c.user else "")
                for c in self._repo.get_issue(number).get_comments()
            )

        return self._call(f"read the comments of #{number}", op)

    def _find_issue(self, key: str, label: str | None) -> GhIssue | None:
        scope: dict[str, Any] = {"labels": [label]} if label else {}
        for issue in self._repo.get_issues(state="all", **scope):
            if issue.pull_request is None and has_marker(issue.body, key):
                return issue
        return None

    def upsert_issue(self, key: str, title: str, body: str, labels: Iterable[str] = ()) -> Issue:
        labels = tuple(labels)
        body = with_marker(body, key)
        _check_body(body)

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
        _check_body(body)

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

    def list_issues(self, label: str | None = None, state: str = "all") -> list[Issue]:
        check_choice("state", state, ("open", "closed", "all"))
        scope: dict[str, Any] = {"labels": [label]} if label else {}

        def op() -> list[Issue]:
            issues = self._repo.get_issues(state=state, direction="asc", **scope)
            found = [self._issue(i) for i in issues if i.pull_request is None]
            return sorted(found, key=lambda i: i.number)

        return self._call(f"list issues labelled {label!r}", op)

    def close_issue(self, number: int, reason: str = "completed") -> Issue:
        check_choice("close reason", reason, CLOSE_REASONS)

        def op() -> Issue:
            issue = self._repo.get_issue(number)
            if issue.state != "closed":
                issue.edit(state="closed", state_reason=reason)
            return self._issue(issue)

        return self._call(f"close issue #{number}", op)

    # -- branches ----------------------------------------------------------------------------------

    def delete_branch(self, branch: str) -> bool:
        check_prefix(branch, self.branch_prefix)

        def op() -> bool:
            url = f"{self._repo.url}/git/refs/heads/{urllib.parse.quote(branch)}"
            try:
                # Straight to DELETE: a lazy GitRef would carry the GET-only /git/ref/ URL.
                self._gh.requester.requestJsonAndCheck("DELETE", url)
            except GithubException as exc:
                # 404: no such ref; 422 "Reference does not exist": deleted meanwhile.
                if exc.status in (404, 422):
                    return False
                raise
            return True

        return self._call(f"delete branch {branch}", op)


def _login(data: Mapping[str, Any]) -> str:
    user = data.get("user") or {}
    return str(user.get("login") or "")


def _check_body(body: str) -> None:
    if len(body) > MAX_BODY_CHARS:
        raise ForgeError(
            f"body of {len(body)} characters is over GitHub's limit of {MAX_BODY_CHARS}"
        )
