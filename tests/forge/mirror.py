"""Mirror a local git branch to a GitHub API server (the emulator) through the REST API.

The ``emulate`` GitHub emulator has no git transport, so ``git push`` cannot
reach it. It does compute real git object ids for blobs, trees and commits,
and keeps author and committer dates with their offsets, so re-creating each
missing object through the git data API (blobs, trees, commits, then the ref)
yields the *same* shas as the local repository: a branch head here is the
same commit there, and statuses set on a local sha land on the PR's head.

Usage (the lead's end-to-end test reuses this)::

    mirror = Mirror(api_url, token, "owner/name", Path(workdir))
    sha = mirror.push("darwin/g001-000")        # == git rev-parse darwin/g001-000
"""

from __future__ import annotations

import base64
import os
import subprocess
import urllib.parse
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from github import Auth, Github, GithubException, InputGitAuthor, InputGitTreeElement
from github.Repository import Repository


class MirrorError(RuntimeError):
    """The branch could not be mirrored exactly."""


def _git(workdir: Path, *args: str, binary: bool = False) -> str | bytes:
    out = subprocess.run(
        ["git", *args], cwd=workdir, check=True, capture_output=True, timeout=30
    ).stdout
    return out if binary else out.decode()


class Mirror:
    """Copies commits, trees and blobs from ``workdir`` to ``repository`` on demand."""

    def __init__(self, api_url: str, token: str, repository: str, workdir: Path) -> None:
        gh = Github(
            auth=Auth.Token(token),
            base_url=api_url.rstrip("/"),
            retry=None,
            seconds_between_requests=None,
            seconds_between_writes=None,
        )
        self.repo: Repository = gh.get_repo(repository)
        self.workdir = Path(workdir)
        self._remote: set[str] = set()  # object ids known to exist remotely

    def push(self, branch: str, remote_branch: str | None = None) -> str:
        """Make ``remote_branch`` (default: ``branch``) point at the local head of ``branch``."""
        head = str(_git(self.workdir, "rev-parse", f"refs/heads/{branch}")).strip()
        for sha in self._missing_commits(head):
            self._commit(sha)
        self._set_ref(remote_branch or branch, head)
        return head

    def _exists(self, kind: str, sha: str) -> bool:
        if sha in self._remote:
            return True
        try:
            if kind == "commit":
                self.repo.get_git_commit(sha)
            else:
                self.repo.get_git_tree(sha)
        except GithubException as exc:
            if exc.status in (404, 409, 422):
                return False
            raise
        self._remote.add(sha)
        return True

    def _missing_commits(self, head: str) -> list[str]:
        """Commits reachable from ``head`` that the remote lacks, parents first."""
        missing: set[str] = set()
        todo = [head]
        while todo:
            sha = todo.pop()
            if sha in missing or self._exists("commit", sha):
                continue
            missing.add(sha)
            todo.extend(str(_git(self.workdir, "rev-parse", f"{sha}^@")).split())
        order = str(_git(self.workdir, "rev-list", "--topo-order", "--reverse", head)).split()
        return [sha for sha in order if sha in missing]

    def _tree(self, sha: str) -> None:
        if self._exists("tree", sha):
            return
        elements = []
        listing = str(_git(self.workdir, "ls-tree", "-z", sha))
        for entry in filter(None, listing.split("\0")):
            meta, name = entry.split("\t", 1)
            mode, kind, obj = meta.split()
            if kind == "tree":
                self._tree(obj)
            elif kind == "blob":
                data = bytes(_git(self.workdir, "cat-file", "blob", obj, binary=True))
                made = self.repo.create_git_blob(base64.b64encode(data).decode(), "base64")
                if made.sha != obj:
                    raise MirrorError(f"blob {obj} became {made.sha}")
            else:
                raise MirrorError(
                    f"cannot mirror a {kind} entry ({name}): submodules are unsupported"
                )
            elements.append(InputGitTreeElement(name, mode, kind, sha=obj))
        made_tree = self.repo.create_git_tree(elements)
        if made_tree.sha != sha:
            raise MirrorError(f"tree {sha} became {made_tree.sha}")
        self._remote.add(sha)

    def _commit(self, sha: str) -> None:
        raw = str(_git(self.workdir, "cat-file", "commit", sha))
        headers, _, message = raw.partition("\n\n")
        fields: dict[str, list[str]] = {}
        for line in headers.split("\n"):
            if line.startswith(" "):  # continuation (signatures): cannot be reproduced
                raise MirrorError(f"commit {sha} is signed; mirror unsigned commits only")
            key, _, value = line.partition(" ")
            fields.setdefault(key, []).append(value)
        self._tree(fields["tree"][0])
        made = self.repo.create_git_commit(
            message,
            self.repo.get_git_tree(fields["tree"][0]),
            [self.repo.get_git_commit(p) for p in fields.get("parent", [])],
            author=_person(fields["author"][0]),
            committer=_person(fields["committer"][0]),
        )
        if made.sha != sha:
            raise MirrorError(f"commit {sha} became {made.sha}: the server changed its content")
        self._remote.add(sha)

    def _set_ref(self, branch: str, sha: str) -> None:
        try:
            ref = self.repo.get_git_ref(f"heads/{branch}")
        except GithubException as exc:
            if exc.status != 404:
                raise
            self.repo.create_git_ref(f"refs/heads/{branch}", sha)
            return
        if ref.object.sha != sha:
            # Not ref.edit(): the emulator answers with a GET-only ``/git/ref/`` url.
            self.repo.requester.requestJsonAndCheck(
                "PATCH", self.ref_url(branch), input={"sha": sha, "force": True}
            )

    def ref_url(self, branch: str) -> str:
        """The REST url that updates and deletes ``branch``."""
        return f"{self.repo.url}/git/refs/heads/{urllib.parse.quote(branch)}"


