"""The Forge protocol: what darwin-bot needs from GitHub (or from the local file forge).

A forge holds the human-facing side of the evolution: one pull request per
agent branch (its review thread), the fitness status of a commit, comments,
human requests as issues, and the dashboard issue. The docstrings of
:class:`Forge` are the contract; ``tests/forge`` runs one suite against every
implementation.

Idempotence is the rule: every write is an *upsert* keyed by a natural key (a
PR's head branch, a label's name, a status's context) or by a hidden marker
``<!-- darwin:KEY -->`` that the forge writes into the body it owns. Running a
step twice, or again after a crash, converges to the same state and never
duplicates a PR, an issue, a comment or a label.

Markers are passed as their *key* (``"request=1a2b3c"``); :func:`marker`
renders the HTML comment that is stored in the body.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from darwin_bot.errors import GitError


class PRState(StrEnum):
    """A pull request's state (GitHub's two, and ``merged`` for a closed PR that was merged)."""

    OPEN = "open"
    CLOSED = "closed"
    MERGED = "merged"


class IssueState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class StatusState(StrEnum):
    """A commit status's state, as GitHub names them."""

    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"
    ERROR = "error"


class CloseReason(StrEnum):
    """Why an issue was closed (GitHub's ``state_reason`` when closing)."""

    COMPLETED = "completed"
    NOT_PLANNED = "not_planned"


ANY_STATE = "all"  # the list filter that takes every state
CLOSE_COMMENT_KEY = "closed"  # marker key of the comment a PR is closed with
STATUS_STATES: tuple[str, ...] = tuple(s.value for s in StatusState)
CLOSE_REASONS: tuple[str, ...] = tuple(r.value for r in CloseReason)
PR_FILTERS: tuple[str, ...] = (*(s.value for s in PRState), ANY_STATE)
ISSUE_FILTERS: tuple[str, ...] = (*(s.value for s in IssueState), ANY_STATE)
FITNESS_CONTEXT = "darwin/fitness"
# Where a forge cannot open draft PRs, a PR opened as a draft carries this label instead.
DRAFT_LABEL = "darwin:draft"
# GitHub refuses issue and PR bodies longer than this many characters.
MAX_BODY_CHARS = 65536

_MARKER_KEY = re.compile(r"^[A-Za-z0-9_.:/=+-]{1,200}$")


def marker(key: str) -> str:
    """The hidden HTML comment for ``key``: ``<!-- darwin:KEY -->``."""
    if not _MARKER_KEY.match(key):
        raise ValueError(f"invalid marker key {key!r}: use letters, digits and _.:/=+-")
    return f"<!-- darwin:{key} -->"


def has_marker(body: str | None, key: str) -> bool:
    return bool(body) and marker(key) in body  # type: ignore[operator]


def with_marker(body: str, key: str) -> str:
    """``body`` with the marker for ``key`` appended once (kept if already there)."""
    tag = marker(key)
    if tag in body:
        return body
    return f"{body.rstrip()}\n\n{tag}\n" if body.strip() else f"{tag}\n"


def agent_marker_key(branch: str) -> str:
    """The marker key of the pull request for an agent branch."""
    return f"agent={branch}"


def check_prefix(branch: str, prefix: str) -> None:
    """Refuse a branch the bot does not own (outside ``prefix``) with a GitError."""
    if not prefix or not branch.startswith(prefix) or branch == prefix:
        raise GitError(
            f"refusing to touch branch {branch!r}: it is outside the bot's prefix {prefix!r}"
        )


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


# GitHub's ``author_association`` values of the people with rights on a repository:
# only their words reach a prompt (anyone can comment on a public repository's issues).
STEERING_ASSOCIATIONS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})


@dataclass(frozen=True)
class Comment:
    """A comment on an issue or pull request.

    ``association`` is the author's relation to the repository, as GitHub's
    ``author_association`` names it (OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR,
    NONE...); a forge that cannot tell says NONE.
    """

    id: int
    body: str
    author: str
    association: str = "NONE"

    @property
    def has_rights(self) -> bool:
        """The author may steer the bot: an owner, a member or a collaborator."""
        return self.association in STEERING_ASSOCIATIONS


@dataclass(frozen=True)
class PullRequest:
    """An agent's review thread: the pull request whose head is the agent's branch."""

    number: int
    branch: str
    title: str
    body: str
    state: PRState
    draft: bool
    labels: tuple[str, ...]
    url: str
    head_sha: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", PRState(self.state))  # rejects an unknown state


