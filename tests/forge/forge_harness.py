"""One test harness per forge kind, so the contract suite reads the same for both.

Each harness owns a real local git repository (``main`` plus agent branches).
For the local forge, git hooks give the forge its branch heads, deletion and
merge. For GitHub, branches are mirrored to the emulator through the API
(:mod:`mirror`), and "the human" is a second emulator user with its own token.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Protocol

from forge_emulator import BOT_TOKEN, HUMAN_TOKEN, OUTSIDER_TOKEN, Emulator
from github import Auth, Github, GithubException
from mirror import Mirror

from darwin_bot.forge import Forge, GitHubForge, LocalForge
from darwin_bot.forge.retry import RetryPolicy

_GIT_ID = [
    "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false",
]  # fmt: skip


def git(workdir: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *_GIT_ID, *args], cwd=workdir, check=True, capture_output=True, text=True,
        timeout=30,
    )  # fmt: skip
    return out.stdout.strip()


def init_repo(workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    git(workdir, "init", "-q", "-b", "main")
    (workdir / "seed").mkdir()
    (workdir / "seed" / "train.py").write_text("lr = 1e-3\n")
    git(workdir, "add", "-A")
    git(workdir, "commit", "-q", "-m", "seed")


class Harness(Protocol):
    kind: str
    forge: Forge
    workdir: Path

    def make_branch(self, branch: str, text: str) -> str: ...
    def branch_exists(self, branch: str) -> bool: ...
    def default_head(self) -> str: ...
    def human_label(self, number: int, label: str) -> None: ...
    def human_comment(self, number: int, body: str) -> None: ...
    def outsider_comment(self, number: int, body: str) -> None:
        """A comment by someone with no rights on the repository (anyone, on a public one)."""
        ...

    def human_close(self, number: int, reason: str) -> None: ...
    def human_edit(self, number: int, body: str) -> None: ...
    def fresh_forge(self) -> Forge:
        """Another forge on the same repository, remembering nothing: a new process."""
        ...


class _GitBase:
    workdir: Path

    def _commit_branch(self, branch: str, text: str) -> str:
        git(self.workdir, "switch", "-q", "-C", branch, "main")
        (self.workdir / "seed" / "train.py").write_text(text)
        git(self.workdir, "commit", "-q", "-am", f"mutate {branch}\n\nDarwin-Agent: {branch}")
        git(self.workdir, "switch", "-q", "main")
        return git(self.workdir, "rev-parse", branch)

    def default_head(self) -> str:
        return git(self.workdir, "rev-parse", "main")


class LocalHarness(_GitBase):
    kind = "local"

    def __init__(self, tmp: Path) -> None:
        self.workdir = tmp / "repo"
        init_repo(self.workdir)
        self.forge_dir = tmp / "forge"
        self.forge = self.fresh_forge()
        self.human = LocalForge(tmp / "forge", user="alice")
        self.outsider = LocalForge(tmp / "forge", user="mallory", association="NONE")

    def fresh_forge(self) -> LocalForge:
        return LocalForge(
            self.forge_dir,
            user="darwin-bot",
            head_sha_hook=self._head,
            delete_branch_hook=self._delete,
            merge_hook=self._merge,
        )

    def _head(self, branch: str) -> str | None:
        try:
            return git(self.workdir, "rev-parse", "--verify", "-q", f"refs/heads/{branch}")
        except subprocess.CalledProcessError:
            return None

    def _delete(self, branch: str) -> bool:
        if self._head(branch) is None:
            return False
        git(self.workdir, "branch", "-q", "-D", branch)
        return True

    def _merge(self, branch: str, base: str, message: str) -> str:
        git(self.workdir, "switch", "-q", base)
        git(self.workdir, "merge", "-q", "--no-ff", "-m", message, branch)
        return git(self.workdir, "rev-parse", "HEAD")

    def make_branch(self, branch: str, text: str) -> str:
        return self._commit_branch(branch, text)

    def branch_exists(self, branch: str) -> bool:
        return self._head(branch) is not None

    def human_label(self, number: int, label: str) -> None:
        self.human.set_labels(number, add=(label,))

    def human_comment(self, number: int, body: str) -> None:
        self.human.add_comment(number, body)

    def outsider_comment(self, number: int, body: str) -> None:
        self.outsider.add_comment(number, body)

    def human_close(self, number: int, reason: str) -> None:
        self.human.close_issue(number, reason)

    def human_edit(self, number: int, body: str) -> None:
        self.human.update_issue(number, body)


class GitHubHarness(_GitBase):
    kind = "github"

    def __init__(self, tmp: Path, emulator: Emulator) -> None:
        self.workdir = tmp / "repo"
        init_repo(self.workdir)
        self.emulator = emulator
        self.repository = emulator.new_repo()
        self.mirror = Mirror(emulator.api_url, BOT_TOKEN, self.repository, self.workdir)
        self.mirror.push("main")
        self.sleeps: list[float] = []
        self.forge = self.make_forge()
        human = Github(
            auth=Auth.Token(HUMAN_TOKEN), base_url=emulator.api_url, retry=None,
            seconds_between_requests=None, seconds_between_writes=None,
        )  # fmt: skip
        self.human_repo = human.get_repo(self.repository)
        outsider = Github(
            auth=Auth.Token(OUTSIDER_TOKEN), base_url=emulator.api_url, retry=None,
            seconds_between_requests=None, seconds_between_writes=None,
        )  # fmt: skip
        self.outsider_repo = outsider.get_repo(self.repository)

    def make_forge(self, token: str = BOT_TOKEN, **retry: float) -> GitHubForge:
        policy = RetryPolicy(
            attempts=int(retry.pop("attempts", 4)), base_delay_s=0.01, sleep=self.sleeps.append,
            **retry,
        )  # fmt: skip
        return GitHubForge(
            self.repository, token, base_url=self.emulator.api_url, retry=policy,
            seconds_between_requests=0, seconds_between_writes=0,
        )  # fmt: skip

    def fresh_forge(self) -> GitHubForge:
        return self.make_forge()

    def make_branch(self, branch: str, text: str) -> str:
        self._commit_branch(branch, text)
        return self.mirror.push(branch)  # same sha as the local commit (the mirror checks)

    def branch_exists(self, branch: str) -> bool:
        try:
            self.human_repo.get_git_ref(f"heads/{branch}")
        except GithubException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def human_label(self, number: int, label: str) -> None:
        self.human_repo.get_issue(number).add_to_labels(label)

    def human_comment(self, number: int, body: str) -> None:
        self.human_repo.get_issue(number).create_comment(body)

    def outsider_comment(self, number: int, body: str) -> None:
        self.outsider_repo.get_issue(number).create_comment(body)

    def human_close(self, number: int, reason: str) -> None:
        self.human_repo.get_issue(number).edit(state="closed", state_reason=reason)

    def human_edit(self, number: int, body: str) -> None:
        self.human_repo.get_issue(number).edit(body=body)
