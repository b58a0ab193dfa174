"""LocalForge: the Forge protocol as JSON files in a folder (``.darwin/forge`` by default).

Used by ``darwin run`` (no GitHub needed) and by the tests. Layout::

    <root>/meta.json            next number, next comment id, labels
    <root>/pulls/<n>.json       one pull request (with its comments)
    <root>/issues/<n>.json      one issue (with its comments)
    <root>/statuses/<sha>.json  context -> {state, description}

PRs and issues share one number sequence, as on GitHub. Every write happens
under an exclusive file lock and lands atomically (temporary file + rename),
so two processes never lose each other's writes. There is no git here: the
caller wires in hooks that resolve a branch head, delete a branch and merge.
"""

from __future__ import annotations

import fcntl
import getpass
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from darwin_bot.errors import ForgeError, ForgeNotFound
from darwin_bot.forge.base import (
    ANY_STATE,
    CLOSE_COMMENT_KEY,
    DRAFT_LABEL,
    MAX_BODY_CHARS,
    PR_FILTERS,
    STATUS_STATES,
    Comment,
    Issue,
    PRState,
    PullRequest,
    Status,
    agent_marker_key,
    check_choice,
    check_prefix,
    has_marker,
    marker,
    with_marker,
)
from darwin_bot.forge.local_issues import LocalIssues
from darwin_bot.store import read_json, write_json

# Hooks into git, owned by the caller (the gitrepo module); all optional.
HeadShaHook = Callable[[str], "str | None"]  # branch -> head sha, None if absent
DeleteBranchHook = Callable[[str], object]  # delete branch; False means "did not exist"
MergeHook = Callable[[str, str, str], str]  # (branch, base, message) -> merge sha


