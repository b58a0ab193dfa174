"""Agents as git knows them: an agent's commit, live or archived, and the seed's branch."""

from __future__ import annotations

from darwin_bot.engine.ports import SEED_AGENT, Repository
from darwin_bot.errors import StateError


class Agents:
    """Agent -> commit over the repository port; remembers commit -> agent for display."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.names: dict[str, str] = {}  # commit or branch -> agent, for progress lines

    def head(self, agent: str) -> str:
        """The agent's commit: its branch, or the archived head of a culled agent."""
        sha = self.repo.rev(self.repo.branch(agent)) or self.repo.archived(agent)
        if sha is None:
            raise StateError(
                f"agent {agent!r} has no branch and no archived head; run 'darwin status' "
                "for how to restore it"
            )
        self.names[sha] = agent
        return sha

    def seed_head(self) -> str:
        """The seed's commit, whether its branch survived or was culled (archived)."""
        return self.head(SEED_AGENT)

    def ensure_seed(self, base_ref: str | None = None) -> str:
        """The seed agent's branch, created at the default branch's head if missing."""
        name = self.repo.branch(SEED_AGENT)
        if self.repo.rev(name) is None:
            ref = base_ref or self.repo.default_branch()
            head = self.repo.rev(ref)
            if head is None:
                raise StateError(f"cannot find {ref!r} to take the seed from")
            self.repo.set_branch(SEED_AGENT, head)
        return name
