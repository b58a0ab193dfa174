"""Agents as git branches: create, read lineage from trailers, commit, archive, delete, push.

Only branches under the configured prefix are ever created, moved or deleted;
anything else is refused with ``GitError``. A culled agent's head is kept under
``refs/darwin/archive/<agent>`` before its branch is deleted, so its lineage
(commits and trailers) survives culling and can always be read back.

In CI the memory lives on a branch of its own, ``<prefix>memory`` (reserved: no
agent has that id), whose tree holds only the memory folder. The bot never
pushes to the default branch, so a protected default branch needs no bypass,
and :meth:`GitRepo.push_generation` sends the agent branches, the archive refs
and the memory in one ``git push --atomic``: the remote takes all of them or
none, so no branch is ever published without its record.

GitPython is the only git library used; its exceptions are mapped to
``GitError`` here and nowhere else.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import git

from darwin_bot.core import Mutation
from darwin_bot.errors import GitError, NotARepository
from darwin_bot.git.locks import remove_stale_git_locks
from darwin_bot.git.trailers import mutation_from_commit

BOT_NAME = "darwin-bot"
BOT_EMAIL = "darwin-bot@users.noreply.github.com"
ARCHIVE_NS = "refs/darwin/archive/"
_WT_PREFIX = "darwin-wt-"
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
MEMORY_AGENT = "memory"  # <prefix>memory is the memory branch, never an agent


def _git_error(action: str, exc: Exception) -> GitError:
    detail = getattr(exc, "stderr", "") or str(exc)
    return GitError(f"git {action} failed: {detail.strip()}")


class GitRepo:
    """The user's repository, seen as a population of agent branches."""

    def __init__(self, root: Path, prefix: str = "darwin/", remote: str | None = None) -> None:
        try:
            self.repo = git.Repo(root)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise NotARepository(
                f"{root} is not a git repository; run 'git init' there (or pass --repo DIR)"
            ) from exc
        self.root = Path(self.repo.working_tree_dir or root)
        self.prefix = prefix
        self.remote = remote
        # A commit named by its full id never changes: whether it exists (once it does) and
        # the trees under it are kept, which saves a generation of N agents ~10 N git calls.
        self._commits: set[str] = set()
        self._trees: dict[tuple[str, tuple[str, ...]], str] = {}

    # -- low level --------------------------------------------------------
    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        try:
            return self.repo.git.execute(["git", *args], env=env, strip_newline_in_stdout=True)
        except git.GitCommandError as exc:
            raise _git_error(args[0] if args else "", exc) from exc

    def rev(self, ref: str) -> str | None:
        if ref in self._commits:
            return ref
        try:
            sha = self.repo.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}")
        except git.GitCommandError:
            return None
        if ref == sha:
            self._commits.add(sha)
        return sha

    def _object(self, spec: str) -> str | None:
        try:
            return self.repo.git.rev_parse(spec)
        except git.GitCommandError:
            return None

    def tree_id(self, ref: str, paths: Sequence[str]) -> str:
        """A stable id of the evolvable content of ``ref``: git's tree ids of ``paths``."""
        key = (ref, tuple(paths))
        if key in self._trees:
            return self._trees[key]
        specs = [f"{ref}:{p.rstrip('/')}" for p in paths]
        try:  # one call when the commit and every path exist (the usual case)
            _, *ids = self.repo.git.rev_parse(f"{ref}^{{commit}}", *specs).split()
        except git.GitCommandError:
            if self.rev(ref) is None:
                raise GitError(
                    f"no commit {ref!r}: the agent's branch is gone and nothing archived it"
                ) from None
            ids = [self._object(spec) or "-" for spec in specs]
        out = ids[0] if len(ids) == 1 else "+".join(ids)
        if _FULL_SHA.fullmatch(ref):
            self._trees[key] = out
        return out

    # -- branches -----------------------------------------------------------
    def branch(self, agent: str) -> str:
        return f"{self.prefix}{agent}"

    def _own(self, branch: str) -> None:
        if not branch.startswith(self.prefix):
            raise GitError(
                f"refusing to touch branch {branch!r}: outside the prefix {self.prefix!r}"
            )

    def default_branch(self) -> str:
        try:
            return self.repo.active_branch.name
        except TypeError:  # detached HEAD (CI checkouts)
            return os.environ.get("GITHUB_BASE_REF") or "main"

    @property
    def memory_branch(self) -> str:
        """The branch the CI steps keep the memory on (see the module docstring)."""
        return f"{self.prefix}{MEMORY_AGENT}"

    def agents(self) -> list[str]:
        """Agent ids of the local branches under the prefix (not the memory branch), sorted."""
        out = self.git("for-each-ref", "--format=%(refname:short)", f"refs/heads/{self.prefix}")
        return sorted(
            line[len(self.prefix) :]
            for line in out.splitlines()
            if line and line != self.memory_branch
        )

    def set_branch(self, agent: str, sha: str) -> str:
        """Point ``<prefix><agent>`` at ``sha`` (create or move): idempotent."""
        if agent == MEMORY_AGENT:
            raise GitError(f"agent id {agent!r} is reserved for the memory branch")
        name = self.branch(agent)
        self._own(name)
        self.git("update-ref", f"refs/heads/{name}", sha)
        return name

    def delete_branch(self, branch: str, *, archive_as: str | None = None) -> None:
        """Delete an agent branch (keeping its head under refs/darwin/archive/); idempotent."""
        self._own(branch)
        sha = self.rev(f"refs/heads/{branch}")
        if sha is None:
            return
        if archive_as:
            self.git("update-ref", f"{ARCHIVE_NS}{archive_as}", sha)
        self.git("update-ref", "-d", f"refs/heads/{branch}")

    def archive_head(self, agent: str, sha: str) -> None:
        """Keep ``sha`` as ``agent``'s archived head, here and on the remote (one ref, added).

        For a head about to leave the remote by someone else's hand (a merge in a
        repository that deletes merged branches): the lineage keeps it either way.
        """
        ref = f"{ARCHIVE_NS}{agent}"
        self.git("update-ref", ref, sha)
        if self.remote:
            self.git("push", "--quiet", self.remote, f"+{ref}:{ref}")

    def archived(self, agent: str) -> str | None:
        return self.rev(f"{ARCHIVE_NS}{agent}")

    # -- history ------------------------------------------------------------
    def lineage(self, ref: str, limit: int = 500) -> list[Mutation]:
        """Mutations reachable from ``ref``, newest first, read from commit trailers."""
        out = self.git("log", f"--max-count={limit}", "--format=%H%x00%B%x1e", ref)
        mutations = []
        for record in out.split("\x1e"):
            record = record.strip("\n")
            if not record:
                continue
            sha, _, message = record.partition("\x00")
            m = mutation_from_commit(sha.strip(), message)
            if m is not None:
                mutations.append(m)
        return mutations

    def diffstat(self, base: str, head: str) -> str:
        return self.git("diff", "--stat", f"{base}..{head}")

    # -- working copies -------------------------------------------------------
    @contextlib.contextmanager
    def worktree(self, ref: str) -> Iterator[Path]:
        """A detached worktree at ``ref``, removed afterwards (even on error)."""
        path = Path(tempfile.mkdtemp(prefix=_WT_PREFIX))
        path.rmdir()
        self.git("worktree", "add", "--detach", "--force", str(path), ref)
        try:
            yield path
        finally:
            try:
                self.git("worktree", "remove", "--force", str(path))
            except GitError:  # only then can git's record of it outlive the folder
                shutil.rmtree(path, ignore_errors=True)
                with contextlib.suppress(GitError):
                    self.git("worktree", "prune")
            shutil.rmtree(path, ignore_errors=True)

    def cleanup_worktrees(self) -> int:
        """Remove worktrees a killed run left behind; return how many."""
        out = self.git("worktree", "list", "--porcelain")
        stale = [
            line.split(" ", 1)[1]
            for line in out.splitlines()
            if line.startswith("worktree ")
            and Path(line.split(" ", 1)[1]).name.startswith(_WT_PREFIX)
        ]
        for path in stale:
            # 'worktree add' locks the worktree until its checkout is done, so one killed
            # mid-add is locked: removing it takes --force twice, and prune skips it
            # unless it is unlocked first (its folder may already be gone).
            try:
                self.git("worktree", "remove", "--force", "--force", path)
            except GitError:
                with contextlib.suppress(GitError):
                    self.git("worktree", "unlock", path)
            shutil.rmtree(path, ignore_errors=True)
        self.git("worktree", "prune")
        return len(stale)

    def common_dir(self) -> Path:
        """The git folder shared by all worktrees (where the run lock lives)."""
        path = Path(self.git("rev-parse", "--git-common-dir"))
        return path if path.is_absolute() else self.root / path

    def remove_stale_locks(self, *, settle_s: float = 2.0) -> list[str]:
        """Delete the lock files a killed git left (``darwin_bot.git.locks``); which."""
        return remove_stale_git_locks(self.common_dir(), settle_s=settle_s)

    def export(self, ref: str, paths: Sequence[str], dest: Path) -> Path:
        """Write the files of ``paths`` at ``ref`` into ``dest`` (no .git): what the evaluator gets."""
        dest.mkdir(parents=True, exist_ok=True)
        try:
            data = self.repo.git.archive(
                ref, "--", *[p.rstrip("/") for p in paths], stdout_as_string=False
            )
        except git.GitCommandError as exc:
            raise _git_error("archive", exc) from exc
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(dest, filter="data")
        return dest

    def commit_worktree(
        self,
        worktree: Path,
        message: str,
        *,
        allowed: Sequence[str],
    ) -> str:
        """Commit every change in ``worktree`` as the bot; refuse changes outside ``allowed``."""
        wt = git.Repo(worktree)
        try:
            wt.git.add("-A")
            staged = [p for p in wt.git.diff("--cached", "--name-only").splitlines() if p]
            outside = [p for p in staged if not any(p.startswith(a) for a in allowed)]
            if outside:
                wt.git.reset("-q", "--hard")
                raise GitError(
                    "refusing to commit changes outside the evolvable paths "
                    f"({', '.join(allowed)}): {', '.join(outside)}"
                )
            with _message_file(message) as msg:
                wt.git.execute(
                    ["git", "commit", "-q", "--allow-empty", "--no-verify", "-F", msg],
                    env=_bot_env(),
                )
            return wt.head.commit.hexsha
        except git.GitCommandError as exc:
            raise _git_error("commit", exc) from exc

    def merge_commit(self, parents: Sequence[str], tree_from: Path, message: str) -> str:
        """A commit with several parents whose tree is the content of worktree ``tree_from``."""
        wt = git.Repo(tree_from)
        try:
            wt.git.add("-A")
            tree = wt.git.write_tree()
            args = ["git", "commit-tree", tree]
            for p in parents:
                args += ["-p", p]
            with _message_file(message) as msg:
                return wt.git.execute([*args, "-F", msg], env=_bot_env()).strip()
        except git.GitCommandError as exc:
            raise _git_error("commit-tree", exc) from exc

    def commit_paths_on_current(self, paths: Sequence[str], message: str) -> str | None:
        """Commit ``paths`` (e.g. memory/) on the checked-out branch; None when nothing changed."""
        try:
            self.repo.git.add("-A", "--", *paths)
            if not self.repo.git.diff("--cached", "--name-only", "--", *paths).strip():
                return None
            self.repo.git.execute(
                ["git", "commit", "-q", "--no-verify", "-m", message, "--", *paths], env=_bot_env()
            )
            return self.repo.head.commit.hexsha
        except git.GitCommandError as exc:
            raise _git_error("commit", exc) from exc

    # -- the memory branch ---------------------------------------------------
    def restore_memory(self, path: str) -> bool:
        """Replace the working ``path`` folder by the memory branch's; False if there is none.

        The branch is the record (the default branch's copy, if any, is older); a
        checkout of the default branch plus this is the state the engine reads.
        """
        tip = self.rev(f"refs/heads/{self.memory_branch}")
        if tip is None:
            return False
        folder = self.root / path
        shutil.rmtree(folder, ignore_errors=True)
        if self.tree_id(tip, [path]) != "-":
            self.export(tip, [path], self.root)
        return True

    def commit_memory(
        self,
        path: str,
        message: str,
        files: Sequence[str] | None = None,
        *,
        keep_others: bool = False,
    ) -> str | None:
        """Commit the working ``path`` folder on the memory branch; None when nothing changed.

        The commit's tree is the branch's tree with ``path`` replaced, built in a
        private index: the checked-out branch, its index and its files are untouched.
        ``files`` (repository-relative, under ``path``): commit only these of the
        folder (darwin's own records), never anything else a human left there.
        ``keep_others``: add ``files`` to the branch's tree and keep the rest of it.
        """
        ref = f"refs/heads/{self.memory_branch}"
        tip = self.rev(ref)
        fd, index = tempfile.mkstemp(prefix="darwin-index-")
        os.close(fd)
        os.unlink(index)  # git wants to create it
        env = {**_bot_env(), "GIT_INDEX_FILE": index}
        try:
            self.git("read-tree", *([tip] if tip else ["--empty"]), env=env)
            if not keep_others:
                self.git(
                    "rm", "-r", "-q", "-f", "--cached", "--ignore-unmatch", "--", path, env=env
                )
            if files is not None:
                present = [f for f in files if (self.root / f).is_file()]
                if present:
                    self.git("add", "-f", "--", *present, env=env)
            elif (self.root / path).exists():
                self.git("add", "-A", "-f", "--", path, env=env)
            tree = self.git("write-tree", env=env)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(index)
        if tip is not None and self.git("rev-parse", f"{tip}^{{tree}}") == tree:
            return None
        parents = ["-p", tip] if tip else []
        sha = self.git("commit-tree", tree, *parents, "-m", message, env=_bot_env())
        self.git("update-ref", ref, sha, *([tip] if tip else []))
        return sha

    # -- remote -------------------------------------------------------------
    def _agent_specs(self, branches: Sequence[str], delete: Sequence[str]) -> list[str]:
        """Refspecs for agent branches (forced: a rerun may rewrite an unreviewed offspring)."""
        for b in (*branches, *delete):
            self._own(b)
        return [f"+refs/heads/{b}:refs/heads/{b}" for b in branches] + [
            f":refs/heads/{b}" for b in delete
        ]

    def push(self, branches: Sequence[str], *, delete: Sequence[str] = ()) -> None:
        """Push agent branches (force: a rerun may rewrite an unreviewed offspring) and deletions."""
        specs = self._agent_specs(branches, delete)
        if self.remote and specs:
            self.git("push", "--quiet", self.remote, *specs)

    def remote_branches(self) -> set[str]:
        """Agent branches that exist on the remote (not the memory branch)."""
        if not self.remote:
            return set()
        out = self.git("ls-remote", "--heads", self.remote, f"refs/heads/{self.prefix}*")
        found = {
            line.split("refs/heads/", 1)[1] for line in out.splitlines() if "refs/heads/" in line
        }
        return found - {self.memory_branch}

    def push_generation(self, branches: Sequence[str], *, delete: Sequence[str] = ()) -> None:
        """One atomic push: agent branches (forced), deletions, archive refs, the memory branch.

        ``--atomic``: if the remote refuses any ref (a rule on a branch, a memory
        branch someone else moved), it updates none, and the error says which.
        The memory branch is pushed without force: it only ever moves forward.
        """
        if not self.remote:
            return
        specs = self._agent_specs(branches, delete)
        specs.append(f"+{ARCHIVE_NS}*:{ARCHIVE_NS}*")
        if self.rev(f"refs/heads/{self.memory_branch}") is not None:
            specs.append(f"refs/heads/{self.memory_branch}:refs/heads/{self.memory_branch}")
        self.git("push", "--atomic", "--quiet", self.remote, *specs)

    def fetch(self) -> None:
        """Fetch agent branches from the remote into local branches (CI jobs start fresh)."""
        if not self.remote:
            return
        self.git(
            "fetch",
            "--quiet",
            "--prune",
            "--force",
            self.remote,
            f"+refs/heads/{self.prefix}*:refs/heads/{self.prefix}*",
            f"+{ARCHIVE_NS}*:{ARCHIVE_NS}*",
        )


def _bot_env() -> dict[str, str]:
    """The environment for a commit authored and committed by the bot."""
    return {
        **os.environ,
        "GIT_AUTHOR_NAME": BOT_NAME,
        "GIT_AUTHOR_EMAIL": BOT_EMAIL,
        "GIT_COMMITTER_NAME": BOT_NAME,
        "GIT_COMMITTER_EMAIL": BOT_EMAIL,
    }


@contextlib.contextmanager
def _message_file(text: str) -> Iterator[str]:
    fd, path = tempfile.mkstemp(prefix="darwin-msg-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        yield path
    finally:
        os.unlink(path)