class LocalForge(LocalIssues):
    """A file-backed forge. ``user`` is the author of the comments this instance writes.

    ``association``: that user's relation to the repository, as GitHub names it
    (a local forge's users can write its files: OWNER unless a test says otherwise).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        default_branch: str = "main",
        branch_prefix: str = "darwin/",
        user: str | None = None,
        head_sha_hook: HeadShaHook | None = None,
        delete_branch_hook: DeleteBranchHook | None = None,
        merge_hook: MergeHook | None = None,
        association: str = "OWNER",
    ) -> None:
        self.root = Path(path)
        self.association = association
        self.branch_prefix = branch_prefix
        self.user = user or _login()
        self._default_branch = default_branch
        self._head_sha = head_sha_hook
        self._delete_branch = delete_branch_hook
        self._merge = merge_hook

    # -- storage -------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """Hold the forge's lock; yield meta.json's content and save it on success."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                meta = self._meta()
                before = dict(meta)
                yield meta
                if meta != before:
                    write_json(self.root / "meta.json", meta)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _meta(self) -> dict[str, Any]:
        path = self.root / "meta.json"
        meta = read_json(path) if path.exists() else {}
        # Numbers come from the saved records, not a counter: a record is saved before
        # meta.json, and a kill between the two must not hand its number out again.
        saved = [
            int(p.stem)
            for kind in ("issues", "pulls")
            for p in (self.root / kind).glob("*.json")
            if p.stem.isdigit()
        ]
        meta["next_number"] = max(saved, default=0) + 1
        meta.pop("next_comment_id", None)  # derived from the saved comments (_new_comment)
        meta.setdefault("labels", {})
        return meta

    def _load(self, kind: str, number: int) -> dict[str, Any]:
        path = self.root / kind / f"{number}.json"
        if not path.exists():
            what = "pull request" if kind == "pulls" else "issue"
            raise ForgeNotFound(f"{what} #{number} does not exist in the local forge {self.root}")
        return read_json(path)

    def _save(self, kind: str, record: dict[str, Any]) -> None:
        write_json(self.root / kind / f"{record['number']}.json", record)

    def _all(self, kind: str) -> list[dict[str, Any]]:
        folder = self.root / kind
        if not folder.is_dir():
            return []
        records = [read_json(p) for p in folder.glob("*.json")]
        return sorted(records, key=lambda r: r["number"])

    def _kind_of(self, number: int) -> str:
        for kind in ("issues", "pulls"):
            if (self.root / kind / f"{number}.json").exists():
                return kind
        raise ForgeNotFound(f"no issue or pull request #{number} in the local forge {self.root}")

    def _url(self, kind: str, number: int) -> str:
        return (self.root.resolve() / kind / f"{number}.json").as_uri()

    @staticmethod
    def _check_body(body: str) -> None:
        if len(body) > MAX_BODY_CHARS:
            raise ForgeError(
                f"body of {len(body)} characters is over the limit of {MAX_BODY_CHARS}"
            )

    def _new_comment(self, meta: dict[str, Any], body: str) -> dict[str, Any]:
        self._check_body(body)
        # Past every saved comment: no counter that a kill could leave behind the records.
        used = [
            c["id"] for kind in ("issues", "pulls") for r in self._all(kind) for c in r["comments"]
        ]
        cid = max(used, default=0) + 1
        return {"id": cid, "body": body, "author": self.user, "association": self.association}

    def _add_labels(
        self, meta: dict[str, Any], record: dict[str, Any], names: Iterable[str]
    ) -> None:
        new = [n for n in names if n not in meta["labels"]]
        for name in new:
            meta["labels"][name] = {"color": "ededed", "description": ""}
        if new:  # the registry before the record: a kill between leaves no unknown label
            write_json(self.root / "meta.json", meta)
        for name in names:
            if name not in record["labels"]:
                record["labels"].append(name)
        record["labels"].sort()

    # -- conversions ------------------------------------------------------------------

    def _pr(self, rec: dict[str, Any]) -> PullRequest:
        sha = rec["head_sha"]
        if rec["state"] == PRState.OPEN and self._head_sha is not None:
            sha = self._head_sha(rec["branch"]) or sha
        return PullRequest(
            number=rec["number"],
            branch=rec["branch"],
            title=rec["title"],
            body=rec["body"],
            state=rec["state"],
            draft=rec["draft"],
            labels=tuple(rec["labels"]),
            url=self._url("pulls", rec["number"]),
            head_sha=sha,
        )

    def _issue(self, rec: dict[str, Any]) -> Issue:
        return Issue(
            number=rec["number"],
            title=rec["title"],
            body=rec["body"],
            labels=tuple(rec["labels"]),
            state=rec["state"],
            state_reason=rec.get("state_reason"),
            url=self._url("issues", rec["number"]),
            comments=tuple(_comment(c) for c in rec["comments"]),
        )

    # -- the protocol ------------------------------------------------------------------

    def default_branch(self) -> str:
        return self._default_branch

    def _find_pr(self, branch: str, states: tuple[str, ...]) -> dict[str, Any] | None:
        found = [p for p in self._all("pulls") if p["branch"] == branch and p["state"] in states]
        return found[-1] if found else None

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
        self._check_body(body)
        with self._locked() as meta:
            rec = self._find_pr(branch, (PRState.OPEN,))
            if rec is None:
                number = meta["next_number"]
                meta["next_number"] = number + 1
                rec = {
                    "number": number,
                    "branch": branch,
                    "base": self._default_branch,
                    "state": PRState.OPEN,
                    "draft": draft,
                    "labels": [],
                    "comments": [],
                    "head_sha": "",
                    "merge_sha": None,
                }
            rec["title"] = title
            rec["body"] = body
            if self._head_sha is not None:
                rec["head_sha"] = self._head_sha(branch) or rec["head_sha"]
            self._add_labels(meta, rec, labels)
            self._save("pulls", rec)
        return self._pr(rec)

    def get_pr(self, branch: str) -> PullRequest | None:
        rec = self._find_pr(branch, tuple(PRState))
        return None if rec is None else self._pr(rec)

    def list_prs(self, label: str | None = None, state: str = PRState.OPEN) -> list[PullRequest]:
        check_choice("state", state, PR_FILTERS)
        return [
            self._pr(p)
            for p in self._all("pulls")
            if p["branch"].startswith(self.branch_prefix)
            and state in (ANY_STATE, p["state"])
            and (label is None or label in p["labels"])
        ]

    def close_pr(self, branch: str, comment: str = "") -> PullRequest | None:
        with self._locked() as meta:
            rec = self._find_pr(branch, (PRState.OPEN,))
            if rec is None:
                done = self._find_pr(branch, (PRState.CLOSED, PRState.MERGED))
                return None if done is None else self._pr(done)
            if comment:
                self._upsert_comment_in(meta, rec, CLOSE_COMMENT_KEY, comment)
            rec["state"] = PRState.CLOSED
            self._save("pulls", rec)
        return self._pr(rec)

    def mark_ready(self, branch: str) -> PullRequest:
        with self._locked():
            rec = self._find_pr(branch, tuple(PRState))
            if rec is None:
                raise ForgeNotFound(f"no pull request for branch {branch!r}")
            rec["draft"] = False
            if DRAFT_LABEL in rec["labels"]:
                rec["labels"].remove(DRAFT_LABEL)
            self._save("pulls", rec)
        return self._pr(rec)

    def check_pull_requests(self) -> None:
        """A local forge always takes the bot's PRs."""

    def requests_left(self) -> tuple[int, int] | None:
        """A local forge has no rate limit."""
        return None

    def merge_pr(self, branch: str, message: str, *, sha: str | None = None) -> str:
        with self._locked():
            rec = self._find_pr(branch, tuple(PRState))
            if rec is None:
                raise ForgeNotFound(f"no pull request for branch {branch!r}")
            if rec["state"] == PRState.MERGED:
                return rec["merge_sha"]
            if rec["state"] != PRState.OPEN:
                raise ForgeError(f"pull request #{rec['number']} is closed; reopen it to merge")
            if sha is not None and self._head_sha is not None:
                head = self._head_sha(branch)
                if head is not None and head != sha:
                    raise ForgeError(
                        f"pull request #{rec['number']}: head {head[:12]} is not the "
                        f"evaluated commit {sha[:12]}; not merged"
                    )
            if self._merge is None:
                raise ForgeError(
                    "this LocalForge has no merge hook; merge the branch with git instead"
                )
            sha = self._merge(branch, rec["base"], message)
            rec.update(state=PRState.MERGED, draft=False, merge_sha=sha)
            self._save("pulls", rec)
        return sha

    def ensure_label(self, name: str, color: str = "ededed", description: str = "") -> None:
        with self._locked() as meta:
            meta["labels"].setdefault(name, {"color": color, "description": description})

    def set_labels(
        self, number: int, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> tuple[str, ...]:
        with self._locked() as meta:
            kind = self._kind_of(number)
            rec = self._load(kind, number)
            drop = set(remove)
            rec["labels"] = [name for name in rec["labels"] if name not in drop]
            self._add_labels(meta, rec, add)
            self._save(kind, rec)
        return tuple(rec["labels"])

    def set_status(
        self, sha: str, context: str, state: str, description: str, *, new: bool = False
    ) -> None:
        check_choice("status state", state, STATUS_STATES)
        with self._locked():
            path = self.root / "statuses" / f"{sha}.json"
            data = read_json(path) if path.exists() else {}
            # GitHub truncates descriptions at 140 characters; so do we, to behave alike.
            data[context] = {"state": state, "description": description[:140]}
            write_json(path, data)

    def get_statuses(self, sha: str) -> list[Status]:
        path = self.root / "statuses" / f"{sha}.json"
        data = read_json(path) if path.exists() else {}
        return [Status(context=c, **data[c]) for c in sorted(data)]

    def _upsert_comment_in(
        self, meta: dict[str, Any], rec: dict[str, Any], key: str, body: str
    ) -> dict[str, Any]:
        body = with_marker(body, key)
        for existing in rec["comments"]:
            # Only a comment this user wrote is edited: a marker is text anyone can type.
            if existing["author"] == self.user and has_marker(existing["body"], key):
                self._check_body(body)
                existing["body"] = body
                return existing
        comment = self._new_comment(meta, body)
        rec["comments"].append(comment)
        return comment

    def upsert_comment(self, number: int, key: str, body: str) -> Comment:
        marker(key)  # validate before taking the lock
        with self._locked() as meta:
            kind = self._kind_of(number)
            rec = self._load(kind, number)
            comment = self._upsert_comment_in(meta, rec, key, body)
            self._save(kind, rec)
        return _comment(comment)

    def list_comments(self, number: int) -> tuple[Comment, ...]:
        rec = self._load(self._kind_of(number), number)
        return tuple(_comment(c) for c in rec["comments"])

    def is_own(self, comment: Comment) -> bool:
        # No bot account here: the bot and ``darwin requests`` write as the same local
        # user, and only the bot's comments carry a marker.
        return comment.author == self.user and "<!-- darwin:" in comment.body

    def add_comment(self, number: int, body: str) -> Comment:
        """Post a plain comment (no marker): what a human does; used by ``darwin requests``."""
        with self._locked() as meta:
            kind = self._kind_of(number)
            rec = self._load(kind, number)
            comment = self._new_comment(meta, body)
            rec["comments"].append(comment)
            self._save(kind, rec)
        return _comment(comment)

    def delete_branch(self, branch: str) -> bool:
        check_prefix(branch, self.branch_prefix)
        if self._delete_branch is None:
            return False
        return self._delete_branch(branch) is not False

    def __repr__(self) -> str:
        return f"LocalForge({str(self.root)!r})"


def _comment(record: dict[str, Any]) -> Comment:
    """A stored comment; records from before associations were kept are the forge owner's."""
    return Comment(**{"association": "OWNER", **record})


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "local"