@dataclass(frozen=True)
class Issue:
    """An issue (never a pull request), with its comments oldest first."""

    number: int
    title: str
    body: str
    labels: tuple[str, ...]
    state: IssueState
    state_reason: str | None
    url: str
    comments: tuple[Comment, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", IssueState(self.state))


@dataclass(frozen=True)
class Status:
    """The status of one context (e.g. ``darwin/fitness``) on a commit."""

    context: str
    state: StatusState
    description: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", StatusState(self.state))


@runtime_checkable
class Forge(Protocol):
    """What darwin-bot asks of a forge. Implementations: ``LocalForge``, ``GitHubForge``.

    Errors: every failure is a ``ForgeError`` (``ForgeNotFound`` for a missing
    object, ``ForgeAuthError`` for refused credentials, ``ForgeTransientError``
    for a failure that survived the retries); touching a branch outside
    ``branch_prefix`` is a ``GitError``. Labels named in any write are created
    first if missing.
    """

    branch_prefix: str

    def default_branch(self) -> str:
        """The repository's default branch (the base of every agent's PR)."""
        ...

    def upsert_pr(
        self,
        branch: str,
        title: str,
        body: str,
        labels: Iterable[str] = (),
        draft: bool = True,
    ) -> PullRequest:
        """Open, or update, the one open PR whose head is ``branch`` (under the prefix).

        The body gets the marker ``agent=<branch>``. An existing open PR keeps its
        number and gets the new title and body; ``labels`` are added (others kept).
        ``draft`` only matters when the PR is created; where the forge cannot make
        drafts, the PR is opened ready and labelled ``darwin:draft`` instead.
        """
        ...

    def get_pr(self, branch: str) -> PullRequest | None:
        """The newest PR (any state) whose head is ``branch``, or None."""
        ...

    def list_prs(self, label: str | None = None, state: str = PRState.OPEN) -> list[PullRequest]:
        """The bot's PRs (head under the prefix), ``state`` open|closed|merged|all, by number."""
        ...

    def close_pr(self, branch: str, comment: str = "") -> PullRequest | None:
        """Close the open PR of ``branch`` with ``comment`` (posted once); None if there is none.

        Closing an already closed PR changes nothing.
        """
        ...

    def mark_ready(self, branch: str) -> PullRequest:
        """Take the PR of ``branch`` out of draft (and drop a ``darwin:draft`` label)."""
        ...

    def merge_pr(self, branch: str, message: str, *, sha: str | None = None) -> str:
        """Merge the open PR of ``branch`` into its base; return the merge commit's sha.

        A PR that is already merged returns its merge sha. A draft is marked ready
        first. ``sha``: merge only if the PR's head is still this commit (the one
        that was evaluated). The merge method is one the repository allows.
        ``ForgeError`` if it cannot be merged (closed, conflicts, checks, moved head).
        The head branch may be gone afterwards (a repository that deletes merged
        head branches): callers keep the head elsewhere first.
        """
        ...

    def requests_left(self) -> tuple[int, int] | None:
        """(API requests left, the Unix time the count resets), as last seen; None if unknown."""
        ...

    def check_pull_requests(self) -> None:
        """Raise ``ForgeAuthError`` now if this forge will refuse to open the bot's PRs.

        Called before any branch is pushed, so a repository whose settings forbid
        the bot's pull requests stops the step before it changes anything.
        """
        ...

    def set_labels(
        self, number: int, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> tuple[str, ...]:
        """Add and remove labels on issue or PR ``number``; return its labels, sorted.

        Removing a label that is not there is not an error.
        """
        ...

    def ensure_label(self, name: str, color: str = "ededed", description: str = "") -> None:
        """Create the label ``name`` unless it exists (an existing label is left as is)."""
        ...

    def set_status(
        self, sha: str, context: str, state: str, description: str, *, new: bool = False
    ) -> None:
        """Set the status ``context`` (e.g. ``darwin/fitness``) of commit ``sha``.

        ``state`` is pending|success|failure|error; the latest write per context wins.
        ``new``: the caller knows no status ``context`` was ever set on ``sha``, so a
        forge that must look an existing one up to update it (check runs) may skip
        the look-up; a wrong ``True`` may leave a duplicate, never lose a status.
        """
        ...

    def get_statuses(self, sha: str) -> list[Status]:
        """The latest status per context of commit ``sha``, sorted by context."""
        ...

    def upsert_comment(self, number: int, key: str, body: str) -> Comment:
        """The one comment on issue or PR ``number`` carrying marker ``key``: create or edit."""
        ...

    def list_comments(self, number: int) -> tuple[Comment, ...]:
        """The comments on issue or PR ``number``, oldest first."""
        ...

    def is_own(self, comment: Comment) -> bool:
        """The bot wrote ``comment`` (its author is this forge's account, not a marker)."""
        ...

    def upsert_issue(self, key: str, title: str, body: str, labels: Iterable[str] = ()) -> Issue:
        """The one issue carrying marker ``key``: create it, or update title and body.

        ``labels`` are added (labels a human set are kept). A closed issue stays
        closed: humans close requests to decline them. The first label is the
        search scope: the issue is found among the issues that have it.
        """
        ...

    def find_issue(self, key: str, label: str | None = None) -> Issue | None:
        """The issue (any state) carrying marker ``key``, optionally among those with ``label``."""
        ...

    def get_issue(self, number: int) -> Issue:
        """Issue ``number`` with its comments; ``ForgeNotFound`` if there is none."""
        ...

    def list_issues(self, label: str | None = None, state: str = ANY_STATE) -> list[Issue]:
        """Issues (never PRs) with ``label``, ``state`` open|closed|all, by number, with comments."""
        ...

    def close_issue(self, number: int, reason: str = CloseReason.COMPLETED) -> Issue:
        """Close issue ``number`` as ``completed`` or ``not_planned``; idempotent."""
        ...

    def delete_branch(self, branch: str) -> bool:
        """Delete ``branch`` (must be under the prefix); False if it did not exist."""
        ...