class Pull:
    """The other way: copy a branch from the API server into a local repository.

    On GitHub a PR merged through the API is a commit on the base branch of the
    same repository that ``git fetch`` then sees. The emulator keeps it to
    itself, so tests call :meth:`branch` after such a merge to give the bare
    origin what GitHub's git side would hold: every missing object is rebuilt
    from the git data API and must hash to the id the server reported.
    """

    def __init__(self, api_url: str, token: str, repository: str, workdir: Path) -> None:
        gh = Github(
            auth=Auth.Token(token), base_url=api_url.rstrip("/"), retry=None,
            seconds_between_requests=None, seconds_between_writes=None,
        )  # fmt: skip
        self.repo: Repository = gh.get_repo(repository)
        self.workdir = Path(workdir)

    def _has(self, sha: str) -> bool:
        return (
            subprocess.run(
                ["git", "cat-file", "-e", sha], cwd=self.workdir, capture_output=True, timeout=30
            ).returncode
            == 0
        )

    def _write(self, args: list[str], data: bytes, env: dict[str, str] | None = None) -> str:
        out = subprocess.run(
            ["git", *args], cwd=self.workdir, input=data, check=True, capture_output=True,
            timeout=30, env=env,
        )  # fmt: skip
        return out.stdout.decode().strip()

    def _tree(self, sha: str) -> None:
        if self._has(sha):
            return
        lines = []
        for entry in self.repo.get_git_tree(sha).tree:
            if entry.type == "tree":
                self._tree(entry.sha)
            elif not self._has(entry.sha):
                blob = base64.b64decode(self.repo.get_git_blob(entry.sha).content)
                made = self._write(["hash-object", "-w", "--stdin"], blob)
                if made != entry.sha:
                    raise MirrorError(f"blob {entry.sha} became {made}")
            lines.append(f"{entry.mode} {entry.type} {entry.sha}\t{entry.path}")
        made = self._write(["mktree"], ("\n".join(lines) + "\n").encode())
        if made != sha:
            raise MirrorError(f"tree {sha} became {made}")

    def _commit(self, sha: str) -> None:
        if self._has(sha):
            return
        commit = self.repo.get_git_commit(sha)
        for parent in commit.parents:
            self._commit(parent.sha)
        self._tree(commit.tree.sha)
        env = dict(os.environ)
        for role, who in (("AUTHOR", commit.author), ("COMMITTER", commit.committer)):
            env[f"GIT_{role}_NAME"] = who.name
            env[f"GIT_{role}_EMAIL"] = who.email
            env[f"GIT_{role}_DATE"] = who.date.isoformat() if who.date.tzinfo else (
                who.date.replace(tzinfo=UTC).isoformat())  # fmt: skip
        args = ["commit-tree", commit.tree.sha]
        for parent in commit.parents:
            args += ["-p", parent.sha]
        message = commit.message if commit.message.endswith("\n") else commit.message + "\n"
        made = self._write([*args, "-F", "-"], message.encode(), env=env)
        if made != sha:
            raise MirrorError(f"commit {sha} became {made}: cannot rebuild it exactly")

    def branch(self, name: str) -> str:
        """Set ``refs/heads/<name>`` here to the server's head of ``name``; return it."""
        head = self.repo.get_git_ref(f"heads/{name}").object.sha
        self._commit(head)
        # Directly, not by a push: this is GitHub's own side, which no hook guards.
        self._write(["update-ref", f"refs/heads/{name}", head], b"")
        return head


def _person(value: str) -> InputGitAuthor:
    """``Name <email> 1704157445 +0200`` -> InputGitAuthor with an ISO date and its offset."""
    ident, stamp, offset = value.rsplit(" ", 2)
    name, _, email = ident.partition(" <")
    sign = -1 if offset.startswith("-") else 1
    tz = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
    when = datetime.fromtimestamp(int(stamp), tz).isoformat()
    return InputGitAuthor(name, email.rstrip(">"), when)


def mirror_branch(api_url: str, token: str, repository: str, workdir: Path, branch: str) -> str:
    """One-shot :meth:`Mirror.push`."""
    return Mirror(api_url, token, repository, workdir).push(branch)
