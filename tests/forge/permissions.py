"""What a job's ``GITHUB_TOKEN`` may do on the REST API: the one endpoint -> permission map.

GitHub gives each job a token with exactly the ``permissions:`` its job (or the
workflow) declares; a permission not named is ``none`` ("If you specify the
access for any of these permissions, all of those that are not specified are
set to none"). A request the token's permissions do not cover is answered
``403 {"message": "Resource not accessible by integration"}``, with the
permissions that would have sufficed in ``X-Accepted-GitHub-Permissions``.

Sources, for every rule below (read 2026-12 with the project's search tool):

* docs.github.com/en/rest/authentication/permissions-required-for-github-apps
  ("Repository permissions for Contents / Pull requests / Issues / Commit
  statuses / Checks / Actions / Metadata"): the GITHUB_TOKEN *is* a GitHub App
  installation token, so the same table applies.
* docs.github.com/en/actions/concepts/security/github_token and
  docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax#permissions:
  the job's ``permissions:`` are the token's, the unnamed ones are ``none``,
  ``metadata: read`` is always granted.
* docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api
  ("Resource not accessible by integration", ``X-Accepted-GitHub-Permissions``).

Endpoints under ``/repos/{owner}/{repo}/issues/{number}...`` serve issues and pull
requests alike; GitHub accepts the ``pull_requests`` permission for them when the
number is a pull request and ``issues`` when it is an issue, so the rule names
both and :class:`Enforcer` decides by asking the server what the number is.

Only the endpoints darwin-bot (PyGithub) and the workflow's ``gh workflow run``
use are listed; a request to anything else is refused, so a new endpoint cannot
slip through untested: add its rule here, with its source.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import yaml

NOT_ACCESSIBLE = "Resource not accessible by integration"
DOCS_URL = "https://docs.github.com/rest/authentication/permissions-required-for-github-apps"


class Level(IntEnum):
    NONE = 0
    READ = 1
    WRITE = 2

    @classmethod
    def parse(cls, text: str) -> Level:
        return {"none": cls.NONE, "read": cls.READ, "write": cls.WRITE}[text]


# The scopes a workflow may name in ``permissions:`` (workflow-syntax#permissions).
SCOPES = (
    "actions", "attestations", "checks", "contents", "deployments", "discussions",
    "id-token", "issues", "models", "packages", "pages", "pull-requests",
    "security-events", "statuses",
)  # fmt: skip


@dataclass(frozen=True)
class Rule:
    """``method`` on a path matching ``pattern`` (after ``/repos/{owner}/{repo}``) needs
    ``level`` of one of ``scopes`` (several: any one of them, see :class:`Enforcer`)."""

    method: str
    pattern: str
    scopes: tuple[str, ...]
    level: Level

    def matches(self, method: str, rest: str) -> bool:
        return method == self.method and re.fullmatch(self.pattern, rest) is not None


R, W = Level.READ, Level.WRITE
_N = r"(?P<number>\d+)"
_ISSUE_OR_PR = ("issues", "pull-requests")

RULES: tuple[Rule, ...] = (
    # Metadata (always granted to a job's token).
    Rule("GET", r"", ("metadata",), R),
    # Contents: branches, the git database, commits, merging a pull request.
    Rule("GET", r"/branches(/.+)?", ("contents",), R),
    Rule("GET", r"/git/(ref|refs|commits|trees|blobs)(/.+)?", ("contents",), R),
    Rule("POST", r"/git/(refs|commits|trees|blobs)", ("contents",), W),
    Rule("PATCH", r"/git/refs/.+", ("contents",), W),
    Rule("DELETE", r"/git/refs/.+", ("contents",), W),
    Rule("GET", r"/commits/[0-9a-f]{40}", ("contents",), R),
    Rule("PUT", rf"/pulls/{_N}/merge", ("contents",), W),
    # Pull requests.
    Rule("GET", rf"/pulls(/{_N})?", ("pull-requests",), R),
    Rule("POST", r"/pulls", ("pull-requests",), W),
    Rule("PATCH", rf"/pulls/{_N}", ("pull-requests",), W),
    # Issues (and the issue side of pull requests: labels, comments).
    Rule("GET", r"/issues", ("issues",), R),
    Rule("POST", r"/issues", ("issues",), W),
    Rule("GET", rf"/issues/{_N}(/comments|/labels)?", _ISSUE_OR_PR, R),
    Rule("PATCH", rf"/issues/{_N}", _ISSUE_OR_PR, W),
    Rule("POST", rf"/issues/{_N}/(comments|labels)", _ISSUE_OR_PR, W),
    Rule("PUT", rf"/issues/{_N}/labels", _ISSUE_OR_PR, W),
    Rule("DELETE", rf"/issues/{_N}/labels/.+", _ISSUE_OR_PR, W),
    Rule("PATCH", r"/issues/comments/(?P<comment>\d+)", _ISSUE_OR_PR, W),
    Rule("GET", r"/labels(/.+)?", _ISSUE_OR_PR, R),
    Rule("POST", r"/labels", _ISSUE_OR_PR, W),
    # Commit statuses.
    Rule("POST", r"/statuses/[0-9a-f]{40}", ("statuses",), W),
    Rule("GET", r"/statuses/.+", ("statuses",), R),
    Rule("GET", r"/commits/[^/]+/(status|statuses)", ("statuses",), R),
    # Checks (GitHubForge's fallback where commit statuses are missing).
    Rule("GET", r"/commits/[^/]+/check-runs", ("checks",), R),
    Rule("POST", r"/check-runs", ("checks",), W),
    Rule("PATCH", r"/check-runs/\d+", ("checks",), W),
    # Actions: dispatching the next generation.
    Rule("POST", r"/actions/workflows/[^/]+/dispatches", ("actions",), W),
)

GRAPHQL = Rule("POST", "/graphql", ("pull-requests",), W)
_REPO_PATH = re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<name>[^/?]+)(?P<rest>[^?]*)")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    rule: Rule | None
    why: str


def job_permissions(workflow: Path, job: str) -> dict[str, Level]:
    """The token permissions of ``job`` in ``workflow``, as GitHub computes them.

    The job's ``permissions:`` win over the workflow's; a mapping names some scopes
    and leaves the rest ``none``; ``read-all``/``write-all`` set every scope;
    ``metadata`` is always ``read``. A job without any ``permissions:`` (at either
    level) would get the repository's default token, which the tests refuse: the
    workflow must say what each job needs.
    """
    doc = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    spec: Any = doc["jobs"][job].get("permissions", doc.get("permissions"))
    if spec is None:
        raise AssertionError(f"{workflow.name}: job {job} states no permissions")
    if spec in ("read-all", "write-all"):
        level = Level.READ if spec == "read-all" else Level.WRITE
        grants = dict.fromkeys(SCOPES, level)
    else:
        unknown = set(spec) - set(SCOPES)
        assert not unknown, f"{workflow.name}: job {job}: unknown permission(s) {sorted(unknown)}"
        grants = {scope: Level.parse(spec.get(scope, "none")) for scope in SCOPES}
    grants["metadata"] = Level.READ
    return grants


class Enforcer:
    """Decides each request of a token with ``grants`` the way GitHub would.

    ``is_pull(owner, name, number)`` tells an issue number from a pull request's
    (the proxy asks the emulator), for the endpoints that serve both;
    ``comment_number`` maps an issue comment id to its issue's number.
    """

    def __init__(
        self,
        grants: Mapping[str, Level],
        is_pull: Callable[[str, str, int], bool],
        comment_number: Callable[[str, str, int], int],
    ) -> None:
        self.grants = dict(grants)
        self.is_pull = is_pull
        self.comment_number = comment_number

    def check(self, method: str, path: str) -> Verdict:
        if method == "POST" and path.split("?")[0] == "/graphql":
            # darwin's one GraphQL call is markPullRequestReadyForReview: GraphQL checks
            # the permission of the object a mutation touches, here a pull request.
            return Verdict(
                self.grants.get("pull-requests", Level.NONE) >= W, GRAPHQL, "pull-requests: write"
            )
        m = _REPO_PATH.match(path)
        if m is None:
            # /user, /graphql, /search...: a job token has no user and darwin needs none.
            return Verdict(False, None, f"{method} {path}: not a repository endpoint")
        rest = m.group("rest").rstrip("/")
        rule = next((r for r in RULES if r.matches(method, rest)), None)
        if rule is None:
            return Verdict(
                False, None, f"{method} {rest or '/'}: no rule (add one, with its source)"
            )
        scopes = rule.scopes
        if scopes == _ISSUE_OR_PR:
            scopes = (self._issue_scope(m.group("owner"), m.group("name"), rule, rest),)
        granted = any(self.grants.get(s, Level.NONE) >= rule.level for s in scopes)
        need = " or ".join(f"{s}: {rule.level.name.lower()}" for s in scopes)
        return Verdict(granted, rule, need)

    def _issue_scope(self, owner: str, name: str, rule: Rule, rest: str) -> str:
        found = re.fullmatch(rule.pattern, rest)
        assert found is not None
        groups = found.groupdict()
        if groups.get("number"):
            number = int(groups["number"])
        elif groups.get("comment"):
            number = self.comment_number(owner, name, int(groups["comment"]))
        else:
            # /labels: the repository's labels serve issues and PRs alike; either will do.
            have = {s: self.grants.get(s, Level.NONE) for s in _ISSUE_OR_PR}
            return max(have, key=lambda s: have[s])
        return "pull-requests" if self.is_pull(owner, name, number) else "issues"


def accepted_header(verdict: Verdict) -> str:
    """``X-Accepted-GitHub-Permissions`` as GitHub writes it, e.g. ``statuses=write``."""
    if verdict.rule is None:
        return ""
    level = verdict.rule.level.name.lower()
    return "; ".join(f"{s.replace('-', '_')}={level}" for s in verdict.rule.scopes)


# Scopes whose use the REST log shows. contents: write is for `git push` and
# actions: write for `gh workflow run`, neither of which goes through the proxy.
REST_SCOPES = ("pull-requests", "issues", "statuses", "checks")


def unused_grants(log: list[tuple[str, str, str, int, str]], workflow: Path, job: str) -> list[str]:
    """The REST permission levels ``job`` declares that none of its requests in ``log`` needed
    (least privilege: each should be dropped or lowered)."""
    needed = {why for j, _m, _p, _s, why in log if j == job}
    declared = job_permissions(workflow, job)
    unused = []
    for scope in REST_SCOPES:
        if declared[scope] >= Level.READ:
            level = f"{scope}: {declared[scope].name.lower()}"
            if not any(level in why for why in needed):
                unused.append(level)
    return unused
