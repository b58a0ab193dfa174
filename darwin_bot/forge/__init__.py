"""Forges: where the evolution meets humans (PRs, statuses, issues, the dashboard).

``base`` holds the protocol and its value types; ``local`` keeps them as files,
``github`` on GitHub. :func:`open_forge` builds the one a config asks for.
PyGithub is imported only when a GitHub forge is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from darwin_bot.forge.base import (
    DRAFT_LABEL,
    FITNESS_CONTEXT,
    Comment,
    Forge,
    Issue,
    PullRequest,
    Status,
    agent_marker_key,
    has_marker,
    marker,
)
from darwin_bot.forge.local import DeleteBranchHook, HeadShaHook, LocalForge, MergeHook

if TYPE_CHECKING:
    from darwin_bot.config import Config


def open_forge(
    config: Config,
    root: Path,
    *,
    head_sha_hook: HeadShaHook | None = None,
    delete_branch_hook: DeleteBranchHook | None = None,
    merge_hook: MergeHook | None = None,
) -> Forge:
    """The forge ``config.forge.kind`` names; a local one lives under ``root / forge.path``.

    The hooks give a LocalForge its git (GitHub has its own); they are ignored
    for GitHub.
    """
    fc, prefix = config.forge, config.evolution.branch_prefix
    if fc.kind == "github":
        from darwin_bot.forge.github import GitHubForge

        return GitHubForge.from_env(
            repository=fc.repository,
            base_url=fc.base_url,
            branch_prefix=prefix,
            default_branch=fc.default_branch,
        )
    return LocalForge(
        root / fc.path,
        default_branch=fc.default_branch or "main",
        branch_prefix=prefix,
        head_sha_hook=head_sha_hook,
        delete_branch_hook=delete_branch_hook,
        merge_hook=merge_hook,
    )


__all__ = [
    "DRAFT_LABEL",
    "FITNESS_CONTEXT",
    "Comment",
    "Forge",
    "Issue",
    "LocalForge",
    "PullRequest",
    "Status",
    "agent_marker_key",
    "has_marker",
    "marker",
    "open_forge",
]
